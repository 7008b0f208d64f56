"""Degradation: clock skew, maintenance, stale data, and the health checks."""

from __future__ import annotations

import asyncio

import ccxt.async_support as ccxt
import pytest
from exchange_venues import Factory, Venue

from virtuoso_resilience import CircuitOpenError, HealthService, ServiceStatus
from virtuoso_resilience.clock import FakeClock
from virtuoso_resilience.exchange import (
    MaintenanceError,
    ResilientExchange,
    StaleDict,
    StaleList,
    create_bybit_resilient_config,
)
from virtuoso_resilience.simulator import Simulator


async def _until(predicate: object) -> None:
    for _ in range(2000):
        if callable(predicate) and predicate():
            return
        await asyncio.sleep(0.005)
    raise AssertionError("condition not reached within 10 s")


async def test_clock_skew_resyncs_once_and_never_trips(
    venue: Venue, sim: Simulator, make_resilient: Factory
) -> None:
    adapter = await make_resilient(sim)
    adapter.exchange.options["timeDifference"] = -30_000  # our clock 30 s ahead of theirs
    balance = await adapter.fetch_balance()
    assert balance["USDT"]["total"] == 100_000.0
    assert adapter.snapshot()["time_resyncs"] == 1
    assert abs(adapter.exchange.options["timeDifference"]) < 5_000
    breaker = adapter.breaker("account")
    assert breaker.state.value == "closed"
    assert breaker.snapshot().failures == 0


async def test_persistent_clock_skew_is_raised_after_one_resync(
    bybit_sim: Simulator, make_resilient: Factory
) -> None:
    sim = bybit_sim
    config = create_bybit_resilient_config()
    config.account.failure_threshold = 1
    adapter = await make_resilient(sim, config)
    with sim.faults.add("retcode@/v5/account/wallet-balance=10002"):
        for _ in range(3):
            with pytest.raises(ccxt.InvalidNonce):
                await adapter.fetch_balance()
    assert sim.request_count("/v5/account/wallet-balance") == 6  # each call: try, resync, try
    assert adapter.breaker("account").state.value == "closed"  # our clock, not their failure


async def test_maintenance_pauses_calls_and_polls_until_it_ends(
    venue: Venue, sim: Simulator, make_resilient: Factory
) -> None:
    clock = FakeClock(autojump=True)
    adapter = await make_resilient(sim, venue.preset(maintenance_poll_max=1.0), clock=clock)
    guard = adapter.maintenance
    handle = sim.faults.add("maintenance=on")
    with pytest.raises(MaintenanceError) as caught:
        await adapter.fetch_ticker("BTC/USDT")
    assert guard.active and caught.value.exchange_id == venue.name
    requests = sim.request_count(venue.ticker_path)
    with pytest.raises(MaintenanceError):
        await adapter.fetch_ticker("BTC/USDT")  # paused: not sent
    assert sim.request_count(venue.ticker_path) == requests
    assert adapter.breaker("market_data").state.value == "closed"  # no trip, no retry loop
    handle.remove()
    await _until(lambda: not guard.active)
    assert guard.polls >= 1
    assert (await adapter.fetch_ticker("BTC/USDT"))["symbol"] == "BTC/USDT"


async def test_stale_ticker_served_during_maintenance(
    bybit_sim: Simulator, make_resilient: Factory
) -> None:
    sim = bybit_sim
    adapter = await make_resilient(sim, clock=FakeClock(autojump=True))
    fresh = await adapter.fetch_ticker("BTC/USDT")
    with sim.faults.add("maintenance=on"):
        served = await adapter.fetch_ticker("BTC/USDT")
        assert isinstance(served, StaleDict) and served["last"] == fresh["last"]
        assert adapter.maintenance.active
        with pytest.raises(MaintenanceError):
            await adapter.fetch_order_book("BTC/USDT")  # nothing cached: the caller is told


async def test_maintenance_with_known_end_and_waiting_callers(
    bybit_sim: Simulator, make_resilient: Factory
) -> None:
    sim = bybit_sim
    config = create_bybit_resilient_config(
        maintenance_max_wait=30.0, maintenance_poll_base=0.1, maintenance_poll_max=0.5
    )
    adapter = await make_resilient(sim, config)
    handle = sim.faults.add("maintenance=20s")
    waiting = asyncio.ensure_future(adapter.fetch_ticker("BTC/USDT"))
    await _until(lambda: adapter.maintenance.active)
    end = adapter.maintenance.expected_end
    assert end is not None
    assert not waiting.done()
    handle.remove()
    ticker = await waiting  # resumed when the poller saw the end
    assert ticker["symbol"] == "BTC/USDT"


async def test_stale_ticker_served_with_its_age_then_refused(
    venue: Venue, sim: Simulator, make_resilient: Factory
) -> None:
    clock = FakeClock(autojump=True)
    adapter = await make_resilient(sim, venue.preset(ticker_max_staleness=5.0), clock=clock)
    fresh = await adapter.fetch_ticker("BTC/USDT")
    assert not isinstance(fresh, StaleDict)
    with sim.faults.add(f"http@{venue.ticker_path}=503"):
        clock.advance(2.0)
        stale = await adapter.fetch_ticker("BTC/USDT")
        assert isinstance(stale, StaleDict) and stale.stale
        assert stale["last"] == fresh["last"] and stale["staleAge"] == stale.age
        assert 2.0 <= stale.age <= 5.0
        assert adapter.data_age("fetch_ticker", "BTC/USDT") == pytest.approx(stale.age, abs=1.0)
        clock.advance(5.0)
        # the call's own error: the 503, or the breaker the 503s opened
        with pytest.raises((ccxt.BaseError, CircuitOpenError)) as caught:
            await adapter.fetch_ticker("BTC/USDT")
        assert any("max_staleness" in note for note in caught.value.__notes__)


async def test_stale_candles_and_business_errors_never_served(
    bybit_sim: Simulator, make_resilient: Factory
) -> None:
    sim = bybit_sim
    clock = FakeClock(autojump=True)
    adapter = await make_resilient(sim, clock=clock)
    await adapter.fetch_ticker("BTC/USDT")
    # A refusal (a parameter error) is an answer, not an outage: never served from the cache.
    with sim.faults.add("retcode@/v5/market/tickers=10001:next:1"), pytest.raises(ccxt.BadRequest):
        await adapter.fetch_ticker("BTC/USDT")
    candles = await adapter.fetch_ohlcv("BTC/USDT", "1m", limit=5)
    with sim.faults.add("reset@/v5/market/kline=always"):
        again = await adapter.fetch_ohlcv("BTC/USDT", "1m", limit=5)
        assert isinstance(again, StaleList) and list(again) == candles
        with pytest.raises((ccxt.BaseError, CircuitOpenError)):  # nothing cached for these
            await adapter.fetch_ohlcv("BTC/USDT", "5m", limit=5)


async def test_health_checks_registered_and_passing(
    sim: Simulator, make_resilient: Factory
) -> None:
    adapter = await make_resilient(sim)
    service = HealthService()
    checks = ResilientExchange.of(adapter).register_health(service)
    names = {check.name for check in checks}
    prefix = f"exchange.{sim.dialect}"
    assert {f"{prefix}.ping", f"{prefix}.rate_limit", f"{prefix}.maintenance"} <= names
    assert f"{prefix}.breaker.orders" in names
    report = await service.run_checks()
    assert report.status is ServiceStatus.HEALTHY
    adapter.breaker("orders").force_open()
    report = await service.run_checks()
    assert report.checks[f"{prefix}.breaker.orders"].status is ServiceStatus.DEGRADED


async def test_health_registered_at_creation(sim: Simulator) -> None:
    from exchange_venues import client_for

    from virtuoso_resilience.exchange import create_resilient_exchange

    service = HealthService()
    exchange = create_resilient_exchange(client_for(sim), health=service)
    try:
        report = await service.run_checks()
        assert f"exchange.{sim.dialect}.ping" in report.checks
        assert report.checks[f"exchange.{sim.dialect}.ping"].status is ServiceStatus.HEALTHY
    finally:
        await exchange.close()
