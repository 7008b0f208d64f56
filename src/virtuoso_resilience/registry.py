"""The registry that owns breakers, pools, policies and health checks.

A :class:`ResilienceRegistry` is built from a
:class:`~virtuoso_resilience.ResilienceConfiguration` and makes every
component it is asked for from that configuration's defaults. It keeps them
by *kind* and *name* through one generic mechanism
(:meth:`~ResilienceRegistry.register`,
:meth:`~ResilienceRegistry.components`,
:meth:`~ResilienceRegistry.snapshot`), so a new component type (an exchange
adapter, a cache) plugs in without a change here.

The seed's module-level helpers (``get_circuit_breaker``,
``get_connection_pool``, ``get_health_service``, the ``@circuit_breaker``
decorator) use the *default* registry; applications and tests that want
isolation create their own.

This module sits above ``pools`` and ``health``: it imports them, they never
import it (an import-linter contract in ``pyproject.toml`` enforces it).
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable, Coroutine, Mapping
from types import MappingProxyType
from typing import Any, Final, ParamSpec, Protocol, TypeVar, cast, overload, runtime_checkable

from ._model import ConfigModel, check_name
from .classify import DEFAULT_CLASSIFIER, Classifier
from .clock import MONOTONIC, Clock
from .config import ResilienceConfiguration
from .errors import ConfigurationError, FieldError
from .health import (
    CircuitBreakerHealthCheck,
    ConnectionPoolHealthCheck,
    HealthCheck,
    HealthCheckConfig,
    HealthService,
)
from .policies import (
    Bulkhead,
    BulkheadConfig,
    CircuitBreaker,
    CircuitBreakerConfig,
    RateLimiter,
    RateLimiterConfig,
    ResiliencePipeline,
    RetryConfig,
    RetryPolicy,
    TimeoutConfig,
    TimeoutPolicy,
)
from .pools import ConnectionPool, ConnectionPoolManager, PoolConfig

__all__ = [
    "BULKHEADS",
    "CIRCUIT_BREAKERS",
    "CONNECTION_POOLS",
    "PIPELINES",
    "RATE_LIMITERS",
    "RETRY_POLICIES",
    "TIMEOUTS",
    "Component",
    "ResilienceRegistry",
    "circuit_breaker",
    "default_registry",
    "get_circuit_breaker",
    "get_connection_pool",
    "get_health_service",
    "set_default_registry",
]

P = ParamSpec("P")
T = TypeVar("T")
C = TypeVar("C", bound="Component")

# The kinds the registry makes itself (any other string is a kind too).
CIRCUIT_BREAKERS: Final = "circuit_breakers"
CONNECTION_POOLS: Final = "connection_pools"
RETRY_POLICIES: Final = "retry_policies"
RATE_LIMITERS: Final = "rate_limiters"
BULKHEADS: Final = "bulkheads"
TIMEOUTS: Final = "timeouts"
PIPELINES: Final = "pipelines"

_BUILT_IN: Final[dict[str, type]] = {
    CIRCUIT_BREAKERS: CircuitBreaker,
    CONNECTION_POOLS: ConnectionPool,
    RETRY_POLICIES: RetryPolicy,
    RATE_LIMITERS: RateLimiter,
    BULKHEADS: Bulkhead,
    TIMEOUTS: TimeoutPolicy,
    PIPELINES: ResiliencePipeline,
}

_LABELS: Final = {
    RETRY_POLICIES: "retry policy",
    RATE_LIMITERS: "rate limiter",
    BULKHEADS: "bulkhead",
    TIMEOUTS: "timeout",
}

_POOL_FIELDS: Final = frozenset(
    {"default_max_connections", "default_max_connections_per_host", "default_connection_timeout"}
)
_HEALTH_CHECK_TIMEOUT: Final = 10.0  # HealthCheckConfig's default, capped by the interval


@runtime_checkable
class Component(Protocol):
    """Anything the registry can hold: it has a JSON-ready ``snapshot()``.

    ``snapshot()`` may return a mapping, an object with ``as_dict()`` or a
    dataclass. A component with an ``aclose()`` is closed by
    :meth:`ResilienceRegistry.aclose`.
    """

    def snapshot(self) -> Any: ...


def _plain(snapshot: Any) -> Any:
    as_dict = getattr(snapshot, "as_dict", None)
    if callable(as_dict):
        return as_dict()
    if isinstance(snapshot, Mapping):
        return dict(snapshot)
    if dataclasses.is_dataclass(snapshot) and not isinstance(snapshot, type):
        return dataclasses.asdict(snapshot)
    return snapshot


def _bad(field: str, value: object, allowed: str) -> ConfigurationError:
    return ConfigurationError([FieldError("ResilienceRegistry", field, value, allowed)])


class ResilienceRegistry:
    """Owns named components, made from one :class:`ResilienceConfiguration`.

    ``config`` (default: the production preset) supplies every default:

    - circuit breakers: ``default_failure_threshold``,
      ``default_success_threshold``, ``default_circuit_timeout``;
    - retry policies: ``default_max_retries``, ``default_base_delay``,
      ``default_max_delay``, ``default_retry_max_elapsed``;
    - connection pools: ``default_max_connections``,
      ``default_max_connections_per_host``, ``default_connection_timeout``;
    - health checks the registry makes (one per breaker and per pool, and
      :meth:`health_check_config`): ``default_health_check_interval``;
      :meth:`start` runs them in the background only with
      ``enable_health_checks``;
    - bulkheads, rate limiters, timeouts: ``default_max_concurrent``,
      ``default_rate_limit`` / ``default_rate_limit_burst``,
      ``default_call_timeout``; a :meth:`pipeline` has a layer for each of
      them only when it is set.

    Defaults are read when a component is made; explicit settings win. A
    changed ``default_health_check_interval`` also reaches the health checks
    the registry made, and changed pool defaults reach pools made afterwards.
    ``clock`` and ``classifier`` are handed to every component that takes
    them, so a test registry built with a
    :class:`~virtuoso_resilience.FakeClock` runs on virtual time.
    """

    def __init__(
        self,
        config: ResilienceConfiguration | None = None,
        *,
        clock: Clock = MONOTONIC,
        classifier: Classifier = DEFAULT_CLASSIFIER,
    ) -> None:
        if config is not None and not isinstance(config, ResilienceConfiguration):
            raise TypeError(
                f"config must be a ResilienceConfiguration, not {type(config).__name__}"
            )
        self.clock = clock
        self.classifier = classifier
        self._config = config if config is not None else ResilienceConfiguration()
        self._pool_store: dict[str, ConnectionPool] = {}
        self._components: dict[str, dict[str, Component]] = {
            CONNECTION_POOLS: cast("dict[str, Component]", self._pool_store)
        }
        self._pools: ConnectionPoolManager | None = None
        self._health: HealthService | None = None
        # Health checks this registry made, by (kind, name), with their component.
        self._checks: dict[tuple[str, str], tuple[HealthCheck, Component]] = {}
        self._health_factories: dict[str, Callable[[Any, HealthCheckConfig], HealthCheck]] = {
            CIRCUIT_BREAKERS: CircuitBreakerHealthCheck,
            CONNECTION_POOLS: ConnectionPoolHealthCheck,
        }
        # A bound method: ConfigModel.subscribe holds it weakly, so a config
        # shared by many registries never keeps a dropped one alive.
        self._config.subscribe(self._config_changed)

    @property
    def config(self) -> ResilienceConfiguration:
        """The configuration the registry makes components from (change its fields in place)."""
        return self._config

    # ------------------------------------------------------ generic components

    def register(
        self,
        kind: str,
        name: str,
        component: C,
        *,
        replace: bool = False,
        health_check: Callable[[Any, HealthCheckConfig], HealthCheck] | None = None,
    ) -> C:
        """Add ``component`` as ``name`` of ``kind``; returns it.

        Any ``kind`` is accepted (a new one starts empty); the built-in kinds
        (:data:`CIRCUIT_BREAKERS`, :data:`CONNECTION_POOLS`, ...) take only
        their own type. A name already taken is an error unless ``replace``.
        ``health_check(component, config)`` makes a health check for every
        component of this kind (built-in for breakers and pools), registered
        with the health service on :attr:`health`'s first use or at once.
        """
        check_name("ResilienceRegistry", kind, "kind")
        check_name("ResilienceRegistry", name)
        if not callable(getattr(component, "snapshot", None)):
            raise _bad("component", type(component).__name__, "must have a snapshot() method")
        expected = _BUILT_IN.get(kind)
        if expected is not None and not isinstance(component, expected):
            raise _bad(
                "component",
                type(component).__name__,
                f"kind {kind!r} holds {expected.__name__} objects",
            )
        own_name = getattr(component, "name", name) if expected is not None else name
        if isinstance(own_name, str) and own_name != name:
            # One breaker under two names: two health checks, two snapshot
            # entries and a registry name that is not the one in its logs.
            raise _bad(
                "name",
                name,
                f"the {type(component).__name__} is named {own_name!r}; register it as that",
            )
        store = self._components.setdefault(kind, {})
        current = store.get(name)
        if current is not None and current is not component and not replace:
            raise _bad(
                "name",
                name,
                f"a {kind} component named {name!r} is already registered (pass replace=True)",
            )
        store[name] = component
        if health_check is not None:
            self._health_factories[kind] = health_check
            self._sync_checks(kind)
        else:
            self._sync_check(kind, name)
        return component

    def unregister(self, kind: str, name: str) -> Component:
        """Forget a component (and the health check the registry made for it)."""
        component = self.get(kind, name)
        del self._components[kind][name]
        self._sync_check(kind, name)
        return component

    def get(self, kind: str, name: str) -> Component:
        """The ``kind`` component called ``name``; a missing one is a KeyError naming the known."""
        store = self._components.get(kind, {})
        try:
            return store[name]
        except KeyError:
            known = ", ".join(sorted(store)) or "none"
            raise KeyError(f"no {kind} component {name!r}; known: {known}") from None

    def components(self, kind: str) -> Mapping[str, Component]:
        """Every ``kind`` component by name (a read-only live view; empty for a new kind)."""
        return MappingProxyType(self._components.setdefault(kind, {}))

    @property
    def kinds(self) -> tuple[str, ...]:
        """The kinds that hold at least one component, sorted."""
        return tuple(sorted(kind for kind, store in self._components.items() if store))

    # --------------------------------------------------------------- breakers

    def _breaker_defaults(self) -> dict[str, Any]:
        cfg = self._config
        return {
            "failure_threshold": cfg.default_failure_threshold,
            "success_threshold": cfg.default_success_threshold,
            "timeout": cfg.default_circuit_timeout,
        }

    def circuit_breaker(
        self, name: str, config: CircuitBreakerConfig | None = None, **settings: Any
    ) -> CircuitBreaker:
        """The breaker called ``name``, created on first use.

        ``config`` (used as given) or keyword ``settings`` (fields of
        :class:`CircuitBreakerConfig`, over the registry's defaults)
        configure a new breaker. Asking again with settings that differ from
        the existing breaker's is an error that names each differing field;
        asking with none returns it as it is.
        """
        if config is not None and settings:
            raise TypeError("pass either a CircuitBreakerConfig or keyword settings, not both")
        check_name("ResilienceRegistry", name)
        existing = self._components.get(CIRCUIT_BREAKERS, {}).get(name)
        if existing is not None:
            breaker = cast("CircuitBreaker", existing)
            if config is not None and config is not breaker.config:
                breaker.config.check_same(config, owner=f"breaker {name!r}", via="breaker.config")
            elif settings:
                wanted = CircuitBreakerConfig(name=name, **{**self._breaker_defaults(), **settings})
                breaker.config.check_same(
                    wanted,
                    owner=f"breaker {name!r}",
                    via="breaker.config",
                    fields=settings,
                )
            return breaker
        if config is None:
            config = CircuitBreakerConfig(name=name, **{**self._breaker_defaults(), **settings})
        breaker = CircuitBreaker(name, config, clock=self.clock, classifier=self.classifier)
        return self.register(CIRCUIT_BREAKERS, name, breaker)

    @property
    def breakers(self) -> dict[str, CircuitBreaker]:
        """Every breaker, by name (a copy)."""
        return cast("dict[str, CircuitBreaker]", dict(self._components.get(CIRCUIT_BREAKERS, {})))

    def remove_circuit_breaker(self, name: str) -> None:
        """Forget a breaker (a missing name is an error naming the known ones)."""
        self.unregister(CIRCUIT_BREAKERS, name)

    # --------------------------------------------------------------- policies

    def _existing(
        self, kind: str, name: str, config: ConfigModel | None, settings: Mapping[str, Any]
    ) -> Any:
        """The existing ``kind`` component ``name`` (None: none yet), after
        checking that ``config`` or ``settings`` agree with its own."""
        if name is not None:
            check_name("ResilienceRegistry", name)
        existing: Any = self._components.get(kind, {}).get(name)
        owner = f"{_LABELS.get(kind, kind)} {name!r}"
        if existing is not None and config is not None and config is not existing.config:
            existing.config.check_same(config, owner=owner, via="its config")
        elif existing is not None and settings:
            # The existing settings, with the asked-for ones on top, validated.
            current = existing.config.model_dump(exclude={"name"})
            if "max_retries" in settings:
                current.pop("max_attempts", None)
            wanted = type(existing.config)(**{**current, **settings, "name": existing.config.name})
            fields = ["max_attempts" if k == "max_retries" else k for k in settings]
            existing.config.check_same(wanted, owner=owner, via="its config", fields=fields)
        return existing

    def _policy_defaults(self, kind: str) -> dict[str, Any]:
        cfg = self._config
        if kind == RETRY_POLICIES:
            return {
                "max_attempts": cfg.default_max_retries + 1,
                "base_delay": cfg.default_base_delay,
                "max_delay": cfg.default_max_delay,
                "max_elapsed": cfg.default_retry_max_elapsed,
            }
        if kind == RATE_LIMITERS:
            rate = cfg.default_rate_limit
            if rate is None:
                return {}
            burst = cfg.default_rate_limit_burst
            return {"rate": rate, "capacity": float(burst) if burst else max(1.0, rate)}
        if kind == BULKHEADS:
            limit = cfg.default_max_concurrent
            return {} if limit is None else {"max_concurrent": limit}
        if kind == TIMEOUTS:
            seconds = cfg.default_call_timeout
            return {} if seconds is None else {"seconds": seconds}
        return {}

    def retry_policy(
        self, name: str, config: RetryConfig | None = None, **settings: Any
    ) -> RetryPolicy:
        """The retry policy called ``name``, created on first use.

        Defaults: ``max_attempts = default_max_retries + 1``, ``base_delay``,
        ``max_delay``, ``max_elapsed`` from the configuration; ``settings``
        (fields of :class:`RetryConfig`, ``max_retries`` included) win.
        """
        if config is not None and settings:
            raise TypeError("pass either a RetryConfig or keyword settings, not both")
        existing = self._existing(RETRY_POLICIES, name, config, settings)
        if existing is not None:
            return cast("RetryPolicy", existing)
        if config is None:
            defaults = self._policy_defaults(RETRY_POLICIES)
            if "max_retries" in settings:
                defaults.pop("max_attempts")
            config = RetryConfig(**{**defaults, **settings, "name": name})
        elif config.name != name:
            if "name" in config.model_fields_set:
                raise ConfigurationError(
                    [FieldError("RetryConfig", "name", config.name, f"must be {name!r}")]
                )
            config.name = name
        policy = RetryPolicy(config, clock=self.clock, classifier=self.classifier)
        return self.register(RETRY_POLICIES, name, policy)

    def rate_limiter(
        self, name: str, config: RateLimiterConfig | None = None, **settings: Any
    ) -> RateLimiter:
        """The rate limiter called ``name``, created on first use.

        Defaults: ``rate = default_rate_limit`` (calls per second) and
        ``capacity = default_rate_limit_burst`` (else one second's worth, at
        least 1); without a ``default_rate_limit`` pass ``rate`` and
        ``capacity``.
        """
        if config is not None and settings:
            raise TypeError("pass either a RateLimiterConfig or keyword settings, not both")
        existing = self._existing(RATE_LIMITERS, name, config, settings)
        if existing is not None:
            return cast("RateLimiter", existing)
        if config is None:
            config = RateLimiterConfig(
                **{**self._policy_defaults(RATE_LIMITERS), **settings, "name": name}
            )
        limiter = RateLimiter(name, config, clock=self.clock)
        return self.register(RATE_LIMITERS, name, limiter)

    def bulkhead(
        self, name: str, config: BulkheadConfig | None = None, **settings: Any
    ) -> Bulkhead:
        """The bulkhead called ``name`` (``max_concurrent = default_max_concurrent`` when set)."""
        if config is not None and settings:
            raise TypeError("pass either a BulkheadConfig or keyword settings, not both")
        existing = self._existing(BULKHEADS, name, config, settings)
        if existing is not None:
            return cast("Bulkhead", existing)
        if config is None:
            defaults = self._policy_defaults(BULKHEADS)
            config = BulkheadConfig(**{**defaults, **settings, "name": name})
        return self.register(BULKHEADS, name, Bulkhead(name, config))

    def timeout(
        self, name: str, config: TimeoutConfig | None = None, **settings: Any
    ) -> TimeoutPolicy:
        """The timeout called ``name`` (``seconds = default_call_timeout`` when set)."""
        if config is not None and settings:
            raise TypeError("pass either a TimeoutConfig or keyword settings, not both")
        existing = self._existing(TIMEOUTS, name, config, settings)
        if existing is not None:
            return cast("TimeoutPolicy", existing)
        if config is None:
            config = TimeoutConfig(**{**self._policy_defaults(TIMEOUTS), **settings, "name": name})
        return self.register(TIMEOUTS, name, TimeoutPolicy(name, config))

    def pipeline(
        self,
        name: str,
        *,
        exchange_id: str | None = None,
        write: bool | None = None,
        idempotent: bool | None = None,
    ) -> ResiliencePipeline:
        """The pipeline called ``name``, made of this registry's components of that name.

        Always a circuit breaker; a retry policy when ``default_max_retries``
        > 0; a bulkhead, a rate limiter and an attempt timeout when
        ``default_max_concurrent``, ``default_rate_limit`` and
        ``default_call_timeout`` are set. ``exchange_id`` selects the
        classifier's per-exchange codes; ``write`` marks operations with side
        effects (an ambiguous outcome is then retried only if ``idempotent``).
        Asking again returns the same pipeline; options that differ from the
        first request's are an error naming them.
        """
        cfg = self._config
        breaker_settings: dict[str, Any] = {}
        retry_settings: dict[str, Any] = {}
        if exchange_id is not None:
            breaker_settings["exchange_id"] = retry_settings["exchange_id"] = exchange_id
        if write is not None:
            retry_settings["write"] = write
        if idempotent is not None:
            retry_settings["idempotent"] = idempotent
        # Getting the parts first checks the options against existing ones.
        breaker = self.circuit_breaker(name, **breaker_settings)
        retry = self.retry_policy(name, **retry_settings) if cfg.default_max_retries > 0 else None
        existing = self._components.get(PIPELINES, {}).get(name)
        if existing is not None:
            return cast("ResiliencePipeline", existing)
        pipeline = ResiliencePipeline(
            name,
            retry=retry,
            circuit_breaker=breaker,
            bulkhead=self.bulkhead(name) if cfg.default_max_concurrent is not None else None,
            rate_limiter=self.rate_limiter(name) if cfg.default_rate_limit is not None else None,
            timeout=self.timeout(name) if cfg.default_call_timeout is not None else None,
        )
        return self.register(PIPELINES, name, pipeline)

    # ------------------------------------------------------------------ pools

    def pool_config(self, **settings: Any) -> PoolConfig:
        """A :class:`PoolConfig` with the configuration's pool defaults, ``settings`` winning."""
        cfg = self._config
        defaults: dict[str, Any] = {
            "max_connections": cfg.default_max_connections,
            "max_connections_per_host": cfg.default_max_connections_per_host,
            "connection_timeout": cfg.default_connection_timeout,
        }
        total = settings.get("max_connections")
        if "max_connections_per_host" not in settings and type(total) is int and total >= 1:
            # An explicit total caps the configured per-host limit (0 stays unlimited).
            defaults["max_connections_per_host"] = min(cfg.default_max_connections_per_host, total)
        return PoolConfig(**{**defaults, **settings})

    @property
    def pools(self) -> ConnectionPoolManager:
        """The connection pool manager (created on first use).

        Its pools are this registry's :data:`CONNECTION_POOLS` components; a
        pool asked for without a config gets :meth:`pool_config`.
        """
        if self._pools is None:
            self._pools = ConnectionPoolManager(
                default_config=self.pool_config(), clock=self.clock, store=self._pool_store
            )
        return self._pools

    def connection_pool(self, name: str, config: PoolConfig | None = None) -> ConnectionPool:
        """The pool called ``name`` (created on first use; ``config`` is used as given)."""
        check_name("ResilienceRegistry", name)
        pool = self.pools.get_pool(name, config)
        self._sync_check(CONNECTION_POOLS, name)
        return pool

    # ----------------------------------------------------------------- health

    def health_check_config(self, name: str | None = None, **settings: Any) -> HealthCheckConfig:
        """A :class:`HealthCheckConfig` with ``interval = default_health_check_interval``.

        ``timeout`` defaults to 10 s, or the interval when shorter; ``settings`` win.
        """
        values: dict[str, Any] = {"interval": self._config.default_health_check_interval}
        values.update(settings)
        if "timeout" not in settings and isinstance(values["interval"], int | float):
            values["timeout"] = min(_HEALTH_CHECK_TIMEOUT, values["interval"])
        return HealthCheckConfig(name=name, **values)

    @property
    def health(self) -> HealthService:
        """The health service (created on first use, on this registry's clock).

        It holds a health check for every breaker and pool of the registry
        (``circuit_breaker.<name>``, ``pool.<name>``), kept in step as they
        come and go.
        """
        if self._health is None:
            self._health = HealthService(clock=self.clock)
            self._sync_checks()
        else:
            # Pools made straight through ``registry.pools`` (few): catch up.
            self._sync_checks(CONNECTION_POOLS)
        return self._health

    def _sync_checks(self, only: str | None = None) -> None:
        """Make the registry's health checks match its components (all, or one kind)."""
        if self._health is None:
            return
        for kind, name in [key for key in self._checks if only in (None, key[0])]:
            self._sync_check(kind, name)
        for kind in self._health_factories if only is None else (only,):
            for name in list(self._components.get(kind, {})):
                self._sync_check(kind, name)

    def _sync_check(self, kind: str, name: str) -> None:
        """Give component ``name`` of ``kind`` its health check, or drop a stale one."""
        service = self._health
        if service is None:
            return
        component = self._components.get(kind, {}).get(name)
        made = self._checks.get((kind, name))
        if made is not None:
            check, target = made
            if target is component:
                return
            del self._checks[(kind, name)]
            if service.checks.get(check.name) is check:
                service.unregister_health_check(check.name)
        factory = self._health_factories.get(kind)
        if component is None or factory is None:
            return
        check = factory(component, self.health_check_config())
        if check.name in service.checks:
            return  # the user registered a check of that name: leave it
        service.register_health_check(check)
        self._checks[(kind, name)] = (check, component)

    async def start(self) -> None:
        """Start background health checks, when ``enable_health_checks`` is on.

        With it off, checks still run on demand (``registry.health.run_checks()``).
        """
        self._sync_checks()
        if self._config.enable_health_checks:
            await self.health.start()

    # -------------------------------------------------------------- lifecycle

    def _config_changed(self, field: str) -> None:
        if field in _POOL_FIELDS and self._pools is not None:
            self._pools.default_config = self.pool_config()
        elif field == "default_health_check_interval":
            interval = self._config.default_health_check_interval
            for check, _ in self._checks.values():
                if check.config.timeout > interval:
                    check.config.timeout = interval
                check.config.interval = interval

    async def aclose(self) -> None:
        """Stop health monitoring, close every pool, then ``aclose()`` other components."""
        if self._health is not None:
            await self._health.stop()
        if self._pools is not None:
            await self._pools.close()
            self._sync_checks(CONNECTION_POOLS)  # the pools are gone: so are their checks
        for kind, store in self._components.items():
            if kind == CONNECTION_POOLS:
                continue
            for component in list(store.values()):
                close = getattr(component, "aclose", None)
                if callable(close):
                    result = close()
                    if inspect.isawaitable(result):
                        await result

    def snapshot(self) -> dict[str, Any]:
        """JSON-ready state: ``{kind: {name: snapshot}}`` for every kind that holds
        a component, plus ``"health"`` once the health service exists."""
        data: dict[str, Any] = {
            kind: {name: _plain(c.snapshot()) for name, c in sorted(self._components[kind].items())}
            for kind in self.kinds
        }
        if self._health is not None:
            data["health"] = self._health.snapshot()
        return data

    def __repr__(self) -> str:
        counts = ", ".join(f"{kind}={len(self._components[kind])}" for kind in self.kinds)
        return (
            f"<ResilienceRegistry breakers={len(self._components.get(CIRCUIT_BREAKERS, {}))} "
            f"pools={'on' if self._pools is not None else 'off'} "
            f"health={'on' if self._health is not None else 'off'} components=[{counts}]>"
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


def get_connection_pool(name: str, config: PoolConfig | None = None) -> ConnectionPool:
    """The default registry's pool called ``name`` (created on first use).

    ``get_connection_pool("exchange_api", PoolConfig(max_connections=50))``.
    """
    return default_registry().connection_pool(name, config)


def get_health_service() -> HealthService:
    """The default registry's health service (created on first use)."""
    return default_registry().health


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
