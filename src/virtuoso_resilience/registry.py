"""The registry that owns breakers, pools, policies and health checks.

The seed's module-level helpers (``get_circuit_breaker``,
``get_connection_pool``, ``get_health_service``, the ``@circuit_breaker``
decorator) use the *default* registry; applications and tests that want
isolation create their own :class:`ResilienceRegistry`.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar, overload

from .classify import DEFAULT_CLASSIFIER, Classifier
from .clock import MONOTONIC, Clock
from .errors import ConfigurationError, FieldError
from .policies.circuit_breaker import CircuitBreaker, CircuitBreakerConfig

if TYPE_CHECKING:
    from .health import HealthService
    from .pools import ConnectionPoolManager

__all__ = [
    "ResilienceRegistry",
    "circuit_breaker",
    "default_registry",
    "get_circuit_breaker",
    "set_default_registry",
]

P = ParamSpec("P")
T = TypeVar("T")


class ResilienceRegistry:
    """Owns named breakers, connection pools and the health service.

    ``clock`` and ``classifier`` are handed to every breaker it creates, so a
    test registry built with a :class:`~virtuoso_resilience.FakeClock` runs
    every breaker on virtual time.
    """

    def __init__(
        self, *, clock: Clock = MONOTONIC, classifier: Classifier = DEFAULT_CLASSIFIER
    ) -> None:
        self.clock = clock
        self.classifier = classifier
        self._breakers: dict[str, CircuitBreaker] = {}
        self._pools: ConnectionPoolManager | None = None
        self._health: HealthService | None = None

    # --------------------------------------------------------------- breakers

    def circuit_breaker(
        self, name: str, config: CircuitBreakerConfig | None = None, **settings: Any
    ) -> CircuitBreaker:
        """The breaker called ``name``, created on first use.

        ``config`` or keyword ``settings`` (fields of
        :class:`CircuitBreakerConfig`) configure a new breaker. Asking again
        with settings that differ from the existing breaker's is an error that
        names each differing field; asking with none returns it as it is.
        """
        if config is not None and settings:
            raise TypeError("pass either a CircuitBreakerConfig or keyword settings, not both")
        if config is None and settings:
            config = CircuitBreakerConfig(name=name, **settings)
        existing = self._breakers.get(name)
        if existing is not None:
            if config is not None and config is not existing.config:
                self._check_same(existing, config)
            return existing
        breaker = CircuitBreaker(name, config, clock=self.clock, classifier=self.classifier)
        self._breakers[name] = breaker
        return breaker

    @staticmethod
    def _check_same(existing: CircuitBreaker, config: CircuitBreakerConfig) -> None:
        current = existing.config.model_dump(exclude={"name"})
        wanted = config.model_dump(exclude={"name"})
        errors = [
            FieldError(
                "CircuitBreakerConfig",
                key,
                wanted[key],
                f"breaker {existing.name!r} already exists with {key}={current[key]!r}; "
                "change it through breaker.config instead",
            )
            for key in wanted
            if wanted[key] != current[key]
        ]
        if errors:
            raise ConfigurationError(errors)

    @property
    def breakers(self) -> dict[str, CircuitBreaker]:
        """Every breaker, by name (a copy)."""
        return dict(self._breakers)

    def remove_circuit_breaker(self, name: str) -> None:
        """Forget a breaker (a missing name is an error naming the known ones)."""
        try:
            del self._breakers[name]
        except KeyError:
            known = ", ".join(sorted(self._breakers)) or "none"
            raise KeyError(f"no circuit breaker {name!r}; known: {known}") from None

    # ------------------------------------------------------------ pools/health

    @property
    def pools(self) -> ConnectionPoolManager:
        """The connection pool manager (created on first use)."""
        if self._pools is None:
            from .pools import ConnectionPoolManager

            self._pools = ConnectionPoolManager(clock=self.clock)
        return self._pools

    @property
    def health(self) -> HealthService:
        """The health service (created on first use, on this registry's clock)."""
        if self._health is None:
            from .health import HealthService

            self._health = HealthService(clock=self.clock)
        return self._health

    async def aclose(self) -> None:
        """Stop health monitoring and close every pool this registry made."""
        if self._health is not None:
            await self._health.stop()
        if self._pools is not None:
            await self._pools.close()

    def snapshot(self) -> dict[str, Any]:
        """JSON-ready state of everything the registry owns."""
        data: dict[str, Any] = {
            "circuit_breakers": {
                name: b.snapshot().as_dict() for name, b in sorted(self._breakers.items())
            }
        }
        if self._pools is not None:
            data["connection_pools"] = self._pools.snapshot()
        if self._health is not None:
            data["health"] = self._health.snapshot()
        return data

    def __repr__(self) -> str:
        return (
            f"<ResilienceRegistry breakers={len(self._breakers)} "
            f"pools={'on' if self._pools is not None else 'off'} "
            f"health={'on' if self._health is not None else 'off'}>"
        )


_default: ResilienceRegistry | None = None


def default_registry() -> ResilienceRegistry:
    """The process-wide registry used by the module-level helpers."""
    global _default
    if _default is None:
        _default = ResilienceRegistry()
    return _default


def set_default_registry(registry: ResilienceRegistry | None) -> ResilienceRegistry | None:
    """Replace the default registry (None: a fresh one on next use).

    Returns the previous one, so tests can restore it.
    """
    global _default
    previous, _default = _default, registry
    return previous


def get_circuit_breaker(
    name: str, config: CircuitBreakerConfig | None = None, **settings: Any
) -> CircuitBreaker:
    """The default registry's breaker called ``name`` (created on first use)."""
    return default_registry().circuit_breaker(name, config, **settings)


_AsyncFn = Callable[P, Coroutine[Any, Any, T]]


@overload
def circuit_breaker(
    name: str,
    config: CircuitBreakerConfig | None = None,
    *,
    registry: ResilienceRegistry | None = None,
    **settings: Any,
) -> Callable[[_AsyncFn[P, T]], _AsyncFn[P, T]]: ...


@overload
def circuit_breaker(name: _AsyncFn[P, T]) -> _AsyncFn[P, T]: ...


def circuit_breaker(
    name: str | _AsyncFn[P, T],
    config: CircuitBreakerConfig | None = None,
    *,
    registry: ResilienceRegistry | None = None,
    **settings: Any,
) -> Callable[[_AsyncFn[P, T]], _AsyncFn[P, T]] | _AsyncFn[P, T]:
    """Decorator: ``@circuit_breaker("exchange_api", failure_threshold=5, timeout=60.0)``.

    Functions decorated with the same name share one breaker. Bare
    ``@circuit_breaker`` names the breaker after the function's qualified name.
    The breaker is reachable as ``decorated.circuit_breaker``.
    """
    if callable(name):
        fn = name
        return default_registry().circuit_breaker(fn.__qualname__)(fn)
    breaker_name = name

    def decorate(fn: _AsyncFn[P, T]) -> _AsyncFn[P, T]:
        reg = registry if registry is not None else default_registry()
        return reg.circuit_breaker(breaker_name, config, **settings)(fn)

    return decorate
