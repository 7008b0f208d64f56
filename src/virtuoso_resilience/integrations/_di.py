"""Registering the resilience services with a DI container (svcs, dependency_injector)."""

from __future__ import annotations

from collections.abc import AsyncIterator, MutableMapping
from typing import Any

from ..config import ResilienceConfiguration
from ..health import HealthService
from ..registry import ResilienceRegistry
from ._manager import ResilienceManager

__all__ = ["register_resilience_services"]

_SUPPORTED = (
    "svcs.Registry (or an svcs.Container), a dependency_injector container, "
    "or a MutableMapping; see docs/di.md to adapt another container"
)


def register_resilience_services(
    container: Any, config: ResilienceConfiguration | None = None
) -> ResilienceManager:
    """Register the resilience services with ``container``; return their manager.

    Then ``await manager.initialize()`` (and ``await manager.shutdown()``).

    * ``svcs.Registry`` (or a ``svcs.Container``: its registry): the values
      :class:`ResilienceManager`, :class:`~virtuoso_resilience.ResilienceRegistry`,
      :class:`~virtuoso_resilience.ResilienceConfiguration` and
      :class:`~virtuoso_resilience.HealthService`. The health service's
      ``ping`` runs every health check and raises
      :class:`~virtuoso_resilience.integrations.UnhealthyError` when unhealthy
      (``container.get_pings()``); the manager is registered with its cleanup:
      ``await registry.aclose()`` shuts it down.
    * a ``dependency_injector`` container: providers ``resilience_manager``,
      ``resilience_registry``, ``resilience_config``, ``health_service``
      (``providers.Object``) and ``resilience`` (a ``providers.Resource``:
      ``await container.init_resources()`` initializes the manager,
      ``await container.shutdown_resources()`` shuts it down).
    * a ``MutableMapping``: the four objects stored under their types.

    Anything else raises ``TypeError`` naming the supported containers.
    """
    if config is not None and not isinstance(config, ResilienceConfiguration):
        raise TypeError(f"config must be a ResilienceConfiguration, not {type(config).__name__}")
    kind = _kind(container)
    if kind is None:
        raise TypeError(
            f"cannot register with a {type(container).__name__}: supported are {_SUPPORTED}"
        )
    manager = ResilienceManager(config)
    services = _services(manager)
    if kind == "svcs":
        _register_svcs(container, manager, services)
    elif kind == "dependency_injector":
        _register_dependency_injector(container, manager)
    else:
        container.update(services)
    return manager


def _services(manager: ResilienceManager) -> dict[type, object]:
    return {
        ResilienceManager: manager,
        ResilienceRegistry: manager.registry,
        ResilienceConfiguration: manager.config,
        HealthService: manager.health,
    }


def _kind(container: Any) -> str | None:
    module = type(container).__module__ or ""
    if module.startswith("svcs"):
        return "svcs"
    if module.startswith("dependency_injector"):
        return "dependency_injector"
    if isinstance(container, MutableMapping):
        return "mapping"
    return None


def _register_svcs(
    container: Any, manager: ResilienceManager, services: dict[type, object]
) -> None:
    import svcs

    registry = container.registry if isinstance(container, svcs.Container) else container
    if not isinstance(registry, svcs.Registry):
        raise TypeError(
            f"expected an svcs.Registry or svcs.Container, not {type(container).__name__}"
        )

    async def ping_health(service: HealthService) -> None:
        await manager.check_health()

    registry.register_value(ResilienceManager, manager, on_registry_close=manager.shutdown)
    registry.register_value(ResilienceRegistry, services[ResilienceRegistry])
    registry.register_value(ResilienceConfiguration, services[ResilienceConfiguration])
    registry.register_value(HealthService, services[HealthService], ping=ping_health)


def _register_dependency_injector(container: Any, manager: ResilienceManager) -> None:
    from dependency_injector import providers

    async def lifecycle() -> AsyncIterator[ResilienceManager]:
        await manager.initialize()
        try:
            yield manager
        finally:
            await manager.shutdown()

    container.set_providers(
        resilience_manager=providers.Object(manager),
        resilience_registry=providers.Object(manager.registry),
        resilience_config=providers.Object(manager.config),
        health_service=providers.Object(manager.health),
        resilience=providers.Resource(lifecycle),
    )
