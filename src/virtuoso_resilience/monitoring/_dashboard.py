"""The dashboard: a static page (``GET /``) and a server-sent event stream
(``GET /api/monitoring/stream``) of compact snapshots, about one a second.

One :class:`DashboardHub` per app builds one frame per ``interval`` while at
least one client listens, and hands the same bytes to every client: twenty
open dashboards cost one build a second, not twenty. Nobody listening costs
nothing. The page and its assets ship inside the package
(``monitoring/dashboard/``) and make no external request.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.resources
import logging
import time
from typing import Any, Final

from aiohttp import web

from ..clock import MONOTONIC, Clock
from ..registry import CIRCUIT_BREAKERS, CONNECTION_POOLS
from ._json import dumps, top_level
from ._settings import ShowDetails
from ._state import MonitoringState, snapshot_of

__all__ = ["DASHBOARD_HUB", "DashboardHub", "add_dashboard"]

log = logging.getLogger("virtuoso_resilience.monitoring")

STREAM_PATH: Final = "/api/monitoring/stream"
CONFIG_PATH: Final = "/api/monitoring/dashboard/config"
ASSET_PREFIX: Final = "/dashboard"
EVENTS_IN_FRAME: Final = 30
MAX_CLIENTS: Final = 100
HEALTH_REFRESH: Final = 10.0
"""Seconds after which the health part of a frame is rebuilt even if no status changed."""
_ASSETS: Final = {
    "index.html": "text/html",
    "dashboard.js": "text/javascript",
    "dashboard.css": "text/css",
}
_CLOSE: Final = b""


def _read_assets() -> dict[str, bytes]:
    root = importlib.resources.files(__package__) / "dashboard"
    return {name: (root / name).read_bytes() for name in _ASSETS}


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _breaker_row(name: str, data: Any) -> dict[str, Any]:
    if not isinstance(data, dict):
        return {"name": name, "state": "unknown"}
    return {
        "name": name,
        "state": data.get("state"),
        "calls": data.get("calls"),
        "successes": data.get("successes"),
        "failures": data.get("failures"),
        "rejected": data.get("rejected"),
        "failure_rate": data.get("failure_rate"),
        "window_calls": data.get("window_calls"),
        "retry_after": data.get("retry_after"),
        "current_timeout": data.get("current_timeout"),
        "trips": data.get("trips"),
        "error": data.get("error"),
    }


def _pool_row(name: str, data: Any) -> dict[str, Any]:
    if not isinstance(data, dict):
        return {"name": name, "state": "unknown"}
    metrics = data.get("metrics") if isinstance(data.get("metrics"), dict) else {}
    connections = metrics.get("connections", {}) if isinstance(metrics, dict) else {}
    requests = metrics.get("requests", {}) if isinstance(metrics, dict) else {}
    limits = data.get("limits") if isinstance(data.get("limits"), dict) else {}
    health = data.get("health") if isinstance(data.get("health"), dict) else {}
    return {
        "name": name,
        "state": data.get("state"),
        "in_use": connections.get("in_use"),
        "open": connections.get("open"),
        "waiting": connections.get("waiting"),
        "max_connections": limits.get("max_connections") if limits else None,
        "started": requests.get("started"),
        "failed": requests.get("failed"),
        "error_rate": requests.get("recent_error_rate"),
        "health": health.get("status") if health else None,
        "error": data.get("error"),
    }


def _dig(data: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(data, dict):
            return None
        data = data.get(key)
    return data


def _headroom(limiter: Any) -> dict[str, Any] | None:
    """Tokens left of a rate limiter's bucket, and the exchange-reported limit."""
    if not isinstance(limiter, dict):
        return None
    tokens, capacity = _number(limiter.get("tokens")), _number(limiter.get("capacity"))
    ratio = None
    if tokens is not None and capacity is not None and capacity > 0:
        ratio = min(1.0, max(0.0, tokens / capacity))
    return {
        "headroom": ratio,
        "tokens": tokens,
        "capacity": capacity,
        "rate": _number(limiter.get("rate")),
        "budget": limiter.get("budget"),
        "budget_reset_in": limiter.get("budget_reset_in"),
        "exchange_limit": limiter.get("exchange_limit"),
        "pause_remaining": limiter.get("pause_remaining"),
    }


def _exchange_row(name: str, data: Any) -> dict[str, Any]:
    """What a trader reads off a ``ResilientExchange.snapshot()``; any other
    snapshot under the ``exchanges`` kind is passed as it is (``raw``)."""
    if not isinstance(data, dict) or "rate_limit" not in data:
        return {"name": name, "raw": data}
    endpoints = _dig(data, "rate_limit", "endpoints")
    tightest = None
    if isinstance(endpoints, dict):
        rows = [(path, _headroom(limiter)) for path, limiter in endpoints.items()]
        rated = [(h["headroom"], path) for path, h in rows if h and h["headroom"] is not None]
        if rated:
            ratio, path = min(rated)
            tightest = {"path": path, "headroom": ratio}
    raw_groups = data.get("groups")
    groups: dict[str, Any] = raw_groups if isinstance(raw_groups, dict) else {}
    return {
        "name": name,
        "exchange": data.get("exchange"),
        "account": _headroom(_dig(data, "rate_limit", "account")),
        "tightest_endpoint": tightest,
        "endpoints": len(endpoints) if isinstance(endpoints, dict) else 0,
        "bans": _dig(data, "rate_limit", "bans"),
        "ban_remaining": _dig(data, "rate_limit", "ban_remaining"),
        "used_weight_1m": _dig(data, "rate_limit", "used_weight_1m"),
        "maintenance": data.get("maintenance"),
        "pending_orders": data.get("pending_orders"),
        "market_data": data.get("market_data"),
        "breakers": {g: _dig(v, "circuit_breaker", "state") for g, v in groups.items()},
    }


def _cache_row(name: str, data: Any) -> dict[str, Any]:
    """What a trader reads off a ``ResilientCache.snapshot()``: hit rate per
    tier (hits / reads), degraded time, dirty entries waiting for write-back.
    Any other snapshot under the ``caches`` kind is passed as it is (``raw``)."""
    if not isinstance(data, dict) or not isinstance(data.get("reads_by_source"), dict):
        return {"name": name, "raw": data}
    reads = data["reads_by_source"]
    total = sum(v for v in reads.values() if _number(v) is not None)
    hits = data.get("hits_by_tier") if isinstance(data.get("hits_by_tier"), dict) else {}
    rates = {
        tier: (float(n) / total if total and _number(n) is not None else None)
        for tier, n in (hits or {}).items()
    }
    return {
        "name": name,
        "backend": data.get("backend"),
        "status": data.get("status"),
        "breaker": data.get("breaker"),
        "reads": total,
        "hit_rates": rates,
        "degraded": data.get("degraded"),
        "degraded_seconds": data.get("degraded_seconds"),
        "degraded_episodes": data.get("degraded_episodes"),
        "dirty": data.get("dirty"),
        "fallback_entries": data.get("fallback_entries"),
        "writebacks": data.get("writebacks"),
    }


def _health_part(state: MonitoringState) -> dict[str, Any]:
    service = state.health
    report = service.snapshot()
    checks = {}
    for name, check in report.get("checks", {}).items():
        checks[name] = {
            "status": check.get("status"),
            "own_status": check.get("own_status"),
            "root_cause": check.get("root_cause"),
            "depends_on": check.get("depends_on", []),
            "critical": check.get("critical", False),
            "message": str(check.get("message") or check.get("output") or "")[:200],
        }
    return {
        "overall_status": report.get("overall_status"),
        "root_cause": report.get("root_cause"),
        "missing_dependencies": report.get("missing_dependencies", []),
        "checks": checks,
    }


class DashboardHub:
    """Builds the dashboard's frames and fans them out to the open streams.

    ``interval`` (seconds, on ``clock``; default one second of monotonic
    time) paces the frames; ``max_clients`` bounds the open streams (one
    more is answered 503).
    """

    def __init__(
        self,
        state: MonitoringState,
        *,
        interval: float = 1.0,
        clock: Clock = MONOTONIC,
        max_clients: int = MAX_CLIENTS,
    ) -> None:
        if isinstance(interval, bool) or not isinstance(interval, int | float):
            raise TypeError(f"interval must be a number of seconds, not {type(interval).__name__}")
        if not 0.01 <= interval <= 60:  # also refuses NaN
            raise ValueError(f"interval must be 0.01 to 60 seconds; got {interval!r}")
        self.state = state
        self.interval = float(interval)
        self.clock = clock
        self.max_clients = max_clients
        self.frames = 0
        self._clients: set[asyncio.Queue[bytes]] = set()
        self._producer: asyncio.Task[None] | None = None
        self._last: bytes | None = None
        self._closed = False
        self._health: tuple[Any, float, dict[str, Any]] | None = None

    @property
    def clients(self) -> int:
        """Open streams now."""
        return len(self._clients)

    def writes_enabled(self) -> bool:
        """Whether breaker control is possible (a token is configured)."""
        return self.state.settings.token_value() is not None

    def details(self) -> bool:
        """Whether the stream carries component details (``show_details=always``);
        an EventSource cannot send a token, so anything else sends only the
        overall status."""
        return self.state.settings.show_details is ShowDetails.ALWAYS

    def config(self) -> dict[str, Any]:
        """What the page needs to know before the first frame."""
        return {
            "writes_enabled": self.writes_enabled(),
            "details": self.details(),
            "show_details": self.state.settings.show_details.value,
            "interval": self.interval,
        }

    def snapshot(self) -> dict[str, Any]:
        """The compact snapshot one frame carries (JSON-ready)."""
        state = self.state
        state.sync()
        body: dict[str, Any] = {
            "at": time.time(),
            "frame": self.frames,
            **self.config(),
        }
        if not self.details():
            body["health"] = {"overall_status": state.health.get_overall_status().value}
            return body
        registry = state.registry
        body["breakers"] = [
            _breaker_row(name, top_level(snapshot_of(c)))
            for name, c in sorted(registry.components(CIRCUIT_BREAKERS).items())
        ]
        body["pools"] = [
            _pool_row(name, top_level(snapshot_of(c)))
            for name, c in sorted(registry.components(CONNECTION_POOLS).items())
        ]
        body["exchanges"] = [
            _exchange_row(name, top_level(snapshot_of(c)))
            for name, c in sorted(registry.components("exchanges").items())
        ]
        body["caches"] = [
            _cache_row(name, top_level(snapshot_of(c)))
            for name, c in sorted(registry.components("caches").items())
        ]
        body["health"] = self._health_part()
        body["events"] = [e.as_dict() for e in state.events.events(limit=EVENTS_IN_FRAME)]
        return body

    def _health_part(self) -> dict[str, Any]:
        """The health graph, rebuilt from the service's full report only when a
        check's status or root cause, or the set of checks, changed (or every
        ``HEALTH_REFRESH`` seconds, for messages): the signature is a dict
        lookup per check, the report is the expensive part of a frame."""
        service = self.state.health
        names = tuple(service.checks)
        signature = (
            service.get_overall_status(),
            service.root_cause(),
            tuple((n, service.get_status(n), service.root_cause(n)) for n in names),
        )
        now = self.clock.now()
        cached = self._health
        if cached is not None and cached[0] == signature and now - cached[1] < HEALTH_REFRESH:
            return cached[2]
        part = _health_part(self.state)
        self._health = (signature, now, part)
        return part

    def frame(self) -> bytes:
        """One ``text/event-stream`` message with the snapshot now."""
        self.frames += 1
        data = dumps(self.snapshot())
        self._last = b"event: snapshot\nid: %d\ndata: %s\n\n" % (self.frames, data)
        return self._last

    # ------------------------------------------------------------- clients

    def subscribe(self) -> asyncio.Queue[bytes]:
        """A queue that receives every frame (only the newest, if a client lags)."""
        if self._closed:
            raise RuntimeError("the dashboard hub is closed")
        queue: asyncio.Queue[bytes] = asyncio.Queue(maxsize=1)
        # While others listen the newest frame is at most one interval old;
        # the first listener after a quiet spell gets a fresh one.
        fresh = self._last is None or not self._clients
        queue.put_nowait(self.frame() if fresh or self._last is None else self._last)
        self._clients.add(queue)
        if self._producer is None or self._producer.done():
            self._producer = asyncio.get_running_loop().create_task(
                self._produce(), name="monitoring-dashboard-frames"
            )
        return queue

    def unsubscribe(self, queue: asyncio.Queue[bytes]) -> None:
        self._clients.discard(queue)

    @staticmethod
    def _offer(queue: asyncio.Queue[bytes], frame: bytes) -> None:
        if queue.full():  # a slow client gets the newest frame, never a backlog
            with contextlib.suppress(asyncio.QueueEmpty):
                queue.get_nowait()
        queue.put_nowait(frame)

    async def _produce(self) -> None:
        while self._clients:
            await self.clock.sleep(self.interval)
            if not self._clients:
                break
            try:
                frame = self.frame()
            except Exception as exc:  # a broken snapshot must not end every stream
                log.warning("monitoring: dashboard frame failed: %s", type(exc).__name__)
                continue
            for queue in tuple(self._clients):
                self._offer(queue, frame)

    def disconnect_all(self) -> int:
        """End every open stream (pages reconnect); returns how many."""
        count = len(self._clients)
        for queue in tuple(self._clients):
            self._offer(queue, _CLOSE)
        self._clients.clear()
        return count

    def open(self) -> None:
        """Accept streams again (the app starts, or starts again after a stop)."""
        self._closed = False

    async def close(self) -> None:
        """End every stream and the producer; no new stream is accepted."""
        self._closed = True
        self.disconnect_all()
        if self._producer is not None:
            self._producer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._producer
            self._producer = None

    def __repr__(self) -> str:
        return (
            f"<DashboardHub clients={len(self._clients)} frames={self.frames} "
            f"interval={self.interval}s closed={self._closed}>"
        )


DASHBOARD_HUB: Final = web.AppKey("virtuoso_dashboard_hub", DashboardHub)
"""``app[DASHBOARD_HUB]``: the dashboard's frame builder of a monitoring app."""
_ASSET_BYTES: Final = web.AppKey("virtuoso_dashboard_assets", dict)


def _asset_response(request: web.Request, name: str) -> web.Response:
    assets: dict[str, bytes] = request.app[_ASSET_BYTES]
    response = web.Response(body=assets[name])
    response.content_type = _ASSETS[name]
    response.charset = "utf-8"
    response.headers["Cache-Control"] = "no-cache"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Content-Security-Policy"] = (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
    )
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


async def _index(request: web.Request) -> web.Response:
    return _asset_response(request, "index.html")


async def _asset(request: web.Request) -> web.Response:
    name = request.match_info["file"]
    if name not in _ASSETS or name == "index.html":
        raise web.HTTPNotFound()
    return _asset_response(request, name)


async def _config(request: web.Request) -> web.Response:
    response = web.Response(body=dumps(request.app[DASHBOARD_HUB].config()))
    response.content_type = "application/json"
    response.charset = "utf-8"
    response.headers["Cache-Control"] = "no-store"
    return response


async def _stream(request: web.Request) -> web.StreamResponse:
    hub = request.app[DASHBOARD_HUB]
    if hub.clients >= hub.max_clients:
        raise web.HTTPServiceUnavailable(reason=f"too many dashboards ({hub.max_clients})")
    try:
        queue = hub.subscribe()
    except RuntimeError:
        raise web.HTTPServiceUnavailable(reason="shutting down") from None
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/event-stream; charset=utf-8",
            "Cache-Control": "no-store",
            "X-Accel-Buffering": "no",
        }
    )
    try:
        await response.prepare(request)
        await response.write(b"retry: 1000\n\n")
        while True:
            frame = await queue.get()
            if frame == _CLOSE:
                break
            await response.write(frame)
    except (ConnectionResetError, ConnectionError):
        pass  # the page went away
    finally:
        hub.unsubscribe(queue)
    return response


async def _open_hub(app: web.Application) -> None:
    app[DASHBOARD_HUB].open()


async def _close_hub(app: web.Application) -> None:
    await app[DASHBOARD_HUB].close()


def add_dashboard(app: web.Application, state: MonitoringState) -> DashboardHub:
    """Add the page, its assets, its config and the event stream to ``app``."""
    hub = DashboardHub(state)
    app[DASHBOARD_HUB] = hub
    app[_ASSET_BYTES] = _read_assets()
    add = app.router.add_route
    add("GET", "/", _index)
    add("GET", f"{ASSET_PREFIX}/{{file}}", _asset)
    add("GET", CONFIG_PATH, _config)
    add("GET", STREAM_PATH, _stream)
    app.on_startup.append(_open_hub)
    app.on_shutdown.append(_close_hub)
    return hub
