"""ResilienceRegistry: built from a ResilienceConfiguration, one generic component store."""

from __future__ import annotations

import gc
import json
import weakref
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

import virtuoso_resilience
from virtuoso_resilience import (
    CircuitBreaker,
    CircuitBreakerConfig,
    CircuitOpenError,
    CircuitState,
    ConfigurationError,
    ConnectionPool,
    FakeClock,
    PoolConfig,
    ResilienceConfiguration,
    ResilienceRegistry,
    ServiceStatus,
    circuit_breaker,
    get_circuit_breaker,
    get_connection_pool,
    get_health_service,
    set_default_registry,
)
from virtuoso_resilience.registry import CIRCUIT_BREAKERS, CONNECTION_POOLS, PIPELINES


async def down() -> None:
    raise ConnectionError("exchange unreachable")


async def ok(value: int = 1) -> int:
    return value


async def fail_times(registry: ResilienceRegistry, name: str, n: int) -> CircuitBreaker:
    breaker = registry.circuit_breaker(name)
    for _ in range(n):
        with pytest.raises(ConnectionError):
            await breaker.call_async(down)
    return breaker


# ---------------------------------------------------------------------------
# Every field of ResilienceConfiguration has an effect


async def _failure_threshold(registry: ResilienceRegistry) -> Any:
    breaker = registry.circuit_breaker("b")
    failures = 0
    while breaker.state is CircuitState.CLOSED:
        with pytest.raises(ConnectionError):
            await breaker.call_async(down)
        failures += 1
    return failures


async def _success_threshold(registry: ResilienceRegistry) -> Any:
    breaker = await fail_times(registry, "b", registry.config.default_failure_threshold)
    clock = registry.clock
    assert isinstance(clock, FakeClock)
    clock.advance(registry.config.default_circuit_timeout)
    states = []
    for _ in range(4):
        await breaker.call_async(ok)
        states.append(breaker.state.value)
    return states


async def _circuit_timeout(registry: ResilienceRegistry) -> Any:
    breaker = await fail_times(registry, "b", registry.config.default_failure_threshold)
    with pytest.raises(CircuitOpenError) as info:
        await breaker.call_async(ok)
    return info.value.retry_after


async def _max_retries(registry: ResilienceRegistry) -> Any:
    calls = 0

    async def flaky() -> None:
        nonlocal calls
        calls += 1
        raise ConnectionError("reset by peer")

    with pytest.raises(ConnectionError):
        await registry.retry_policy("r", idempotent=True).call_async(flaky)
    return calls


async def _retry_field(field: str) -> Callable[[ResilienceRegistry], Awaitable[Any]]:
    async def probe(registry: ResilienceRegistry) -> Any:
        return getattr(registry.retry_policy("r").config, field)

    return probe


async def _pool_limits(registry: ResilienceRegistry) -> Any:
    pool = registry.connection_pool("p")
    try:
        _ = pool.session  # the limits are fixed when the session is made
        return pool.limits
    finally:
        await pool.close()


async def _connection_timeout(registry: ResilienceRegistry) -> Any:
    pool = registry.connection_pool("p")
    try:
        return pool.session.timeout.sock_connect
    finally:
        await pool.close()


async def _health_interval(registry: ResilienceRegistry) -> Any:
    registry.circuit_breaker("b")
    registry.connection_pool("p")
    checks = registry.health.checks
    return sorted((name, check.config.interval) for name, check in checks.items())


async def _health_enabled(registry: ResilienceRegistry) -> Any:
    registry.circuit_breaker("b")
    await registry.start()
    running = registry.health.running
    await registry.aclose()
    return running


async def _pipeline_order(registry: ResilienceRegistry) -> Any:
    return registry.pipeline("x").order


async def _call_timeout(registry: ResilienceRegistry) -> Any:
    pipe = registry.pipeline("x")  # a timeout layer only when the field is set
    if pipe.timeout is None:
        return None
    assert pipe.timeout is registry.timeout("x")
    return pipe.timeout.snapshot()["seconds"]


async def _max_concurrent(registry: ResilienceRegistry) -> Any:
    pipe = registry.pipeline("x")
    if pipe.bulkhead is None:
        return None
    assert pipe.bulkhead is registry.bulkhead("x")
    return pipe.bulkhead.snapshot()["max_concurrent"]


async def _rate(registry: ResilienceRegistry) -> Any:
    pipe = registry.pipeline("x")
    if pipe.rate_limiter is None:
        return (None, None)
    assert pipe.rate_limiter is registry.rate_limiter("x")
    snap = pipe.rate_limiter.snapshot()
    return (snap["rate"], snap["capacity"])


BASE_ORDER = ("retry", "circuit_breaker")

# field -> (settings, probe, what the defaults give, what the settings give)
EFFECTS: dict[str, tuple[dict[str, Any], Any, Any, Any]] = {
    "default_failure_threshold": (
        {"default_failure_threshold": 7},
        _failure_threshold,
        5,
        7,
    ),
    "default_success_threshold": (
        {"default_success_threshold": 2},
        _success_threshold,
        ["half_open", "half_open", "closed", "closed"],
        ["half_open", "closed", "closed", "closed"],
    ),
    "default_circuit_timeout": ({"default_circuit_timeout": 7.5}, _circuit_timeout, 60.0, 7.5),
    "default_max_retries": ({"default_max_retries": 1}, _max_retries, 4, 2),
    "default_base_delay": ({"default_base_delay": 2.5}, "base_delay", 1.0, 2.5),
    "default_max_delay": ({"default_max_delay": 5.0}, "max_delay", 30.0, 5.0),
    "default_retry_max_elapsed": ({"default_retry_max_elapsed": 20.0}, "max_elapsed", None, 20.0),
    "default_max_connections": (
        {"default_max_connections": 30},
        _pool_limits,
        (50, 20),
        (30, 20),
    ),
    "default_max_connections_per_host": (
        {"default_max_connections_per_host": 0},
        _pool_limits,
        (50, 20),
        (50, 0),
    ),
    "default_connection_timeout": (
        {"default_connection_timeout": 2.0},
        _connection_timeout,
        10.0,
        2.0,
    ),
    "default_health_check_interval": (
        {"default_health_check_interval": 15.0},
        _health_interval,
        [("circuit_breaker.b", 60.0), ("pool.p", 60.0)],
        [("circuit_breaker.b", 15.0), ("pool.p", 15.0)],
    ),
    "enable_health_checks": ({"enable_health_checks": False}, _health_enabled, True, False),
    "default_call_timeout": ({"default_call_timeout": 2.5}, _call_timeout, None, 2.5),
    "default_max_concurrent": ({"default_max_concurrent": 4}, _max_concurrent, None, 4),
    "default_rate_limit": (
        {"default_rate_limit": 5.0},
        _rate,
        (None, None),
        (5.0, 5.0),  # without a burst: one second's worth
    ),
    "default_rate_limit_burst": (
        {"default_rate_limit": 5.0, "default_rate_limit_burst": 12},
        _rate,
        (None, None),
        (5.0, 12.0),
    ),
}


# Read by an adapter-layer package the registry cannot import: their effect
# is tested there (tests/shared/test_shared_config.py, open_shared_state).
OUTSIDE_THE_REGISTRY = {"shared_state_url", "order_journal_url"}


def test_every_field_has_an_effect_test() -> None:
    fields = set(ResilienceConfiguration.model_fields)
    assert set(EFFECTS) == fields - OUTSIDE_THE_REGISTRY
    assert fields >= OUTSIDE_THE_REGISTRY


@pytest.mark.parametrize("field", sorted(EFFECTS))
async def test_each_field_changes_what_the_registry_builds(field: str) -> None:
    settings, probe, with_defaults, with_settings = EFFECTS[field]
    if isinstance(probe, str):
        probe = await _retry_field(probe)
    results = []
    for config in (ResilienceConfiguration(), ResilienceConfiguration(**settings)):
        registry = ResilienceRegistry(config, clock=FakeClock(autojump=True))
        try:
            results.append(await probe(registry))
        finally:
            await registry.aclose()
    assert results == [with_defaults, with_settings]


async def test_pipeline_layers_follow_the_optional_fields() -> None:
    plain = ResilienceRegistry(clock=FakeClock())
    assert await _pipeline_order(plain) == BASE_ORDER
    no_retry = ResilienceRegistry(ResilienceConfiguration(default_max_retries=0))
    assert no_retry.pipeline("x").order == ("circuit_breaker",)
    full = ResilienceRegistry(
        ResilienceConfiguration(
            default_call_timeout=1.0, default_max_concurrent=2, default_rate_limit=3.0
        ),
        clock=FakeClock(),
    )
    pipe = full.pipeline("orders", write=True, exchange_id="bybit")
    assert pipe.order == ("retry", "circuit_breaker", "bulkhead", "rate_limiter", "timeout")
    assert pipe is full.pipeline("orders")
    assert pipe is full.pipeline("orders", write=True)
    with pytest.raises(ConfigurationError, match="write"):
        full.pipeline("orders", write=False)
    assert pipe.retry is full.retry_policy("orders")
    assert pipe.retry is not None and pipe.retry.config.write is True
    assert pipe.circuit_breaker is full.circuit_breaker("orders")
    assert full.circuit_breaker("orders").config.exchange_id == "bybit"
    assert await pipe.call_async(ok, 5) == 5
    json.dumps(full.snapshot())  # JSON-ready, every kind
    assert set(full.snapshot()) == {
        "bulkheads",
        "circuit_breakers",
        "pipelines",
        "rate_limiters",
        "retry_policies",
        "timeouts",
    }


async def test_defaults_are_read_when_a_component_is_made() -> None:
    config = ResilienceConfiguration()
    registry = ResilienceRegistry(config, clock=FakeClock())
    first = registry.circuit_breaker("first")
    config.default_failure_threshold = 2
    config.default_max_connections_per_host = 4
    config.default_max_connections = 8
    assert first.config.failure_threshold == 5  # made before the change
    assert registry.circuit_breaker("second").config.failure_threshold == 2
    pool = registry.pools.get_pool("later")  # straight through the manager
    assert (pool.config.max_connections, pool.config.max_connections_per_host) == (8, 4)
    await registry.aclose()


async def test_a_changed_interval_reaches_the_checks_the_registry_made() -> None:
    config = ResilienceConfiguration(default_health_check_interval=30.0)
    registry = ResilienceRegistry(config, clock=FakeClock())
    registry.circuit_breaker("b")
    check = registry.health.get_check("circuit_breaker.b")
    config.default_health_check_interval = 5.0
    assert (check.config.interval, check.config.timeout) == (5.0, 5.0)
    assert registry.health_check_config("own").interval == 5.0
    assert registry.health_check_config("own", interval=90.0).timeout == 10.0


async def test_health_checks_follow_breakers_and_pools() -> None:
    clock = FakeClock()
    registry = ResilienceRegistry(ResilienceConfiguration(default_failure_threshold=1), clock=clock)
    await fail_times(registry, "exchange", 1)
    pool = registry.connection_pool("api")
    service = registry.health
    assert set(service.checks) == {"circuit_breaker.exchange", "pool.api"}
    report = await service.run_checks()
    assert report.checks["circuit_breaker.exchange"].status is ServiceStatus.DEGRADED
    assert report.checks["pool.api"].status is ServiceStatus.HEALTHY
    # A closed pool replaced by a new one: the check follows the new pool.
    await pool.close()
    replacement = registry.connection_pool("api")
    assert replacement is not pool
    report = await service.run_checks()
    assert report.checks["pool.api"].status is ServiceStatus.HEALTHY
    registry.remove_circuit_breaker("exchange")
    assert set(service.checks) == {"pool.api"}
    late = registry.pools.get_pool("late")  # straight through the manager
    assert registry.health.get_check("pool.late").pool is late  # type: ignore[attr-defined]
    await registry.aclose()
    assert set(service.checks) == set()  # the closed pools' checks went with them


async def test_a_users_check_of_the_same_name_is_left_alone() -> None:
    from virtuoso_resilience import SimpleHealthCheck

    registry = ResilienceRegistry(clock=FakeClock())
    mine = SimpleHealthCheck("circuit_breaker.b", ok)
    registry.health.register_health_check(mine)
    registry.circuit_breaker("b")
    assert registry.health.get_check("circuit_breaker.b") is mine


# ---------------------------------------------------------------------------
# The generic component store


class Cache:
    """A stand-in for a later component type: anything with a snapshot()."""

    def __init__(self) -> None:
        self.closed = False

    def snapshot(self) -> dict[str, Any]:
        return {"hits": 3, "closed": self.closed}

    async def aclose(self) -> None:
        self.closed = True


async def test_any_component_with_a_snapshot_plugs_in() -> None:
    registry = ResilienceRegistry(clock=FakeClock())
    cache = registry.register("caches", "market", Cache())
    assert registry.get("caches", "market") is cache
    assert dict(registry.components("caches")) == {"market": cache}
    registry.circuit_breaker("b")
    data = registry.snapshot()
    assert data["caches"] == {"market": {"hits": 3, "closed": False}}
    assert data["circuit_breakers"]["b"]["state"] == "closed"
    json.dumps(data)  # JSON-ready
    assert registry.kinds == ("caches", "circuit_breakers")
    assert "caches=1" in repr(registry)
    await registry.aclose()
    assert cache.closed


async def test_a_kind_can_bring_its_health_check() -> None:
    from virtuoso_resilience import CheckResult, HealthCheck, HealthCheckConfig

    class CacheCheck(HealthCheck):
        def __init__(self, cache: Cache, config: HealthCheckConfig) -> None:
            super().__init__("cache.market", config)
            self.cache = cache

        async def check(self) -> CheckResult:
            return CheckResult(ServiceStatus.HEALTHY)

    registry = ResilienceRegistry(
        ResilienceConfiguration(default_health_check_interval=12.0), clock=FakeClock()
    )
    registry.register("caches", "market", Cache(), health_check=CacheCheck)
    check = registry.health.get_check("cache.market")
    assert isinstance(check, CacheCheck) and check.config.interval == 12.0


def test_register_refuses_what_it_cannot_hold() -> None:
    registry = ResilienceRegistry()
    with pytest.raises(ConfigurationError, match="snapshot"):
        registry.register("caches", "x", object())  # type: ignore[type-var]
    with pytest.raises(ConfigurationError, match="holds CircuitBreaker"):
        registry.register(CIRCUIT_BREAKERS, "x", Cache())
    with pytest.raises(ConfigurationError, match="non-empty"):
        registry.register("", "x", Cache())
    with pytest.raises(ConfigurationError, match="non-empty"):
        registry.register("caches", "", Cache())
    registry.register("caches", "x", Cache())
    with pytest.raises(ConfigurationError, match="replace=True"):
        registry.register("caches", "x", Cache())
    newer = registry.register("caches", "x", Cache(), replace=True)
    assert registry.get("caches", "x") is newer
    with pytest.raises(KeyError, match="known: x"):
        registry.get("caches", "nope")
    assert registry.unregister("caches", "x") is newer
    assert dict(registry.components("caches")) == {}
    with pytest.raises(TypeError, match="ResilienceConfiguration"):
        ResilienceRegistry({"default_max_retries": 1})  # type: ignore[arg-type]


async def test_pools_made_anywhere_are_the_registrys_components() -> None:
    registry = ResilienceRegistry()
    through_manager = registry.pools.get_pool("a")
    through_registry = registry.connection_pool("b")
    assert dict(registry.components(CONNECTION_POOLS)) == {
        "a": through_manager,
        "b": through_registry,
    }
    adopted = registry.register(CONNECTION_POOLS, "c", ConnectionPool("c"))
    assert registry.pools.get_pool("c") is adopted
    await registry.aclose()
    assert adopted.closed and through_manager.closed
    assert dict(registry.components(CONNECTION_POOLS)) == {}


def test_asking_again_with_other_settings_names_the_fields() -> None:
    registry = ResilienceRegistry(clock=FakeClock())
    retry = registry.retry_policy("r", max_retries=2)
    assert registry.retry_policy("r") is retry
    assert registry.retry_policy("r", max_retries=2) is retry
    with pytest.raises(ConfigurationError) as info:
        registry.retry_policy("r", max_retries=5)
    assert info.value.fields == ("max_attempts",)
    assert "retry policy 'r' already exists with max_attempts=3" in str(info.value)
    with pytest.raises(ConfigurationError, match="base_delay"):
        registry.retry_policy("r", virtuoso_resilience.RetryConfig(name="r", base_delay=0.0))
    same = virtuoso_resilience.RetryConfig(name="r", max_attempts=3)
    assert registry.retry_policy("r", same) is retry
    bulkhead = registry.bulkhead("b", max_concurrent=3)
    with pytest.raises(ConfigurationError, match="max_concurrent"):
        registry.bulkhead("b", max_concurrent=4)
    assert registry.bulkhead("b") is bulkhead
    with pytest.raises(ConfigurationError, match="rate"):
        registry.rate_limiter("no-default-rate")  # no default_rate_limit: say so
    limiter = registry.rate_limiter("l", rate=2.0, capacity=4.0)
    assert registry.rate_limiter("l", rate=2.0) is limiter
    timeout = registry.timeout("t", seconds=1.5)
    with pytest.raises(ConfigurationError, match="seconds"):
        registry.timeout("t", seconds=2.0)
    assert registry.timeout("t") is timeout
    with pytest.raises(TypeError, match="not both"):
        registry.retry_policy("x", virtuoso_resilience.RetryConfig(name="x"), max_retries=1)
    assert registry.pipeline("p") is registry.get(PIPELINES, "p")
    named = registry.retry_policy("n", virtuoso_resilience.RetryConfig())
    assert named.name == "n"  # an unnamed config takes the registry's name
    with pytest.raises(ConfigurationError, match="must be 'm'"):
        registry.retry_policy("m", virtuoso_resilience.RetryConfig(name="other"))


def test_explicit_breaker_settings_win_over_the_defaults() -> None:
    registry = ResilienceRegistry(ResilienceConfiguration(default_failure_threshold=9))
    breaker = registry.circuit_breaker("b", timeout=5.0)
    assert (breaker.config.failure_threshold, breaker.config.timeout) == (9, 5.0)
    explicit = registry.circuit_breaker("e", CircuitBreakerConfig(failure_threshold=2))
    assert explicit.config.failure_threshold == 2  # a config object is used as given
    assert registry.circuit_breaker("b", timeout=5.0) is breaker
    with pytest.raises(ConfigurationError) as info:
        registry.circuit_breaker("b", timeout=6.0)
    assert info.value.fields == ("timeout",)


def test_pool_config_defaults_and_an_explicit_total() -> None:
    registry = ResilienceRegistry(
        ResilienceConfiguration(default_max_connections=40, default_max_connections_per_host=10)
    )
    assert registry.pool_config().max_connections_per_host == 10
    assert registry.pool_config(max_connections=4).max_connections_per_host == 4
    assert registry.pool_config(max_connections=30).max_connections_per_host == 10
    unlimited = ResilienceRegistry(ResilienceConfiguration(default_max_connections_per_host=0))
    assert unlimited.pool_config(max_connections=4).max_connections_per_host == 0
    with pytest.raises(ConfigurationError, match="max_connections"):
        registry.pool_config(max_connections=0)


# ---------------------------------------------------------------------------
# The seed's module-level helpers


async def test_seed_helpers_use_the_default_registry() -> None:
    registry = ResilienceRegistry(clock=FakeClock())
    previous = set_default_registry(registry)
    try:
        config = CircuitBreakerConfig(name="bybit_api", failure_threshold=3)
        cb = get_circuit_breaker("bybit_api", config)
        assert cb is registry.circuit_breaker("bybit_api")
        pool = get_connection_pool("exchange_api", PoolConfig(max_connections=50))
        assert pool is registry.connection_pool("exchange_api")
        assert get_health_service() is registry.health

        @circuit_breaker("exchange_api", failure_threshold=5, timeout=60.0)
        async def fetch_market_data() -> int:
            return 7

        assert await fetch_market_data() == 7
        breaker = fetch_market_data.circuit_breaker  # type: ignore[attr-defined]
        breaker.config.failure_threshold = 8  # the seed changes it at run time
        assert registry.circuit_breaker("exchange_api").config.failure_threshold == 8
    finally:
        set_default_registry(previous)
        await registry.aclose()


def test_health_package_no_longer_reaches_up_to_the_registry() -> None:
    import virtuoso_resilience.health as health

    assert not hasattr(health, "get_health_service")
    assert virtuoso_resilience.get_health_service is virtuoso_resilience.registry.get_health_service


# ---------------------------------------------------------------------------
# Observers are held weakly


async def test_pools_sharing_a_config_are_collected_once_dropped() -> None:
    config = PoolConfig()
    refs = [weakref.ref(ConnectionPool(f"p{i}", config)) for i in range(1000)]
    gc.collect()
    assert all(ref() is None for ref in refs)
    config.health_window_requests = 50  # notifying prunes the dead observers
    assert config._observers == []


def test_registries_sharing_a_config_are_collected_once_dropped() -> None:
    config = ResilienceConfiguration()
    refs = [weakref.ref(ResilienceRegistry(config)) for _ in range(200)]
    gc.collect()
    assert all(ref() is None for ref in refs)
    config.default_max_connections = 30
    assert config._observers == []


def test_a_live_pool_still_hears_of_changes() -> None:
    config = PoolConfig(health_window_requests=10, health_min_requests=1)
    pool = ConnectionPool("p", config)
    config.health_window_requests = 4
    assert len(pool._stats.ring) == 4  # the pool resized its window
    assert len(config._observers) == 1
