"""Hostile review of the clocks: NaN must never reach a timer heap."""

from __future__ import annotations

import asyncio
import math

import pytest

from virtuoso_resilience.clock import MONOTONIC, FakeClock


async def test_fake_clock_nan_sleeper_cannot_freeze_the_others() -> None:
    """Defect: ``FakeClock.sleep(nan)`` pushed a NaN deadline on top of the
    heap; ``advance`` stops at the first sleeper not due and ``nan <= now`` is
    always false, so no sleeper ever woke again."""
    clock = FakeClock()
    with pytest.raises(ValueError, match="NaN"):
        # A guard against the hang of the defect (the old code never returned).
        await asyncio.wait_for(clock.sleep(math.nan), 5.0)
    woke: list[float] = []

    async def sleeper(seconds: float) -> None:
        await clock.sleep(seconds)
        woke.append(seconds)

    tasks = [asyncio.create_task(sleeper(s)) for s in (2.0, 1.0)]
    await asyncio.sleep(0)
    clock.advance(5.0)
    await asyncio.gather(*tasks)
    assert woke == [1.0, 2.0]


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, -1.0])
def test_fake_clock_advance_refuses_non_finite(value: float) -> None:
    """Defect: ``advance(nan)`` made the virtual time NaN for good."""
    clock = FakeClock(start=10.0)
    with pytest.raises(ValueError, match="advance"):
        clock.advance(value)
    assert clock.now() == 10.0


@pytest.mark.parametrize("value", [math.nan, math.inf])
def test_fake_clock_start_must_be_finite(value: float) -> None:
    with pytest.raises(ValueError, match="start"):
        FakeClock(start=value)


async def test_monotonic_clock_refuses_nan() -> None:
    """``asyncio.sleep(nan)`` corrupts the event loop's timer heap (the
    simulator defect 3 of the outside review); the real clock refuses it."""
    with pytest.raises(ValueError, match="NaN"):
        await MONOTONIC.sleep(math.nan)
    with pytest.raises(TypeError):
        await MONOTONIC.sleep("1")  # type: ignore[arg-type]
    await MONOTONIC.sleep(0)
    await MONOTONIC.sleep(-1.0)  # past deadlines return at once, as asyncio.sleep does


async def test_fake_clock_infinite_sleep_waits_until_cancelled() -> None:
    clock = FakeClock()
    task = asyncio.create_task(clock.sleep(math.inf))
    await asyncio.sleep(0)
    clock.advance(1e9)
    await asyncio.sleep(0)
    assert not task.done()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert clock.sleepers == 0
