"""``ResilientVirtuosoIntegration``: the seed's integration facade.

One object that registers the resilience services with a container, builds
the resilient Bybit exchange and caches from the settings, and reports their
health and metrics.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .._settings import ResilienceSettings, load_settings
from ..cache import (
    CacheConfig,
    ResilientCache,
    create_memcached_resilient_config,
    create_redis_resilient_config,
    create_resilient_cache,
)
from ..config import ResilienceConfiguration
from ..exchange import (
    ExchangeResilienceConfig,
    ResilientExchange,
    create_bybit_resilient_config,
    create_resilient_exchange,
)
from ._di import register_resilience_services
from ._manager import ResilienceManager

__all__ = ["ResilientVirtuosoIntegration"]

_BACKENDS = ("memcached", "redis")


class ResilientVirtuosoIntegration:
    """The seed's integration example, as an object.

    ``container``: a DI container for :func:`register_resilience_services`
    (``None``: no container). ``config`` overrides the resilience settings
    loaded from the environment; ``settings`` replaces the loading
    altogether (:func:`~virtuoso_resilience.load_settings`).

    >>> integration = ResilientVirtuosoIntegration(container)      # doctest: +SKIP
    >>> await integration.initialize()                             # doctest: +SKIP
    """

    def __init__(
        self,
        container: Any = None,
        config: ResilienceConfiguration | None = None,
        *,
        settings: ResilienceSettings | None = None,
    ) -> None:
        self.container = container
        self._config = config
        self._settings = settings
        self._manager: ResilienceManager | None = None
        self._exchanges: list[ResilientExchange[Any]] = []
        self._caches: dict[str, ResilientCache] = {}

    @property
    def settings(self) -> ResilienceSettings:
        """The settings in use (loaded by :meth:`initialize` unless given)."""
        if self._settings is None:
            self._settings = load_settings()
        return self._settings

    @property
    def manager(self) -> ResilienceManager:
        """The resilience manager (after :meth:`initialize`)."""
        if self._manager is None:
            raise RuntimeError("call 'await integration.initialize()' first")
        return self._manager

    async def initialize(self) -> None:
        """Load the settings, register the services, start health monitoring (once)."""
        if self._manager is None:
            config = self._config or self.settings.resilience
            if self.container is None:
                self._manager = ResilienceManager(config)
            else:
                self._manager = register_resilience_services(self.container, config)
        await self._manager.initialize()

    async def create_resilient_bybit_exchange(
        self,
        config: ExchangeResilienceConfig | None = None,
        *,
        ccxt_options: Mapping[str, Any] | None = None,
    ) -> Any:
        """A resilient ``ccxt.async_support.bybit`` (keys from the settings).

        ``config`` defaults to :func:`create_bybit_resilient_config`;
        ``ccxt_options`` are merged into ccxt's constructor options (e.g.
        ``simulator.ccxt_config()`` to point it at the simulator). Its
        health checks join the manager's health service; :meth:`shutdown`
        closes it.
        """
        import ccxt.async_support as ccxt_async  # here: importing the package stays light

        registry = self.manager.registry
        services = self.settings.services
        options: dict[str, Any] = {"enableRateLimit": True}
        if services.bybit_api_key is not None and services.bybit_api_secret is not None:
            options["apiKey"] = services.bybit_api_key.get_secret_value()
            options["secret"] = services.bybit_api_secret.get_secret_value()
        options.update(ccxt_options or {})
        exchange = create_resilient_exchange(
            ccxt_async.bybit(options),
            config if config is not None else create_bybit_resilient_config(),
            pools=registry.pools,
            clock=registry.clock,
            classifier=registry.classifier,
            health=registry.health,
        )
        self._exchanges.append(ResilientExchange.of(exchange))
        return exchange

    async def create_resilient_cache_system(
        self, cache_config: Mapping[str, CacheConfig] | None = None
    ) -> dict[str, ResilientCache]:
        """Resilient memcached and Redis caches, each with its in-memory fallback.

        ``cache_config`` maps ``"memcached"`` and/or ``"redis"`` to a
        :class:`~virtuoso_resilience.cache.CacheConfig` (only those are
        made); ``None`` makes both with their presets. Hosts and ports come
        from the settings (``MEMCACHED_HOST``...). An unreachable server is
        no error: the cache serves from memory and recovers by itself.
        """
        wanted = (
            dict(cache_config)
            if cache_config is not None
            else {
                "memcached": create_memcached_resilient_config(),
                "redis": create_redis_resilient_config(),
            }
        )
        unknown = sorted(set(wanted) - set(_BACKENDS))
        if unknown:
            raise ValueError(f"unknown cache backend(s) {unknown}: use 'memcached' and/or 'redis'")
        services = self.settings.services
        health = self.manager.health
        made: dict[str, ResilientCache] = {}
        for backend, config in wanted.items():
            if backend in self._caches:
                made[backend] = self._caches[backend]
                continue
            if backend == "memcached":
                import aiomcache

                client: Any = aiomcache.Client(services.memcached_host, services.memcached_port)
            else:
                import redis.asyncio as aioredis

                client = aioredis.Redis(host=services.redis_host, port=services.redis_port)
            cache = create_resilient_cache(client, config, health_service=health)
            self._caches[backend] = cache
            made[backend] = cache
        return made

    async def health_check_all(self) -> dict[str, Any]:
        """Run every health check now; the report as JSON-ready data."""
        report = await self.manager.health.run_checks()
        return report.as_dict()

    def get_comprehensive_metrics(self) -> dict[str, Any]:
        """Breakers, pools, policies, exchanges, caches and health, JSON-ready (no I/O)."""
        return {
            "resilience": self.manager.snapshot(),
            "exchanges": [exchange.snapshot() for exchange in self._exchanges],
            "caches": {name: cache.snapshot() for name, cache in self._caches.items()},
            "health": self.manager.health.report().as_dict(),
        }

    async def shutdown(self) -> None:
        """Close the exchanges and caches made here, then shut the manager down."""
        exchanges, self._exchanges = self._exchanges, []
        for exchange in reversed(exchanges):
            await exchange.close()
        caches, self._caches = self._caches, {}
        for cache in reversed(list(caches.values())):
            await cache.close()
        if self._manager is not None:
            await self._manager.shutdown()

    async def __aenter__(self) -> ResilientVirtuosoIntegration:
        await self.initialize()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.shutdown()

    def __repr__(self) -> str:
        state = self._manager.state if self._manager is not None else "created"
        return (
            f"<ResilientVirtuosoIntegration {state} exchanges={len(self._exchanges)} "
            f"caches={sorted(self._caches)}>"
        )
