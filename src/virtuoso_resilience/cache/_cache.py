"""The resilient cache: a backend behind a breaker, a timeout and a retry, and
an in-memory fallback tier that serves while the backend is away and writes
back what it kept once the backend is back.

The one rule that makes it consistent: **at most one write per key is in
flight to the backend, and a key with a change the backend has not
acknowledged (a dirty key) is always read and written locally.** A write
marks its key dirty before it is sent and clean once acknowledged; a write
that fails, times out, is cancelled or is refused by the open breaker leaves
it dirty; a recovery task writes the dirty keys back, one at a time, after
a successful round trip, skipping any key whose own write is still in
flight. See ``docs/cache.md`` for the contract and its limits.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
import math
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Literal

from .._events import Listeners
from ..classify import DEFAULT_CLASSIFIER, Classifier, OutcomeKind
from ..clock import MONOTONIC, Clock
from ..errors import CircuitOpenError, ConfigurationError, FieldError
from ..health import CheckResult, HealthCheckConfig, HealthService, ServiceStatus, SimpleHealthCheck
from ..policies import CircuitBreaker, CircuitBreakerConfig, CircuitState, RetryConfig, RetryPolicy
from ._backends import Backend, make_backend
from ._config import CacheConfig
from ._deadline import Deadlines
from ._keys import check_key
from ._serial import CacheValueError, JsonSerializer, Serializer
from ._store import Entry, FallbackStore

__all__ = ["CacheEvent", "CacheHealth", "CacheRead", "ReadSource", "ResilientCache"]

log = logging.getLogger("virtuoso_resilience.cache")

ReadSource = Literal["backend", "fallback", "stale", "miss"]
"""Where a read's answer came from: the backend; the fallback tier (a value
not yet expired, or a local change the backend has not acknowledged); the
fallback tier past expiry under a stale rule; nowhere (a miss)."""

_CLOSED = CircuitState.CLOSED
_OPEN = CircuitState.OPEN
_MISSING: Any = object()
_BUSINESS = OutcomeKind.BUSINESS
_TRANSIENT = OutcomeKind.TRANSIENT


@dataclass(frozen=True, slots=True)
class CacheRead:
    """One read: whether a value was found, the value, and where it came from."""

    found: bool
    value: Any
    source: ReadSource


@dataclass(frozen=True, slots=True)
class CacheEvent:
    """The cache became degraded (the fallback serves) or recovered.

    ``at`` is the cache's clock time (seconds); ``dirty`` the local changes
    waiting to be written back; ``reason`` a short, secret-free text.
    """

    name: str
    degraded: bool
    at: float
    dirty: int
    reason: str


@dataclass(frozen=True, slots=True)
class CacheHealth:
    """The cache's health now. ``status`` is ``"healthy"`` or ``"degraded"``
    (the fallback serves; never "failed": callers still get answers)."""

    status: Literal["healthy", "degraded"]
    backend: str
    breaker: str
    degraded_for: float
    """Seconds since the backend last failed without recovering (0 when healthy)."""
    dirty: int
    """Local changes waiting to be written back."""
    fallback_entries: int
    reason: str


class _Counters:
    """Plain counters (read by snapshot())."""

    __slots__ = (
        "backend_errors_by_kind",
        "backend_errors_by_type",
        "backend_hits",
        "backend_misses",
        "degraded_episodes",
        "deletes_replayed",
        "fallback_hits",
        "fallback_misses",
        "fallback_refused",
        "fallback_writes",
        "loader_calls",
        "loader_errors",
        "rejected",
        "stale_hits",
        "swr_refreshes",
        "undecodable",
        "writebacks",
        "writebacks_dropped",
        "writebacks_refused",
        "writebacks_superseded",
    )

    def __init__(self) -> None:
        self.backend_hits = 0
        self.backend_misses = 0
        self.degraded_episodes = 0
        self.deletes_replayed = 0
        self.fallback_hits = 0
        self.fallback_misses = 0
        self.fallback_refused = 0
        self.fallback_writes = 0
        self.loader_calls = 0
        self.loader_errors = 0
        self.rejected = 0
        self.stale_hits = 0
        self.swr_refreshes = 0
        self.undecodable = 0
        self.writebacks = 0
        self.writebacks_dropped = 0
        self.writebacks_refused = 0
        self.writebacks_superseded = 0
        self.backend_errors_by_kind: dict[str, int] = {}
        self.backend_errors_by_type: dict[str, int] = {}


class ResilientCache:
    """A memcached or Redis cache that degrades to memory and recovers by itself.

    Build it with :func:`~virtuoso_resilience.cache.create_resilient_cache`
    (or directly: ``ResilientCache(client, config)``). ``clock`` (seconds)
    drives the breaker, the retry backoff, expiry and the recovery task;
    backend timeouts run on the event loop's clock. ``health_service``: the
    service to register the cache's health check with (none when ``None``).
    """

    def __init__(
        self,
        client: Any,
        config: CacheConfig | None = None,
        *,
        serializer: Serializer | None = None,
        clock: Clock = MONOTONIC,
        classifier: Classifier = DEFAULT_CLASSIFIER,
        health_service: HealthService | None = None,
    ) -> None:
        if config is None:
            config = CacheConfig()
        elif not isinstance(config, CacheConfig):
            raise TypeError(f"config must be a CacheConfig, not {type(config).__name__}")
        if serializer is None:
            serializer = JsonSerializer()
        elif not (
            callable(getattr(serializer, "dumps", None))
            and callable(getattr(serializer, "loads", None))
        ):
            raise TypeError("serializer must have dumps(value) -> bytes and loads(bytes) -> value")
        self.config = config
        self.name = config.name
        self._backend: Backend = make_backend(client, config.timeout, config.connect_timeout)
        if config.backend is not None and config.backend != self._backend.family:
            raise ConfigurationError(
                [
                    FieldError(
                        "CacheConfig",
                        "backend",
                        config.backend,
                        f"the client is a {self._backend.family} client ({self._backend.kind})",
                    )
                ]
            )
        self._serializer = serializer
        self._clock = clock
        self._classifier = classifier
        self._breaker = CircuitBreaker(
            f"cache.{config.name}",
            CircuitBreakerConfig(
                failure_threshold=config.failure_threshold,
                success_threshold=config.success_threshold,
                timeout=config.recovery_timeout,
            ),
            clock=clock,
            classifier=classifier,
        )
        # The first attempt runs inline (the success path pays for no retry
        # layer); a transient failure hands the remaining attempts to the policy.
        self._retry: RetryPolicy | None = None
        if config.retry_attempts > 1:
            self._retry = RetryPolicy(
                RetryConfig(
                    name=f"cache.{config.name}",
                    max_attempts=config.retry_attempts - 1,
                    base_delay=config.retry_base_delay,
                    max_delay=config.retry_max_delay,
                    retry_on=frozenset({OutcomeKind.TRANSIENT}),
                    budget_ratio=None,
                ),
                clock=clock,
                classifier=classifier,
            )
        self._deadlines = Deadlines(f"cache.{config.name}", config.timeout)
        self._store = FallbackStore(config.fallback_max_entries, config.fallback_max_bytes)
        self._inflight: set[str] = set()
        self._loads_inflight: dict[str, asyncio.Future[Any]] = {}
        self._tasks: set[asyncio.Future[Any]] = set()
        self._recovery: asyncio.Task[None] | None = None
        self._degraded_since: float | None = None
        self._degraded_total = 0.0
        self._closed = False
        self._n = _Counters()
        self._prefix = config.key_prefix
        self._cache_reads = config.cache_reads
        self._max_key = config.max_key_bytes - len(config.key_prefix.encode())
        self._hub: Listeners[CacheEvent] = Listeners(f"cache {config.name!r}")
        self._health_service: HealthService | None = None
        self._health_check: SimpleHealthCheck | None = None
        config.subscribe(self._on_config_change)
        if health_service is not None:
            self.register_health(health_service)

    # ------------------------------------------------------------------ config

    def _on_config_change(self, field_name: str) -> None:
        cfg = self.config
        if field_name == "timeout":
            self._deadlines.seconds = cfg.timeout
        elif field_name == "fallback_max_entries":
            self._store.max_entries = cfg.fallback_max_entries
        elif field_name == "fallback_max_bytes":
            self._store.max_bytes = cfg.fallback_max_bytes
        elif field_name == "cache_reads":
            self._cache_reads = cfg.cache_reads
        elif field_name in ("key_prefix", "max_key_bytes"):
            self._prefix = cfg.key_prefix
            self._max_key = cfg.max_key_bytes - len(cfg.key_prefix.encode())

    @property
    def breaker(self) -> CircuitBreaker:
        """The breaker that protects the backend."""
        return self._breaker

    @property
    def backend(self) -> str:
        """The client library and address (never credentials)."""
        return self._backend.describe()

    @property
    def client_changes(self) -> tuple[str, ...]:
        """What the cache changed on the client it was given (see docs/cache.md)."""
        return self._backend.changes

    @property
    def degraded(self) -> bool:
        """True from a backend failure until the backend answers again and
        every local change has been written back."""
        return self._degraded_since is not None

    # ------------------------------------------------------------------ inputs

    def _bkey(self, key: object) -> str:
        valid = check_key(key, self._max_key)
        return self._prefix + valid if self._prefix else valid

    def _ttl(self, ttl: object) -> float | None:
        if ttl is None:
            return self.config.default_ttl
        if (
            isinstance(ttl, bool)
            or not isinstance(ttl, int | float)
            or not math.isfinite(ttl)
            or ttl <= 0
            or ttl > 1e9
        ):
            raise ConfigurationError(
                [
                    FieldError(
                        "ResilientCache",
                        "ttl",
                        ttl,
                        "must be a number > 0 and <= 1e9 seconds, or None",
                    )
                ]
            )
        return float(ttl)

    def _dumps(self, value: Any) -> bytes:
        data = self._serializer.dumps(value)
        if not isinstance(data, bytes):
            raise CacheValueError(f"serializer returned {type(data).__name__}, not bytes")
        if len(data) > self.config.max_value_bytes:
            raise CacheValueError(
                f"value is {len(data)} bytes once serialised; max_value_bytes is "
                f"{self.config.max_value_bytes}"
            )
        return data

    def _loads(self, data: bytes) -> Any:
        try:
            return self._serializer.loads(data)
        except Exception:
            self._n.undecodable += 1
            return _MISSING

    # -------------------------------------------------------------- protection

    def _usable(self) -> bool:
        """False while the breaker is open and its wait has not passed: then
        no call is made at all (no round trip, no exception)."""
        breaker = self._breaker
        state = breaker.state
        if state is _CLOSED:
            return True
        if state is _OPEN:
            wait = breaker.retry_after
            return wait is not None and wait <= 0
        return state is not CircuitState.FORCED_OPEN

    async def _call(self, fn: Callable[..., Awaitable[Any]], *args: Any) -> Any:
        """One protected backend call: retry → breaker → timeout → call."""
        try:
            return await self._breaker.call_async(self._deadlines.call, fn, *args)
        except CircuitOpenError:
            self._n.rejected += 1
            raise
        except Exception as exc:
            self._count(exc)
            if self._retry is None or self._classifier.classify(exc).kind is not _TRANSIENT:
                raise
        await self._clock.sleep(self.config.retry_base_delay)
        return await self._retry.call_async(self._attempt, fn, *args)

    async def _attempt(self, fn: Callable[..., Awaitable[Any]], *args: Any) -> Any:
        try:
            return await self._breaker.call_async(self._deadlines.call, fn, *args)
        except CircuitOpenError:
            self._n.rejected += 1
            raise
        except Exception as exc:
            self._count(exc)
            raise

    def _count(self, exc: Exception) -> None:
        """Count a failed attempt by what the classifier says it is."""
        n = self._n
        kind = self._classifier.classify(exc).kind.value
        n.backend_errors_by_kind[kind] = n.backend_errors_by_kind.get(kind, 0) + 1
        name = type(exc).__qualname__
        n.backend_errors_by_type[name] = n.backend_errors_by_type.get(name, 0) + 1

    def _failed(self, exc: Exception) -> None:
        """A backend call failed (after its retries) or was refused: serve locally."""
        self._enter_degraded()

    def _enter_degraded(self) -> None:
        if self._degraded_since is None:
            now = self._degraded_since = self._clock.now()
            self._n.degraded_episodes += 1
            log.warning("cache %r: backend %s failed; serving from memory", self.name, self.backend)
            if self._hub:
                self._hub.emit(
                    CacheEvent(
                        self.name,
                        True,
                        now,
                        len(self._store.dirty),
                        f"backend {self.backend} failed; fallback serving",
                    )
                )
        self._start_recovery()

    def _leave_degraded(self) -> None:
        if self._degraded_since is not None:
            now = self._clock.now()
            self._degraded_total += now - self._degraded_since
            self._degraded_since = None
            log.info(
                "cache %r: backend %s recovered; changes written back", self.name, self.backend
            )
            if self._hub:
                self._hub.emit(
                    CacheEvent(
                        self.name, False, now, 0, f"backend {self.backend} recovered; written back"
                    )
                )

    def add_listener(self, listener: Callable[[CacheEvent], Any]) -> Callable[[CacheEvent], Any]:
        """Call ``listener(CacheEvent)`` when the cache becomes degraded or recovers.

        Sync or async; the library's one listener contract (never delays or
        fails a cache call; isolated, bounded, timed). Returns ``listener``.
        """
        return self._hub.add(listener)

    def remove_listener(self, listener: Callable[[CacheEvent], Any]) -> bool:
        """Unsubscribe ``listener``; returns whether it was subscribed."""
        return self._hub.remove(listener)

    def _start_recovery(self) -> None:
        if self._closed:
            return
        task = self._recovery
        if task is not None and not task.done():
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # pragma: no cover - caches are used inside a loop
            return
        self._recovery = loop.create_task(self._recover(), name=f"cache.{self.name}-recovery")

    async def _recover(self) -> None:
        """Wait for the backend, then write back every dirty key; until none is left."""
        store = self._store
        delay = self.config.writeback_delay
        while not self._closed:
            wait = self._breaker.retry_after
            if wait is not None and wait > 0:
                await self._clock.sleep(wait)
                continue
            try:
                await self._call(self._backend.ping)
            except Exception:  # counted by _attempt
                await self._clock.sleep(delay)
                continue
            if not await self._write_back():
                await self._clock.sleep(delay)
                continue
            if not any(key not in self._inflight for key in store.dirty):
                self._leave_degraded()
                return
            await asyncio.sleep(0)

    async def _write_back(self) -> bool:
        """One pass over the dirty keys; False when the backend failed meanwhile."""
        store = self._store
        n = self._n
        backend = self._backend
        for key in list(store.dirty):
            entry = store.peek(key)
            if entry is None or not entry.dirty or key in self._inflight:
                continue
            version = entry.version
            now = self._clock.now()
            expired = (
                entry.data is not None and entry.expires_at is not None and entry.expires_at <= now
            )
            self._inflight.add(key)
            try:
                if entry.data is None or expired:
                    # A delete to replay, or a write that expired while it
                    # waited: the key must be absent, not hold an older value.
                    await self._call(backend.delete, key)
                else:
                    ttl = None if entry.expires_at is None else entry.expires_at - now
                    await self._call(backend.set, key, entry.data, ttl)
            except Exception as exc:
                if self._classifier.classify(exc).kind is _BUSINESS:
                    n.writebacks_refused += 1
                    store.discard(key)
                    continue
                return False
            finally:
                self._inflight.discard(key)
            if not store.mark_clean(key, version):
                n.writebacks_superseded += 1
                continue
            if expired:
                n.writebacks_dropped += 1
                store.discard_clean(key)
            elif entry.data is None:
                n.deletes_replayed += 1
            else:
                n.writebacks += 1
        return True

    def _sent(self, key: str, version: int) -> None:
        """A write of ``version`` was acknowledged."""
        if not self._store.mark_clean(key, version):
            # A newer change arrived while it was in flight: write it back now.
            self._start_recovery()

    # ------------------------------------------------------------------- reads

    def _local(self, key: str, now: float, entry: Entry | None = None) -> tuple[Any, ReadSource]:
        """Answer from the fallback tier: ``(value or _MISSING, source)``."""
        if entry is None:
            entry = self._store.get(key)
        n = self._n
        if entry is None or entry.data is None:
            n.fallback_misses += 1
            return _MISSING, "miss"
        expiry = entry.expires_at
        if not entry.dirty:
            keep = entry.stored_at + self.config.fallback_ttl
            expiry = keep if expiry is None or keep < expiry else expiry
        rule = self.config.stale_rule(key[len(self._prefix) :]) if self.config.stale else None
        if expiry is None or now < expiry:
            if (
                rule is not None
                and rule.max_fallback_age is not None
                and not entry.dirty
                and now - entry.stored_at > rule.max_fallback_age
            ):
                n.fallback_refused += 1
                return _MISSING, "miss"
            value = self._loads(entry.data)
            if value is _MISSING:
                return _MISSING, "miss"
            n.fallback_hits += 1
            return value, "fallback"
        if rule is not None and rule.stale_if_error > 0 and now - expiry <= rule.stale_if_error:
            value = self._loads(entry.data)
            if value is not _MISSING:
                n.stale_hits += 1
                return value, "stale"
        n.fallback_misses += 1
        return _MISSING, "miss"

    async def _read(self, key: str) -> tuple[Any, ReadSource]:
        store = self._store
        if key in store.dirty or (self._breaker.state is not _CLOSED and not self._usable()):
            return self._local(key, self._clock.now())
        entries = store.entries
        before = entries.get(key)
        version = 0 if before is None else before.version
        try:
            data = await self._call(self._backend.get, key)
        except Exception as exc:
            self._failed(exc)
            return self._local(key, self._clock.now())
        entry = entries.get(key)
        if entry is not before or (entry is not None and entry.version != version):
            # Written or deleted here while the read was in flight: the local change is newer.
            return self._local(key, self._clock.now(), entry)
        n = self._n
        if data is None:
            n.backend_misses += 1
            if entry is not None:
                self._backend_lost(key, entry)
            return _MISSING, "miss"
        try:
            value = self._serializer.loads(data)
        except Exception:
            n.undecodable += 1
            return _MISSING, "miss"
        n.backend_hits += 1
        if entry is not None and entry.data == data:
            if not entry.dirty:
                entry.stored_at = self._clock.now()  # confirmed by the backend
        elif self._cache_reads:
            store.put(key, data, None, self._clock.now(), dirty=False)
        return value, "backend"

    def _backend_lost(self, key: str, entry: Entry) -> None:
        """The backend has no value for ``key``: forget the clean local copy,
        unless it has expired here too (then it may still serve a
        stale-if-error answer while a loader fails)."""
        fresh = entry.fresh_until
        if entry.dirty or (fresh is not None and fresh <= self._clock.now()):
            return
        self._store.discard_clean(key)

    async def get(self, key: str, default: Any = None) -> Any:
        """The value stored under ``key``, else ``default``. Never raises for a
        backend failure: the fallback tier answers."""
        value, _ = await self._read(self._bkey(key))
        return default if value is _MISSING else value

    async def lookup(self, key: str) -> CacheRead:
        """Like :meth:`get`, saying whether a value was found and where from."""
        value, source = await self._read(self._bkey(key))
        if value is _MISSING:
            return CacheRead(False, None, source)
        return CacheRead(True, value, source)

    async def get_many(self, keys: Iterable[str]) -> dict[str, Any]:
        """The values found for ``keys`` (missing keys are left out), in one
        backend round trip for the keys without a local change."""
        wanted = {self._bkey(k): k for k in keys}
        store = self._store
        result: dict[str, Any] = {}
        remote: list[str] = []
        now = self._clock.now()
        usable = self._usable()
        for bkey, key in wanted.items():
            if bkey in store.dirty or not usable:
                value, _ = self._local(bkey, now)
                if value is not _MISSING:
                    result[key] = value
            else:
                remote.append(bkey)
        if not remote:
            return result
        versions = {k: (e.version if (e := store.peek(k)) is not None else 0) for k in remote}
        try:
            found = await self._call(self._backend.get_many, remote)
        except Exception as exc:
            self._failed(exc)
            now = self._clock.now()
            for bkey in remote:
                value, _ = self._local(bkey, now)
                if value is not _MISSING:
                    result[wanted[bkey]] = value
            return result
        now = self._clock.now()
        n = self._n
        for bkey in remote:
            entry = store.peek(bkey)
            if (0 if entry is None else entry.version) != versions[bkey]:
                value, _ = self._local(bkey, now, entry)
            elif (data := found.get(bkey)) is None:
                n.backend_misses += 1
                if entry is not None:
                    self._backend_lost(bkey, entry)
                continue
            else:
                value = self._loads(data)
                if value is _MISSING:
                    continue
                n.backend_hits += 1
                if entry is not None and entry.data == data:
                    store.confirm(bkey, now)
                elif self._cache_reads:
                    store.put(bkey, data, None, now, dirty=False)
            if value is not _MISSING:
                result[wanted[bkey]] = value
        return result

    # ------------------------------------------------------------------ writes

    async def _write(
        self, key: str, data: bytes | None, ttl: float | None, fresh: float | None = None
    ) -> None:
        store = self._store
        now = self._clock.now()
        expires_at = None if ttl is None else now + ttl
        fresh_until = None if fresh is None else now + fresh
        busy = key in store.dirty
        version = store.put(key, data, expires_at, now, dirty=True, fresh_until=fresh_until)
        if busy or not self._usable():
            # A change to this key is not acknowledged yet (or the breaker is
            # open): keep this one locally; the recovery task writes it back.
            self._n.fallback_writes += 1
            if busy:
                self._start_recovery()
            else:
                self._enter_degraded()
            return
        self._inflight.add(key)
        try:
            if data is None:
                await self._call(self._backend.delete, key)
            else:
                await self._call(self._backend.set, key, data, ttl)
        except Exception as exc:
            self._n.fallback_writes += 1
            self._failed(exc)
            return
        except BaseException:
            self._start_recovery()  # cancelled: unknown whether it was applied
            raise
        finally:
            self._inflight.discard(key)
        self._sent(key, version)

    async def set(self, key: str, value: Any, ttl: float | None = None) -> None:
        """Store ``value`` under ``key`` for ``ttl`` seconds (``None``: the
        config's ``default_ttl``). Never raises for a backend failure: the
        value is kept in memory and written back on recovery. Raises
        :class:`InvalidCacheKeyError` or :class:`CacheValueError` for a bad
        key or value, :class:`ConfigurationError` for a bad ``ttl``."""
        bkey = self._bkey(key)
        seconds = self._ttl(ttl)
        await self._write(bkey, self._dumps(value), seconds)

    async def delete(self, key: str) -> None:
        """Remove ``key``. During an outage the delete is kept and replayed on recovery."""
        await self._write(self._bkey(key), None, None)

    async def set_many(self, items: Mapping[str, Any], ttl: float | None = None) -> None:
        """Store every item (validated first: a bad key or value stores none)."""
        seconds = self._ttl(ttl)
        prepared = [(self._bkey(k), self._dumps(v)) for k, v in items.items()]
        for bkey, data in prepared:
            await self._write(bkey, data, seconds)

    # ---------------------------------------------------------- get_or_set

    async def get_or_set(
        self,
        key: str,
        loader: Callable[[], Any],
        ttl: float | None = None,
    ) -> Any:
        """The cached value of ``key``, or ``await loader()`` stored for ``ttl`` seconds.

        Concurrent misses of one key call the loader once (single flight).
        Under a stale rule for the key: a value past its expiry is served while
        the loader fails (``stale_if_error``), or served while one background
        load refreshes it (``stale_while_revalidate``). A loader's exception
        propagates when no stale value may be served.
        """
        bkey = self._bkey(key)
        seconds = self._ttl(ttl)
        if not callable(loader):
            raise TypeError("loader must be callable")
        rule = self.config.stale_rule(key) if self.config.stale else None
        swr = rule.stale_while_revalidate if rule is not None else 0.0
        value, source = await self._read(bkey)
        if value is not _MISSING and source != "stale":
            entry = self._store.peek(bkey)
            now = self._clock.now()
            if (
                swr > 0
                and entry is not None
                and entry.fresh_until is not None
                and now >= entry.fresh_until
            ):
                self._refresh_in_background(bkey, loader, seconds, swr)
            return value
        stale = value
        try:
            return await self._load(bkey, loader, seconds, swr)
        except Exception:
            if stale is not _MISSING:
                self._n.stale_hits += 1
                return stale
            fallback, _ = self._stale_value(bkey, rule)
            if fallback is not _MISSING:
                return fallback
            raise

    def _stale_value(self, key: str, rule: Any) -> tuple[Any, ReadSource]:
        """A stale value the rule allows serving while a loader fails."""
        if rule is None or rule.stale_if_error <= 0:
            return _MISSING, "miss"
        entry = self._store.peek(key)
        if entry is None or entry.data is None:
            return _MISSING, "miss"
        now = self._clock.now()
        expiry = entry.fresh_until if entry.fresh_until is not None else entry.expires_at
        if expiry is not None and now - expiry > rule.stale_if_error:
            return _MISSING, "miss"
        value = self._loads(entry.data)
        if value is not _MISSING:
            self._n.stale_hits += 1
            return value, "stale"
        return _MISSING, "miss"

    async def _load(
        self, key: str, loader: Callable[[], Any], ttl: float | None, swr: float
    ) -> Any:
        future = self._loads_inflight.get(key)
        if future is None:
            future = asyncio.ensure_future(self._run_loader(key, loader, ttl, swr))
            self._loads_inflight[key] = future
            future.add_done_callback(functools.partial(self._load_done, key))
        return await asyncio.shield(future)

    def _load_done(self, key: str, future: asyncio.Future[Any]) -> None:
        if self._loads_inflight.get(key) is future:
            del self._loads_inflight[key]
        if not future.cancelled():
            future.exception()  # retrieved: a loader error is the callers' business

    async def _run_loader(
        self, key: str, loader: Callable[[], Any], ttl: float | None, swr: float
    ) -> Any:
        self._n.loader_calls += 1
        try:
            value = loader()
            if inspect.isawaitable(value):
                value = await value
        except Exception:
            self._n.loader_errors += 1
            raise
        data = self._dumps(value)
        if swr > 0 and ttl is not None:
            await self._write(key, data, ttl + swr, fresh=ttl)
        else:
            await self._write(key, data, ttl)
        return value

    def _refresh_in_background(
        self, key: str, loader: Callable[[], Any], ttl: float | None, swr: float
    ) -> None:
        if key in self._loads_inflight:
            return
        self._n.swr_refreshes += 1
        task = asyncio.ensure_future(self._load(key, loader, ttl, swr))
        self._tasks.add(task)
        task.add_done_callback(self._background_done)

    def _background_done(self, task: asyncio.Future[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.warning(
                "cache %r: background refresh failed: %s",
                self.name,
                type(task.exception()).__qualname__,
            )

    # ------------------------------------------------------------------ health

    async def _health_probe(self) -> CheckResult:
        if not self.degraded and self._usable():
            try:
                await self._call(self._backend.ping)
            except Exception as exc:
                self._failed(exc)
        h = self.health()
        status = ServiceStatus.HEALTHY if h.status == "healthy" else ServiceStatus.DEGRADED
        return CheckResult(status, h.reason, self._health_details(h))

    def _health_details(self, h: CacheHealth) -> dict[str, Any]:
        return {
            "backend": h.backend,
            "breaker": h.breaker,
            "degraded_for": h.degraded_for,
            "dirty": h.dirty,
            "fallback_entries": h.fallback_entries,
        }

    def register_health(self, service: HealthService) -> SimpleHealthCheck:
        """Register this cache's health check (``cache.<name>``) with ``service``.

        The check pings the backend when the cache is healthy and reports
        DEGRADED (a warning, never a failure) while the fallback serves.
        """
        if self._health_check is not None:
            raise ConfigurationError(
                [FieldError("ResilientCache", "health_service", self.name, "already registered")]
            )
        check = SimpleHealthCheck(
            f"cache.{self.name}",
            self._health_probe,
            HealthCheckConfig(
                name=f"cache.{self.name}",
                interval=self.config.health_interval,
                timeout=max(1.0, self.config.timeout * 4),
            ),
        )
        service.register_health_check(check)
        self._health_service = service
        self._health_check = check
        return check

    def health(self) -> CacheHealth:
        """The cache's health now (no I/O)."""
        now = self._clock.now()
        store = self._store
        if self._degraded_since is None and self._breaker.state is _CLOSED:
            return CacheHealth(
                "healthy",
                self.backend,
                _CLOSED.value,
                0.0,
                len(store.dirty),
                len(store),
                "backend answering",
            )
        since = self._degraded_since
        degraded_for = 0.0 if since is None else now - since
        state = self._breaker.state.value
        reason = (
            f"backend {self.backend} unavailable (breaker {state}); "
            f"fallback serving, {len(store.dirty)} change(s) to write back"
        )
        return CacheHealth(
            "degraded", self.backend, state, degraded_for, len(store.dirty), len(store), reason
        )

    # ----------------------------------------------------------------- metrics

    def snapshot(self) -> dict[str, Any]:
        """JSON-ready metrics (see docs/cache.md for every key)."""
        n = self._n
        store = self._store
        now = self._clock.now()
        degraded = self._degraded_total + (
            0.0 if self._degraded_since is None else now - self._degraded_since
        )
        return {
            "name": self.name,
            "backend": self.backend,
            "status": self.health().status,
            "breaker": self._breaker.state.value,
            "reads_by_source": {
                "backend": n.backend_hits,
                "fallback": n.fallback_hits,
                "stale": n.stale_hits,
                "miss": n.backend_misses + n.fallback_misses + n.fallback_refused,
            },
            "hits_by_tier": {
                "backend": n.backend_hits,
                "fallback": n.fallback_hits,
                "stale": n.stale_hits,
            },
            "misses_by_tier": {"backend": n.backend_misses, "fallback": n.fallback_misses},
            "fallback_hits": n.fallback_hits,
            "fallback_refused": n.fallback_refused,
            "fallback_writes": n.fallback_writes,
            "backend_errors_by_kind": dict(n.backend_errors_by_kind),
            "backend_errors_by_type": dict(n.backend_errors_by_type),
            "rejected": n.rejected,
            "writebacks": n.writebacks,
            "writebacks_dropped": n.writebacks_dropped,
            "writebacks_superseded": n.writebacks_superseded,
            "writebacks_refused": n.writebacks_refused,
            "deletes_replayed": n.deletes_replayed,
            "dirty": len(store.dirty),
            "fallback_entries": len(store),
            "fallback_bytes": store.bytes,
            "fallback_evictions": store.evictions,
            "fallback_downgraded": store.downgraded,
            "fallback_dirty_dropped": store.dirty_dropped,
            "degraded": self.degraded,
            "degraded_seconds": degraded,
            "degraded_episodes": n.degraded_episodes,
            "loader_calls": n.loader_calls,
            "loader_errors": n.loader_errors,
            "swr_refreshes": n.swr_refreshes,
            "undecodable": n.undecodable,
            "client_changes": list(self._backend.changes),
        }

    def __repr__(self) -> str:
        n = self._n
        return (
            f"<ResilientCache {self.name!r} {self.backend} "
            f"{'degraded' if self.degraded else 'healthy'} breaker={self._breaker.state.value} "
            f"backend_hits={n.backend_hits} fallback_hits={n.fallback_hits} "
            f"stale_hits={n.stale_hits} dirty={len(self._store.dirty)} "
            f"fallback={len(self._store)}/{self.config.fallback_max_entries}>"
        )

    # --------------------------------------------------------------- lifecycle

    async def flush(self) -> bool:
        """Wait for the recovery task (write-back) to finish; True when nothing
        is left to write back."""
        task = self._recovery
        if task is not None and not task.done():
            await asyncio.shield(task)
        return not self._store.dirty

    async def close(self) -> None:
        """Write back what can be written within one pass, stop background
        work, unregister the health check and close the client."""
        if self._closed:
            return
        if self._store.dirty and self._usable():
            try:
                await self._write_back()
            except Exception:
                pass
        self._closed = True
        tasks = [t for t in (self._recovery, *self._tasks) if t is not None and not t.done()]
        for task in tasks:
            task.cancel()
        self._deadlines.close()
        await self._hub.drain(within=1.0)
        self._hub.close()
        for future in list(self._loads_inflight.values()):
            future.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        if self._health_service is not None and self._health_check is not None:
            try:
                self._health_service.unregister_health_check(self._health_check.name)
            except Exception:
                pass
        if self._store.dirty:
            log.warning(
                "cache %r closed with %d change(s) not written back",
                self.name,
                len(self._store.dirty),
            )
        try:
            await self._backend.close()
        except Exception as exc:
            log.warning("cache %r: closing the client raised %s", self.name, type(exc).__qualname__)

    async def __aenter__(self) -> ResilientCache:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()
