"""The shared fault engine on the Binance dialect, and what ccxt's binance raises for each."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import ccxt.async_support as ccxt
import pytest

from virtuoso_resilience.clock import FakeClock
from virtuoso_resilience.simulator import Simulator


@pytest.fixture
async def bsim() -> AsyncIterator[Simulator]:
    async with Simulator(seed=5, dialect="binance") as simulator:
        yield simulator


@pytest.fixture
async def binance(bsim: Simulator) -> AsyncIterator[Any]:
    exchange = ccxt.binance({**bsim.ccxt_config(), "enableRateLimit": False})
    exchange.timeout_on_exit = 0
    await exchange.load_markets()
    yield exchange
    await exchange.close()


@pytest.mark.parametrize(
    ("spec", "error"),
    [
        ("http@/api/v3/ticker/24hr=503", ccxt.ExchangeNotAvailable),
        ("http@/api/v3/ticker/24hr=500", ccxt.ExchangeNotAvailable),
        ("http@/api/v3/ticker/24hr=502", ccxt.ExchangeNotAvailable),
        ("http@/api/v3/ticker/24hr=504", ccxt.RequestTimeout),
        ("http@/api/v3/ticker/24hr=429", ccxt.DDoSProtection),
        ("error_rate@/api/v3/ticker/24hr=1", ccxt.ExchangeNotAvailable),
        ("retcode@/api/v3/ticker/24hr=-1003", ccxt.DDoSProtection),
        ("retcode@/api/v3/ticker/24hr=-1021", ccxt.InvalidNonce),
        ("retcode@/api/v3/ticker/24hr=-1007", ccxt.RequestTimeout),
        ("system_error@/api/v3/ticker/24hr=always", ccxt.OperationFailed),
    ],
)
async def test_pre_handling_faults_and_the_ccxt_exception(
    binance: Any, bsim: Simulator, spec: str, error: type[Exception]
) -> None:
    with bsim.faults.add(spec), pytest.raises(error):
        await binance.fetch_ticker("BTC/USDT")
    assert (await binance.fetch_ticker("BTC/USDT"))["last"] > 0


async def test_system_error_is_binance_minus_1001_with_http_503(
    binance: Any, bsim: Simulator
) -> None:
    bsim.faults.add("system_error@/api/v3/time=next:1")
    with pytest.raises(ccxt.OperationFailed, match="-1001") as caught:
        await binance.fetch_time()
    # -1001 is "execution status unknown": ccxt raises the bare OperationFailed
    assert not isinstance(caught.value, ccxt.NetworkError | ccxt.ExchangeError)
    assert binance.last_http_response  # a JSON body, not a page
    assert json.loads(binance.last_http_response)["code"] == -1001


async def test_maintenance_is_on_maintenance_and_reported_by_fetch_status() -> None:
    clock = FakeClock()
    async with Simulator(seed=5, dialect="binance", clock=clock) as sim:
        exchange = ccxt.binance({**sim.ccxt_config(), "enableRateLimit": False})
        exchange.timeout_on_exit = 0
        try:
            await exchange.load_markets()
            sim.faults.add("maintenance=30s")
            with pytest.raises(ccxt.OnMaintenance):
                await exchange.fetch_ticker("BTC/USDT")
            assert exchange.last_response_headers["Retry-After"] == "30"
            assert (await exchange.fetch_status())["status"] == "maintenance"
            clock.advance(20.0)
            with pytest.raises(ccxt.OnMaintenance):
                await exchange.create_order("BTC/USDT", "limit", "buy", 0.01, 50000)
            assert exchange.last_response_headers["Retry-After"] == "10"
            assert sim.stats.orders_created == 0
            clock.advance(10.0)
            assert (await exchange.fetch_status())["status"] == "ok"
            assert (await exchange.fetch_ticker("BTC/USDT"))["last"] > 0
        finally:
            await exchange.close()


async def test_a_scheduled_maintenance_is_not_yet_reported(binance: Any, bsim: Simulator) -> None:
    with bsim.faults.add("maintenance=on~1h.."):
        assert (await binance.fetch_status())["status"] == "ok"
        assert (await binance.fetch_ticker("BTC/USDT"))["last"] > 0


async def test_reset_on_an_order_is_a_network_error_and_nothing_is_booked(
    binance: Any, bsim: Simulator
) -> None:
    bsim.faults.add("reset@/api/v3/order=next:1")
    with pytest.raises(ccxt.NetworkError):
        await binance.create_order("BTC/USDT", "limit", "buy", 0.01, 50000, {"clientOrderId": "r1"})
    assert bsim.stats.orders_created == 0
    with pytest.raises(ccxt.OrderNotFound):
        await binance.fetch_order(None, "BTC/USDT", {"clientOrderId": "r1"})


async def test_hang_is_a_request_timeout(bsim: Simulator) -> None:
    exchange = ccxt.binance({**bsim.ccxt_config(), "enableRateLimit": False, "timeout": 300})
    exchange.timeout_on_exit = 0
    try:
        await exchange.load_markets()
        bsim.faults.add("hang@/api/v3/time=next:1")
        with pytest.raises(ccxt.RequestTimeout):
            await exchange.fetch_time()
        assert isinstance(await exchange.fetch_time(), int)
    finally:
        await exchange.close()


async def test_late_response_books_the_order_and_times_out(bsim: Simulator) -> None:
    exchange = ccxt.binance({**bsim.ccxt_config(), "enableRateLimit": False, "timeout": 300})
    exchange.timeout_on_exit = 0
    try:
        await exchange.load_markets()
        bsim.faults.add("late_response@/api/v3/order=2s:next:1")
        with pytest.raises(ccxt.RequestTimeout):
            await exchange.create_order(
                "BTC/USDT", "limit", "buy", 0.01, 50000, {"clientOrderId": "late-1"}
            )
        found = await exchange.fetch_order(None, "BTC/USDT", {"clientOrderId": "late-1"})
        assert found["status"] == "open"
    finally:
        await exchange.close()


async def test_lost_response_spares_rejected_orders(binance: Any, bsim: Simulator) -> None:
    handle = bsim.faults.add("lost_response@/api/v3/order=next:1")
    with pytest.raises(ccxt.InsufficientFunds):
        await binance.create_order("BTC/USDT", "market", "buy", 100)
    assert handle.fired == 0  # a rejection books nothing: the fault waits for a real order
    with pytest.raises(ccxt.NetworkError):
        await binance.create_order("BTC/USDT", "limit", "buy", 0.01, 50000, {"clientOrderId": "x"})
    assert handle.fired == 1
    assert [o["clientOrderId"] for o in await binance.fetch_open_orders("BTC/USDT")] == ["x"]


async def test_malformed_answers_keep_the_limit_headers(bsim: Simulator) -> None:
    bsim.faults.add("malformed@/api/v3/depth=next:1")
    async with (
        aiohttp.ClientSession() as http,
        http.get(bsim.base_url + "/api/v3/depth", params={"symbol": "BTCUSDT"}) as response,
    ):
        text = await response.text()
        assert response.status == 200
        assert response.headers["X-MBX-USED-WEIGHT-1M"] == "5"
    with pytest.raises(json.JSONDecodeError):
        json.loads(text)
    assert bsim.stats.faults_fired == {"malformed": 1}


async def test_malformed_json_through_ccxt(binance: Any, bsim: Simulator) -> None:
    bsim.faults.add("malformed@/api/v3/time=next:1")
    # ccxt's binance, like its bybit, swallows an unparsable 200 answer
    assert await binance.fetch_time() is None
    assert isinstance(await binance.fetch_time(), int)


async def test_latency_beyond_recv_window_is_invalid_nonce(bsim: Simulator) -> None:
    exchange = ccxt.binance(
        {
            **bsim.ccxt_config(),
            "enableRateLimit": False,
            "options": {**bsim.ccxt_config()["options"], "recvWindow": 100},
        }
    )
    exchange.timeout_on_exit = 0
    try:
        await exchange.load_markets()
        bsim.faults.add("latency@/api/v3/account=300ms:next:1")
        with pytest.raises(ccxt.InvalidNonce, match="-1021"):
            await exchange.fetch_balance()
        # a window this short is meant for the fault only: the next call asks for 10 s
        balance = await exchange.fetch_balance({"recvWindow": 10000})
        assert balance["USDT"]["total"] == 100000.0
    finally:
        await exchange.close()


async def test_faults_scoped_to_private_hit_only_signed_endpoints(
    binance: Any, bsim: Simulator
) -> None:
    with bsim.faults.add("http@private=503"):
        assert (await binance.fetch_ticker("BTC/USDT"))["last"] > 0
        with pytest.raises(ccxt.ExchangeNotAvailable):
            await binance.fetch_balance()
        with pytest.raises(ccxt.ExchangeNotAvailable):
            await binance.fetch_open_orders("BTC/USDT")


async def test_stop_releases_hanging_requests() -> None:
    sim = Simulator(dialect="binance", faults="hang@/api/v3/ping=always")
    await sim.start()
    async with aiohttp.ClientSession() as http:
        request = asyncio.create_task(http.get(sim.base_url + "/api/v3/ping"))
        for _ in range(1000):
            if "hanging=1" in repr(sim):
                break
            await asyncio.sleep(0.005)
        assert "hanging=1" in repr(sim)
        await sim.stop()
        with pytest.raises(aiohttp.ClientError):
            await request
    assert "hanging=0" in repr(sim)


async def test_a_lost_cancel_answer_surfaces_as_order_not_found(
    binance: Any, bsim: Simulator
) -> None:
    """Binance cancels with DELETE, which aiohttp re-sends once by itself when a reused
    keep-alive connection drops: the re-sent cancel finds nothing to cancel (-2011).
    ccxt sees ``OrderNotFound`` for an order that *was* cancelled, not a NetworkError."""
    order = await binance.create_order("BTC/USDT", "limit", "buy", 0.01, 50000)
    sent = bsim.request_count("/api/v3/order")
    handle = bsim.faults.add("lost_response@/api/v3/order=next:1")
    with pytest.raises(ccxt.OrderNotFound, match="-2011"):
        await binance.cancel_order(order["id"], "BTC/USDT")
    assert handle.fired == 1
    assert bsim.request_count("/api/v3/order") == sent + 2  # the cancel, and aiohttp's resend
    assert (await binance.fetch_order(order["id"], "BTC/USDT"))["status"] == "canceled"
    assert (await binance.fetch_balance())["USDT"]["used"] == 0.0


async def test_a_lost_create_answer_is_not_resent(binance: Any, bsim: Simulator) -> None:
    """POST is not idempotent: aiohttp never re-sends it, ccxt raises a NetworkError."""
    await binance.fetch_time()  # a keep-alive connection to reuse
    sent = bsim.request_count("/api/v3/order")
    bsim.faults.add("lost_response@/api/v3/order=next:1")
    with pytest.raises(ccxt.NetworkError):
        await binance.create_order("BTC/USDT", "limit", "buy", 0.01, 50000)
    assert bsim.request_count("/api/v3/order") == sent + 1
    assert len(await binance.fetch_open_orders("BTC/USDT")) == 1
