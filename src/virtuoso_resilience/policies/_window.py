"""Sliding windows of call outcomes for failure-rate and slow-call-rate rules.

Both windows keep running totals so that recording a call and reading the
rates are O(1) (the time window is O(1) amortised: it clears the buckets it
skips over). They hold plain integers only: a 100-call count window is one
100-byte ``bytearray``.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["CountWindow", "TimeWindow", "WindowTotals"]

FAILED = 1
SLOW = 2


@dataclass(frozen=True, slots=True)
class WindowTotals:
    """Calls, failures and slow calls currently inside a window."""

    calls: int
    failures: int
    slow: int

    @property
    def failure_rate(self) -> float:
        """Failed calls as a percentage of calls (0.0 for an empty window)."""
        return 100.0 * self.failures / self.calls if self.calls else 0.0

    @property
    def slow_rate(self) -> float:
        """Slow calls as a percentage of calls (0.0 for an empty window)."""
        return 100.0 * self.slow / self.calls if self.calls else 0.0


class CountWindow:
    """The outcomes of the last ``size`` calls."""

    __slots__ = ("_flags", "_next", "calls", "failures", "size", "slow")

    def __init__(self, size: int) -> None:
        self.size = size
        self._flags = bytearray(size)
        self._next = 0
        self.calls = 0
        self.failures = 0
        self.slow = 0

    def record(self, flags: int, now: float) -> None:
        """Add one call (``flags``: FAILED | SLOW bits); ``now`` is unused."""
        index = self._next
        if self.calls == self.size:
            old = self._flags[index]
            self.failures -= old & FAILED
            self.slow -= (old & SLOW) >> 1
        else:
            self.calls += 1
        self._flags[index] = flags
        self.failures += flags & FAILED
        self.slow += (flags & SLOW) >> 1
        self._next = index + 1 if index + 1 < self.size else 0

    def totals(self, now: float) -> WindowTotals:
        return WindowTotals(self.calls, self.failures, self.slow)

    def clear(self) -> None:
        self._flags = bytearray(self.size)
        self._next = self.calls = self.failures = self.slow = 0

    def __repr__(self) -> str:
        return f"CountWindow(size={self.size}, calls={self.calls}, failures={self.failures})"


class TimeWindow:
    """The outcomes of the calls made in the last ``size`` seconds (1 s buckets)."""

    __slots__ = (
        "_bucket_calls",
        "_bucket_failures",
        "_bucket_slow",
        "_head",
        "calls",
        "failures",
        "size",
        "slow",
    )

    def __init__(self, size: int) -> None:
        self.size = size
        self._bucket_calls = [0] * size
        self._bucket_failures = [0] * size
        self._bucket_slow = [0] * size
        self._head: int | None = None  # the whole second of the newest bucket
        self.calls = 0
        self.failures = 0
        self.slow = 0

    def _advance(self, now: float) -> int:
        second = int(now)
        head = self._head
        if head is None:
            self._head = second
        elif second > head:
            for s in range(head + 1, min(second, head + self.size) + 1):
                i = s % self.size
                self.calls -= self._bucket_calls[i]
                self.failures -= self._bucket_failures[i]
                self.slow -= self._bucket_slow[i]
                self._bucket_calls[i] = self._bucket_failures[i] = self._bucket_slow[i] = 0
            self._head = second
        return second % self.size

    def record(self, flags: int, now: float) -> None:
        """Add one call made at ``now`` (seconds, the breaker's clock)."""
        i = self._advance(now)
        failed = flags & FAILED
        slow = (flags & SLOW) >> 1
        self._bucket_calls[i] += 1
        self._bucket_failures[i] += failed
        self._bucket_slow[i] += slow
        self.calls += 1
        self.failures += failed
        self.slow += slow

    def totals(self, now: float) -> WindowTotals:
        self._advance(now)
        return WindowTotals(self.calls, self.failures, self.slow)

    def clear(self) -> None:
        self.__init__(self.size)  # type: ignore[misc]

    def __repr__(self) -> str:
        return f"TimeWindow(size={self.size}s, calls={self.calls}, failures={self.failures})"
