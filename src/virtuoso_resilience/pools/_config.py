""":class:`PoolConfig`: limits, timeouts and health thresholds of one pool (seconds)."""

from __future__ import annotations

from typing import Annotated, Final, Self

from pydantic import Field, model_validator

from .._model import (
    MAX_SECONDS,
    ConfigModel,
    Count,
    NonNegativeCount,
    PositiveRatio,
    PositiveSeconds,
    RuleError,
    Seconds,
)

__all__ = ["MAX_HEALTH_WINDOW", "PoolConfig"]

MAX_HEALTH_WINDOW: Final = 1_000_000
"""The largest ``health_window_requests`` (one byte of memory per request)."""

# A lower bound left at its default follows its limit: lower -> upper.
_FOLLOWS: Final[dict[str, str]] = {
    "max_connections_per_host": "max_connections",
    "health_degraded_error_rate": "health_unhealthy_error_rate",
    "health_min_requests": "health_window_requests",
}
_FOLLOWED_BY: Final[dict[str, str]] = {upper: lower for lower, upper in _FOLLOWS.items()}


class PoolConfig(ConfigModel):
    """Limits, timeouts and health thresholds of one connection pool.

    Times are seconds; every duration is finite (at most
    :data:`~virtuoso_resilience._model.MAX_SECONDS`). Connection limits,
    timeouts and session options are read when the pool creates its session
    (first use); ``acquire_timeout`` and the ``health_*`` thresholds are read
    live: a new ``acquire_timeout`` (higher or lower) applies to every request
    that starts waiting for a connection after the change, the ``health_*``
    fields to the next :meth:`ConnectionPool.health`.

    Rules between fields: ``max_connections_per_host`` <= ``max_connections``
    (unless 0), ``health_degraded_error_rate`` <= ``health_unhealthy_error_rate``,
    ``health_min_requests`` <= ``health_window_requests``. The lower bound of
    each rule, when not set explicitly, follows its limit (the smaller of its
    default and the limit), at creation and on every assignment:
    ``PoolConfig(max_connections=10)`` has ``max_connections_per_host=10``.
    """

    max_connections: Count = 50
    """Connections open at once, across all hosts (aiohttp ``limit``)."""
    max_connections_per_host: NonNegativeCount = 20
    """Connections open at once to one (host, port, TLS) endpoint; 0 = no per-host limit."""
    acquire_timeout: PositiveSeconds = 5.0
    """How long a request may wait for a free connection before PoolExhaustedError (live)."""
    connection_timeout: PositiveSeconds = 10.0
    """Time to open a new connection: each TCP connect (+ TLS handshake) attempt."""
    total_timeout: PositiveSeconds | None = None
    """Whole-request limit (aiohttp ``ClientTimeout.total``); None = no overall limit."""
    read_timeout: PositiveSeconds | None = 30.0
    """Longest silence while reading a response (``sock_read``); None = unbounded."""
    keepalive_timeout: PositiveSeconds = 30.0
    """How long an idle connection is kept for reuse."""
    force_close: bool = False
    """Close every connection after its request (disables keep-alive)."""
    dns_cache_ttl: Annotated[NonNegativeCount, Field(le=int(MAX_SECONDS))] = 300
    """Seconds a DNS answer is cached (whole seconds); 0 disables the DNS cache."""
    enable_cleanup_closed: bool = False
    """Abort TLS transports that a broken server leaves half-closed (aiohttp option)."""
    verify_ssl: bool = True
    """Verify TLS certificates."""
    ssl_cafile: str | None = None
    """CA bundle to verify against instead of the system default."""
    user_agent: Annotated[str, Field(max_length=1024, pattern=r"^[^\r\n\x00]*$")] | None = None
    """Default ``User-Agent`` header (one line, at most 1024 characters); None keeps aiohttp's."""
    trust_env: bool = False
    """Read proxy settings and .netrc from the environment (aiohttp ``trust_env``)."""

    health_degraded_utilisation: PositiveRatio = 0.8
    """Degraded when in-use / max_connections reaches this."""
    health_degraded_on_waiters: bool = True
    """Degraded while any request waits for a connection."""
    health_degraded_error_rate: PositiveRatio = 0.1
    """Degraded when the recent error rate reaches this."""
    health_unhealthy_error_rate: PositiveRatio = 0.5
    """Unhealthy when the recent error rate reaches this."""
    health_window_requests: Annotated[Count, Field(le=MAX_HEALTH_WINDOW)] = 100
    """How many of the most recent requests the error rate is computed over."""
    health_min_requests: Count = 10
    """The error rate is judged only once the window holds this many requests."""
    health_exhaustion_window: Seconds = 60.0
    """Unhealthy for this long after an exhaustion event; 0 = never for that reason."""
    health_count_5xx_as_errors: bool = True
    """Count HTTP 5xx responses as errors in the health error rate (they never raise)."""

    @model_validator(mode="after")
    def _lower_bounds_follow_their_limits(self) -> Self:
        # Runs on creation and on every assignment, before the rules below.
        # A bound the user never set is not in ``model_fields_set``; writing
        # it through ``__dict__`` keeps it that way (and re-validation out).
        fields = type(self).model_fields
        values = self.__dict__
        for lower, upper in _FOLLOWS.items():
            if lower not in self.model_fields_set:
                values[lower] = min(fields[lower].default, values[upper])
        return self

    @model_validator(mode="after")
    def _per_host_within_total(self) -> Self:
        per_host, total = self.max_connections_per_host, self.max_connections
        if per_host > total:
            raise RuleError(
                {"max_connections_per_host": per_host, "max_connections": total},
                f"max_connections_per_host ({per_host}) must be 0 (no per-host limit) "
                f"or <= max_connections ({total})",
            )
        return self

    @model_validator(mode="after")
    def _error_rates_ordered(self) -> Self:
        degraded, unhealthy = self.health_degraded_error_rate, self.health_unhealthy_error_rate
        if degraded > unhealthy:
            raise RuleError(
                {"health_degraded_error_rate": degraded, "health_unhealthy_error_rate": unhealthy},
                f"health_degraded_error_rate ({degraded:g}) must be <= "
                f"health_unhealthy_error_rate ({unhealthy:g})",
            )
        return self

    @model_validator(mode="after")
    def _min_requests_fit_the_window(self) -> Self:
        least, window = self.health_min_requests, self.health_window_requests
        if least > window:
            raise RuleError(
                {"health_min_requests": least, "health_window_requests": window},
                f"health_min_requests ({least}) must be <= health_window_requests ({window})",
            )
        return self

    def _notify(self, name: str) -> None:
        # Observers of a bound that follows ``name`` hear of it too.
        super()._notify(name)
        lower = _FOLLOWED_BY.get(name)
        if lower is not None and lower not in self.model_fields_set:
            super()._notify(lower)
