"""Configuration of a :class:`~virtuoso_resilience.cache.ResilientCache`, and the presets.

Times are in seconds, sizes in bytes.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from .._model import (
    ConfigModel,
    Count,
    PositiveSeconds,
    RuleError,
    Seconds,
)
from ._keys import check_key
from ._store import ENTRY_OVERHEAD

__all__ = [
    "CacheConfig",
    "StaleRule",
    "create_memcached_resilient_config",
    "create_redis_resilient_config",
]

MEMCACHED_MAX_KEY_BYTES = 250
"""memcached's text protocol limit on a key."""
MEMCACHED_MAX_VALUE_BYTES = 1024 * 1024 - 1024
"""memcached's default item limit (1 MiB) less room for the item header and key."""

BackendKind = Literal["memcached", "redis"]


class StaleRule(ConfigModel):
    """What may be served past its time for keys starting with ``prefix`` (RFC 5861).

    The longest matching prefix applies; ``""`` matches every key.
    """

    prefix: str = ""
    """Keys this rule covers (the key as given, before the cache's ``key_prefix``)."""
    stale_if_error: Seconds = 0.0
    """Seconds past its expiry a value may still be served while the backend
    (or a ``get_or_set`` loader) fails; 0: never serve expired values."""
    stale_while_revalidate: Seconds = 0.0
    """``get_or_set`` only: seconds past its expiry a value is still served
    while one background load refreshes it; 0: off. The backend keeps the
    value that much longer than its ``ttl``."""
    max_fallback_age: PositiveSeconds | None = None
    """Refuse (answer a miss) a fallback value older than this while the
    backend is down, even if it has not expired: the age is counted from
    when it was written or last read from the backend. None: no limit."""


class CacheConfig(ConfigModel):
    """How a resilient cache protects its backend and what its fallback keeps.

    Validated on creation and on assignment. The breaker, timeout and retry
    settings are read when the cache is built; ``timeout`` and the fallback
    limits may be changed at run time (they apply from the next call).
    """

    name: Annotated[str, Field(min_length=1, max_length=100)] = "cache"
    """The cache's name: breaker, health check and metrics are named after it."""
    backend: BackendKind | None = None
    """What the client is expected to be (``None``: whatever it is)."""
    timeout: PositiveSeconds = 0.25
    """Limit of one backend call (seconds), connection set-up included."""
    connect_timeout: PositiveSeconds = 0.25
    """Redis: the socket connect timeout set on the client (seconds)."""
    retry_attempts: Count = 2
    """Attempts per backend call, the first included (transient errors only)."""
    retry_base_delay: Seconds = 0.005
    """Backoff before the second attempt (seconds)."""
    retry_max_delay: PositiveSeconds = 0.05
    """Upper bound of one backoff (seconds)."""
    failure_threshold: Count = 3
    """Consecutive failed backend calls that open the breaker."""
    success_threshold: Count = 1
    """Successful trial calls that close it again."""
    recovery_timeout: PositiveSeconds = 2.0
    """Seconds the breaker stays open before a trial call."""
    default_ttl: PositiveSeconds | None = None
    """TTL of ``set`` without one (seconds); None: no expiry."""
    fallback_ttl: PositiveSeconds = 300.0
    """How long the fallback keeps a value read from the backend, or written
    without a TTL (seconds)."""
    fallback_max_entries: Count = 10_000
    """Entries the fallback holds at most."""
    fallback_max_bytes: Count = 64 * 1024 * 1024
    """Bytes (keys, values, bookkeeping) the fallback holds at most."""
    cache_reads: bool = True
    """Keep values read from the backend in the fallback (so an outage can
    serve them); False keeps only this process's own writes."""
    max_key_bytes: Annotated[int, Field(ge=1, le=65_536)] = MEMCACHED_MAX_KEY_BYTES
    """Longest key (UTF-8 bytes, ``key_prefix`` included)."""
    max_value_bytes: Count = MEMCACHED_MAX_VALUE_BYTES
    """Largest stored value (serialised bytes)."""
    key_prefix: str = ""
    """Put in front of every key in the backend (a namespace)."""
    stale: tuple[StaleRule, ...] = ()
    """Stale-if-error / stale-while-revalidate rules per key prefix."""
    writeback_delay: PositiveSeconds = 0.05
    """Pause before a write-back round is tried again after a failure (seconds)."""
    health_interval: PositiveSeconds = 15.0
    """Interval of the registered health check (seconds)."""

    @field_validator("key_prefix")
    @classmethod
    def _prefix_is_key_text(cls, value: str) -> str:
        if value:
            check_key(value, 65_536)
        return value

    @field_validator("stale", mode="before")
    @classmethod
    def _stale_tuple(cls, value: object) -> object:
        return tuple(value) if isinstance(value, list) else value

    @model_validator(mode="after")
    def _delays_ordered(self) -> CacheConfig:
        if self.retry_base_delay > self.retry_max_delay:
            raise RuleError(
                {
                    "retry_base_delay": self.retry_base_delay,
                    "retry_max_delay": self.retry_max_delay,
                },
                "retry_base_delay must be <= retry_max_delay",
            )
        return self

    @model_validator(mode="after")
    def _value_fits_fallback(self) -> CacheConfig:
        need = self.max_value_bytes + self.max_key_bytes + ENTRY_OVERHEAD
        if need > self.fallback_max_bytes:
            raise RuleError(
                {
                    "max_value_bytes": self.max_value_bytes,
                    "fallback_max_bytes": self.fallback_max_bytes,
                },
                f"fallback_max_bytes must hold at least one largest value ({need} bytes "
                "with its key and bookkeeping)",
            )
        return self

    @model_validator(mode="after")
    def _memcached_limits(self) -> CacheConfig:
        if self.backend == "memcached" and self.max_key_bytes > MEMCACHED_MAX_KEY_BYTES:
            raise RuleError(
                {"backend": self.backend, "max_key_bytes": self.max_key_bytes},
                f"memcached keys are at most {MEMCACHED_MAX_KEY_BYTES} bytes",
            )
        return self

    @model_validator(mode="after")
    def _prefixes_unique(self) -> CacheConfig:
        seen: set[str] = set()
        for rule in self.stale:
            if rule.prefix in seen:
                raise RuleError(
                    {"stale": rule.prefix}, f"two stale rules for prefix {rule.prefix!r}"
                )
            seen.add(rule.prefix)
        return self

    def stale_rule(self, key: str) -> StaleRule | None:
        """The rule of the longest prefix matching ``key`` (None when none does)."""
        best: StaleRule | None = None
        for rule in self.stale:
            if key.startswith(rule.prefix) and (
                best is None or len(rule.prefix) > len(best.prefix)
            ):
                best = rule
        return best


def create_memcached_resilient_config(**overrides: object) -> CacheConfig:
    """The preset for memcached: 250 ms calls, two attempts, a breaker that
    opens after 3 consecutive failures and tries again after 2 s, a 10,000
    entry / 64 MiB fallback, memcached's key and value limits. Keyword
    arguments override any field. Works with aiomcache and emcache clients;
    emcache is the recommended one (see docs/cache.md)."""
    settings: dict[str, object] = {
        "name": "memcached",
        "backend": "memcached",
        "max_key_bytes": MEMCACHED_MAX_KEY_BYTES,
        "max_value_bytes": MEMCACHED_MAX_VALUE_BYTES,
    }
    settings.update(overrides)
    return CacheConfig(**settings)  # type: ignore[arg-type]


def create_redis_resilient_config(**overrides: object) -> CacheConfig:
    """The preset for Redis: as for memcached, with 8 MiB values (Redis allows
    512 MiB, which the fallback could not hold) and keys of up to 1,024 bytes.
    Keyword arguments override any field."""
    settings: dict[str, object] = {
        "name": "redis",
        "backend": "redis",
        "max_key_bytes": 1024,
        "max_value_bytes": 8 * 1024 * 1024,
    }
    settings.update(overrides)
    return CacheConfig(**settings)  # type: ignore[arg-type]
