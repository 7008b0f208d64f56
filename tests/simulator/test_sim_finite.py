"""Finite numbers everywhere: every fault parameter, from Python, the grammar and the control API.

The walk covers every fault kind and each numeric parameter it takes, with
the values a hostile or careless user sends: NaN, +-inf, huge numbers,
-0.0 where a positive value is meant, bools, strings and non-ASCII digits
('²', '①', '٣' all pass ``str.isdigit()``). Each is refused with an error that
names the field, and nothing is installed.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator, Iterator
from typing import Any

import aiohttp
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from virtuoso_resilience.simulator import (
    Fault,
    FaultKind,
    FaultSpecError,
    Simulator,
    cli,
    parse_faults,
)

# Numeric parameters of every fault, per kind (count is refused for window-only kinds).
_COMMON = ("probability", "start", "duration")
_OWN: dict[FaultKind, tuple[str, ...]] = {
    FaultKind.LATENCY: ("latency", "latency_max", "latency_stddev"),
    FaultKind.HTTP: ("status",),
    FaultKind.RETCODE: ("retcode",),
    FaultKind.RATE_LIMIT: ("limit", "period"),
    FaultKind.LATE_RESPONSE: ("delay",),
}
_WINDOW_ONLY = (FaultKind.RATE_LIMIT, FaultKind.MAINTENANCE)
_BASE: dict[FaultKind, dict[str, Any]] = {
    FaultKind.RATE_LIMIT: {"limit": 5},
    FaultKind.LATE_RESPONSE: {"delay": 1.0},
}
_POSITIVE = {"duration", "period", "delay"}
"""Fields where a positive value is meant (for delay: of a late_response fault)."""
_INTEGERS = {"count", "status", "retcode", "limit"}


def _params(kind: FaultKind) -> tuple[str, ...]:
    counted = () if kind in _WINDOW_ONLY else ("count",)
    return _COMMON + counted + _OWN.get(kind, ())


CASES = [
    pytest.param(kind, name, id=f"{kind.value}.{name}")
    for kind in FaultKind
    for name in _params(kind)
]


def _python_values(name: str) -> Iterator[Any]:
    yield from (math.nan, math.inf, -math.inf, 1e300, 10**30, True, False, "1", "²", "①", "٣")
    if name != "retcode":  # a negative retCode is a valid (non-zero) code
        yield -1
    if name in _POSITIVE:
        yield -0.0
    if name in _INTEGERS:
        yield 1.0  # a float, even a whole one, is not an integer


def _json_literals(name: str) -> Iterator[str]:
    yield from ("NaN", "Infinity", "-Infinity", "1e999999", "9" * 400 + ".5", "1e300")
    yield from (str(10**30), "true", '"1"', '"²"', '"①"', '"٣"', "[1]", '{"a": 1}')
    if name != "retcode":
        yield "-1"
    if name in _POSITIVE:
        yield "-0.0"


@pytest.mark.parametrize(("kind", "name"), CASES)
def test_python_faults_refuse_bad_numbers_naming_the_field(kind: FaultKind, name: str) -> None:
    for value in _python_values(name):
        with pytest.raises(FaultSpecError) as caught:
            Fault(kind, **{**_BASE.get(kind, {}), name: value})
        assert caught.value.field == name, (value, str(caught.value))
        assert name in caught.value.problem, value
        assert len(str(caught.value)) < 600  # a huge value is not echoed in full


def test_negative_zero_is_stored_as_zero_and_round_trips() -> None:
    fault = Fault(FaultKind.LATENCY, latency=-0.0, start=-0.0, probability=-0.0)
    assert math.copysign(1.0, fault.latency) == 1.0
    assert math.copysign(1.0, fault.probability) == 1.0
    assert parse_faults(fault.describe()) == [fault]


@pytest.mark.parametrize(
    "value", [1e9, 0.123456789, 1e-7, 123456.789, 999_999_999.5], ids=lambda v: repr(v)
)
def test_extreme_durations_round_trip_through_the_grammar(value: float) -> None:
    for fault in (
        Fault(FaultKind.LATENCY, latency=value, probability=1e-9),
        Fault(FaultKind.LATE_RESPONSE, delay=value),
        Fault(FaultKind.RATE_LIMIT, limit=1_000_000_000, period=value),
        Fault(FaultKind.HANG, duration=value),
    ):
        assert parse_faults(fault.describe()) == [fault], fault.describe()


def _grammar_specs(kind: FaultKind, name: str, v: str) -> list[str]:
    key = {FaultKind.HTTP: "http", FaultKind.RETCODE: "retcode"}.get(kind, kind.value)
    value = {
        FaultKind.LATENCY: "1ms",
        FaultKind.HTTP: "503",
        FaultKind.RETCODE: "10016",
        FaultKind.RATE_LIMIT: "5/s",
        FaultKind.MAINTENANCE: "on",
        FaultKind.LATE_RESPONSE: "1s",
    }.get(kind, "1")
    prob_ok = kind not in (FaultKind.RATE_LIMIT, FaultKind.MAINTENANCE)
    forms = {
        "probability": [f"{key}={value}:{v}"] if prob_ok else [],
        "count": [f"{key}={value}#{v}", f"{key}={value}:next:{v}"],
        "start": [f"{key}={value}~{v}s..", f"{key}={value}~{v}s..1e999s"],
        "duration": [f"{key}={value}~{v}s", f"{key}={value}~1s..{v}s"],
        "latency": [f"latency={v}ms", f"latency={v}s:0.5"],
        "latency_max": [f"latency=1ms..{v}s"],
        "latency_stddev": [f"latency=1ms+-{v}s"],
        "status": [f"http={v}", f"http={v}:0.5"],
        "retcode": [f"retcode={v}", f"retcode={v}:next:1"],
        "limit": [f"rate_limit={v}/s"],
        "period": [f"rate_limit=5/{v}s", f"rate_limit=5/{v}"],
        "delay": [f"late_response={v}s", f"late_response={v}ms:0.5"],
    }[name]
    if kind is FaultKind.HTTP and name in ("probability", "count"):
        forms.append(f"error_rate={v}" if name == "probability" else f"error_rate=next:{v}")
    return forms


_GRAMMAR_VALUES = (
    "nan",
    "inf",
    "Infinity",
    "1e999999",
    "9" * 400,
    "9" * 400 + ".5",
    "²",
    "①",
    "٣",
    "true",
    "1_0",
    "0x10",
)


@pytest.mark.parametrize(("kind", "name"), CASES)
def test_grammar_refuses_bad_numbers_naming_the_token(kind: FaultKind, name: str) -> None:
    for raw in _GRAMMAR_VALUES + (() if name == "retcode" else ("-1",)):
        for spec in _grammar_specs(kind, name, raw):
            with pytest.raises(FaultSpecError) as caught:
                parse_faults(f"latency=1ms,{spec}")
            assert caught.value.token[:50] == spec[:50], (spec, str(caught.value))
            assert "bad fault" in str(caught.value)


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(
        st.text(
            alphabet=st.sampled_from(list("abcdefghijklmnoprstuy_@/*=#~:.,-+% 0123456789²①٣eE")),
            max_size=40,
        ),
        st.builds(
            "{}={}{}".format,
            st.sampled_from(["latency", "http", "rate_limit", "late_response", "reset", "retcode"]),
            st.text(max_size=20),
            st.sampled_from(["", "#2", "~1s", "#①", "~1s..²s"]),
        ),
    )
)
def test_any_text_parses_or_raises_fault_spec_error(spec: str) -> None:
    try:
        faults = parse_faults(spec)
    except FaultSpecError as exc:
        problem = exc.problem
        assert problem
    else:
        for fault in faults:
            assert parse_faults(fault.describe()) == [fault]


# -- over HTTP ------------------------------------------------------------------


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def _loads(text: str) -> Any:
    import json

    def refuse(name: str) -> Any:
        raise AssertionError(f"{name} is not JSON: {text[:200]!r}")

    return json.loads(text, parse_constant=refuse)


async def _post(
    http: aiohttp.ClientSession, sim: Simulator, path: str, body: str, ctype: str
) -> tuple[int, Any]:
    async with http.post(sim.base_url + path, data=body, headers={"Content-Type": ctype}) as r:
        return r.status, _loads(await r.text())


@pytest.mark.parametrize(("kind", "name"), CASES)
async def test_control_api_refuses_bad_numbers_naming_the_field(
    sim: Simulator, http: aiohttp.ClientSession, kind: FaultKind, name: str
) -> None:
    base = "".join(f', "{k}": {v!r}' for k, v in _BASE.get(kind, {}).items())
    for literal in _json_literals(name):
        body = f'{{"kind": "{kind.value}"{base}, "{name}": {literal}}}'
        status, answer = await _post(http, sim, "/__sim__/faults", body, "application/json")
        assert status == 400, (body, answer)
        assert answer["field"] == name, (body, answer)
        assert name in answer["error"] and "must be" in answer["error"], answer
    for raw in ("nan", "1e999999", "²", "①", "٣"):
        for spec in _grammar_specs(kind, name, raw):
            status, answer = await _post(http, sim, "/__sim__/faults", spec, "text/plain")
            assert status == 400 and "bad fault" in answer["error"], (spec, answer)
    assert len(sim.faults) == 0


async def test_nan_delay_is_refused_and_the_loop_keeps_serving(
    sim: Simulator, http: aiohttp.ClientSession
) -> None:
    """Regression: a NaN delay reached asyncio.sleep and corrupted the loop's timer heap."""
    for body in (
        '{"kind": "late_response", "delay": NaN}',
        '{"kind": "latency", "latency": NaN}',
        '{"kind": "latency", "latency": 0.01, "latency_max": Infinity}',
        '[{"kind": "latency", "latency": 0.01, "latency_stddev": NaN}]',
        '{"faults": [{"kind": "rate_limit", "limit": 1, "period": Infinity}]}',
        '{"kind": "hang", "duration": -Infinity}',
    ):
        status, answer = await _post(http, sim, "/__sim__/faults", body, "application/json")
        assert status == 400, (body, answer)
        assert (answer["field"] in body and "NaN" in answer["error"]) or "Infinity" in answer[
            "error"
        ]
    with pytest.raises(FaultSpecError, match="delay"):
        sim.inject("late_response", delay=math.nan)
    with pytest.raises(FaultSpecError, match="period"):
        sim.inject("rate_limit", limit=1, period=math.inf)
    assert len(sim.faults) == 0
    sim.faults.add("latency=1ms..2ms,late_response@/v5/market/time=1ms,rate_limit=1000/5s")
    async with http.get(sim.base_url + "/__sim__/faults") as r:
        listing = _loads(await r.text())
    assert [f["spec"] for f in listing["faults"]] == [
        "latency=1ms..2ms",
        "late_response@/v5/market/time=1ms",
        "rate_limit=1000/5s",
    ]
    answers = await asyncio.gather(*(http.get(sim.base_url + "/v5/market/time") for _ in range(20)))
    assert [a.status for a in answers] == [200] * 20
    for answer in answers:
        answer.release()


@pytest.mark.parametrize("raw_id", ["²", "①", "٣", "9" * 5000, "-1", "1.0", "%20"])
async def test_fault_ids_must_be_ascii_integers(
    sim: Simulator, http: aiohttp.ClientSession, raw_id: str
) -> None:
    sim.faults.add("reset=0.1,reset=0.2,reset=0.3")
    async with http.delete(sim.base_url + "/__sim__/faults/" + raw_id) as r:
        status, answer = r.status, _loads(await r.text())
    assert status == 400 and answer["field"] == "id" and "integer" in answer["error"]
    assert len(sim.faults) == 3  # '٣' is not fault 3


@pytest.mark.parametrize(
    "spec", ["http=²", "http=①", "retcode=٣", "reset=1#①", "reset=next:²", "rate_limit=²/s"]
)
async def test_non_ascii_digits_in_specs_are_400(
    sim: Simulator, http: aiohttp.ClientSession, spec: str
) -> None:
    status, answer = await _post(http, sim, "/__sim__/faults", spec, "text/plain")
    assert status == 400 and f"bad fault {spec!r}" in answer["error"]
    assert len(sim.faults) == 0


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ("garbage", None),
        ("[1, 2]", None),
        ('"seed"', None),
        ('{"seed": "7"}', "seed"),
        ('{"seed": NaN}', "seed"),
        ('{"seed": 1e999999}', "seed"),
        ('{"seed": 7.0}', "seed"),
        ('{"seed": true}', "seed"),
        ('{"seed": -1}', "seed"),
        ('{"seed": 18446744073709551616}', "seed"),
        ('{"sed": 7}', "sed"),
        ('{"seed": ' + "[" * 50_000 + "]" * 50_000 + "}", None),
        ("{not json", None),
    ],
)
async def test_reset_with_a_garbage_body_is_400_and_resets_nothing(
    sim: Simulator, http: aiohttp.ClientSession, body: str, field: str | None
) -> None:
    sim.faults.add("reset@/v5/order/*=0.5")
    sim.market.set_price("BTCUSDT", 70_000)
    status, answer = await _post(http, sim, "/__sim__/reset", body, "application/json")
    assert status == 400 and answer["error"], answer
    assert answer.get("field") == field
    assert len(sim.faults) == 1 and sim.market.price("BTCUSDT") == 70_000 and sim.seed == 1


async def test_reset_with_an_empty_body_or_a_seed_resets(
    sim: Simulator, http: aiohttp.ClientSession
) -> None:
    sim.faults.add("reset=0.5")
    assert await _post(http, sim, "/__sim__/reset", "", "application/json") == (200, {"seed": 1})
    assert len(sim.faults) == 0
    status, answer = await _post(http, sim, "/__sim__/reset", '{"seed": 9}', "application/json")
    assert (status, answer, sim.seed) == (200, {"seed": 9}, 9)
    assert await _post(http, sim, "/__sim__/reset", "{}", "application/json") == (200, {"seed": 9})


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/__sim__/market/tick", '{"steps": NaN}', "steps"),
        ("/__sim__/market/tick", '{"steps": 1e999999}', "steps"),
        ("/__sim__/market/tick", '{"steps": "²"}', "steps"),
        ("/__sim__/market/tick", '{"steps": 2, "colour": 1}', "colour"),
        ("/__sim__/market/tick", "garbage", None),
        ("/__sim__/market/price", '{"symbol": "BTCUSDT", "price": -0.0}', "price"),
        ("/__sim__/market/price", '{"symbol": "BTCUSDT", "price": "٣"}', "price"),
        ("/__sim__/market/price", "", None),
        ("/__sim__/faults", '{"spec": 5}', "spec"),
        ("/__sim__/faults", '{"kind": "reset", "colour": "red"}', "colour"),
        ("/__sim__/faults", '{"kind": "meteor"}', "kind"),
    ],
)
async def test_control_errors_name_the_field_and_what_is_allowed(
    sim: Simulator, http: aiohttp.ClientSession, path: str, body: str, field: str | None
) -> None:
    status, answer = await _post(http, sim, path, body, "application/json")
    assert status == 400 and answer.get("field") == field, answer
    if field is not None:
        assert field in answer["error"]
    error = answer["error"]
    assert "allowed" in answer or any(w in error for w in ("allowed", "must be", "not valid JSON"))
    assert sim.market.price("BTCUSDT") == 65000.0


# -- the CLI --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "needles"),
    [
        ("http=²", ("bad fault 'http=²'", "integer code")),
        ("reset=1#①", ("bad fault 'reset=1#①'", "'#N'", "integer N >= 1")),
        ("latency=٣s", ("bad fault 'latency=٣s'", "not a duration", "ASCII digits")),
        ("late_response=1e999s", ("not a duration",)),
        ("late_response=" + "9" * 400 + "s", ("delay must be", "finite number of seconds")),
        ("rate_limit=5/" + "9" * 400 + "s", ("period must be", "> 0 and <= 1000000000")),
        ("error_rate=nan", ("not a probability", "0..1")),
    ],
)
def test_simulate_cli_says_which_part_of_the_spec_is_wrong(
    spec: str, needles: tuple[str, ...], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as caught:
        cli.main(["--faults", spec])
    assert caught.value.code == 2
    err = capsys.readouterr().err
    assert "invalid _fault_spec value" not in err
    for needle in needles:
        assert needle in err, err


@pytest.mark.parametrize("seed", ["-1", "18446744073709551616", "²"])
def test_simulate_cli_refuses_a_seed_out_of_range(
    seed: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as caught:
        cli.main(["--seed", seed])
    assert caught.value.code == 2
    assert "--seed" in capsys.readouterr().err


async def test_a_megabyte_of_faults_is_refused_not_installed(
    sim: Simulator, http: aiohttp.ClientSession
) -> None:
    spec = ",".join(["reset=0"] * 100_000)  # 800 KB: 100 000 faults
    status, answer = await _post(http, sim, "/__sim__/faults", spec, "text/plain")
    assert status == 400 and "at most 10000 faults" in answer["error"], answer
    assert len(sim.faults) == 0
    with pytest.raises(FaultSpecError, match="at most 10000"):
        sim.faults.add(",".join(["hang=0"] * 10_001))
    sim.faults.add(",".join(["hang=0"] * 10_000))
    assert len(sim.faults) == 10_000
