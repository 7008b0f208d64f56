"""Circuit breaker state machine, on virtual time."""

from __future__ import annotations

import asyncio
import json
import logging
import math
from typing import Any

import ccxt
import pytest

from virtuoso_resilience import (
    CircuitBreaker,
    CircuitBreakerConfig,
    CircuitOpenError,
    CircuitState,
    ConfigurationError,
    FakeClock,
    ResilienceRegistry,
    SlidingWindowType,
)
from virtuoso_resilience._model import MAX_SECONDS
from virtuoso_resilience.policies import CallEvent, StateChangeEvent
from virtuoso_resilience.policies.circuit_breaker import grown_timeout


class Boom(ConnectionError):
    """A transient failure (an OSError: the classifier calls it transient)."""


async def ok(value: Any = "ok") -> Any:
    return value


async def fail() -> None:
    raise Boom("connection reset")


def make(clock: FakeClock, **settings: Any) -> CircuitBreaker:
    return CircuitBreaker("test", CircuitBreakerConfig(**settings), clock=clock)


async def trip(cb: CircuitBreaker, n: int) -> None:
    for _ in range(n):
        with pytest.raises(Boom):
            await cb.call_async(fail)


async def test_trips_after_consecutive_failures(clock: FakeClock) -> None:
    cb = make(clock, failure_threshold=3)
    await trip(cb, 2)
    assert cb.state is CircuitState.CLOSED
    assert await cb.call_async(ok) == "ok"  # a success resets the run
    await trip(cb, 2)
    assert cb.state is CircuitState.CLOSED
    await trip(cb, 1)
    assert cb.state is CircuitState.OPEN
    assert cb.snapshot().trips == 1


async def test_open_rejects_without_calling(clock: FakeClock) -> None:
    cb = make(clock, failure_threshold=1, timeout=60.0)
    await trip(cb, 1)
    called = False

    async def spy() -> None:
        nonlocal called
        called = True

    clock.advance(20.0)
    with pytest.raises(CircuitOpenError) as info:
        await cb.call_async(spy)
    assert not called
    err = info.value
    assert err.name == "test"
    assert err.state == "open"
    assert err.retry_after == pytest.approx(40.0)
    assert "test" in str(err) and "40.000s" in str(err)
    assert cb.snapshot().rejected == 1


async def test_recovers_through_half_open(clock: FakeClock) -> None:
    cb = make(clock, failure_threshold=2, success_threshold=2, timeout=60.0)
    await trip(cb, 2)
    clock.advance(59.9)
    with pytest.raises(CircuitOpenError):
        await cb.call_async(ok)
    clock.advance(0.1)
    assert await cb.call_async(ok) == "ok"
    assert cb.state is CircuitState.HALF_OPEN
    assert await cb.call_async(ok) == "ok"
    assert cb.state is CircuitState.CLOSED
    snap = cb.snapshot()
    assert snap.recoveries == 1
    assert snap.last_recovery_seconds == pytest.approx(60.0)
    assert snap.seconds_in_state["open"] == pytest.approx(60.0)


async def test_half_open_failure_reopens_with_growing_timeout(clock: FakeClock) -> None:
    cb = make(clock, failure_threshold=1, timeout=10.0, timeout_multiplier=2.0, max_timeout=35.0)
    await trip(cb, 1)
    assert cb.retry_after == pytest.approx(10.0)
    for expected in (20.0, 35.0, 35.0):
        clock.advance(cb.retry_after or 0.0)
        await trip(cb, 1)  # the trial call fails
        assert cb.state is CircuitState.OPEN
        assert cb.retry_after == pytest.approx(expected)
    clock.advance(35.0)
    for _ in range(3):
        await cb.call_async(ok)
    assert cb.state is CircuitState.CLOSED
    await trip(cb, 1)
    assert cb.retry_after == pytest.approx(10.0)  # growth resets after recovery


async def test_business_errors_pass_through_uncounted(clock: FakeClock) -> None:
    cb = make(clock, failure_threshold=1)

    async def broke() -> None:
        raise ccxt.InsufficientFunds("bybit not enough USDT")

    for _ in range(5):
        with pytest.raises(ccxt.InsufficientFunds):
            await cb.call_async(broke)
    assert cb.state is CircuitState.CLOSED
    snap = cb.snapshot()
    assert snap.ignored == 5 and snap.failures == 0


async def test_rate_limits_count_only_when_configured(clock: FakeClock) -> None:
    async def limited() -> None:
        raise ccxt.RateLimitExceeded("bybit too many visits")

    cb = make(clock, failure_threshold=1)
    with pytest.raises(ccxt.RateLimitExceeded):
        await cb.call_async(limited)
    assert cb.state is CircuitState.CLOSED

    cb2 = make(clock, failure_threshold=1, count_rate_limits=True)
    with pytest.raises(ccxt.RateLimitExceeded):
        await cb2.call_async(limited)
    assert cb2.state is CircuitState.OPEN
    assert cb2.snapshot().failures_by_kind == {"rate_limited": 1}


async def test_cancelled_error_is_never_classified(clock: FakeClock) -> None:
    cb = make(clock, failure_threshold=1)

    async def cancelled() -> None:
        raise asyncio.CancelledError

    with pytest.raises(asyncio.CancelledError):
        await cb.call_async(cancelled)
    assert cb.state is CircuitState.CLOSED
    assert cb.snapshot().cancelled == 1
    assert cb.snapshot().failures == 0


async def test_half_open_admits_exactly_max_calls_among_1000(clock: FakeClock) -> None:
    cb = make(clock, failure_threshold=1, timeout=5.0, half_open_max_calls=3, success_threshold=3)
    await trip(cb, 1)
    clock.advance(5.0)
    gate = asyncio.Event()
    entered = 0

    async def trial() -> str:
        nonlocal entered
        entered += 1
        await gate.wait()
        return "ok"

    tasks = [asyncio.create_task(cb.call_async(trial)) for _ in range(1000)]
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert entered == 3
    gate.set()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert sum(r == "ok" for r in results) == 3
    rejected = [r for r in results if isinstance(r, CircuitOpenError)]
    assert len(rejected) == 997
    assert all(r.state == "half_open" for r in rejected)
    assert cb.state is CircuitState.CLOSED


async def test_cancellation_mid_trial_releases_permit(clock: FakeClock) -> None:
    cb = make(clock, failure_threshold=1, timeout=5.0, half_open_max_calls=1, success_threshold=1)
    await trip(cb, 1)
    clock.advance(5.0)
    started = asyncio.Event()

    async def slow() -> str:
        started.set()
        await asyncio.sleep(3600)
        return "late"

    task = asyncio.create_task(cb.call_async(slow))
    await started.wait()
    with pytest.raises(CircuitOpenError):  # the only permit is taken
        await cb.call_async(ok)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert cb.state is CircuitState.HALF_OPEN
    assert cb.snapshot().failures == 1  # only the trip, not the cancellation
    assert await cb.call_async(ok) == "ok"  # the permit came back
    assert cb.state is CircuitState.CLOSED


async def test_max_wait_in_half_open_reopens_a_stuck_breaker(clock: FakeClock) -> None:
    cb = make(
        clock, failure_threshold=1, timeout=5.0, max_wait_in_half_open=30.0, success_threshold=1
    )
    await trip(cb, 1)
    clock.advance(5.0)
    release = asyncio.Event()

    async def stuck() -> str:
        await release.wait()
        return "late"

    hung = asyncio.create_task(cb.call_async(stuck))
    await asyncio.sleep(0)
    clock.advance(30.0)
    with pytest.raises(CircuitOpenError) as info:
        await cb.call_async(ok)
    assert info.value.state == "open"
    assert cb.state is CircuitState.OPEN
    release.set()
    assert await hung == "late"  # a late result from an old trial does not close it
    assert cb.state is CircuitState.OPEN
    clock.advance(5.0)
    assert await cb.call_async(ok) == "ok"
    assert cb.state is CircuitState.CLOSED


async def test_manual_control(clock: FakeClock) -> None:
    cb = make(clock, failure_threshold=1)
    cb.force_open()
    with pytest.raises(CircuitOpenError) as info:
        await cb.call_async(ok)
    assert info.value.retry_after is None
    clock.advance(10_000)
    with pytest.raises(CircuitOpenError):
        await cb.call_async(ok)
    cb.disable()
    await trip(cb, 10)
    assert cb.state is CircuitState.DISABLED
    assert await cb.call_async(ok) == "ok"
    cb.reset()
    assert cb.state is CircuitState.CLOSED
    assert cb.snapshot().consecutive_failures == 0


async def test_failure_rate_over_count_window(clock: FakeClock) -> None:
    cb = make(
        clock,
        failure_threshold=100,
        failure_rate_threshold=50.0,
        sliding_window_size=10,
        minimum_calls=10,
    )
    reasons: list[str] = []
    cb.add_listener(on_state_change=lambda e: reasons.append(e.reason))
    for _ in range(4):
        await cb.call_async(ok)
        await trip(cb, 1)
    assert cb.state is CircuitState.CLOSED  # 8 calls < minimum_calls
    await cb.call_async(ok)
    await trip(cb, 1)
    assert cb.state is CircuitState.OPEN  # 5/10 failed
    assert reasons == ["failure rate 50.0% >= 50% over 10 calls"]


async def test_failure_rate_over_time_window_forgets_old_calls(clock: FakeClock) -> None:
    cb = make(
        clock,
        failure_threshold=100,
        failure_rate_threshold=60.0,
        sliding_window_type=SlidingWindowType.TIME_BASED,
        sliding_window_size=10,
        minimum_calls=5,
    )
    await trip(cb, 4)
    clock.advance(11.0)  # those failures leave the window
    for _ in range(3):
        await cb.call_async(ok)
    await trip(cb, 2)
    assert cb.state is CircuitState.CLOSED  # 2/5 = 40 %
    totals = cb.window_totals()
    assert totals is not None and (totals.calls, totals.failures) == (5, 2)
    await trip(cb, 3)
    assert cb.state is CircuitState.OPEN  # 5/8 = 62.5 %


async def test_slow_call_rate(clock: FakeClock) -> None:
    cb = make(
        clock,
        slow_call_rate_threshold=50.0,
        slow_call_duration=2.0,
        sliding_window_size=4,
        minimum_calls=4,
    )

    async def slow() -> str:
        clock.advance(3.0)
        return "slow"

    await cb.call_async(ok)
    await cb.call_async(ok)
    await cb.call_async(slow)
    assert cb.state is CircuitState.CLOSED
    await cb.call_async(slow)
    assert cb.state is CircuitState.OPEN
    assert cb.snapshot().slow_calls == 2


async def test_listeners_sync_async_and_raising(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    cb = make(clock, failure_threshold=1, timeout=1.0, success_threshold=1)
    changes: list[tuple[str, str]] = []
    calls: list[CallEvent] = []
    async_seen: list[StateChangeEvent] = []

    def on_change(event: StateChangeEvent) -> None:
        changes.append((event.previous.value, event.current.value))

    async def on_change_async(event: StateChangeEvent) -> None:
        async_seen.append(event)

    def broken(event: object) -> None:
        raise RuntimeError("listener bug")

    cb.add_listener(on_state_change=on_change, on_call=calls.append)
    cb.add_listener(on_state_change=on_change_async, on_rejection=broken)
    cb.add_listener(on_state_change=broken)
    with caplog.at_level(logging.WARNING):
        await trip(cb, 1)
        with pytest.raises(CircuitOpenError):
            await cb.call_async(ok)
        clock.advance(1.0)
        await cb.call_async(ok)
        assert await cb.drain_listeners(within=1.0)
    assert changes == [("closed", "open"), ("open", "half_open"), ("half_open", "closed")]
    assert [e.current for e in async_seen] == [
        CircuitState.OPEN,
        CircuitState.HALF_OPEN,
        CircuitState.CLOSED,
    ]
    assert [c.counted for c in calls] == [True, False]
    assert "listener" in caplog.text
    cb.remove_listener(calls.append)
    await cb.call_async(ok)
    assert len(calls) == 2


async def test_async_with(clock: FakeClock) -> None:
    cb = make(clock, failure_threshold=2)
    async with cb:
        pass
    for _ in range(2):
        with pytest.raises(Boom):
            async with cb:
                raise Boom("x")
    assert cb.state is CircuitState.OPEN
    with pytest.raises(CircuitOpenError):
        async with cb:
            pytest.fail("body must not run")

    async def nested() -> None:
        async with cb:
            await asyncio.sleep(0)

    cb.reset()
    await asyncio.gather(*(nested() for _ in range(50)))
    assert cb.snapshot().successes == 51


def test_runtime_config_update_is_validated(clock: FakeClock) -> None:
    cb = make(clock)
    cb.config.failure_threshold = 8
    assert cb.config.failure_threshold == 8
    for bad in (0, -1, "8", 2.5, None):
        with pytest.raises(ConfigurationError) as info:
            cb.config.failure_threshold = bad
        message = str(info.value)
        assert "failure_threshold" in message and ">= 1" in message
        assert cb.config.failure_threshold == 8
    cb.config.max_timeout = 600.0
    with pytest.raises(ConfigurationError, match="max_timeout"):
        cb.config.timeout = 10_000.0
    assert cb.config.timeout == 60.0


async def test_runtime_update_takes_effect(clock: FakeClock) -> None:
    cb = make(clock, failure_threshold=5)
    await trip(cb, 2)
    cb.config.failure_threshold = 3
    await trip(cb, 1)
    assert cb.state is CircuitState.OPEN
    cb.reset()
    cb.config.failure_rate_threshold = 50.0
    cb.config.minimum_calls = 2
    cb.config.failure_threshold = 100
    await cb.call_async(ok)
    await trip(cb, 1)
    assert cb.state is CircuitState.OPEN


def test_repr_and_snapshot(clock: FakeClock) -> None:
    cb = make(clock, failure_threshold=3)
    text = repr(cb)
    assert text.startswith("<CircuitBreaker 'test' state=closed")
    assert "consecutive_failures=0/3" in text
    data = cb.snapshot().as_dict()
    assert data["state"] == "closed"
    assert data["config"]["failure_threshold"] == 3


async def test_repr_when_open(clock: FakeClock) -> None:
    cb = make(clock, failure_threshold=1, timeout=60.0)
    await trip(cb, 1)
    assert "state=open" in repr(cb) and "retry_after=60.000s" in repr(cb)


async def test_registry_and_seed_usage() -> None:
    registry = ResilienceRegistry(clock=FakeClock())
    config = CircuitBreakerConfig(name="bybit_api", failure_threshold=3)
    cb = registry.circuit_breaker("bybit_api", config)
    assert registry.circuit_breaker("bybit_api") is cb
    assert registry.circuit_breaker("bybit_api", failure_threshold=3) is cb
    with pytest.raises(ConfigurationError) as info:
        registry.circuit_breaker("bybit_api", failure_threshold=4)
    assert "failure_threshold" in str(info.value) and "already exists" in str(info.value)
    with pytest.raises(ConfigurationError, match="name"):
        CircuitBreaker("other", CircuitBreakerConfig(name="bybit_api"))
    assert await cb.call_async(ok, 42) == 42
    with pytest.raises(KeyError, match="known: bybit_api"):
        registry.remove_circuit_breaker("nope")


async def test_decorator_shares_breaker_by_name() -> None:
    from virtuoso_resilience import circuit_breaker

    registry = ResilienceRegistry(clock=FakeClock())

    @circuit_breaker("exchange_api", failure_threshold=2, timeout=60.0, registry=registry)
    async def fetch_market_data() -> str:
        raise Boom("down")

    @circuit_breaker("exchange_api", failure_threshold=2, timeout=60.0, registry=registry)
    async def fetch_other() -> str:
        return "fine"

    assert fetch_market_data.__name__ == "fetch_market_data"
    for _ in range(2):
        with pytest.raises(Boom):
            await fetch_market_data()
    with pytest.raises(CircuitOpenError):
        await fetch_other()
    breaker = fetch_other.circuit_breaker  # type: ignore[attr-defined]
    assert breaker is registry.circuit_breaker("exchange_api")
    with pytest.raises(TypeError, match="async def"):
        breaker(lambda: None)  # type: ignore[arg-type]


async def test_registry_snapshot_covers_what_it_owns() -> None:
    registry = ResilienceRegistry(clock=FakeClock())
    registry.circuit_breaker("b", failure_threshold=2)
    assert set(registry.snapshot()) == {"circuit_breakers"}
    registry.health  # noqa: B018 - created on first use
    registry.connection_pool("p")
    data = registry.snapshot()
    assert set(data) == {"circuit_breakers", "connection_pools", "health"}
    assert data["circuit_breakers"]["b"]["config"]["failure_threshold"] == 2
    assert "ResilienceRegistry breakers=1 pools=on health=on" in repr(registry)
    await registry.aclose()


async def test_async_with_exited_from_another_task_releases_the_permit(clock: FakeClock) -> None:
    # An async generator stepped with asyncio.wait_for runs each step in its
    # own task, so __aexit__ does not see __aenter__'s context.
    cb = make(clock, failure_threshold=1, timeout=1.0, success_threshold=1)
    await trip(cb, 1)
    clock.advance(1.0)

    async def stream() -> Any:
        async with cb:
            for i in range(2):
                yield i

    gen = stream()
    items = [await asyncio.wait_for(gen.__anext__(), 5) for _ in range(2)]
    with pytest.raises(StopAsyncIteration):
        await asyncio.wait_for(gen.__anext__(), 5)
    assert items == [0, 1]
    assert cb.state is CircuitState.CLOSED  # the trial counted as a success


async def test_stale_results_do_not_move_the_failure_run(clock: FakeClock) -> None:
    cb = make(clock, failure_threshold=3, timeout=1.0, half_open_max_calls=5, success_threshold=1)
    await trip(cb, 3)
    clock.advance(1.0)
    gate = asyncio.Event()

    async def late_failure() -> None:
        await gate.wait()
        raise Boom("late")

    stale = [asyncio.create_task(cb.call_async(late_failure)) for _ in range(4)]
    await asyncio.sleep(0)
    assert await cb.call_async(ok) == "ok"  # closes the breaker: a new generation
    assert cb.state is CircuitState.CLOSED
    gate.set()
    for task in stale:
        with pytest.raises(Boom):
            await task
    assert cb.snapshot().consecutive_failures == 0
    await trip(cb, 2)
    assert cb.state is CircuitState.CLOSED  # two fresh failures < 3


async def test_reset_of_a_closed_breaker_forgets_calls_in_flight(clock: FakeClock) -> None:
    cb = make(clock, failure_threshold=2)
    gate = asyncio.Event()

    async def late_failure() -> None:
        await gate.wait()
        raise Boom("late")

    tasks = [asyncio.create_task(cb.call_async(late_failure)) for _ in range(2)]
    await asyncio.sleep(0)
    cb.reset()
    gate.set()
    await asyncio.gather(*tasks, return_exceptions=True)
    assert cb.state is CircuitState.CLOSED
    assert cb.snapshot().trips == 0


def test_count_window_must_be_able_to_fill(clock: FakeClock) -> None:
    with pytest.raises(ConfigurationError) as info:
        CircuitBreakerConfig(failure_rate_threshold=50.0, sliding_window_size=5, minimum_calls=10)
    assert info.value.fields == ("minimum_calls, sliding_window_size",)
    assert "minimum_calls (10) must be <= sliding_window_size (5)" in str(info.value)
    config = CircuitBreakerConfig(sliding_window_size=5)  # fine while no rate rule is on
    with pytest.raises(ConfigurationError, match="sliding_window_size"):
        config.failure_rate_threshold = 50.0
    assert config.failure_rate_threshold is None
    for bad in (float("inf"), float("nan")):
        with pytest.raises(ConfigurationError, match="timeout"):
            CircuitBreakerConfig(timeout=bad)


async def test_half_open_rejection_has_no_made_up_wait(clock: FakeClock) -> None:
    cb = make(clock, failure_threshold=1, timeout=1.0, half_open_max_calls=1)
    await trip(cb, 1)
    clock.advance(1.0)
    gate = asyncio.Event()

    async def trial() -> str:
        await gate.wait()
        return "ok"

    task = asyncio.create_task(cb.call_async(trial))
    await asyncio.sleep(0)
    with pytest.raises(CircuitOpenError) as info:
        await cb.call_async(ok)
    assert info.value.retry_after is None
    assert "trial calls in progress" in str(info.value)
    gate.set()
    await task


async def test_lowering_timeout_while_open_shortens_the_open_period(clock: FakeClock) -> None:
    cb = make(clock, failure_threshold=1, timeout=600.0)
    await trip(cb, 1)
    clock.advance(5.0)
    cb.config.timeout = 10.0
    assert cb.retry_after == pytest.approx(5.0)
    clock.advance(5.0)
    assert await cb.call_async(ok) == "ok"
    assert cb.state is CircuitState.HALF_OPEN


async def test_outcomes_by_kind_counts_every_classified_error(clock: FakeClock) -> None:
    cb = make(clock, failure_threshold=10)

    async def limited() -> None:
        raise ccxt.RateLimitExceeded("bybit too many visits")

    async def broke() -> None:
        raise ccxt.InsufficientFunds("bybit no funds")

    for fn, exc in ((limited, ccxt.RateLimitExceeded), (broke, ccxt.InsufficientFunds)):
        with pytest.raises(exc):
            await cb.call_async(fn)
    await trip(cb, 1)
    snap = cb.snapshot()
    assert snap.outcomes_by_kind == {"rate_limited": 1, "business": 1, "transient": 1}
    assert snap.failures_by_kind == {"transient": 1}


def test_async_listener_changed_from_sync_code_is_skipped_not_leaked(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    cb = make(clock)
    seen: list[object] = []

    async def listener(event: object) -> None:
        seen.append(event)

    cb.add_listener(on_state_change=listener)
    with caplog.at_level(logging.WARNING):
        cb.force_open()
    assert cb.state is CircuitState.FORCED_OPEN
    assert seen == []
    assert "no running event loop" in caplog.text
    assert cb.listener_stats().dropped == 1


# ------------------------------------------------- long outages (defect 1)


async def test_timeout_growth_saturates_over_ten_thousand_trips(clock: FakeClock) -> None:
    cb = make(clock, failure_threshold=1, timeout=1.0, timeout_multiplier=10.0, max_timeout=3600.0)
    await trip(cb, 1)
    for _ in range(10_000):
        retry_after = cb.retry_after
        assert retry_after is not None and 0.0 < retry_after <= 3600.0
        clock.advance(retry_after)
        await trip(cb, 1)  # the trial fails: open again, with a grown timeout
    assert cb.state is CircuitState.OPEN
    assert cb.snapshot().current_timeout == 3600.0
    assert cb.retry_after == 3600.0
    with pytest.raises(CircuitOpenError) as info:
        await cb.call_async(ok)  # still protecting after 10,000 trips
    assert info.value.retry_after == 3600.0
    assert cb.snapshot().trips == 10_001


@pytest.mark.parametrize("multiplier", [10.0, 1e300, 1.7976931348623157e308])
async def test_timeout_growth_without_a_cap_stops_at_max_seconds(
    clock: FakeClock, multiplier: float
) -> None:
    cb = make(clock, failure_threshold=1, timeout=30.0, timeout_multiplier=multiplier)
    await trip(cb, 1)
    for _ in range(400):
        clock.advance(cb.retry_after or 0.0)
        await trip(cb, 1)
    assert cb.snapshot().current_timeout == MAX_SECONDS
    assert cb.retry_after == MAX_SECONDS
    with pytest.raises(CircuitOpenError):
        await cb.call_async(ok)
    json.dumps(cb.snapshot().as_dict(), allow_nan=False)


def test_grown_timeout_is_finite_and_monotonic_for_any_trip_count() -> None:
    previous = 0.0
    for trips in (1, 2, 3, 10, 308, 309, 310, 10_000, 10**18):
        value = grown_timeout(1.0, 10.0, trips, None)
        assert math.isfinite(value) and previous <= value <= MAX_SECONDS
        previous = value
    assert grown_timeout(2.0, 2.0, 3, None) == 8.0
    assert grown_timeout(2.0, 2.0, 3, 5.0) == 5.0
    assert grown_timeout(2.0, 1.0, 10**9, 5.0) == 2.0


# ---------------------------------------------- half-open permits (defect 2)


async def test_exit_from_a_task_that_predates_the_entry_updates_metrics_only(
    clock: FakeClock,
) -> None:
    cb = make(clock, failure_threshold=1, timeout=1.0, success_threshold=2)
    await trip(cb, 1)
    clock.advance(1.0)
    entered = asyncio.Event()
    release = asyncio.Event()

    async def stray_exit() -> None:
        await entered.wait()
        await cb.__aexit__(None, None, None)

    stray = asyncio.create_task(stray_exit())  # created before the block is entered
    trial_ran: list[str] = []

    async def trial() -> None:
        async with cb:
            entered.set()
            await release.wait()
            trial_ran.append("first")

    first = asyncio.create_task(trial())
    await stray
    assert cb.state is CircuitState.HALF_OPEN
    assert cb.snapshot().calls == 2  # the stray exit is counted ...
    with pytest.raises(CircuitOpenError):  # ... but gave back no permit
        await cb.call_async(ok)
    release.set()
    await first
    assert trial_ran == ["first"]
    assert cb.state is CircuitState.HALF_OPEN  # one trial success of 2
    assert await cb.call_async(ok) == "ok"
    assert cb.state is CircuitState.CLOSED


async def test_exit_of_a_block_entered_in_an_older_generation_keeps_the_permits(
    clock: FakeClock,
) -> None:
    cb = make(clock, failure_threshold=1, timeout=1.0, success_threshold=1)

    async def enter_only() -> None:
        await cb.__aenter__()  # admitted while CLOSED, task then finishes

    await asyncio.create_task(enter_only())
    await trip(cb, 1)
    clock.advance(1.0)
    gate = asyncio.Event()

    async def slow_trial() -> str:
        await gate.wait()
        return "trial"

    trial = asyncio.create_task(cb.call_async(slow_trial))
    await asyncio.sleep(0)
    assert cb.state is CircuitState.HALF_OPEN
    await cb.__aexit__(None, None, None)  # the CLOSED-era block ends now
    with pytest.raises(CircuitOpenError):
        await cb.call_async(ok)  # the only permit is still the running trial's
    gate.set()
    assert await trial == "trial"
    assert cb.state is CircuitState.CLOSED


async def test_async_with_records_are_dropped_when_the_blocks_end(clock: FakeClock) -> None:
    cb = make(clock, failure_threshold=10_000)
    gate = asyncio.Event()

    async def block(fail: bool) -> None:
        async with cb, cb:  # nested in the same task
            await gate.wait()
            if fail:
                raise Boom("down")

    tasks = [asyncio.create_task(block(i % 2 == 0)) for i in range(2000)]
    await asyncio.sleep(0)
    assert cb._entries is not None and len(cb._entries) == 2000
    gate.set()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert sum(isinstance(r, Boom) for r in results) == 1000
    assert cb._entries == {}  # nothing kept for finished blocks
    snap = cb.snapshot()
    assert (snap.calls, snap.failures, snap.successes) == (4000, 2000, 2000)


async def test_blocks_never_left_do_not_grow_the_records_without_bound(clock: FakeClock) -> None:
    cb = make(clock)

    async def enter_only() -> None:
        await cb.__aenter__()  # an abandoned block: its task ends inside it

    for _ in range(3000):
        await asyncio.create_task(enter_only())
    assert cb._entries is not None and len(cb._entries) <= 1024
