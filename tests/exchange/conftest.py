"""Fixtures: a simulator on a free loopback port and resilient ccxt clients on it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import ccxt.async_support as ccxt
import pytest

from virtuoso_resilience.clock import Clock, MONOTONIC
from virtuoso_resilience.exchange import (
    ExchangeResilienceConfig,
    ResilientExchange,
    create_bybit_resilient_config,
)
from virtuoso_resilience.simulator import Simulator

Factory = Callable[..., Awaitable[ResilientExchange[Any]]]


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    async with Simulator(seed=7) as simulator:
        yield simulator


@pytest.fixture
async def quiet_sim() -> AsyncIterator[Simulator]:
    """A simulator without Bybit's own budgets (for tests about something else)."""
    async with Simulator(seed=11, rate_limits=False) as simulator:
        yield simulator


def _client(sim: Simulator, overrides: dict[str, Any]) -> Any:
    # rateLimit 1 ms: ccxt's per-endpoint costs still weigh, but tests stay quick.
    exchange = ccxt.bybit({**sim.ccxt_config(), "rateLimit": 1, **overrides})
    exchange.timeout_on_exit = 0  # ccxt sleeps 250 ms in close() for TLS; loopback is plain
    return exchange


@pytest.fixture
async def make_resilient() -> AsyncIterator[Factory]:
    """``await make_resilient(sim, config=None, clock=MONOTONIC, load=True, **ccxt)``."""
    created: list[ResilientExchange[Any]] = []

    async def factory(
        sim: Simulator,
        config: ExchangeResilienceConfig | None = None,
        *,
        clock: Clock = MONOTONIC,
        load: bool = True,
        **overrides: Any,
    ) -> ResilientExchange[Any]:
        adapter = ResilientExchange(
            _client(sim, overrides), config or create_bybit_resilient_config(), clock=clock
        )
        created.append(adapter)
        if load:
            await adapter.load_markets()
        return adapter

    yield factory
    for adapter in created:
        await adapter.close()
