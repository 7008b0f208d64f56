"""Per-call time limits without a timer per call.

``asyncio.timeout`` schedules (and cancels) one loop timer per call; on a
cache call that costs as much CPU as the memcached round trip itself (see
docs/performance.md). :class:`Deadlines` keeps one watchdog task per cache
instead: a call records its deadline and task in a dict (two dict
operations and a clock read), and the watchdog, waking every
``granularity`` seconds while calls are in flight, cancels the tasks whose
deadline has passed. The caller then gets
:class:`~virtuoso_resilience.errors.ResilienceTimeoutError`, exactly as from
:class:`~virtuoso_resilience.TimeoutPolicy`: a call is stopped after at
least ``seconds`` and at most ``seconds + granularity``.

A caller's own cancellation is never turned into a timeout: the watchdog
marks what it cancelled and ``Task.uncancel()`` tells whether anyone else
asked for cancellation too (the same rule ``asyncio.timeout`` follows).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from ..errors import ResilienceTimeoutError

__all__ = ["Deadlines"]


class _Call:
    __slots__ = ("deadline", "fired", "task")

    def __init__(self, deadline: float, task: asyncio.Task[Any]) -> None:
        self.deadline = deadline
        self.task = task
        self.fired = False


def _no_loop() -> float:  # pragma: no cover - replaced by the loop's clock on first use
    raise RuntimeError("Deadlines used outside an event loop")


class Deadlines:
    """Time limits (seconds, event-loop clock) for the calls of one component."""

    __slots__ = ("_calls", "_now", "_watchdog", "name", "seconds", "timeouts")

    def __init__(self, name: str, seconds: float) -> None:
        self.name = name
        self.seconds = seconds
        self.timeouts = 0
        self._calls: dict[int, _Call] = {}
        self._watchdog: asyncio.Task[None] | None = None
        self._now: Callable[[], float] = _no_loop

    async def call(self, fn: Callable[..., Awaitable[Any]], *args: Any) -> Any:
        """``await fn(*args)`` within ``seconds``, else :class:`ResilienceTimeoutError`."""
        task = asyncio.current_task()
        watchdog = self._watchdog
        if watchdog is None or watchdog.done() or task is None:
            self._start()
            if task is None:  # pragma: no cover - always inside a task
                return await fn(*args)
        seconds = self.seconds
        entry = _Call(self._now() + seconds, task)
        calls = self._calls
        key = id(entry)
        calls[key] = entry
        try:
            result = await fn(*args)
        except asyncio.CancelledError:
            if entry.fired and task.uncancel() == 0:
                self.timeouts += 1
                raise ResilienceTimeoutError(self.name, seconds) from None
            raise
        except Exception as exc:
            if entry.fired:  # the callee turned our cancellation into its own error
                task.uncancel()
                self.timeouts += 1
                raise ResilienceTimeoutError(self.name, seconds) from exc
            raise
        finally:
            del calls[key]
        if entry.fired:  # the callee finished although it was cancelled
            task.uncancel()
        return result

    def _start(self) -> None:
        loop = asyncio.get_running_loop()
        self._now = loop.time
        self._watchdog = loop.create_task(self._watch(), name=f"{self.name}-deadlines")

    async def _watch(self) -> None:
        """Cancel overdue calls; stop after a while without any call in flight."""
        loop = asyncio.get_running_loop()
        idle_rounds = 0
        while True:
            await asyncio.sleep(max(0.001, self.seconds / 4))
            calls = self._calls
            if not calls:
                idle_rounds += 1
                if idle_rounds > 40:
                    return
                continue
            idle_rounds = 0
            now = loop.time()
            for entry in list(calls.values()):
                if not entry.fired and entry.deadline <= now:
                    entry.fired = True
                    entry.task.cancel()

    def close(self) -> None:
        """Stop the watchdog (calls still in flight are no longer limited)."""
        if self._watchdog is not None and not self._watchdog.done():
            self._watchdog.cancel()
        self._watchdog = None
