"""A simulator configured at the bounds of every price and balance still answers valid JSON."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from virtuoso_resilience.simulator import Simulator

BybitCall = Callable[..., Awaitable[tuple[int, Any]]]
"""The ``bybit`` fixture: a signed raw request -> (HTTP status, strict JSON)."""


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    """Prices and balances at their limits: 1e15 and 1e-8."""
    async with Simulator(
        seed=3, prices={"BIG": 1e15, "TINY": 1e-8}, balances={"USDT": 1e15, "BIG": 1e15}
    ) as simulator:
        yield simulator


async def test_extreme_but_valid_configuration_answers_every_read(
    sim: Simulator, bybit: BybitCall
) -> None:
    sim.market.tick(steps=20_000)  # the random walk stays within the price bounds
    assert 1e-8 <= sim.market.price("TINYUSDT") <= 1e15
    assert 1e-8 <= sim.market.price("BIGUSDT") <= 1e15
    reads = [
        ("/v5/market/tickers", "category=spot"),
        ("/v5/market/tickers", "category=linear"),
        ("/v5/market/orderbook", "category=spot&symbol=BIGUSDT&limit=200"),
        ("/v5/market/orderbook", "category=linear&symbol=TINYUSDT&limit=500"),
        ("/v5/market/kline", "category=spot&symbol=BIGUSDT&interval=M&limit=1000"),
        ("/v5/market/kline", "category=linear&symbol=TINYUSDT&interval=1&limit=1000"),
        ("/v5/market/instruments-info", "category=linear"),
        ("/v5/account/wallet-balance", "accountType=UNIFIED"),
    ]
    for path, query in reads:
        status, answer = await bybit("GET", path, query=query)
        assert (status, answer["retCode"]) == (200, 0), (path, answer)
    coins = {c["coin"]: c for c in answer["result"]["list"][0]["coin"]}
    assert coins["BIG"]["walletBalance"] == "1000000000000000"
    assert coins["USDT"]["walletBalance"] == "1000000000000000"
