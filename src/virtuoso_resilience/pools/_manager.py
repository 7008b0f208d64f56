""":class:`ConnectionPoolManager`: named pools, created on first use, closed together."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from types import MappingProxyType, TracebackType
from typing import Any, Self

from ..clock import MONOTONIC, Clock
from ._config import PoolConfig
from ._pool import ConnectionPool

__all__ = ["ConnectionPoolManager"]


class ConnectionPoolManager:
    """Owns named :class:`ConnectionPool` objects and closes them together.

    ``default_config`` (copied per pool) configures pools asked for without
    a config; it may be replaced at any time (pools made afterwards use the
    new one). ``clock`` is handed to every pool. ``store`` is the dict the
    pools are kept in (by name); a
    :class:`~virtuoso_resilience.ResilienceRegistry` passes its own, so the
    pools are its ``"connection_pools"`` components.
    """

    __slots__ = ("_clock", "_pools", "default_config")

    def __init__(
        self,
        *,
        default_config: PoolConfig | None = None,
        clock: Clock = MONOTONIC,
        store: dict[str, ConnectionPool] | None = None,
    ) -> None:
        self.default_config = default_config
        self._clock = clock
        self._pools: dict[str, ConnectionPool] = {} if store is None else store

    def get_pool(self, name: str, config: PoolConfig | None = None) -> ConnectionPool:
        """The pool called ``name``, created on first use.

        Asking again returns the same pool; asking with a config whose
        explicitly set fields differ from the existing pool's raises
        :class:`~virtuoso_resilience.ConfigurationError` naming each differing
        field (change a live pool through ``pool.config`` instead). A pool
        that was closed is replaced by a new one (with a copy of its config
        when none is given).
        """
        existing = self._pools.get(name)
        if existing is not None and not existing.closed:
            if config is not None and config is not existing.config:
                existing.config.check_same(
                    config,
                    owner=f"connection pool {name!r}",
                    via="pool.config",
                )
            return existing
        if config is None:
            if existing is not None:
                config = _copy(existing.config)
            elif self.default_config is not None:
                config = _copy(self.default_config)
        pool = ConnectionPool(name, config, clock=self._clock)
        self._pools[name] = pool
        return pool

    @property
    def pools(self) -> Mapping[str, ConnectionPool]:
        """Every pool by name (a read-only live view)."""
        return MappingProxyType(self._pools)

    def snapshot(self) -> dict[str, dict[str, Any]]:
        """JSON-ready ``{name: pool.snapshot()}``, sorted by name."""
        return {name: pool.snapshot() for name, pool in sorted(self._pools.items())}

    async def close(self) -> None:
        """Close every pool (sessions and connectors) and forget them.

        The manager stays usable: asking for a pool afterwards makes a new one.
        """
        pools = list(self._pools.values())
        self._pools.clear()
        results = await asyncio.gather(*(p.close() for p in pools), return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException):
                raise result

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    def __repr__(self) -> str:
        names = ", ".join(repr(n) for n in sorted(self._pools))
        return f"<ConnectionPoolManager pools={len(self._pools)} [{names}]>"


def _copy(config: PoolConfig) -> PoolConfig:
    # A fresh object: pools must not share a mutable config (nor its observers).
    # Only the fields that were set are passed, so bounds that follow their
    # limits keep following them.
    return PoolConfig(**config.model_dump(exclude_unset=True))
