"""The cache's per-call time limit (one watchdog, no timer per call), on virtual loop time."""

from __future__ import annotations

import asyncio

import pytest

from virtuoso_resilience.cache._deadline import Deadlines
from virtuoso_resilience.errors import ResilienceTimeoutError


async def hang() -> None:
    await asyncio.Event().wait()


@pytest.mark.looptime
async def test_a_hanging_call_times_out_within_the_granularity() -> None:
    deadlines = Deadlines("cache.t", 1.0)
    loop = asyncio.get_running_loop()
    start = loop.time()
    with pytest.raises(ResilienceTimeoutError) as caught:
        await deadlines.call(hang)
    waited = loop.time() - start
    assert 1.0 <= waited <= 1.25 + 1e-9  # seconds + seconds/4 at most
    assert isinstance(caught.value, TimeoutError)
    assert deadlines.timeouts == 1
    deadlines.close()


@pytest.mark.looptime
async def test_fast_calls_pass_and_return_their_value() -> None:
    deadlines = Deadlines("cache.t", 1.0)

    async def answer(x: int) -> int:
        await asyncio.sleep(0.5)
        return x * 2

    assert await deadlines.call(answer, 21) == 42
    assert deadlines.timeouts == 0
    deadlines.close()


@pytest.mark.looptime
async def test_the_callers_own_cancellation_is_not_a_timeout() -> None:
    deadlines = Deadlines("cache.t", 10.0)
    task = asyncio.ensure_future(deadlines.call(hang))
    await asyncio.sleep(1.0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert deadlines.timeouts == 0
    deadlines.close()


@pytest.mark.looptime
async def test_a_callee_that_swallows_cancellation_is_reported_as_timed_out() -> None:
    deadlines = Deadlines("cache.t", 1.0)

    async def stubborn() -> str:
        try:
            await asyncio.sleep(100)
        except asyncio.CancelledError:
            raise ConnectionResetError("dropped") from None
        return "never"

    with pytest.raises(ResilienceTimeoutError) as caught:
        await deadlines.call(stubborn)
    assert isinstance(caught.value.__cause__, ConnectionResetError)

    async def ignores() -> str:
        try:
            await asyncio.sleep(100)
        except asyncio.CancelledError:
            pass
        return "finished anyway"

    assert await deadlines.call(ignores) == "finished anyway"
    await asyncio.sleep(0)  # no cancellation is left pending on this task
    current = asyncio.current_task()
    assert current is not None and current.cancelling() == 0
    deadlines.close()
