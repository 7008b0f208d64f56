"""Outcome, Signal and the package's shape."""

from __future__ import annotations

import asyncio
import importlib
import subprocess
import sys
from dataclasses import FrozenInstanceError

import ccxt
import pytest
from classify_helpers import AMB, BZ, MT, PM, REJ, RL, K, T

import virtuoso_resilience
from virtuoso_resilience.classify import (
    DEFAULT_CLASSIFIER,
    SUCCESS,
    Classifier,
    Outcome,
    OutcomeKind,
    Signal,
    classify,
)


def test_everything_importable_before_stays_importable() -> None:
    from virtuoso_resilience.classify import (  # noqa: F401
        BYBIT_OVERRIDES,
        parse_retry_after,
    )

    assert virtuoso_resilience.Outcome is Outcome
    assert virtuoso_resilience.OutcomeKind is OutcomeKind
    assert virtuoso_resilience.Classifier is Classifier
    assert virtuoso_resilience.DEFAULT_CLASSIFIER is DEFAULT_CLASSIFIER
    package = importlib.import_module("virtuoso_resilience.classify")
    assert {"Signal", "attach_response", "ClassifierConfig", "CodeRule"} <= set(package.__all__)


def test_importing_the_classifier_imports_no_exchange_or_cache_library() -> None:
    # The top-level package imports aiohttp for its pools; the tables import nothing.
    code = (
        "import sys, virtuoso_resilience.classify\n"
        "print([m for m in ('ccxt', 'redis', 'aiomcache', 'emcache') if m in sys.modules])\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_outcome_properties() -> None:
    assert SUCCESS.is_success and not SUCCESS.is_retryable and not SUCCESS.is_service_failure
    expected = {
        K.SUCCESS: (True, False, False),
        T: (False, True, True),
        RL: (False, True, False),
        MT: (False, False, True),
        AMB: (False, False, True),
        PM: (False, False, True),
        BZ: (False, False, False),
        REJ: (False, True, False),
    }
    for kind, (success, retryable, service) in expected.items():
        outcome = Outcome(kind)
        assert (outcome.is_success, outcome.is_retryable, outcome.is_service_failure) == (
            success,
            retryable,
            service,
        ), kind


@pytest.mark.parametrize("signal", [Signal.CLOCK_SKEW, Signal.CANCEL_PENDING])
def test_clock_skew_and_cancel_pending_are_never_service_failures(signal: Signal) -> None:
    for kind in (T, AMB, PM, MT):
        outcome = Outcome(kind, signal=signal)
        assert not outcome.is_service_failure
    assert Outcome(T, signal=signal).is_retryable


def test_other_signals_keep_the_kind_s_meaning() -> None:
    assert Outcome(T, signal=Signal.MAINTENANCE).is_service_failure
    assert not Outcome(RL, signal=Signal.IP_BAN).is_service_failure
    assert not Outcome(BZ, signal=Signal.DUPLICATE_CLIENT_ORDER_ID).is_service_failure


def test_signal_is_a_public_enum_with_the_adapter_s_cases() -> None:
    assert {s.name for s in Signal} >= {
        "CLOCK_SKEW",
        "IP_BAN",
        "DUPLICATE_CLIENT_ORDER_ID",
        "ORDER_NOT_FOUND",
        "CANCEL_PENDING",
        "RATE_LIMIT",
        "MAINTENANCE",
    }
    assert all(s.value == s.name.lower() for s in Signal)


def test_outcome_is_frozen_slotted_and_has_a_readable_repr() -> None:
    outcome = Outcome(RL, 2.5, "HTTP 429", 429, "-1003", Signal.RATE_LIMIT)
    assert repr(outcome) == (
        "Outcome(RATE_LIMITED, retry_after=2.5, reason='HTTP 429', status=429, "
        "code='-1003', signal=RATE_LIMIT)"
    )
    assert repr(SUCCESS) == "Outcome(SUCCESS)"
    with pytest.raises(FrozenInstanceError):
        outcome.kind = T  # type: ignore[misc]
    assert not hasattr(outcome, "__dict__")
    # The seed's positional shape still works.
    assert Outcome(RL, 1.0, "x") == Outcome(kind=RL, retry_after=1.0, reason="x")


def test_none_is_the_success_constant() -> None:
    assert classify(None) is SUCCESS
    assert classify(None, write=True) is SUCCESS
    assert Classifier().classify(None, exchange_id="bybit") is SUCCESS


@pytest.mark.parametrize(
    "error",
    [
        asyncio.CancelledError(),
        KeyboardInterrupt(),
        SystemExit(3),
        GeneratorExit(),
        BaseExceptionGroup("g", [asyncio.CancelledError()]),
    ],
    ids=type,
)
def test_non_exceptions_and_cancellation_are_reraised_untouched(error: BaseException) -> None:
    for classifier in (DEFAULT_CLASSIFIER, Classifier()):
        with pytest.raises(type(error)) as info:
            classifier.classify(error, write=True, headers={"Retry-After": "1"})
        assert info.value is error
    with pytest.raises(type(error)) as info:
        classify(error)
    assert info.value is error


async def test_cancelled_error_raised_inside_a_task_is_reraised() -> None:
    async def victim() -> None:
        await asyncio.sleep(3600)

    task = asyncio.create_task(victim())
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError) as cancelled:
        await task
    with pytest.raises(asyncio.CancelledError) as info:
        classify(cancelled.value)
    assert info.value is cancelled.value


def test_unknown_exceptions_are_permanent_even_for_writes() -> None:
    class LocalBug(Exception):
        pass

    assert classify(LocalBug("x")) == Outcome(PM, None, "LocalBug")
    assert classify(LocalBug("x"), write=True).kind is PM
    assert classify(KeyError("k")).kind is PM
    assert classify(ValueError('bybit {"retCode":10016}')).kind is PM  # not ccxt: no codes


def test_the_type_result_is_cached_and_reused() -> None:
    core = importlib.import_module("virtuoso_resilience.classify._core")

    class Once(ccxt.NotSupported):  # type: ignore[misc]
        pass

    assert Once not in core._CACHE
    first = classify(Once("x"))
    assert Once in core._CACHE
    assert classify(Once("y")) is first  # the same pre-built Outcome, no allocation
    assert first == Outcome(PM, None, "Once")


def test_repr_shows_tables_and_settings() -> None:
    text = repr(DEFAULT_CLASSIFIER)
    assert text.startswith("Classifier(overrides={'bybit': ")
    assert "'binance': " in text and "'okx': " in text
    assert "ban_pause=120" in text and "max_retry_after=3600" in text
    assert "cached_types=" in text
    assert repr(Classifier()).startswith("Classifier(overrides={}")
