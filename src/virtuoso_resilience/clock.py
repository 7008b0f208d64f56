"""Time, injected.

Every policy reads time and sleeps through a :class:`Clock`. Production code
uses :data:`MONOTONIC`; tests pass a :class:`FakeClock` so that a 60 s breaker
timeout or a 30 s backoff is exercised in microseconds.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import math
import time
from typing import Protocol, runtime_checkable

__all__ = ["MONOTONIC", "Clock", "FakeClock", "MonotonicClock"]


@runtime_checkable
class Clock(Protocol):
    """A source of monotonic time (seconds) and a way to sleep on it."""

    def now(self) -> float:
        """Current monotonic time in seconds."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Suspend the caller for ``seconds`` of this clock's time."""
        ...


def _checked(where: str, seconds: float) -> float:
    """``seconds`` unless it is NaN (``ValueError``) or not a number (``TypeError``)."""
    if isinstance(seconds, bool) or not isinstance(seconds, int | float):
        raise TypeError(f"{where}(seconds={seconds!r}): seconds must be a number")
    if seconds != seconds:  # NaN
        raise ValueError(f"{where}(seconds=nan): seconds must be a number, not NaN")
    return seconds


class MonotonicClock:
    """The real clock: :func:`time.monotonic` and :func:`asyncio.sleep`."""

    __slots__ = ()

    now = staticmethod(time.monotonic)

    async def sleep(self, seconds: float) -> None:
        """``asyncio.sleep(seconds)``; NaN is a ``ValueError``.

        ``asyncio.sleep(nan)`` puts a NaN deadline in the event loop's timer
        heap, which then stops ordering: unrelated timers fire late or never
        (the loop stalls). A NaN that slipped past every check stops here.
        """
        await asyncio.sleep(_checked("MonotonicClock.sleep", seconds))

    def __repr__(self) -> str:
        return "MonotonicClock()"


MONOTONIC: Clock = MonotonicClock()


class FakeClock:
    """Virtual time for tests (in the spirit of trio's ``MockClock``).

    Time only moves when told to: :meth:`advance` moves it forward and wakes
    every sleeper whose deadline has passed, in deadline order. With
    ``autojump=True`` a sleeper that is alone in waiting advances the clock to
    its own deadline straight away, so sequential code that backs off runs
    instantly while still observing the right amount of virtual time.
    """

    def __init__(self, start: float = 0.0, *, autojump: bool = False) -> None:
        start = float(start)
        if not math.isfinite(start):
            raise ValueError(f"FakeClock(start={start!r}): start must be a finite number")
        self._now = start
        self.autojump = autojump
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()
        self.slept: list[float] = []
        """Every duration passed to :meth:`sleep`, in call order."""

    def now(self) -> float:
        return self._now

    async def sleep(self, seconds: float) -> None:
        """Wait until :meth:`advance` has moved time ``seconds`` on (NaN: ``ValueError``;
        a NaN deadline at the top of the heap would stop every later sleeper waking)."""
        seconds = _checked("FakeClock.sleep", seconds)
        self.slept.append(seconds)
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        deadline = self._now + seconds
        if self.autojump and not self._sleepers:
            self._now = deadline
            await asyncio.sleep(0)
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (deadline, next(self._seq), future))
        try:
            await future
        finally:
            if not future.done():
                future.cancel()

    def advance(self, seconds: float) -> None:
        """Move time forward by ``seconds`` and wake every sleeper now due."""
        if not (0 <= seconds < math.inf):  # also refuses NaN, which compares false
            raise ValueError(
                f"FakeClock.advance(seconds={seconds!r}): seconds must be a finite number >= 0"
            )
        self._now += seconds
        while self._sleepers and self._sleepers[0][0] <= self._now:
            _, _, future = heapq.heappop(self._sleepers)
            if not future.done():
                future.set_result(None)
        self._sleepers = [s for s in self._sleepers if not s[2].done()]
        heapq.heapify(self._sleepers)

    @property
    def sleepers(self) -> int:
        """How many coroutines are waiting on this clock."""
        return sum(1 for s in self._sleepers if not s[2].done())

    def __repr__(self) -> str:
        return f"FakeClock(now={self._now:g}, sleepers={self.sleepers}, autojump={self.autojump})"
