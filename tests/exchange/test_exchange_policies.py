"""Each method group's breaker, retry, timeout and bulkhead, against the simulator."""

from __future__ import annotations

import asyncio

import ccxt.async_support as ccxt
import pytest
from exchange_venues import Factory, Venue

from virtuoso_resilience import CircuitOpenError, ResilienceTimeoutError
from virtuoso_resilience.clock import FakeClock
from virtuoso_resilience.exchange import (
    ExchangeResilienceConfig,
    OrderState,
    create_bybit_resilient_config,
)
from virtuoso_resilience.simulator import Simulator


async def test_transient_read_failures_are_retried(
    venue: Venue, sim: Simulator, make_resilient: Factory
) -> None:
    adapter = await make_resilient(sim, clock=FakeClock(autojump=True))
    with sim.faults.add(f"http@{venue.ticker_path}=503:next:2") as handle:
        ticker = await adapter.fetch_ticker("BTC/USDT")
    assert ticker["symbol"] == "BTC/USDT" and handle.fired == 2


async def test_business_errors_are_not_retried_and_never_trip(
    sim: Simulator, make_resilient: Factory
) -> None:
    config = sim_preset(sim)
    config.market_data.failure_threshold = 1
    adapter = await make_resilient(sim, config)
    requests = sim.request_count()
    for _ in range(3):
        with pytest.raises(ccxt.BadSymbol):
            await adapter.fetch_ticker("NOPE/USDT")
    assert sim.request_count() == requests  # ccxt refuses it locally: nothing sent
    assert adapter.breaker("market_data").state.value == "closed"


async def test_outage_opens_the_group_breaker_only(
    bybit_sim: Simulator, make_resilient: Factory
) -> None:
    sim = bybit_sim
    config = create_bybit_resilient_config()
    config.market_data.failure_threshold = 3
    config.market_data.max_attempts = 1
    adapter = await make_resilient(sim, config)
    with sim.faults.add("http@/v5/market/tickers=502"):
        for _ in range(3):
            with pytest.raises(ccxt.ExchangeNotAvailable):
                await adapter.fetch_ticker("BTC/USDT")
        requests = sim.request_count("/v5/market/tickers")
        with pytest.raises(CircuitOpenError):
            await adapter.fetch_ticker("BTC/USDT")
        assert sim.request_count("/v5/market/tickers") == requests  # rejected locally
        # the other groups are untouched: the account still answers
        assert (await adapter.fetch_balance())["USDT"]["total"] == 100_000.0
    assert adapter.breaker("account").state.value == "closed"


async def test_transfers_are_never_retried_after_an_ambiguous_outcome(
    bybit_sim: Simulator, make_resilient: Factory
) -> None:
    sim = bybit_sim
    adapter = await make_resilient(sim, clock=FakeClock(autojump=True))
    path = "/v5/asset/transfer/inter-transfer"
    with sim.faults.add(f"reset@{path}=always"), pytest.raises(ccxt.NetworkError):
        await adapter.transfer("USDT", 10.0, "spot", "funding")
    assert sim.request_count(path) == 1


async def test_attempt_timeout_bounds_a_hanging_read(
    bybit_sim: Simulator, make_resilient: Factory
) -> None:
    sim = bybit_sim
    config = create_bybit_resilient_config()
    adapter = await make_resilient(sim, config)
    config.market_data.timeout = 0.2  # live: applies from the next attempt
    config.market_data.max_attempts = 1
    with sim.faults.add("hang@/v5/market/tickers=next:1"), pytest.raises(ResilienceTimeoutError):
        await adapter.fetch_ticker("BTC/USDT")
    assert (await adapter.fetch_ticker("BTC/USDT"))["symbol"] == "BTC/USDT"


async def test_bulkhead_caps_concurrent_calls_per_group(
    bybit_sim: Simulator, make_resilient: Factory
) -> None:
    sim = bybit_sim
    config = create_bybit_resilient_config()
    config.market_data.max_concurrent = 2
    adapter = await make_resilient(sim, config)
    with sim.faults.add("latency@/v5/market/tickers=50ms"):
        await asyncio.gather(*(adapter.fetch_ticker("BTC/USDT") for _ in range(6)))
    snapshot = adapter.bulkhead("market_data").snapshot()
    assert snapshot["peak_active"] == 2 and snapshot["waited"] >= 4


async def test_cancelled_placement_stays_pending_as_unknown(
    bybit_sim: Simulator, make_resilient: Factory
) -> None:
    sim = bybit_sim
    adapter = await make_resilient(sim)
    sim.faults.add("late_response@/v5/order/create=5s:next:1")
    task = asyncio.ensure_future(
        adapter.create_order("BTC/USDT", "limit", "buy", 0.002, 1000.0, {"orderLinkId": "c-1"})
    )
    for _ in range(400):  # until the exchange has booked it (its answer is late)
        if sim.stats.orders_created:
            break
        await asyncio.sleep(0.005)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    [pending] = adapter.pending_orders()
    assert pending.client_order_id == "c-1" and pending.state is OrderState.UNKNOWN
    order = await adapter.create_order(
        "BTC/USDT", "limit", "buy", 0.002, 1000.0, {"orderLinkId": "c-1"}
    )
    assert order["clientOrderId"] == "c-1" and sim.stats.orders_created == 1


def sim_preset(sim: Simulator) -> ExchangeResilienceConfig:
    from exchange_venues import VENUES

    return VENUES[sim.dialect].preset()


async def test_group_config_changes_reach_breaker_and_bulkhead(
    bybit_sim: Simulator, make_resilient: Factory
) -> None:
    config = create_bybit_resilient_config()
    adapter = await make_resilient(bybit_sim, config)
    config.orders.failure_threshold = 9
    config.orders.recovery_timeout = 4.0
    config.market_data.max_concurrent = 3
    assert adapter.breaker("orders").config.failure_threshold == 9
    assert adapter.breaker("orders").config.timeout == 4.0
    assert adapter.bulkhead("market_data").config.max_concurrent == 3
    with pytest.raises(ValueError, match="failure_threshold"):
        config.orders.failure_threshold = 0  # refused, old value kept
    assert adapter.breaker("orders").config.failure_threshold == 9
