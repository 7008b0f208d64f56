"""Validated configuration models.

:class:`ConfigModel` is the base of every configuration object. Values are
validated on creation *and* on assignment; a rejected value raises
:class:`~virtuoso_resilience.errors.ConfigurationError` naming every bad
field, the value given and what is allowed, and leaves the old value in place.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from typing import Any, ClassVar, get_args

import annotated_types
from pydantic import BaseModel, ConfigDict, PrivateAttr, SecretStr, ValidationError
from pydantic.fields import FieldInfo

from .errors import ConfigurationError, FieldError

__all__ = ["ConfigModel", "RuleError", "describe_field"]

_SECRET_HINTS = ("secret", "password", "token", "api_key", "apikey", "webhook")
_MASK = "***"
_MISSING = object()


def _is_secret(name: str, info: FieldInfo | None) -> bool:
    if info is not None and info.annotation is not None:
        annotation = info.annotation
        if annotation is SecretStr or SecretStr in get_args(annotation):
            return True
    lowered = name.lower()
    return any(hint in lowered for hint in _SECRET_HINTS)


def _type_name(annotation: Any) -> str:
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


def describe_field(info: FieldInfo) -> str:
    """What a field allows, in words: its type and its numeric bounds."""
    parts = [_type_name(info.annotation)]
    for meta in info.metadata:
        if isinstance(meta, annotated_types.Ge):
            parts.append(f">= {meta.ge}")
        elif isinstance(meta, annotated_types.Gt):
            parts.append(f"> {meta.gt}")
        elif isinstance(meta, annotated_types.Le):
            parts.append(f"<= {meta.le}")
        elif isinstance(meta, annotated_types.Lt):
            parts.append(f"< {meta.lt}")
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
                    tuple(cause.values.values()),
                    str(cause),
                )
            )
            continue
        value = data.get(name, item.get("input"))
        if _is_secret(name, info):
            value = _MASK
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


class RuleError(ValueError):
    """Raise from a model validator when a rule across several fields fails,
    with those fields' values; the :class:`ConfigurationError` names them."""

    def __init__(self, values: dict[str, object], message: str) -> None:
        self.values = values
        self.fields = tuple(values)
        super().__init__(message)


class ConfigModel(BaseModel):
    """Base of configuration objects: strict, validated on assignment."""

    model_config: ClassVar[ConfigDict] = ConfigDict(
        strict=True, validate_assignment=True, extra="forbid", use_enum_values=False
    )

    _observers: list[Callable[[str], None]] = PrivateAttr(default_factory=list)

    def __init__(self, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as exc:
            raise _to_configuration_error(type(self), exc, data) from None

    def __setattr__(self, name: str, value: Any) -> None:
        old = self.__dict__.get(name, _MISSING)
        try:
            super().__setattr__(name, value)
        except ValidationError as exc:
            # A model-level rule may fail after pydantic stored the value.
            if old is not _MISSING:
                self.__dict__[name] = old
            raise _to_configuration_error(type(self), exc, {name: value}) from None
        if name in type(self).model_fields:
            for observer in self._observers:
                observer(name)

    def subscribe(self, observer: Callable[[str], None]) -> None:
        """Call ``observer(field_name)`` after every accepted assignment.

        Policies use it to rebuild derived state (a sliding window, a bucket)
        when their configuration changes at run time.
        """
        self._observers.append(observer)

    def __repr_args__(self) -> Any:
        for name, value in super().__repr_args__():
            if name is not None and _is_secret(name, type(self).model_fields.get(name)):
                yield name, _MASK
            else:
                yield name, value
