"""ResiliencePipeline: composition order, from_config, fallback, cancellation."""

from __future__ import annotations

import asyncio
import random
from typing import Any

import ccxt
import pytest

from virtuoso_resilience import (
    Bulkhead,
    BulkheadFullError,
    CircuitBreaker,
    CircuitBreakerConfig,
    CircuitOpenError,
    CircuitState,
    FakeClock,
    Fallback,
    RateLimiter,
    ResilienceConfiguration,
    ResiliencePipeline,
    ResilienceTimeoutError,
    RetryPolicy,
    TimeoutPolicy,
    create_default_resilience_config,
)
from virtuoso_resilience.classify import OutcomeKind
from virtuoso_resilience.policies import FallbackResult, RetryEvent


class Down(ConnectionError):
    pass


def full_pipeline(clock: FakeClock, **overrides: Any) -> ResiliencePipeline:
    parts: dict[str, Any] = {
        "retry": RetryPolicy(name="p", max_attempts=3, base_delay=1.0, max_delay=1.0, clock=clock),
        "circuit_breaker": CircuitBreaker(
            "p", CircuitBreakerConfig(failure_threshold=2, timeout=30.0), clock=clock
        ),
        "bulkhead": Bulkhead("p", max_concurrent=2, max_waiting=100),
        "rate_limiter": RateLimiter("p", rate=100.0, capacity=100.0, clock=clock),
    }
    parts.update(overrides)
    return ResiliencePipeline("p", **parts)


async def test_success_passes_every_layer(autoclock: FakeClock) -> None:
    pipe = full_pipeline(autoclock)

    async def fetch(symbol: str, *, depth: int) -> str:
        return f"{symbol}:{depth}"

    assert await pipe.call_async(fetch, "BTC/USDT", depth=5) == "BTC/USDT:5"
    snap = pipe.snapshot()
    assert snap["order"] == ["retry", "circuit_breaker", "bulkhead", "rate_limiter"]
    assert snap["calls"] == 1
    assert snap["failures"] == 0
    assert snap["circuit_breaker"]["successes"] == 1
    assert snap["bulkhead"]["accepted"] == 1
    assert snap["rate_limiter"]["granted"] == 1


async def test_retry_repasses_the_breaker_and_stops_when_it_opens(autoclock: FakeClock) -> None:
    pipe = full_pipeline(autoclock)
    attempts = 0

    async def down() -> None:
        nonlocal attempts
        attempts += 1
        raise Down("connection reset")

    # Attempt 1 and 2 fail and trip the breaker (threshold 2); attempt 3 is
    # rejected by the open breaker, whose 30 s wait exceeds max_delay: give up.
    with pytest.raises(CircuitOpenError):
        await pipe.call_async(down)
    assert attempts == 2
    assert pipe.circuit_breaker is not None
    assert pipe.circuit_breaker.state is CircuitState.OPEN
    snap = pipe.snapshot()
    assert snap["circuit_breaker"]["rejected"] == 1
    # A rejected call took no bulkhead slot and no rate-limit token.
    assert snap["bulkhead"]["accepted"] == 2
    assert snap["rate_limiter"]["granted"] == 2
    assert snap["failures"] == 1


async def test_full_bulkhead_does_not_trip_the_breaker(clock: FakeClock) -> None:
    breaker = CircuitBreaker("p", CircuitBreakerConfig(failure_threshold=1), clock=clock)
    pipe = ResiliencePipeline(
        "p", circuit_breaker=breaker, bulkhead=Bulkhead("p", max_concurrent=1, max_waiting=0)
    )
    gate = asyncio.Event()

    async def slow() -> str:
        await gate.wait()
        return "done"

    first = asyncio.create_task(pipe.call_async(slow))
    await asyncio.sleep(0)
    for _ in range(3):
        with pytest.raises(BulkheadFullError):
            await pipe.call_async(slow)
    assert breaker.state is CircuitState.CLOSED  # a local refusal is not a service failure
    gate.set()
    assert await first == "done"


async def test_business_errors_are_not_retried_or_counted(autoclock: FakeClock) -> None:
    pipe = full_pipeline(autoclock)
    attempts = 0

    async def broke() -> None:
        nonlocal attempts
        attempts += 1
        raise ccxt.InsufficientFunds("bybit not enough USDT")

    with pytest.raises(ccxt.InsufficientFunds):
        await pipe.call_async(broke)
    assert attempts == 1
    assert pipe.snapshot()["circuit_breaker"]["failures"] == 0


async def test_fallback_tiers_get_caller_arguments(autoclock: FakeClock) -> None:
    stale = {"BTC/USDT": 64_000.0}

    async def stale_cache(error: Exception, symbol: str) -> float:
        return stale[symbol]

    pipe = full_pipeline(
        autoclock,
        fallback=Fallback("p", tiers=[("stale_cache", stale_cache)], pass_args=True),
    )

    async def fetch(symbol: str) -> float:
        raise Down("exchange unreachable")

    assert await pipe.call_async(fetch, "BTC/USDT") == 64_000.0
    snap = pipe.snapshot()
    assert snap["order"][0] == "fallback"
    assert snap["fallback"]["fallbacks_by_tier"] == {"stale_cache": 1}
    assert snap["retry"]["calls"] == 1


async def test_weighted_cost_reaches_the_rate_limiter(clock: FakeClock) -> None:
    limiter = RateLimiter("p", rate=1.0, capacity=10.0, clock=clock)
    pipe = ResiliencePipeline("p", rate_limiter=limiter)

    async def fetch() -> str:
        return "ok"

    assert await pipe.call_weighted_async(7, fetch) == "ok"
    assert limiter.tokens == pytest.approx(3.0)
    assert await pipe.call_async(fetch) == "ok"
    assert limiter.tokens == pytest.approx(2.0)
    snap = pipe.snapshot()
    assert snap["calls"] == 2


async def test_cancellation_releases_everything(clock: FakeClock) -> None:
    pipe = full_pipeline(clock)
    started = asyncio.Event()

    async def hang() -> None:
        started.set()
        await asyncio.sleep(3600)

    task = asyncio.create_task(pipe.call_async(hang))
    await started.wait()
    assert pipe.bulkhead is not None
    assert pipe.bulkhead.snapshot()["active"] == 1
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    snap = pipe.snapshot()
    assert snap["bulkhead"]["active"] == 0
    assert snap["circuit_breaker"]["cancelled"] == 1
    assert snap["circuit_breaker"]["failures"] == 0
    assert snap["failures"] == 0


async def test_many_coroutines_respect_the_bulkhead(autoclock: FakeClock) -> None:
    pipe = full_pipeline(autoclock)
    running = 0
    peak = 0

    async def work(i: int) -> int:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0)
        running -= 1
        return i

    results = await asyncio.gather(*(pipe.call_async(work, i) for i in range(100)))
    assert results == list(range(100))
    assert peak == 2


@pytest.mark.looptime
async def test_attempt_and_operation_timeouts() -> None:
    clock = FakeClock(autojump=True)
    pipe = ResiliencePipeline(
        "p",
        operation_timeout=TimeoutPolicy("op", seconds=25.0, scope="operation"),
        retry=RetryPolicy(name="p", max_attempts=10, base_delay=1.0, max_delay=1.0, clock=clock),
        timeout=TimeoutPolicy("attempt", seconds=10.0),
    )
    attempts = 0

    async def hang() -> None:
        nonlocal attempts
        attempts += 1
        await asyncio.sleep(3600)

    with pytest.raises(ResilienceTimeoutError) as info:
        await pipe.call_async(hang)
    assert info.value.scope == "operation"
    assert attempts == 3  # 10 s + 10 s + (25 s operation limit)


def test_from_config_builds_the_seed_defaults() -> None:
    pipe = ResiliencePipeline.from_config("bybit", create_default_resilience_config())
    assert pipe.order == ("retry", "circuit_breaker")
    assert pipe.circuit_breaker is not None
    cfg = pipe.circuit_breaker.config
    assert (cfg.failure_threshold, cfg.success_threshold, cfg.timeout) == (5, 3, 60.0)
    assert pipe.retry is not None
    retry = pipe.retry.config
    assert (retry.max_attempts, retry.base_delay, retry.max_delay) == (4, 1.0, 30.0)


def test_from_config_optional_layers() -> None:
    config = ResilienceConfiguration(
        default_max_retries=0,
        default_call_timeout=5.0,
        default_max_concurrent=8,
        default_rate_limit=20.0,
        default_rate_limit_burst=40,
    )
    pipe = ResiliencePipeline.from_config("x", config, write=True)
    assert pipe.order == ("circuit_breaker", "bulkhead", "rate_limiter", "timeout")
    assert pipe.rate_limiter is not None
    assert pipe.rate_limiter.config.capacity == 40.0
    assert pipe.bulkhead is not None
    assert pipe.bulkhead.config.max_concurrent == 8


async def test_decorator_and_repr(autoclock: FakeClock) -> None:
    pipe = full_pipeline(autoclock)

    @pipe
    async def fetch_ticker(symbol: str) -> str:
        return symbol

    assert fetch_ticker.__name__ == "fetch_ticker"
    assert await fetch_ticker("ETH/USDT") == "ETH/USDT"
    assert fetch_ticker.pipeline is pipe  # type: ignore[attr-defined]
    assert repr(pipe) == (
        "<ResiliencePipeline 'p' retry → circuit_breaker → bulkhead → rate_limiter "
        "calls=1 failures=0>"
    )
    with pytest.raises(TypeError, match="async def"):
        pipe(lambda: None)  # type: ignore[arg-type]


async def test_empty_pipeline_just_awaits() -> None:
    pipe = ResiliencePipeline("bare")

    async def fetch() -> int:
        return 1

    assert await pipe.call_async(fetch) == 1
    assert pipe.snapshot() == {"name": "bare", "order": [], "calls": 1, "failures": 0}


# ------------------------------------------------------------ half-open breaker


async def test_a_busy_half_open_breaker_leaves_the_wait_to_the_retry_backoff(
    autoclock: FakeClock,
) -> None:
    # While the one trial call is in flight, other callers are rejected with no
    # known wait (retry_after None): the retry policy then backs off on its own
    # schedule instead of retrying at once (a made-up 0 s Retry-After).
    breaker = CircuitBreaker(
        "x", CircuitBreakerConfig(failure_threshold=1, timeout=5.0), clock=autoclock
    )
    retry = RetryPolicy(
        name="x",
        max_attempts=4,
        base_delay=1.0,
        max_delay=10.0,
        jitter="none",
        clock=autoclock,
        rng=random.Random(0),
    )
    pipe = ResiliencePipeline("x", retry=retry, circuit_breaker=breaker)

    async def down() -> None:
        raise ccxt.NetworkError("down")

    with pytest.raises(ccxt.NetworkError):
        await breaker.call_async(down)  # opens the breaker
    autoclock.advance(5.0)
    gate = asyncio.Event()

    async def slow_trial() -> str:
        await gate.wait()
        return "ok"

    trial = asyncio.create_task(pipe.call_async(slow_trial))
    await asyncio.sleep(0)
    assert breaker.state is CircuitState.HALF_OPEN
    started = autoclock.now()
    autoclock.slept.clear()
    with pytest.raises(CircuitOpenError) as info:
        await pipe.call_async(slow_trial)
    assert info.value.retry_after is None
    assert autoclock.slept == [1.0, 2.0, 4.0]  # the policy's own backoff
    assert autoclock.now() - started == 7.0
    m = retry.metrics
    assert (m.retries, m.exhausted, m.gave_up_on_retry_after) == (3, 1, 0)
    assert m.budget is not None and m.budget["withdrawals"] == 3
    gate.set()
    assert await trial == "ok"


# ------------------------------------------------------------ call_with_result_async


async def test_call_with_result_reports_the_tier_that_answered(autoclock: FakeClock) -> None:
    stale = {"BTC/USDT": 64_000.0}

    async def stale_cache(error: Exception, symbol: str) -> float:
        return stale[symbol]

    pipe = full_pipeline(
        autoclock,
        circuit_breaker=CircuitBreaker(
            "p", CircuitBreakerConfig(failure_threshold=5, timeout=30.0), clock=autoclock
        ),
        fallback=Fallback(
            "p", tiers=[("stale_cache", stale_cache), ("default", 0.0)], pass_args=True
        ),
    )
    attempts = 0

    async def fetch(symbol: str) -> float:
        nonlocal attempts
        attempts += 1
        raise Down("exchange unreachable")

    result = await pipe.call_with_result_async(fetch, "BTC/USDT")
    assert result == FallbackResult(64_000.0, "stale_cache", "Down", OutcomeKind.TRANSIENT)
    assert result.from_fallback
    assert attempts == 3  # every retry ran inside the fallback
    # Attempts 4 and 5 fail and open the breaker; the third is rejected. The
    # stale cache has no ETH: the default tier answers.
    result = await pipe.call_with_result_async(fetch, "ETH/USDT")
    assert (result.value, result.source, result.error) == (0.0, "default", "CircuitOpenError")
    assert result.outcome is OutcomeKind.REJECTED
    assert attempts == 5

    async def fine(symbol: str) -> float:
        return 65_000.0

    assert pipe.circuit_breaker is not None
    pipe.circuit_breaker.reset()
    assert await pipe.call_with_result_async(fine, "BTC/USDT") == FallbackResult(65_000.0)
    snap = pipe.snapshot()
    assert (snap["calls"], snap["failures"]) == (3, 0)
    assert snap["fallback"]["fallbacks_by_tier"] == {"stale_cache": 1, "default": 1}
    assert snap["fallback"]["primary_successes"] == 1


async def test_call_with_result_without_a_fallback_reports_the_primary(
    autoclock: FakeClock,
) -> None:
    pipe = full_pipeline(autoclock)

    async def fetch(symbol: str) -> str:
        return symbol

    result = await pipe.call_with_result_async(fetch, symbol="SOL/USDT")
    assert result == FallbackResult("SOL/USDT", source="primary")
    assert not result.from_fallback
    bare = ResiliencePipeline("bare")
    assert await bare.call_with_result_async(fetch, "BTC/USDT") == FallbackResult("BTC/USDT")

    async def broke() -> None:
        raise ccxt.InsufficientFunds("bybit not enough USDT")

    with pytest.raises(ccxt.InsufficientFunds):
        await pipe.call_with_result_async(broke)
    assert (pipe.snapshot()["calls"], pipe.snapshot()["failures"]) == (2, 1)
    assert bare.snapshot()["calls"] == 1


async def test_call_with_result_propagates_what_the_fallback_does_not_answer(
    autoclock: FakeClock,
) -> None:
    pipe = full_pipeline(autoclock, fallback=Fallback("p", value=None))

    async def broke() -> None:
        raise ccxt.InsufficientFunds("bybit not enough USDT")

    with pytest.raises(ccxt.InsufficientFunds):
        await pipe.call_with_result_async(broke)
    snap = pipe.snapshot()
    assert (snap["calls"], snap["failures"]) == (1, 1)
    assert snap["fallback"]["passed_through"] == 1


# ------------------------------------------------------------ cancellation


def guarded(clock: FakeClock, *, rate: float = 100.0) -> ResiliencePipeline:
    """retry (with a budget) → breaker → bulkhead (1 slot) → rate limiter."""
    return ResiliencePipeline(
        "g",
        retry=RetryPolicy(
            name="g", max_attempts=3, base_delay=2.0, max_delay=2.0, jitter="none", clock=clock
        ),
        circuit_breaker=CircuitBreaker(
            "g", CircuitBreakerConfig(failure_threshold=1, timeout=5.0), clock=clock
        ),
        bulkhead=Bulkhead("g", max_concurrent=1, max_waiting=10),
        rate_limiter=RateLimiter("g", rate=rate, capacity=rate, clock=clock),
    )


async def half_open(pipe: ResiliencePipeline, clock: FakeClock) -> CircuitBreaker:
    """Trip the pipeline's breaker and let its timeout pass: the next call is a trial."""
    breaker = pipe.circuit_breaker
    assert breaker is not None

    async def down() -> None:
        raise Down("reset")

    with pytest.raises(Down):
        await breaker.call_async(down)
    clock.advance(5.0)
    return breaker


async def settle() -> None:
    for _ in range(10):
        await asyncio.sleep(0)


async def cancel(task: asyncio.Task[Any]) -> None:
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


def assert_nothing_leaked(pipe: ResiliencePipeline) -> None:
    assert pipe.bulkhead is not None and pipe.rate_limiter is not None
    assert pipe.retry is not None
    assert (pipe.bulkhead.active, pipe.bulkhead.waiting) == (0, 0)
    assert pipe.rate_limiter.queue_length == 0
    budget = pipe.retry.budget
    assert budget is not None
    assert budget.withdrawals - budget.refunds == pipe.retry.retries
    snap = pipe.snapshot()
    assert snap["failures"] == 0  # a cancellation is never a failure
    assert snap["retry"]["calls"] == 0


async def assert_trial_admitted(pipe: ResiliencePipeline, breaker: CircuitBreaker) -> None:
    """The half-open permit is free: a new call is admitted as the trial."""
    assert breaker.state is CircuitState.HALF_OPEN

    async def fine() -> str:
        return "ok"

    assert await pipe.call_async(fine) == "ok"
    assert breaker.snapshot().rejected == 0


async def test_cancelled_while_waiting_for_a_bulkhead_slot(clock: FakeClock) -> None:
    pipe = guarded(clock)
    breaker = await half_open(pipe, clock)
    assert pipe.bulkhead is not None and pipe.rate_limiter is not None
    await pipe.bulkhead.acquire()  # someone else holds the only slot
    calls = 0

    async def fetch() -> str:
        nonlocal calls
        calls += 1
        return "ok"

    task = asyncio.create_task(pipe.call_async(fetch))
    await settle()
    assert pipe.bulkhead.waiting == 1  # admitted by the breaker as its trial, then queued
    await cancel(task)
    assert pipe.bulkhead.waiting == 0
    pipe.bulkhead.release()
    assert calls == 0
    assert pipe.rate_limiter.snapshot()["granted"] == 0
    assert pipe.rate_limiter.tokens == 100.0  # nothing taken
    assert breaker.snapshot().cancelled == 1
    assert_nothing_leaked(pipe)
    await assert_trial_admitted(pipe, breaker)


async def test_cancelled_while_queued_in_the_rate_limiter(clock: FakeClock) -> None:
    pipe = guarded(clock, rate=1.0)
    breaker = await half_open(pipe, clock)
    limiter = pipe.rate_limiter
    assert limiter is not None and pipe.bulkhead is not None
    await limiter.acquire()  # the bucket (1 token) is empty now
    task = asyncio.create_task(pipe.call_async(asyncio.sleep, 0, "ok"))
    await settle()
    assert limiter.queue_length == 1
    assert pipe.bulkhead.active == 1  # the bulkhead slot is held while queued
    await cancel(task)
    assert limiter.queue_length == 0
    assert pipe.bulkhead.active == 0
    assert limiter.tokens == 0.0
    clock.advance(1.0)
    assert limiter.tokens == 1.0  # refills as if the cancelled caller never came
    assert limiter.snapshot()["granted"] == 1  # only the direct acquire
    assert_nothing_leaked(pipe)
    await assert_trial_admitted(pipe, breaker)
    assert limiter.snapshot()["granted"] == 2
    assert limiter.tokens == 0.0


async def test_cancelled_during_a_retry_backoff(clock: FakeClock) -> None:
    pipe = guarded(clock)
    assert pipe.retry is not None and pipe.rate_limiter is not None
    op_calls = 0

    async def flaky() -> str:
        nonlocal op_calls
        op_calls += 1
        raise Down("reset")

    task = asyncio.create_task(pipe.call_async(flaky))
    await settle()
    assert clock.sleepers == 1  # the 2 s backoff
    budget = pipe.retry.budget
    assert budget is not None and budget.withdrawals == 1
    await cancel(task)
    assert (budget.withdrawals, budget.refunds) == (1, 1)
    assert budget.balance == pytest.approx(10.0 + 0.2)  # the withdrawal was given back
    assert pipe.retry.retries == 0
    clock.advance(10.0)
    await settle()
    assert op_calls == 1  # no attempt after the cancellation
    assert pipe.rate_limiter.snapshot()["granted"] == 1
    assert pipe.rate_limiter.tokens == 100.0
    assert_nothing_leaked(pipe)


async def test_cancelled_in_the_backoff_while_a_retry_listener_hangs(clock: FakeClock) -> None:
    # Retry listeners are not awaited by the call: a hung webhook post runs on
    # its own worker while the call backs off, and cancelling the call gives
    # the retry's budget token back without waiting for the listener.
    pipe = guarded(clock)
    assert pipe.retry is not None and pipe.circuit_breaker is not None
    seen: list[int] = []
    never = asyncio.Event()

    async def post_to_webhook(event: RetryEvent) -> None:
        seen.append(event.attempt)
        await never.wait()

    pipe.retry.add_listener(post_to_webhook)

    async def flaky() -> str:
        raise Down("reset")

    task = asyncio.create_task(pipe.call_async(flaky))
    await settle()
    assert seen == [1]
    assert clock.sleepers == 1  # already in the backoff, the listener still running
    budget = pipe.retry.budget
    assert budget is not None and budget.withdrawals == 1
    await cancel(task)
    assert (budget.withdrawals, budget.refunds) == (1, 1)
    assert budget.balance == pytest.approx(10.0 + 0.2)
    m = pipe.retry.metrics
    assert (m.calls, m.retries, m.total_backoff_seconds) == (0, 0, 0.0)
    assert pipe.circuit_breaker.snapshot().cancelled == 0  # the attempt had already failed
    assert pipe.retry.listener_stats().pending == 0  # being delivered, not queued
    pipe.retry.close_listeners()
    assert_nothing_leaked(pipe)
