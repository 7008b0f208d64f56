"""Hostile review of component names: the registry, pools and health checks."""

from __future__ import annotations

import json
from typing import Any

import pytest

from virtuoso_resilience import CircuitBreaker, ResilienceRegistry
from virtuoso_resilience.clock import FakeClock
from virtuoso_resilience.errors import ConfigurationError
from virtuoso_resilience.health import SimpleHealthCheck
from virtuoso_resilience.pools import ConnectionPool
from virtuoso_resilience.registry import CIRCUIT_BREAKERS

BAD_NAMES: list[Any] = ["a\r\nb", "line\nforged", "nul\x00", "esc\x1b[31m", "", "n" * 201]
NOT_STRINGS: list[Any] = [None, 5, ["a"], b"bytes"]


@pytest.mark.parametrize("name", BAD_NAMES + NOT_STRINGS, ids=repr)
def test_pool_name_must_be_printable(name: Any) -> None:
    """Defect: a pool accepted any name, CR/LF included: names go into log
    lines and metric labels (a forged log line)."""
    with pytest.raises(ConfigurationError, match="printable") as caught:
        ConnectionPool(name)
    assert "name" in str(caught.value)


@pytest.mark.parametrize("name", BAD_NAMES + NOT_STRINGS, ids=repr)
def test_health_check_name_must_be_printable(name: Any) -> None:
    with pytest.raises(ConfigurationError, match="printable"):
        SimpleHealthCheck(name, lambda: True)


@pytest.mark.parametrize("name", BAD_NAMES + NOT_STRINGS, ids=repr)
async def test_registry_names_must_be_printable(name: Any) -> None:
    """Defect: ``registry.circuit_breaker(["a"])`` was a bare TypeError
    (unhashable) and ``register``/``connection_pool`` took control characters."""
    registry = ResilienceRegistry(clock=FakeClock())
    with pytest.raises(ConfigurationError, match="printable"):
        registry.circuit_breaker(name)
    with pytest.raises(ConfigurationError, match="printable"):
        registry.connection_pool(name)
    with pytest.raises(ConfigurationError, match="printable"):
        registry.rate_limiter(name, rate=1.0, capacity=1.0)
    with pytest.raises(ConfigurationError, match="printable"):
        registry.register("caches", name, registry.circuit_breaker("real"))
    with pytest.raises(ConfigurationError, match="printable"):
        registry.register(name, "x", registry.circuit_breaker("real"))
    await registry.aclose()


async def test_a_breaker_is_registered_under_its_own_name_only() -> None:
    """Defect: one breaker could be registered under a second name: two
    health checks and two snapshot entries for one breaker, and a registry
    name that is not the one in its logs and metrics."""
    registry = ResilienceRegistry(clock=FakeClock())
    breaker = registry.circuit_breaker("bybit")
    with pytest.raises(ConfigurationError, match="named 'bybit'"):
        registry.register(CIRCUIT_BREAKERS, "binance", breaker)
    other = CircuitBreaker("okx")
    with pytest.raises(ConfigurationError, match="named 'okx'"):
        registry.register(CIRCUIT_BREAKERS, "kraken", other)
    assert list(registry.breakers) == ["bybit"]
    assert registry.register(CIRCUIT_BREAKERS, "okx", other) is other
    assert sorted(registry.health.checks) == sorted(
        name for name in registry.health.checks if "kraken" not in name
    )
    json.dumps(registry.snapshot(), allow_nan=False)
    await registry.aclose()


async def test_ordinary_names_still_work() -> None:
    registry = ResilienceRegistry(clock=FakeClock())
    for name in ("exchange_api", "bybit:linear", "név ünicode", "a" * 200, " spaced "):
        assert registry.circuit_breaker(name).name == name
        assert registry.connection_pool(name).name == name
    await registry.aclose()
