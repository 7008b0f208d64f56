"""Circuit breaker: success-path overhead, open-state rejection cost, memory.

Compared in one process with aiobreaker, purgatory (async) and pybreaker
(sync, against a bare sync call).
"""

from __future__ import annotations

import asyncio
import datetime
import gc
import tracemalloc

import aiobreaker
import purgatory
import pybreaker

from virtuoso_resilience import CircuitBreaker, CircuitBreakerConfig, CircuitOpenError

from ._harness import Result, format_table, measure_async, measure_sync

N = 200_000


async def target() -> int:
    return 1


def sync_target() -> int:
    return 1


class Down(ConnectionError):
    pass


async def failing() -> int:
    raise Down("down")


async def success_path() -> str:
    async def bare(n: int) -> None:
        for _ in range(n):
            await target()

    ours = CircuitBreaker("bench")

    async def ours_call(n: int) -> None:
        call = ours.call_async
        for _ in range(n):
            await call(target)

    watched = CircuitBreaker("bench-watched")
    watched.add_listener(on_state_change=lambda event: None, on_rejection=lambda event: None)

    async def watched_call(n: int) -> None:
        call = watched.call_async
        for _ in range(n):
            await call(target)

    decorated = CircuitBreaker("bench-deco")(target)

    async def ours_deco(n: int) -> None:
        for _ in range(n):
            await decorated()

    aio = aiobreaker.CircuitBreaker(fail_max=5, timeout_duration=datetime.timedelta(seconds=60))

    async def aio_call(n: int) -> None:
        call = aio.call_async
        for _ in range(n):
            await call(target)

    factory = purgatory.AsyncCircuitBreakerFactory(default_threshold=5, default_ttl=60)

    @factory(circuit="bench")
    async def purg_target() -> int:
        return 1

    async def purg_call(n: int) -> None:
        for _ in range(n):
            await purg_target()

    baseline = await measure_async(bare, N)
    rows = [
        Result("bare await", baseline, baseline),
        Result("virtuoso call_async", await measure_async(ours_call, N), baseline),
        Result(
            "virtuoso call_async, state listeners",
            await measure_async(watched_call, N),
            baseline,
        ),
        Result("virtuoso decorator", await measure_async(ours_deco, N), baseline),
        Result("aiobreaker call_async", await measure_async(aio_call, N), baseline),
        Result("purgatory decorator", await measure_async(purg_call, N // 10), baseline),
    ]
    return format_table(
        "Circuit breaker, success path (async)", rows, reference="virtuoso call_async"
    )


def sync_success_path() -> str:
    pyb = pybreaker.CircuitBreaker(fail_max=5, reset_timeout=60)

    def bare(n: int) -> None:
        for _ in range(n):
            sync_target()

    def pyb_call(n: int) -> None:
        call = pyb.call
        for _ in range(n):
            call(sync_target)

    baseline = measure_sync(bare, N)
    rows = [
        Result("bare sync call", baseline, baseline),
        Result("pybreaker call (sync)", measure_sync(pyb_call, N), baseline),
    ]
    return format_table("pybreaker, success path (sync, for reference)", rows)


async def open_rejection() -> str:
    ours = CircuitBreaker("open", CircuitBreakerConfig(failure_threshold=1, timeout=3600))
    try:
        await ours.call_async(failing)
    except Down:
        pass

    async def ours_reject(n: int) -> None:
        call = ours.call_async
        for _ in range(n):
            try:
                await call(target)
            except CircuitOpenError:
                pass

    aio = aiobreaker.CircuitBreaker(fail_max=1, timeout_duration=datetime.timedelta(hours=1))
    try:
        await aio.call_async(failing)
    except Exception:
        pass

    async def aio_reject(n: int) -> None:
        call = aio.call_async
        for _ in range(n):
            try:
                await call(target)
            except aiobreaker.CircuitBreakerError:
                pass

    factory = purgatory.AsyncCircuitBreakerFactory(default_threshold=1, default_ttl=3600)

    @factory(circuit="open")
    async def purg_failing() -> int:
        raise Down("down")

    try:
        await purg_failing()
    except Exception:
        pass

    async def purg_reject(n: int) -> None:
        for _ in range(n):
            try:
                await purg_failing()
            except Exception:
                pass

    n = N // 4
    rows = [
        Result("virtuoso", await measure_async(ours_reject, n), 0.0),
        Result("aiobreaker", await measure_async(aio_reject, n), 0.0),
        Result("purgatory", await measure_async(purg_reject, n // 10), 0.0),
    ]
    return format_table("Open-state rejection cost", rows, reference="virtuoso")


def memory() -> str:
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    breakers = [
        CircuitBreaker(
            f"b{i}",
            CircuitBreakerConfig(failure_rate_threshold=50.0, sliding_window_size=100),
        )
        for i in range(10_000)
    ]
    gc.collect()
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    size = sum(stat.size_diff for stat in after.compare_to(before, "filename"))
    del breakers
    mb = size / 1e6
    return (
        "### Memory\n\n"
        f"10,000 breakers with 100-call count windows: **{mb:.1f} MB** "
        f"({size / 10_000:.0f} bytes each; target < 30 MB)."
    )


async def main_async() -> str:
    parts = [await success_path(), sync_success_path(), await open_rejection(), memory()]
    return "\n\n".join(parts)


def main() -> str:
    return asyncio.run(main_async())


if __name__ == "__main__":
    print(main())
