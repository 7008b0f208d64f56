"""Fixtures: a simulator (Bybit or Binance dialect) on a free loopback port and
resilient ccxt clients (the real ``bybit`` / ``binance`` classes) on it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from exchange_venues import VENUES, Factory, Venue, client_for

from virtuoso_resilience.clock import MONOTONIC, Clock
from virtuoso_resilience.exchange import ExchangeResilienceConfig, ResilientExchange
from virtuoso_resilience.simulator import Simulator


@pytest.fixture(params=sorted(VENUES))
def venue(request: pytest.FixtureRequest) -> Venue:
    return VENUES[request.param]


@pytest.fixture
def bybit() -> Venue:
    return VENUES["bybit"]


@pytest.fixture
async def sim(venue: Venue) -> AsyncIterator[Simulator]:
    async with Simulator(seed=7, dialect=venue.name) as simulator:
        yield simulator


@pytest.fixture
async def quiet_sim(venue: Venue) -> AsyncIterator[Simulator]:
    """A simulator without the venue's own budgets (for tests about something else)."""
    async with Simulator(seed=11, rate_limits=False, dialect=venue.name) as simulator:
        yield simulator


@pytest.fixture
async def bybit_sim() -> AsyncIterator[Simulator]:
    async with Simulator(seed=5) as simulator:
        yield simulator


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
            client_for(sim, **overrides), config or VENUES[sim.dialect].preset(), clock=clock
        )
        created.append(adapter)
        if load:
            await adapter.load_markets()
        return adapter

    yield factory
    for adapter in created:
        await adapter.close()
