"""Per-check metrics: plain counters, statistics computed when asked."""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from typing import Any

__all__ = ["CheckMetrics", "CheckMetricsSnapshot", "ResponseTimeStats"]


@dataclass(frozen=True, slots=True)
class ResponseTimeStats:
    """Run durations (seconds) over the most recent ``count`` runs."""

    count: int
    avg: float | None
    min: float | None
    max: float | None
    p95: float | None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready mapping."""
        return {
            "count": self.count,
            "avg": self.avg,
            "min": self.min,
            "max": self.max,
            "p95": self.p95,
        }


@dataclass(frozen=True, slots=True)
class CheckMetricsSnapshot:
    """One check's metrics at one moment. Times are the service clock's seconds.

    ``successes`` counts passing and warning runs, ``failures`` failed ones
    (returned a failure, raised, or timed out); ``failure_patterns`` counts
    failures by kind: ``"timeout"``, ``"failed"`` (the check reported a
    failure), ``"abandoned"`` (not run: the last run was cut off and still
    ignores its cancellation) or the name of the exception type raised.
    ``abandoned_runs`` counts runs that were cut off (timeout or ``stop()``)
    and ignored the cancellation; ``abandoned_running`` is True while such a
    run is still alive (no other run of the check starts meanwhile).
    """

    total_runs: int
    successes: int
    failures: int
    success_rate: float | None
    consecutive_successes: int
    consecutive_failures: int
    last_success_at: float | None
    last_failure_at: float | None
    last_error: str | None
    failure_patterns: dict[str, int] = field(default_factory=dict)
    response_time: ResponseTimeStats = field(
        default_factory=lambda: ResponseTimeStats(0, None, None, None, None)
    )
    abandoned_runs: int = 0
    abandoned_running: bool = False

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready mapping."""
        return {
            "total_runs": self.total_runs,
            "successes": self.successes,
            "failures": self.failures,
            "success_rate": self.success_rate,
            "consecutive_successes": self.consecutive_successes,
            "consecutive_failures": self.consecutive_failures,
            "last_success_at": self.last_success_at,
            "last_failure_at": self.last_failure_at,
            "last_error": self.last_error,
            "failure_patterns": dict(self.failure_patterns),
            "response_time": self.response_time.as_dict(),
            "abandoned_runs": self.abandoned_runs,
            "abandoned_running": self.abandoned_running,
        }


class CheckMetrics:
    """Mutable counters for one check; :meth:`snapshot` computes the rest."""

    __slots__ = (
        "_durations",
        "abandoned_runs",
        "consecutive_failures",
        "consecutive_successes",
        "failure_patterns",
        "failures",
        "last_error",
        "last_failure_at",
        "last_success_at",
        "successes",
    )

    def __init__(self, window: int) -> None:
        self._durations: deque[float] = deque(maxlen=window)
        self.successes = 0
        self.failures = 0
        self.consecutive_successes = 0
        self.consecutive_failures = 0
        self.last_success_at: float | None = None
        self.last_failure_at: float | None = None
        self.last_error: str | None = None
        self.failure_patterns: dict[str, int] = {}
        self.abandoned_runs = 0

    @property
    def total_runs(self) -> int:
        return self.successes + self.failures

    def record_success(self, at: float, duration: float | None) -> None:
        if duration is not None:
            self._durations.append(duration)
        self.successes += 1
        self.consecutive_successes += 1
        self.consecutive_failures = 0
        self.last_success_at = at

    def record_failure(self, at: float, duration: float | None, kind: str, error: str) -> None:
        """Count a failed run; ``duration`` None: nothing ran (not a response time)."""
        if duration is not None:
            self._durations.append(duration)
        self.failures += 1
        self.consecutive_failures += 1
        self.consecutive_successes = 0
        self.last_failure_at = at
        self.last_error = error
        self.failure_patterns[kind] = self.failure_patterns.get(kind, 0) + 1

    def response_time(self) -> ResponseTimeStats:
        durations = sorted(self._durations)
        n = len(durations)
        if not n:
            return ResponseTimeStats(0, None, None, None, None)
        p95 = durations[max(0, math.ceil(0.95 * n) - 1)]
        return ResponseTimeStats(n, sum(durations) / n, durations[0], durations[-1], p95)

    def snapshot(self, *, abandoned_running: bool = False) -> CheckMetricsSnapshot:
        total = self.total_runs
        return CheckMetricsSnapshot(
            total_runs=total,
            successes=self.successes,
            failures=self.failures,
            success_rate=self.successes / total if total else None,
            consecutive_successes=self.consecutive_successes,
            consecutive_failures=self.consecutive_failures,
            last_success_at=self.last_success_at,
            last_failure_at=self.last_failure_at,
            last_error=self.last_error,
            failure_patterns=dict(self.failure_patterns),
            response_time=self.response_time(),
            abandoned_runs=self.abandoned_runs,
            abandoned_running=abandoned_running,
        )
