"""HealthService: thresholds, timeouts, errors, metrics, monitoring, lifecycle."""

from __future__ import annotations

import asyncio
import json
import logging
import math
from typing import Any

import pytest

from virtuoso_resilience.clock import FakeClock
from virtuoso_resilience.errors import ConfigurationError
from virtuoso_resilience.health import (
    CheckResult,
    HealthCheck,
    HealthCheckConfig,
    HealthService,
    ServiceStatus,
    SimpleHealthCheck,
)

S = ServiceStatus


def simple(name: str, func: Any, **config: Any) -> SimpleHealthCheck:
    return SimpleHealthCheck(name, func, HealthCheckConfig(name=name, **config))


async def _settle(rounds: int = 40) -> None:
    """Let ready tasks run (for tests that make their own event loops)."""
    for _ in range(rounds):
        await asyncio.sleep(0)


async def statuses(service: HealthService, name: str, runs: int) -> list[S]:
    seen = []
    for _ in range(runs):
        seen.append((await service.run_check(name)).status)
    return seen


# ------------------------------------------------------------------ thresholds


async def test_unknown_until_first_run(service: HealthService, script: Any) -> None:
    assert service.get_overall_status() is S.HEALTHY  # nothing registered
    service.register_health_check(simple("exchange", script(True)))
    assert service.get_status("exchange") is S.UNKNOWN
    assert service.get_overall_status() is S.UNKNOWN
    assert service.root_cause() == "exchange"
    await service.run_check("exchange")
    assert service.get_status("exchange") is S.HEALTHY
    assert service.get_status() is S.HEALTHY
    assert service.root_cause() is None


async def test_failure_threshold_degrades_then_fails(service: HealthService, script: Any) -> None:
    service.register_health_check(simple("x", script(False), failure_threshold=3))
    assert await statuses(service, "x", 4) == [S.DEGRADED, S.DEGRADED, S.UNHEALTHY, S.UNHEALTHY]
    # Not critical: the failed check only degrades the service as a whole.
    assert service.get_overall_status() is S.DEGRADED


async def test_flapping_never_reaches_the_threshold(service: HealthService, script: Any) -> None:
    service.register_health_check(
        simple("x", script(False, False, True, False, False, True, False), failure_threshold=3)
    )
    assert await statuses(service, "x", 7) == [
        S.DEGRADED,
        S.DEGRADED,
        S.HEALTHY,
        S.DEGRADED,
        S.DEGRADED,
        S.HEALTHY,
        S.DEGRADED,
    ]
    m = service.report().checks["x"].metrics
    assert (m.total_runs, m.successes, m.failures, m.consecutive_failures) == (7, 2, 5, 1)


async def test_success_threshold_holds_unhealthy_until_met(
    service: HealthService, script: Any
) -> None:
    outcomes = script(False, False, True, False, True, True, True)
    service.register_health_check(simple("x", outcomes, failure_threshold=2, success_threshold=2))
    assert await statuses(service, "x", 7) == [
        S.DEGRADED,
        S.UNHEALTHY,
        S.UNHEALTHY,  # one success of two needed
        S.UNHEALTHY,  # a failure while tripped keeps it tripped
        S.UNHEALTHY,
        S.HEALTHY,
        S.HEALTHY,
    ]


async def test_warning_results_count_as_successes(service: HealthService, script: Any) -> None:
    service.register_health_check(
        simple("x", script(False, S.DEGRADED, False, S.UNKNOWN), failure_threshold=2)
    )
    assert await statuses(service, "x", 4) == [S.DEGRADED, S.DEGRADED, S.DEGRADED, S.UNKNOWN]
    m = service.report().checks["x"].metrics
    assert (m.successes, m.failures) == (2, 2)


async def test_critical_check_is_critical_once_tripped(service: HealthService, script: Any) -> None:
    service.register_health_check(simple("db", script(False), critical=True, failure_threshold=2))
    assert await statuses(service, "db", 2) == [S.DEGRADED, S.CRITICAL]
    assert service.get_overall_status() is S.CRITICAL


async def test_check_reporting_critical_itself(service: HealthService, script: Any) -> None:
    service.register_health_check(simple("x", script(S.CRITICAL), failure_threshold=1))
    assert await statuses(service, "x", 1) == [S.CRITICAL]


async def test_critical_flag_changed_at_run_time_applies_at_once(
    service: HealthService, script: Any
) -> None:
    check = service.register_health_check(simple("x", script(False), failure_threshold=1))
    await service.run_check("x")
    assert service.get_status("x") is S.UNHEALTHY
    check.config.critical = True
    assert service.get_status("x") is S.CRITICAL
    check.config.critical = False
    assert service.get_status("x") is S.UNHEALTHY


# ------------------------------------------------------------ errors & timeouts


async def test_check_that_raises_is_a_failed_check(service: HealthService, script: Any) -> None:
    service.register_health_check(
        simple("x", script(ConnectionError("reset by peer")), failure_threshold=1)
    )
    report = await service.run_check("x")
    assert report.status is S.UNHEALTHY
    assert report.result is not None
    assert report.result.message == "ConnectionError: reset by peer"
    assert report.metrics.failure_patterns == {"ConnectionError": 1}
    assert report.metrics.last_error == "ConnectionError: reset by peer"


async def test_raising_check_does_not_crash_the_monitor(
    service: HealthService, clock: FakeClock, settle: Any, script: Any
) -> None:
    flaky = script(RuntimeError("boom"), ValueError("bad"), True)
    service.register_health_check(simple("x", flaky, interval=10.0, failure_threshold=5))
    await service.start()
    await settle()
    for _ in range(2):
        clock.advance(10)
        await settle()
    assert flaky.calls == 3
    report = service.report().checks["x"]
    assert report.status is S.HEALTHY
    assert report.metrics.failure_patterns == {"RuntimeError": 1, "ValueError": 1}


async def test_hanging_check_is_cut_off_at_its_timeout(
    service: HealthService, clock: FakeClock, settle: Any
) -> None:
    cancelled = asyncio.Event()

    async def hang() -> bool:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return True  # pragma: no cover

    service.register_health_check(simple("hang", hang, timeout=2.5, failure_threshold=1))
    run = asyncio.create_task(service.run_check("hang"))
    await settle()
    assert not run.done()
    clock.advance(2.4)
    await settle()
    assert not run.done()
    clock.advance(0.1)
    report = await run
    assert report.status is S.UNHEALTHY
    assert report.result is not None
    assert report.result.message == "timed out after 2.5s"
    assert report.metrics.failure_patterns == {"timeout": 1}
    assert report.last_duration == pytest.approx(2.5)
    await settle()
    assert cancelled.is_set()


def cancellation_ignoring_check(release: asyncio.Event) -> Any:
    """A check that swallows every cancellation until ``release`` is set."""

    async def stubborn() -> bool:
        while not release.is_set():
            try:
                await release.wait()
            except asyncio.CancelledError:
                continue
        return True

    return stubborn


async def test_check_that_ignores_cancellation_is_abandoned(
    service: HealthService, clock: FakeClock, settle: Any
) -> None:
    release = asyncio.Event()

    stubborn = cancellation_ignoring_check(release)

    service.register_health_check(simple("stubborn", stubborn, timeout=1.0, failure_threshold=1))
    run = asyncio.create_task(service.run_check("stubborn"))
    await settle()
    clock.advance(1.0)
    report = await run
    assert report.status is S.UNHEALTHY
    release.set()
    await settle()


class BrokenContract(HealthCheck):
    """A subclass whose check() is not even async and returns a bool."""

    def check(self) -> Any:
        return False


async def test_tolerates_a_sync_check_method(service: HealthService) -> None:
    service.register_health_check(BrokenContract("broken", HealthCheckConfig(failure_threshold=1)))
    assert (await service.run_check("broken")).status is S.UNHEALTHY


# ----------------------------------------------------------------- metrics


async def test_metrics(service: HealthService, clock: FakeClock, settle: Any) -> None:
    durations = [0.1, 0.2, 0.3, 0.4, 5.0]
    outcomes = iter([True, True, False, True, True])

    async def timed() -> bool:
        await clock.sleep(durations[0])
        return next(outcomes)

    service.register_health_check(simple("x", timed, failure_threshold=5))
    while durations:
        run = asyncio.create_task(service.run_check("x"))
        await settle()
        clock.advance(durations.pop(0))
        await run
    m = service.report().checks["x"].metrics
    assert m.total_runs == 5
    assert (m.successes, m.failures) == (4, 1)
    assert m.success_rate == pytest.approx(0.8)
    assert m.consecutive_successes == 2
    assert m.consecutive_failures == 0
    assert m.failure_patterns == {"failed": 1}
    assert m.last_error == "check returned False"
    assert m.last_failure_at is not None
    assert m.last_success_at is not None
    assert m.last_success_at > m.last_failure_at
    rt = m.response_time
    assert rt.count == 5
    assert rt.min == pytest.approx(0.1)
    assert rt.max == pytest.approx(5.0)
    assert rt.p95 == pytest.approx(5.0)
    assert rt.avg == pytest.approx((0.1 + 0.2 + 0.3 + 0.4 + 5.0) / 5)


async def test_response_time_window_is_bounded(clock: FakeClock, script: Any) -> None:
    service = HealthService(clock=clock, metrics_window=3)
    service.register_health_check(simple("x", script(True)))
    for _ in range(10):
        await service.run_check("x")
    m = service.report().checks["x"].metrics
    assert m.total_runs == 10
    assert m.response_time.count == 3
    await service.stop()


def test_service_arguments_are_validated() -> None:
    with pytest.raises(ConfigurationError, match="listener_timeout"):
        HealthService(listener_timeout=0)
    with pytest.raises(ConfigurationError, match="metrics_window"):
        HealthService(metrics_window=0)


@pytest.mark.parametrize(
    ("argument", "value"),
    [
        ("listener_timeout", math.inf),
        ("listener_timeout", -math.inf),
        ("listener_timeout", math.nan),
        ("listener_timeout", -0.0),
        ("listener_timeout", 1e10),  # beyond MAX_SECONDS: would overflow timers
        ("listener_timeout", True),
        ("listener_timeout", "5"),
        ("listener_timeout", None),
        ("metrics_window", True),
        ("metrics_window", 2.0),
        ("metrics_window", "100"),
        ("metrics_window", 10**100),  # would overflow the deque at registration
        ("metrics_window", -1),
    ],
)
def test_service_arguments_refuse_what_the_config_types_refuse(
    argument: str, value: object
) -> None:
    with pytest.raises(ConfigurationError) as caught:
        HealthService(**{argument: value})  # type: ignore[arg-type]
    [error] = caught.value.errors
    assert (error.model, error.field) == ("HealthService", argument)
    assert str(caught.value).startswith(f"HealthService.{argument}=")
    assert "must be" in error.allowed


def test_listener_timeout_is_validated_on_assignment_too() -> None:
    service = HealthService(listener_timeout=5.0)
    for bad in (math.inf, math.nan, 0.0, True, "5"):
        with pytest.raises(ConfigurationError, match=r"HealthService\.listener_timeout"):
            service.listener_timeout = bad  # type: ignore[assignment]
        assert service.listener_timeout == 5.0
    service.listener_timeout = 2
    assert service.listener_timeout == 2.0
    assert service._listeners.timeout == 2.0  # the listeners' cut-off follows
    with pytest.raises(TypeError, match="clock"):
        HealthService(clock=object())  # type: ignore[arg-type]


# --------------------------------------------------------------- monitoring


async def test_background_monitoring_runs_each_check_on_its_interval(
    service: HealthService, clock: FakeClock, settle: Any, script: Any
) -> None:
    fast, slow = script(True), script(True)
    service.register_health_check(simple("fast", fast, interval=10.0))
    service.register_health_check(simple("slow", slow, interval=25.0))
    await service.start()
    await settle()
    assert (fast.calls, slow.calls) == (1, 1)  # both run at start
    seen = []
    for _ in range(10):
        clock.advance(5)
        await settle()
        seen.append((clock.now(), fast.calls, slow.calls))
    assert seen[-1] == (50.0, 6, 3)
    assert (20.0, 3, 1) in seen
    assert (25.0, 3, 2) in seen


async def test_reading_health_never_runs_checks(service: HealthService, script: Any) -> None:
    func = script(True)
    service.register_health_check(simple("x", func))
    service.get_status()
    service.get_status("x")
    service.report()
    service.snapshot()
    service.to_health_json()
    repr(service)
    assert func.calls == 0


async def test_runtime_interval_change_takes_effect_at_once(
    service: HealthService, clock: FakeClock, settle: Any, script: Any
) -> None:
    func = script(True)
    check = service.register_health_check(simple("exchange", func, interval=60.0))
    await service.start()
    await settle()
    assert func.calls == 1
    check.config.interval = 30.0  # while the monitor sleeps towards t=60
    await settle()
    clock.advance(30)
    await settle()
    assert func.calls == 2  # ran at t=30, not t=60
    check.config.interval = 120.0
    await settle()
    clock.advance(90)  # t=120: the old interval would have run it
    await settle()
    assert func.calls == 2
    clock.advance(30)  # t=150 = 30 + 120
    await settle()
    assert func.calls == 3
    with pytest.raises(ConfigurationError):
        check.config.interval = -1.0
    assert check.config.interval == 120.0


async def test_replacing_the_config_object_is_picked_up(
    service: HealthService, clock: FakeClock, settle: Any, script: Any
) -> None:
    func = script(True)
    check = service.register_health_check(simple("x", func, interval=60.0))
    await service.start()
    await settle()
    check.config = HealthCheckConfig(interval=10.0)
    clock.advance(60)
    await settle()
    assert func.calls == 2
    check.config.interval = 5.0  # the new object is watched too
    await settle()
    clock.advance(5)
    await settle()
    assert func.calls == 3


async def test_start_stop_restart(
    service: HealthService, clock: FakeClock, settle: Any, script: Any
) -> None:
    func = script(True)
    service.register_health_check(simple("x", func, interval=10.0))
    await service.start()
    await service.start()  # idempotent
    await settle()
    assert service.running
    assert func.calls == 1
    await service.stop()
    await service.stop()  # idempotent
    assert not service.running
    assert clock.sleepers == 0
    clock.advance(100)
    await settle()
    assert func.calls == 1  # nothing runs while stopped
    assert service.get_status("x") is S.HEALTHY  # cached results survive
    await service.start()
    await settle()
    assert func.calls == 2
    clock.advance(10)
    await settle()
    assert func.calls == 3
    assert "running=True" in repr(service)


async def test_stop_cancels_a_run_in_progress_without_recording_it(
    service: HealthService, clock: FakeClock, settle: Any
) -> None:
    cancelled = asyncio.Event()

    async def slow() -> bool:
        try:
            await clock.sleep(5)
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return True  # pragma: no cover

    service.register_health_check(simple("slow", slow, timeout=30.0))
    await service.start()
    await settle()
    await service.stop()
    await settle()
    assert cancelled.is_set()
    report = service.report().checks["slow"]
    assert report.metrics.total_runs == 0  # a cancellation is never a failure
    assert report.status is S.UNKNOWN
    assert clock.sleepers == 0


async def test_cancelling_a_caller_of_run_check_propagates(
    service: HealthService, clock: FakeClock, settle: Any
) -> None:
    async def slow() -> bool:
        await clock.sleep(5)
        return True

    service.register_health_check(simple("slow", slow))
    caller = asyncio.create_task(service.run_check("slow"))
    await settle()
    caller.cancel()
    with pytest.raises(asyncio.CancelledError):
        await caller
    # The shared run goes on and is recorded for everyone else.
    clock.advance(5)
    await settle()
    assert service.report().checks["slow"].metrics.total_runs == 1
    assert service.get_status("slow") is S.HEALTHY


async def test_register_while_running_starts_at_once_and_unregister_stops(
    service: HealthService, clock: FakeClock, settle: Any, script: Any
) -> None:
    await service.start()
    func = script(True)
    service.register_health_check(simple("late", func, interval=10.0))
    await settle()
    assert func.calls == 1
    assert service.unregister_health_check("late").name == "late"
    clock.advance(50)
    await settle()
    assert func.calls == 1
    assert "late" not in service.checks
    with pytest.raises(KeyError, match="no health check named 'late'"):
        service.get_check("late")


async def test_duplicate_names_are_rejected(service: HealthService) -> None:
    service.register_health_check(simple("x", lambda: True))
    with pytest.raises(ConfigurationError, match="already registered"):
        service.register_health_check(simple("x", lambda: True))
    with pytest.raises(TypeError):
        service.register_health_check(object())  # type: ignore[arg-type]


async def test_many_checks_concurrently(
    service: HealthService, clock: FakeClock, settle: Any
) -> None:
    calls: dict[str, int] = {}
    in_flight = 0
    peak = 0

    def make(name: str) -> Any:
        async def check() -> bool:
            nonlocal in_flight, peak
            calls[name] = calls.get(name, 0) + 1
            in_flight += 1
            peak = max(peak, in_flight)
            try:
                await clock.sleep(1.0)
            finally:
                in_flight -= 1
            return int(name[1:]) % 10 != 0  # every tenth check fails

        return check

    n = 200
    for i in range(n):
        service.register_health_check(
            simple(f"c{i}", make(f"c{i}"), interval=30.0, failure_threshold=1)
        )
    await service.start()
    await settle()
    assert peak == n  # all running at once on the one loop
    # An on-demand run while the background runs are in flight joins them.
    joined = asyncio.create_task(service.run_checks())
    await settle()
    clock.advance(1.0)
    await settle(80)
    report = await joined
    assert all(count == 1 for count in calls.values())
    assert len(calls) == n
    assert report.status is S.DEGRADED  # none of them is critical
    assert sum(1 for c in report.checks.values() if c.status is S.UNHEALTHY) == n // 10
    clock.advance(29.0)
    await settle(80)
    clock.advance(1.0)
    await settle(80)
    assert all(count == 2 for count in calls.values())


async def test_run_check_joins_a_run_in_progress(
    service: HealthService, clock: FakeClock, settle: Any
) -> None:
    calls = 0

    async def slow() -> bool:
        nonlocal calls
        calls += 1
        await clock.sleep(1)
        return True

    service.register_health_check(simple("x", slow))
    runs = [asyncio.create_task(service.run_check("x")) for _ in range(5)]
    await settle()
    clock.advance(1)
    reports = await asyncio.gather(*runs)
    assert calls == 1
    assert {r.metrics.total_runs for r in reports} == {1}


# ------------------------------------------------------------------ output


async def test_snapshot_is_json_ready(service: HealthService, script: Any) -> None:
    service.register_health_check(
        simple("exchange", script(CheckResult(S.DEGRADED, "slow", {"latency_ms": 900})))
    )
    service.register_health_check(simple("market_data", script(True), depends_on=("exchange",)))
    await service.run_checks()
    snap = json.loads(json.dumps(service.snapshot()))
    assert snap["overall_status"] == "degraded"
    assert snap["ietf_status"] == "warn"
    assert snap["root_cause"] == "exchange"
    assert snap["missing_dependencies"] == []
    exchange = snap["checks"]["exchange"]
    assert exchange["status"] == "degraded"
    assert exchange["message"] == "slow"
    assert exchange["details"] == {"latency_ms": 900}
    assert exchange["dependants"] == ["market_data"]
    assert exchange["config"]["interval"] == 60.0
    assert exchange["metrics"]["total_runs"] == 1
    md = snap["checks"]["market_data"]
    assert md["status"] == "degraded"
    assert md["own_status"] == "healthy"
    assert md["depends_on"] == ["exchange"]
    assert md["root_cause"] == "exchange"
    assert md["output"] == "affected by dependency 'exchange'"


async def test_health_json_follows_the_draft(service: HealthService, script: Any) -> None:
    service.register_health_check(
        simple("exchange", script(False), failure_threshold=1, critical=True)
    )
    service.register_health_check(simple("cache", script(True)))
    service.register_health_check(simple("never_run", script(True)))
    await service.run_check("exchange")
    await service.run_check("cache")
    body = json.loads(json.dumps(service.to_health_json(description="market data", version="1")))
    assert body["status"] == "fail"
    assert body["version"] == "1"
    assert body["description"] == "market data"
    assert body["output"] == "critical; root cause: exchange"
    assert set(body["checks"]) == {
        "exchange:responseTime",
        "cache:responseTime",
        "never_run:responseTime",
    }
    [exchange] = body["checks"]["exchange:responseTime"]
    assert exchange["status"] == "fail"
    assert exchange["componentType"] == "component"
    assert exchange["observedUnit"] == "ms"
    assert exchange["output"] == "check returned False"
    assert exchange["time"].endswith("Z")
    [cache] = body["checks"]["cache:responseTime"]
    assert cache["status"] == "pass"
    assert "output" not in cache
    [never] = body["checks"]["never_run:responseTime"]
    assert never["status"] == "warn"
    assert never["output"] == "not checked yet"
    assert "observedValue" not in never


async def test_repr_shows_live_state(service: HealthService, script: Any) -> None:
    service.register_health_check(simple("a", script(True)))
    service.register_health_check(simple("b", script(False)))
    await service.run_checks()
    assert repr(service) == (
        "<HealthService status=degraded checks=2 (healthy=1, degraded=1) running=False "
        "listeners=0 tasks=0>"
    )


async def test_status_changes_are_logged(
    service: HealthService, script: Any, caplog: pytest.LogCaptureFixture
) -> None:
    service.register_health_check(simple("x", script(False), failure_threshold=1))
    with caplog.at_level(logging.INFO, logger="virtuoso_resilience.health"):
        await service.run_check("x")
        await service.run_check("x")
    messages = [r.getMessage() for r in caplog.records]
    assert "health check 'x': unknown -> unhealthy (check returned False)" in messages
    assert sum("health check 'x'" in m for m in messages) == 1  # only transitions


# ------------------------------------------------------- loops and cleanup


def test_start_in_a_new_event_loop_after_the_old_one_ended(clock: FakeClock) -> None:
    calls: list[float] = []

    def check() -> bool:
        calls.append(clock.now())
        return True

    service = HealthService(clock=clock)
    service.register_health_check(simple("x", check, interval=10.0))

    async def first_loop() -> None:
        await service.start()
        await _settle()
        assert service.running
        # The loop ends without stop() (an exception, Ctrl-C...).

    asyncio.run(first_loop())
    assert calls == [0.0]
    assert not service.running  # its loop is gone: nothing monitors any more

    async def second_loop() -> None:
        await service.start()  # not a no-op: monitoring starts in this loop
        await _settle()
        assert service.running
        assert calls == [0.0, 0.0]
        clock.advance(10.0)
        await _settle()
        assert calls == [0.0, 0.0, 10.0]
        await service.stop()
        assert not service.running
        assert "tasks=0" in repr(service)

    asyncio.run(second_loop())
    assert clock.sleepers == 0


def test_start_in_another_loop_while_the_first_one_is_alive(clock: FakeClock) -> None:
    calls: list[float] = []
    service = HealthService(clock=clock)
    service.register_health_check(simple("x", lambda: calls.append(clock.now()), interval=10.0))
    old = asyncio.new_event_loop()
    try:
        old.run_until_complete(service.start())
        old.run_until_complete(_settle())  # the monitor ran and sleeps in the old loop
        assert calls == [0.0]
        old_tasks = [t for t in asyncio.all_tasks(old) if not t.done()]
        assert old_tasks

        async def new_loop() -> None:
            await service.start()
            await _settle()
            assert calls == [0.0, 0.0]
            await service.stop()

        asyncio.run(new_loop())
        old.run_until_complete(_settle())  # the old loop cancels what it still had
        assert all(t.cancelled() for t in old_tasks)
    finally:
        old.close()
    clock.advance(100.0)
    assert calls == [0.0, 0.0]
    assert clock.sleepers == 0


def test_stop_in_a_new_loop_after_the_old_one_ended(clock: FakeClock, script: Any) -> None:
    service = HealthService(clock=clock)
    service.register_health_check(simple("x", script(True), interval=10.0))
    asyncio.run(service.start())
    asyncio.run(service.stop())  # no error about futures of another loop
    assert not service.running


async def test_stop_waits_for_a_cancelled_checks_cleanup(
    service: HealthService, clock: FakeClock, settle: Any
) -> None:
    state: list[str] = []

    async def check() -> bool:
        try:
            await clock.sleep(100)
        finally:
            state.append("cleanup started")
            for _ in range(5):  # e.g. closing a connection
                await asyncio.sleep(0)
            state.append("cleanup finished")
        return True  # pragma: no cover

    service.register_health_check(simple("x", check, timeout=50.0))
    await service.start()
    await settle()
    await service.stop()
    assert state == ["cleanup started", "cleanup finished"]
    current = asyncio.current_task()
    assert [t for t in asyncio.all_tasks() if t is not current] == []
    assert "tasks=0" in repr(service)
    assert clock.sleepers == 0


async def test_stop_abandons_a_check_that_ignores_cancellation(
    service: HealthService, clock: FakeClock, settle: Any, caplog: pytest.LogCaptureFixture
) -> None:
    release = asyncio.Event()

    stubborn = cancellation_ignoring_check(release)

    service.register_health_check(simple("stubborn", stubborn, timeout=60.0))
    await service.start()
    await settle()
    try:
        stopping = asyncio.create_task(service.stop())
        await settle()
        assert not stopping.done()  # waiting (up to listener_timeout=5) for the cleanup
        with caplog.at_level(logging.WARNING, logger="virtuoso_resilience.health"):
            clock.advance(5.0)
            await stopping
        assert any("ignored cancellation for 5s" in r.getMessage() for r in caplog.records)
    finally:
        release.set()  # let it end, whatever happened above
        await settle()
    assert service.report().checks["stubborn"].metrics.total_runs == 0


# ------------------------------------------------- hostile checks (defects 5, 6)


class Fatal(BaseException):
    """A BaseException subclass that is neither an Exception nor a cancellation."""


@pytest.mark.parametrize(
    ("raised", "kind"),
    [(Fatal("boom"), "Fatal"), (GeneratorExit(), "GeneratorExit")],
)
async def test_a_base_exception_from_a_check_never_kills_its_monitor(
    service: HealthService,
    clock: FakeClock,
    settle: Any,
    script: Any,
    caplog: pytest.LogCaptureFixture,
    raised: BaseException,
    kind: str,
) -> None:
    flaky = script(True, raised, raised, True)
    service.register_health_check(
        simple("exchange", flaky, interval=10.0, failure_threshold=2, critical=True)
    )
    with caplog.at_level(logging.WARNING, logger="virtuoso_resilience.health"):
        await service.start()
        await settle()
        assert service.get_status("exchange") is S.HEALTHY
        clock.advance(10)
        await settle()
        assert service.get_status("exchange") is S.DEGRADED  # the status says so
        clock.advance(10)
        await settle()
        assert service.get_status("exchange") is S.CRITICAL
        clock.advance(10)  # the monitor is alive: the next run happens and passes
        await settle()
    assert flaky.calls == 4
    report = service.report().checks["exchange"]
    assert report.status is S.HEALTHY
    assert report.metrics.failure_patterns == {kind: 2}
    assert report.metrics.last_error is not None
    assert report.metrics.last_error.startswith(kind)
    said = [r.getMessage() for r in caplog.records]
    assert f"health check 'exchange' raised {kind} (a BaseException); a failed run" in said


async def test_a_check_that_cancels_itself_is_a_failed_run(
    service: HealthService, clock: FakeClock, settle: Any, script: Any
) -> None:
    flaky = script(asyncio.CancelledError(), True)
    service.register_health_check(simple("x", flaky, interval=10.0, failure_threshold=1))
    await service.start()
    await settle()
    report = service.report().checks["x"]
    assert report.status is S.UNHEALTHY
    assert report.metrics.failure_patterns == {"CancelledError": 1}
    clock.advance(10)  # and the monitor goes on
    await settle()
    assert service.get_status("x") is S.HEALTHY
    assert flaky.calls == 2


def _live_tasks() -> int:
    return sum(1 for t in asyncio.all_tasks() if not t.done())


async def test_a_check_that_ignores_cancellation_runs_once_at_a_time(
    service: HealthService, clock: FakeClock, settle: Any
) -> None:
    release = asyncio.Event()
    entered = 0
    stubborn_body = cancellation_ignoring_check(release)

    async def stubborn() -> bool:
        nonlocal entered
        entered += 1
        return bool(await stubborn_body())

    service.register_health_check(
        simple("stubborn", stubborn, interval=1.0, timeout=0.5, failure_threshold=1)
    )
    try:
        await _runs_once_at_a_time(service, clock, settle, release, lambda: entered)
    finally:
        release.set()  # let every stubborn run end, whatever happened above
        await settle()
    report = await service.run_check("stubborn")  # once it ended, the check runs as usual
    assert entered == 2
    assert report.status is S.HEALTHY
    assert report.metrics.abandoned_runs == 1
    assert not report.metrics.abandoned_running


async def _runs_once_at_a_time(
    service: HealthService,
    clock: FakeClock,
    settle: Any,
    release: asyncio.Event,
    entered: Any,
) -> None:
    await service.start()
    await settle()
    baseline = _live_tasks()
    counts = []
    for _ in range(30):  # 30 intervals; each used to leak one more task
        clock.advance(0.5)
        await settle()
        clock.advance(0.5)
        await settle()
        counts.append(_live_tasks())
    assert max(counts) <= baseline  # no task per interval any more
    assert entered() == 1  # at most one run of the check is ever alive
    report = service.report().checks["stubborn"]
    assert report.metrics.abandoned_runs == 1
    assert report.metrics.abandoned_running
    assert report.metrics.failure_patterns == {"timeout": 1, "abandoned": 30}
    assert report.metrics.response_time.count == 1  # runs not started are not timed
    assert report.last_duration == pytest.approx(0.5)
    assert report.status is S.UNHEALTHY
    assert report.result is not None
    assert "ignores cancellation and is still running" in report.result.message
    snap = service.snapshot()["checks"]["stubborn"]["metrics"]
    assert (snap["abandoned_runs"], snap["abandoned_running"]) == (1, True)

    # stop() does not wait listener_timeout for a run it already knows ignores
    # cancellation: it returns without the clock moving.
    stopping = asyncio.create_task(service.stop())
    await settle()
    assert stopping.done()
    await stopping
    assert clock.sleepers == 0
    assert service.report().checks["stubborn"].metrics.abandoned_running  # still alive


async def test_a_run_that_ended_on_its_cancellation_is_not_counted_as_abandoned(
    service: HealthService, clock: FakeClock, settle: Any
) -> None:
    calls = 0

    async def slow() -> bool:
        nonlocal calls
        calls += 1
        await asyncio.Event().wait()
        return True  # pragma: no cover

    service.register_health_check(simple("slow", slow, interval=1.0, timeout=0.5))
    await service.start()
    await settle()
    for _ in range(5):
        clock.advance(0.5)
        await settle()
        clock.advance(0.5)
        await settle()
    m = service.report().checks["slow"].metrics
    assert calls == 6
    assert m.abandoned_runs == 0
    assert not m.abandoned_running
    assert m.failure_patterns == {"timeout": 5}


async def test_restart_does_not_run_a_second_copy_beside_a_stubborn_run(
    service: HealthService, clock: FakeClock, settle: Any, caplog: pytest.LogCaptureFixture
) -> None:
    release = asyncio.Event()
    entered = 0
    body = cancellation_ignoring_check(release)

    async def stubborn() -> bool:
        nonlocal entered
        entered += 1
        return bool(await body())

    service.register_health_check(simple("stubborn", stubborn, interval=10.0, timeout=60.0))
    await service.start()
    await settle()
    try:
        stopping = asyncio.create_task(service.stop())  # cancels the run: it ignores it
        await settle()
        with caplog.at_level(logging.WARNING, logger="virtuoso_resilience.health"):
            clock.advance(5.0)
            await stopping
        assert service.report().checks["stubborn"].metrics.abandoned_runs == 1
        await service.start()
        await settle()
        assert entered == 1  # still the first run
        report = service.report().checks["stubborn"]
        assert report.metrics.failure_patterns == {"abandoned": 1}
        assert report.metrics.abandoned_runs == 1
    finally:
        release.set()
        await settle()
    clock.advance(10.0)
    await settle()
    assert entered == 2
    assert service.get_status("stubborn") is S.HEALTHY


async def test_stop_from_inside_a_check(
    service: HealthService, clock: FakeClock, settle: Any
) -> None:
    stopped: list[bool] = []

    async def shuts_down() -> bool:
        await service.stop()  # must neither wait for nor cancel its caller
        stopped.append(service.running)
        return True

    service.register_health_check(simple("x", shuts_down, interval=10.0))
    await service.start()
    await settle()
    assert stopped == [False]
    assert service.get_status("x") is S.HEALTHY  # the run that stopped it is recorded
    clock.advance(50)
    await settle()
    assert stopped == [False]  # nothing runs any more
    assert clock.sleepers == 0


async def test_output_says_a_cut_off_run_is_still_alive(
    service: HealthService, clock: FakeClock, settle: Any
) -> None:
    release = asyncio.Event()
    service.register_health_check(
        simple("stubborn", cancellation_ignoring_check(release), timeout=1.0, failure_threshold=1)
    )
    try:
        run = asyncio.create_task(service.run_check("stubborn"))
        await settle()
        clock.advance(1.0)
        report = await run
        assert report.output() == "timed out after 1s"  # not known to be stubborn yet
        await service.stop()  # cancels it again: now it has ignored cancellation twice
        report = service.report().checks["stubborn"]
        assert report.metrics.abandoned_runs == 1
        assert report.output() == (
            "timed out after 1s; a run that was cut off ignores cancellation and is still running"
        )
        assert service.to_health_json()["checks"]["stubborn:responseTime"][0]["output"] == (
            report.output()
        )
    finally:
        release.set()
        await settle()
    assert service.report().checks["stubborn"].output() == "timed out after 1s"


async def test_registering_again_never_starts_a_second_copy_of_a_stubborn_run(
    service: HealthService, clock: FakeClock, settle: Any
) -> None:
    release = asyncio.Event()
    entered = 0
    body = cancellation_ignoring_check(release)

    async def stubborn() -> bool:
        nonlocal entered
        entered += 1
        return bool(await body())

    def make() -> SimpleHealthCheck:
        return simple("stubborn", stubborn, timeout=1.0, failure_threshold=1)

    service.register_health_check(make())
    try:
        run = asyncio.create_task(service.run_check("stubborn"))
        await settle()
        clock.advance(1.0)
        await run
        for _ in range(3):  # unregister and register the same name again
            service.unregister_health_check("stubborn")
            service.register_health_check(make())
            report = await service.run_check("stubborn")
            assert report.metrics.failure_patterns == {"abandoned": 1}
        assert entered == 1
    finally:
        release.set()
        await settle()
    report = await service.run_check("stubborn")
    assert entered == 2
    assert report.status is S.HEALTHY
