"""One table per library: every class listed, every class's meaning, real failures."""

from __future__ import annotations

import asyncio
import importlib
import socket
import ssl

import aiohttp
import aiomcache
import aiomcache.exceptions
import ccxt
import emcache
import emcache.client_errors
import pytest
import redis.asyncio
import redis.asyncio.sentinel
import redis.exceptions
import redis.sentinel
from classify_helpers import (
    AMB,
    BZ,
    MT,
    PM,
    REJ,
    RL,
    T,
    connection_key,
    raised,
    response_error,
    walk,
)
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from virtuoso_resilience import errors as lib_errors
from virtuoso_resilience.classify import Outcome, OutcomeKind, Signal, classify
from virtuoso_resilience.errors import (
    BulkheadFullError,
    CircuitOpenError,
    ConfigurationError,
    PoolExhaustedError,
    RateLimitTimeoutError,
    ResilienceError,
    ResilienceTimeoutError,
)


def _listed(table_module: str, module_name: str) -> set[str]:
    tables = importlib.import_module(f"virtuoso_resilience.classify.{table_module}").TABLES
    return {name for name, _ in tables[module_name]}


# --------------------------------------------------------------------------
# ccxt

CCXT_EXPECTED: dict[str, tuple[OutcomeKind, OutcomeKind, Signal | None]] = {
    # name: (read, write, signal) for a message without status or code
    "BaseError": (PM, PM, None),
    "ExchangeError": (PM, PM, None),
    "AuthenticationError": (BZ, BZ, None),
    "PermissionDenied": (BZ, BZ, None),
    "AccountNotEnabled": (BZ, BZ, None),
    "AccountSuspended": (BZ, BZ, None),
    "ArgumentsRequired": (BZ, BZ, None),
    "BadRequest": (BZ, BZ, None),
    "BadSymbol": (BZ, BZ, None),
    "OperationRejected": (BZ, BZ, None),
    "NoChange": (BZ, BZ, None),
    "MarginModeAlreadySet": (BZ, BZ, None),
    "MarketClosed": (BZ, BZ, None),
    "ManualInteractionNeeded": (BZ, BZ, None),
    "RestrictedLocation": (BZ, BZ, None),
    "InsufficientFunds": (BZ, BZ, None),
    "InvalidAddress": (BZ, BZ, None),
    "AddressPending": (BZ, BZ, None),
    "InvalidOrder": (BZ, BZ, None),
    "OrderNotFound": (BZ, BZ, Signal.ORDER_NOT_FOUND),
    "OrderNotCached": (BZ, BZ, None),
    "OrderImmediatelyFillable": (BZ, BZ, None),
    "OrderNotFillable": (BZ, BZ, None),
    "DuplicateOrderId": (BZ, BZ, Signal.DUPLICATE_CLIENT_ORDER_ID),
    "ContractUnavailable": (BZ, BZ, None),
    "NotSupported": (PM, PM, None),
    "InvalidProxySettings": (PM, PM, None),
    "ExchangeClosedByUser": (PM, PM, None),
    "OperationFailed": (T, AMB, None),
    "NetworkError": (T, AMB, None),
    "DDoSProtection": (RL, RL, Signal.RATE_LIMIT),
    "RateLimitExceeded": (RL, RL, Signal.RATE_LIMIT),
    "ExchangeNotAvailable": (T, AMB, None),
    "OnMaintenance": (MT, MT, Signal.MAINTENANCE),
    "InvalidNonce": (T, T, Signal.CLOCK_SKEW),
    "ChecksumError": (T, T, None),
    "RequestTimeout": (T, AMB, None),
    "BadResponse": (T, AMB, None),
    "NullResponse": (T, AMB, None),
    "CancelPending": (T, T, Signal.CANCEL_PENDING),
    "UnsubscribeError": (BZ, BZ, None),
}


def test_every_ccxt_exception_class_is_listed() -> None:
    classes = walk(ccxt.BaseError, "ccxt")
    assert len(classes) >= 40
    listed = _listed("_ccxt", "ccxt.base.errors")
    assert sorted(c.__name__ for c in classes if c.__name__ not in listed) == []
    assert sorted({c.__name__ for c in classes} ^ set(CCXT_EXPECTED)) == []


@pytest.mark.parametrize(("name", "expected"), sorted(CCXT_EXPECTED.items()))
def test_ccxt_mapping(name: str, expected: tuple[OutcomeKind, OutcomeKind, Signal | None]) -> None:
    error = getattr(ccxt, name)("kraken something happened")
    read, write, signal = expected
    assert classify(error).kind is read
    assert classify(error, write=True).kind is write
    assert classify(error).signal is signal
    assert classify(error).reason.startswith(name)


def test_invalid_nonce_is_retryable_and_never_a_service_failure() -> None:
    outcome = classify(ccxt.InvalidNonce("bybit {}"), write=True)
    assert outcome.kind is T and outcome.signal is Signal.CLOCK_SKEW
    assert outcome.is_retryable
    assert not outcome.is_service_failure


def test_ccxt_network_error_caused_by_a_failed_connect_is_not_ambiguous() -> None:
    refused = aiohttp.ClientConnectorError(connection_key(), ConnectionRefusedError(111, "x"))
    dropped = aiohttp.ServerDisconnectedError()
    for cause, write_kind in ((refused, T), (dropped, AMB), (socket.gaierror(-2, "dns"), T)):
        error = raised(ccxt.ExchangeNotAvailable("bybit POST https://api.bybit.com/v5"), cause)
        assert classify(error).kind is T
        outcome = classify(error, write=True)
        assert outcome.kind is write_kind, cause
        if write_kind is T:
            assert type(cause).__name__ in outcome.reason
    connect_timeout = aiohttp.ConnectionTimeoutError("connect")
    error = raised(ccxt.RequestTimeout("bybit POST https://api.bybit.com/v5"), connect_timeout)
    assert classify(error, write=True).kind is T
    error = raised(ccxt.RequestTimeout("bybit POST https://api.bybit.com/v5"), TimeoutError())
    assert classify(error, write=True).kind is AMB


def test_reasons_carry_no_message_text() -> None:
    secret = "apiKey=SECRET123&signature=deadbeef"
    for cls in (ccxt.ExchangeError, ccxt.RequestTimeout, ccxt.AuthenticationError):
        error = cls(f"bybit GET https://api.bybit.com/v5/x?{secret}")
        for write in (False, True):
            assert "SECRET" not in repr(classify(error, write=write))
    error = ccxt.ExchangeNotAvailable(f"binance GET https://x/?{secret} 404 Not Found {secret}")
    assert "SECRET" not in repr(classify(error))
    error = ccxt.ExchangeError('bybit {"retCode":10016,"retMsg":"apiKey=SECRET123"}')
    assert classify(error).reason == "bybit retCode 10016"


def test_exchange_not_available_with_maintenance_text_is_maintenance() -> None:
    page = ccxt.ExchangeNotAvailable(
        "bybit GET https://x/v5/market/tickers 503 Service Unavailable "
        '{"retMsg":"System maintenance"}'
    )
    for write in (False, True):
        outcome = classify(page, write=write)
        assert outcome.kind is MT
        assert outcome.signal is Signal.MAINTENANCE
        assert outcome.reason == "ExchangeNotAvailable: maintenance"
        assert outcome.status == 503
    other = ccxt.ExchangeNotAvailable("bybit GET https://x 503 Service Unavailable <html>")
    assert classify(other).kind is T
    assert classify(other, write=True).kind is AMB


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


def test_every_aiohttp_client_error_is_listed_with_its_meaning() -> None:
    rules = dict(
        importlib.import_module("virtuoso_resilience.classify._aiohttp").TABLES[
            "aiohttp.client_exceptions"
        ]
    )
    classes = walk(aiohttp.ClientError, "aiohttp")
    assert sorted(c.__name__ for c in classes if c.__name__ not in rules) == []
    for cls in classes:
        rule = rules[cls.__name__]
        read, write = AIOHTTP_EXPECTED[cls.__name__]
        assert rule.kind is read, cls
        assert (AMB if rule.ambiguous_on_write else rule.kind) is write, cls


def test_aiohttp_connection_errors() -> None:
    refused = aiohttp.ClientConnectorError(connection_key(), ConnectionRefusedError(111, "refused"))
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
    ("status", "read", "write", "signal"),
    [
        (429, RL, RL, Signal.RATE_LIMIT),
        (418, RL, RL, Signal.IP_BAN),
        (503, T, AMB, None),
        (500, T, AMB, None),
        (502, T, AMB, None),
        (504, T, AMB, None),
        (520, T, AMB, None),
        (501, PM, PM, None),
        (408, T, T, None),
        (401, BZ, BZ, None),
        (403, BZ, BZ, None),
        (400, PM, PM, None),
        (404, PM, PM, None),
        (407, PM, PM, None),
        (422, PM, PM, None),
    ],
)
def test_aiohttp_response_errors_by_status(
    status: int, read: OutcomeKind, write: OutcomeKind, signal: Signal | None
) -> None:
    error = response_error(status)
    outcome = classify(error)
    assert (outcome.kind, outcome.reason, outcome.status, outcome.signal) == (
        read,
        f"HTTP {status}",
        status,
        signal,
    )
    assert classify(error, write=True).kind is write


def test_aiohttp_418_waits_the_ban_pause_or_its_retry_after() -> None:
    assert classify(response_error(418)).retry_after == 120.0
    assert classify(response_error(418, {"Retry-After": "300"})).retry_after == 300.0


def test_subclasses_of_client_response_error_use_the_status() -> None:
    error = response_error(502, cls=aiohttp.ContentTypeError)
    assert classify(error) == Outcome(T, None, "HTTP 502", 502)
    assert classify(response_error(200, cls=aiohttp.ContentTypeError), write=True).kind is AMB
    assert classify(response_error(302, cls=aiohttp.TooManyRedirects)).kind is PM


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


async def test_real_aiohttp_429_carries_its_retry_after() -> None:
    async def limited(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(
            b"HTTP/1.1 429 Too Many Requests\r\nRetry-After: 7\r\nContent-Length: 0\r\n\r\n"
        )
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(limited, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        async with aiohttp.ClientSession(raise_for_status=True) as session:
            with pytest.raises(aiohttp.ClientResponseError) as info:
                await session.get(f"http://127.0.0.1:{port}/")
    finally:
        server.close()
        await server.wait_closed()
    assert classify(info.value) == Outcome(RL, 7.0, "HTTP 429", 429, None, Signal.RATE_LIMIT)


# --------------------------------------------------------------------------
# Builtins and this library's errors


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


def test_every_library_error_is_listed() -> None:
    rules = importlib.import_module("virtuoso_resilience.classify._core")._BUILTIN_RULES
    classes = walk(ResilienceError, lib_errors.__name__)
    assert len(classes) >= 7
    assert [c.__name__ for c in classes if c not in rules] == []


def test_library_errors() -> None:
    opened = CircuitOpenError("exchange_api", "open", 12.5)
    assert classify(opened) == Outcome(REJ, 12.5, "CircuitOpenError")
    assert classify(opened, write=True) == Outcome(REJ, 12.5, "CircuitOpenError")
    forced = CircuitOpenError("exchange_api", "forced_open", None)
    assert classify(forced) == Outcome(REJ, None, "CircuitOpenError")
    assert classify(opened).is_retryable
    assert not classify(opened).is_service_failure

    limited = RateLimitTimeoutError("bybit", 1.0, 0.5, 2.0)
    assert classify(limited) == Outcome(RL, 2.0, "RateLimitTimeoutError")
    unknown_wait = RateLimitTimeoutError("bybit", 1.0, 0.5, None)
    assert classify(unknown_wait) == Outcome(RL, None, "RateLimitTimeoutError")

    assert classify(BulkheadFullError("orders", 10, 0, "no free slot"), write=True).kind is REJ
    timed_out = ResilienceTimeoutError("create_order", 5.0)
    assert classify(timed_out).kind is T
    assert classify(timed_out, write=True).kind is AMB
    assert classify(PoolExhaustedError("exchange_api", 50, 20, 10.0), write=True).kind is REJ
    assert classify(ConfigurationError([])).kind is PM
    assert classify(ResilienceError("x")).kind is PM


def test_a_bad_retry_after_attribute_is_ignored() -> None:
    for bad in (-1.0, float("nan"), float("inf"), True):
        opened = CircuitOpenError("exchange_api", "open", 1.0)
        opened.retry_after = bad  # type: ignore[assignment]
        assert classify(opened).retry_after is None, bad
    huge = CircuitOpenError("exchange_api", "open", 1e12)
    assert classify(huge).retry_after == 3600.0  # capped at max_retry_after


# --------------------------------------------------------------------------
# redis, aiomcache, emcache

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


def _module_classes(*modules: object) -> list[type[BaseException]]:
    classes: list[type[BaseException]] = []
    for module in modules:
        for value in vars(module).values():
            if (
                isinstance(value, type)
                and issubclass(value, BaseException)
                and value.__module__ == module.__name__  # type: ignore[attr-defined]
                and value not in classes
            ):
                classes.append(value)
    return classes


def test_every_redis_exception_is_listed_with_its_meaning() -> None:
    classes = _module_classes(redis.exceptions, redis.sentinel, redis.asyncio.sentinel)
    assert len(classes) >= 30
    listed = (
        _listed("_redis", "redis.exceptions")
        | _listed("_redis", "redis.sentinel")
        | _listed("_redis", "redis.asyncio.sentinel")
    )
    assert [c.__name__ for c in classes if c.__name__ not in listed] == []
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


def test_every_memcached_client_exception_is_listed() -> None:
    aiomcache_classes = walk(aiomcache.exceptions.ClientException, "aiomcache")
    assert {c.__name__ for c in aiomcache_classes} >= {"ClientException", "ValidationException"}
    listed = _listed("_memcached", "aiomcache.exceptions")
    assert [c for c in aiomcache_classes if c.__name__ not in listed] == []
    emcache_classes = _module_classes(emcache.client_errors)
    assert len(emcache_classes) >= 6
    listed = _listed("_memcached", "emcache.client_errors")
    assert [c for c in emcache_classes if c.__name__ not in listed] == []


def test_emcache_errors() -> None:
    errors = emcache.client_errors
    assert classify(errors.ClusterNoAvailableNodes(), write=True).kind is T
    assert classify(errors.CommandError("SERVER_ERROR")).kind is PM
    assert classify(errors.StorageCommandError("x")).kind is PM
    assert classify(errors.NotStoredStorageCommandError()).kind is BZ
    assert classify(errors.NotFoundCommandError()).kind is BZ
    assert classify(errors.AuthenticationError()).kind is PM


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
