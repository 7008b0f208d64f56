"""Named, shared, instrumented aiohttp connection pools.

A :class:`ConnectionPool` owns one :class:`aiohttp.TCPConnector` and one
:class:`aiohttp.ClientSession`, created lazily inside the running event loop.
Everything that talks to one host (several ccxt exchange objects, plain
``session.get`` calls) can share it::

    from virtuoso_resilience import get_connection_pool, PoolConfig

    config = PoolConfig(max_connections=50, max_connections_per_host=20)
    pool = get_connection_pool("exchange_api", config)
    async with pool.get_session() as session:
        response = await session.get("https://api.exchange.com/ticker")

Modules: ``_config`` (:class:`PoolConfig`), ``_trace`` (trace metrics and
health rules), ``_pool`` (:class:`ConnectionPool`), ``_manager``
(:class:`ConnectionPoolManager`). ``get_connection_pool`` lives with the
registry (:mod:`virtuoso_resilience.registry`): this package imports no
registry.
"""

from ._config import PoolConfig
from ._manager import ConnectionPoolManager
from ._pool import ConnectionPool
from ._trace import DEFAULT_BUCKETS, HealthStatus, PoolHealth

__all__ = [
    "DEFAULT_BUCKETS",
    "ConnectionPool",
    "ConnectionPoolManager",
    "HealthStatus",
    "PoolConfig",
    "PoolHealth",
]
