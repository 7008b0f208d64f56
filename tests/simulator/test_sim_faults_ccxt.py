"""Each fault, seen through the unmodified ccxt bybit client: the exception users get."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import ccxt.async_support as ccxt
import pytest

from virtuoso_resilience.clock import FakeClock
from virtuoso_resilience.simulator import FaultKind, Simulator, _server


@pytest.mark.parametrize(
    ("spec", "error", "text"),
    [
        ("http=500", ccxt.ExchangeNotAvailable, "500"),
        ("error_rate=1", ccxt.ExchangeNotAvailable, "500 Internal Server Error"),
        ("http=502", ccxt.ExchangeNotAvailable, "502"),
        ("http=503", ccxt.ExchangeNotAvailable, "503"),
        ("http=504", ccxt.RequestTimeout, "504"),
        ("http=429", ccxt.RateLimitExceeded, "429"),
        ("retcode=10006", ccxt.RateLimitExceeded, "Too many visits"),
        ("system_error=1", ccxt.ExchangeError, "10016"),
        ("reset=1", ccxt.ExchangeNotAvailable, "tickers"),
        ("maintenance=30s", ccxt.ExchangeNotAvailable, "maintenance"),
    ],
)
async def test_fault_maps_to_ccxt_exception(
    sim: Simulator, exchange: Any, spec: str, error: type[Exception], text: str
) -> None:
    with sim.faults.add(spec) as handle:
        with pytest.raises(error, match=text) as caught:
            await exchange.fetch_ticker("BTC/USDT")
        assert handle.fired >= 1
    # the classes users branch on: transient network trouble vs. an exchange answer
    if spec == "system_error=1":
        assert not isinstance(caught.value, ccxt.NetworkError)
    else:
        assert isinstance(caught.value, ccxt.NetworkError)
    # the fault is gone with its handle
    assert (await exchange.fetch_ticker("BTC/USDT"))["last"] > 0


async def test_maintenance_reports_ongoing_status_with_eta(sim: Simulator, exchange: Any) -> None:
    """ccxt's bybit maps no answer to OnMaintenance: a 503 gives ExchangeNotAvailable (its
    parent) whose text says 'maintenance', and fetch_status reports the window."""
    sim.faults.add("maintenance=60s")
    status = await exchange.fetch_status()
    assert status["status"] == "maintenance"
    assert status["eta"] is not None
    assert 0 < status["eta"] - exchange.milliseconds() <= 61_000
    with pytest.raises(ccxt.ExchangeNotAvailable, match="maintenance") as caught:
        await exchange.fetch_balance()
    assert not isinstance(caught.value, ccxt.OnMaintenance)
    sim.faults.clear()
    assert (await exchange.fetch_status())["status"] == "ok"


async def test_scheduled_maintenance_is_announced(sim: Simulator, exchange: Any) -> None:
    sim.faults.add("maintenance=on~1h..2h")
    status = await exchange.fetch_status()
    assert status["status"] == "ok"
    assert status["eta"] - exchange.milliseconds() > 3_500_000  # begins in an hour
    assert (await exchange.fetch_ticker("ETH/USDT"))["last"] > 0


@pytest.mark.looptime
async def test_hang_ends_in_request_timeout(sim: Simulator, exchange: Any) -> None:
    exchange.timeout = 10_000  # ms; the loop time is virtual, no real wait
    sim.faults.add("hang@/v5/market/orderbook=1")
    loop = asyncio.get_running_loop()
    start = loop.time()
    with pytest.raises(ccxt.RequestTimeout):
        await exchange.fetch_order_book("BTC/USDT")
    assert loop.time() - start == pytest.approx(10.0, abs=0.5)
    assert sim.stats.faults_fired["hang"] == 1


@pytest.mark.looptime
async def test_latency_delays_but_succeeds(sim: Simulator, exchange: Any) -> None:
    sim.faults.add("latency=2s")
    loop = asyncio.get_running_loop()
    start = loop.time()
    ticker = await exchange.fetch_ticker("SOL/USDT")
    assert ticker["last"] > 0
    assert loop.time() - start == pytest.approx(2.0, abs=0.2)


@pytest.mark.looptime
async def test_latency_beyond_timeout_is_request_timeout(sim: Simulator, exchange: Any) -> None:
    exchange.timeout = 1_000
    sim.inject("latency", latency=5.0, endpoint="/v5/market/tickers")
    with pytest.raises(ccxt.RequestTimeout):
        await exchange.fetch_ticker("SOL/USDT")


async def test_malformed_json_is_swallowed_by_ccxt(sim: Simulator, exchange: Any) -> None:
    """ccxt's bybit does not raise BadResponse for a truncated JSON body with HTTP 200: it
    returns empty structures. A resilience layer must validate answers itself."""
    with sim.faults.add("malformed=1"):
        assert await exchange.fetch_time() is None
        ticker = await exchange.fetch_ticker("ETH/USDT")
        assert ticker["last"] is None and ticker["bid"] is None
    assert sim.stats.faults_fired["malformed"] == 2
    assert await exchange.fetch_time() is not None


async def test_malformed_json_with_error_status_is_a_network_error(
    sim: Simulator, exchange: Any
) -> None:
    with sim.faults.add("http=502"), pytest.raises(ccxt.ExchangeNotAvailable):
        await exchange.fetch_time()


async def test_lost_response_order_is_booked(sim: Simulator, exchange: Any) -> None:
    sim.faults.add("lost_response@/v5/order/create=next:1")
    with pytest.raises(ccxt.NetworkError):
        await exchange.create_order(
            "BTC/USDT", "limit", "buy", 0.01, 60_000, {"clientOrderId": "lost-1"}
        )
    # the request was not retried behind ccxt's back (POST is not idempotent)
    assert sim.request_count("/v5/order/create") == 1
    found = await exchange.fetch_open_orders("BTC/USDT", params={"orderLinkId": "lost-1"})
    assert [(o["clientOrderId"], o["status"], o["amount"]) for o in found] == [
        ("lost-1", "open", 0.01)
    ]
    by_client_id = await exchange.fetch_order(
        "", "BTC/USDT", {"orderLinkId": "lost-1", "acknowledged": True}
    )
    assert by_client_id["id"] == found[0]["id"]
    # a blind retry with the same client id is refused: evidence the first one exists
    with pytest.raises(ccxt.InvalidOrder, match="Duplicate"):
        await exchange.create_order(
            "BTC/USDT", "limit", "buy", 0.01, 60_000, {"clientOrderId": "lost-1"}
        )
    assert sim.market.orders_created == 1


async def test_lost_response_market_order_filled(sim: Simulator, exchange: Any) -> None:
    sim.inject("lost_response", endpoint="/v5/order/create", count=1)
    with pytest.raises(ccxt.NetworkError):
        await exchange.create_order(
            "ETH/USDT:USDT", "market", "buy", 0.5, None, {"clientOrderId": "lost-mkt"}
        )
    order = await exchange.fetch_order(
        "", "ETH/USDT:USDT", {"orderLinkId": "lost-mkt", "acknowledged": True}
    )
    assert order["status"] == "closed" and order["filled"] == 0.5
    assert float(sim.market.positions()["ETHUSDT"][0]) == 0.5


@pytest.mark.looptime
async def test_late_response_past_client_timeout_order_is_booked(
    sim: Simulator, exchange: Any
) -> None:
    exchange.timeout = 5_000
    sim.faults.add("late_response@/v5/order/create=30s#1")
    with pytest.raises(ccxt.RequestTimeout):
        await exchange.create_order("SOL/USDT", "limit", "buy", 1, 100, {"clientOrderId": "late-1"})
    orders = await exchange.fetch_open_orders("SOL/USDT")
    assert [o["clientOrderId"] for o in orders] == ["late-1"]


async def test_one_shot_reset_on_get_is_absorbed_by_aiohttp_retry(
    sim: Simulator, exchange: Any
) -> None:
    """aiohttp retries an idempotent request once when a reused keep-alive connection drops:
    a single reset on a GET is invisible to ccxt, but the simulator saw both requests."""
    await exchange.fetch_time()  # keep-alive connection now pooled
    before = sim.request_count("/v5/market/time")
    sim.faults.add("reset@/v5/market/time=next:1")
    assert await exchange.fetch_time() is not None
    assert sim.request_count("/v5/market/time") == before + 2
    assert sim.stats.faults_fired["reset"] == 1


async def test_probabilistic_faults_hit_some_requests(sim: Simulator, exchange: Any) -> None:
    sim.faults.add("http@/v5/market/tickers=503:0.5")
    outcomes = []
    for _ in range(40):
        try:
            await exchange.fetch_ticker("BTC/USDT")
            outcomes.append("ok")
        except ccxt.ExchangeNotAvailable:
            outcomes.append("503")
    assert 5 < outcomes.count("503") < 35
    assert sim.stats.faults_fired["http"] == outcomes.count("503")


async def test_count_limited_fault_is_spent(sim: Simulator, exchange: Any) -> None:
    handle = sim.inject(FaultKind.RETCODE, retcode=10016, count=2, endpoint="/v5/market/time")
    for _ in range(2):
        with pytest.raises(ccxt.ExchangeError, match="10016"):
            await exchange.fetch_time()
    assert await exchange.fetch_time() is not None
    assert handle.fired == 2 and not handle.active


async def _run_scenario(seed: int) -> tuple[list[str], list[float]]:
    async with Simulator(seed=seed, faults="http@/v5/market/tickers=503:0.3") as sim:
        exchange = ccxt.bybit({**sim.ccxt_config(), "enableRateLimit": False})
        exchange.timeout_on_exit = 0
        try:
            await exchange.load_markets()
            outcomes: list[str] = []
            lasts: list[float] = []
            for _ in range(25):
                try:
                    ticker = await exchange.fetch_ticker("BTC/USDT")
                    outcomes.append("ok")
                    lasts.append(ticker["last"])
                except ccxt.ExchangeNotAvailable:
                    outcomes.append("503")
            return outcomes, lasts
        finally:
            await exchange.close()


async def test_same_seed_replays_faults_and_prices() -> None:
    first = await _run_scenario(7)
    again = await _run_scenario(7)
    other = await _run_scenario(8)
    assert first == again
    assert first != other


async def test_rate_limit_fault_budget_rejects_with_10006() -> None:
    clock = FakeClock()  # the window never rolls over during the test
    async with Simulator(seed=1, clock=clock) as sim:
        exchange = ccxt.bybit({**sim.ccxt_config(), "enableRateLimit": False})
        exchange.timeout_on_exit = 0
        try:
            await exchange.load_markets()
            sim.faults.add("rate_limit@/v5/market/orderbook=3/s")
            results = await asyncio.gather(
                *(exchange.fetch_order_book("BTC/USDT") for _ in range(5)), return_exceptions=True
            )
            errors = [r for r in results if isinstance(r, Exception)]
            assert len(errors) == 2
            assert all(isinstance(e, ccxt.RateLimitExceeded) for e in errors)
            assert sim.violation_count("/v5/market/orderbook") == 2
            assert {v.rule for v in sim.violations} == {"fault#1"}
            clock.advance(1.0)
            assert (await exchange.fetch_order_book("BTC/USDT"))["bids"]
        finally:
            await exchange.close()


async def test_lost_response_spares_rejected_orders(sim: Simulator, exchange: Any) -> None:
    """A one-shot lost_response must hit the order that is booked, not one Bybit rejected."""
    handle = sim.inject("lost_response", endpoint="/v5/order/create", count=1)
    with pytest.raises(ccxt.InsufficientFunds):  # 10 BTC at 60k > 100k USDT: retCode 170131
        await exchange.create_order(
            "BTC/USDT", "limit", "buy", 10, 60_000, {"clientOrderId": "too-big"}
        )
    assert handle.fired == 0 and handle.active and sim.market.orders_created == 0
    with pytest.raises(ccxt.NetworkError):
        await exchange.create_order(
            "BTC/USDT", "limit", "buy", 0.01, 60_000, {"clientOrderId": "meant"}
        )
    assert handle.fired == 1 and not handle.active
    found = await exchange.fetch_open_orders("BTC/USDT", params={"orderLinkId": "meant"})
    assert [o["clientOrderId"] for o in found] == ["meant"]


@pytest.mark.looptime
async def test_late_response_spares_rejected_orders(sim: Simulator, exchange: Any) -> None:
    exchange.timeout = 5_000
    handle = sim.faults.add("late_response@/v5/order/create=30s:next:1")
    with pytest.raises(ccxt.InsufficientFunds):  # 1M USDT > 100k: retCode 170131
        await exchange.create_order("SOL/USDT", "limit", "buy", 10_000, 100)
    assert handle.fired == 0 and handle.active
    with pytest.raises(ccxt.RequestTimeout):
        await exchange.create_order("SOL/USDT", "limit", "buy", 1, 100, {"clientOrderId": "late"})
    assert handle.fired == 1
    assert [o["clientOrderId"] for o in await exchange.fetch_open_orders("SOL/USDT")] == ["late"]


@pytest.mark.looptime
async def test_latency_beyond_recv_window_is_invalid_nonce(
    sim: Simulator, exchange: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As on Bybit: a private request delayed past its recvWindow (5 s) is refused with 10002."""
    loop = asyncio.get_running_loop()
    wall, start = time.time(), loop.time()

    def virtual_wall_ms() -> int:
        return int((wall + loop.time() - start) * 1000)

    # client and server wall clocks follow the virtual loop time, as real clocks would
    monkeypatch.setattr(_server, "_wall_ms", virtual_wall_ms)
    exchange.milliseconds = virtual_wall_ms
    await exchange.fetch_balance()
    sim.faults.add("latency@/v5/account/wallet-balance=5500ms")
    with pytest.raises(ccxt.InvalidNonce, match="10002"):
        await exchange.fetch_balance()
    sim.faults.clear()
    sim.faults.add("latency@/v5/account/wallet-balance=4500ms")
    assert (await exchange.fetch_balance())["USDT"]["total"] == 100_000
    sim.faults.add("latency@public=5500ms")
    assert (await exchange.fetch_ticker("BTC/USDT"))["last"] > 0  # public: just slower
