"""Hostile conditions: huge error messages, long outages, secrets, odd arguments."""

from __future__ import annotations

import asyncio

import ccxt.async_support as ccxt
import pytest
from exchange_venues import Factory

from virtuoso_resilience import BulkheadFullError, CircuitOpenError
from virtuoso_resilience.clock import FakeClock
from virtuoso_resilience.exchange import OrderStatusUnknownError, create_bybit_resilient_config
from virtuoso_resilience.simulator import Fault, FaultKind, Simulator

HUGE = "secret-ish " * 90  # the simulator allows retMsgs up to 1000 characters


async def test_a_long_error_message_never_reaches_our_errors_or_state(
    bybit_sim: Simulator, make_resilient: Factory
) -> None:
    sim = bybit_sim
    clock = FakeClock(autojump=True)
    adapter = await make_resilient(
        sim, create_bybit_resilient_config(order_resolve_timeout=2.0), clock=clock
    )
    sim.faults.add("lost_response@/v5/order/create=next:1")
    sim.faults.add(
        Fault(FaultKind.RETCODE, endpoint="/v5/order/realtime", retcode=10016, message=HUGE)
    )
    with pytest.raises(OrderStatusUnknownError) as caught:
        await adapter.create_order("BTC/USDT", "limit", "buy", 0.002, 1000.0)
    assert len(str(caught.value)) < 1000
    assert "secret-ish" not in str(caught.value)
    text = repr(adapter) + repr(adapter.snapshot()) + repr(adapter.pending_orders())
    assert "secret-ish" not in text and len(text) < 50_000


async def test_an_outage_thousands_of_calls_long_stays_cheap(
    bybit_sim: Simulator, make_resilient: Factory
) -> None:
    sim = bybit_sim
    clock = FakeClock(autojump=True)
    adapter = await make_resilient(
        sim, create_bybit_resilient_config(ticker_max_staleness=None), clock=clock
    )
    with sim.faults.add("http@/v5/market/tickers=503"):
        before = sim.request_count("/v5/market/tickers")
        results = await asyncio.gather(
            *(adapter.fetch_ticker("BTC/USDT") for _ in range(3000)), return_exceptions=True
        )
        sent = sim.request_count("/v5/market/tickers") - before
    # the exchange's 503, the open breaker, or load shed by the full bulkhead
    kinds = {type(r).__name__ for r in results}
    assert kinds <= {"ExchangeNotAvailable", "CircuitOpenError", "BulkheadFullError"}, kinds
    assert sum(isinstance(r, CircuitOpenError | BulkheadFullError) for r in results) > 2500
    assert sent < 200  # the breaker, not the exchange, answered the rest
    assert adapter.breaker("market_data").state.value == "open"


async def test_api_key_and_secret_never_shown(
    bybit_sim: Simulator, make_resilient: Factory
) -> None:
    sim = bybit_sim
    sim.add_api_key("k3y-very-private", "s3cret-very-private")
    adapter = await make_resilient(sim, apiKey="k3y-very-private", secret="s3cret-very-private")
    await adapter.fetch_balance()
    with sim.faults.add("http@/v5/account/wallet-balance=400"), pytest.raises(ccxt.BaseError):
        await adapter.fetch_balance()
    text = repr(adapter) + repr(adapter.snapshot()) + repr(adapter.limiter)
    assert "k3y-very-private" not in text and "s3cret-very-private" not in text
    assert "key:" in adapter.limiter.name  # named by the key's fingerprint


@pytest.mark.parametrize("params", [["clientOrderId", "x"], "params", 5])
async def test_create_order_params_must_be_a_dict(
    bybit_sim: Simulator, make_resilient: Factory, params: object
) -> None:
    adapter = await make_resilient(bybit_sim)
    with pytest.raises(TypeError, match="params must be a dict"):
        await adapter.create_order("BTC/USDT", "limit", "buy", 0.002, 1000.0, params)  # type: ignore[arg-type]
    assert adapter.pending_orders() == []
