"""The unmodified ccxt bybit client against the simulator, method by method."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any

import ccxt.async_support as ccxt
import pytest

from virtuoso_resilience.simulator import Simulator

ExchangeFactory = Callable[..., Awaitable[Any]]


async def test_load_markets_serves_spot_and_linear(sim: Simulator, exchange: Any) -> None:
    symbols = set(exchange.markets)
    assert symbols == {
        "BTC/USDT",
        "ETH/USDT",
        "SOL/USDT",
        "BTC/USDT:USDT",
        "ETH/USDT:USDT",
        "SOL/USDT:USDT",
    }
    spot, swap = exchange.market("BTC/USDT"), exchange.market("BTC/USDT:USDT")
    assert spot["spot"] and spot["id"] == "BTCUSDT" and spot["precision"]["price"] == 0.01
    assert swap["swap"] and swap["linear"] and swap["settle"] == "USDT"
    assert swap["precision"]["amount"] == 0.001
    # ccxt asked only what the fetchMarkets option allows, plus the currencies call.
    assert sim.request_count("/v5/market/instruments-info") == 3  # spot, linear, linear PreLaunch
    assert sim.request_count("/v5/asset/coin/query-info") == 1
    assert "USDT" in exchange.currencies


async def test_default_market_types_also_load(make_exchange: ExchangeFactory) -> None:
    """Without the fetchMarkets option ccxt also asks for inverse and option markets: empty."""
    exchange = await make_exchange(options={})
    assert "BTC/USDT:USDT" in exchange.markets
    assert not any(m["inverse"] or m["option"] for m in exchange.markets.values())


async def test_fetch_time_and_status(exchange: Any) -> None:
    server_ms = await exchange.fetch_time()
    assert abs(server_ms - exchange.milliseconds()) < 60_000
    status = await exchange.fetch_status()
    assert status["status"] == "ok" and status["eta"] is None


async def test_tickers_spot_and_linear(exchange: Any) -> None:
    spot = await exchange.fetch_ticker("BTC/USDT")
    assert spot["symbol"] == "BTC/USDT"
    assert spot["bid"] < spot["ask"] and spot["last"] > 0
    swap = await exchange.fetch_ticker("BTC/USDT:USDT")
    assert swap["symbol"] == "BTC/USDT:USDT" and swap["markPrice"] > 0
    many = await exchange.fetch_tickers(["BTC/USDT", "ETH/USDT"])
    assert set(many) == {"BTC/USDT", "ETH/USDT"}
    every_swap = await exchange.fetch_tickers(params={"type": "swap"})
    assert set(every_swap) == {"BTC/USDT:USDT", "ETH/USDT:USDT", "SOL/USDT:USDT"}


async def test_seed_market_id_lookup(exchange: Any) -> None:
    """The seed's examples call fetch_ticker('BTCUSDT') with the market id."""
    ticker = await exchange.fetch_ticker("BTCUSDT")
    assert ticker["symbol"] in ("BTC/USDT", "BTC/USDT:USDT")


async def test_order_book_and_ohlcv(exchange: Any) -> None:
    book = await exchange.fetch_order_book("ETH/USDT", 5)
    assert len(book["bids"]) == 5 and len(book["asks"]) == 5
    assert book["bids"][0][0] < book["asks"][0][0]
    assert [b[0] for b in book["bids"]] == sorted((b[0] for b in book["bids"]), reverse=True)
    candles = await exchange.fetch_ohlcv("BTC/USDT:USDT", "1m", limit=10)
    assert len(candles) == 10
    times = [c[0] for c in candles]
    assert times == sorted(times)
    assert all(b - a == 60_000 for a, b in itertools.pairwise(times))
    assert all(c[3] <= min(c[1], c[4]) and c[2] >= max(c[1], c[4]) for c in candles)
    since = times[0] - 3 * 3_600_000
    hourly = await exchange.fetch_ohlcv("ETH/USDT", "1h", since=since, limit=2)
    assert len(hourly) == 2 and hourly[0][0] >= since


async def test_balance_reflects_spot_market_orders(exchange: Any) -> None:
    before = await exchange.fetch_balance()
    assert before["USDT"]["total"] == 100_000 and before["BTC"]["total"] == 1
    order = await exchange.create_order(
        "BTC/USDT", "market", "buy", 0.01, None, {"clientOrderId": "buy-1"}
    )
    assert order["clientOrderId"] == "buy-1" and order["id"]
    fetched = await exchange.fetch_order(order["id"], "BTC/USDT", {"acknowledged": True})
    assert fetched["status"] == "closed" and fetched["filled"] == 0.01
    after = await exchange.fetch_balance()
    assert after["BTC"]["total"] == pytest.approx(1.01)
    assert after["USDT"]["total"] == pytest.approx(100_000 - fetched["cost"])

    sold = await exchange.create_order("BTC/USDT", "market", "sell", 0.005, None)
    sell = await exchange.fetch_order(sold["id"], "BTC/USDT", {"acknowledged": True})
    assert sell["status"] == "closed" and sell["side"] == "sell"
    assert (await exchange.fetch_balance())["BTC"]["total"] == pytest.approx(1.005)


async def test_limit_order_rests_locks_funds_and_fills_when_price_crosses(
    sim: Simulator, exchange: Any
) -> None:
    placed = await exchange.create_order(
        "ETH/USDT", "limit", "buy", 1, 3000, {"clientOrderId": "eth-dip"}
    )
    open_orders = await exchange.fetch_open_orders("ETH/USDT")
    assert [(o["id"], o["clientOrderId"], o["status"], o["price"]) for o in open_orders] == [
        (placed["id"], "eth-dip", "open", 3000.0)
    ]
    balance = await exchange.fetch_balance()
    assert balance["USDT"]["used"] == pytest.approx(3000)
    assert balance["USDT"]["free"] == pytest.approx(97_000)

    sim.market.set_price("ETHUSDT", 2990.0)
    assert await exchange.fetch_open_orders("ETH/USDT") == []
    filled = await exchange.fetch_order(placed["id"], "ETH/USDT", {"acknowledged": True})
    assert filled["status"] == "closed" and filled["average"] == 3000
    balance = await exchange.fetch_balance()
    assert balance["ETH"]["total"] == pytest.approx(11)
    assert balance["USDT"]["total"] == pytest.approx(97_000) and balance["USDT"]["used"] == 0


async def test_cancel_order_releases_funds(exchange: Any) -> None:
    placed = await exchange.create_order("SOL/USDT", "limit", "sell", 10, 500)
    assert (await exchange.fetch_balance())["SOL"]["used"] == pytest.approx(10)
    await exchange.cancel_order(placed["id"], "SOL/USDT")
    assert await exchange.fetch_open_orders("SOL/USDT") == []
    canceled = await exchange.fetch_order(placed["id"], "SOL/USDT", {"acknowledged": True})
    assert canceled["status"] == "canceled"
    assert (await exchange.fetch_balance())["SOL"]["used"] == 0
    with pytest.raises(ccxt.OrderNotFound):
        await exchange.cancel_order(placed["id"], "SOL/USDT")


async def test_linear_orders_open_a_position_with_margin(sim: Simulator, exchange: Any) -> None:
    await exchange.create_order("BTC/USDT:USDT", "market", "buy", 0.1)
    assert sim.market.positions()["BTCUSDT"][0] == Decimal("0.1")
    balance = await exchange.fetch_balance()
    entry = float(sim.market.positions()["BTCUSDT"][1])
    assert balance["USDT"]["used"] == pytest.approx(0.1 * entry / sim.config.leverage)
    resting = await exchange.create_order("BTC/USDT:USDT", "limit", "buy", 0.1, 50_000)
    orders = await exchange.fetch_open_orders("BTC/USDT:USDT")
    assert [o["id"] for o in orders] == [resting["id"]]
    assert orders[0]["symbol"] == "BTC/USDT:USDT"
    # fetch_open_orders without a symbol lists the USDT-settled linear orders
    assert [o["id"] for o in await exchange.fetch_open_orders()] == [resting["id"]]


async def test_insufficient_balance_is_insufficient_funds(exchange: Any) -> None:
    with pytest.raises(ccxt.InsufficientFunds):
        await exchange.create_order("BTC/USDT", "market", "buy", 5, None)  # ~325k USDT
    with pytest.raises(ccxt.InsufficientFunds):
        await exchange.create_order("BTC/USDT:USDT", "limit", "buy", 100, 60_000)
    with pytest.raises(ccxt.InsufficientFunds):
        await exchange.create_order("SOL/USDT", "limit", "sell", 1000, 500)


async def test_duplicate_client_order_id_is_rejected(sim: Simulator, exchange: Any) -> None:
    """ccxt maps Bybit's duplicate-id codes (170141 spot, 110072 linear) to InvalidOrder."""
    await exchange.create_order("ETH/USDT", "limit", "buy", 1, 3000, {"clientOrderId": "dup"})
    with pytest.raises(ccxt.InvalidOrder, match="170141"):
        await exchange.create_order("ETH/USDT", "limit", "buy", 1, 3000, {"clientOrderId": "dup"})
    await exchange.create_order("ETH/USDT:USDT", "limit", "buy", 1, 3000, {"clientOrderId": "d2"})
    with pytest.raises(ccxt.InvalidOrder, match="110072"):
        await exchange.create_order(
            "ETH/USDT:USDT", "limit", "buy", 1, 3000, {"clientOrderId": "d2"}
        )
    assert sim.market.orders_created == 2


async def test_bad_requests_map_to_ccxt_errors(exchange: Any) -> None:
    with pytest.raises(ccxt.InvalidOrder):
        await exchange.create_order("BTC/USDT", "limit", "buy", 0.0000001, 60_000)
    with pytest.raises(ccxt.BadSymbol):
        await exchange.public_get_v5_market_tickers({"category": "spot", "symbol": "DOGEUSDT"})
    with pytest.raises(ccxt.BadRequest):
        await exchange.request("v5/market/nothing-here", ["public"], "GET", {})


async def test_wrong_secret_is_authentication_error(make_exchange: ExchangeFactory) -> None:
    exchange = await make_exchange(load=False, secret="not-the-secret")
    with pytest.raises(ccxt.AuthenticationError, match="10004"):
        await exchange.load_markets()  # load_markets itself makes a private call


async def test_unknown_key_is_authentication_error(make_exchange: ExchangeFactory) -> None:
    exchange = await make_exchange(load=False, apiKey="someone-else")
    with pytest.raises(ccxt.AuthenticationError, match="10003"):
        await exchange.load_markets()


async def test_stale_timestamp_is_invalid_nonce(exchange: Any) -> None:
    exchange.options["timeDifference"] = 60_000  # ccxt signs with a clock one minute late
    with pytest.raises(ccxt.InvalidNonce, match="10002"):
        await exchange.fetch_open_orders("BTC/USDT")


async def test_secret_never_in_answers_or_stats(
    sim: Simulator, make_exchange: ExchangeFactory
) -> None:
    exchange = await make_exchange(load=False, secret="wrong-secret")
    with pytest.raises(ccxt.AuthenticationError) as caught:
        await exchange.load_markets()
    text = str(caught.value) + repr(sim) + repr(sim.stats) + repr(sim.config)
    assert sim.api_secret not in text and "wrong-secret" not in text
    assert sim.api_key not in repr(sim.stats)


async def test_configure_existing_exchange(sim: Simulator) -> None:
    exchange = ccxt.bybit({"enableRateLimit": False})
    try:
        sim.configure_ccxt(exchange)
        assert all(url == sim.base_url for url in exchange.urls["api"].values())
        await exchange.load_markets()
        assert (await exchange.fetch_balance())["USDT"]["total"] == 100_000
    finally:
        await exchange.close()


async def test_many_clients_at_once_are_all_counted(sim: Simulator, exchange: Any) -> None:
    tickers = [exchange.fetch_ticker(s) for s in ("BTC/USDT", "ETH/USDT", "SOL/USDT") * 10]
    orders = [
        exchange.create_order("SOL/USDT", "limit", "buy", 1, 100, {"clientOrderId": f"c{i}"})
        for i in range(10)
    ]
    results = await asyncio.gather(*tickers, *orders)
    assert len(results) == 40
    assert sim.request_count("/v5/market/tickers") == 30
    assert sim.request_count("/v5/order/create", api_key=sim.api_key) == 10
    open_ids = {o["clientOrderId"] for o in await exchange.fetch_open_orders("SOL/USDT")}
    assert open_ids == {f"c{i}" for i in range(10)}


async def test_closed_and_canceled_orders_from_history(exchange: Any) -> None:
    filled = await exchange.create_order("ETH/USDT", "market", "buy", 0.1)
    resting = await exchange.create_order("ETH/USDT", "limit", "buy", 0.1, 3000)
    await exchange.cancel_order(resting["id"], "ETH/USDT")
    closed = await exchange.fetch_closed_orders("ETH/USDT")
    assert [(o["id"], o["status"]) for o in closed] == [(filled["id"], "closed")]
    canceled = await exchange.fetch_canceled_orders("ETH/USDT")
    assert [(o["id"], o["status"]) for o in canceled] == [(resting["id"], "canceled")]
