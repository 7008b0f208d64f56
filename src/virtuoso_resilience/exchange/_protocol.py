"""What the adapter's parts (orders, maintenance, health) need of the adapter.

A structural type, so that those modules never import ``_adapter`` (which
imports them): no import cycle between the package's modules.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from ..classify import Outcome
from ..policies import CircuitBreaker
from ._codec import ClientOrderIdCodec
from ._config import ExchangeResilienceConfig, MethodGroup
from ._groups import MethodSpec
from ._limits import AccountLimiter

__all__ = ["AdapterLike", "MaintenanceLike"]


class MaintenanceLike(Protocol):
    """The maintenance guard, as the health checks see it."""

    @property
    def active(self) -> bool: ...

    def snapshot(self) -> dict[str, Any]: ...


class AdapterLike(Protocol):
    """The adapter, as its parts see it."""

    @property
    def exchange(self) -> Any: ...

    @property
    def exchange_id(self) -> str: ...

    @property
    def config(self) -> ExchangeResilienceConfig: ...

    @property
    def codec(self) -> ClientOrderIdCodec: ...

    @property
    def limiter(self) -> AccountLimiter: ...

    @property
    def maintenance(self) -> MaintenanceLike: ...

    def breaker(self, group: MethodGroup | str) -> CircuitBreaker: ...

    def _outcome(self, exc: Exception, write: bool) -> Outcome: ...

    async def _invoke(
        self,
        spec: MethodSpec,
        method: Callable[..., Awaitable[Any]],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        *,
        retry_ambiguous: bool = False,
    ) -> Any: ...
