"""ResiliencePipeline: composition order, from_config, fallback, cancellation."""

from __future__ import annotations

import asyncio
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
