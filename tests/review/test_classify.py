"""Hostile review of the classifier's Retry-After parsing (classify/_response)."""

from __future__ import annotations

import math

import ccxt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from virtuoso_resilience.classify import attach_response, classify, parse_retry_after


@pytest.mark.parametrize("exponent", [400, 5000])
@pytest.mark.parametrize("sign", [1, -1])
def test_parse_retry_after_huge_int_is_none(exponent: int, sign: int) -> None:
    value = sign * 10**exponent
    """Defect: ``float(10**400)`` raised OverflowError out of a parser documented
    to answer None for anything it cannot use."""
    assert parse_retry_after(value) is None


def test_parse_retry_after_negative_zero_is_zero() -> None:
    """Defect: -0.0 came back as -0.0 (a wait with a sign)."""
    wait = parse_retry_after(-0.0)
    assert wait == 0.0
    assert wait is not None and math.copysign(1.0, wait) == 1.0


@pytest.mark.parametrize(
    "text",
    ["٣", "１", "²", "①", "1e999", "nan", "inf", "-1", "1_0", "5\r\nX-Evil: 1", "0x10", "+5"],
)
def test_parse_retry_after_rejects_odd_text(text: str) -> None:
    assert parse_retry_after(text) is None


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(
        st.integers(),
        st.floats(allow_nan=True, allow_infinity=True),
        st.text(max_size=80),
        st.booleans(),
        st.none(),
    )
)
def test_parse_retry_after_never_raises(value: object) -> None:
    wait = parse_retry_after(value, now=1_700_000_000.0)
    assert wait is None or (math.isfinite(wait) and wait >= 0)


def test_classify_with_header_of_crlf_and_huge_values_never_raises() -> None:
    for after in ("1" * 10_000, "5\r\n", "\x00", "Wed, 21 Oct 99999 07:28:00 GMT", "9" * 64):
        error = attach_response(
            ccxt.RateLimitExceeded("bybit {}"), status=429, headers={"Retry-After": after}
        )
        outcome = classify(error)
        assert outcome.retry_after is None or math.isfinite(outcome.retry_after)


@pytest.mark.parametrize("status", [-5, 0, 99, 1000, 99999, 10**400], ids=lambda s: str(s)[:8])
def test_aiohttp_status_outside_http_range_is_ignored(status: int) -> None:
    """Defect: the ``status`` attribute of a ClientResponseError was taken as
    it was: -5 and 0 became ``Outcome.status``, and 10**400 a 400-digit
    ``reason`` ("HTTP 1000...")."""
    from aiohttp import ClientResponseError, RequestInfo
    from multidict import CIMultiDict, CIMultiDictProxy
    from yarl import URL

    info = RequestInfo(URL("http://x/"), "GET", CIMultiDictProxy(CIMultiDict()), URL("http://x/"))
    outcome = classify(ClientResponseError(info, (), status=status))
    assert outcome.status is None
    assert len(outcome.reason) < 100


def test_aiohttp_real_statuses_still_decide() -> None:
    from aiohttp import ClientResponseError, RequestInfo
    from multidict import CIMultiDict, CIMultiDictProxy
    from yarl import URL

    info = RequestInfo(URL("http://x/"), "GET", CIMultiDictProxy(CIMultiDict()), URL("http://x/"))
    limited = classify(ClientResponseError(info, (), status=429, headers={"Retry-After": "5"}))
    assert (limited.status, limited.retry_after) == (429, 5.0)
    assert classify(ClientResponseError(info, (), status=999)).status == 999
