"""register_resilience_services with svcs, dependency_injector and a mapping."""

from __future__ import annotations

import asyncio

import pytest
import svcs
from dependency_injector import containers, providers

from virtuoso_resilience import (
    HealthCheckConfig,
    HealthService,
    ResilienceConfiguration,
    ResilienceManager,
    ResilienceRegistry,
    ServiceStatus,
    SimpleHealthCheck,
    create_default_resilience_config,
    register_resilience_services,
)
from virtuoso_resilience.integrations import UnhealthyError


async def test_seed_snippet_with_svcs() -> None:
    container = svcs.Registry()
    # Register with existing DI container
    config = create_default_resilience_config()
    resilience_manager = register_resilience_services(container, config)
    await resilience_manager.initialize()
    try:
        assert resilience_manager.state == "running"
        assert resilience_manager.config is config
        assert resilience_manager.health.running
    finally:
        await container.aclose()  # the registered cleanup shuts the manager down
    assert resilience_manager.state == "stopped"
    assert not resilience_manager.health.running


async def test_svcs_services_and_pings() -> None:
    registry = svcs.Registry()
    config = ResilienceConfiguration(default_failure_threshold=8)
    manager = register_resilience_services(registry, config)
    await manager.initialize()
    container = svcs.Container(registry)
    try:
        assert await container.aget(ResilienceManager) is manager
        assert await container.aget(ResilienceRegistry) is manager.registry
        assert await container.aget(ResilienceConfiguration) is config
        health = await container.aget(HealthService)
        assert health is manager.health
        breaker = manager.registry.circuit_breaker("exchange_api")
        assert breaker.config.failure_threshold == 8

        (ping,) = container.get_pings()
        assert ping.name.endswith("HealthService")
        await ping.aping()  # healthy: passes

        health.register_health_check(
            SimpleHealthCheck(
                "exchange", lambda: False, HealthCheckConfig(failure_threshold=1, critical=True)
            )
        )
        with pytest.raises(UnhealthyError, match="failing checks: exchange"):
            await ping.aping()
    finally:
        await container.aclose()
        await registry.aclose()
    assert manager.state == "stopped"


async def test_svcs_container_is_accepted() -> None:
    registry = svcs.Registry()
    container = svcs.Container(registry)
    manager = register_resilience_services(container)
    try:
        assert await container.aget(ResilienceManager) is manager
        assert manager.config.to_dict() == create_default_resilience_config().to_dict()
    finally:
        await container.aclose()
        await registry.aclose()


class AppContainer(containers.DeclarativeContainer):
    settings = providers.Object({"app": "virtuoso"})


@pytest.mark.parametrize("make", [containers.DynamicContainer, AppContainer])
async def test_dependency_injector(make: type[containers.Container]) -> None:
    container = make()
    config = create_default_resilience_config()
    manager = register_resilience_services(container, config)
    assert container.resilience_manager() is manager  # type: ignore[attr-defined]
    assert container.resilience_registry() is manager.registry  # type: ignore[attr-defined]
    assert container.resilience_config() is config  # type: ignore[attr-defined]
    assert container.health_service() is manager.health  # type: ignore[attr-defined]

    await container.init_resources()  # type: ignore[misc]
    assert manager.state == "running" and manager.health.running
    await manager.initialize()  # idempotent beside the resource
    await container.shutdown_resources()  # type: ignore[misc]
    assert manager.state == "stopped" and not manager.health.running


async def test_mapping_container() -> None:
    container: dict[type, object] = {}
    manager = register_resilience_services(container)
    assert container[ResilienceManager] is manager
    assert container[HealthService] is manager.health
    async with manager:
        assert manager.state == "running"
    assert manager.state == "stopped"


def test_unsupported_container_and_config() -> None:
    with pytest.raises(TypeError, match=r"cannot register with a object: supported are svcs"):
        register_resilience_services(object())
    with pytest.raises(TypeError, match="config must be a ResilienceConfiguration, not dict"):
        register_resilience_services({}, {"default_failure_threshold": 5})  # type: ignore[arg-type]


async def test_manager_lifecycle_is_idempotent_and_concurrent_safe() -> None:
    manager = ResilienceManager()
    await asyncio.gather(manager.initialize(), manager.initialize(), manager.initialize())
    assert manager.state == "running"
    await asyncio.gather(manager.shutdown(), manager.shutdown())
    assert manager.state == "stopped"
    await manager.initialize()  # a stopped manager starts again
    assert manager.health.running
    await manager.shutdown()
    assert "stopped" in repr(manager)
    assert manager.snapshot()["state"] == "stopped"


async def test_check_health_degraded_passes_unhealthy_raises() -> None:
    manager = ResilienceManager()
    manager.health.register_health_check(SimpleHealthCheck("cache", lambda: ServiceStatus.DEGRADED))
    report = await manager.check_health()
    assert report.status is ServiceStatus.DEGRADED
    manager.health.register_health_check(
        SimpleHealthCheck(
            "exchange", lambda: False, HealthCheckConfig(failure_threshold=1, critical=True)
        )
    )
    with pytest.raises(UnhealthyError) as caught:
        await manager.check_health()
    assert caught.value.report.status >= ServiceStatus.UNHEALTHY
    await manager.shutdown()


def test_config_and_registry_together_is_refused() -> None:
    with pytest.raises(ValueError, match="not both"):
        ResilienceManager(ResilienceConfiguration(), registry=ResilienceRegistry())
