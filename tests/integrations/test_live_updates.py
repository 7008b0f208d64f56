"""The seed's "Configuration Updates" on running components: next call / next run.

A real ccxt bybit client talks to the simulator over loopback HTTP; the
health service runs on virtual time.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any

import ccxt.async_support as ccxt
import pytest

from virtuoso_resilience import (
    CircuitOpenError,
    CircuitState,
    FakeClock,
    ResilienceConfiguration,
    ResilienceManager,
    ResilienceRegistry,
    SimpleHealthCheck,
    get_circuit_breaker,
    set_default_registry,
)
from virtuoso_resilience.simulator import Simulator

TICKERS = "/v5/market/tickers"


@pytest.fixture
def registry() -> Iterator[ResilienceRegistry]:
    # No backoff to sleep out: retries follow at once.
    registry = ResilienceRegistry(ResilienceConfiguration(default_base_delay=0.0))
    previous = set_default_registry(registry)
    try:
        yield registry
    finally:
        set_default_registry(previous)


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    async with Simulator(seed=3, faults=f"http@{TICKERS}=503") as simulator:
        yield simulator


@pytest.fixture
async def exchange(sim: Simulator) -> AsyncIterator[Any]:
    client = ccxt.bybit({**sim.ccxt_config(), "enableRateLimit": False})
    try:
        yield client
    finally:
        await client.close()


async def _fail(call: Any) -> None:
    with pytest.raises(ccxt.ExchangeNotAvailable):
        await call


async def test_breaker_failure_threshold_takes_effect_on_the_next_call(
    registry: ResilienceRegistry, sim: Simulator, exchange: Any
) -> None:
    breaker = get_circuit_breaker("exchange_api")
    assert breaker.config.failure_threshold == 5
    for _ in range(4):
        await _fail(breaker.call_async(exchange.fetch_ticker, "BTC/USDT"))
    # Update circuit breaker thresholds (on the running breaker, 4 failures in)
    circuit_breaker = get_circuit_breaker("exchange_api")
    circuit_breaker.config.failure_threshold = 8
    for _ in range(3):  # failures 5..7: the old threshold would have opened it
        await _fail(breaker.call_async(exchange.fetch_ticker, "BTC/USDT"))
        assert breaker.state is CircuitState.CLOSED
    await _fail(breaker.call_async(exchange.fetch_ticker, "BTC/USDT"))  # the 8th
    assert breaker.state is CircuitState.OPEN
    sent = sim.request_count(TICKERS)
    with pytest.raises(CircuitOpenError):
        await breaker.call_async(exchange.fetch_ticker, "BTC/USDT")
    assert sim.request_count(TICKERS) == sent  # rejected without a request


async def test_retry_max_attempts_takes_effect_on_the_next_call(
    registry: ResilienceRegistry, sim: Simulator, exchange: Any
) -> None:
    retry_policy = registry.retry_policy("exchange_api")
    assert retry_policy.config.max_attempts == 4
    before = sim.request_count(TICKERS)
    await _fail(retry_policy.call_async(exchange.fetch_ticker, "BTC/USDT"))
    assert sim.request_count(TICKERS) - before == 4
    # Adjust retry policy
    retry_policy.config.max_attempts = 5
    before = sim.request_count(TICKERS)
    await _fail(retry_policy.call_async(exchange.fetch_ticker, "BTC/USDT"))
    assert sim.request_count(TICKERS) - before == 5
    retry_policy.config.max_attempts = 1
    before = sim.request_count(TICKERS)
    await _fail(retry_policy.call_async(exchange.fetch_ticker, "BTC/USDT"))
    assert sim.request_count(TICKERS) - before == 1


async def _settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0)


async def test_health_check_interval_takes_effect_on_the_next_run() -> None:
    clock = FakeClock()
    manager = ResilienceManager(registry=ResilienceRegistry(clock=clock))
    runs: list[float] = []

    def ping() -> bool:
        runs.append(clock.now())
        return True

    manager.health.register_health_check(
        SimpleHealthCheck("exchange", ping, manager.registry.health_check_config())
    )
    await manager.initialize()  # the running service
    try:
        await _settle()
        assert runs == [0.0]
        health_check = manager.health.get_check("exchange")
        assert health_check.config.interval == 60.0
        # Modify health check interval (while the monitor waits for t=60)
        health_check.config.interval = 30.0
        await _settle()
        clock.advance(30.0)
        await _settle()
        assert runs == [0.0, 30.0]
        clock.advance(30.0)
        await _settle()
        assert runs == [0.0, 30.0, 60.0]
    finally:
        await manager.shutdown()


async def test_configuration_default_interval_reaches_running_registry_checks() -> None:
    clock = FakeClock()
    registry = ResilienceRegistry(clock=clock)
    registry.circuit_breaker("exchange_api")
    manager = ResilienceManager(registry=registry)
    await manager.initialize()
    try:
        check = manager.health.get_check("circuit_breaker.exchange_api")
        assert check.config.interval == 60.0
        manager.config.default_health_check_interval = 30.0
        assert check.config.interval == 30.0
        await _settle()
        clock.advance(30.0)
        await _settle()
        report = manager.health.report().checks["circuit_breaker.exchange_api"]
        assert report.metrics.total_runs == 2
    finally:
        await manager.shutdown()
