"""One named, shared, instrumented aiohttp connection pool.

A :class:`ConnectionPool` owns one :class:`aiohttp.TCPConnector` and one
:class:`aiohttp.ClientSession`, created lazily inside the running event loop.
Metrics come only from aiohttp's public ``TraceConfig`` signals, the
connector's public ``socket_factory`` hook and a client middleware; the pool
wait is bounded by ``PoolConfig.acquire_timeout`` (read when a request starts
to wait) and a request that waits longer fails with
:class:`~virtuoso_resilience.errors.PoolExhaustedError`.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import warnings
import weakref
from contextlib import AbstractAsyncContextManager
from types import SimpleNamespace, TracebackType
from typing import Any

import aiohttp

from .._model import check_name
from ..clock import MONOTONIC, Clock
from ..errors import PoolExhaustedError
from ._config import PoolConfig
from ._trace import _FAILED, _OK, _SERVER_ERROR, PoolHealth, _PoolStats, judge_health

__all__ = ["ConnectionPool"]


# ------------------------------------------------------------------ per request


class _RequestTrace(SimpleNamespace):
    """Per-request state shared by the trace callbacks (aiohttp makes one per request)."""

    __slots__ = (
        "acquired",
        "cancelling",
        "deadline",
        "queued",
        "queued_at",
        "started",
        "task",
        "trace_request_ctx",
    )

    def __init__(self, trace_request_ctx: object = None) -> None:
        self.trace_request_ctx = trace_request_ctx
        self.started = 0.0
        self.acquired = False
        self.queued = False
        self.queued_at: float | None = None
        self.deadline: asyncio.TimerHandle | None = None
        self.task: asyncio.Task[Any] | None = None
        self.cancelling = 0


class _SessionLease:
    """``async with pool.get_session() as session``: counts users, never closes."""

    __slots__ = ("_pool",)

    def __init__(self, pool: ConnectionPool) -> None:
        self._pool = pool

    async def __aenter__(self) -> aiohttp.ClientSession:
        pool = self._pool
        session = pool.session
        pool._active_users += 1
        return session

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._pool._active_users -= 1


# ------------------------------------------------------------------------- pool


class ConnectionPool:
    """One named aiohttp connector + session, shared, bounded and measured.

    The session is created on first use inside the running event loop and
    lives until :meth:`close`; ``async with pool.get_session()`` borrows it
    without closing it. Hand :attr:`session` to ccxt
    (``ccxt.async_support.bybit({"session": pool.session})``): an exchange
    does not close a session it was given.

    ``clock`` times waits and responses and dates exhaustion events (seconds).
    """

    __slots__ = (
        "__weakref__",
        "_active_users",
        "_clock",
        "_closed",
        "_config",
        "_exhausted",
        "_lease",
        "_limits",
        "_loop",
        "_name",
        "_now",
        "_release_one",
        "_responses",
        "_session",
        "_sockets",
        "_stats",
    )

    def __init__(
        self, name: str, config: PoolConfig | None = None, *, clock: Clock = MONOTONIC
    ) -> None:
        self._name = check_name("ConnectionPool", name)
        self._config = config if config is not None else PoolConfig()
        self._clock = clock
        self._now = clock.now
        self._stats = _PoolStats(self._config.health_window_requests)
        self._session: aiohttp.ClientSession | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._limits: tuple[int, int] | None = None  # fixed when the session is made
        self._closed = False
        self._active_users = 0
        # Tasks cancelled by an acquire deadline -> (waited, cancel count before).
        self._exhausted: dict[asyncio.Task[Any], tuple[float, int]] = {}
        self._sockets: weakref.WeakSet[socket.socket] = weakref.WeakSet()
        # Responses that still held their connection when their headers came in.
        self._responses: weakref.WeakSet[aiohttp.ClientResponse] = weakref.WeakSet()
        self._lease = _SessionLease(self)
        self._release_one = self._connection_released
        # The config may outlive the pool (or be shared): a bound method is
        # held weakly by ConfigModel.subscribe, so a dropped pool is collected
        # and its observer pruned.
        self._config.subscribe(self._config_changed)

    # ----------------------------------------------------------------- public

    @property
    def name(self) -> str:
        return self._name

    @property
    def config(self) -> PoolConfig:
        return self._config

    @property
    def closed(self) -> bool:
        """True once :meth:`close` was called; a closed pool is not reopened."""
        return self._closed

    @property
    def active_users(self) -> int:
        """How many ``async with pool.get_session()`` blocks are open now."""
        return self._active_users

    @property
    def limits(self) -> tuple[int, int]:
        """(max_connections, max_connections_per_host) in force.

        Fixed when the session is created; before that, the config's values.
        """
        if self._limits is not None:
            return self._limits
        return (self._config.max_connections, self._config.max_connections_per_host)

    @property
    def session(self) -> aiohttp.ClientSession:
        """The shared session, created on first use (needs a running event loop)."""
        session = self._session
        if session is None:
            if self._closed:
                raise RuntimeError(f"connection pool {self._name!r} is closed")
            session = self._session = self._create_session()
        elif self._closed:
            raise RuntimeError(f"connection pool {self._name!r} is closed")
        elif self._loop is not None and self._loop.is_closed():
            raise RuntimeError(
                f"connection pool {self._name!r} belongs to an event loop that is closed; "
                "close pools (await pool.close()) before their loop ends"
            )
        return session

    def get_session(self) -> AbstractAsyncContextManager[aiohttp.ClientSession]:
        """``async with pool.get_session() as session:`` — the shared session.

        Leaving the block does not close the session; it only ends the count
        of :attr:`active_users`.
        """
        return self._lease

    async def close(self) -> None:
        """Close the session and its connector (idempotent).

        Requests still running fail with :class:`aiohttp.ClientConnectionError`
        naming the pool: those waiting for a connection or for their response
        headers, and reads of a response body that had not fully arrived.
        """
        if self._closed:
            return
        self._closed = True
        session = self._session
        if session is not None and not session.closed:
            self._fail_unfinished_bodies()
            await session.close()

    def _fail_unfinished_bodies(self) -> None:
        # Closing the connector drops each connection's body stream without
        # telling its reader (it would wait forever): fail those reads first.
        for response in list(self._responses):
            if response.connection is None:
                continue  # the body arrived in full (or was released)
            response.content.set_exception(
                aiohttp.ClientConnectionError(
                    f"connection pool {self._name!r} was closed before the response body "
                    "was read in full"
                )
            )
        self._responses.clear()

    def health(self) -> PoolHealth:
        """Judge health now against the ``health_*`` thresholds of the config."""
        return judge_health(
            self._stats,
            self._config,
            max_connections=self.limits[0],
            now=self._now(),
            closed=self._closed,
        )

    def metrics(self) -> dict[str, Any]:
        """JSON-ready counters, gauges and histograms (seconds)."""
        return self._stats.as_dict(self._open_connections(), self._now())

    def snapshot(self) -> dict[str, Any]:
        """JSON-ready state: name, limits, live state, metrics and health."""
        if self._closed:
            state = "closed"
        elif self._session is None:
            state = "unopened"
        else:
            state = "open"
        max_connections, per_host = self.limits
        return {
            "name": self._name,
            "state": state,
            "active_users": self._active_users,
            "limits": {
                "max_connections": max_connections,
                "max_connections_per_host": per_host,
                "acquire_timeout": self._config.acquire_timeout,
            },
            "metrics": self.metrics(),
            "health": self.health().as_dict(),
        }

    def __repr__(self) -> str:
        stats = self._stats
        open_now = self._open_connections()
        state = "closed" if self._closed else ("open" if self._session else "unopened")
        max_connections, per_host = self.limits
        return (
            f"<ConnectionPool {self._name!r} {state} max_connections={max_connections} "
            f"per_host={per_host} in_use={stats.in_use} "
            f"idle={max(0, open_now - stats.in_use)} waiting={stats.waiting} "
            f"created={stats.created} reused={stats.reused} users={self._active_users}>"
        )

    # ------------------------------------------------------------ the session

    def _create_session(self) -> aiohttp.ClientSession:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            raise RuntimeError(
                f"connection pool {self._name!r}: the session must be created inside a "
                "running event loop (use pool.session / pool.get_session() from async code)"
            ) from None
        cfg = self._config
        tls: bool | ssl.SSLContext
        if not cfg.verify_ssl:
            tls = False
        elif cfg.ssl_cafile is not None:
            tls = ssl.create_default_context(cafile=cfg.ssl_cafile)
        else:
            tls = True
        options: dict[str, Any] = {
            "limit": cfg.max_connections,
            "limit_per_host": cfg.max_connections_per_host,
            "keepalive_timeout": None if cfg.force_close else cfg.keepalive_timeout,
            "force_close": cfg.force_close,
            "use_dns_cache": cfg.dns_cache_ttl > 0,
            "ttl_dns_cache": cfg.dns_cache_ttl or None,
            "ssl": tls,
            "socket_factory": self._socket_factory,
        }
        if cfg.enable_cleanup_closed:
            with warnings.catch_warnings():
                # aiohttp ignores the option, with a DeprecationWarning, on
                # Pythons that fixed the leak it works around: fine here.
                warnings.filterwarnings(
                    "ignore", "enable_cleanup_closed ignored", category=DeprecationWarning
                )
                connector = aiohttp.TCPConnector(enable_cleanup_closed=True, **options)
        else:
            connector = aiohttp.TCPConnector(**options)
        timeout = aiohttp.ClientTimeout(
            total=cfg.total_timeout,
            # No ``connect``: it would cover the pool wait too, fixed at today's
            # acquire_timeout. The pool bounds that wait itself (live), and
            # ``sock_connect`` bounds each connect attempt.
            connect=None,
            sock_connect=cfg.connection_timeout,
            sock_read=cfg.read_timeout,
        )
        headers = {"User-Agent": cfg.user_agent} if cfg.user_agent is not None else None
        self._loop = loop
        self._limits = (cfg.max_connections, cfg.max_connections_per_host)
        return aiohttp.ClientSession(
            connector=connector,
            timeout=timeout,
            headers=headers,
            trust_env=cfg.trust_env,
            trace_configs=[self._trace_config()],
            middlewares=(self._middleware,),
        )

    def _socket_factory(self, addr_info: aiohttp.AddrInfoType) -> socket.socket:
        family, type_, proto, _, _ = addr_info
        sock = socket.socket(family=family, type=type_, proto=proto)
        self._sockets.add(sock)
        return sock

    def _open_connections(self) -> int:
        return sum(1 for s in list(self._sockets) if s.fileno() != -1)

    def _config_changed(self, field: str) -> None:
        if field == "health_window_requests":
            self._stats.resize_window(self._config.health_window_requests)

    # --------------------------------------------------- exhaustion (middleware)

    async def _middleware(
        self, req: aiohttp.ClientRequest, handler: aiohttp.ClientHandlerType
    ) -> aiohttp.ClientResponse:
        try:
            return await handler(req)
        except asyncio.CancelledError:
            task = asyncio.current_task()
            error = self._replace_cancellation(task) if task is not None else None
            if error is not None:
                raise error from None
            raise
        except aiohttp.ClientConnectionError as exc:
            if self._closed:
                raise aiohttp.ClientConnectionError(
                    f"connection pool {self._name!r} was closed while the request was in flight"
                ) from exc
            raise

    def _replace_cancellation(self, task: asyncio.Task[Any]) -> BaseException | None:
        """The error a cancellation this pool caused stands for (None: a real one).

        Called once per cancellation: by the middleware, or for a request that
        bypasses it, by the request-exception trace hook.
        """
        entry = self._exhausted.pop(task, None) if self._exhausted else None
        if entry is not None:
            waited, baseline = entry
            if task.uncancel() <= baseline:
                max_connections, per_host = self.limits
                return PoolExhaustedError(self._name, max_connections, per_host, waited)
            return None  # somebody else cancelled the task too: stay cancelled
        if self._closed and task.cancelling() == 0:
            # aiohttp cancels the futures of requests queued for a connection
            # when the connector closes; that is not a cancellation of the task.
            return aiohttp.ClientConnectionError(
                f"connection pool {self._name!r} was closed while the request "
                "waited for a connection"
            )
        return None

    def _acquire_deadline(self, ctx: _RequestTrace) -> None:
        ctx.deadline = None
        task = ctx.task
        queued_at = ctx.queued_at
        if self._closed or task is None or queued_at is None or task.done():
            return
        now = self._now()
        stats = self._stats
        stats.exhausted += 1
        stats.last_exhausted_at = now
        self._exhausted[task] = (now - queued_at, ctx.cancelling)
        task.cancel(f"connection pool {self._name!r} exhausted")

    # ------------------------------------------------------------ trace hooks

    def _trace_config(self) -> aiohttp.TraceConfig:
        tc = aiohttp.TraceConfig(trace_config_ctx_factory=_RequestTrace)
        hooks: list[tuple[Any, Any]] = [
            (tc.on_request_start, self._on_request_start),
            (tc.on_request_end, self._on_request_end),
            (tc.on_request_exception, self._on_request_exception),
            (tc.on_connection_queued_start, self._on_queued_start),
            (tc.on_connection_queued_end, self._on_queued_end),
            (tc.on_connection_create_start, self._on_create_start),
            (tc.on_connection_create_end, self._on_create_end),
            (tc.on_connection_reuseconn, self._on_reuseconn),
            (tc.on_dns_cache_hit, self._on_dns_cache_hit),
            (tc.on_dns_cache_miss, self._on_dns_cache_miss),
        ]
        for signal, hook in hooks:
            signal.append(hook)
        return tc

    async def _on_request_start(
        self, _s: aiohttp.ClientSession, ctx: _RequestTrace, _p: object
    ) -> None:
        ctx.started = self._now()
        self._stats.requests += 1

    async def _on_queued_start(
        self, _s: aiohttp.ClientSession, ctx: _RequestTrace, _p: object
    ) -> None:
        self._stats.waiting += 1
        ctx.queued = True
        if ctx.queued_at is not None:
            return  # queued again within one acquisition: the first deadline stands
        ctx.queued_at = self._now()
        task = asyncio.current_task()
        loop = self._loop
        if task is not None and loop is not None:
            # Read now, so a changed acquire_timeout applies from the next wait.
            ctx.task = task
            ctx.cancelling = task.cancelling()
            ctx.deadline = loop.call_later(
                self._config.acquire_timeout, self._acquire_deadline, ctx
            )

    async def _on_queued_end(
        self, _s: aiohttp.ClientSession, ctx: _RequestTrace, _p: object
    ) -> None:
        self._stats.waiting -= 1
        ctx.queued = False

    def _acquired(self, ctx: _RequestTrace) -> None:
        queued_at = ctx.queued_at
        if queued_at is not None:
            self._stats.wait.observe(self._now() - queued_at)
            ctx.queued_at = None
            if ctx.deadline is not None:
                ctx.deadline.cancel()
                ctx.deadline = None
        if not ctx.acquired:
            ctx.acquired = True
            self._stats.in_use += 1

    async def _on_create_start(
        self, _s: aiohttp.ClientSession, ctx: _RequestTrace, _p: object
    ) -> None:
        self._acquired(ctx)

    async def _on_create_end(
        self, _s: aiohttp.ClientSession, _ctx: _RequestTrace, _p: object
    ) -> None:
        self._stats.created += 1

    async def _on_reuseconn(
        self, _s: aiohttp.ClientSession, ctx: _RequestTrace, _p: object
    ) -> None:
        self._stats.reused += 1
        self._acquired(ctx)

    async def _on_request_end(
        self,
        _s: aiohttp.ClientSession,
        ctx: _RequestTrace,
        params: aiohttp.TraceRequestEndParams,
    ) -> None:
        stats = self._stats
        stats.response.observe(self._now() - ctx.started)
        stats.succeeded += 1
        response = params.response
        klass = response.status // 100
        if 1 <= klass <= 5:
            stats.statuses[klass] += 1
        stats.outcome(_SERVER_ERROR if klass == 5 else _OK)
        connection = response.connection
        if connection is not None:  # the body is still to come
            self._responses.add(response)
        if ctx.acquired:
            ctx.acquired = False
            if connection is None:  # the body was already read: released
                stats.in_use -= 1
            else:
                connection.add_callback(self._release_one)

    def _connection_released(self) -> None:
        self._stats.in_use -= 1

    async def _on_request_exception(
        self,
        _s: aiohttp.ClientSession,
        ctx: _RequestTrace,
        params: aiohttp.TraceRequestExceptionParams,
    ) -> None:
        stats = self._stats
        if ctx.deadline is not None:
            ctx.deadline.cancel()
            ctx.deadline = None
        if ctx.queued:
            ctx.queued = False
            stats.waiting -= 1
        if ctx.acquired:  # the connection was closed on the way out
            ctx.acquired = False
            stats.in_use -= 1
        queued_at, ctx.queued_at = ctx.queued_at, None
        exc: BaseException = params.exception
        replaced: BaseException | None = None
        if isinstance(exc, asyncio.CancelledError):
            # Still a CancelledError here: the request bypassed the pool's
            # middleware (per-request ``middlewares=``). Turn a cancellation
            # this pool caused into its error now; raising from this hook
            # replaces the CancelledError aiohttp is about to re-raise.
            task = asyncio.current_task()
            replaced = self._replace_cancellation(task) if task is not None else None
            if replaced is None:
                return
            exc = replaced
        elif ctx.task is not None and self._exhausted:
            self._exhausted.pop(ctx.task, None)
        if queued_at is not None:
            stats.wait.observe(self._now() - queued_at)
        name = type(exc).__name__
        stats.errors[name] = stats.errors.get(name, 0) + 1
        stats.failed += 1
        stats.outcome(_FAILED)
        if replaced is not None:
            raise replaced from None

    async def _on_dns_cache_hit(
        self, _s: aiohttp.ClientSession, _ctx: _RequestTrace, _p: object
    ) -> None:
        self._stats.dns_hits += 1

    async def _on_dns_cache_miss(
        self, _s: aiohttp.ClientSession, _ctx: _RequestTrace, _p: object
    ) -> None:
        self._stats.dns_misses += 1
