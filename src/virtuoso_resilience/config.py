"""The configuration root: :class:`ResilienceConfiguration` and its presets.

One object holds the defaults every component starts from: circuit breakers,
retry policies, connection pools, health checks, and the optional per-attempt
timeout, bulkhead and rate limit. It is validated on creation *and* on
assignment; a bad value raises
:class:`~virtuoso_resilience.errors.ConfigurationError` naming every bad
field, the value given and what is allowed, and leaves the old value in place.

Durations are in seconds.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Annotated, Any, Final, Literal, Self, get_args

from pydantic import Field, TypeAdapter, ValidationError, model_validator

from ._model import (
    MAX_SECONDS,
    ConfigModel,
    Count,
    NonNegativeCount,
    PositiveFloat,
    PositiveSeconds,
    RuleError,
    Seconds,
)
from .errors import ConfigurationError, FieldError

__all__ = [
    "PresetName",
    "ResilienceConfiguration",
    "create_default_resilience_config",
    "create_development_resilience_config",
    "create_production_resilience_config",
]

PresetName = Literal["production", "development"]
"""The names :meth:`ResilienceConfiguration.preset` accepts."""

_NONE_STRINGS = frozenset({"", "none", "null"})

MIN_RATE: Final = 1 / MAX_SECONDS
"""The smallest ``default_rate_limit`` (calls per second): one call per ``MAX_SECONDS``."""
MAX_BURST: Final = 1_000_000_000
"""The largest ``default_rate_limit_burst``."""


class ResilienceConfiguration(ConfigModel):
    """Defaults for every resilience component (durations in seconds).

    The defaults are the recommended production values. Optional features
    (per-attempt timeout, bulkhead, rate limit, retry time budget) are off
    (``None``) unless set. A
    :class:`~virtuoso_resilience.ResilienceRegistry` built with a
    configuration makes its breakers, retry policies, pools, health checks,
    bulkheads, rate limiters, timeouts and pipelines from these fields (see
    ``docs/configuration.md`` for which field feeds what).

    >>> config = ResilienceConfiguration(default_failure_threshold=8)
    >>> config.default_circuit_timeout
    60.0
    """

    # Circuit breakers
    default_failure_threshold: Count = 5
    """Failures that open a circuit breaker."""
    default_success_threshold: Count = 3
    """Successful trial calls in half-open state that close it again."""
    default_circuit_timeout: PositiveSeconds = 60.0
    """Seconds an open breaker waits before admitting a trial call."""

    # Retry policies
    default_max_retries: NonNegativeCount = 3
    """Retries after the first attempt (0: no retry)."""
    default_base_delay: Seconds = 1.0
    """First backoff delay, seconds; must be <= ``default_max_delay``."""
    default_max_delay: PositiveSeconds = 30.0
    """Largest backoff delay, seconds."""

    # Connection pooling
    default_max_connections: Count = 50
    """Connections per pool, all hosts together."""
    default_max_connections_per_host: NonNegativeCount = 20
    """Connections per host (0: unlimited, as in aiohttp); <= ``default_max_connections``."""
    default_connection_timeout: PositiveSeconds = 10.0
    """Seconds to open a connection (each TCP connect + TLS handshake attempt)."""

    # Health checks
    default_health_check_interval: PositiveSeconds = 60.0
    """Seconds between two runs of a health check."""
    enable_health_checks: bool = True
    """Run health checks in the background."""

    # Optional pipeline stages: None = off
    default_call_timeout: PositiveSeconds | None = None
    """Per-attempt time limit, seconds."""
    default_max_concurrent: Count | None = None
    """Bulkhead: calls allowed at once."""
    default_rate_limit: Annotated[PositiveFloat, Field(ge=MIN_RATE)] | None = None
    """Rate limit: calls per second (at least one per ``MAX_SECONDS``: longer waits overflow)."""
    default_rate_limit_burst: Annotated[Count, Field(le=MAX_BURST)] | None = None
    """Rate limit: calls allowed in a burst (needs ``default_rate_limit``)."""
    default_retry_max_elapsed: PositiveSeconds | None = None
    """Retry time budget: seconds after which no new attempt starts."""

    @model_validator(mode="after")
    def _delays_ordered(self) -> Self:
        base, top = self.default_base_delay, self.default_max_delay
        if base > top:
            raise RuleError(
                {"default_base_delay": base, "default_max_delay": top},
                f"default_base_delay ({base!r}) must be <= default_max_delay ({top!r})",
            )
        return self

    @model_validator(mode="after")
    def _per_host_within_total(self) -> Self:
        per_host, total = self.default_max_connections_per_host, self.default_max_connections
        if per_host > total:
            raise RuleError(
                {"default_max_connections_per_host": per_host, "default_max_connections": total},
                f"default_max_connections_per_host ({per_host!r}) must be 0 (unlimited) "
                f"or <= default_max_connections ({total!r})",
            )
        return self

    @model_validator(mode="after")
    def _burst_needs_rate(self) -> Self:
        burst, rate = self.default_rate_limit_burst, self.default_rate_limit
        if burst is not None and rate is None:
            raise RuleError(
                {"default_rate_limit_burst": burst, "default_rate_limit": rate},
                f"default_rate_limit_burst ({burst!r}) needs default_rate_limit "
                "(a burst needs a rate): set both or neither",
            )
        return self

    @classmethod
    def from_mapping(cls, data: Mapping[str, object]) -> Self:
        """Build a configuration from loosely typed data (environment, files).

        Strings are converted: ``"5"`` for an integer, ``"1.5"`` for a number,
        ``"true"``/``"false"``/``"yes"``/``"no"``/``"on"``/``"off"``/``"1"``/``"0"``
        for a boolean, and ``""``/``"none"``/``"null"`` for ``None`` where a
        field is optional. Then every value is validated as on creation: a
        bad value, an unknown key (the error names the allowed keys) or a
        broken rule between fields raises one
        :class:`~virtuoso_resilience.errors.ConfigurationError` listing them all.
        """
        fields = cls.model_fields
        converted: dict[str, Any] = {}
        for key, raw in data.items():
            name = str(key)
            info = fields.get(name)
            value: Any = raw
            if info is not None:
                annotation: Any = info.annotation
                if (
                    isinstance(raw, str)
                    and type(None) in get_args(annotation)
                    and raw.strip().lower() in _NONE_STRINGS
                ):
                    value = None
                else:
                    try:
                        value = _lax_adapter(annotation).validate_python(raw, strict=False)
                    except ValidationError:
                        value = raw  # left as given; the strict validation below words the error
            converted[name] = value
        return cls(**converted)

    @classmethod
    def preset(cls, name: PresetName) -> ResilienceConfiguration:
        """The named preset: ``"production"`` or ``"development"``."""
        factory = _PRESETS.get(name) if isinstance(name, str) else None
        if factory is None:
            raise ConfigurationError(
                [
                    FieldError(
                        cls.__name__,
                        "preset",
                        name,
                        "must be one of " + ", ".join(repr(n) for n in _PRESETS),
                    )
                ]
            )
        return factory()

    def to_dict(self) -> dict[str, Any]:
        """Every field and its value, as plain Python data."""
        return self.model_dump()


@functools.cache
def _lax_adapter(annotation: Any) -> TypeAdapter[Any]:
    """Type conversion only (bounds are checked by the strict validation)."""
    return TypeAdapter(annotation)


def create_production_resilience_config() -> ResilienceConfiguration:
    """The recommended production settings (the seed's production block)."""
    return ResilienceConfiguration(
        default_failure_threshold=5,
        default_success_threshold=3,
        default_circuit_timeout=60.0,
        default_max_retries=3,
        default_base_delay=1.0,
        default_max_delay=30.0,
        default_max_connections=50,
        default_max_connections_per_host=20,
        default_connection_timeout=10.0,
        default_health_check_interval=60.0,
        enable_health_checks=True,
    )


def create_development_resilience_config() -> ResilienceConfiguration:
    """Development-friendly settings: more permissive breakers, more retries."""
    return ResilienceConfiguration(
        default_failure_threshold=8,
        default_circuit_timeout=30.0,
        default_max_retries=4,
        default_health_check_interval=30.0,
    )


def create_default_resilience_config() -> ResilienceConfiguration:
    """The default configuration: the production settings."""
    return create_production_resilience_config()


_PRESETS: dict[str, Callable[[], ResilienceConfiguration]] = {
    "production": create_production_resilience_config,
    "development": create_development_resilience_config,
}
