"""Hostile input: any exception, odd messages, 1 MB bodies, unbounded type churn."""

from __future__ import annotations

import asyncio
import importlib
import json
from typing import Any

import aiohttp
import ccxt
import pytest
from classify_helpers import AMB, MT, PM, RL, T, response_error, walk
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from virtuoso_resilience.classify import (
    BUILTIN_OVERRIDES,
    DEFAULT_CLASSIFIER,
    Classifier,
    Outcome,
    OutcomeKind,
    Signal,
    attach_response,
    classify,
)

_core = importlib.import_module("virtuoso_resilience.classify._core")
_response = importlib.import_module("virtuoso_resilience.classify._response")
HEAD = _response.MESSAGE_HEAD
MB = 1_000_000


class _HostileStr(ccxt.ExchangeError):  # type: ignore[misc]
    def __str__(self) -> str:
        raise RuntimeError("no")


class _HostileDict(ccxt.NetworkError):  # type: ignore[misc]
    @property
    def __dict__(self) -> Any:  # type: ignore[override]
        raise RuntimeError("no")


def test_hostile_exceptions_fall_back_to_their_type() -> None:
    assert classify(_HostileStr("x")).kind is PM
    assert classify(_HostileStr("x"), write=True).kind is PM
    assert classify(_HostileStr("x"), headers={"Retry-After": "2"}).kind is PM
    assert classify(_HostileDict("x"), write=True).kind is AMB

    class BadHeaders(aiohttp.ClientResponseError):
        @property
        def headers(self) -> Any:
            raise RuntimeError("no")

        @headers.setter
        def headers(self, value: Any) -> None:
            pass

    assert classify(response_error(429, cls=BadHeaders)) == Outcome(
        RL, None, "HTTP 429", 429, None, Signal.RATE_LIMIT
    )


def test_attach_response_on_an_exception_without_a_dict_is_harmless() -> None:
    error = StopAsyncIteration()  # builtins keep a __dict__; the record sticks
    assert attach_response(error, status=503) is error
    assert classify(error).status == 503


def _all_exception_classes() -> list[type[Exception]]:
    found: list[type[Any]] = []
    stack: list[type[Any]] = [Exception]
    while stack:
        cls = stack.pop()
        if cls in found:
            continue
        found.append(cls)
        try:
            stack.extend(cls.__subclasses__())
        except TypeError:  # type.__subclasses__ needs an instance
            continue
    return sorted(
        (c for c in found if issubclass(c, Exception)), key=lambda c: (c.__module__, c.__qualname__)
    )


_CLASSES = _all_exception_classes()
_ARGS = st.lists(
    st.one_of(
        st.text(),
        st.from_regex(
            r'[a-z]{2,10} \{"(retCode|code|sCode|ret_code)": ?"?-?\w{0,8}"?', fullmatch=True
        ),
        st.from_regex(r"[a-z]{2,8} (GET|POST) \S{0,20} \w{3} [^\n]{0,40}", fullmatch=True),
        st.integers(),
        st.none(),
    ),
    max_size=3,
)
_HEADERS = st.one_of(
    st.none(),
    st.dictionaries(
        st.sampled_from(["Retry-After", "retry-after", "X-Bapi-Limit-Reset-Timestamp", "X"]),
        st.one_of(
            st.text(max_size=80), st.from_regex(r"[0-9]{1,20}(\.[0-9]{1,5})?", fullmatch=True)
        ),
    ),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    cls=st.sampled_from(_CLASSES),
    args=_ARGS,
    write=st.booleans(),
    exchange_id=st.one_of(st.none(), st.sampled_from(["bybit", "okx", "binance"]), st.text()),
    status=st.one_of(st.none(), st.integers(100, 599)),
    headers=_HEADERS,
)  # fmt: skip
def test_classify_never_raises_for_any_exception(
    cls: type[Exception],
    args: list[Any],
    write: bool,
    exchange_id: str | None,
    status: int | None,
    headers: dict[str, str] | None,
) -> None:
    try:
        error = cls(*args)
    except Exception:
        assume(False)
        return
    assume(isinstance(error, Exception) and not isinstance(error, asyncio.CancelledError))
    for classifier in (DEFAULT_CLASSIFIER, Classifier()):
        outcome = classifier.classify(
            error, write=write, exchange_id=exchange_id, status=status, headers=headers
        )
        assert isinstance(outcome, Outcome)
        assert outcome.kind is not OutcomeKind.SUCCESS
        assert outcome.retry_after is None or 0 <= outcome.retry_after <= 3600
        assert outcome.code is None or (outcome.code.isascii() and len(outcome.code) <= 64)
        if not write:
            assert outcome.kind is not AMB


@settings(max_examples=200, deadline=None)
@given(
    cls=st.sampled_from(walk(ccxt.BaseError, "ccxt")),
    prefix=st.sampled_from(
        ["bybit ", "okx ", "", "binance GET https://x 400 Bad ", "binance 418 "]
    ),
    body=st.text(),
    code=st.one_of(st.integers(), st.text(max_size=12)),
    write=st.booleans(),
)
def test_classify_never_raises_for_ccxt_messages(
    cls: type[ccxt.BaseError], prefix: str, body: str, code: object, write: bool
) -> None:
    message = prefix + json.dumps({"retCode": code, "code": code, "sCode": code, "msg": body})
    outcome = classify(cls(message), write=write)
    assert isinstance(outcome, Outcome)
    assert outcome.kind is not OutcomeKind.SUCCESS


def test_the_type_cache_is_bounded() -> None:
    for i in range(_core._CACHE_LIMIT + 10):
        cls = type(f"Dyn{i}", (ccxt.NetworkError,), {})
        assert classify(cls("x")).kind is T
    assert len(_core._CACHE) <= _core._CACHE_LIMIT


def test_the_code_memo_is_bounded() -> None:
    clf = Classifier({"kraken": {str(i): OutcomeKind.TRANSIENT for i in range(3000)}})
    for i in range(3000):
        clf.classify(ccxt.ExchangeError('kraken {"code":"' + str(i) + '"}'))
    assert len(clf._memo) <= _core._CACHE_LIMIT
    # A memoised answer is the same answer.
    first = clf.classify(ccxt.ExchangeError('kraken {"code":"2999"}'))
    assert clf.classify(ccxt.ExchangeError('kraken {"code":"2999"}')) is first


# ------------------------------------------------- 1 MB messages: cut first


def _padding(size: int) -> str:
    # What defeats a careless pattern: keys without values, quotes, spaces, digits.
    unit = '"code"    "retCode" : ' + " " * 16 + '"maint 429 " '
    return (unit * (size // len(unit) + 1))[:size]


@pytest.mark.parametrize("where", ["head", "tail"])
def test_maintenance_text_is_read_only_in_the_head_of_a_1mb_message(where: str) -> None:
    text = "System maintenance"
    body = text + _padding(MB) if where == "head" else _padding(MB) + text
    error = ccxt.ExchangeNotAvailable(f"bybit GET https://x 503 Service Unavailable {body}")
    assert len(str(error)) > MB
    outcome = classify(error)
    if where == "head":
        assert (outcome.kind, outcome.signal) == (MT, Signal.MAINTENANCE)
    else:
        assert outcome.kind is T  # never scanned: past the first MESSAGE_HEAD characters


@pytest.mark.parametrize("where", ["head", "tail"])
def test_codes_and_bans_are_read_only_in_the_head_of_a_1mb_message(where: str) -> None:
    code = '{"code":-1003,"msg":"Way too much request weight used; IP banned until 9999999999999"}'
    body = code + _padding(MB) if where == "head" else _padding(MB) + code
    outcome = classify(ccxt.DDoSProtection(f"binance 418 I'm a teapot {body}"), now=0.0)
    assert outcome.signal is Signal.IP_BAN  # 418 alone says so
    if where == "head":
        assert (outcome.code, outcome.retry_after) == ("-1003", 3600.0)  # ban end, capped
    else:
        assert (outcome.code, outcome.retry_after) == (None, 120.0)  # the ban pause


def test_a_1mb_message_is_cut_before_any_scan() -> None:
    """Every rule reads ``MESSAGE_HEAD`` characters at most: the parts that look at
    messages are given the cut head, whatever the message's size."""
    seen: list[int] = []
    original = _core._message_head

    def spy(error: BaseException) -> str:
        head = original(error)
        seen.append(len(head))
        return head

    _core._message_head = spy
    try:
        for size in (10, 10_000, MB, 4 * MB):
            message = "bybit GET https://x 503 Unavailable " + _padding(size)
            classify(ccxt.ExchangeNotAvailable(message), write=True)
    finally:
        _core._message_head = original
    assert seen[0] < HEAD and seen[1:] == [HEAD, HEAD, HEAD]


def test_status_in_message_needs_ascii_digits() -> None:
    for fake in ("٤٠٤", "4O4", "４０４", "40", "4040"):
        error = ccxt.ExchangeNotAvailable(f"binance POST https://x {fake} Not Found {{}}")
        outcome = classify(error, write=True)
        assert outcome.status is None, fake
        assert outcome.kind is AMB, fake  # unknown status: a write may have been applied


@settings(max_examples=300, deadline=None)
@given(
    cls=st.sampled_from(walk(ccxt.BaseError, "ccxt")),
    message=st.one_of(
        st.sampled_from(
            [
                'bybit {"retCode":10006,"retMsg":"Too many visits!"}',
                'bybit {"retCode":110072,"retMsg":"dup"}',
                'binance {"code":-1003,"msg":"Way too much; IP banned until 1700000000000"}',
                'binance {"code":-1003,"msg":"Too much request weight used"}',
                'binance {"code":-2010,"msg":"Duplicate order sent."}',
                'binance {"code":-2010,"msg":"Insufficient balance"}',
                "binance POST https://x 403 Forbidden your IP is banned",
                "binance POST https://x 403 Forbidden region",
                "bybit GET https://x 503 Unavailable system maintenance",
                "bybit GET https://x 503 Unavailable",
                "binance 418 I'm a teapot {}",
                'okx {"code":"1","data":[{"sCode":"51016"}]}',
            ]
        ),
        st.text(max_size=60),
    ),
    write=st.booleans(),
)
def test_memoised_answers_are_the_answers(
    cls: type[ccxt.BaseError], message: str, write: bool
) -> None:
    fresh = Classifier(BUILTIN_OVERRIDES)
    first = fresh.classify(cls(message), write=write, now=0.0)
    again = fresh.classify(cls(message), write=write, now=0.0)
    assert again == first
    assert Classifier(BUILTIN_OVERRIDES).classify(cls(message), write=write, now=0.0) == first
