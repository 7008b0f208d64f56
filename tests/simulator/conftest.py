"""Fixtures: a running simulator on a free loopback port and ccxt clients pointed at it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import ccxt.async_support as ccxt
import pytest

from virtuoso_resilience.simulator import Simulator

ExchangeFactory = Callable[..., Awaitable[Any]]
Eventually = Callable[[Callable[[], bool]], Awaitable[None]]


@pytest.fixture
def eventually() -> Eventually:
    """Wait (a few ms at a time, 5 s at most) until a condition about the server holds."""

    async def wait(predicate: Callable[[], bool]) -> None:
        for _ in range(1000):
            if predicate():
                return
            await asyncio.sleep(0.005)
        raise AssertionError("condition not reached within 5 s")

    return wait


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    async with Simulator(seed=1) as simulator:
        yield simulator


@pytest.fixture
async def make_exchange(sim: Simulator) -> AsyncIterator[ExchangeFactory]:
    """Build ccxt bybit clients against ``sim``; every one is closed at teardown.

    Keyword arguments are merged into the ccxt constructor config;
    ``load=True`` (default) loads the markets first.
    """
    created: list[Any] = []

    async def factory(*, load: bool = True, **overrides: Any) -> Any:
        config = {**sim.ccxt_config(), "enableRateLimit": False, **overrides}
        exchange = ccxt.bybit(config)
        exchange.timeout_on_exit = 0  # ccxt sleeps 250 ms in close() for TLS; loopback is plain
        created.append(exchange)
        if load:
            await exchange.load_markets()
        return exchange

    yield factory
    for exchange in created:
        await exchange.close()


@pytest.fixture
async def exchange(make_exchange: ExchangeFactory) -> Any:
    """A ccxt bybit client with the simulator's credentials and markets loaded."""
    return await make_exchange()
