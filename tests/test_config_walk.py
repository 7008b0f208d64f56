"""Every configuration class, every numeric field: one validation rule.

The walk finds every :class:`ConfigModel` subclass in the package (a new
config class is covered without editing this file) and tries, for each field
that holds a number, the values a hostile or careless user sends: NaN, +-inf,
a bool, a string, and -0.0 where a positive value is meant. Each is refused
at creation and on assignment with a :class:`ConfigurationError` that names
the field, and an assignment keeps the old value.
"""

from __future__ import annotations

import importlib
import math
import pkgutil
import types
import typing
from collections.abc import Iterator
from typing import Any

import annotated_types
import pytest

import virtuoso_resilience
from virtuoso_resilience._model import ConfigModel
from virtuoso_resilience.errors import ConfigurationError

# Values for fields that have no default, per class name.
REQUIRED: dict[str, dict[str, Any]] = {
    "RateLimiterConfig": {"rate": 10.0, "capacity": 10.0},
    "BudgetWindow": {"limit": 100.0, "seconds": 1.0},
}


def _all_config_classes() -> list[type[ConfigModel]]:
    for info in pkgutil.walk_packages(virtuoso_resilience.__path__, "virtuoso_resilience."):
        importlib.import_module(info.name)

    def walk(cls: type[ConfigModel]) -> Iterator[type[ConfigModel]]:
        for sub in cls.__subclasses__():
            yield sub
            yield from walk(sub)

    found = {c.__module__ + "." + c.__qualname__: c for c in walk(ConfigModel)}
    return [found[k] for k in sorted(found)]


def _scalar_types(annotation: Any) -> set[type]:
    """The scalar types a field annotation admits (through Optional/Annotated)."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _scalar_types(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        out: set[type] = set()
        for arg in typing.get_args(annotation):
            out |= _scalar_types(arg)
        return out
    if isinstance(annotation, type):
        return {annotation}
    return set()


def _must_be_positive(info: Any) -> bool:
    return any(isinstance(m, annotated_types.Gt) and m.gt == 0 for m in info.metadata) or any(
        isinstance(m, annotated_types.Ge) and m.ge > 0 for m in info.metadata
    )


def _cases() -> Iterator[Any]:
    for cls in _all_config_classes():
        for name, info in cls.model_fields.items():
            kinds = _scalar_types(info.annotation)
            if not kinds & {int, float}:
                continue
            bad: list[Any] = [math.nan, math.inf, -math.inf, True, "1"]
            if _must_be_positive(info):
                bad.append(-0.0)
            for value in bad:
                yield pytest.param(cls, name, value, id=f"{cls.__name__}.{name}={value!r}")


CASES = list(_cases())


def test_the_walk_finds_the_config_classes() -> None:
    names = {c.__name__ for c in _all_config_classes()}
    assert {
        "ResilienceConfiguration",
        "CircuitBreakerConfig",
        "RetryConfig",
        "PoolConfig",
        "HealthCheckConfig",
        "SimulatorConfig",
    } <= names
    assert len(CASES) > 300


@pytest.mark.parametrize(("cls", "field", "value"), CASES)
def test_bad_number_refused_at_creation(cls: type[ConfigModel], field: str, value: Any) -> None:
    kwargs = {**REQUIRED.get(cls.__name__, {}), field: value}
    with pytest.raises(ConfigurationError) as caught:
        cls(**kwargs)
    assert field in str(caught.value)


@pytest.mark.parametrize(("cls", "field", "value"), CASES)
def test_bad_number_refused_on_assignment(cls: type[ConfigModel], field: str, value: Any) -> None:
    config = cls(**REQUIRED.get(cls.__name__, {}))
    before = getattr(config, field)
    with pytest.raises(ConfigurationError) as caught:
        setattr(config, field, value)
    assert field in str(caught.value)
    after = getattr(config, field)
    assert after == before or (after != after and before != before)
