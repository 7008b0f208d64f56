"""Hostile requests get the answer a real Bybit gives (retCode 10001 & co, HTTP 200), never a 500.

Regressions of the adversarial run: huge quantities and prices, deep JSON,
non-ASCII digits, 400-digit numbers, absurd candle bounds. Each request is
signed, so it reaches the business logic; each answer is strict JSON.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import ccxt.async_support as ccxt
import pytest
from conftest import ExchangeFactory, signed_request, strict_json

from virtuoso_resilience.simulator import Simulator

DEEP = "[" * 100_000 + "]" * 100_000
"""JSON nested far deeper than any parser's recursion limit."""


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client


def _order(**fields: Any) -> str:
    base = {
        "category": "linear",
        "symbol": "BTCUSDT",
        "side": "Buy",
        "orderType": "Limit",
        "qty": "0.01",
        "price": "60000",
    }
    return json.dumps({**base, **fields})


async def _bybit(session: aiohttp.ClientSession, sim: Simulator, method: str, path: str, **kw: Any):
    status, text = await signed_request(session, sim, method, path, **kw)
    return status, strict_json(text)


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (_order(qty="1e30"), 10001),
        (_order(qty="1" * 40), 10001),
        (_order(qty="1e999999"), 10001),
        (_order(qty="0." + "0" * 398 + "1"), 10001),  # 400 digits
        (_order(price="1e30"), 110003),
        (_order(price="9" * 40), 110003),
        (_order(price="1e999999"), 110003),
        (_order(price="6" + "0" * 4 + "." + "1" * 400), 10001),  # off tick, 400 decimals
        (_order(category="spot", qty="1e30"), 170135),
        (_order(category="spot", price="1e999999"), 170132),
        (_order(category="spot", orderType="Market", qty="1e999999"), 170135),
        (_order(qty="NaN"), 10001),
        (_order(qty="sNaN"), 10001),
        (_order(qty="-Infinity"), 10001),
        (_order(qty="²"), 10001),
        (_order(qty="①"), 10001),
        (_order(qty=True), 10001),
        ('{"category":"linear","symbol":"BTCUSDT","qty":NaN}', 10001),
        ('{"category":"linear","symbol":"BTCUSDT","qty":1e999999}', 10001),
        ('{"category":"linear","symbol":"BTCUSDT","price":1' + "1" * 400 + ".5}", 10001),
        ('{"category":"linear","symbol":"BTCUSDT","qty":' + DEEP + "}", 10001),
        (DEEP, 10001),
    ],
)
async def test_hostile_order_bodies_get_bybit_codes(
    sim: Simulator, session: aiohttp.ClientSession, body: str, code: int
) -> None:
    status, answer = await _bybit(session, sim, "POST", "/v5/order/create", body=body)
    assert (status, answer["retCode"]) == (200, code), answer
    assert sim.market.orders_created == 0


@pytest.mark.parametrize(
    "query",
    [
        "category=linear&symbol=BTCUSDT&interval=1&end=" + "9" * 400,
        "category=linear&symbol=BTCUSDT&interval=1&end=-" + "9" * 400,
        "category=linear&symbol=BTCUSDT&interval=1&start=" + "9" * 400,
        "category=linear&symbol=BTCUSDT&interval=1&end=-1",
        "category=linear&symbol=BTCUSDT&interval=1&end=%C2%B2",  # '²'
        "category=linear&symbol=BTCUSDT&interval=1&limit=%E2%91%A0",  # '①'
        "category=linear&symbol=BTCUSDT&interval=1&limit=" + "9" * 5000,
    ],
)
async def test_hostile_kline_bounds_are_params_errors(
    sim: Simulator, session: aiohttp.ClientSession, query: str
) -> None:
    status, answer = await _bybit(session, sim, "GET", "/v5/market/kline", query=query)
    assert (status, answer["retCode"]) == (200, 10001), answer


@pytest.mark.parametrize(
    "query",
    [
        "category=linear&cursor=" + "9" * 5000,
        "category=linear&limit=%C2%B2",
        "category=linear&cursor=-5",
    ],
)
async def test_hostile_order_queries_are_params_errors(
    sim: Simulator, session: aiohttp.ClientSession, query: str
) -> None:
    status, answer = await _bybit(session, sim, "GET", "/v5/order/realtime", query=query)
    assert (status, answer["retCode"]) == (200, 10001), answer


async def test_huge_amounts_through_ccxt_are_invalid_orders(exchange: Any) -> None:
    with pytest.raises(ccxt.BadRequest, match="too large"):
        await exchange.create_order("BTC/USDT:USDT", "limit", "buy", 1000, 60000)
    with pytest.raises(ccxt.InvalidOrder, match="out of permissible range"):
        await exchange.create_order("BTC/USDT:USDT", "limit", "buy", 0.01, 1e20)
    with pytest.raises(ccxt.InvalidOrder, match="too high"):
        await exchange.create_order("BTC/USDT", "limit", "buy", 0.01, 1e20)
    balance = await exchange.fetch_balance()
    assert balance["USDT"]["total"] == 100_000


async def test_extreme_but_valid_configuration_answers_every_read(
    session: aiohttp.ClientSession,
) -> None:
    """Prices and balances at their bounds still give finite, valid Bybit answers."""
    async with Simulator(
        seed=3, prices={"BIG": 1e15, "TINY": 1e-8}, balances={"USDT": 1e15, "BIG": 1e15}
    ) as extreme:
        extreme.market.tick(steps=100_000)  # the walk stays within the price bounds
        assert 1e-8 <= extreme.market.price("TINYUSDT") <= 1e15
        reads = [
            ("/v5/market/tickers", "category=spot"),
            ("/v5/market/tickers", "category=linear"),
            ("/v5/market/orderbook", "category=spot&symbol=BIGUSDT&limit=200"),
            ("/v5/market/orderbook", "category=linear&symbol=TINYUSDT&limit=500"),
            ("/v5/market/kline", "category=spot&symbol=BIGUSDT&interval=M&limit=1000"),
            ("/v5/market/kline", "category=linear&symbol=TINYUSDT&interval=1&limit=1000"),
            ("/v5/market/instruments-info", "category=linear"),
            ("/v5/account/wallet-balance", "accountType=UNIFIED"),
        ]
        for path, query in reads:
            status, answer = await _bybit(session, extreme, "GET", path, query=query)
            assert (status, answer["retCode"]) == (200, 0), (path, answer)
        coins = {c["coin"]: c for c in answer["result"]["list"][0]["coin"]}
        assert coins["BIG"]["walletBalance"] == "1000000000000000"
