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
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar, Literal, Self, get_args

from pydantic import Field, TypeAdapter, ValidationError

from ._model import ConfigModel
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


@dataclass(frozen=True, slots=True)
class _CrossRule:
    """A rule between fields; ``check`` returns the errors for a set of values."""

    fields: tuple[str, ...]
    check: Callable[[str, Mapping[str, Any]], list[FieldError]]


def _delay_order(model: str, v: Mapping[str, Any]) -> list[FieldError]:
    base, top = v["default_base_delay"], v["default_max_delay"]
    if base <= top:
        return []
    return [
        FieldError(model, "default_base_delay", base, f"must be <= default_max_delay ({top!r})"),
        FieldError(model, "default_max_delay", top, f"must be >= default_base_delay ({base!r})"),
    ]


def _per_host_within_total(model: str, v: Mapping[str, Any]) -> list[FieldError]:
    per_host, total = v["default_max_connections_per_host"], v["default_max_connections"]
    if per_host == 0 or per_host <= total:
        return []
    return [
        FieldError(
            model,
            "default_max_connections_per_host",
            per_host,
            f"must be 0 (unlimited) or <= default_max_connections ({total!r})",
        ),
        FieldError(
            model,
            "default_max_connections",
            total,
            f"must be >= default_max_connections_per_host ({per_host!r})",
        ),
    ]


def _burst_needs_rate(model: str, v: Mapping[str, Any]) -> list[FieldError]:
    burst, rate = v["default_rate_limit_burst"], v["default_rate_limit"]
    if burst is None or rate is not None:
        return []
    return [
        FieldError(
            model,
            "default_rate_limit_burst",
            burst,
            "must be None while default_rate_limit is None (a burst needs a rate)",
        ),
        FieldError(
            model,
            "default_rate_limit",
            rate,
            f"must be set when default_rate_limit_burst is set ({burst!r})",
        ),
    ]


class ResilienceConfiguration(ConfigModel):
    """Defaults for every resilience component (durations in seconds).

    The defaults are the recommended production values. Optional features
    (per-attempt timeout, bulkhead, rate limit, retry time budget) are off
    (``None``) unless set.

    >>> config = ResilienceConfiguration(default_failure_threshold=8)
    >>> config.default_circuit_timeout
    60.0
    """

    # Circuit breakers
    default_failure_threshold: Annotated[int, Field(ge=1)] = 5
    """Failures that open a circuit breaker."""
    default_success_threshold: Annotated[int, Field(ge=1)] = 3
    """Successful trial calls in half-open state that close it again."""
    default_circuit_timeout: Annotated[float, Field(gt=0, allow_inf_nan=False)] = 60.0
    """Seconds an open breaker waits before admitting a trial call."""

    # Retry policies
    default_max_retries: Annotated[int, Field(ge=0)] = 3
    """Retries after the first attempt (0: no retry)."""
    default_base_delay: Annotated[float, Field(ge=0, allow_inf_nan=False)] = 1.0
    """First backoff delay, seconds; must be <= ``default_max_delay``."""
    default_max_delay: Annotated[float, Field(gt=0, allow_inf_nan=False)] = 30.0
    """Largest backoff delay, seconds."""

    # Connection pooling
    default_max_connections: Annotated[int, Field(ge=1)] = 50
    """Connections per pool, all hosts together."""
    default_max_connections_per_host: Annotated[int, Field(ge=0)] = 20
    """Connections per host (0: unlimited, as in aiohttp); <= ``default_max_connections``."""
    default_connection_timeout: Annotated[float, Field(gt=0, allow_inf_nan=False)] = 10.0
    """Seconds to wait for a connection."""

    # Health checks
    default_health_check_interval: Annotated[float, Field(gt=0, allow_inf_nan=False)] = 60.0
    """Seconds between two runs of a health check."""
    enable_health_checks: bool = True
    """Run health checks in the background."""

    # Optional pipeline stages: None = off
    default_call_timeout: Annotated[float | None, Field(gt=0, allow_inf_nan=False)] = None
    """Per-attempt time limit, seconds."""
    default_max_concurrent: Annotated[int | None, Field(ge=1)] = None
    """Bulkhead: calls allowed at once."""
    default_rate_limit: Annotated[float | None, Field(gt=0, allow_inf_nan=False)] = None
    """Rate limit: calls per second."""
    default_rate_limit_burst: Annotated[int | None, Field(ge=1)] = None
    """Rate limit: calls allowed in a burst (needs ``default_rate_limit``)."""
    default_retry_max_elapsed: Annotated[float | None, Field(gt=0, allow_inf_nan=False)] = None
    """Retry time budget: seconds after which no new attempt starts."""

    _cross_rules: ClassVar[tuple[_CrossRule, ...]] = (
        _CrossRule(("default_base_delay", "default_max_delay"), _delay_order),
        _CrossRule(
            ("default_max_connections_per_host", "default_max_connections"),
            _per_host_within_total,
        ),
        _CrossRule(("default_rate_limit_burst", "default_rate_limit"), _burst_needs_rate),
    )

    def __init__(self, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ConfigurationError as exc:
            # Report the cross-field rules that hold between the valid fields too:
            # one error listing every bad field.
            values = {name: info.default for name, info in type(self).model_fields.items()}
            values.update(data)
            extra = self._cross_field_errors(values, skip=set(exc.fields))
            if extra:
                raise ConfigurationError([*exc.errors, *extra]) from None
            raise
        errors = self._cross_field_errors(self.__dict__)
        if errors:
            raise ConfigurationError(errors) from None

    def __setattr__(self, name: str, value: Any) -> None:
        if any(name in rule.fields for rule in self._cross_rules):
            probe = self.model_copy()
            try:
                type(self).__pydantic_validator__.validate_assignment(probe, name, value)
            except ValidationError:
                pass  # the per-field error is raised (and worded) by the assignment below
            else:
                errors = self._cross_field_errors(probe.__dict__, only=name)
                if errors:
                    raise ConfigurationError(errors)
        super().__setattr__(name, value)

    @classmethod
    def _cross_field_errors(
        cls, values: Mapping[str, Any], *, skip: Iterable[str] = (), only: str | None = None
    ) -> list[FieldError]:
        skipped = set(skip)
        errors: list[FieldError] = []
        for rule in cls._cross_rules:
            if skipped.intersection(rule.fields) or (only is not None and only not in rule.fields):
                continue
            errors.extend(rule.check(cls.__name__, values))
        return errors

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
