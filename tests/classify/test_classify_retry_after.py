"""Response context: attach_response, explicit status / headers, Retry-After parsing."""

from __future__ import annotations

import email.utils
import math
import time
from typing import Any

import ccxt
import pytest
from classify_helpers import PM, RL, T, response_error
from hypothesis import given
from hypothesis import strategies as st

from virtuoso_resilience.classify import (
    Classifier,
    ClassifierConfig,
    Outcome,
    Signal,
    attach_response,
    classify,
    parse_retry_after,
)

NOW = 1_445_412_480.0  # Wed, 21 Oct 2015 07:28:00 GMT


def test_parse_retry_after() -> None:
    assert parse_retry_after("120") == 120.0
    assert parse_retry_after(" 1.5 ") == 1.5
    assert parse_retry_after(3) == 3.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:30:00 GMT", now=NOW) == 120.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:27:00 GMT", now=NOW) == 0.0  # past: now
    assert parse_retry_after("Wednesday, 21-Oct-15 07:29:00 GMT", now=NOW) == 60.0  # RFC 850


@pytest.mark.parametrize(
    "bad",
    [
        None,
        "",
        "soon",
        "-1",
        "nan",
        "NaN",
        "inf",
        "Infinity",
        "1e999",
        "1e3",
        "0x10",
        "1_0",
        "٣",  # ARABIC-INDIC DIGIT THREE: float() accepts it
        "²",
        "①",
        "１２",  # fullwidth digits
        "Wed, 21 Oct ٢٠١٥ 07:30:00 GMT",
        "9" * 65,
        True,
        False,
        -2,
        float("nan"),
        float("inf"),
        -0.5,
        [1],
        b"1",
    ],
)
def test_parse_retry_after_refuses(bad: object) -> None:
    assert parse_retry_after(bad, now=NOW) is None


@given(st.one_of(st.text(), st.integers(), st.floats(), st.binary()))
def test_parse_retry_after_never_raises(value: object) -> None:
    result = parse_retry_after(value, now=0.0)
    assert result is None or (math.isfinite(result) and result >= 0)


def test_attach_response_returns_the_exception_and_is_read_by_classify() -> None:
    error = ccxt.RateLimitExceeded('bybit {"retCode":10006,"retMsg":"Too many visits!"}')
    assert attach_response(error, headers={"Retry-After": "4"}) is error
    assert classify(error) == Outcome(
        RL, 4.0, "bybit retCode 10006", None, "10006", Signal.RATE_LIMIT
    )
    # A later call replaces the record.
    attach_response(error, headers={"Retry-After": "9"}, status=200)
    assert classify(error).retry_after == 9.0
    assert classify(error).status == 200


def test_explicit_status_and_headers_win_over_attached_ones() -> None:
    error = attach_response(
        ccxt.ExchangeNotAvailable("okx GET https://x"), status=503, headers={"Retry-After": "4"}
    )
    assert classify(error).retry_after == 4.0
    assert classify(error, headers={"Retry-After": "8"}).retry_after == 8.0
    assert classify(error, headers={"Retry-After": "8"}).status == 503  # kept from the record
    limited = classify(error, status=429)
    assert (limited.kind, limited.signal, limited.retry_after) == (RL, Signal.RATE_LIMIT, 4.0)


def test_header_names_are_case_insensitive_whatever_the_mapping() -> None:
    error = ccxt.RateLimitExceeded("bybit {}")
    for name in ("Retry-After", "retry-after", "RETRY-AFTER", "rEtRy-AfTeR"):
        assert classify(error, headers={name: "3"}).retry_after == 3.0, name


def test_retry_after_as_an_http_date() -> None:
    in_two_minutes = email.utils.formatdate(NOW + 120, usegmt=True)
    error = ccxt.RateLimitExceeded("bybit {}")
    assert classify(error, headers={"Retry-After": in_two_minutes}, now=NOW).retry_after == 120.0
    real = classify(error, headers={"Retry-After": email.utils.formatdate(time.time() + 60)})
    assert real.retry_after is not None and 0 < real.retry_after <= 61


def test_bybit_reset_timestamp_feeds_a_rate_limit_only() -> None:
    reset = str(int((NOW + 2.5) * 1000))
    headers = {"X-Bapi-Limit-Status": "0", "X-Bapi-Limit-Reset-Timestamp": reset}
    limited = ccxt.RateLimitExceeded('bybit {"retCode":10006,"retMsg":"Too many visits!"}')
    assert classify(limited, headers=headers, now=NOW).retry_after == 2.5
    # Retry-After, when present, wins.
    both = {**headers, "Retry-After": "1"}
    assert classify(limited, headers=both, now=NOW).retry_after == 1.0
    # Every answer carries the header: on anything but a rate limit it means nothing.
    down = ccxt.ExchangeError('bybit {"retCode":10016,"retMsg":"System error"}')
    assert classify(down, headers=headers, now=NOW).retry_after is None
    # A reset in the past means: go now.
    old = {"X-Bapi-Limit-Reset-Timestamp": str(int((NOW - 10) * 1000))}
    assert classify(limited, headers=old, now=NOW).retry_after == 0.0
    for bad in ("soon", "-5", "٣٠٠٠", "1e20", "nan"):
        assert classify(limited, headers={"X-Bapi-Limit-Reset-Timestamp": bad}).retry_after is None


def test_waits_are_capped() -> None:
    error = ccxt.RateLimitExceeded("bybit {}")
    assert classify(error, headers={"Retry-After": "99999999"}).retry_after == 3600.0
    far = {"X-Bapi-Limit-Reset-Timestamp": "99999999999999"}
    assert classify(error, headers=far, now=NOW).retry_after == 3600.0
    tight = Classifier(config=ClassifierConfig(ban_pause=5.0, max_retry_after=10.0))
    assert tight.classify(error, headers={"Retry-After": "60"}).retry_after == 10.0


def test_retry_after_is_ignored_for_business_and_permanent_outcomes() -> None:
    headers = {"Retry-After": "5"}
    assert classify(ccxt.InsufficientFunds("bybit {}"), headers=headers).retry_after is None
    assert classify(ccxt.NotSupported("bybit {}"), headers=headers).retry_after is None
    assert classify(KeyError("x"), headers=headers) == Outcome(PM, None, "KeyError")
    transient = classify(TimeoutError(), headers=headers)
    assert (transient.kind, transient.retry_after) == (T, 5.0)


def test_aiohttp_response_headers_are_used_unless_others_are_given() -> None:
    error = response_error(429, {"Retry-After": "7"})
    assert classify(error) == Outcome(RL, 7.0, "HTTP 429", 429, None, Signal.RATE_LIMIT)
    assert classify(error, headers={"Retry-After": "2"}).retry_after == 2.0
    assert classify(response_error(503, {"retry-after": "2.5"})).retry_after == 2.5
    assert classify(response_error(429, {"Retry-After": "soon"})).retry_after is None
    assert classify(response_error(429, {})).retry_after is None


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"status": True}, "status"),
        ({"status": "429"}, "status"),
        ({"status": 42}, "status"),
        ({"status": 600}, "status"),
        ({"status": 429.0}, "status"),
        ({"headers": "Retry-After: 1"}, "headers"),
        ({"headers": [("Retry-After", "1")]}, "headers"),
    ],
)
def test_bad_status_or_headers_are_refused_by_name(kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(ValueError, match=f"^{field}="):
        attach_response(ccxt.NetworkError("x"), **kwargs)
    with pytest.raises(ValueError, match=f"^{field}="):
        classify(ccxt.NetworkError("x"), **kwargs)


def test_odd_header_mappings_never_break_classification() -> None:
    class Exploding(dict[str, str]):
        def get(self, key: Any, default: Any = None) -> Any:
            raise RuntimeError("no")

    error = ccxt.RateLimitExceeded("bybit {}")
    assert classify(error, headers=Exploding()).retry_after is None
    assert classify(error, headers={"Retry-After": 5}).retry_after is None  # type: ignore[dict-item]
    huge = {f"X-{i}": "1" for i in range(100_000)}
    assert classify(error, headers=huge).retry_after is None
    huge["Retry-After"] = "3"
    assert classify(error, headers=huge).retry_after == 3.0  # the exact spelling is found
