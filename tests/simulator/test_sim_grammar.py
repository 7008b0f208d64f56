"""The fault grammar, the Fault value object and FaultSet decisions (virtual time)."""

from __future__ import annotations

import random
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from virtuoso_resilience.clock import FakeClock
from virtuoso_resilience.simulator import Fault, FaultKind, FaultSet, FaultSpecError, parse_faults


def test_the_cli_example_parses() -> None:
    latency, errors, budget = parse_faults("latency=200ms,error_rate=0.1,rate_limit=10/s")
    assert latency == Fault(FaultKind.LATENCY, latency=0.2)
    assert errors == Fault(FaultKind.HTTP, status=500, probability=0.1)
    assert budget == Fault(FaultKind.RATE_LIMIT, limit=10, period=1.0)


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("latency=50ms..300ms", Fault(FaultKind.LATENCY, latency=0.05, latency_max=0.3)),
        ("latency=100ms+-20ms", Fault(FaultKind.LATENCY, latency=0.1, latency_stddev=0.02)),
        ("latency=1s:0.5", Fault(FaultKind.LATENCY, latency=1.0, probability=0.5)),
        ("http=503", Fault(FaultKind.HTTP, status=503)),
        ("http=503:0.2", Fault(FaultKind.HTTP, status=503, probability=0.2)),
        ("http=502:5%", Fault(FaultKind.HTTP, status=502, probability=0.05)),
        ("maintenance=30s", Fault(FaultKind.MAINTENANCE, duration=30.0)),
        ("maintenance=on", Fault(FaultKind.MAINTENANCE)),
        ("rate_limit=600/5s", Fault(FaultKind.RATE_LIMIT, limit=600, period=5.0)),
        ("rate_limit=100/min", Fault(FaultKind.RATE_LIMIT, limit=100, period=60.0)),
        ("reset=0.05", Fault(FaultKind.RESET, probability=0.05)),
        ("hang=0.01", Fault(FaultKind.HANG, probability=0.01)),
        ("malformed=always", Fault(FaultKind.MALFORMED)),
        ("system_error=0.1", Fault(FaultKind.RETCODE, retcode=10016, probability=0.1)),
        ("retcode=10006:0.5", Fault(FaultKind.RETCODE, retcode=10006, probability=0.5)),
        (
            "lost_response@/v5/order/create=next:1",
            Fault(FaultKind.LOST_RESPONSE, endpoint="/v5/order/create", count=1),
        ),
        ("late_response=30s", Fault(FaultKind.LATE_RESPONSE, delay=30.0)),
        ("reset@/v5/market/*=1#3", Fault(FaultKind.RESET, endpoint="/v5/market/*", count=3)),
        ("http@private=500~10s", Fault(FaultKind.HTTP, endpoint="private", duration=10.0)),
        (
            "hang=0.5~5s..20s",
            Fault(FaultKind.HANG, probability=0.5, start=5.0, duration=15.0),
        ),
        ("reset=1~2m..", Fault(FaultKind.RESET, start=120.0)),
    ],
)
def test_grammar_forms(spec: str, expected: Fault) -> None:
    assert parse_faults(spec) == [expected]


def test_whitespace_and_empty_items_are_ignored() -> None:
    assert parse_faults("") == []
    assert parse_faults(" reset=0.5 , ,hang=0.1 ") == [
        Fault(FaultKind.RESET, probability=0.5),
        Fault(FaultKind.HANG, probability=0.1),
    ]


@pytest.mark.parametrize(
    ("spec", "token", "hint"),
    [
        ("latncy=200ms", "latncy=200ms", "allowed keys: error_rate, hang, http"),
        ("latency=fast", "latency=fast", "not a duration"),
        ("latency=200", "latency=200", "ms, s, m or h"),
        ("error_rate=1.5", "error_rate=1.5", "0..1"),
        ("error_rate=lots", "error_rate=lots", "not a probability"),
        ("http=abc", "http=abc", "integer code"),
        ("http=200", "http=200", "400..599"),
        ("rate_limit=10", "rate_limit=10", "N/period"),
        ("rate_limit=x/s", "rate_limit=x/s", "integer"),
        ("reset@v5/order=1", "reset@v5/order=1", "must start with '/'"),
        ("reset=1#0", "reset=1#0", "#N"),
        ("reset=next:0", "reset=next:0", "next:N"),
        ("maintenance=30s#2", "maintenance=30s#2", "time window"),
        ("hang=1~5s..2s", "hang=1~5s..2s", "B > A"),
        ("late_response=0s", "late_response=0s", "> 0"),
        ("reset", "reset", "key[@endpoint]=value"),
    ],
)
def test_bad_specs_name_the_token_and_what_is_allowed(spec: str, token: str, hint: str) -> None:
    with pytest.raises(FaultSpecError) as caught:
        parse_faults(f"latency=10ms,{spec}")
    assert isinstance(caught.value, ValueError)
    assert caught.value.token == token
    assert repr(token) in str(caught.value)
    assert hint in str(caught.value)


def test_fault_validation_and_dict_round_trip() -> None:
    with pytest.raises(FaultSpecError, match="probability"):
        Fault(FaultKind.RESET, probability=2.0)
    with pytest.raises(FaultSpecError, match="kind"):
        Fault("reset")  # type: ignore[arg-type]
    fault = Fault(FaultKind.HTTP, endpoint="/v5/order/*", status=503, probability=0.25, count=4)
    assert Fault.from_dict(fault.to_dict()) == fault
    assert fault.to_dict() == {
        "kind": "http",
        "endpoint": "/v5/order/*",
        "status": 503,
        "probability": 0.25,
        "count": 4,
    }
    with pytest.raises(FaultSpecError, match="allowed kinds"):
        Fault.from_dict({"kind": "meteor"})
    with pytest.raises(FaultSpecError, match="unknown field"):
        Fault.from_dict({"kind": "reset", "colour": "red"})
    with pytest.raises(FaultSpecError, match="probability must be a number"):
        Fault.from_dict({"kind": "reset", "probability": "often"})
    with pytest.raises(FaultSpecError, match="count must be an integer"):
        Fault.from_dict({"kind": "reset", "count": 1.5})
    with pytest.raises(FaultSpecError, match="endpoint must be a string"):
        Fault.from_dict({"kind": "reset", "endpoint": 5})
    assert Fault.from_dict({"kind": "latency", "latency": 1}) == Fault(
        FaultKind.LATENCY, latency=1.0
    )


_durations = st.sampled_from([0.001, 0.05, 0.2, 1.0, 2.5, 30.0, 90.0])
_faults = st.one_of(
    st.builds(
        Fault,
        kind=st.sampled_from(
            [FaultKind.RESET, FaultKind.HANG, FaultKind.MALFORMED, FaultKind.LOST_RESPONSE]
        ),
        probability=st.sampled_from([0.0, 0.05, 0.5, 1.0]),
        count=st.none() | st.integers(1, 9),
        endpoint=st.sampled_from([None, "/v5/order/create", "/v5/market/*", "private"]),
    ),
    st.builds(
        Fault,
        kind=st.just(FaultKind.HTTP),
        status=st.sampled_from([429, 500, 502, 503, 504]),
        probability=st.sampled_from([0.1, 1.0]),
    ),
    st.builds(Fault, kind=st.just(FaultKind.LATENCY), latency=_durations),
    st.builds(Fault, kind=st.just(FaultKind.LATE_RESPONSE), delay=_durations),
    st.builds(
        Fault,
        kind=st.just(FaultKind.RATE_LIMIT),
        limit=st.integers(1, 1000),
        period=_durations,
        duration=st.none() | _durations,
    ),
    st.builds(Fault, kind=st.just(FaultKind.MAINTENANCE), duration=st.none() | _durations),
    st.builds(
        Fault,
        kind=st.just(FaultKind.RETCODE),
        retcode=st.sampled_from([10006, 10016, 170131]),
        probability=st.sampled_from([0.1, 1.0]),
        count=st.none() | st.integers(1, 9),
    ),
)


@given(_faults)
def test_describe_is_parsed_back_to_the_same_fault(fault: Fault) -> None:
    assert parse_faults(fault.describe()) == [fault]


def test_endpoint_matching() -> None:
    assert Fault(FaultKind.RESET).matches("/any", private=False)
    assert Fault(FaultKind.RESET, endpoint="/v5/order/create").matches("/v5/order/create", True)
    assert not Fault(FaultKind.RESET, endpoint="/v5/order/create").matches("/v5/order/cancel", True)
    assert Fault(FaultKind.RESET, endpoint="/v5/market/*").matches("/v5/market/tickers", False)
    assert Fault(FaultKind.RESET, endpoint="private").matches("/v5/order/create", True)
    assert not Fault(FaultKind.RESET, endpoint="public").matches("/v5/order/create", True)


def fault_set(clock: FakeClock, seed: int = 1) -> FaultSet:
    return FaultSet(clock, random.Random(seed))


def test_count_limited_fault_fires_exactly_n_times(clock: FakeClock) -> None:
    faults = fault_set(clock)
    handle = faults.add("reset@/x=next:3")
    fired = [faults.plan_before("/x", False) is not None for _ in range(5)]
    assert fired == [True, True, True, False, False]
    assert handle.fired == 3 and not handle.active
    assert faults.plan_before("/y", False) is None


def test_time_window_opens_and_closes(clock: FakeClock) -> None:
    faults = fault_set(clock)
    faults.add("http=503~10s..20s")
    assert faults.plan_before("/x", False) is None
    clock.advance(10)
    plan = faults.plan_before("/x", False)
    assert plan is not None and plan.http_status == 503
    clock.advance(10)
    assert faults.plan_before("/x", False) is None


def test_precedence_and_latency_accumulates(clock: FakeClock) -> None:
    faults = fault_set(clock)
    faults.add("latency=100ms,latency=50ms,http=500,reset=1,hang=1")
    plan = faults.plan_before("/x", False)
    assert plan is not None
    assert plan.latency == pytest.approx(0.15)
    assert plan.hang and not plan.reset and plan.http_status is None
    # the lower-precedence faults were not consumed
    assert faults.fired_by_kind == {"latency": 2, "hang": 1}


def test_maintenance_spares_the_status_endpoint(clock: FakeClock) -> None:
    faults = fault_set(clock)
    faults.add("maintenance=30s")
    assert faults.plan_before("/v5/system/status", False) is None
    plan = faults.plan_before("/v5/market/time", False)
    assert plan is not None and plan.maintenance and plan.maintenance_until == 30.0
    assert faults.maintenance_windows() == [(0.0, 30.0)]
    clock.advance(30)
    assert faults.maintenance_windows() == []


def test_post_faults_order(clock: FakeClock) -> None:
    faults = fault_set(clock)
    faults.add("malformed=1,late_response=5s,lost_response=1")
    plan = faults.plan_after("/x", True)
    assert plan is not None and plan.lost and plan.late is None and not plan.malformed


def test_same_seed_same_decisions(clock: FakeClock) -> None:
    def run(seed: int) -> list[bool]:
        faults = fault_set(clock, seed)
        faults.add("reset=0.3")
        return [faults.plan_before("/x", False) is not None for _ in range(200)]

    assert run(5) == run(5)
    assert run(5) != run(6)
    assert 30 < sum(run(5)) < 90


def test_handles_remove_their_own_faults(clock: FakeClock) -> None:
    faults = fault_set(clock)
    first = faults.add("reset=1")
    second = faults.add(Fault(FaultKind.HANG), [Fault(FaultKind.MALFORMED)])
    assert len(faults) == 3 and second.ids == (2, 3)
    assert faults.remove(first) and not faults.remove(first)
    assert [f.kind for f in faults] == [FaultKind.HANG, FaultKind.MALFORMED]
    with second:
        pass
    assert len(faults) == 0
    assert "FaultSet 0 faults" in repr(faults)
    faults.add("reset=0.5")
    assert [s.fault.describe() for s in faults.status()] == ["reset=0.5"]
    assert "fired=0" in repr(second)


# -- regressions ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("http=503:next:2", Fault(FaultKind.HTTP, status=503, count=2)),
        ("retcode=10006:next:1", Fault(FaultKind.RETCODE, retcode=10006, count=1)),
        ("latency=1s:next:2", Fault(FaultKind.LATENCY, latency=1.0, count=2)),
        (
            "latency=50ms..300ms:next:3",
            Fault(FaultKind.LATENCY, latency=0.05, latency_max=0.3, count=3),
        ),
        (
            "latency=100ms+-20ms:next:1",
            Fault(FaultKind.LATENCY, latency=0.1, latency_stddev=0.02, count=1),
        ),
        ("late_response=30s:next:1", Fault(FaultKind.LATE_RESPONSE, delay=30.0, count=1)),
        (
            "late_response@/v5/order/create=30s:next:1~1m",
            Fault(
                FaultKind.LATE_RESPONSE,
                endpoint="/v5/order/create",
                delay=30.0,
                count=1,
                duration=60.0,
            ),
        ),
        ("http=503:always", Fault(FaultKind.HTTP, status=503)),
        ("latency=1s:5%", Fault(FaultKind.LATENCY, latency=1.0, probability=0.05)),
        ("error_rate=next:2", Fault(FaultKind.HTTP, status=500, count=2)),
    ],
)
def test_next_n_after_a_value(spec: str, expected: Fault) -> None:
    """`prob = ... | "next:" N` is allowed wherever a value takes `:prob`."""
    assert parse_faults(spec) == [expected]


@pytest.mark.parametrize(
    ("spec", "hint"),
    [
        ("http=503:0.5:0.2", "not a probability"),
        ("http=503:next:0", "next:N"),
        ("latency=1s:next:x", "next:N"),
        ("late_response=30s:next:1#2", "#N"),  # two counts
        ("http=503:", "not a probability"),
    ],
)
def test_bad_probability_after_a_value(spec: str, hint: str) -> None:
    with pytest.raises(FaultSpecError, match=hint) as caught:
        parse_faults(spec)
    assert caught.value.token == spec


@pytest.mark.parametrize(
    "make",
    [
        lambda: Fault(FaultKind.MAINTENANCE, count=2),
        lambda: Fault(FaultKind.RATE_LIMIT, limit=5, count=3),
        lambda: Fault.from_dict({"kind": "maintenance", "count": 1}),
        lambda: Fault.from_dict({"kind": "rate_limit", "limit": 5, "count": 3}),
    ],
)
def test_count_is_refused_for_window_only_kinds(make: Any) -> None:
    with pytest.raises(FaultSpecError, match=r"takes a time window .*not a count"):
        make()


def test_faults_built_in_python_round_trip_through_the_grammar() -> None:
    for fault in (
        Fault(FaultKind.MAINTENANCE),
        Fault(FaultKind.MAINTENANCE, start=3600.0, duration=3600.0),
        Fault(FaultKind.RATE_LIMIT, limit=5, period=2.0, duration=30.0),
        Fault(FaultKind.RETCODE, retcode=10006, probability=0.5, count=2),
        Fault(FaultKind.LATENCY, latency=0.1, latency_max=0.2, probability=0.5, count=4),
        Fault(FaultKind.LATE_RESPONSE, delay=30.0, probability=0.25, count=1),
        Fault(FaultKind.HTTP, status=503, count=2, endpoint="/v5/market/*"),
    ):
        assert parse_faults(fault.describe()) == [fault], fault.describe()
    # the documented exception: the grammar has no custom retcode message
    custom = Fault(FaultKind.RETCODE, retcode=10006, message="custom")
    assert parse_faults(custom.describe()) == [Fault(FaultKind.RETCODE, retcode=10006)]


def test_spent_and_expired_faults_are_pruned(clock: FakeClock) -> None:
    faults = fault_set(clock)
    # a week of serve's schedule: an 8 s outage every 30 s
    handles = []
    for _ in range(7 * 24 * 120):
        handles.append(faults.add("http@/v5/market/tickers=503~8s"))
        clock.advance(30)
    assert len(faults) == 0  # each window is over, none is kept
    assert faults.plan_before("/v5/market/tickers", False) is None
    assert not handles[0].active and handles[0].fired == 0

    one_shot = faults.add("reset@/x=next:1")
    plan = faults.plan_before("/x", False)
    assert plan is not None and plan.reset
    assert len(faults) == 0 and faults.status() == ()
    # the caller's handle still knows what happened; the stats are intact
    assert one_shot.fired == 1 and not one_shot.active
    assert faults.fired_by_kind == {"reset": 1}
    assert not faults.remove(one_shot)


def test_pruning_keeps_pending_and_live_faults(clock: FakeClock) -> None:
    faults = fault_set(clock)
    scheduled = faults.add("http=503~10s..20s")
    short = faults.add("hang@/y=1~5s")
    counted = faults.add("reset@/y=next:2")
    assert faults.plan_before("/x", False) is None  # scans, prunes nothing
    assert len(faults) == 3
    clock.advance(6)
    plan = faults.plan_before("/y", False)
    assert plan is not None and plan.reset  # the hang window is over
    assert [s.id for s in faults.status()] == [*scheduled.ids, *counted.ids]
    assert not short.active and short.fired == 0
    assert counted.active and counted.fired == 1
    clock.advance(4)
    plan = faults.plan_before("/x", False)
    assert plan is not None and plan.http_status == 503 and scheduled.active
    clock.advance(10)
    assert faults.rate_rules("/x", False) == []
    assert [s.id for s in faults.status()] == list(counted.ids)
    assert scheduled.fired == 1 and not scheduled.active


def test_removal_callback_sees_every_removed_fault(clock: FakeClock) -> None:
    removed: list[int] = []
    faults = FaultSet(clock, random.Random(1), on_remove=removed.append)
    faults.add("reset@/x=next:1,rate_limit=5/s~10s,hang@/z=1")
    faults.plan_before("/x", False)
    assert removed == [1]
    clock.advance(10)
    faults.rate_rules("/y", False)
    assert removed == [1, 2]
    faults.clear()
    assert removed == [1, 2, 3]


def test_lost_and_late_responses_skip_rejected_answers(clock: FakeClock) -> None:
    faults = fault_set(clock)
    lost = faults.add("lost_response=next:1")
    late = faults.add("late_response=30s:next:1")
    assert faults.plan_after("/v5/order/create", True, ok=False) is None
    assert lost.fired == 0 and late.fired == 0 and lost.active and late.active
    with faults.add("malformed=1") as malformed:
        plan = faults.plan_after("/v5/order/create", True, ok=False)
        assert plan is not None and plan.malformed and malformed.fired == 1
    plan = faults.plan_after("/v5/order/create", True, ok=True)
    assert plan is not None and plan.lost and lost.fired == 1
    plan = faults.plan_after("/v5/order/create", True)
    assert plan is not None and plan.late == 30.0 and late.fired == 1
