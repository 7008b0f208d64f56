"""Margin of resting linear orders, as Bybit reserves it, through the real ccxt bybit client.

Regression: every resting sell of at most the position's size was taken for a
closing order, so 20 resting 15 BTC sells against a 15 BTC long were all
accepted with no margin, and once the price crossed them the account showed
-1.8 M available. Closing orders beyond the position need margin like
opening ones, reduce-only orders must fit in the position, and resting
orders never drive the available balance below zero.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import ccxt.async_support as ccxt
import pytest

from virtuoso_resilience.simulator import Simulator

PERP = "BTC/USDT:USDT"


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    """300 000 USDT, BTC at 65 000, leverage 10, prices moved only by the test, no budgets."""
    async with Simulator(
        seed=1, balances={"USDT": 300_000.0}, auto_tick=False, rate_limits=False
    ) as simulator:
        yield simulator


def _available(balance: dict[str, Any]) -> Decimal:
    return Decimal(balance["info"]["result"]["list"][0]["totalAvailableBalance"])


async def _long_15(exchange: Any, sim: Simulator) -> None:
    await exchange.create_order(PERP, "market", "buy", 15)
    size, _entry = sim.market.positions()["BTCUSDT"]
    assert size == 15


async def test_closing_orders_beyond_the_position_need_margin(
    sim: Simulator, exchange: Any
) -> None:
    await _long_15(exchange, sim)  # position margin ~97 500 of 300 000
    accepted, refused = 0, 0
    for i in range(20):
        try:
            await exchange.create_order(PERP, "limit", "sell", 15, 70_000 + i * 100)
            accepted += 1
        except ccxt.InsufficientFunds:
            refused += 1
    # the first closes the long (no margin); each further one opens 15 BTC short
    # (~105 000 margin): one more fits in what is left
    assert (accepted, refused) == (2, 18)
    balance = await exchange.fetch_balance()
    assert _available(balance) >= 0

    sim.market.set_price("BTCUSDT", 80_000)  # crosses both resting sells
    size, entry = sim.market.positions()["BTCUSDT"]
    assert size == -15 and entry == Decimal("70100")
    balance = await exchange.fetch_balance()
    assert _available(balance) >= 0
    assert balance["USDT"]["total"] > 0


async def test_reduce_only_orders_must_fit_in_the_position(sim: Simulator, exchange: Any) -> None:
    await _long_15(exchange, sim)
    params = {"reduceOnly": True}
    await exchange.create_order(PERP, "limit", "sell", 10, 70_000, params)
    with pytest.raises(ccxt.InvalidOrder, match="Reduce-only"):
        await exchange.create_order(PERP, "limit", "sell", 10, 71_000, params)
    await exchange.create_order(PERP, "limit", "sell", 5, 71_000, params)
    with pytest.raises(ccxt.InvalidOrder, match="Reduce-only"):
        await exchange.create_order(PERP, "limit", "buy", 1, 60_000, params)
    assert len(await exchange.fetch_open_orders(PERP)) == 2
    balance = await exchange.fetch_balance()
    assert (
        Decimal(balance["info"]["result"]["list"][0]["totalInitialMargin"])
        == Decimal(sim.market.snapshot()["positions"]["BTCUSDT"]["entry"]) * 15 / 10
    )  # reduce-only orders hold no margin


async def test_closing_the_position_cancels_the_reduce_only_orders_it_no_longer_covers(
    sim: Simulator, exchange: Any
) -> None:
    await _long_15(exchange, sim)
    take_profit = await exchange.create_order(
        PERP, "limit", "sell", 15, 70_000, {"reduceOnly": True}
    )
    await exchange.create_order(PERP, "market", "sell", 15, None, {"reduceOnly": True})
    assert "BTCUSDT" not in sim.market.positions()
    order = await exchange.fetch_order(take_profit["id"], PERP, {"acknowledged": True})
    assert order["status"] == "canceled"
    assert order["info"]["cancelType"] == "CancelByReduceOnly"
    sim.market.set_price("BTCUSDT", 75_000)  # nothing left to fill: no short appears
    assert "BTCUSDT" not in sim.market.positions()
    assert _available(await exchange.fetch_balance()) >= 0


async def test_fills_in_any_order_keep_the_available_balance_non_negative(
    sim: Simulator, exchange: Any
) -> None:
    """The excess beyond the position is charged at the highest prices: no fill raises it."""
    await _long_15(exchange, sim)
    prices = [90_000, 70_000, 80_000]
    placed = 0
    for price in prices:
        try:
            await exchange.create_order(PERP, "limit", "sell", 15, price)
            placed += 1
        except ccxt.InsufficientFunds:
            break
    assert placed == 2  # the 90 000 and 70 000 sells: one closes, one opens (charged at 90 000)
    for price in (70_000, 95_000):  # the cheaper one fills first, then the other
        sim.market.set_price("BTCUSDT", price)
        assert _available(await exchange.fetch_balance()) >= 0
    size, _entry = sim.market.positions()["BTCUSDT"]
    assert size == -15


async def test_opening_orders_on_both_sides_are_each_reserved(
    sim: Simulator, exchange: Any
) -> None:
    await exchange.create_order(PERP, "limit", "buy", 20, 60_000)  # 120 000 margin
    await exchange.create_order(PERP, "limit", "sell", 20, 70_000)  # 140 000 margin
    with pytest.raises(ccxt.InsufficientFunds):
        await exchange.create_order(PERP, "limit", "sell", 10, 71_000)  # 71 000 > 40 000 left
    assert _available(await exchange.fetch_balance()) == Decimal(40_000)
    sim.market.set_price("BTCUSDT", 59_000)  # the buy fills: its margin becomes the position's
    assert _available(await exchange.fetch_balance()) >= 0
    sim.market.set_price("BTCUSDT", 71_000)  # the sell closes the long, realising +200 000
    assert "BTCUSDT" not in sim.market.positions()
    assert _available(await exchange.fetch_balance()) == Decimal(500_000)
