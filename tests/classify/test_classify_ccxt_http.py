"""Real ccxt clients against a local HTTP server: what each answer means.

The errors are raised by ccxt's own ``fetch`` / ``handle_errors`` /
``handle_http_status_code`` (bybit, binance, okx), not built by hand; the
headers are ccxt's own ``last_response_headers``.
"""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator, Callable
from typing import Any

import ccxt
import ccxt.async_support as ccxt_async
import pytest
from aiohttp import web
from classify_helpers import AMB, BZ, PM, RL, T

from virtuoso_resilience import FakeClock, RetryPolicy
from virtuoso_resilience.classify import (
    Outcome,
    OutcomeKind,
    Signal,
    attach_response,
    classify,
)

Answer = tuple[int, str, dict[str, str]]  # status, body, headers


@pytest.fixture
async def server(unused_port: int) -> AsyncIterator[tuple[str, Callable[[Answer], None]]]:
    """A server answering every request with the answer set last."""
    answer: list[Answer] = [(200, "{}", {})]

    async def handler(request: web.Request) -> web.Response:
        status, body, headers = answer[0]
        content_type = "application/json" if body.startswith("{") else "text/html"
        return web.Response(status=status, text=body, content_type=content_type, headers=headers)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", unused_port).start()

    def set_answer(new: Answer) -> None:
        answer[0] = new

    try:
        yield f"http://127.0.0.1:{unused_port}", set_answer
    finally:
        await runner.cleanup()


@pytest.fixture
async def clients() -> AsyncIterator[dict[str, Any]]:
    made = {
        name: getattr(ccxt_async, name)({"timeout": 10_000})
        for name in ("bybit", "binance", "okx", "binanceusdm")
    }
    for exchange in made.values():
        exchange.timeout_on_exit = 0
    try:
        yield made
    finally:
        for exchange in made.values():
            await exchange.close()


async def _error(exchange: Any, url: str, method: str = "POST") -> ccxt.BaseError:
    """The exception real ccxt raises, with ccxt's own response headers attached."""
    with pytest.raises(ccxt.BaseError) as info:
        await exchange.fetch(url, method, {"Content-Type": "application/json"}, "{}")
    return attach_response(info.value, headers=exchange.last_response_headers)


PAGE = "<html><body><h1>{status}</h1></body></html>"


# ------------------------------------------------- defect 10: 4xx are permanent


@pytest.mark.parametrize("status", [400, 404, 405, 409, 410, 451])
@pytest.mark.parametrize("venue", ["bybit", "binance", "okx"])
async def test_http_4xx_mapped_to_exchange_not_available_is_permanent(
    server: tuple[str, Callable[[Answer], None]],
    clients: dict[str, Any],
    venue: str,
    status: int,
) -> None:
    url, answer = server
    answer((status, PAGE.format(status=status), {}))
    error = await _error(clients[venue], f"{url}/api/v3/order")
    assert type(error) is ccxt.ExchangeNotAvailable  # ccxt's httpExceptions
    assert f" {status} " in str(error)
    for write in (False, True):
        outcome = classify(error, write=write)
        assert outcome.kind is PM, (venue, status, write)
        assert outcome.status == status
        assert outcome.reason == f"ExchangeNotAvailable: HTTP {status}"
        assert not outcome.is_retryable
    # A refused order is no reason to reconcile; a wrong URL is no outage... but
    # it is a permanent failure a breaker may count (a broken deployment).
    assert classify(error, write=True).kind is not AMB


async def test_http_403_without_ban_text_is_permanent(
    server: tuple[str, Callable[[Answer], None]], clients: dict[str, Any]
) -> None:
    url, answer = server
    answer((403, "<html>Access denied: not allowed from your region</html>", {}))
    error = await _error(clients["binance"], f"{url}/api/v3/order")
    assert type(error) is ccxt.ExchangeNotAvailable
    assert classify(error, write=True) == Outcome(PM, None, "ExchangeNotAvailable: HTTP 403", 403)


async def test_http_403_with_ban_text_is_an_ip_ban(
    server: tuple[str, Callable[[Answer], None]], clients: dict[str, Any]
) -> None:
    url, answer = server
    answer((403, "<html>Your IP has been banned for excessive requests</html>", {}))
    error = await _error(clients["binance"], f"{url}/api/v3/order")
    outcome = classify(error, write=True)
    assert (outcome.kind, outcome.signal, outcome.retry_after) == (RL, Signal.IP_BAN, 120.0)


async def test_bybit_403_is_an_ip_ban(
    server: tuple[str, Callable[[Answer], None]], clients: dict[str, Any]
) -> None:
    """Bybit answers an IP ban with HTTP 403; ccxt's bybit maps it to RateLimitExceeded."""
    url, answer = server
    answer((403, PAGE.format(status=403), {}))
    error = await _error(clients["bybit"], f"{url}/v5/order/create")
    assert type(error) is ccxt.RateLimitExceeded
    outcome = classify(error, write=True)
    assert outcome == Outcome(
        RL, 120.0, "RateLimitExceeded: HTTP 403 (ip banned)", 403, None, Signal.IP_BAN
    )


@pytest.mark.parametrize(
    ("venue", "status", "cls", "read", "write"),
    [
        ("bybit", 502, ccxt.ExchangeNotAvailable, T, AMB),
        ("binance", 500, ccxt.ExchangeNotAvailable, T, AMB),
        ("okx", 503, ccxt.ExchangeNotAvailable, T, AMB),
        ("bybit", 504, ccxt.RequestTimeout, T, AMB),
        ("binance", 501, ccxt.ExchangeNotAvailable, PM, PM),
        ("bybit", 401, ccxt.AuthenticationError, BZ, BZ),
    ],
)
async def test_other_statuses_keep_their_meaning(
    server: tuple[str, Callable[[Answer], None]],
    clients: dict[str, Any],
    venue: str,
    status: int,
    cls: type[ccxt.BaseError],
    read: OutcomeKind,
    write: OutcomeKind,
) -> None:
    url, answer = server
    answer((status, PAGE.format(status=status), {}))
    error = await _error(clients[venue], f"{url}/x")
    assert type(error) is cls
    assert classify(error).kind is read
    assert classify(error, write=True).kind is write


# ------------------------------------------------- defect 12: 418 is a ban


@pytest.mark.parametrize("venue", ["bybit", "binance"])
async def test_http_418_is_an_ip_ban_with_its_retry_after(
    server: tuple[str, Callable[[Answer], None]], clients: dict[str, Any], venue: str
) -> None:
    url, answer = server
    answer((418, "<html>I'm a teapot</html>", {"Retry-After": "300"}))
    error = await _error(clients[venue], f"{url}/api/v3/order")
    assert type(error) is ccxt.DDoSProtection
    outcome = classify(error, write=True)
    assert (outcome.kind, outcome.signal, outcome.status, outcome.retry_after) == (
        RL,
        Signal.IP_BAN,
        418,
        300.0,
    )
    assert not outcome.is_service_failure


async def test_http_418_without_retry_after_waits_the_ban_pause(
    server: tuple[str, Callable[[Answer], None]], clients: dict[str, Any]
) -> None:
    url, answer = server
    answer((418, "<html>I'm a teapot</html>", {}))
    error = await _error(clients["binance"], f"{url}/api/v3/order")
    assert classify(error).retry_after == 120.0


async def test_a_ban_is_never_retried_before_its_retry_after(
    server: tuple[str, Callable[[Answer], None]], clients: dict[str, Any]
) -> None:
    url, answer = server
    exchange = clients["binance"]
    answer((418, '{"code":-1003,"msg":"Way too much request weight used."}', {"Retry-After": "90"}))
    calls: list[float] = []
    clock = FakeClock(autojump=True)

    async def order() -> Any:
        calls.append(clock.now())
        try:
            return await exchange.fetch(f"{url}/api/v3/order", "POST", {}, "{}")
        except ccxt.BaseError as error:
            attach_response(error, headers=exchange.last_response_headers)
            if len(calls) == 1:
                answer((200, '{"orderId": 1}', {}))
            raise

    # A retry policy whose longest wait is shorter than the ban gives up at once...
    short = RetryPolicy(max_attempts=5, base_delay=0.001, max_delay=30.0, clock=clock)
    with pytest.raises(ccxt.DDoSProtection):
        await short.call_async(order)
    assert calls == [0.0]
    assert short.metrics.gave_up_on_retry_after == 1
    # ...and one that may wait that long waits the whole ban, never less.
    calls.clear()
    answer((418, '{"code":-1003,"msg":"Way too much request weight used."}', {"Retry-After": "90"}))
    patient = RetryPolicy(max_attempts=5, base_delay=0.001, max_delay=300.0, clock=clock)
    assert await patient.call_async(order) == {"orderId": 1}
    assert [round(t - calls[0], 6) for t in calls] == [0.0, 90.0]


# ------------------------------------------------- codes through real clients


@pytest.mark.parametrize(
    ("venue", "status", "body", "cls", "kind", "signal", "code"),
    [
        ("binance", 400, {"code": -1021, "msg": "Timestamp outside of the recvWindow."},
         ccxt.InvalidNonce, T, Signal.CLOCK_SKEW, "-1021"),
        ("binance", 400, {"code": -2010, "msg": "Duplicate order sent."},
         ccxt.InvalidOrder, BZ, Signal.DUPLICATE_CLIENT_ORDER_ID, "-2010"),
        # ccxt maps -4116 to InvalidOrder only for fapi URLs; the code decides anyway.
        ("binanceusdm", 400, {"code": -4116, "msg": "ClientOrderId is duplicated."},
         ccxt.ExchangeError, BZ, Signal.DUPLICATE_CLIENT_ORDER_ID, "-4116"),
        ("binance", 400, {"code": -2013, "msg": "Order does not exist."},
         ccxt.OrderNotFound, BZ, Signal.ORDER_NOT_FOUND, "-2013"),
        ("binance", 429, {"code": -1003, "msg": "Too much request weight used."},
         ccxt.DDoSProtection, RL, Signal.RATE_LIMIT, "-1003"),
        ("bybit", 200, {"retCode": 10002, "retMsg": "check your server timestamp"},
         ccxt.InvalidNonce, T, Signal.CLOCK_SKEW, "10002"),
        ("bybit", 200, {"retCode": 110072, "retMsg": "OrderLinkedID is duplicate"},
         ccxt.InvalidOrder, BZ, Signal.DUPLICATE_CLIENT_ORDER_ID, "110072"),
        ("bybit", 200, {"retCode": 10006, "retMsg": "Too many visits!"},
         ccxt.RateLimitExceeded, RL, Signal.RATE_LIMIT, "10006"),
        ("okx", 200, {"code": "1", "data": [{"sCode": "51016", "sMsg": "dup"}], "msg": ""},
         ccxt.InvalidOrder, BZ, Signal.DUPLICATE_CLIENT_ORDER_ID, "51016"),
        ("okx", 200, {"code": "50011", "data": [], "msg": "Too Many Requests"},
         ccxt.RateLimitExceeded, RL, Signal.RATE_LIMIT, "50011"),
        ("okx", 200, {"code": "50102", "data": [], "msg": "Timestamp request expired"},
         ccxt.InvalidNonce, T, Signal.CLOCK_SKEW, "50102"),
    ],
)  # fmt: skip
async def test_exchange_codes_through_real_clients(
    server: tuple[str, Callable[[Answer], None]],
    clients: dict[str, Any],
    venue: str,
    status: int,
    body: dict[str, Any],
    cls: type[ccxt.BaseError],
    kind: OutcomeKind,
    signal: Signal,
    code: str,
) -> None:
    url, answer = server
    answer((status, json.dumps(body), {}))
    error = await _error(clients[venue], f"{url}/api/v3/order")
    assert type(error) is cls
    outcome = classify(error, write=True)
    assert (outcome.kind, outcome.signal, outcome.code) == (kind, signal, code)


async def test_binance_429_passes_its_retry_after_on(
    server: tuple[str, Callable[[Answer], None]], clients: dict[str, Any]
) -> None:
    url, answer = server
    body = '{"code":-1003,"msg":"Too much request weight used."}'
    answer((429, body, {"Retry-After": "17", "X-MBX-USED-WEIGHT-1M": "6001"}))
    error = await _error(clients["binance"], f"{url}/api/v3/ticker")
    assert classify(error) == Outcome(
        RL, 17.0, "binance code -1003", 429, "-1003", Signal.RATE_LIMIT
    )


async def test_okx_429_is_a_rate_limit_not_an_outage(
    server: tuple[str, Callable[[Answer], None]], clients: dict[str, Any]
) -> None:
    url, answer = server
    answer((429, PAGE.format(status=429), {"Retry-After": "2"}))
    error = await _error(clients["okx"], f"{url}/api/v5/trade/order")
    assert type(error) is ccxt.ExchangeNotAvailable  # ccxt's okx httpExceptions
    outcome = classify(error, write=True)
    assert (outcome.kind, outcome.signal, outcome.retry_after) == (RL, Signal.RATE_LIMIT, 2.0)


async def test_refused_connection_through_ccxt_is_not_ambiguous(
    clients: dict[str, Any], unused_port: int
) -> None:
    exchange = clients["bybit"]
    with pytest.raises(ccxt.ExchangeNotAvailable) as info:
        await exchange.fetch(f"http://127.0.0.1:{unused_port}/v5/order/create", "POST", {}, "{}")
    assert classify(info.value).kind is T
    outcome = classify(info.value, write=True)
    assert outcome.kind is T
    assert "ClientConnectorError" in outcome.reason


async def test_write_whose_answer_is_cut_off_is_ambiguous(clients: dict[str, Any]) -> None:
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
    try:
        with pytest.raises(ccxt.ExchangeError) as info:
            await clients["bybit"].fetch(
                f"http://127.0.0.1:{port}/v5/order/create",
                "POST",
                {"Content-Type": "application/json"},
                "{}",
            )
    finally:
        server.close()
        await server.wait_closed()
    assert received == [b"POST /v5/order/create HTTP/1.1"]
    assert classify(info.value, write=True).kind is AMB
    assert classify(info.value).kind is T
    assert classify(info.value).reason.startswith("ExchangeError (cause: ")
    assert classify(ccxt.ExchangeError("bybit something odd")).kind is PM


async def test_stale_headers_of_a_previous_answer_are_ignored_after_a_transport_failure(
    server: tuple[str, Callable[[Answer], None]], clients: dict[str, Any]
) -> None:
    """ccxt keeps the last answer's headers when the next request gets no answer at all."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        dead_port = probe.getsockname()[1]
    url, answer = server
    exchange = clients["bybit"]
    answer((429, PAGE.format(status=429), {"Retry-After": "30"}))
    limited = await _error(exchange, f"{url}/v5/market/tickers")
    assert classify(limited).retry_after == 30.0
    dead = f"http://127.0.0.1:{dead_port}/v5/market/tickers"
    with pytest.raises(ccxt.ExchangeNotAvailable) as info:
        await exchange.fetch(dead, "GET", {}, None)
    assert exchange.last_response_headers.get("Retry-After") == "30"  # stale
    attach_response(info.value, headers=exchange.last_response_headers, status=429)
    outcome = classify(info.value)
    assert (outcome.kind, outcome.retry_after, outcome.status) == (T, None, None)
