"""Hostile requests get the answer a real Bybit gives (retCode 10001 & co, HTTP 200), never a 500.

Regressions of the adversarial run: huge quantities and prices, deep JSON,
non-ASCII digits, 400-digit numbers, absurd candle bounds. Each request is
signed, so it reaches the business logic; each answer is strict JSON.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

import ccxt.async_support as ccxt
import pytest

from virtuoso_resilience.simulator import Simulator

BybitCall = Callable[..., Awaitable[tuple[int, Any]]]
"""The ``bybit`` fixture: a signed raw request -> (HTTP status, strict JSON)."""

DEEP = "[" * 100_000 + "]" * 100_000
"""JSON nested far deeper than any parser's recursion limit."""


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
    sim: Simulator, bybit: BybitCall, body: str, code: int
) -> None:
    status, answer = await bybit("POST", "/v5/order/create", body=body)
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
async def test_hostile_kline_bounds_are_params_errors(bybit: BybitCall, query: str) -> None:
    status, answer = await bybit("GET", "/v5/market/kline", query=query)
    assert (status, answer["retCode"]) == (200, 10001), answer


@pytest.mark.parametrize(
    "query",
    [
        "category=linear&cursor=" + "9" * 5000,
        "category=linear&limit=%C2%B2",
        "category=linear&cursor=-5",
    ],
)
async def test_hostile_order_queries_are_params_errors(bybit: BybitCall, query: str) -> None:
    status, answer = await bybit("GET", "/v5/order/realtime", query=query)
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
