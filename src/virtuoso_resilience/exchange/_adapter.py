"""``ResilientExchange``: every ccxt method protected by the policies of its group."""

from __future__ import annotations

import asyncio
import math
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any, ClassVar, Generic, TypeVar, cast
from urllib.parse import urlsplit

from ..classify import DEFAULT_CLASSIFIER, Classifier, Outcome, OutcomeKind, Signal, attach_response
from ..clock import MONOTONIC, Clock
from ..errors import ResilienceTimeoutError
from ..health import HealthCheck, HealthService
from ..policies import Bulkhead, CircuitBreaker, CircuitBreakerConfig
from ..pools import ConnectionPool, ConnectionPoolManager, PoolConfig
from ._codec import ClientOrderIdCodec, codec_for
from ._config import ExchangeResilienceConfig, GroupConfig, MethodGroup
from ._errors import ExchangeBannedError, MaintenanceError
from ._groups import MethodSpec, spec_for
from ._limits import AccountLimiter, CallState, current_call
from ._maintenance import MaintenanceGuard
from ._orders import OrderTracker, PendingOrder
from ._session import ObservingSession
from ._stale import StaleCache

__all__ = ["ResilientExchange", "create_resilient_exchange"]

E = TypeVar("E")

_RETRYABLE = frozenset({OutcomeKind.TRANSIENT, OutcomeKind.RATE_LIMITED, OutcomeKind.REJECTED})
_UNAVAILABLE = frozenset(
    {
        OutcomeKind.TRANSIENT,
        OutcomeKind.RATE_LIMITED,
        OutcomeKind.REJECTED,
        OutcomeKind.MAINTENANCE,
        OutcomeKind.AMBIGUOUS,
    }
)
# Answers that are not the exchange failing: the breaker must not count them.
_NOT_BREAKER_SIGNALS = frozenset(
    {Signal.CLOCK_SKEW, Signal.RATE_LIMIT, Signal.MAINTENANCE, Signal.IP_BAN, Signal.CANCEL_PENDING}
)
_ORDER_CREATORS = {
    "create_limit_order": ("limit", None),
    "create_market_order": ("market", None),
    "create_limit_buy_order": ("limit", "buy"),
    "create_limit_sell_order": ("limit", "sell"),
    "create_market_buy_order": ("market", "buy"),
    "create_market_sell_order": ("market", "sell"),
}


@dataclass(slots=True)
class _Refused:
    """An answer the breaker must not count as a failure (clock skew, rate
    limit, maintenance, ban): handed out of the breaker as a value."""

    error: Exception
    outcome: Outcome


class _Group:
    """One method group's policies."""

    __slots__ = ("__weakref__", "breaker", "bulkhead", "config", "group")

    def __init__(
        self,
        group: MethodGroup,
        config: GroupConfig,
        exchange_id: str,
        clock: Clock,
        classifier: Classifier,
    ) -> None:
        self.group = group
        self.config = config
        name = f"{exchange_id}.{group.value}"
        self.breaker = CircuitBreaker(
            name,
            CircuitBreakerConfig(
                failure_threshold=config.failure_threshold,
                success_threshold=config.success_threshold,
                timeout=config.recovery_timeout,
                exchange_id=exchange_id,
            ),
            clock=clock,
            classifier=classifier,
        )
        self.bulkhead = Bulkhead(
            name, max_concurrent=config.max_concurrent, max_waiting=config.max_waiting
        )
        config.subscribe(self._changed)

    # GroupConfig field -> (policy attribute, that policy's config field)
    _FOLLOW: ClassVar[dict[str, tuple[str, str]]] = {
        "failure_threshold": ("breaker", "failure_threshold"),
        "success_threshold": ("breaker", "success_threshold"),
        "recovery_timeout": ("breaker", "timeout"),
        "max_concurrent": ("bulkhead", "max_concurrent"),
        "max_waiting": ("bulkhead", "max_waiting"),
    }

    def _changed(self, field: str) -> None:
        """A run-time change of the group's config reaches its breaker and bulkhead."""
        target = self._FOLLOW.get(field)
        if target is not None:
            policy = getattr(self, target[0])
            setattr(policy.config, target[1], getattr(self.config, field))


def _host_of(exchange: Any) -> str:
    urls = getattr(exchange, "urls", None) or {}
    api = urls.get("api") if isinstance(urls, dict) else None
    candidates: list[str] = []
    if isinstance(api, str):
        candidates.append(api)
    elif isinstance(api, dict):
        for value in api.values():
            if isinstance(value, str):
                candidates.append(value)
            elif isinstance(value, dict):
                candidates.extend(v for v in value.values() if isinstance(v, str))
    for url in candidates:
        host = urlsplit(url.replace("{hostname}", getattr(exchange, "hostname", "") or "")).netloc
        if host:
            return host
    return str(getattr(exchange, "id", "exchange"))


class ResilientExchange(Generic[E]):
    """A ccxt async exchange whose every public method is protected.

    Methods keep their names, signatures and return values; attributes that
    are not methods pass through to the wrapped exchange (reads and writes).
    Use :func:`create_resilient_exchange` to get it typed as the exchange.
    """

    def __init__(
        self,
        exchange: E,
        config: ExchangeResilienceConfig | None = None,
        *,
        pools: ConnectionPoolManager | None = None,
        pool_config: PoolConfig | None = None,
        clock: Clock = MONOTONIC,
        classifier: Classifier = DEFAULT_CLASSIFIER,
        rng: random.Random | None = None,
        health: HealthService | None = None,
    ) -> None:
        raw: Any = exchange
        if config is None:
            config = ExchangeResilienceConfig()
        exchange_id = config.exchange_id or str(getattr(raw, "id", "exchange"))
        d = self.__dict__
        d["_exchange"] = exchange
        d["_config"] = config
        d["_exchange_id"] = exchange_id
        d["_clock"] = clock
        d["_classifier"] = classifier
        d["_rng"] = rng or random.Random()
        d["_groups"] = {
            group: _Group(group, config.group(group), exchange_id, clock, classifier)
            for group in MethodGroup
        }
        rate_limit_ms = float(getattr(raw, "rateLimit", 0) or 0)
        rate = (
            1000.0 / rate_limit_ms if math.isfinite(rate_limit_ms) and rate_limit_ms > 0 else 1000.0
        )
        limiter = AccountLimiter(
            f"{exchange_id}:{_account_label(raw)}",
            rate=rate,
            capacity=max(config.rate_limit_burst, 1.0),
            safety=config.rate_limit_safety,
            weight_limit_per_minute=config.weight_limit_per_minute,
            max_ban=config.max_ban,
            clock=clock,
        )
        d["_limiter"] = limiter
        own_pools = pools is None
        d["_pools"] = ConnectionPoolManager() if pools is None else pools
        d["_own_pools"] = own_pools
        d["_pool_config"] = pool_config
        d["_host"] = _host_of(raw)
        d["_pool"] = None
        d["_previous_session"] = None
        d["_codec"] = codec_for(exchange_id)
        d["_orders"] = OrderTracker(self, config, clock)
        d["_stale"] = StaleCache(config, clock)
        d["_maintenance"] = MaintenanceGuard(self, config, clock)
        d["_wrappers"] = {}
        d["_resyncs"] = 0
        d["_closed"] = False
        # ccxt: retries happen here, once; our limiter replaces its throttle.
        options = getattr(raw, "options", None)
        if isinstance(options, dict):
            options["maxRetriesOnFailure"] = 0
        raw.enableRateLimit = True
        raw.throttler = limiter
        if health is not None:
            self.register_health(health)

    # ------------------------------------------------------------ plumbing
    @staticmethod
    def of(exchange: object) -> ResilientExchange[Any]:
        """``exchange`` (from :func:`create_resilient_exchange`) typed as the adapter."""
        if not isinstance(exchange, ResilientExchange):
            raise TypeError(f"not a ResilientExchange: {type(exchange).__name__}")
        return exchange

    @property
    def exchange(self) -> E:
        """The wrapped ccxt exchange (unprotected: calls on it bypass the adapter)."""
        return cast(E, self.__dict__["_exchange"])

    @property
    def config(self) -> ExchangeResilienceConfig:
        return cast(ExchangeResilienceConfig, self.__dict__["_config"])

    @property
    def exchange_id(self) -> str:
        return cast(str, self.__dict__["_exchange_id"])

    @property
    def limiter(self) -> AccountLimiter:
        """The account's weighted limiter (installed as ccxt's throttler)."""
        return cast(AccountLimiter, self.__dict__["_limiter"])

    @property
    def codec(self) -> ClientOrderIdCodec:
        return cast(ClientOrderIdCodec, self.__dict__["_codec"])

    @property
    def maintenance(self) -> MaintenanceGuard:
        return cast(MaintenanceGuard, self.__dict__["_maintenance"])

    @property
    def pool(self) -> ConnectionPool | None:
        """The host's connection pool, once the first call opened it."""
        return cast("ConnectionPool | None", self.__dict__["_pool"])

    def breaker(self, group: MethodGroup | str) -> CircuitBreaker:
        """The circuit breaker of ``group``."""
        return self._group(MethodGroup(group)).breaker

    def bulkhead(self, group: MethodGroup | str) -> Bulkhead:
        """The bulkhead of ``group``."""
        return self._group(MethodGroup(group)).bulkhead

    def _group(self, group: MethodGroup) -> _Group:
        groups: dict[MethodGroup, _Group] = self.__dict__["_groups"]
        return groups[group]

    def _ensure_session(self) -> None:
        if self.__dict__["_pool"] is not None:
            return
        raw: Any = self.__dict__["_exchange"]
        manager: ConnectionPoolManager = self.__dict__["_pools"]
        pool = manager.get_pool(f"exchange:{self.__dict__['_host']}", self.__dict__["_pool_config"])
        self.__dict__["_pool"] = pool
        previous = getattr(raw, "session", None)
        if previous is not None and getattr(raw, "own_session", False):
            self.__dict__["_previous_session"] = previous
        raw.session = ObservingSession(pool.session, self.limiter)
        raw.own_session = False

    def __getattr__(self, name: str) -> Any:
        raw = self.__dict__["_exchange"]
        value = getattr(raw, name)
        if not callable(value) or not asyncio.iscoroutinefunction(value):
            return value
        wrappers: dict[str, Any] = self.__dict__["_wrappers"]
        wrapper = wrappers.get(name)
        if wrapper is None:
            wrapper = self._make_wrapper(name, value)
            if wrapper is None:
                return value
            wrappers[name] = wrapper
            self.__dict__[name] = wrapper  # later look-ups skip __getattr__
        return wrapper

    def __setattr__(self, name: str, value: Any) -> None:
        if name in self.__dict__ or name in type(self).__dict__:
            object.__setattr__(self, name, value)
        else:
            setattr(self.__dict__["_exchange"], name, value)

    def __dir__(self) -> list[str]:
        return sorted(set(super().__dir__()) | set(dir(self.__dict__["_exchange"])))

    def _make_wrapper(self, name: str, method: Callable[..., Awaitable[Any]]) -> Any:
        if name == "create_order":
            return self.create_order
        if name in _ORDER_CREATORS:
            order_type, side = _ORDER_CREATORS[name]
            return self._creator(order_type, side)
        if name == "cancel_order":
            return self.cancel_order
        spec = spec_for(name)
        if spec is None:
            return None
        stale = self.__dict__["_stale"]

        async def wrapper(*args: Any, **kwargs: Any) -> Any:
            if spec.stale_kind is None:
                return await self._invoke(spec, method, args, kwargs)
            try:
                result = await self._invoke(spec, method, args, kwargs)
            except Exception as exc:
                # Paused by this adapter (maintenance, ban): the exchange is unavailable.
                paused = isinstance(exc, MaintenanceError | ExchangeBannedError)
                outcome = self._outcome(exc, False)
                return stale.serve_or_raise(spec, args, kwargs, exc, outcome, paused)
            stale.store(spec, args, kwargs, result)
            return result

        wrapper.__name__ = name
        wrapper.__qualname__ = f"ResilientExchange.{name}"
        wrapper.__doc__ = method.__doc__
        wrapper.__wrapped__ = method  # type: ignore[attr-defined]
        return wrapper

    def _creator(self, order_type: str, side: str | None) -> Callable[..., Awaitable[Any]]:
        async def create(*args: Any, **kwargs: Any) -> Any:
            symbol, rest = args[0], list(args[1:])
            if side is None:
                return await self.create_order(symbol, order_type, *rest, **kwargs)
            return await self.create_order(symbol, order_type, side, *rest, **kwargs)

        return create

    # --------------------------------------------------------------- calls
    def _outcome(self, exc: Exception, write: bool) -> Outcome:
        classifier: Classifier = self.__dict__["_classifier"]
        return classifier.classify(exc, write=write, exchange_id=self.__dict__["_exchange_id"])

    async def _attempt(
        self,
        group: _Group,
        spec: MethodSpec,
        method: Callable[..., Awaitable[Any]],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> Any:
        state = CallState(spec.name)
        token = current_call.set(state)
        limit = group.config.timeout
        try:
            if limit * 1000.0 >= self.__dict__["_exchange"].timeout:
                # ccxt's own request timeout (ms) is the tighter bound: no extra timer.
                return await method(*args, **kwargs)
            deadline = asyncio.timeout(limit)
            try:
                async with deadline:
                    return await method(*args, **kwargs)
            except TimeoutError as exc:
                if deadline.expired():
                    raise ResilienceTimeoutError(spec.name, limit) from exc
                raise
        except Exception as exc:
            attach_response(exc, status=state.status, headers=state.headers)
            outcome = self._outcome(exc, spec.write)
            signal = outcome.signal
            if (
                signal in _NOT_BREAKER_SIGNALS
                or outcome.kind in (OutcomeKind.MAINTENANCE, OutcomeKind.RATE_LIMITED)
                or isinstance(exc, ExchangeBannedError)  # our own stop, raised by the throttle
            ):
                return _Refused(exc, outcome)
            raise
        finally:
            current_call.reset(token)
            if state.probe:
                self.__dict__["_limiter"].finish(state)

    def _backoff(self, config: GroupConfig, attempt: int) -> float:
        ceiling = min(config.max_delay, config.base_delay * 2.0 ** min(attempt - 1, 60))
        rng: random.Random = self.__dict__["_rng"]
        return rng.uniform(0.0, ceiling)

    async def _invoke(
        self,
        spec: MethodSpec,
        method: Callable[..., Awaitable[Any]],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        *,
        retry_ambiguous: bool = False,
    ) -> Any:
        """One protected call: breaker, bulkhead, attempt timeout, retries with
        backoff, clock re-sync, rate-limit drain, ban and maintenance pauses."""
        d = self.__dict__
        if d["_pool"] is None:
            self._ensure_session()
        group: _Group = d["_groups"][spec.group]
        config = group.config
        limiter: AccountLimiter = d["_limiter"]
        guard: MaintenanceGuard = d["_maintenance"]
        attempt = 1
        resynced = False
        while True:
            if guard.active:
                await guard.wait(spec.name)
            if limiter.banned_until is not None:
                banned = limiter.ban_remaining()
                if banned > 0:
                    raise ExchangeBannedError(self.exchange_id, banned)
            try:
                # Bulkhead outside the breaker: a call that waited for a slot
                # meets the breaker as it is then (open after an outage began).
                result = await group.bulkhead.call_async(
                    group.breaker.call_async, self._attempt, group, spec, method, args, kwargs
                )
            except Exception as exc:
                error: Exception = exc
                outcome = self._outcome(exc, spec.write)
            else:
                if type(result) is not _Refused:
                    return result
                error, outcome = result.error, result.outcome
            signal = outcome.signal
            if signal is Signal.CLOCK_SKEW:
                if resynced:
                    raise error  # re-synced and still refused: retrying will not help
                resynced = True
                await self._resync_time()
                continue
            if signal is Signal.IP_BAN or outcome.status == 418:
                limiter.ban(outcome.retry_after)
                raise error
            if signal is Signal.MAINTENANCE or outcome.kind is OutcomeKind.MAINTENANCE:
                guard.enter(outcome.retry_after)
                continue  # the guard waits (or raises MaintenanceError) at the top
            if signal is Signal.RATE_LIMIT or outcome.kind is OutcomeKind.RATE_LIMITED:
                limiter.drain(outcome.retry_after)
                if attempt >= config.max_attempts:
                    raise error
                attempt += 1
                continue  # the limiter's pause is the wait, for every caller
            retryable = outcome.kind in _RETRYABLE or (
                retry_ambiguous and outcome.kind is OutcomeKind.AMBIGUOUS
            )
            if not retryable or attempt >= config.max_attempts:
                raise error
            delay = self._backoff(config, attempt)
            if outcome.retry_after is not None:
                if outcome.retry_after > config.max_delay * 4:
                    raise error  # e.g. an open breaker: do not sleep for its whole timeout
                delay = max(delay, outcome.retry_after)
            attempt += 1
            await self.__dict__["_clock"].sleep(delay)

    async def _resync_time(self) -> None:
        raw: Any = self.__dict__["_exchange"]
        self.__dict__["_resyncs"] += 1
        spec = MethodSpec("fetch_time", MethodGroup.MARKET_DATA, False)
        state = CallState("load_time_difference")
        token = current_call.set(state)
        try:
            await raw.load_time_difference()
        except Exception:
            pass  # the retry that follows fails again and is reported
        finally:
            current_call.reset(token)
            if state.probe:
                self.__dict__["_limiter"].finish(state)
        del spec

    # ---------------------------------------------------------- order safety
    async def create_order(
        self,
        symbol: str,
        type: str,
        side: str,
        amount: float,
        price: float | None = None,
        params: dict[str, Any] | None = None,
    ) -> Any:
        """ccxt's ``create_order``, never duplicated: see ``docs/exchange.md``."""
        if params is not None and not isinstance(params, dict):
            raise TypeError(f"create_order params must be a dict, not {params.__class__.__name__}")
        orders: OrderTracker = self.__dict__["_orders"]
        return await orders.create(symbol, type, side, amount, price, params or {})

    async def cancel_order(
        self, id: str, symbol: str | None = None, params: dict[str, Any] | None = None
    ) -> Any:
        """ccxt's ``cancel_order``; an ``OrderNotFound`` after an ambiguous first
        attempt means the order is gone, ``CancelPending`` means re-query."""
        orders: OrderTracker = self.__dict__["_orders"]
        return await orders.cancel(id, symbol, params or {})

    def pending_orders(self) -> list[PendingOrder]:
        """Orders whose fate is not known yet (being placed, or unknown)."""
        orders: OrderTracker = self.__dict__["_orders"]
        return orders.pending()

    def register_health(self, service: HealthService) -> list[HealthCheck]:
        """Register this exchange's health checks with ``service`` (see ``docs/exchange.md``)."""
        from ._health import register_exchange_health

        return register_exchange_health(self, service, self.fetch_time)

    def data_age(self, method: str, symbol: str) -> float | None:
        """Age (seconds) of the last good ``method`` value for ``symbol``; ``None``: none."""
        stale: StaleCache = self.__dict__["_stale"]
        return stale.age(method, symbol)

    # ----------------------------------------------------------- lifecycle
    async def close(self) -> None:
        """Close the exchange, the maintenance poller and the pools this adapter made."""
        if self.__dict__["_closed"]:
            return
        self.__dict__["_closed"] = True
        await self.maintenance.close()
        raw: Any = self.__dict__["_exchange"]
        try:
            await raw.close()
        finally:
            previous = self.__dict__["_previous_session"]
            if previous is not None and not previous.closed:
                await previous.close()
            if self.__dict__["_own_pools"]:
                manager: ConnectionPoolManager = self.__dict__["_pools"]
                await manager.close()

    async def __aenter__(self) -> ResilientExchange[E]:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    def snapshot(self) -> dict[str, Any]:
        """JSON-ready state: breakers, bulkheads, limiter, maintenance, pending orders."""
        groups: dict[MethodGroup, _Group] = self.__dict__["_groups"]
        return {
            "exchange": self.exchange_id,
            "groups": {
                g.value: {
                    "circuit_breaker": grp.breaker.snapshot().as_dict(),
                    "bulkhead": grp.bulkhead.snapshot(),
                }
                for g, grp in groups.items()
            },
            "rate_limit": self.limiter.snapshot(),
            "maintenance": self.maintenance.snapshot(),
            "pending_orders": len(self.pending_orders()),
            "time_resyncs": self.__dict__["_resyncs"],
        }

    def __repr__(self) -> str:
        groups: dict[MethodGroup, _Group] = self.__dict__["_groups"]
        states = " ".join(f"{g.value}={grp.breaker.state.value}" for g, grp in groups.items())
        return (
            f"<ResilientExchange {self.exchange_id} {states} "
            f"pending_orders={len(self.pending_orders())} "
            f"maintenance={self.maintenance.active} limiter={self.limiter!r}>"
        )


def _account_label(raw: Any) -> str:
    """A label of the account that never shows the key: a short fingerprint."""
    import hashlib

    key = getattr(raw, "apiKey", None)
    if not key:
        return "public"
    return "key:" + hashlib.sha256(str(key).encode()).hexdigest()[:10]


def create_resilient_exchange(
    exchange: E,
    config: ExchangeResilienceConfig | None = None,
    *,
    pools: ConnectionPoolManager | None = None,
    pool_config: PoolConfig | None = None,
    clock: Clock = MONOTONIC,
    classifier: Classifier = DEFAULT_CLASSIFIER,
    health: HealthService | None = None,
) -> E:
    """Wrap a ``ccxt.async_support`` exchange: every method protected.

    The result is a :class:`ResilientExchange`, typed as the exchange you pass
    so that type checkers see ccxt's signatures; use
    :meth:`ResilientExchange.of` for the adapter's own methods
    (``pending_orders()``, ``snapshot()``...). With ``health``, the exchange's
    health checks are registered with that service.
    """
    adapter = ResilientExchange(
        exchange,
        config,
        pools=pools,
        pool_config=pool_config,
        clock=clock,
        classifier=classifier,
        health=health,
    )
    return cast(E, adapter)
