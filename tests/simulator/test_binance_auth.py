"""Binance signed requests and parameter checks, over raw HTTP and through ccxt.

Raw requests are signed here the way Binance documents it
(``HMAC_SHA256(secret, queryString + requestBody)``), independently of ccxt.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlencode

import aiohttp
import ccxt.async_support as ccxt
import pytest

from virtuoso_resilience.simulator import Simulator
from virtuoso_resilience.simulator._binance_auth import sign, strip_signature

KEY, SECRET = "bn-key-😀", "bn-secret-ü"


@pytest.fixture
async def bsim() -> AsyncIterator[Simulator]:
    async with Simulator(seed=7, dialect="binance", api_key=KEY, api_secret=SECRET) as simulator:
        yield simulator


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def now_ms() -> int:
    return int(time.time() * 1000)


def signed_query(params: dict[str, Any], secret: str = SECRET) -> str:
    query = urlencode({"timestamp": now_ms(), **params})
    return query + "&signature=" + sign(secret, query)


async def call(
    http: aiohttp.ClientSession,
    sim: Simulator,
    method: str,
    path: str,
    *,
    query: str = "",
    body: str | bytes | None = None,
    key: str | None = KEY,
) -> tuple[int, Any, dict[str, str]]:
    headers = {"X-MBX-APIKEY": key} if key is not None else {}
    if body is not None:
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    url = sim.base_url + path + ("?" + query if query else "")
    async with http.request(method, url, data=body, headers=headers) as response:
        return response.status, await response.json(), dict(response.headers)


async def test_a_correctly_signed_request_in_the_query_or_the_body(
    http: aiohttp.ClientSession, bsim: Simulator
) -> None:
    status, body, headers = await call(http, bsim, "GET", "/api/v3/account", query=signed_query({}))
    assert status == 200
    assert {b["asset"] for b in body["balances"]} >= {"USDT", "BTC"}
    assert headers["X-MBX-USED-WEIGHT-1M"] == "20"
    order = {
        "symbol": "BTCUSDT",
        "side": "BUY",
        "type": "LIMIT",
        "timeInForce": "GTC",
        "quantity": "0.01",
        "price": "50000",
        "newClientOrderId": "raw-1",
    }
    status, body, headers = await call(
        http, bsim, "POST", "/api/v3/order", body=signed_query(order)
    )
    assert status == 200, body
    assert (body["clientOrderId"], body["status"], body["origQty"]) == (
        "raw-1",
        "NEW",
        "0.01000000",
    )
    assert body["fills"] == []
    # totalParams = query string + body: part of the parameters in each
    query = urlencode({"symbol": "BTCUSDT", "origClientOrderId": "raw-1"})
    rest = urlencode({"timestamp": now_ms()})
    signature = sign(SECRET, query + rest)
    status, body, _ = await call(
        http, bsim, "DELETE", "/api/v3/order", query=query, body=rest + "&signature=" + signature
    )
    assert status == 200, body
    assert (body["origClientOrderId"], body["status"]) == ("raw-1", "CANCELED")


@pytest.mark.parametrize(
    ("response_type", "keys"),
    [("ACK", {"symbol", "orderId", "orderListId", "clientOrderId", "transactTime"})],
)
async def test_ack_answers_carry_only_the_ids(
    http: aiohttp.ClientSession, bsim: Simulator, response_type: str, keys: set[str]
) -> None:
    order = {
        "symbol": "BTCUSDT",
        "side": "SELL",
        "type": "MARKET",
        "quantity": "0.01",
        "newOrderRespType": response_type,
    }
    status, body, headers = await call(
        http, bsim, "POST", "/api/v3/order", body=signed_query(order)
    )
    assert status == 200
    assert set(body) == keys
    assert headers["X-MBX-ORDER-COUNT-10S"] == "1"


def test_strip_signature() -> None:
    assert strip_signature("a=1&signature=ab&b=2") == ("a=1&b=2", ["ab"])
    assert strip_signature("a=1") == ("a=1", [])
    assert strip_signature("xsignature=1&signature=") == ("xsignature=1", [""])


@pytest.mark.parametrize(
    ("case", "status", "code"),
    [
        ("no key", 401, -2014),
        ("unknown key", 401, -2015),
        ("wrong secret", 400, -1022),
        ("tampered", 400, -1022),
        ("non-ascii signature", 400, -1022),
        ("no signature", 400, -1102),
        ("two signatures", 400, -1101),
        ("no timestamp", 400, -1102),
        ("timestamp not a number", 400, -1102),
        ("timestamp non-ascii digits", 400, -1102),
        ("old timestamp", 400, -1021),
        ("future timestamp", 400, -1021),
        ("recvWindow too large", 400, -1131),
        ("recvWindow negative", 400, -1102),
    ],
)
async def test_authentication_failures(
    http: aiohttp.ClientSession, bsim: Simulator, case: str, status: int, code: int
) -> None:
    key: str | None = KEY
    query = signed_query({})
    if case == "no key":
        key = None
    elif case == "unknown key":
        key = "someone-else"
    elif case == "wrong secret":
        query = signed_query({}, secret="guess")
    elif case == "tampered":
        query = "recvWindow=5000&" + query  # a parameter added after signing
    elif case == "non-ascii signature":
        query = query.rsplit("=", 1)[0] + "=%C3%A9" + "a" * 63
    elif case == "no signature":
        query = urlencode({"timestamp": now_ms()})
    elif case == "two signatures":
        query = query + "&signature=abc"
    elif case == "no timestamp":
        query = "recvWindow=5000&signature=" + sign(SECRET, "recvWindow=5000")
    elif case == "timestamp not a number":
        raw = "timestamp=1e12"
        query = raw + "&signature=" + sign(SECRET, raw)
    elif case == "timestamp non-ascii digits":
        raw = "timestamp=" + "%D9%A3" * 13  # Arabic-Indic three
        query = raw + "&signature=" + sign(SECRET, raw)
    elif case == "old timestamp":
        raw = urlencode({"timestamp": now_ms() - 6000})
        query = raw + "&signature=" + sign(SECRET, raw)
    elif case == "future timestamp":
        raw = urlencode({"timestamp": now_ms() + 5000})
        query = raw + "&signature=" + sign(SECRET, raw)
    elif case == "recvWindow too large":
        raw = urlencode({"timestamp": now_ms(), "recvWindow": 60001})
        query = raw + "&signature=" + sign(SECRET, raw)
    elif case == "recvWindow negative":
        raw = urlencode({"timestamp": now_ms(), "recvWindow": -1})
        query = raw + "&signature=" + sign(SECRET, raw)
    got_status, body, headers = await call(
        http, bsim, "GET", "/api/v3/account", query=query, key=key
    )
    assert (got_status, body["code"]) == (status, code), body
    assert "X-MBX-USED-WEIGHT-1M" in headers
    for secret in (KEY, SECRET, query.rsplit("signature=", 1)[-1]):
        assert secret not in body["msg"]


_ORDER = {
    "symbol": "BTCUSDT",
    "side": "BUY",
    "type": "LIMIT",
    "timeInForce": "GTC",
    "quantity": "0.01",
    "price": "50000",
}


@pytest.mark.parametrize(
    ("change", "code", "needle"),
    [
        ({"symbol": None}, -1102, "'symbol'"),
        ({"symbol": "DOGEUSDT"}, -1121, "Invalid symbol."),
        ({"symbol": "btcusdt"}, -1100, "'symbol'"),
        ({"side": "HOLD"}, -1117, "Invalid side."),
        ({"side": None}, -1102, "'side'"),
        ({"type": "ICEBERG"}, -1116, "Invalid orderType."),
        ({"type": "STOP_LOSS_LIMIT"}, -1014, "Unsupported order combination."),
        ({"timeInForce": None}, -1102, "'timeInForce'"),
        ({"timeInForce": "GTX"}, -1115, "Invalid timeInForce."),
        ({"type": "MARKET", "price": None}, -1106, "'timeInForce'"),
        ({"type": "MARKET", "timeInForce": None}, -1106, "'price'"),
        (
            {"type": "MARKET", "timeInForce": None, "price": None, "quantity": None},
            -1102,
            "'quantity' or 'quoteOrderQty'",
        ),
        (
            {"type": "MARKET", "timeInForce": None, "price": None, "quoteOrderQty": "10"},
            -1106,
            "'quoteOrderQty'",
        ),
        ({"type": "LIMIT_MAKER", "timeInForce": None, "price": None}, -1102, "'price'"),
        ({"quantity": None}, -1102, "'quantity'"),
        ({"quantity": "NaN"}, -1100, "'quantity'"),
        ({"quantity": "inf"}, -1100, "'quantity'"),
        ({"quantity": "-1"}, -1100, "'quantity'"),
        ({"quantity": "1e-2"}, -1100, "'quantity'"),
        ({"quantity": "²"}, -1100, "'quantity'"),
        ({"quantity": "①"}, -1100, "'quantity'"),
        ({"quantity": "٣"}, -1100, "'quantity'"),
        ({"quantity": "1" * 21}, -1100, "'quantity'"),
        ({"quantity": "0"}, -1013, "Invalid quantity."),
        ({"price": "0"}, -1013, "Invalid price."),
        ({"price": "50000.001"}, -1013, "PRICE_FILTER"),
        ({"quantity": "0.0000001"}, -1013, "LOT_SIZE"),
        ({"quantity": "10000"}, -1013, "LOT_SIZE"),
        ({"quantity": "0.000001", "price": "100"}, -1013, "NOTIONAL"),
        ({"newClientOrderId": "has space"}, -1100, "'newClientOrderId'"),
        ({"newClientOrderId": "x" * 37}, -1100, "'newClientOrderId'"),
        ({"newClientOrderId": "é"}, -1100, "'newClientOrderId'"),
        ({"newClientOrderId": "trailing-newline\n"}, -1100, "'newClientOrderId'"),
        ({"quantity": "1\n"}, -1100, "'quantity'"),
        ({"newOrderRespType": "ALL"}, -1130, "'newOrderRespType'"),
        ({"icebergQty": "1"}, -1104, "Not all sent parameters were read"),
        ({"quantity": "5", "price": "60000"}, -2010, "insufficient balance"),
    ],
)
async def test_order_parameters_are_checked_as_binance_does(
    http: aiohttp.ClientSession, bsim: Simulator, change: dict[str, Any], code: int, needle: str
) -> None:
    params = {**_ORDER, **change}
    params = {k: v for k, v in params.items() if v is not None}
    status, body, _ = await call(http, bsim, "POST", "/api/v3/order", body=signed_query(params))
    assert status == 400
    assert body["code"] == code
    assert needle in body["msg"]
    assert bsim.stats.orders_created == 0


async def test_malformed_requests_are_binance_errors(
    http: aiohttp.ClientSession, bsim: Simulator
) -> None:
    # a repeated parameter
    status, body, _ = await call(
        http, bsim, "GET", "/api/v3/depth", query="symbol=BTCUSDT&symbol=ETHUSDT", key=None
    )
    assert (status, body["code"]) == (400, -1101)
    # a body that is not UTF-8
    status, body, _ = await call(http, bsim, "POST", "/api/v3/order", body=b"symbol=\xff\xfe")
    assert (status, body["code"]) == (400, -1100)
    # percent-escapes that are not UTF-8
    status, body, _ = await call(http, bsim, "GET", "/api/v3/depth", query="symbol=%FF", key=None)
    assert (status, body["code"]) == (400, -1100)
    # orderId beyond a signed 64-bit integer
    query = signed_query({"symbol": "BTCUSDT", "orderId": str(2**63)})
    status, body, _ = await call(http, bsim, "GET", "/api/v3/order", query=query)
    assert (status, body["code"]) == (400, -1100)
    query = signed_query({"symbol": "BTCUSDT"})
    status, body, _ = await call(http, bsim, "GET", "/api/v3/order", query=query)
    assert (status, body["code"]) == (400, -1102)
    assert "'origClientOrderId' or 'orderId'" in body["msg"]
    # orderId and origClientOrderId that name different orders
    order = {**_ORDER, "newClientOrderId": "pair-1"}
    _, created, _ = await call(http, bsim, "POST", "/api/v3/order", body=signed_query(order))
    query = signed_query(
        {"symbol": "BTCUSDT", "orderId": created["orderId"], "origClientOrderId": "other"}
    )
    status, body, _ = await call(http, bsim, "GET", "/api/v3/order", query=query)
    assert (status, body["code"]) == (400, -2013)
    # deep nesting in a JSON parameter (query and body), and a body beyond aiohttp's 1 MiB
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    for query, data in [("symbols=" + "%5B" * 2000, None), ("", "symbols=" + "[" * 100_000)]:
        url = bsim.base_url + "/api/v3/ticker/24hr" + ("?" + query if query else "")
        async with http.get(url, data=data, headers=form) as response:
            assert response.status == 400
            assert (await response.json())["code"] == -1100
    async with http.post(
        bsim.base_url + "/api/v3/order", data=b"a=" + b"x" * (2 << 20), headers=form
    ) as response:
        assert response.status == 400
        assert (await response.json())["code"] == -1101
    # unknown interval, limit out of range, bad symbols list, both symbol and symbols
    for path, query, code in [
        ("/api/v3/klines", "symbol=BTCUSDT&interval=7m", -1120),
        ("/api/v3/klines", "symbol=BTCUSDT&interval=1m&limit=1001", -1100),
        ("/api/v3/klines", "symbol=BTCUSDT&interval=1m&startTime=5&endTime=4", -1023),
        ("/api/v3/depth", "symbol=BTCUSDT&limit=0", -1100),
        ("/api/v3/ticker/24hr", "symbols=BTCUSDT", -1100),
        ("/api/v3/ticker/24hr", "symbols=%5B%5D", -1100),
        ("/api/v3/ticker/24hr", "symbol=BTCUSDT&symbols=%5B%22BTCUSDT%22%5D", -1128),
        ("/api/v3/ticker/24hr", "type=HUGE", -1130),
        ("/api/v3/ticker/price", "symbol=NOPE", -1121),
        ("/api/v3/exchangeInfo", "symbolStatus=GONE", -1130),
    ]:
        status, body, _ = await call(http, bsim, "GET", path, query=query, key=None)
        assert (status, body["code"]) == (400, code), (path, query, body)


async def test_unknown_paths_and_methods_are_404(
    http: aiohttp.ClientSession, bsim: Simulator
) -> None:
    for method, path in [
        ("GET", "/api/v3/nowhere"),
        ("PUT", "/api/v3/order"),
        ("GET", "/v5/market/time"),
    ]:
        async with http.request(method, bsim.base_url + path) as response:
            assert response.status == 404
            assert "X-MBX-USED-WEIGHT-1M" in response.headers
    assert bsim.request_count("/api/v3/nowhere") == 1


async def test_ccxt_authentication_errors_and_invalid_nonce(bsim: Simulator) -> None:
    config = {**bsim.ccxt_config(), "enableRateLimit": False}
    wrong = ccxt.binance({**config, "secret": "not-it"})
    unknown = ccxt.binance({**config, "apiKey": "nobody"})
    late = ccxt.binance(config)
    try:
        for exchange in (wrong, unknown, late):
            exchange.timeout_on_exit = 0
            await exchange.load_markets()
        with pytest.raises(ccxt.AuthenticationError, match="-1022"):
            await wrong.fetch_balance()
        with pytest.raises(ccxt.AuthenticationError, match="-2015"):
            await unknown.fetch_balance()
        late.options["timeDifference"] = 20_000  # its clock is 20 s behind
        with pytest.raises(ccxt.InvalidNonce, match="-1021"):
            await late.fetch_balance()
        late.options["timeDifference"] = -5_000  # 5 s ahead
        with pytest.raises(ccxt.InvalidNonce, match="ahead"):
            await late.fetch_balance()
        late.options["timeDifference"] = 0
        # -1131 is BadRequest only in ccxt's table for Binance's own spot host
        with pytest.raises(ccxt.ExchangeError, match="-1131") as caught:
            await late.fetch_balance({"recvWindow": 60001})
        assert not isinstance(caught.value, ccxt.BadRequest)
        assert (await late.fetch_balance())["USDT"]["total"] == 100000.0
    finally:
        for exchange in (wrong, unknown, late):
            await exchange.close()
