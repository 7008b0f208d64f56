"""Validated configuration models.

:class:`ConfigModel` is the base of every configuration object. Values are
validated on creation *and* on assignment; a rejected value raises
:class:`~virtuoso_resilience.errors.ConfigurationError` naming every bad
field, the value given and what is allowed, and leaves the old value in place.
"""

from __future__ import annotations

import enum
import logging
import weakref
from collections.abc import Callable, Iterable
from typing import Annotated, Any, ClassVar, cast, get_args, get_origin

import annotated_types
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, SecretStr, ValidationError
from pydantic.fields import FieldInfo

from .errors import ConfigurationError, FieldError

__all__ = [
    "MAX_COUNT",
    "MAX_SECONDS",
    "ConfigModel",
    "Count",
    "FiniteFloat",
    "NonNegativeCount",
    "NonNegativeFloat",
    "Percent",
    "PositiveFloat",
    "PositiveRatio",
    "PositiveSeconds",
    "Ratio",
    "RuleError",
    "Seconds",
    "check_name",
    "describe_field",
]

_log = logging.getLogger("virtuoso_resilience.config")

# ----------------------------------------------------------------- shared types
#
# Every numeric field of every configuration object uses one of these. Strict
# mode (see ConfigModel) already refuses bools and strings for numbers; these
# add finiteness (no NaN, no +-inf) and the bounds. ``gt=0`` also refuses -0.0.
# Durations are capped at MAX_SECONDS: larger values overflow C timevals in
# sockets and timers (``OverflowError`` deep inside asyncio or aiohttp).

MAX_SECONDS: float = 1e9
"""The longest duration any configuration accepts (about 31.7 years)."""
MAX_COUNT: int = 10**9
"""The largest count any configuration accepts: a 5,000-digit int would pass
``ge=1`` and then break every snapshot (``json.dumps`` refuses to print it)."""

FiniteFloat = Annotated[float, Field(allow_inf_nan=False)]
"""Any finite number."""
NonNegativeFloat = Annotated[float, Field(ge=0, allow_inf_nan=False)]
"""A finite number >= 0."""
PositiveFloat = Annotated[float, Field(gt=0, allow_inf_nan=False)]
"""A finite number > 0 (a rate, a capacity, a weight)."""
Seconds = Annotated[float, Field(ge=0, le=MAX_SECONDS, allow_inf_nan=False)]
"""A finite duration in seconds, 0 allowed."""
PositiveSeconds = Annotated[float, Field(gt=0, le=MAX_SECONDS, allow_inf_nan=False)]
"""A finite duration in seconds, > 0."""
Ratio = Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)]
"""A fraction from 0 to 1 inclusive."""
PositiveRatio = Annotated[float, Field(gt=0, le=1, allow_inf_nan=False)]
"""A fraction above 0, up to 1."""
Percent = Annotated[float, Field(gt=0, le=100, allow_inf_nan=False)]
"""A percentage above 0, up to 100."""
Count = Annotated[int, Field(ge=1, le=MAX_COUNT)]
"""A whole number from 1 to :data:`MAX_COUNT`."""
NonNegativeCount = Annotated[int, Field(ge=0, le=MAX_COUNT)]
"""A whole number from 0 to :data:`MAX_COUNT`."""

MAX_NAME_LENGTH = 200
"""The longest component name accepted (names appear in logs, metrics and reprs)."""
_NAME_RULE = (
    f"must be a non-empty string of at most {MAX_NAME_LENGTH} printable characters "
    "(no control characters)"
)


def check_name(owner: str, name: object, field: str = "name") -> str:
    """``name`` if it is a usable component name, else a :class:`ConfigurationError`.

    A name is a non-empty string of at most :data:`MAX_NAME_LENGTH` printable
    characters: no newline, carriage return or other control character, since
    names go into log lines, metric labels and HTTP output (a name with
    ``"\r\n"`` would forge a log line). The same rule as a policy's name.
    """
    if not isinstance(name, str):
        raise ConfigurationError([FieldError(owner, field, type(name).__name__, _NAME_RULE)])
    if not name or len(name) > MAX_NAME_LENGTH or not name.isprintable():
        shown = name if len(name) <= 40 else name[:40] + "..."
        raise ConfigurationError([FieldError(owner, field, shown, _NAME_RULE)])
    return name


_SECRET_HINTS = ("secret", "password", "token", "api_key", "apikey", "webhook")
_MASK = "***"
_MISSING = object()
_SHOWN = 80
"""Characters of a rejected string value shown in an error (a 1 MB value is cut)."""


def _is_secret(name: str, info: FieldInfo | None) -> bool:
    if info is not None and info.annotation is not None:
        annotation = info.annotation
        if annotation is SecretStr or SecretStr in get_args(annotation):
            return True
    lowered = name.lower()
    return any(hint in lowered for hint in _SECRET_HINTS)


def _type_name(annotation: Any) -> str:
    if get_origin(annotation) is Annotated:
        return _type_name(get_args(annotation)[0])
    args = [a for a in get_args(annotation) if a is not type(None)]
    if args and annotation is not None and not isinstance(annotation, type):
        names = [_type_name(a) for a in args]
        optional = type(None) in get_args(annotation)
        return " or ".join(names) + (" or None" if optional else "")
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return "one of " + ", ".join(repr(m.value) for m in annotation)
    if annotation is bool:
        return "a boolean"
    if annotation is int:
        return "an integer"
    if annotation is float:
        return "a number"
    if annotation is str:
        return "a string"
    return getattr(annotation, "__name__", str(annotation))


def _metadata(annotation: Any) -> list[Any]:
    """The constraints nested in an annotation (``Optional[Annotated[...]]``)."""
    found: list[Any] = []
    if get_origin(annotation) is Annotated:
        for meta in get_args(annotation)[1:]:
            found.extend(meta.metadata if isinstance(meta, FieldInfo) else [meta])
        found.extend(_metadata(get_args(annotation)[0]))
    else:
        for arg in get_args(annotation):
            found.extend(_metadata(arg))
    return found


def describe_field(info: FieldInfo) -> str:
    """What a field allows, in words: its type and its tightest numeric bounds."""
    low: tuple[str, float] | None = None
    high: tuple[str, float] | None = None
    for meta in [*info.metadata, *_metadata(info.annotation)]:
        if isinstance(meta, annotated_types.Ge | annotated_types.Gt):
            bound = float(cast(Any, meta.ge if isinstance(meta, annotated_types.Ge) else meta.gt))
            op = ">=" if isinstance(meta, annotated_types.Ge) else ">"
            if low is None or bound > low[1] or (bound == low[1] and op == ">"):
                low = (op, bound)
        elif isinstance(meta, annotated_types.Le | annotated_types.Lt):
            bound = float(cast(Any, meta.le if isinstance(meta, annotated_types.Le) else meta.lt))
            op = "<=" if isinstance(meta, annotated_types.Le) else "<"
            if high is None or bound < high[1] or (bound == high[1] and op == "<"):
                high = (op, bound)
    parts = [_type_name(info.annotation)]
    parts += [f"{b[0]} {b[1]:g}" for b in (low, high) if b is not None]
    return "must be " + " ".join(parts)


def _to_configuration_error(
    model: type[BaseModel], error: ValidationError, data: dict[str, Any]
) -> ConfigurationError:
    fields = model.model_fields
    found: list[FieldError] = []
    seen: set[str] = set()
    for item in error.errors(include_url=False):
        loc = item.get("loc", ())
        cause = (item.get("ctx") or {}).get("error")
        if loc:
            name = str(loc[0])
        elif isinstance(cause, RuleError):
            name = ", ".join(cause.fields)
        elif len(data) == 1:  # a model-level rule broken by one assignment
            name = next(iter(data))
        else:
            name = "__root__"
        if name in seen:
            continue
        seen.add(name)
        info = fields.get(name)
        if isinstance(cause, RuleError):
            found.append(
                FieldError(
                    model.__name__,
                    name,
                    (
                        next(iter(cause.values.values()))
                        if len(cause.values) == 1
                        else tuple(cause.values.values())
                    ),
                    str(cause),
                )
            )
            continue
        value = data.get(name, item.get("input"))
        if item.get("type") == "missing":
            value = _Missing()
        elif _is_secret(name, info):
            value = _MASK
        elif isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 64:
            value = f"<int of {value.bit_length()} bits>"  # repr() of 5,000 digits raises
        elif isinstance(value, str | bytes) and len(value) > _SHOWN:
            value = value[:_SHOWN] + (b"..." if isinstance(value, bytes) else "...")  # type: ignore[operator]
        if info is None and item.get("type") == "extra_forbidden":
            allowed = "unknown field; allowed fields: " + ", ".join(sorted(fields))
        elif info is None:
            allowed = str(item.get("msg", "invalid"))
        else:
            message = str(item.get("msg", "invalid"))
            if item.get("type") == "value_error":
                # A field validator's own words already say what is allowed.
                allowed = message.removeprefix("Value error, ")
            else:
                allowed = f"{describe_field(info)} ({message})"
        found.append(FieldError(model.__name__, name, value, allowed))
    return ConfigurationError(found)


class _Missing:
    """The value shown for a required field that was not given."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "<missing>"


class RuleError(ValueError):
    """Raise from a model validator when a rule across several fields fails,
    with those fields' values; the :class:`ConfigurationError` names them.

    This is the one way to write a cross-field rule::

        @model_validator(mode="after")
        def _delays_ordered(self) -> Self:
            if self.base_delay > self.max_delay:
                raise RuleError(
                    {"base_delay": self.base_delay, "max_delay": self.max_delay},
                    "base_delay must be <= max_delay",
                )
            return self

    It runs on creation and on every assignment; a broken rule leaves the
    old value in place.
    """

    def __init__(self, values: dict[str, object], message: str) -> None:
        self.values = values
        self.fields = tuple(values)
        super().__init__(message)


class _Strong:
    """A strong reference with the call shape of a weak one."""

    __slots__ = ("_target",)

    def __init__(self, target: Callable[[str], None]) -> None:
        self._target = target

    def __call__(self) -> Callable[[str], None]:
        return self._target


class ConfigModel(BaseModel):
    """Base of configuration objects: strict, validated on assignment."""

    model_config: ClassVar[ConfigDict] = ConfigDict(
        strict=True, validate_assignment=True, extra="forbid", use_enum_values=False
    )

    _observers: list[Callable[[], Callable[[str], None] | None]] = PrivateAttr(default_factory=list)

    def __init__(self, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as exc:
            raise _to_configuration_error(type(self), exc, data) from None

    def __setattr__(self, name: str, value: Any) -> None:
        old = self.__dict__.get(name, _MISSING)
        was_set = name in self.__pydantic_fields_set__
        try:
            super().__setattr__(name, value)
        except ValidationError as exc:
            # A model-level rule may fail after pydantic stored the value
            # (and marked the field as set): undo both.
            if old is not _MISSING:
                self.__dict__[name] = old
            if not was_set:
                self.__pydantic_fields_set__.discard(name)
            raise _to_configuration_error(type(self), exc, {name: value}) from None
        if name in type(self).model_fields:
            self._notify(name)

    def _notify(self, name: str) -> None:
        """Tell every live observer that ``name`` changed; forget dead ones.

        The value is accepted before observers hear of it: one that raises is
        logged (type only) and the others are still told, so one failing
        policy never leaves the rest on the old value nor fails the assignment.
        """
        alive = []
        for ref in tuple(self._observers):
            observer = ref()
            if observer is not None:
                alive.append(ref)
                try:
                    observer(name)
                except Exception as exc:
                    _log.error(
                        "%s.%s changed; an observer raised %s (ignored)",
                        type(self).__name__,
                        name,
                        type(exc).__qualname__,
                    )
        if len(alive) != len(self._observers):
            # Keep observers subscribed while notifying (they are not in ``alive``).
            added = [ref for ref in self._observers if ref not in alive]
            self._observers[:] = [*alive, *(ref for ref in added if ref() is not None)]

    def subscribe(self, observer: Callable[[str], None]) -> None:
        """Call ``observer(field_name)`` after every accepted assignment.

        Policies use it to rebuild derived state (a sliding window, a bucket)
        when their configuration changes at run time. A bound method is held
        weakly, so a config shared by many policies never keeps a dropped
        policy alive; any other callable is held strongly.
        """
        ref: Callable[[], Callable[[str], None] | None]
        if hasattr(observer, "__self__") and hasattr(observer, "__func__"):
            ref = weakref.WeakMethod(observer)
        else:
            ref = _Strong(observer)
        self._observers.append(ref)

    def check_same(
        self,
        wanted: ConfigModel,
        *,
        owner: str,
        via: str,
        fields: Iterable[str] | None = None,
    ) -> None:
        """Refuse ``wanted`` where it differs from this configuration.

        What a registry asks when a component that already exists is asked
        for again with settings. Compares ``fields`` (default: the fields set
        explicitly on ``wanted``, ``name`` aside) and raises one
        :class:`ConfigurationError` naming every differing field, the value
        wanted (secrets masked) and the value in force, e.g. ``breaker 'bybit'
        already exists with timeout=60.0; change it through breaker.config
        instead`` (``owner`` and ``via`` fill in the words). The one
        implementation of that check.
        """
        known = type(self).model_fields
        names = wanted.model_fields_set - {"name"} if fields is None else set(fields)
        errors = []
        for key in sorted(names):
            value, current = getattr(wanted, key), getattr(self, key, _MISSING)
            if value == current:
                continue
            secret = _is_secret(key, known.get(key))
            errors.append(
                FieldError(
                    type(self).__name__,
                    key,
                    _MASK if secret else value,
                    f"{owner} already exists with "
                    f"{key}={_MASK if secret else repr(current)}; "
                    f"change it through {via} instead",
                )
            )
        if errors:
            raise ConfigurationError(errors)

    def __repr_args__(self) -> Any:
        for name, value in super().__repr_args__():
            if name is not None and _is_secret(name, type(self).model_fields.get(name)):
                yield name, _MASK
            else:
                yield name, value
