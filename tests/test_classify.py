"""The outcome classifier: every family, overrides, write ambiguity, robustness."""

from __future__ import annotations

import asyncio
import email.utils
import importlib
import json
import math
import socket
import ssl
import time
from collections.abc import AsyncIterator
from dataclasses import FrozenInstanceError
from typing import Any

import aiohttp
import aiomcache
import aiomcache.exceptions
import ccxt
import ccxt.async_support as ccxt_async
import pytest
import redis.asyncio
import redis.asyncio.sentinel
import redis.exceptions
import redis.sentinel
from aiohttp import web
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from multidict import CIMultiDict, CIMultiDictProxy
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from yarl import URL

from virtuoso_resilience import errors as lib_errors
from virtuoso_resilience.classify import (
    BYBIT_OVERRIDES,
    DEFAULT_CLASSIFIER,
    SUCCESS,
    Classifier,
    Outcome,
    OutcomeKind,
    classify,
    parse_retry_after,
)
from virtuoso_resilience.errors import (
    BulkheadFullError,
    CircuitOpenError,
    ConfigurationError,
    PoolExhaustedError,
    RateLimitTimeoutError,
    ResilienceError,
    ResilienceTimeoutError,
)

# ``virtuoso_resilience.classify`` the attribute is the function; this is the module.
_mod = importlib.import_module("virtuoso_resilience.classify")

K = OutcomeKind
T, RL, MT, AMB, PM, BZ = (
    K.TRANSIENT,
    K.RATE_LIMITED,
    K.MAINTENANCE,
    K.AMBIGUOUS,
    K.PERMANENT,
    K.BUSINESS,
)


def _walk(base: type[BaseException], module_prefix: str) -> list[type[BaseException]]:
    """``base`` and every subclass defined in modules starting with ``module_prefix``."""
    seen: list[type[BaseException]] = []
    stack = [base]
    while stack:
        cls = stack.pop()
        if cls in seen or not cls.__module__.startswith(module_prefix):
            continue
        seen.append(cls)
        stack.extend(cls.__subclasses__())
    return seen


def _response_error(
    status: int, headers: dict[str, str] | None = None, cls: type[Any] = aiohttp.ClientResponseError
) -> aiohttp.ClientResponseError:
    info = aiohttp.RequestInfo(
        URL("http://127.0.0.1/x"),
        "POST",
        CIMultiDictProxy(CIMultiDict()),
        URL("http://127.0.0.1/x"),
    )
    proxy = None if headers is None else CIMultiDictProxy(CIMultiDict(headers))
    error: aiohttp.ClientResponseError = cls(info, (), status=status, message="m", headers=proxy)
    return error


def _connection_key() -> Any:
    return aiohttp.client_reqrep.ConnectionKey("127.0.0.1", 1, False, True, None, None, None, None)


# --------------------------------------------------------------------------
# Outcome and the basics


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
    }
    for kind, (success, retryable, service) in expected.items():
        outcome = Outcome(kind)
        assert (outcome.is_success, outcome.is_retryable, outcome.is_service_failure) == (
            success,
            retryable,
            service,
        ), kind


def test_outcome_is_frozen_and_has_a_readable_repr() -> None:
    outcome = Outcome(RL, 2.5, "HTTP 429")
    assert repr(outcome) == "Outcome(RATE_LIMITED, retry_after=2.5, reason='HTTP 429')"
    assert repr(SUCCESS) == "Outcome(SUCCESS)"
    with pytest.raises(FrozenInstanceError):
        outcome.kind = T  # type: ignore[misc]
    assert not hasattr(outcome, "__dict__")  # slotted


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
            classifier.classify(error, write=True)
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


def test_the_type_result_is_cached() -> None:
    class Once(ccxt.RequestTimeout):  # type: ignore[misc]
        pass

    assert Once not in _mod._CACHE
    first = classify(Once("x"))
    assert Once in _mod._CACHE
    assert classify(Once("y")) is first  # the same pre-built Outcome, no allocation
    assert first == Outcome(T, None, "Once")  # inherits RequestTimeout's meaning
    assert classify(Once("z"), write=True).kind is AMB


def test_repr_shows_override_tables() -> None:
    text = repr(DEFAULT_CLASSIFIER)
    assert text.startswith(f"Classifier(overrides={{'bybit': {len(BYBIT_OVERRIDES)} codes}}")
    assert "cached_types=" in text
    assert repr(Classifier()).startswith("Classifier(overrides={}")


# --------------------------------------------------------------------------
# ccxt


CCXT_EXPECTED: dict[str, tuple[OutcomeKind, OutcomeKind]] = {
    # name: (read, write)
    "BaseError": (PM, PM),
    "ExchangeError": (PM, PM),
    "AuthenticationError": (BZ, BZ),
    "PermissionDenied": (BZ, BZ),
    "AccountNotEnabled": (BZ, BZ),
    "AccountSuspended": (BZ, BZ),
    "ArgumentsRequired": (BZ, BZ),
    "BadRequest": (BZ, BZ),
    "BadSymbol": (BZ, BZ),
    "OperationRejected": (BZ, BZ),
    "NoChange": (BZ, BZ),
    "MarginModeAlreadySet": (BZ, BZ),
    "MarketClosed": (BZ, BZ),
    "ManualInteractionNeeded": (BZ, BZ),
    "RestrictedLocation": (BZ, BZ),
    "InsufficientFunds": (BZ, BZ),
    "InvalidAddress": (BZ, BZ),
    "AddressPending": (BZ, BZ),
    "InvalidOrder": (BZ, BZ),
    "OrderNotFound": (BZ, BZ),
    "OrderNotCached": (BZ, BZ),
    "OrderImmediatelyFillable": (BZ, BZ),
    "OrderNotFillable": (BZ, BZ),
    "DuplicateOrderId": (BZ, BZ),
    "ContractUnavailable": (BZ, BZ),
    "NotSupported": (PM, PM),
    "InvalidProxySettings": (PM, PM),
    "ExchangeClosedByUser": (PM, PM),
    "OperationFailed": (T, AMB),
    "NetworkError": (T, AMB),
    "DDoSProtection": (RL, RL),
    "RateLimitExceeded": (RL, RL),
    "ExchangeNotAvailable": (T, AMB),
    "OnMaintenance": (MT, MT),
    "InvalidNonce": (T, T),
    "ChecksumError": (T, T),
    "RequestTimeout": (T, AMB),
    "BadResponse": (T, AMB),
    "NullResponse": (T, AMB),
    "CancelPending": (T, T),
    "UnsubscribeError": (BZ, BZ),
}


def test_every_ccxt_exception_class_is_mapped_explicitly() -> None:
    classes = _walk(ccxt.BaseError, "ccxt")
    assert len(classes) >= 40
    missing = [c.__name__ for c in classes if _mod._explicit_rule(c) is None]
    assert missing == [], f"ccxt classes without an explicit rule: {missing}"
    untested = sorted({c.__name__ for c in classes} - set(CCXT_EXPECTED))
    assert untested == [], f"ccxt classes without an expected mapping here: {untested}"


@pytest.mark.parametrize(("name", "expected"), sorted(CCXT_EXPECTED.items()))
def test_ccxt_mapping(name: str, expected: tuple[OutcomeKind, OutcomeKind]) -> None:
    cls = getattr(ccxt, name)
    error = cls("binance something happened")
    read, write = expected
    assert classify(error).kind is read
    assert classify(error, write=True).kind is write
    assert classify(error).reason.startswith(name)


def test_duplicate_order_id_says_so_in_the_reason() -> None:
    outcome = classify(ccxt.DuplicateOrderId("okx order already exists"), write=True)
    assert outcome.kind is BZ
    assert "duplicate order id" in outcome.reason


def test_ccxt_network_error_caused_by_a_failed_connect_is_not_ambiguous() -> None:
    refused = aiohttp.ClientConnectorError(_connection_key(), ConnectionRefusedError(111, "x"))
    dropped = aiohttp.ServerDisconnectedError()
    for cause, write_kind in ((refused, T), (dropped, AMB), (socket.gaierror(-2, "dns"), T)):
        error = _raised(ccxt.ExchangeNotAvailable("bybit POST https://api.bybit.com/v5"), cause)
        assert classify(error).kind is T
        outcome = classify(error, write=True)
        assert outcome.kind is write_kind, cause
        if write_kind is T:
            assert type(cause).__name__ in outcome.reason
    connect_timeout = aiohttp.ConnectionTimeoutError("connect")
    error = _raised(ccxt.RequestTimeout("bybit POST https://api.bybit.com/v5"), connect_timeout)
    assert classify(error, write=True).kind is T
    error = _raised(ccxt.RequestTimeout("bybit POST https://api.bybit.com/v5"), TimeoutError())
    assert classify(error, write=True).kind is AMB


def _raised(error: Exception, cause: BaseException) -> Exception:
    """``error`` as ``raise error from cause`` leaves it."""
    with pytest.raises(type(error)) as info:
        raise error from cause
    return info.value


def test_reasons_carry_no_message_text() -> None:
    secret = "apiKey=SECRET123&signature=deadbeef"
    for cls in (ccxt.ExchangeError, ccxt.RequestTimeout, ccxt.AuthenticationError):
        error = cls(f"bybit GET https://api.bybit.com/v5/x?{secret}")
        for write in (False, True):
            assert "SECRET" not in classify(error, write=write).reason
    error = ccxt.ExchangeError('bybit {"retCode":10016,"retMsg":"apiKey=SECRET123"}')
    assert classify(error).reason == "bybit retCode 10016"


# --------------------------------------------------------------------------
# Exchange-code overrides


def test_builtin_bybit_overrides_cover_the_required_codes() -> None:
    required = {10016: T, 5004: T, 10006: RL, 10018: RL, 10002: T, 10000: T}
    for code, kind in required.items():
        assert BYBIT_OVERRIDES[code] is kind
    assert DEFAULT_CLASSIFIER.overrides["bybit"]["10016"] is T


def _bybit(cls: type[ccxt.BaseError], code: int, msg: str = "System error") -> ccxt.BaseError:
    # The exact shape bybit.handle_errors builds: self.id + ' ' + body
    body = json.dumps(
        {"retCode": code, "retMsg": msg, "result": {}, "retExtInfo": {}, "time": 1},
        separators=(",", ":"),
    )
    return cls("bybit " + body)


@pytest.mark.parametrize(
    ("cls", "code", "read", "write"),
    [
        (ccxt.ExchangeError, 10016, T, AMB),  # system error: a write may have happened
        (ccxt.RequestTimeout, 10016, T, AMB),  # 'Request timeout' is broadly matched
        (ccxt.ExchangeError, 5004, T, AMB),  # server timeout
        (ccxt.ExchangeError, 10000, T, AMB),
        (ccxt.InvalidNonce, 10002, T, T),  # refused before acting
        (ccxt.RateLimitExceeded, 10006, RL, RL),
        (ccxt.RateLimitExceeded, 10018, RL, RL),
        (ccxt.InvalidOrder, 170146, T, AMB),  # order creation timeout
        (ccxt.ExchangeError, 99999, PM, PM),  # not overridden: the class decides
        (ccxt.BadRequest, 10001, BZ, BZ),
    ],
)
def test_bybit_overrides(
    cls: type[ccxt.BaseError], code: int, read: OutcomeKind, write: OutcomeKind
) -> None:
    error = _bybit(cls, code)
    assert classify(error).kind is read
    assert classify(error, write=True).kind is write
    if code in BYBIT_OVERRIDES:
        assert classify(error).reason == f"bybit retCode {code}"


def test_bybit_duplicate_order_codes_say_so() -> None:
    for code in (110072, 12141, 170141, 110030, 140030):
        outcome = classify(_bybit(ccxt.InvalidOrder, code), write=True)
        assert outcome == Outcome(BZ, None, f"bybit retCode {code}: duplicate order id")


def test_legacy_ret_code_and_spaced_json_are_parsed() -> None:
    error = ccxt.ExchangeError('bybit {"ret_code": 10016, "ret_msg": "System error"}')
    assert classify(error) == Outcome(T, None, "bybit retCode 10016")
    quoted = ccxt.ExchangeError('bybit {"retCode":"10006","retMsg":"Too many visits"}')
    assert classify(quoted).kind is RL


def test_overrides_need_the_exchange_table() -> None:
    error = _bybit(ccxt.ExchangeError, 10016)
    assert Classifier().classify(error).kind is PM
    # The same code from another exchange is not Bybit's code.
    other = ccxt.ExchangeError('okx {"retCode":10016}')
    assert classify(other).kind is PM
    # An explicit exchange_id wins over the message prefix.
    assert classify(other, exchange_id="bybit").kind is T
    assert classify(error, exchange_id="okx").kind is PM
    assert classify(ccxt.ExchangeError('{"retCode":10016}'), exchange_id="Bybit").kind is T


def test_generic_code_overrides_and_with_overrides_is_immutable() -> None:
    okx = DEFAULT_CLASSIFIER.with_overrides("OKX", {"50001": K.MAINTENANCE, 50011: K.RATE_LIMITED})
    assert okx is not DEFAULT_CLASSIFIER
    assert "okx" not in DEFAULT_CLASSIFIER.overrides
    assert set(okx.overrides["okx"]) == {"50001", "50011"}
    assert okx.overrides["bybit"] == DEFAULT_CLASSIFIER.overrides["bybit"]

    maint = ccxt.ExchangeError('okx {"code":"50001","msg":"Service temporarily unavailable"}')
    assert okx.classify(maint) == Outcome(MT, None, "okx code 50001")
    assert okx.classify(maint, write=True).kind is MT
    limited = ccxt.ExchangeError('okx {"code":50011,"msg":"Rate limit reached"}')
    assert okx.classify(limited).kind is RL
    assert DEFAULT_CLASSIFIER.classify(limited).kind is PM

    # Merging: new codes replace old ones for that exchange, others are kept.
    changed = DEFAULT_CLASSIFIER.with_overrides("bybit", {10016: K.PERMANENT})
    assert changed.classify(_bybit(ccxt.ExchangeError, 10016)).kind is PM
    assert changed.classify(_bybit(ccxt.RateLimitExceeded, 10006)).kind is RL
    assert DEFAULT_CLASSIFIER.classify(_bybit(ccxt.ExchangeError, 10016)).kind is T


def test_override_kinds_and_write() -> None:
    clf = Classifier(
        {
            "kraken": {
                "EAPI:Busy": K.AMBIGUOUS,
                "EGeneral:Temporary": K.TRANSIENT,
                "EOrder:Dup": K.BUSINESS,
            }
        }
    )

    def err(code: str, cls: type[ccxt.BaseError] = ccxt.ExchangeError) -> ccxt.BaseError:
        return cls('kraken {"code":"' + code + '"}')

    # AMBIGUOUS in a table means: transient for reads, ambiguous for writes.
    assert clf.classify(err("EAPI:Busy")).kind is T
    assert clf.classify(err("EAPI:Busy"), write=True).kind is AMB
    assert clf.classify(err("EAPI:Busy", ccxt.InvalidNonce), write=True).kind is AMB
    # TRANSIENT is ambiguous on writes unless the class is a clear refusal.
    assert clf.classify(err("EGeneral:Temporary"), write=True).kind is AMB
    assert clf.classify(err("EGeneral:Temporary", ccxt.InvalidNonce), write=True).kind is T
    assert clf.classify(err("EGeneral:Temporary", ccxt.OnMaintenance), write=True).kind is T
    # Overrides take precedence over the class.
    assert clf.classify(err("EOrder:Dup", ccxt.RequestTimeout), write=True).kind is BZ
    assert clf.classify(err("EOrder:Dup")).reason == "kraken code EOrder:Dup"


def test_override_rate_limit_carries_retry_after_attribute() -> None:
    class Limited(ccxt.ExchangeError):  # type: ignore[misc]
        retry_after = 4.0

    error = Limited('bybit {"retCode":10006}')
    assert classify(error) == Outcome(RL, 4.0, "bybit retCode 10006")


@pytest.mark.parametrize(
    "overrides",
    [
        {"bybit": {10016: "transient"}},
        {"bybit": {True: K.TRANSIENT}},
        {"bybit": {"": K.TRANSIENT}},
        {"bybit": {1.5: K.TRANSIENT}},
        {"": {1: K.TRANSIENT}},
        {3: {1: K.TRANSIENT}},
    ],
)
def test_bad_overrides_are_configuration_errors(overrides: Any) -> None:
    with pytest.raises(ConfigurationError) as info:
        Classifier(overrides)
    assert info.value.errors
    assert all(e.model == "Classifier" for e in info.value.errors)
    with pytest.raises(ConfigurationError):
        DEFAULT_CLASSIFIER.with_overrides("bybit", {10016: "transient"})  # type: ignore[dict-item]


def test_bad_overrides_are_all_listed() -> None:
    with pytest.raises(ConfigurationError) as info:
        Classifier({"bybit": {10016: "x", "": K.TRANSIENT}})  # type: ignore[dict-item]
    assert len(info.value.errors) == 2


# --- through ccxt's real code path: aiohttp server on loopback -> ccxt fetch -> handle_errors


@pytest.fixture
async def fake_bybit(unused_port: int) -> AsyncIterator[str]:
    async def handler(request: web.Request) -> web.Response:
        code = int(request.match_info["code"])
        if 400 <= code < 600:
            return web.Response(status=code, text="<html>gateway</html>", content_type="text/html")
        message = request.query.get("msg", "System error. Please try again later.")
        body = {"retCode": code, "retMsg": message, "result": {}, "retExtInfo": {}, "time": 1}
        return web.json_response(body)

    app = web.Application()
    app.router.add_route("*", "/v5/{code}", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", unused_port)
    await site.start()
    try:
        yield f"http://127.0.0.1:{unused_port}/v5"
    finally:
        await runner.cleanup()


@pytest.fixture
async def bybit_client() -> AsyncIterator[Any]:
    exchange = ccxt_async.bybit({"timeout": 10_000, "timeout_on_exit": 0})
    try:
        yield exchange
    finally:
        await exchange.close()


async def _ccxt_error(exchange: Any, url: str) -> ccxt.BaseError:
    with pytest.raises(ccxt.BaseError) as info:
        await exchange.fetch(url, "POST", {}, "{}")
    return info.value


@pytest.mark.parametrize(
    ("path", "cls", "read", "write", "reason"),
    [
        ("10016", ccxt.ExchangeError, T, AMB, "bybit retCode 10016"),
        ("10016?msg=Request%20timeout", ccxt.RequestTimeout, T, AMB, "bybit retCode 10016"),
        ("5004", ccxt.ExchangeError, T, AMB, "bybit retCode 5004"),
        ("10002", ccxt.InvalidNonce, T, T, "bybit retCode 10002"),
        ("10006", ccxt.RateLimitExceeded, RL, RL, "bybit retCode 10006"),
        ("10018", ccxt.RateLimitExceeded, RL, RL, "bybit retCode 10018"),
        ("110072", ccxt.InvalidOrder, BZ, BZ, "bybit retCode 110072: duplicate order id"),
        ("110007", ccxt.InsufficientFunds, BZ, BZ, "InsufficientFunds"),
        ("10003", ccxt.AuthenticationError, BZ, BZ, "AuthenticationError"),
        ("99999", ccxt.ExchangeError, PM, PM, "ExchangeError"),
        ("502", ccxt.ExchangeNotAvailable, T, AMB, "ExchangeNotAvailable"),
        ("504", ccxt.RequestTimeout, T, AMB, "RequestTimeout"),
        ("429", ccxt.RateLimitExceeded, RL, RL, "RateLimitExceeded"),
    ],
)
async def test_bybit_errors_through_ccxt(
    fake_bybit: str,
    bybit_client: Any,
    path: str,
    cls: type[ccxt.BaseError],
    read: OutcomeKind,
    write: OutcomeKind,
    reason: str,
) -> None:
    error = await _ccxt_error(bybit_client, f"{fake_bybit}/{path}")
    assert type(error) is cls
    assert classify(error) == Outcome(read, None, reason)
    assert classify(error, write=True).kind is write


async def test_refused_connection_through_ccxt_is_not_ambiguous(
    bybit_client: Any, unused_port: int
) -> None:
    error = await _ccxt_error(bybit_client, f"http://127.0.0.1:{unused_port}/v5/order/create")
    assert isinstance(error, ccxt.ExchangeNotAvailable)
    assert classify(error).kind is T
    outcome = classify(error, write=True)
    assert outcome.kind is T
    assert "ClientConnectorError" in outcome.reason


# --------------------------------------------------------------------------
# aiohttp


AIOHTTP_EXPECTED: dict[str, tuple[OutcomeKind, OutcomeKind]] = {
    "ClientError": (PM, PM),
    "ClientResponseError": (PM, PM),
    "ContentTypeError": (T, AMB),
    "WSServerHandshakeError": (T, T),
    "ClientHttpProxyError": (T, T),
    "TooManyRedirects": (PM, PM),
    "ClientConnectionError": (T, AMB),
    "ClientConnectionResetError": (T, AMB),
    "ClientOSError": (T, AMB),
    "ClientConnectorError": (T, T),
    "ClientConnectorDNSError": (T, T),
    "ClientProxyConnectionError": (T, T),
    "UnixClientConnectorError": (T, T),
    "ClientSSLError": (T, T),
    "ClientConnectorSSLError": (T, T),
    "ClientConnectorCertificateError": (PM, PM),
    "ServerConnectionError": (T, AMB),
    "ServerDisconnectedError": (T, AMB),
    "ServerTimeoutError": (T, AMB),
    "ConnectionTimeoutError": (T, T),
    "SocketTimeoutError": (T, AMB),
    "ServerFingerprintMismatch": (PM, PM),
    "ClientPayloadError": (T, AMB),
    "UploadAbortedError": (T, AMB),
    "InvalidURL": (PM, PM),
    "InvalidUrlClientError": (PM, PM),
    "InvalidUrlRedirectClientError": (PM, PM),
    "RedirectClientError": (PM, PM),
    "NonHttpUrlClientError": (PM, PM),
    "NonHttpUrlRedirectClientError": (PM, PM),
}


def test_every_aiohttp_client_error_is_mapped_explicitly() -> None:
    classes = _walk(aiohttp.ClientError, "aiohttp")
    missing = [c.__name__ for c in classes if _mod._explicit_rule(c) is None]
    assert missing == []
    for cls in classes:
        rule = _mod._explicit_rule(cls)
        assert rule is not None
        read, write = AIOHTTP_EXPECTED[cls.__name__]
        assert rule.kind is read, cls
        assert (AMB if rule.ambiguous_on_write else rule.kind) is write, cls


def test_aiohttp_connection_errors() -> None:
    key = _connection_key()
    refused = aiohttp.ClientConnectorError(key, ConnectionRefusedError(111, "refused"))
    assert classify(refused, write=True) == Outcome(T, None, "ClientConnectorError")
    for error in (
        aiohttp.ServerDisconnectedError(),
        aiohttp.ClientOSError(104, "reset"),
        aiohttp.ClientPayloadError("truncated"),
        aiohttp.ServerTimeoutError("read timeout"),
        aiohttp.ClientConnectionError("gone"),
    ):
        assert classify(error).kind is T, error
        assert classify(error, write=True).kind is AMB, error
    assert classify(aiohttp.InvalidURL("nota url")).kind is PM


@pytest.mark.parametrize(
    ("status", "read", "write"),
    [
        (429, RL, RL),
        (503, T, AMB),
        (500, T, AMB),
        (502, T, AMB),
        (504, T, AMB),
        (520, T, AMB),
        (501, PM, PM),
        (408, T, T),
        (401, BZ, BZ),
        (403, BZ, BZ),
        (400, PM, PM),
        (404, PM, PM),
        (407, PM, PM),
        (422, PM, PM),
    ],
)
def test_aiohttp_response_errors_by_status(
    status: int, read: OutcomeKind, write: OutcomeKind
) -> None:
    error = _response_error(status)
    assert classify(error) == Outcome(read, None, f"HTTP {status}")
    assert classify(error, write=True).kind is write


def test_retry_after_seconds_on_429_and_503() -> None:
    assert classify(_response_error(429, {"Retry-After": "7"})) == Outcome(RL, 7.0, "HTTP 429")
    assert classify(_response_error(503, {"retry-after": "2.5"})).retry_after == 2.5
    assert classify(_response_error(429, {"Retry-After": "soon"})).retry_after is None
    assert classify(_response_error(429, {"Retry-After": "-3"})).retry_after is None
    assert classify(_response_error(429, {})).retry_after is None


def test_retry_after_http_date_on_429() -> None:
    in_two_minutes = email.utils.formatdate(time.time() + 120, usegmt=True)
    outcome = classify(_response_error(429, {"Retry-After": in_two_minutes}))
    assert outcome.kind is RL
    assert outcome.retry_after is not None
    assert 0 < outcome.retry_after <= 121


def test_subclasses_of_client_response_error_use_the_status() -> None:
    error = _response_error(502, cls=aiohttp.ContentTypeError)
    assert classify(error) == Outcome(T, None, "HTTP 502")
    assert classify(_response_error(200, cls=aiohttp.ContentTypeError), write=True).kind is AMB
    assert classify(_response_error(302, cls=aiohttp.TooManyRedirects)).kind is PM


async def test_real_aiohttp_errors(unused_port: int) -> None:
    async with aiohttp.ClientSession() as session:
        with pytest.raises(aiohttp.ClientConnectorError) as info:
            await session.post(f"http://127.0.0.1:{unused_port}/order", data=b"{}")
    assert classify(info.value, write=True).kind is T

    async def drop(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readline()  # the request went out...
        writer.close()  # ...and the connection dropped before any answer

    server = await asyncio.start_server(drop, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        async with aiohttp.ClientSession() as session:
            with pytest.raises(aiohttp.ServerDisconnectedError) as dropped:
                await session.post(f"http://127.0.0.1:{port}/order", data=b"{}")
    finally:
        server.close()
        await server.wait_closed()
    assert classify(dropped.value).kind is T
    assert classify(dropped.value, write=True).kind is AMB


# --------------------------------------------------------------------------
# Retry-After parsing


def test_parse_retry_after() -> None:
    now = 1_445_412_480.0  # Wed, 21 Oct 2015 07:28:00 GMT
    assert parse_retry_after("120") == 120.0
    assert parse_retry_after(" 1.5 ") == 1.5
    assert parse_retry_after(3) == 3.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:30:00 GMT", now=now) == 120.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:27:00 GMT", now=now) == 0.0  # past: now
    assert parse_retry_after("Wednesday, 21-Oct-15 07:29:00 GMT", now=now) == 60.0  # RFC 850
    for bad in (None, "", "soon", "-1", "nan", "inf", "1e999", True, -2, float("nan"), [1]):
        assert parse_retry_after(bad) is None, bad


@given(st.one_of(st.text(), st.integers(), st.floats()))
def test_parse_retry_after_never_raises(value: object) -> None:
    result = parse_retry_after(value, now=0.0)
    assert result is None or (math.isfinite(result) and result >= 0)


# --------------------------------------------------------------------------
# Builtins and asyncio


@pytest.mark.parametrize(
    ("error", "read", "write"),
    [
        (asyncio.TimeoutError(), T, AMB),  # noqa: UP041 (the same class, named as callers do)
        (TimeoutError(), T, AMB),
        (OSError(5, "io"), T, AMB),
        (ConnectionError(), T, AMB),
        (ConnectionResetError(104, "reset"), T, AMB),
        (BrokenPipeError(32, "pipe"), T, AMB),
        (ConnectionAbortedError(), T, AMB),
        (ConnectionRefusedError(111, "refused"), T, T),
        (socket.gaierror(-2, "Name or service not known"), T, T),
        (asyncio.IncompleteReadError(b"ab", 10), T, AMB),
        (ssl.SSLCertVerificationError("bad cert"), PM, PM),
        (FileNotFoundError(2, "nope"), PM, PM),
        (PermissionError(13, "denied"), PM, PM),
        (RuntimeError("bug"), PM, PM),
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, BaseException) else v.value,
)
def test_builtin_errors(error: Exception, read: OutcomeKind, write: OutcomeKind) -> None:
    assert classify(error).kind is read
    assert classify(error, write=True).kind is write


# --------------------------------------------------------------------------
# The library's own errors


def test_every_library_error_is_mapped_explicitly() -> None:
    classes = _walk(ResilienceError, lib_errors.__name__)
    assert len(classes) >= 7
    missing = [c.__name__ for c in classes if _mod._explicit_rule(c) is None]
    assert missing == [], f"add these to classify._BUILTIN_RULES: {missing}"


def test_library_errors() -> None:
    rej = OutcomeKind.REJECTED
    opened = CircuitOpenError("exchange_api", "open", 12.5)
    assert classify(opened) == Outcome(rej, 12.5, "CircuitOpenError")
    assert classify(opened, write=True) == Outcome(rej, 12.5, "CircuitOpenError")
    forced = CircuitOpenError("exchange_api", "forced_open", None)
    assert classify(forced) == Outcome(rej, None, "CircuitOpenError")
    # Refused locally: retryable, but never a failure of the service.
    assert classify(opened).is_retryable
    assert not classify(opened).is_service_failure

    limited = RateLimitTimeoutError("bybit", 1.0, 0.5, 2.0)
    assert classify(limited) == Outcome(RL, 2.0, "RateLimitTimeoutError")
    unknown_wait = RateLimitTimeoutError("bybit", 1.0, 0.5, None)
    assert classify(unknown_wait) == Outcome(RL, None, "RateLimitTimeoutError")

    full = BulkheadFullError("orders", 10, 0, "no free slot")
    assert classify(full, write=True).kind is rej

    timed_out = ResilienceTimeoutError("create_order", 5.0)
    assert classify(timed_out).kind is T
    assert classify(timed_out, write=True).kind is AMB

    exhausted = PoolExhaustedError("exchange_api", 50, 20, 10.0)
    assert classify(exhausted, write=True).kind is rej

    assert classify(ConfigurationError([])).kind is PM
    assert classify(ResilienceError("x")).kind is PM


def test_retry_after_attribute_is_carried_for_waitable_kinds_only() -> None:
    class Throttled(ccxt.RateLimitExceeded):  # type: ignore[misc]
        def __init__(self, retry_after: object) -> None:
            super().__init__("binance 429")
            self.retry_after = retry_after

    assert classify(Throttled(3)).retry_after == 3.0
    assert classify(Throttled(0.25)).retry_after == 0.25
    for bad in (-1, float("nan"), float("inf"), True, "3", None):
        assert classify(Throttled(bad)) == Outcome(RL, None, "Throttled")

    class Rejected(ccxt.InsufficientFunds):  # type: ignore[misc]
        retry_after = 5.0

    assert classify(Rejected("x")).retry_after is None  # meaningless for business errors


# --------------------------------------------------------------------------
# redis and aiomcache


REDIS_EXPECTED: dict[str, tuple[OutcomeKind, OutcomeKind]] = {
    "RedisError": (PM, PM),
    "ConnectionError": (T, AMB),
    "AuthenticationError": (PM, PM),
    "AuthorizationError": (PM, PM),
    "ExternalAuthProviderError": (PM, PM),
    "NoPermissionError": (PM, PM),
    "AuthenticationWrongNumberOfArgsError": (PM, PM),
    "BusyLoadingError": (T, T),
    "MaxConnectionsError": (T, T),
    "TimeoutError": (T, AMB),
    "InvalidResponse": (T, AMB),
    "ResponseError": (PM, PM),
    "DataError": (PM, PM),
    "NoScriptError": (PM, PM),
    "OutOfMemoryError": (PM, PM),
    "ExecAbortError": (PM, PM),
    "ModuleError": (PM, PM),
    "NoSuchFieldsetError": (PM, PM),
    "ReadOnlyError": (T, T),
    "ClusterError": (T, AMB),
    "ClusterDownError": (T, T),
    "MasterDownError": (T, T),
    "TryAgainError": (T, T),
    "AskError": (T, T),
    "MovedError": (T, T),
    "ClusterCrossSlotError": (PM, PM),
    "PubSubError": (PM, PM),
    "WatchError": (BZ, BZ),
    "LockError": (BZ, BZ),
    "LockNotOwnedError": (BZ, BZ),
    "ChildDeadlockedError": (PM, PM),
    "RedisClusterException": (PM, PM),
    "SlotNotCoveredError": (T, T),
    "CrossSlotTransactionError": (PM, PM),
    "InvalidPipelineStack": (PM, PM),
    "IncorrectPolicyType": (PM, PM),
    "MasterNotFoundError": (T, T),
    "SlaveNotFoundError": (T, T),
}


def _redis_classes() -> list[type[BaseException]]:
    classes: list[type[BaseException]] = []
    for module in (redis.exceptions, redis.sentinel, redis.asyncio.sentinel):
        for value in vars(module).values():
            if (
                isinstance(value, type)
                and issubclass(value, BaseException)
                and value.__module__ == module.__name__
                and value not in classes
            ):
                classes.append(value)
    return classes


def test_every_redis_exception_is_mapped_explicitly() -> None:
    classes = _redis_classes()
    assert len(classes) >= 30
    missing = [f"{c.__module__}.{c.__name__}" for c in classes if _mod._explicit_rule(c) is None]
    assert missing == []
    for cls in classes:
        read, write = REDIS_EXPECTED[cls.__name__]
        error = cls.__new__(cls)
        assert classify(error).kind is read, cls
        assert classify(error, write=True).kind is write, cls


def test_redis_asyncio_shares_the_exception_classes() -> None:
    assert redis.asyncio.ConnectionError is redis.exceptions.ConnectionError
    assert classify(redis.asyncio.TimeoutError("t"), write=True).kind is AMB
    assert classify(redis.exceptions.ReadOnlyError("READONLY")).kind is T
    assert classify(redis.exceptions.AuthenticationError("WRONGPASS")).kind is PM


async def test_real_redis_connection_refused(unused_port: int) -> None:
    client = redis.asyncio.Redis(
        host="127.0.0.1",
        port=unused_port,
        socket_connect_timeout=5,
        retry=Retry(NoBackoff(), 0),  # fail at once: no real backoff sleeps in a unit test
    )
    try:
        with pytest.raises(redis.exceptions.ConnectionError) as info:
            await client.get("k")
    finally:
        await client.aclose()
    assert classify(info.value).kind is T


def test_every_aiomcache_exception_is_mapped_explicitly() -> None:
    classes = _walk(aiomcache.exceptions.ClientException, "aiomcache")
    assert {c.__name__ for c in classes} >= {"ClientException", "ValidationException"}
    assert [c for c in classes if _mod._explicit_rule(c) is None] == []


async def test_real_aiomcache_errors(unused_port: int) -> None:
    refused_client = aiomcache.Client("127.0.0.1", unused_port, pool_size=1)
    try:
        with pytest.raises(ConnectionRefusedError) as refused:
            await refused_client.get(b"fine")
    finally:
        await refused_client.close()
    assert classify(refused.value, write=True).kind is T  # nothing was sent

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # a server that accepts and never answers
        writer.close()

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    client = aiomcache.Client("127.0.0.1", server.sockets[0].getsockname()[1], pool_size=1)
    try:
        with pytest.raises(aiomcache.exceptions.ValidationException) as bad_key:
            await client.get(b"bad key with spaces")  # validated before anything is sent
    finally:
        await client.close()
        server.close()
        await server.wait_closed()
    assert classify(bad_key.value) == Outcome(BZ, None, "ValidationException")
    assert classify(aiomcache.exceptions.ClientException("get failed", b"SERVER_ERROR")).kind is PM


# --------------------------------------------------------------------------
# Robustness


class _HostileStr(ccxt.ExchangeError):  # type: ignore[misc]
    def __str__(self) -> str:
        raise RuntimeError("no")


class _HostileRetryAfter(ccxt.RateLimitExceeded):  # type: ignore[misc]
    @property
    def retry_after(self) -> float:
        raise RuntimeError("no")


def test_hostile_exceptions_fall_back_to_their_type() -> None:
    assert classify(_HostileStr("x")).kind is PM
    assert classify(_HostileStr("x"), write=True).kind is PM
    assert classify(_HostileRetryAfter("x")) == Outcome(RL, None, "_HostileRetryAfter")

    class BadHeaders(aiohttp.ClientResponseError):
        @property
        def headers(self) -> Any:
            raise RuntimeError("no")

        @headers.setter
        def headers(self, value: Any) -> None:
            pass

    assert classify(_response_error(429, cls=BadHeaders)) == Outcome(RL, None, "HTTP 429")


def _all_exception_classes() -> list[type[Exception]]:
    roots: list[type[Exception]] = [
        Exception,
    ]
    found: list[type[Exception]] = []
    stack: list[type[Any]] = list(roots)
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
        st.from_regex(r'[a-z]{2,10} \{"(retCode|code|ret_code)": ?"?-?\w{0,8}"?', fullmatch=True),
        st.integers(),
        st.none(),
    ),
    max_size=3,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    cls=st.sampled_from(_CLASSES),
    args=_ARGS,
    write=st.booleans(),
    exchange_id=st.one_of(st.none(), st.sampled_from(["bybit", "okx", "Bybit"]), st.text()),
)
def test_classify_never_raises_for_any_exception(
    cls: type[Exception], args: list[Any], write: bool, exchange_id: str | None
) -> None:
    try:
        error = cls(*args)
    except Exception:
        assume(False)
        return
    assume(isinstance(error, Exception) and not isinstance(error, asyncio.CancelledError))
    for classifier in (DEFAULT_CLASSIFIER, Classifier()):
        outcome = classifier.classify(error, write=write, exchange_id=exchange_id)
        assert isinstance(outcome, Outcome)
        assert outcome.kind is not K.SUCCESS
        assert outcome.retry_after is None or outcome.retry_after >= 0
        if not write:
            assert outcome.kind is not AMB


@settings(max_examples=200, deadline=None)
@given(
    cls=st.sampled_from(_walk(ccxt.BaseError, "ccxt")),
    prefix=st.sampled_from(["bybit ", "okx ", "", "binance GET https://x "]),
    body=st.text(),
    code=st.one_of(st.integers(), st.text(max_size=12)),
    write=st.booleans(),
)
def test_classify_never_raises_for_ccxt_messages(
    cls: type[ccxt.BaseError], prefix: str, body: str, code: object, write: bool
) -> None:
    message = prefix + json.dumps({"retCode": code, "code": code, "msg": body})
    outcome = classify(cls(message), write=write)
    assert isinstance(outcome, Outcome)
    assert outcome.kind is not K.SUCCESS


def test_cache_is_bounded() -> None:
    for i in range(_mod._CACHE_LIMIT + 10):
        cls = type(f"Dyn{i}", (ccxt.NetworkError,), {})
        assert classify(cls("x")).kind is T
    assert len(_mod._CACHE) <= _mod._CACHE_LIMIT


def test_exchange_not_available_with_maintenance_text_is_maintenance() -> None:
    # What ccxt's bybit raises for an HTTP 503 "under maintenance" page.
    page = ccxt.ExchangeNotAvailable(
        'bybit GET /v5/market/tickers 503 {"retMsg":"System maintenance"}'
    )
    for write in (False, True):
        outcome = classify(page, write=write)
        assert outcome.kind is OutcomeKind.MAINTENANCE
        assert outcome.reason == "ExchangeNotAvailable: maintenance"
    other = ccxt.ExchangeNotAvailable("bybit GET /v5/market/tickers 503 Service Unavailable")
    assert classify(other).kind is OutcomeKind.TRANSIENT
    assert classify(other, write=True).kind is OutcomeKind.AMBIGUOUS


async def test_write_whose_answer_is_cut_off_is_ambiguous() -> None:
    # Real ccxt against a server that acts on the request, then truncates its answer:
    # ccxt raises a plain ExchangeError from aiohttp's ClientPayloadError.
    received: list[bytes] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        data = await reader.read(65536)
        received.append(data.split(b"\r\n", 1)[0])
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
            b'Content-Length: 200\r\n\r\n{"retCode":0,"result'
        )
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    exchange = ccxt_async.bybit()
    try:
        with pytest.raises(ccxt.ExchangeError) as info:
            await exchange.fetch(
                f"http://127.0.0.1:{port}/v5/order/create",
                "POST",
                {"Content-Type": "application/json"},
                "{}",
            )
    finally:
        await exchange.close()
        server.close()
        await server.wait_closed()
    assert received == [b"POST /v5/order/create HTTP/1.1"]
    error = info.value
    assert classify(error, write=True).kind is OutcomeKind.AMBIGUOUS
    assert classify(error).kind is OutcomeKind.TRANSIENT
    assert classify(error).reason.startswith("ExchangeError (cause: ")
    # A plain ExchangeError with no transport cause stays permanent.
    assert classify(ccxt.ExchangeError("bybit something odd")).kind is OutcomeKind.PERMANENT
