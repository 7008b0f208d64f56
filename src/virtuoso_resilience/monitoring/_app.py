"""The monitoring HTTP API as an ``aiohttp.web.Application``.

``create_monitoring_app(registry, settings)`` builds it; run it with
:class:`~virtuoso_resilience.monitoring.MonitoringServer` or mount it in
your own aiohttp server. Every body comes from the registry's cached state
(see :class:`MonitoringState`); no request runs a health check.
"""

from __future__ import annotations

import asyncio
import functools
import hmac
import json
import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any, Final, NoReturn

from aiohttp import web

from ..clock import Clock
from ..policies.circuit_breaker import CircuitBreaker
from ..registry import CIRCUIT_BREAKERS, CONNECTION_POOLS, ResilienceRegistry
from ._dashboard import add_dashboard
from ._health_format import (
    HEALTH_JSON,
    group_status,
    ietf_body,
    readiness,
    summary_body,
)
from ._json import dumps, short, top_level
from ._openapi import openapi_document
from ._settings import MonitoringSettings, ShowDetails
from ._state import BREAKERS, COMPONENTS, HEALTH, MonitoringState, snapshot_of

__all__ = ["API_PREFIX", "MONITORING_STATE", "create_monitoring_app"]

log = logging.getLogger("virtuoso_resilience.monitoring")

API_PREFIX: Final = "/api/monitoring"
MONITORING_STATE: Final = web.AppKey("virtuoso_monitoring_state", MonitoringState)
"""``app[MONITORING_STATE]``: the registry, settings and caches of a monitoring app."""

JSON: Final = "application/json"
_STATES: Final = {"closed": "reset", "forced_open": "force_open", "disabled": "disable"}
_DIGITS: Final = re.compile(r"[0-9]{1,9}")
_HEALTH_SOURCES: Final = (HEALTH, COMPONENTS)
_Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_REASONS: Final = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
    500: "internal_error",
    503: "unavailable",
}


class _Problem(Exception):
    """An error answer: status, message, and the field at fault."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        field: str | None = None,
        allowed: list[str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.field = field
        self.allowed = allowed
        self.headers = headers or {}


def _error_response(problem: _Problem) -> web.Response:
    body: dict[str, Any] = {
        "error": _REASONS.get(problem.status, "error"),
        "message": problem.message,
    }
    if problem.field is not None:
        body["field"] = problem.field
    if problem.allowed is not None:
        body["allowed"] = problem.allowed
    return _response(problem.status, JSON, dumps(body), problem.headers)


def _response(
    status: int, content_type: str, body: bytes, headers: dict[str, str] | None = None
) -> web.Response:
    response = web.Response(status=status, body=body, headers=headers)
    response.content_type = content_type
    response.charset = "utf-8" if content_type == JSON else None
    response.headers["Cache-Control"] = "no-store"
    return response


_EVENTS_PATH: Final = f"{API_PREFIX}/circuit-breakers/events"
_HTTP_MESSAGES: Final = {
    404: "no such endpoint; see /api/monitoring/openapi.json",
    405: "method not allowed",
    413: "request body too large",
}


@web.middleware
async def _errors(request: web.Request, handler: _Handler) -> web.StreamResponse:
    """Every error is a JSON body: no HTML, no traceback, never a secret."""
    try:
        return await handler(request)
    except _Problem as problem:
        return _error_response(problem)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        headers = {}
        if isinstance(exc, web.HTTPMethodNotAllowed):
            allowed = sorted(exc.allowed_methods)
            if request.rel_url.path == _EVENTS_PATH:  # the log is read-only
                allowed = ["GET"]
            headers["Allow"] = ",".join(allowed)
        message = _HTTP_MESSAGES.get(exc.status, exc.reason)
        return _error_response(_Problem(exc.status, message, headers=headers))
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        log.error(
            "monitoring API: %s while answering %s %s",
            type(exc).__name__,
            request.method,
            request.rel_url.path[:200],
        )
        return _error_response(_Problem(500, "internal error (logged by the server)"))


# ------------------------------------------------------------------ access


def _state(request: web.Request) -> MonitoringState:
    return request.app[MONITORING_STATE]


def _bearer_ok(request: web.Request, token: str) -> bool:
    header = request.headers.get("Authorization", "")
    scheme, _, presented = header.partition(" ")
    if scheme.lower() != "bearer":
        return False
    given = presented.strip().encode("utf-8", "surrogateescape")
    return hmac.compare_digest(given, token.encode())


_UNAUTHORIZED_HEADERS: Final = {"WWW-Authenticate": 'Bearer realm="virtuoso-resilience"'}


def _require_token(request: web.Request, what: str) -> None:
    token = _state(request).settings.token_value()
    if token is None:
        raise _Problem(
            403,
            f"{what} is disabled: no token is configured. Set MonitoringSettings.token "
            "(for `virtuoso-resilience serve`: the VIRTUOSO_MONITORING_TOKEN environment "
            "variable) and send it as 'Authorization: Bearer <token>'",
        )
    if not _bearer_ok(request, token):
        raise _Problem(
            401,
            f"{what} needs 'Authorization: Bearer <token>' with the configured token",
            headers=_UNAUTHORIZED_HEADERS,
        )


def _details_allowed(request: web.Request) -> bool:
    settings = _state(request).settings
    if settings.show_details is ShowDetails.ALWAYS:
        return True
    if settings.show_details is ShowDetails.NEVER:
        return False
    token = settings.token_value()
    return token is not None and _bearer_ok(request, token)


def _require_details(request: web.Request) -> None:
    settings = _state(request).settings
    if settings.show_details is ShowDetails.ALWAYS:
        return
    if settings.show_details is ShowDetails.NEVER:
        raise _Problem(403, "details are disabled on this server (show_details=never)")
    _require_token(request, "this endpoint (show_details=when_authorized)")


def _wants_ietf(request: web.Request) -> bool:
    return HEALTH_JSON in request.headers.get("Accept", "").lower()


def _send(entry_status: int, content_type: str, body: bytes) -> web.Response:
    return _response(entry_status, content_type, body)


# ------------------------------------------------------------------ health


async def _livez(request: web.Request) -> web.Response:
    """The process and its event loop answer: nothing else is consulted."""
    content_type = HEALTH_JSON if _wants_ietf(request) else JSON
    return _response(200, content_type, b'{"status":"pass"}')


async def _readyz(request: web.Request) -> web.Response:
    """Computed per request (not cached), so draining and an open breaker show at once:
    the overall status is O(1), a group O(members), breaker patterns O(breakers)."""
    state = _state(request)
    state.sync()
    settings = state.settings
    group = settings.readiness_group
    result = readiness(
        state.health,
        state.registry.components(CIRCUIT_BREAKERS),
        started=state.started,
        draining=state.draining,
        group=(group, settings.groups[group]) if group is not None else None,
        fail_on_open=settings.fail_readiness_on_open,
    )
    content_type = HEALTH_JSON if _wants_ietf(request) else JSON
    return _response(200 if result.ready else 503, content_type, dumps(result.as_dict()))


async def _health(request: web.Request) -> web.Response:
    state = _state(request)
    details = _details_allowed(request)
    ietf = _wants_ietf(request)

    def build() -> tuple[int, str, bytes]:
        service = state.health
        status = service.get_overall_status()
        if ietf:
            report = service.report() if details else None
            body = ietf_body(report, status, root_cause=service.root_cause())
            return status.http_status, HEALTH_JSON, dumps(body)
        return status.http_status, JSON, dumps(summary_body(service, details=details))

    entry = state.cached(f"health:{ietf}:{details}", build, _HEALTH_SOURCES)
    return _send(entry.status, entry.content_type, entry.body)


async def _health_detailed(request: web.Request) -> web.Response:
    _require_details(request)
    state = _state(request)
    ietf = _wants_ietf(request)

    def build() -> tuple[int, str, bytes]:
        service = state.health
        report = service.report()
        status = report.status
        if ietf:
            body = ietf_body(report, status, root_cause=report.root_cause)
            return status.http_status, HEALTH_JSON, dumps(body)
        return status.http_status, JSON, dumps(report.as_dict())

    entry = state.cached(f"health-detailed:{ietf}", build, _HEALTH_SOURCES)
    return _send(entry.status, entry.content_type, entry.body)


async def _health_groups(request: web.Request) -> web.Response:
    state = _state(request)
    details = _details_allowed(request)

    def build() -> tuple[int, str, bytes]:
        groups = []
        for name, group in state.settings.groups.items():
            result = group_status(state.health, name, group)
            item: dict[str, Any] = {
                "name": name,
                "status": result.status.ietf,
                "overall_status": result.status.value,
            }
            if details:
                item["members"] = list(result.members)
            groups.append(item)
        return 200, JSON, dumps(groups)

    entry = state.cached(f"groups:{details}", build, _HEALTH_SOURCES)
    return _send(entry.status, entry.content_type, entry.body)


async def _health_group(request: web.Request) -> web.Response:
    state = _state(request)
    name = request.match_info["group"]
    group = state.settings.groups.get(name)
    if group is None:
        known = ", ".join(sorted(state.settings.groups)) or "none"
        raise _Problem(404, f"no health group {short(name)}; configured groups: {known}")
    details = _details_allowed(request)
    ietf = _wants_ietf(request)

    def build() -> tuple[int, str, bytes]:
        result = group_status(state.health, name, group)
        status = result.status
        if ietf:
            report = state.health.report() if details else None
            body = ietf_body(
                report,
                status,
                root_cause=result.root_cause,
                members=result.members,
                description=f"health group {name}",
            )
            return status.http_status, HEALTH_JSON, dumps(body)
        plain_body: dict[str, Any] = {
            "group": name,
            "overall_status": status.value,
            "status": status.ietf,
        }
        if details:
            plain_body["root_cause"] = result.root_cause
            plain_body["checks"] = {m: state.health.get_status(m).value for m in result.members}
        return status.http_status, JSON, dumps(plain_body)

    entry = state.cached(f"group:{name}:{ietf}:{details}", build, _HEALTH_SOURCES)
    return _send(entry.status, entry.content_type, entry.body)


# ------------------------------------------------------------- components


def _listing(state: MonitoringState, kind: str) -> list[Any]:
    items = []
    for name, component in sorted(state.registry.components(kind).items()):
        data = top_level(snapshot_of(component))
        items.append({"name": name, **data} if isinstance(data, dict) else {"name": name})
    return items


async def _circuit_breakers(request: web.Request) -> web.Response:
    _require_details(request)
    state = _state(request)
    entry = state.cached(
        "circuit-breakers",
        lambda: (200, JSON, dumps(_listing(state, CIRCUIT_BREAKERS))),
        (BREAKERS, COMPONENTS),
    )
    return _send(entry.status, entry.content_type, entry.body)


async def _connection_pools(request: web.Request) -> web.Response:
    _require_details(request)
    state = _state(request)
    entry = state.cached(
        "connection-pools", lambda: (200, JSON, dumps(_listing(state, CONNECTION_POOLS)))
    )
    return _send(entry.status, entry.content_type, entry.body)


def _kind_fragment(state: MonitoringState, kind: str) -> tuple[int, str, bytes]:
    components = sorted(state.registry.components(kind).items())
    return 200, JSON, dumps({name: top_level(snapshot_of(c)) for name, c in components})


async def _metrics(request: web.Request) -> web.Response:
    """Assembled from one cached fragment per kind and one for health, so a
    breaker changing state does not re-serialise the health snapshot."""
    _require_details(request)
    state = _state(request)

    def build() -> tuple[int, str, bytes]:
        kinds = dict.fromkeys((CIRCUIT_BREAKERS, CONNECTION_POOLS, *state.registry.kinds))
        parts = []
        for kind in kinds:
            fragment = state.cached(
                f"metrics:{kind}",
                functools.partial(_kind_fragment, state, kind),
                (BREAKERS, COMPONENTS),
            )
            parts.append(dumps(kind) + b":" + fragment.body)
        health = state.cached(
            "metrics:health",
            lambda: (200, JSON, dumps(state.health.snapshot())),
            _HEALTH_SOURCES,
        )
        parts.append(b'"health":' + health.body)
        return 200, JSON, b"{" + b",".join(parts) + b"}"

    entry = state.cached("metrics", build)
    return _send(entry.status, entry.content_type, entry.body)


def _breaker(state: MonitoringState, name: str) -> CircuitBreaker:
    state.sync()
    breaker = state.registry.components(CIRCUIT_BREAKERS).get(name)
    if not isinstance(breaker, CircuitBreaker):
        count = len(state.registry.components(CIRCUIT_BREAKERS))
        raise _Problem(
            404,
            f"no circuit breaker named {short(name)} ({count} registered; "
            "GET /api/monitoring/circuit-breakers lists them)",
        )
    return breaker


async def _circuit_breaker(request: web.Request) -> web.Response:
    _require_details(request)
    state = _state(request)
    breaker = _breaker(state, request.match_info["name"])
    data = top_level(snapshot_of(breaker))
    return _response(200, JSON, dumps({"name": breaker.name, **data}))


def _bad_body(message: str, field: str = "body", allowed: list[str] | None = None) -> NoReturn:
    raise _Problem(400, message, field=field, allowed=allowed)


def _reject_constant(token: str) -> NoReturn:
    raise ValueError(f"{token} is not allowed in JSON")


def _parse_state(raw: bytes) -> str:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        _bad_body("the body is not valid UTF-8")
    try:
        data = json.loads(text, parse_constant=_reject_constant)
    except RecursionError:
        _bad_body("the body is nested too deeply")
    except ValueError as exc:
        reason = exc.msg if isinstance(exc, json.JSONDecodeError) else str(exc)[:80]
        _bad_body(f"the body is not valid JSON ({reason})")
    allowed = sorted(_STATES)
    if not isinstance(data, dict):
        _bad_body(
            f'the body must be a JSON object like {{"state": "closed"}}, '
            f"not a JSON {type(data).__name__}"
        )
    unknown = sorted(k for k in data if k != "state")
    if unknown:
        _bad_body(
            f"unknown field {short(unknown[0], 60)}; the body takes only 'state'",
            field=unknown[0][:60],
        )
    if "state" not in data:
        _bad_body("field 'state' is required", field="state", allowed=allowed)
    value = data["state"]
    if not isinstance(value, str) or value not in _STATES:
        shown = short(value, 60) if isinstance(value, str) else f"a JSON {type(value).__name__}"
        _bad_body(
            f"field 'state' must be one of {', '.join(allowed)}; got {shown}",
            field="state",
            allowed=allowed,
        )
    return value


async def _control_breaker(request: web.Request) -> web.Response:
    state = _state(request)
    if request.match_info["name"] == "events":
        raise _Problem(405, "the breaker event log is read-only", headers={"Allow": "GET"})
    _require_token(request, "circuit breaker control")
    breaker = _breaker(state, request.match_info["name"])
    if request.content_type != JSON:
        raise _Problem(
            415,
            f"the body must be {JSON}, not {short(request.content_type or 'none', 60)}",
            field="Content-Type",
        )
    raw = await request.read()
    target = _parse_state(raw)
    previous = breaker.state.value
    with state.events.manual(breaker.name):
        getattr(breaker, _STATES[target])()
    state.invalidate(BREAKERS, now=True)
    log.info("monitoring API: breaker %r set %s -> %s", breaker.name, previous, target)
    data = top_level(snapshot_of(breaker))
    return _response(200, JSON, dumps({"name": breaker.name, "previous": previous, **data}))


def _query_int(request: web.Request, field: str, low: int, high: int) -> int | None:
    raw = request.query.get(field)
    if raw is None:
        return None
    if not _DIGITS.fullmatch(raw) or not low <= int(raw) <= high:
        raise _Problem(
            400,
            f"query parameter {field!r} must be an integer from {low} to {high} "
            f"(ASCII digits); got {short(raw, 40)}",
            field=field,
        )
    return int(raw)


async def _breaker_events(request: web.Request) -> web.Response:
    _require_details(request)
    state = _state(request)
    state.sync()
    log_ = state.events
    limit = _query_int(request, "limit", 1, log_.size)
    after = _query_int(request, "after", 0, 999_999_999) or 0
    name = request.query.get("name")
    if name is not None and not 1 <= len(name) <= 200:
        raise _Problem(400, "query parameter 'name' must be 1 to 200 characters", field="name")
    events = log_.events(name=name, after=after, limit=limit)
    body = {
        "events": [e.as_dict() for e in events],
        "size": log_.size,
        "total": log_.total,
        "watched": len(log_.watched),
    }
    return _response(200, JSON, dumps(body))


async def _openapi(request: web.Request) -> web.Response:
    state = _state(request)
    entry = state.cached(
        "openapi", lambda: (200, JSON, dumps(openapi_document(state.settings))), sources=()
    )
    return _send(entry.status, entry.content_type, entry.body)


# ------------------------------------------------------------------- app


async def _on_startup(app: web.Application) -> None:
    await app[MONITORING_STATE].start()


async def _on_shutdown(app: web.Application) -> None:
    app[MONITORING_STATE].begin_drain()


async def _on_cleanup(app: web.Application) -> None:
    await app[MONITORING_STATE].stop()


def _add_routes(app: web.Application) -> None:
    add = app.router.add_route
    p = API_PREFIX
    add("GET", "/livez", _livez)
    add("GET", "/readyz", _readyz)
    add("GET", f"{p}/health", _health)
    add("GET", f"{p}/health/detailed", _health_detailed)
    add("GET", f"{p}/health/groups", _health_groups)
    add("GET", f"{p}/health/groups/{{group}}", _health_group)
    add("GET", f"{p}/circuit-breakers", _circuit_breakers)
    add("GET", f"{p}/circuit-breakers/events", _breaker_events)  # before {name}
    breaker = app.router.add_resource(f"{p}/circuit-breakers/{{name:.+}}")
    breaker.add_route("GET", _circuit_breaker)
    breaker.add_route("POST", _control_breaker)
    add("GET", f"{p}/connection-pools", _connection_pools)
    add("GET", f"{p}/metrics", _metrics)
    add("GET", f"{p}/openapi.json", _openapi)
    add_dashboard(app, app[MONITORING_STATE])  # GET /, /dashboard/*, .../stream
    add("GET", "/metrics", _prometheus_route(app[MONITORING_STATE].registry))


def _prometheus_route(registry: ResilienceRegistry) -> Any:
    """``GET /metrics``: the Prometheus exposition, when ``prometheus_client``
    is installed (the ``metrics`` extra); otherwise a 503 saying so."""
    try:
        from ._prometheus import make_metrics_handler
    except ImportError:

        async def _unavailable(request: web.Request) -> web.Response:
            return web.json_response(
                {
                    "error": "prometheus_client is not installed",
                    "hint": "pip install 'virtuoso-resilience[metrics]'",
                },
                status=503,
            )

        return _unavailable
    return make_metrics_handler(registry)


def create_monitoring_app(
    registry: ResilienceRegistry,
    settings: MonitoringSettings | None = None,
    *,
    clock: Clock | None = None,
) -> web.Application:
    """The monitoring API for ``registry`` as an aiohttp application.

    ``settings`` default to :class:`MonitoringSettings()` (loopback:8001,
    details for everybody, no write access). ``clock`` (default: the
    registry's) times the body cache. ``app[MONITORING_STATE]`` holds the
    state; the app starts following the registry on startup.
    """
    if not isinstance(registry, ResilienceRegistry):
        raise TypeError(f"registry must be a ResilienceRegistry, not {type(registry).__name__}")
    settings = settings if settings is not None else MonitoringSettings()
    app = web.Application(middlewares=[_errors], client_max_size=settings.max_body_bytes)
    app[MONITORING_STATE] = MonitoringState(
        registry, settings, clock if clock is not None else registry.clock
    )
    _add_routes(app)
    app.on_startup.append(_on_startup)
    app.on_shutdown.append(_on_shutdown)
    app.on_cleanup.append(_on_cleanup)
    return app
