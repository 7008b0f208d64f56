"""Trace metrics behind :class:`ConnectionPool`: counters, histograms, health rules.

Everything here is plain integers and floats updated in place by the pool's
aiohttp trace callbacks; dictionaries are built only when a snapshot is asked
for. Times are seconds.
"""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass
from typing import Any, Final, Literal

from ._config import PoolConfig

__all__ = ["DEFAULT_BUCKETS", "HealthStatus", "PoolHealth", "judge_health"]

DEFAULT_BUCKETS: Final[tuple[float, ...]] = (
    0.005,
    0.01,
    0.025,
    0.05,
    0.075,
    0.1,
    0.25,
    0.5,
    0.75,
    1.0,
    2.5,
    5.0,
    7.5,
    10.0,
)
"""Histogram upper bounds in seconds (Prometheus' defaults); ``+Inf`` is implied."""

HealthStatus = Literal["healthy", "degraded", "unhealthy"]

# Outcomes of one request in the recent window.
_OK: Final = 0
_FAILED: Final = 1  # an exception (no response)
_SERVER_ERROR: Final = 2  # an HTTP 5xx response


@dataclass(frozen=True, slots=True)
class PoolHealth:
    """A connection pool's health, judged when asked.

    ``utilisation`` is connections in use / ``max_connections`` (0.0 to 1.0),
    ``waiting`` the requests queued for a connection right now, ``error_rate``
    the share of failed requests among the most recent ones (see
    ``PoolConfig.health_window_requests``): requests that raised, plus HTTP 5xx
    responses unless ``PoolConfig.health_count_5xx_as_errors`` is off.
    ``reason`` says why in words.
    """

    status: HealthStatus
    utilisation: float
    waiting: int
    error_rate: float
    reason: str

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "status": self.status,
            "utilisation": self.utilisation,
            "waiting": self.waiting,
            "error_rate": self.error_rate,
            "reason": self.reason,
        }


class _Histogram:
    """Fixed-bucket histogram (count, sum, max, per-bucket counts)."""

    __slots__ = ("bounds", "count", "counts", "max", "sum")

    def __init__(self, bounds: tuple[float, ...] = DEFAULT_BUCKETS) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)
        self.count = 0
        self.sum = 0.0
        self.max = 0.0

    def observe(self, value: float) -> None:
        # bisect_left: a value equal to a bound belongs to that bucket (le).
        self.counts[bisect_left(self.bounds, value)] += 1
        self.count += 1
        self.sum += value
        if value > self.max:
            self.max = value

    def as_dict(self) -> dict[str, Any]:
        """Cumulative buckets keyed like Prometheus' ``le`` label."""
        buckets: dict[str, int] = {}
        running = 0
        for bound, n in zip(self.bounds, self.counts, strict=False):
            running += n
            buckets[repr(bound)] = running
        buckets["+Inf"] = self.count
        return {"count": self.count, "sum": self.sum, "max": self.max, "buckets": buckets}


class _PoolStats:
    """The live counters of one pool."""

    __slots__ = (
        "created",
        "dns_hits",
        "dns_misses",
        "errors",
        "exhausted",
        "failed",
        "in_use",
        "last_exhausted_at",
        "requests",
        "response",
        "reused",
        "ring",
        "ring_5xx",
        "ring_failures",
        "ring_len",
        "ring_pos",
        "statuses",
        "succeeded",
        "wait",
        "waiting",
    )

    def __init__(self, window: int) -> None:
        self.created = 0
        self.reused = 0
        self.in_use = 0
        self.waiting = 0
        self.requests = 0
        self.succeeded = 0
        self.failed = 0
        self.errors: dict[str, int] = {}
        self.statuses = [0] * 6  # index = status // 100 (1xx..5xx); 0 unused
        self.exhausted = 0
        self.last_exhausted_at: float | None = None
        self.dns_hits = 0
        self.dns_misses = 0
        self.wait = _Histogram()
        self.response = _Histogram()
        self.ring = bytearray(window)
        self.ring_pos = 0
        self.ring_len = 0
        self.ring_failures = 0
        self.ring_5xx = 0

    # ----------------------------------------------------------- recent window

    def outcome(self, kind: int) -> None:
        """Push one request outcome (``_OK``, ``_FAILED``, ``_SERVER_ERROR``) into the window."""
        ring = self.ring
        pos = self.ring_pos
        size = len(ring)
        if self.ring_len == size:
            old = ring[pos]
            if old == _FAILED:
                self.ring_failures -= 1
            elif old == _SERVER_ERROR:
                self.ring_5xx -= 1
        else:
            self.ring_len += 1
        ring[pos] = kind
        if kind == _FAILED:
            self.ring_failures += 1
        elif kind == _SERVER_ERROR:
            self.ring_5xx += 1
        pos += 1
        self.ring_pos = 0 if pos == size else pos

    def resize_window(self, window: int) -> None:
        """Start a new window of ``window`` requests (recent outcomes are kept)."""
        recent = [self.ring[(self.ring_pos - 1 - i) % len(self.ring)] for i in range(self.ring_len)]
        self.ring = bytearray(window)
        self.ring_pos = 0
        self.ring_len = 0
        self.ring_failures = 0
        self.ring_5xx = 0
        for kind in reversed(recent[:window]):
            self.outcome(kind)

    @property
    def error_rate(self) -> float:
        """Share of the recent requests that raised."""
        return self.ring_failures / self.ring_len if self.ring_len else 0.0

    @property
    def server_error_rate(self) -> float:
        """Share of the recent requests answered with an HTTP 5xx."""
        return self.ring_5xx / self.ring_len if self.ring_len else 0.0

    # ------------------------------------------------------------------ views

    def as_dict(self, open_connections: int, now: float) -> dict[str, Any]:
        idle = max(0, open_connections - self.in_use)
        last = self.last_exhausted_at
        return {
            "connections": {
                "created": self.created,
                "reused": self.reused,
                "open": open_connections,
                "in_use": self.in_use,
                "idle": idle,
                "waiting": self.waiting,
            },
            "requests": {
                "started": self.requests,
                "succeeded": self.succeeded,
                "failed": self.failed,
                "errors": dict(sorted(self.errors.items())),
                "responses": {f"{i}xx": self.statuses[i] for i in range(1, 6)},
                "recent_window": self.ring_len,
                "recent_error_rate": self.error_rate,
                "recent_5xx_rate": self.server_error_rate,
            },
            "wait_seconds": self.wait.as_dict(),
            "response_seconds": self.response.as_dict(),
            "exhaustion": {
                "events": self.exhausted,
                "last_seconds_ago": None if last is None else max(0.0, now - last),
            },
            "dns_cache": {"hits": self.dns_hits, "misses": self.dns_misses},
        }


def judge_health(
    stats: _PoolStats,
    config: PoolConfig,
    *,
    max_connections: int,
    now: float,
    closed: bool,
) -> PoolHealth:
    """Apply ``config``'s health thresholds to ``stats``."""
    utilisation = min(1.0, stats.in_use / max_connections) if max_connections else 0.0
    waiting = stats.waiting
    count_5xx = config.health_count_5xx_as_errors
    errors = stats.ring_failures + (stats.ring_5xx if count_5xx else 0)
    error_rate = errors / stats.ring_len if stats.ring_len else 0.0
    if closed:
        return PoolHealth("unhealthy", utilisation, waiting, error_rate, "pool is closed")
    judged = stats.ring_len >= config.health_min_requests
    unhealthy: list[str] = []
    degraded: list[str] = []
    window = config.health_exhaustion_window
    last = stats.last_exhausted_at
    if last is not None and window > 0 and now - last < window:
        unhealthy.append(f"pool exhausted {now - last:.1f}s ago (within {window:g}s)")
    if judged and error_rate >= config.health_degraded_error_rate:
        unhealthy_rate = error_rate >= config.health_unhealthy_error_rate
        if unhealthy_rate:
            limit = config.health_unhealthy_error_rate
        else:
            limit = config.health_degraded_error_rate
        text = f"error rate {error_rate:.2f} >= {limit:g} over the last {stats.ring_len} requests"
        if count_5xx and stats.ring_5xx:
            text += f" (exceptions {stats.error_rate:.2f}, HTTP 5xx {stats.server_error_rate:.2f})"
        (unhealthy if unhealthy_rate else degraded).append(text)
    if utilisation >= config.health_degraded_utilisation:
        degraded.append(
            f"utilisation {utilisation:.2f} >= {config.health_degraded_utilisation:g} "
            f"({stats.in_use}/{max_connections} connections in use)"
        )
    if waiting and config.health_degraded_on_waiters:
        degraded.append(f"{waiting} request(s) waiting for a connection")
    if unhealthy:
        reason = "; ".join(unhealthy + degraded)
        return PoolHealth("unhealthy", utilisation, waiting, error_rate, reason)
    if degraded:
        return PoolHealth("degraded", utilisation, waiting, error_rate, "; ".join(degraded))
    return PoolHealth("healthy", utilisation, waiting, error_rate, "within thresholds")
