"""The Binance dialect with ccxt's real ``binance`` client: market data, account, orders."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import ccxt.async_support as ccxt
import pytest

from virtuoso_resilience.simulator import Simulator

Factory = Callable[..., Awaitable[Any]]


@pytest.fixture
async def bsim() -> AsyncIterator[Simulator]:
    async with Simulator(seed=3, dialect="binance") as simulator:
        yield simulator


@pytest.fixture
async def make_binance(bsim: Simulator) -> AsyncIterator[Factory]:
    created: list[Any] = []

    async def factory(*, load: bool = True, **overrides: Any) -> Any:
        exchange = ccxt.binance({**bsim.ccxt_config(), "enableRateLimit": False, **overrides})
        exchange.timeout_on_exit = 0
        created.append(exchange)
        if load:
            await exchange.load_markets()
        return exchange

    yield factory
    for exchange in created:
        await exchange.close()


@pytest.fixture
async def binance(make_binance: Factory) -> Any:
    return await make_binance()


async def test_load_markets_gives_the_spot_markets_with_their_filters(
    binance: Any, bsim: Simulator
) -> None:
    assert sorted(binance.markets) == ["BTC/USDT", "ETH/USDT", "SOL/USDT"]
    market = binance.market("BTC/USDT")
    assert (market["id"], market["spot"], market["base"], market["quote"]) == (
        "BTCUSDT",
        True,
        "BTC",
        "USDT",
    )
    assert market["precision"]["price"] == 0.01
    assert market["precision"]["amount"] == 0.000001
    assert market["limits"]["cost"]["min"] == 1.0
    assert market["info"]["orderTypes"] == ["LIMIT", "LIMIT_MAKER", "MARKET"]
    # spot only: nothing asked of the futures, margin or wallet APIs
    assert set(bsim.stats.by_path) == {"/api/v3/exchangeInfo"}


async def test_market_data_ticker_tickers_book_candles_time_status(
    binance: Any, bsim: Simulator
) -> None:
    ticker = await binance.fetch_ticker("ETH/USDT")
    assert ticker["symbol"] == "ETH/USDT"
    assert ticker["bid"] < ticker["ask"]
    assert ticker["last"] == pytest.approx(bsim.market.price("ETHUSDT"), rel=1e-3)
    tickers = await binance.fetch_tickers()
    assert set(tickers) == {"BTC/USDT", "ETH/USDT", "SOL/USDT"}
    some = await binance.fetch_tickers(["BTC/USDT", "SOL/USDT"])
    assert set(some) == {"BTC/USDT", "SOL/USDT"}
    book = await binance.fetch_order_book("BTC/USDT", 5)
    assert len(book["bids"]) == len(book["asks"]) == 5
    assert book["bids"][0][0] < book["asks"][0][0]
    candles = await binance.fetch_ohlcv("BTC/USDT", "1h", limit=4)
    assert len(candles) == 4
    assert [c[0] for c in candles] == sorted(c[0] for c in candles)  # oldest first
    assert all(c[0] % 3_600_000 == 0 for c in candles)
    since = candles[0][0]
    later = await binance.fetch_ohlcv("BTC/USDT", "1h", since=since, limit=2)
    assert [c[0] for c in later] == [since, since + 3_600_000]  # from since onwards
    assert isinstance(await binance.fetch_time(), int)
    assert (await binance.fetch_status())["status"] == "ok"
    assert (await binance.fetch_bids_asks(["BTC/USDT"]))["BTC/USDT"]["bid"] > 0
    assert (await binance.fetch_last_prices(["BTC/USDT"]))["BTC/USDT"]["price"] > 0


async def test_balance_shows_funds_locked_by_a_resting_order(binance: Any) -> None:
    balance = await binance.fetch_balance()
    assert balance["USDT"] == {"free": 100000.0, "used": 0.0, "total": 100000.0}
    assert balance["BTC"]["free"] == 1.0
    await binance.create_order("BTC/USDT", "limit", "buy", 0.01, 50000)
    balance = await binance.fetch_balance()
    assert balance["USDT"]["used"] == 500.0
    assert balance["USDT"]["free"] == 99500.0


async def test_create_fetch_and_cancel_by_order_id(binance: Any) -> None:
    order = await binance.create_order("BTC/USDT", "limit", "buy", 0.01, 60000)
    assert order["status"] == "open"
    assert order["id"].isdigit()
    assert order["clientOrderId"]  # ccxt sends a generated newClientOrderId
    fetched = await binance.fetch_order(order["id"], "BTC/USDT")
    assert (fetched["id"], fetched["status"], fetched["price"], fetched["amount"]) == (
        order["id"],
        "open",
        60000.0,
        0.01,
    )
    cancelled = await binance.cancel_order(order["id"], "BTC/USDT")
    assert cancelled["status"] == "canceled"
    assert (await binance.fetch_order(order["id"], "BTC/USDT"))["status"] == "canceled"


async def test_create_fetch_and_cancel_by_client_order_id(binance: Any) -> None:
    order = await binance.create_order(
        "BTC/USDT", "limit", "sell", 0.01, 90000, {"clientOrderId": "bot-1:a/b.c_d-e"}
    )
    assert order["clientOrderId"] == "bot-1:a/b.c_d-e"
    found = await binance.fetch_order(None, "BTC/USDT", {"clientOrderId": "bot-1:a/b.c_d-e"})
    assert found["id"] == order["id"]
    cancelled = await binance.cancel_order(None, "BTC/USDT", {"clientOrderId": "bot-1:a/b.c_d-e"})
    assert cancelled["id"] == order["id"]
    assert cancelled["status"] == "canceled"


async def test_open_closed_and_all_orders(binance: Any, bsim: Simulator) -> None:
    resting = await binance.create_order("BTC/USDT", "limit", "buy", 0.01, 50000)
    filled = await binance.create_order("BTC/USDT", "market", "buy", 0.01)
    assert filled["status"] == "closed"
    assert filled["filled"] == 0.01
    assert filled["average"] == pytest.approx(bsim.market.price("BTCUSDT"), rel=1e-3)
    other = await binance.create_order("ETH/USDT", "limit", "buy", 0.1, 1000)
    assert [o["id"] for o in await binance.fetch_open_orders("BTC/USDT")] == [resting["id"]]
    assert {o["id"] for o in await binance.fetch_open_orders()} == {resting["id"], other["id"]}
    assert [o["id"] for o in await binance.fetch_closed_orders("BTC/USDT")] == [filled["id"]]
    assert [o["id"] for o in await binance.fetch_orders("BTC/USDT")] == [
        resting["id"],
        filled["id"],
    ]
    # the price falls through the resting buy: it fills at its limit price
    bsim.market.set_price("BTCUSDT", 49000)
    assert await binance.fetch_open_orders("BTC/USDT") == []
    done = await binance.fetch_order(resting["id"], "BTC/USDT")
    assert (done["status"], done["filled"], done["average"]) == ("closed", 0.01, 50000.0)
    trades = await binance.fetch_my_trades("BTC/USDT")
    assert [t["order"] for t in trades] == [filled["id"], resting["id"]]
    assert trades[1]["price"] == 50000.0
    assert trades[1]["amount"] == 0.01


async def test_duplicate_client_id_of_an_open_order_is_invalid_order(binance: Any) -> None:
    params = {"clientOrderId": "dup-1"}
    first = await binance.create_order("BTC/USDT", "limit", "buy", 0.01, 50000, params)
    with pytest.raises(ccxt.InvalidOrder, match="Duplicate order sent") as caught:
        await binance.create_order("BTC/USDT", "limit", "buy", 0.01, 50000, params)
    # ccxt maps -2010 to InvalidOrder, never to DuplicateOrderId
    assert not isinstance(caught.value, ccxt.DuplicateOrderId)
    await binance.cancel_order(first["id"], "BTC/USDT")
    # once the order is closed, Binance accepts the client id again; lookups find the newest
    second = await binance.create_order("BTC/USDT", "limit", "buy", 0.01, 50000, params)
    assert second["id"] != first["id"]
    found = await binance.fetch_order(None, "BTC/USDT", params)
    assert found["id"] == second["id"]


async def test_unknown_orders_are_order_not_found(binance: Any) -> None:
    with pytest.raises(ccxt.OrderNotFound, match="-2013"):
        await binance.fetch_order("123", "BTC/USDT")
    with pytest.raises(ccxt.OrderNotFound, match="-2013"):
        await binance.fetch_order(None, "BTC/USDT", {"clientOrderId": "nobody"})
    with pytest.raises(ccxt.OrderNotFound, match="-2011"):
        await binance.cancel_order("123", "BTC/USDT")
    filled = await binance.create_order("BTC/USDT", "market", "sell", 0.01)
    with pytest.raises(ccxt.OrderNotFound, match="Unknown order sent"):
        await binance.cancel_order(filled["id"], "BTC/USDT")
    # an order of another symbol is not found under this one
    resting = await binance.create_order("ETH/USDT", "limit", "buy", 0.1, 1000)
    with pytest.raises(ccxt.OrderNotFound):
        await binance.fetch_order(resting["id"], "BTC/USDT")


async def test_business_errors_map_to_ccxt_exceptions(binance: Any) -> None:
    with pytest.raises(ccxt.InsufficientFunds):
        await binance.create_order("BTC/USDT", "market", "buy", 10)
    with pytest.raises(ccxt.InsufficientFunds):
        await binance.create_order("BTC/USDT", "limit", "sell", 5, 70000)
    base = {"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC"}
    with pytest.raises(ccxt.InvalidOrder, match="LOT_SIZE"):
        await binance.private_post_order({**base, "quantity": "0.0000001", "price": "60000"})
    with pytest.raises(ccxt.InvalidOrder, match="PRICE_FILTER"):
        await binance.private_post_order({**base, "quantity": "0.01", "price": "60000.001"})
    with pytest.raises(ccxt.BadRequest, match="NOTIONAL"):
        await binance.private_post_order({**base, "quantity": "0.000001", "price": "100"})
    with pytest.raises(ccxt.BadSymbol):
        await binance.private_post_order({**base, "symbol": "DOGEUSDT", "quantity": "1"})
    # a post-only order that would take is refused, not booked
    with pytest.raises(ccxt.OrderImmediatelyFillable):
        await binance.create_order("BTC/USDT", "limit", "buy", 0.01, 90000, {"postOnly": True})
    assert await binance.fetch_open_orders("BTC/USDT") == []


async def test_ioc_that_cannot_fill_expires_and_quote_market_buy_spends_the_cost(
    binance: Any, bsim: Simulator
) -> None:
    ioc = await binance.create_order(
        "BTC/USDT", "limit", "buy", 0.01, 50000, {"timeInForce": "IOC"}
    )
    assert (ioc["status"], ioc["filled"]) == ("expired", 0.0)
    bought = await binance.create_market_buy_order_with_cost("BTC/USDT", 1000)
    assert bought["status"] == "closed"
    assert bought["cost"] == pytest.approx(1000, rel=1e-3)
    assert bought["filled"] == pytest.approx(1000 / bsim.market.price("BTCUSDT"), rel=1e-3)
    maker = await binance.create_order("BTC/USDT", "limit", "buy", 0.01, 50000, {"postOnly": True})
    assert maker["status"] == "open"


async def test_limit_headers_on_every_answer(binance: Any) -> None:
    await binance.fetch_time()
    used = int(binance.last_response_headers["X-MBX-USED-WEIGHT-1M"])
    await binance.fetch_order_book("BTC/USDT", 100)  # weight 5
    assert int(binance.last_response_headers["X-MBX-USED-WEIGHT-1M"]) == used + 5
    await binance.fetch_balance()  # weight 20
    assert int(binance.last_response_headers["X-MBX-USED-WEIGHT-1M"]) == used + 25
    await binance.create_order("BTC/USDT", "limit", "buy", 0.01, 50000)
    headers = binance.last_response_headers
    assert (headers["X-MBX-ORDER-COUNT-10S"], headers["X-MBX-ORDER-COUNT-1D"]) == ("1", "1")
    with pytest.raises(ccxt.OrderNotFound):
        await binance.fetch_order("1", "BTC/USDT")
    assert "X-MBX-USED-WEIGHT-1M" in binance.last_response_headers  # errors carry it too


async def test_configure_an_existing_client_and_the_credentials_stay_out_of_answers(
    bsim: Simulator,
) -> None:
    exchange = bsim.configure_ccxt(ccxt.binance({"enableRateLimit": False}))
    exchange.timeout_on_exit = 0
    try:
        await exchange.load_markets()
        balance = await exchange.fetch_balance()
        assert balance["USDT"]["total"] == 100000.0
        assert exchange.urls["api"]["private"] == bsim.base_url + "/api/v3"
        assert bsim.api_secret not in exchange.last_http_response
    finally:
        await exchange.close()


async def test_both_dialects_in_one_process(binance: Any) -> None:
    async with Simulator(seed=4) as bybit_sim:
        bybit = ccxt.bybit({**bybit_sim.ccxt_config(), "enableRateLimit": False})
        bybit.timeout_on_exit = 0
        try:
            bybit_ticker = await bybit.fetch_ticker("BTC/USDT")
            binance_ticker = await binance.fetch_ticker("BTC/USDT")
            assert bybit_ticker["symbol"] == binance_ticker["symbol"] == "BTC/USDT"
            assert "/v5/market/tickers" in bybit_sim.stats.by_path
        finally:
            await bybit.close()


async def test_lost_response_leaves_the_order_booked(binance: Any, bsim: Simulator) -> None:
    handle = bsim.inject("lost_response", endpoint="/api/v3/order", count=1)
    # ccxt 'fetchOrder' GETs the same path: the fault only fires on a successful answer,
    # and the first successful one is the create
    with pytest.raises(ccxt.NetworkError):
        await binance.create_order(
            "BTC/USDT", "limit", "buy", 0.01, 50000, {"clientOrderId": "l-1"}
        )
    assert handle.fired == 1
    found = await binance.fetch_order(None, "BTC/USDT", {"clientOrderId": "l-1"})
    assert found["status"] == "open"
    with pytest.raises(ccxt.InvalidOrder, match="Duplicate order sent"):
        await binance.create_order(
            "BTC/USDT", "limit", "buy", 0.01, 50000, {"clientOrderId": "l-1"}
        )
    assert bsim.stats.orders_created == 1


async def test_a_client_with_ccxt_default_options_loads_currencies_and_margins(
    bsim: Simulator,
) -> None:
    """Only the URLs and ``fetchMarkets`` changed: ccxt's default ``fetchCurrencies`` and
    ``fetchMargins`` calls are served too, and every other API key points at the simulator."""
    config = bsim.ccxt_config()
    exchange = ccxt.binance(
        {
            "apiKey": bsim.api_key,
            "secret": bsim.api_secret,
            "urls": config["urls"],
            "options": {"fetchMarkets": {"types": ["spot"]}},
            "enableRateLimit": False,
        }
    )
    exchange.timeout_on_exit = 0
    try:
        await exchange.load_markets()
        assert set(exchange.currencies) >= {"USDT", "BTC", "ETH", "SOL"}
        assert exchange.currencies["BTC"]["networks"]["BTC"]["withdraw"] is True
        assert {
            "/api/v3/exchangeInfo",
            "/sapi/v1/capital/config/getall",
            "/sapi/v1/margin/allPairs",
            "/sapi/v1/margin/isolated/allPairs",
        } <= set(bsim.stats.by_path)
        assert all(url.startswith(bsim.base_url) for url in exchange.urls["api"].values())
        # a futures call reaches the simulator (and is not served) instead of the real exchange
        with pytest.raises(ccxt.ExchangeNotAvailable, match="404"):
            await exchange.fapiPublicGetTime()
        assert bsim.request_count("/fapi/v1/time") == 1
    finally:
        await exchange.close()


async def test_configure_ccxt_rewrites_every_api_url(bsim: Simulator) -> None:
    exchange = ccxt.binance()
    exchange.urls["api"]["someFutureApi"] = "https://new.binance.com/x/v9"
    bsim.configure_ccxt(exchange)
    try:
        assert exchange.urls["api"]["someFutureApi"] == bsim.base_url + "/x/v9"
        assert all(url.startswith(bsim.base_url) for url in exchange.urls["api"].values())
        assert exchange.options["fetchMarkets"]["types"] == ["spot"]
        assert exchange.options["fetchMarkets"]["loadAllOptions"] is False  # merged, not replaced
    finally:
        await exchange.close()


async def test_reset_forgets_binance_orders_and_weights(binance: Any, bsim: Simulator) -> None:
    order = await binance.create_order(
        "BTC/USDT", "limit", "buy", 0.01, 50000, {"clientOrderId": "z"}
    )
    assert "dialect=binance" in repr(bsim)
    assert "orders=1" in repr(bsim)
    bsim.reset()
    with pytest.raises(ccxt.OrderNotFound):
        await binance.fetch_order(order["id"], "BTC/USDT")
    with pytest.raises(ccxt.OrderNotFound):
        await binance.fetch_order(None, "BTC/USDT", {"clientOrderId": "z"})
    assert binance.last_response_headers["X-MBX-USED-WEIGHT-1M"] == "8"  # the 2 queries since
    again = await binance.create_order("BTC/USDT", "limit", "buy", 0.01, 50000)
    assert again["id"] == order["id"]  # same seed, same ids
    assert (await binance.fetch_balance())["USDT"]["used"] == 500.0


async def test_another_api_key_shares_the_account_and_is_counted_apart(
    make_binance: Factory, bsim: Simulator
) -> None:
    bsim.add_api_key("second-key", "second-secret")
    first = await make_binance()
    second = await make_binance(apiKey="second-key", secret="second-secret")
    await first.create_order("BTC/USDT", "limit", "buy", 0.01, 50000, {"clientOrderId": "k1"})
    found = await second.fetch_order(None, "BTC/USDT", {"clientOrderId": "k1"})
    assert found["clientOrderId"] == "k1"
    assert bsim.request_count("/api/v3/order", api_key="second-key") == 1
    assert bsim.request_count("/api/v3/order", api_key=bsim.api_key) == 1


async def test_a_model_reset_alone_makes_the_book_forget_its_orders(
    binance: Any, bsim: Simulator
) -> None:
    order = await binance.create_order("BTC/USDT", "limit", "buy", 0.01, 50000)
    bsim.market.reset()  # not sim.reset(): only the matching model
    with pytest.raises(ccxt.OrderNotFound):
        await binance.fetch_order(order["id"], "BTC/USDT")
    assert await binance.fetch_open_orders("BTC/USDT") == []


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"side": None}, ccxt.BadRequest),  # -1102
        ({"quantity": "1e-2"}, ccxt.BadRequest),  # -1100
        ({"type": "MARKET", "price": None}, ccxt.BadRequest),  # -1106 timeInForce
        ({"newOrderRespType": "ALL"}, ccxt.BadRequest),  # -1130
        ({"side": "HOLD"}, ccxt.BadRequest),  # -1117
        ({"type": "ICEBERG"}, ccxt.BadRequest),  # -1116
        ({"timeInForce": "GTX"}, ccxt.BadRequest),  # -1115
        ({"type": "STOP_LOSS"}, ccxt.InvalidOrder),  # -1014
        ({"quantity": "0"}, ccxt.BadRequest),  # -1013 Invalid quantity.
        ({"icebergQty": "1"}, ccxt.BadRequest),  # -1104
    ],
)
async def test_the_documented_parameter_errors_through_ccxt(
    binance: Any, change: dict[str, Any], error: type[Exception]
) -> None:
    params = {
        "symbol": "BTCUSDT",
        "side": "BUY",
        "type": "LIMIT",
        "timeInForce": "GTC",
        "quantity": "0.01",
        "price": "50000",
        **change,
    }
    with pytest.raises(error) as caught:
        await binance.private_post_order({k: v for k, v in params.items() if v is not None})
    if error is ccxt.BadRequest:
        assert not isinstance(caught.value, ccxt.InvalidOrder)
    assert await binance.fetch_open_orders("BTC/USDT") == []
