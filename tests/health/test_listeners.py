"""Status listeners: every change once, arities, errors, hanging listeners, cleanup."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from virtuoso_resilience.clock import FakeClock
from virtuoso_resilience.health import (
    HealthChange,
    HealthCheckConfig,
    HealthService,
    ServiceStatus,
    SimpleHealthCheck,
)

S = ServiceStatus


class Switch:
    def __init__(self, value: Any = True) -> None:
        self.value = value

    def __call__(self) -> Any:
        return self.value


def add(service: HealthService, name: str, **config: Any) -> Switch:
    switch = Switch()
    config.setdefault("failure_threshold", 1)
    service.register_health_check(
        SimpleHealthCheck(name, switch, HealthCheckConfig(name=name, **config))
    )
    return switch


async def test_seed_listener_gets_each_change_once(service: HealthService, settle: Any) -> None:
    alerts: list[str] = []
    seen: list[S] = []

    async def send_alert(message: str) -> None:
        alerts.append(message)

    async def on_health_change(status: S) -> None:
        seen.append(status)
        if status == ServiceStatus.CRITICAL:
            await send_alert("System health critical!")

    service.add_status_listener(on_health_change)
    service.add_status_listener(on_health_change)  # twice is once
    exchange = add(service, "exchange", critical=True, failure_threshold=2)
    await settle()
    assert seen == [S.UNKNOWN]  # registering made the overall status unknown

    await service.run_check("exchange")  # healthy
    await service.run_check("exchange")  # healthy again: no change, no call
    exchange.value = False
    await service.run_check("exchange")  # degraded
    await service.run_check("exchange")  # critical
    await service.run_check("exchange")  # still critical
    exchange.value = True
    await service.run_check("exchange")  # healthy
    await settle()
    assert seen == [S.UNKNOWN, S.HEALTHY, S.DEGRADED, S.CRITICAL, S.HEALTHY]
    assert alerts == ["System health critical!"]


async def test_two_argument_and_sync_listeners(service: HealthService, settle: Any) -> None:
    changes: list[HealthChange] = []
    sync_seen: list[S] = []

    def with_change(status: S, change: HealthChange) -> None:
        assert status is change.current
        changes.append(change)

    service.add_status_listener(with_change)
    service.add_status_listener(sync_seen.append)
    add(service, "exchange")
    md = add(service, "market_data")
    await service.run_checks()
    md.value = False
    await service.run_check("market_data")
    await settle()
    assert [(c.previous, c.current, c.check, c.root_cause) for c in changes] == [
        (S.HEALTHY, S.UNKNOWN, "exchange", "exchange"),
        (S.UNKNOWN, S.HEALTHY, "market_data", None),
        (S.HEALTHY, S.UNHEALTHY, "market_data", "market_data"),
    ]
    assert sync_seen == [S.UNKNOWN, S.HEALTHY, S.UNHEALTHY]
    assert all(isinstance(c.at, float) for c in changes)


async def test_listener_arity_detection(service: HealthService, settle: Any) -> None:
    got: dict[str, tuple[Any, ...]] = {}

    class Handler:
        def on_change(self, status: S, change: HealthChange) -> None:
            got["method"] = (status, change)

        def __call__(self, status: S) -> None:
            got["callable"] = (status,)

    def varargs(*args: Any) -> None:
        got["varargs"] = args

    def defaulted(status: S, change: HealthChange | None = None) -> None:
        got["defaulted"] = (status, change)

    for listener in (Handler().on_change, Handler(), varargs, defaulted):
        service.add_status_listener(listener)
    add(service, "x")
    await settle()
    assert len(got["method"]) == 2
    assert got["callable"] == (S.UNKNOWN,)
    assert len(got["varargs"]) == 2
    assert isinstance(got["defaulted"][1], HealthChange)

    def no_args() -> None: ...

    with pytest.raises(TypeError, match="must accept the new status"):
        service.add_status_listener(no_args)
    with pytest.raises(TypeError, match="callable"):
        service.add_status_listener("nope")  # type: ignore[arg-type]


async def test_listener_errors_are_logged_and_ignored(
    service: HealthService, settle: Any, caplog: pytest.LogCaptureFixture
) -> None:
    good: list[S] = []

    async def bad_async(status: S) -> None:
        raise RuntimeError("async listener bug")

    def bad_sync(status: S) -> None:
        raise ValueError("sync listener bug")

    service.add_status_listener(bad_async)
    service.add_status_listener(bad_sync)
    service.add_status_listener(good.append)
    x = add(service, "x")
    with caplog.at_level(logging.WARNING, logger="virtuoso_resilience.health"):
        await service.run_check("x")
        x.value = False
        await service.run_check("x")
        await settle()
    assert good == [S.UNKNOWN, S.HEALTHY, S.UNHEALTHY]
    raised = [r for r in caplog.records if "raised; ignored" in r.getMessage()]
    assert len(raised) == 6  # two bad listeners x three changes
    assert {r.exc_info[1].args[0] for r in raised if r.exc_info and r.exc_info[1]} == {
        "async listener bug",
        "sync listener bug",
    }


async def test_hanging_listener_never_stalls_monitoring(
    service: HealthService, clock: FakeClock, settle: Any, caplog: pytest.LogCaptureFixture
) -> None:
    hung: list[S] = []
    good: list[S] = []

    async def hangs(status: S) -> None:
        hung.append(status)
        await asyncio.Event().wait()

    service.add_status_listener(hangs)
    service.add_status_listener(good.append)
    x = add(service, "x", interval=1.0)
    await service.start()
    await settle()
    flips = [False, True, False]
    for value in flips:
        x.value = value
        clock.advance(1.0)
        await settle()
    # Monitoring went on (4 runs, 4 changes seen by the good listener)...
    assert service.report().checks["x"].metrics.total_runs == 4
    assert good == [S.UNKNOWN, S.HEALTHY, S.UNHEALTHY, S.HEALTHY, S.UNHEALTHY]
    # ...while the hanging one is still on its first call (listener_timeout=5).
    assert hung == [S.UNKNOWN]
    with caplog.at_level(logging.WARNING, logger="virtuoso_resilience.health"):
        clock.advance(2.0)  # t=5: first call cut off, the next starts in order
        await settle()
    assert hung == [S.UNKNOWN, S.HEALTHY]
    assert any("timed out after 5s" in r.getMessage() for r in caplog.records)
    await service.stop()
    assert "tasks=0" in repr(service)
    assert clock.sleepers == 0


async def test_stop_cancels_pending_listener_calls(service: HealthService, settle: Any) -> None:
    cancelled = asyncio.Event()

    async def slow(status: S) -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise

    service.add_status_listener(slow)
    add(service, "x")
    await service.run_check("x")
    await settle()
    await service.stop()
    await settle()
    assert cancelled.is_set()
    assert "tasks=0" in repr(service)


async def test_remove_status_listener(service: HealthService, settle: Any) -> None:
    seen: list[S] = []
    service.add_status_listener(seen.append)
    x = add(service, "x")
    await settle()
    service.remove_status_listener(seen.append)
    x.value = False
    await service.run_check("x")
    await settle()
    assert seen == [S.UNKNOWN]
    with pytest.raises(KeyError):
        service.remove_status_listener(seen.append)


def test_changes_without_a_running_loop_are_not_delivered() -> None:
    service = HealthService()
    seen: list[S] = []
    service.add_status_listener(seen.append)
    service.register_health_check(SimpleHealthCheck("x", lambda: True))
    assert service.get_overall_status() is S.UNKNOWN
    assert seen == []
