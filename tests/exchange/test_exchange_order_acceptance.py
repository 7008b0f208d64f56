"""Acceptance: 500 orders through lost answers, 5xx and random latency, none duplicated."""

from __future__ import annotations

import asyncio
from typing import Any

from exchange_venues import Factory, Venue

from virtuoso_resilience.exchange import OrderStatusUnknownError
from virtuoso_resilience.simulator import Simulator

N = 500


async def test_500_orders_exactly_once_under_lost_answers_and_5xx(
    venue: Venue, quiet_sim: Simulator, make_resilient: Factory
) -> None:
    sim = quiet_sim
    # 40 % of the placements fail: with the default 5-in-a-row the orders breaker
    # would open (and reject orders, which is not what this test is about).
    config = venue.preset(order_resolve_timeout=60.0)
    config.orders.failure_threshold = 100
    config.account.failure_threshold = 100  # Binance look-ups share the faulted path
    adapter = await make_resilient(sim, config)
    sim.faults.add(
        f"lost_response@{venue.create_path}=0.3,http@{venue.create_path}=503:0.1,latency=0ms..15ms"
    )

    async def place(i: int) -> Any:
        return await adapter.create_order(
            "BTC/USDT", "limit", "buy", 0.002, 1000.0 + (i % 50) / 100
        )

    results = await asyncio.gather(*(place(i) for i in range(N)), return_exceptions=True)
    sim.faults.clear()

    orders = [r for r in results if isinstance(r, dict)]
    unknown = [r for r in results if isinstance(r, OrderStatusUnknownError)]
    others = [r for r in results if not isinstance(r, dict | OrderStatusUnknownError)]
    assert others == []
    assert len(orders) + len(unknown) == N
    # Each caller got its own order, once: distinct exchange ids and client ids.
    assert len({o["id"] for o in orders}) == len(orders)
    client_ids = {o["clientOrderId"] for o in orders} | {e.client_order_id for e in unknown}
    assert len(client_ids) == N
    # The exchange holds exactly N orders: nothing sent twice, nothing lost.
    assert sim.stats.orders_created == N
    # What stayed unknown is pending and present exactly once on the exchange.
    assert {p.client_order_id for p in adapter.pending_orders()} == {
        e.client_order_id for e in unknown
    }
    for error in unknown:
        found = await adapter.create_order(
            "BTC/USDT", "limit", "buy", 0.002, 1000.0, {"clientOrderId": error.client_order_id}
        )
        assert found["clientOrderId"] == error.client_order_id
    assert sim.stats.orders_created == N
    fired = sim.stats.faults_fired
    assert fired.get("lost_response", 0) > N * 0.15 and fired.get("http", 0) > N * 0.03
