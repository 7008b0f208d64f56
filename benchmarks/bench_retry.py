"""Retry: success-path overhead against tenacity, stamina and backoff."""

from __future__ import annotations

import asyncio

import backoff
import stamina
import tenacity

from virtuoso_resilience import RetryPolicy

from ._harness import Result, format_table, measure_async

N = 100_000


async def target() -> int:
    return 1


async def main_async() -> str:
    async def bare(n: int) -> None:
        for _ in range(n):
            await target()

    policy = RetryPolicy(name="bench", max_attempts=3)

    async def ours_call(n: int) -> None:
        call = policy.call_async
        for _ in range(n):
            await call(target)

    watched = RetryPolicy(name="bench-watched", max_attempts=3)
    watched.add_listener(lambda event: None)

    async def watched_call(n: int) -> None:
        call = watched.call_async
        for _ in range(n):
            await call(target)

    decorated = policy(target)

    async def ours_deco(n: int) -> None:
        for _ in range(n):
            await decorated()

    ten = tenacity.retry(
        stop=tenacity.stop_after_attempt(3), wait=tenacity.wait_exponential(), reraise=True
    )(target)

    async def ten_call(n: int) -> None:
        for _ in range(n):
            await ten()

    stam = stamina.retry(on=ConnectionError, attempts=3)(target)

    async def stam_call(n: int) -> None:
        for _ in range(n):
            await stam()

    bo = backoff.on_exception(backoff.expo, ConnectionError, max_tries=3)(target)

    async def bo_call(n: int) -> None:
        for _ in range(n):
            await bo()

    baseline = await measure_async(bare, N)
    rows = [
        Result("bare await", baseline, baseline),
        Result("virtuoso call_async", await measure_async(ours_call, N), baseline),
        Result("virtuoso call_async, listener", await measure_async(watched_call, N), baseline),
        Result("virtuoso decorator", await measure_async(ours_deco, N), baseline),
        Result("backoff", await measure_async(bo_call, N // 4), baseline),
        Result("stamina", await measure_async(stam_call, N // 4), baseline),
        Result("tenacity", await measure_async(ten_call, N // 10), baseline),
    ]
    return format_table("Retry, success path", rows, reference="virtuoso call_async")


def main() -> str:
    return asyncio.run(main_async())


if __name__ == "__main__":
    print(main())
