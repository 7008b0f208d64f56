"""Full pipeline (breaker + retry + bulkhead + rate limiter, no timeout)
against aiobreaker stacked with tenacity, and the timeout layer's cost."""

from __future__ import annotations

import asyncio
import datetime

import aiobreaker
import tenacity

from virtuoso_resilience import (
    Bulkhead,
    CircuitBreaker,
    RateLimiter,
    ResiliencePipeline,
    RetryPolicy,
    TimeoutPolicy,
)

from ._harness import Result, format_table, measure_async

N = 100_000


async def target() -> int:
    return 1


def pipeline(*, timeout: bool = False) -> ResiliencePipeline:
    return ResiliencePipeline(
        "bench",
        retry=RetryPolicy(name="bench", max_attempts=3),
        circuit_breaker=CircuitBreaker("bench"),
        bulkhead=Bulkhead("bench", max_concurrent=100),
        # A bucket that never runs dry in the benchmark: the cost measured is
        # the limiter's bookkeeping, not waiting.
        rate_limiter=RateLimiter("bench", rate=1e9, capacity=1e9),
        timeout=TimeoutPolicy("bench", seconds=10.0) if timeout else None,
    )


async def main_async() -> str:
    async def bare(n: int) -> None:
        for _ in range(n):
            await target()

    pipe = pipeline()

    async def ours(n: int) -> None:
        call = pipe.call_async
        for _ in range(n):
            await call(target)

    pipe_t = pipeline(timeout=True)

    async def ours_timeout(n: int) -> None:
        call = pipe_t.call_async
        for _ in range(n):
            await call(target)

    breaker = aiobreaker.CircuitBreaker(fail_max=5, timeout_duration=datetime.timedelta(seconds=60))

    @tenacity.retry(
        stop=tenacity.stop_after_attempt(3), wait=tenacity.wait_exponential(), reraise=True
    )
    async def stacked() -> int:
        return await breaker.call_async(target)

    async def peers(n: int) -> None:
        for _ in range(n):
            await stacked()

    baseline = await measure_async(bare, N)
    rows = [
        Result("bare await", baseline, baseline),
        Result(
            "virtuoso pipeline (breaker+retry+bulkhead+limiter)",
            await measure_async(ours, N),
            baseline,
        ),
        Result(
            "virtuoso pipeline + attempt timeout",
            await measure_async(ours_timeout, N // 4),
            baseline,
        ),
        Result("aiobreaker + tenacity", await measure_async(peers, N // 10), baseline),
    ]
    return format_table(
        "Full pipeline, success path",
        rows,
        reference="virtuoso pipeline (breaker+retry+bulkhead+limiter)",
    )


def main() -> str:
    return asyncio.run(main_async())


if __name__ == "__main__":
    print(main())
