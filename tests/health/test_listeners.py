"""Status listeners: every change once, arities, errors, hanging listeners, cleanup."""

from __future__ import annotations

import asyncio
import gc
import logging
import warnings
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
        (S.HEALTHY, S.DEGRADED, "market_data", "market_data"),
    ]
    assert sync_seen == [S.UNKNOWN, S.HEALTHY, S.DEGRADED]
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

    def status_and_varargs(status: S, *args: Any) -> None:
        got["status_and_varargs"] = (status, *args)

    def defaulted(status: S, change: HealthChange | None = None) -> None:
        got["defaulted"] = (status, change)

    for listener in (Handler().on_change, Handler(), varargs, status_and_varargs, defaulted):
        service.add_status_listener(listener)
    add(service, "x")
    await settle()
    assert len(got["method"]) == 2
    assert got["callable"] == (S.UNKNOWN,)
    assert got["varargs"] == (S.UNKNOWN,)  # a bare *args is one argument
    assert got["status_and_varargs"] == (S.UNKNOWN,)
    assert isinstance(got["defaulted"][1], HealthChange)

    def no_args() -> None: ...

    def three(status: S, change: HealthChange, extra: object) -> None: ...

    with pytest.raises(TypeError, match="must accept the new status"):
        service.add_status_listener(no_args)
    with pytest.raises(TypeError, match=r"\(status\) or \(status, change\)"):
        service.add_status_listener(three)
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
    assert good == [S.UNKNOWN, S.HEALTHY, S.DEGRADED]
    raised = [r.getMessage() for r in caplog.records if "; ignored" in r.getMessage()]
    assert len(raised) == 6  # two bad listeners x three changes
    assert set(raised) == {
        "status listener test_listener_errors_are_logged_and_ignored.<locals>.bad_async "
        "raised RuntimeError: async listener bug; ignored",
        "status listener test_listener_errors_are_logged_and_ignored.<locals>.bad_sync "
        "raised ValueError: sync listener bug; ignored",
    }
    assert all(r.exc_info is None for r in caplog.records)  # no tracebacks


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
    assert good == [S.UNKNOWN, S.HEALTHY, S.DEGRADED, S.HEALTHY, S.DEGRADED]
    # ...while the hanging one is still on its first call (listener_timeout=5).
    assert hung == [S.UNKNOWN]
    with caplog.at_level(logging.WARNING, logger="virtuoso_resilience.health"):
        clock.advance(2.0)  # t=5: first call cut off, the next starts in order
        await settle()
    assert hung == [S.UNKNOWN, S.HEALTHY]
    assert any("timed out after 5s" in r.getMessage() for r in caplog.records)
    # stop() gives the queued calls up to listener_timeout, then cancels the rest.
    clock.advance(1.0)  # t=6: the call from t=5 is cut off at t=10, the drain ends at t=11
    await settle()
    stopping = asyncio.create_task(service.stop())
    await settle()
    clock.advance(4.0)  # t=10: the next queued change is delivered during the drain
    await settle()
    assert hung == [S.UNKNOWN, S.HEALTHY, S.DEGRADED]
    assert not stopping.done()
    clock.advance(1.0)
    await stopping
    assert "tasks=0" in repr(service)
    assert clock.sleepers == 0


async def test_stop_cuts_off_listener_calls_after_listener_timeout(
    service: HealthService, clock: FakeClock, settle: Any
) -> None:
    cleanup: list[str] = []

    async def slow(status: S) -> None:
        try:
            await asyncio.Event().wait()
        finally:
            cleanup.append("started")
            for _ in range(5):  # cleanup that takes a few loop passes
                await asyncio.sleep(0)
            cleanup.append("finished")

    service.add_status_listener(slow)
    add(service, "x")
    await service.run_check("x")
    await settle()
    clock.advance(1.0)  # the first call (from t=0) is cut off at t=5, the drain at t=6
    stopping = asyncio.create_task(service.stop())
    await settle()
    assert not stopping.done()
    clock.advance(4.0)  # the second call (HEALTHY) starts, then the drain ends
    await settle()
    assert not stopping.done()
    clock.advance(1.0)
    await stopping
    # stop() returned after the cancelled call's cleanup, not before.
    assert cleanup == ["started", "finished"] * 2
    assert "tasks=0" in repr(service)
    assert clock.sleepers == 0


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


def test_changes_without_a_running_loop_reach_sync_listeners_only(
    caplog: pytest.LogCaptureFixture,
) -> None:
    service = HealthService()
    seen: list[S] = []
    async_seen: list[S] = []

    async def later(status: S) -> None:  # pragma: no cover - nothing can run it
        async_seen.append(status)

    service.add_status_listener(seen.append)
    service.add_status_listener(later)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "coroutine was never awaited"
        with caplog.at_level(logging.WARNING):
            service.register_health_check(SimpleHealthCheck("x", lambda: True))
        gc.collect()
    assert service.get_overall_status() is S.UNKNOWN
    assert seen == [S.UNKNOWN]  # the one contract: a sync listener runs at once
    assert async_seen == []  # no loop to run it on: dropped, counted and logged
    assert "async listener test_changes_without_a_running_loop" in caplog.text
    assert "skipped (no running event loop)" in caplog.text


async def test_a_change_just_before_stop_is_delivered(service: HealthService, settle: Any) -> None:
    seen: list[S] = []

    async def on_health_change(status: S) -> None:
        seen.append(status)

    x = add(service, "exchange")
    x.value = False
    service.add_status_listener(on_health_change)
    await service.run_checks()
    await settle()
    assert seen == [S.DEGRADED]
    service.get_check("exchange").config.critical = True  # CRITICAL at once...
    await service.stop()  # ...and a graceful shutdown right after
    assert seen == [S.DEGRADED, S.CRITICAL]
    assert "tasks=0" in repr(service)


async def test_changes_left_undelivered_by_stop_are_dropped(
    service: HealthService, clock: FakeClock, settle: Any
) -> None:
    seen: list[S] = []
    release = asyncio.Event()

    async def slow(status: S) -> None:
        seen.append(status)
        await release.wait()

    service.add_status_listener(slow)
    x = add(service, "x")  # UNKNOWN: the first call hangs until t=5
    await settle()
    await service.run_check("x")  # HEALTHY, queued
    x.value = False
    await service.run_check("x")  # DEGRADED, queued
    clock.advance(1.0)
    stopping = asyncio.create_task(service.stop())  # the drain ends at t=6
    await settle()
    clock.advance(4.0)  # t=5: first call cut off, HEALTHY delivered (and hangs)
    await settle()
    clock.advance(1.0)  # t=6: the drain is over, the HEALTHY call is cancelled
    await stopping
    assert seen == [S.UNKNOWN, S.HEALTHY]
    # DEGRADED had not begun: dropped with the rest of the queue, not kept
    # to be delivered stale by a later start(); the HEALTHY call cancelled
    # mid-delivery is dropped too (every event ends up counted once).
    assert "timed_out=1" in repr(service._listeners)
    assert "dropped=2" in repr(service._listeners)
    release.set()
    await service.start()
    await settle()
    assert seen == [S.UNKNOWN, S.HEALTHY]
    x.value = True
    await service.run_check("x")
    await settle()
    assert seen == [S.UNKNOWN, S.HEALTHY, S.HEALTHY]  # new changes are delivered


async def test_stop_from_inside_a_listener(service: HealthService, settle: Any) -> None:
    stopped: list[S] = []

    async def shut_down(status: S) -> None:
        if status is S.CRITICAL:
            await service.stop()
            stopped.append(status)

    service.add_status_listener(shut_down)
    x = add(service, "x", critical=True, interval=1.0)
    await service.start()
    await settle()
    x.value = False
    await service.run_check("x")
    await settle()
    assert stopped == [S.CRITICAL]  # no deadlock: stop() does not wait for its caller
    assert not service.running


async def test_decorated_one_argument_listener_gets_the_status_only(
    service: HealthService, settle: Any
) -> None:
    def log_calls(fn: Any) -> Any:  # a hand-written decorator without functools.wraps
        async def wrapper(*args: Any, **kwargs: Any) -> Any:
            return await fn(*args, **kwargs)

        return wrapper

    got: list[S] = []

    @log_calls
    async def on_health_change(status: S) -> None:
        got.append(status)

    service.add_status_listener(on_health_change)
    add(service, "x")
    await service.run_check("x")
    await settle()
    assert got == [S.UNKNOWN, S.HEALTHY]


async def test_listener_errors_never_log_secret_urls(
    service: HealthService, settle: Any, caplog: pytest.LogCaptureFixture
) -> None:
    import aiohttp
    from multidict import CIMultiDict, CIMultiDictProxy
    from yarl import URL

    webhook = URL("https://discord.com/api/webhooks/1234567890/SECRET-TOKEN-abcdef")

    class Alerts:
        def __repr__(self) -> str:
            return f"<Alerts {webhook}>"

        async def __call__(self, status: S) -> None:
            info = aiohttp.RequestInfo(webhook, "POST", CIMultiDictProxy(CIMultiDict()), webhook)
            raise aiohttp.ClientResponseError(info, (), status=404, message="Not Found")

    service.add_status_listener(Alerts())
    with caplog.at_level(logging.DEBUG, logger="virtuoso_resilience.health"):
        add(service, "x")
        await settle()
    [record] = [r for r in caplog.records if "; ignored" in r.getMessage()]
    assert record.getMessage() == (
        "status listener test_listener_errors_never_log_secret_urls.<locals>.Alerts raised "
        "ClientResponseError: 404, message='Not Found', "
        "url='https://discord.com'; ignored"
    )
    assert record.exc_info is None
    assert "SECRET" not in caplog.text
    assert "1234567890" not in caplog.text


async def test_a_sync_listener_that_changes_the_status_keeps_the_order(
    service: HealthService, settle: Any
) -> None:
    first: list[S] = []
    second: list[S] = []

    def unregisters_on_unknown(status: S) -> None:
        first.append(status)
        if status is S.UNKNOWN:
            # A change published from inside a listener: every listener must
            # still see UNKNOWN before what follows from it.
            service.unregister_health_check("x")

    service.add_status_listener(unregisters_on_unknown)
    service.add_status_listener(second.append)
    add(service, "x")
    await settle()
    assert first == [S.UNKNOWN, S.HEALTHY]
    assert second == [S.UNKNOWN, S.HEALTHY]


async def test_status_listeners_go_through_the_one_listener_contract(
    service: HealthService, clock: FakeClock, settle: Any
) -> None:
    from virtuoso_resilience._events import Listeners

    seen: list[S] = []

    async def on_change(status: S) -> None:
        seen.append(status)

    service.add_status_listener(on_change)
    hub = service._listeners
    assert isinstance(hub, Listeners)
    assert len(hub) == 1
    assert hub.timeout == 5.0
    add(service, "x")
    await settle()
    assert seen == [S.UNKNOWN]
    assert hub.stats().delivered == 1
    service.remove_status_listener(on_change)
    assert not hub
