"""Hostile review of the shared config types and error messages (_model, errors)."""

from __future__ import annotations

import re
import sys
from typing import Any

import pytest
from pydantic.fields import FieldInfo

import virtuoso_resilience as vr
from virtuoso_resilience import errors
from virtuoso_resilience._model import ConfigModel
from virtuoso_resilience.errors import ConfigurationError, FieldError
from virtuoso_resilience.health import HealthCheckConfig
from virtuoso_resilience.pools import PoolConfig

MAX_COUNT = 1_000_000_000  # virtuoso_resilience._model.MAX_COUNT

CONFIGS: list[type[ConfigModel]] = [
    vr.CircuitBreakerConfig,
    vr.RetryConfig,
    vr.BulkheadConfig,
    vr.RateLimiterConfig,
    vr.TimeoutConfig,
    vr.FallbackConfig,
    HealthCheckConfig,
    PoolConfig,
    vr.ResilienceConfiguration,
]


def _int_fields() -> list[tuple[type[ConfigModel], str]]:
    found = []
    for cls in CONFIGS:
        for name, info in cls.model_fields.items():
            if _is_int(info):
                found.append((cls, name))
    return found


def _is_int(info: FieldInfo) -> bool:
    annotation: Any = info.annotation
    return annotation is int or re.search(r"\bint\b", str(annotation)) is not None


INT_FIELDS = _int_fields()


def test_int_fields_found() -> None:
    assert len(INT_FIELDS) >= 15


@pytest.mark.parametrize(("cls", "name"), INT_FIELDS, ids=lambda v: getattr(v, "__name__", v))
@pytest.mark.parametrize("which", ["10**400", "-10**400", "10**5000", "MAX_COUNT+1"])
def test_huge_counts_rejected_with_a_readable_error(
    cls: type[ConfigModel], name: str, which: str
) -> None:
    """Defect: counts had no upper bound; 10**400 was a valid failure threshold
    and 10**5000 made repr() and the error message raise ValueError."""
    value = {
        "10**400": 10**400,
        "-10**400": -(10**400),
        "10**5000": 10**5000,
        "MAX_COUNT+1": MAX_COUNT + 1,
    }[which]
    with pytest.raises(ConfigurationError) as caught:
        cls(**{name: value})
    message = str(caught.value)  # must not raise ValueError (int -> str limit)
    assert name in message
    assert len(message) < 1000


@pytest.mark.parametrize(("cls", "name"), INT_FIELDS, ids=lambda v: getattr(v, "__name__", v))
def test_huge_count_assignment_keeps_old_value(cls: type[ConfigModel], name: str) -> None:
    config = cls()
    old = getattr(config, name)
    with pytest.raises(ConfigurationError) as caught:
        setattr(config, name, 10**5000)
    assert name in str(caught.value)
    assert getattr(config, name) == old
    repr(config)  # still printable


def test_max_count_itself_is_accepted() -> None:
    from virtuoso_resilience._model import MAX_COUNT as limit

    assert limit == MAX_COUNT
    assert vr.RetryConfig(max_attempts=MAX_COUNT).max_attempts == MAX_COUNT
    assert vr.BulkheadConfig(max_concurrent=MAX_COUNT).max_concurrent == MAX_COUNT


def test_rejected_1mb_list_value_is_cut_in_the_message() -> None:
    """Defect: only str/bytes values were cut; a 1 MB list was quoted whole."""
    with pytest.raises(ConfigurationError) as caught:
        PoolConfig(ssl_cafile=["x" * 1_000_000])  # type: ignore[arg-type]
    message = str(caught.value)
    assert "ssl_cafile" in message
    assert len(message) < 2_000


def test_field_error_never_raises_on_str() -> None:
    nested: list[Any] = []
    inner = nested
    for _ in range(sys.getrecursionlimit() + 100):
        inner.append([])
        inner = inner[0]

    class Hostile:
        def __repr__(self) -> str:
            raise RuntimeError("boom")

    for value in (10**5000, nested, Hostile(), (10**5000, 1), "y" * 10**6, b"z" * 10**6):
        text = str(FieldError("M", "f", value, "must be sane"))
        assert text.startswith("M.f=")
        assert text.endswith("is invalid: must be sane")
        assert len(text) < 400


def test_shown_keeps_ordinary_values() -> None:
    shown = errors.shown
    assert shown(5) == "5"
    assert shown(float("nan")) == "nan"
    assert shown("abc") == "'abc'"
    assert shown(True) == "True"
    assert shown(10**38) == str(10**38)
    assert shown(10**40).startswith("<an int of about")


def test_missing_required_field_is_named_missing() -> None:
    """Defect: a missing required field was reported with the whole input as its value."""
    with pytest.raises(ConfigurationError) as caught:
        vr.RateLimiterConfig(capacity=5.0)
    message = str(caught.value)
    assert "RateLimiterConfig.rate=<missing>" in message
    assert "{" not in message


@pytest.mark.parametrize("key", ["k" * 1_000_000, "evil\r\nforged log line"])
def test_unknown_hostile_key_is_cut_and_escaped_in_the_message(key: str) -> None:
    """Defect: an unknown key from loosely typed data (``from_mapping`` of an
    environment or a file) was quoted whole and raw: 1 MB, or CR/LF."""
    with pytest.raises(ConfigurationError) as caught:
        vr.ResilienceConfiguration.from_mapping({key: 1})
    message = str(caught.value)
    assert "unknown field" in message
    assert "\r" not in message and "\n" not in message.split("allowed fields")[0]
    assert len(message) < 2_000


class _Observer:
    def __init__(self, fail: bool = False) -> None:
        self.fail = fail
        self.seen: list[str] = []

    def changed(self, name: str) -> None:
        self.seen.append(name)
        if self.fail:
            raise RuntimeError("observer bug")


def test_a_failing_observer_neither_fails_the_assignment_nor_silences_the_others(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Defect: an observer that raised made the (accepted) assignment raise,
    and the observers after it never heard of the change: a config shared by
    several policies left some of them on the old value."""
    config = vr.BulkheadConfig(max_concurrent=5)
    first, broken, last = _Observer(), _Observer(fail=True), _Observer()
    for observer in (first, broken, last):
        config.subscribe(observer.changed)
    config.max_concurrent = 7
    assert config.max_concurrent == 7
    assert first.seen == broken.seen == last.seen == ["max_concurrent"]
    assert "RuntimeError" in caplog.text
    assert "observer bug" not in caplog.text  # the type only, never the message


def test_an_observer_subscribed_while_notifying_is_kept() -> None:
    config = vr.BulkheadConfig(max_concurrent=5)
    late = _Observer()
    dead = _Observer()
    config.subscribe(dead.changed)
    del dead  # a dead observer makes the list be rebuilt

    def subscribe_late(name: str) -> None:
        config.subscribe(late.changed)

    config.subscribe(subscribe_late)
    config.max_concurrent = 6
    config.max_concurrent = 7
    assert "max_concurrent" in late.seen
