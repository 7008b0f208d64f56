"""Hostile review of the health service: 1,000-check graphs, hostile check results."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from hypothesis import HealthCheck as HypothesisHealthCheck
from hypothesis import given, settings
from hypothesis import strategies as st

from virtuoso_resilience.clock import FakeClock
from virtuoso_resilience.health import (
    CheckResult,
    HealthCheckConfig,
    HealthService,
    ServiceStatus,
    SimpleHealthCheck,
    _graph,
)
from virtuoso_resilience.health._graph import evaluate

N = 300


class Flip:
    """A check function whose answer the test sets."""

    def __init__(self, value: object = True) -> None:
        self.value = value

    def __call__(self) -> object:
        return self.value


def _counting(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Count node resolutions in the graph code (how much work a refresh does)."""
    calls = [0]
    original = _graph._resolve

    def counted(*args: Any) -> Any:
        calls[0] += 1
        return original(*args)

    monkeypatch.setattr(_graph, "_resolve", counted)
    return calls


async def _flat_service(flips: list[Flip]) -> HealthService:
    svc = HealthService(clock=FakeClock())
    for i, flip in enumerate(flips):
        svc.register_health_check(
            SimpleHealthCheck(f"c{i}", flip, HealthCheckConfig(failure_threshold=1))
        )
    await svc.run_checks()
    return svc


async def test_steady_round_of_many_checks_does_not_reevaluate_the_graph(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Defect: every run of every check re-evaluated the whole graph, so one
    round of N unchanged checks cost N whole-graph evaluations on the event
    loop (1,000 checks: 3.5 s per round)."""
    svc = await _flat_service([Flip() for _ in range(N)])
    assert svc.get_overall_status() is ServiceStatus.HEALTHY
    calls = _counting(monkeypatch)
    await svc.run_checks()
    assert svc.get_overall_status() is ServiceStatus.HEALTHY
    assert calls[0] == 0


async def test_one_change_evaluates_only_what_it_affects(monkeypatch: pytest.MonkeyPatch) -> None:
    flips = [Flip() for _ in range(N)]
    svc = await _flat_service(flips)
    calls = _counting(monkeypatch)
    flips[7].value = False
    await svc.run_check("c7")
    assert svc.get_status("c7") is ServiceStatus.UNHEALTHY
    assert svc.get_overall_status() is ServiceStatus.DEGRADED
    assert svc.root_cause() == "c7"
    assert calls[0] <= 3  # c7 alone, not all N


async def test_thousand_check_chain_is_right() -> None:
    svc = HealthService(clock=FakeClock())
    flips = [Flip() for _ in range(1000)]
    for i in range(1000):
        deps = (f"n{i + 1}",) if i < 999 else ()
        svc.register_health_check(
            SimpleHealthCheck(
                f"n{i}", flips[i], HealthCheckConfig(depends_on=deps, failure_threshold=1)
            )
        )
    for i in (0, 500, 998):
        await svc.run_check(f"n{i}")
    assert svc.get_status("n0") is ServiceStatus.UNKNOWN  # n1 was never run
    flips[999].value = False
    await svc.run_check("n999")
    assert svc.get_status("n0") is ServiceStatus.DEGRADED
    assert svc.root_cause("n0") == "n999"
    svc.unregister_health_check("n999")
    assert svc.get_status("n0") is ServiceStatus.UNKNOWN
    assert svc.root_cause("n0") == "n999"
    json.dumps(svc.snapshot(), allow_nan=False)


_OPS = st.lists(
    st.tuples(
        st.sampled_from(["register", "unregister", "flip", "critical"]),
        st.integers(0, 11),
        st.sampled_from([True, False, ServiceStatus.DEGRADED, ServiceStatus.CRITICAL]),
        st.lists(st.integers(0, 11), max_size=3),
    ),
    max_size=40,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HypothesisHealthCheck.too_slow])
@given(_OPS)
async def test_incremental_graph_matches_a_full_evaluation(ops: list[Any]) -> None:
    """The incremental refresh gives what evaluating the whole graph gives."""
    svc = HealthService(clock=FakeClock())
    flips: dict[str, Flip] = {}
    for op, index, value, deps in ops:
        name = f"c{index}"
        if op == "register" and name not in svc.checks:
            flips[name] = Flip(value)
            # Dependencies only on higher indices: acyclic by construction.
            depends_on = tuple(dict.fromkeys(f"c{d}" for d in deps if d > index))
            svc.register_health_check(
                SimpleHealthCheck(
                    name, flips[name], HealthCheckConfig(depends_on=depends_on, failure_threshold=1)
                )
            )
        elif op == "unregister" and name in svc.checks:
            svc.unregister_health_check(name)
        elif op == "flip" and name in svc.checks:
            flips[name].value = value
            await svc.run_check(name)
        elif op == "critical" and name in svc.checks:
            config = svc.get_check(name).config
            config.critical = not config.critical
        _assert_matches_full_evaluation(svc)
    await svc.stop()


def _assert_matches_full_evaluation(svc: HealthService) -> None:
    checks = svc.checks
    graph = {name: check.config.depends_on for name, check in checks.items()}
    own = {name: svc._entries[name].own_status() for name in checks}
    full = evaluate(graph, own)
    for name in checks:
        assert svc.get_status(name) is full[name][0], name
        assert svc.root_cause(name) == full[name][1], name
    overall, root = _graph.overall_status(
        (full[name], check.config.critical) for name, check in checks.items()
    )
    assert svc.get_overall_status() is overall
    assert svc.root_cause() == root


# ------------------------------------------------------------- hostile results

_TOKEN = "T0KEN-8f3a9c"
_WEBHOOK = f"https://discord.com/api/webhooks/123456/{_TOKEN}"


def _hostile_result() -> CheckResult:
    return CheckResult(
        ServiceStatus.UNHEALTHY,
        f"upstream said: {_WEBHOOK} api_key={_TOKEN} " + "y" * 1_000_000,
        {
            "ratio": float("nan"),
            "limit": float("inf"),
            "nested": {"low": float("-inf"), "list": [1.0, float("nan")]},
            "body": "z" * 1_000_000,
        },
    )


async def test_check_result_message_and_details_are_safe_everywhere(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Defect: a check's own CheckResult went out untouched: its 1 MB message
    (with a webhook token) was logged whole and copied into snapshot() and the
    health JSON, and NaN in its details made snapshot() not strict JSON."""
    svc = HealthService(clock=FakeClock())

    async def check() -> CheckResult:
        return _hostile_result()

    svc.register_health_check(
        SimpleHealthCheck("upstream", check, HealthCheckConfig(failure_threshold=1))
    )
    with caplog.at_level(logging.DEBUG):
        await svc.run_checks()
    assert svc.get_status("upstream") is ServiceStatus.UNHEALTHY
    snapshot = json.dumps(svc.snapshot(), allow_nan=False)
    health = json.dumps(svc.to_health_json(), allow_nan=False)
    report = json.dumps(svc.report().as_dict(), allow_nan=False)
    for text in (snapshot, health, report, caplog.text):
        assert _TOKEN not in text
        assert len(text) < 20_000
    assert "discord.com" in snapshot  # the host stays: it says where
    await svc.stop()


def test_ordinary_check_result_is_kept_as_is() -> None:
    from virtuoso_resilience.health._checks import to_result

    result = CheckResult(ServiceStatus.DEGRADED, "slow", {"p99": 1.5, "hosts": ["a", "b"]})
    assert to_result(result, "x") is result


async def test_a_shared_check_config_forgets_dropped_checks() -> None:
    """Defect: the service subscribed a callable object (held strongly by the
    config), so a HealthCheckConfig shared by checks that come and go kept
    one dead observer per registration forever, each assignment calling all."""
    import gc

    shared = HealthCheckConfig(interval=5.0)
    for i in range(200):
        svc = HealthService(clock=FakeClock())
        svc.register_health_check(SimpleHealthCheck(f"c{i}", Flip(), shared))
        if i % 2:
            svc.unregister_health_check(f"c{i}")
        del svc
    gc.collect()
    shared.interval = 6.0  # prunes the dead
    assert len(shared._observers) == 0


async def test_a_shared_check_config_still_reaches_live_checks() -> None:
    shared = HealthCheckConfig(interval=5.0, failure_threshold=1)
    svc = HealthService(clock=FakeClock())
    flips = [Flip(False), Flip()]
    svc.register_health_check(SimpleHealthCheck("a", flips[0], shared))
    svc.register_health_check(SimpleHealthCheck("b", flips[1], shared))
    await svc.run_checks()
    assert svc.get_overall_status() is ServiceStatus.DEGRADED
    shared.critical = True  # reaches both checks at once
    assert svc.get_status("a") is ServiceStatus.CRITICAL
    assert svc.get_overall_status() is ServiceStatus.CRITICAL
    await svc.stop()
