"""Resilient memcached and Redis caches: degrade to memory, lose nothing, recover by themselves.

``create_resilient_cache(client, config)`` wraps an ``aiomcache.Client``, an
``emcache`` client, a ``redis.asyncio.Redis`` (or a connection pool, or a
``redis://`` URL). See ``docs/cache.md``.
"""

from __future__ import annotations

from typing import Any

from ..health import HealthService
from ..registry import get_health_service
from ._cache import CacheEvent, CacheHealth, CacheRead, ReadSource, ResilientCache
from ._config import (
    CacheConfig,
    StaleRule,
    create_memcached_resilient_config,
    create_redis_resilient_config,
)
from ._keys import InvalidCacheKeyError
from ._serial import BytesSerializer, CacheValueError, JsonSerializer, Serializer

__all__ = [
    "BytesSerializer",
    "CacheConfig",
    "CacheEvent",
    "CacheHealth",
    "CacheRead",
    "CacheValueError",
    "InvalidCacheKeyError",
    "JsonSerializer",
    "ReadSource",
    "ResilientCache",
    "Serializer",
    "StaleRule",
    "create_memcached_resilient_config",
    "create_redis_resilient_config",
    "create_resilient_cache",
]


def create_resilient_cache(
    client: Any,
    config: CacheConfig | None = None,
    *,
    health_service: HealthService | None = None,
    register_health: bool = True,
    **options: Any,
) -> ResilientCache:
    """Wrap ``client`` in a :class:`ResilientCache`.

    ``client``: an ``aiomcache.Client``, an ``emcache`` client, a
    ``redis.asyncio.Redis``, a ``redis.asyncio.ConnectionPool`` or a
    ``redis://`` / ``rediss://`` / ``unix://`` URL. ``config`` defaults to
    :func:`create_memcached_resilient_config` or
    :func:`create_redis_resilient_config`, whichever fits the client.
    The cache's health check (``cache.<config.name>``) is registered with
    ``health_service``, or with the default registry's service
    (:func:`~virtuoso_resilience.get_health_service`) when none is given;
    ``register_health=False`` registers none. Two caches need two names.
    ``options`` are :class:`ResilientCache`'s other keywords (``serializer``,
    ``clock``, ``classifier``).
    """
    if config is None:
        config = (
            create_redis_resilient_config()
            if _family(client) == "redis"
            else create_memcached_resilient_config()
        )
    if register_health and health_service is None:
        health_service = get_health_service()
    return ResilientCache(
        client, config, health_service=health_service if register_health else None, **options
    )


def _family(client: Any) -> str:
    if isinstance(client, str):
        return "redis"
    module = type(client).__module__
    return "redis" if module.startswith("redis") else "memcached"
