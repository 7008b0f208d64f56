"""The OpenAPI 3.1 document of the monitoring API (``GET /api/monitoring/openapi.json``)."""

from __future__ import annotations

from typing import Any, Final

from .._version import __version__
from ._settings import MonitoringSettings

__all__ = ["openapi_document"]

_JSON: Final = "application/json"
_HEALTH: Final = "application/health+json"

_STATUS_VALUES: Final = ["healthy", "unknown", "degraded", "unhealthy", "critical"]
_IETF_VALUES: Final = ["pass", "warn", "fail"]
_BREAKER_STATES: Final = ["closed", "open", "half_open", "forced_open", "disabled"]


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _error(description: str, headers: dict[str, Any] | None = None) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": description,
        "content": {_JSON: {"schema": _ref("Error")}},
    }
    if headers:
        response["headers"] = headers
    return response


_UNAUTHORIZED: Final = _error(
    "missing or wrong bearer token",
    {"WWW-Authenticate": {"schema": {"type": "string"}, "description": "Bearer"}},
)
_FORBIDDEN: Final = _error("disabled: no token configured, or show_details=never")
_DETAIL_ERRORS: Final = {"401": _UNAUTHORIZED, "403": _FORBIDDEN}
_BAD_QUERY: Final = {
    "description": "bad query parameter (JSON); a request line over 8190 bytes is refused "
    "by the HTTP parser itself (text/plain)",
    "content": {
        _JSON: {"schema": _ref("Error")},
        "text/plain": {"schema": {"type": "string"}},
    },
}


def _json_ok(schema: dict[str, Any], description: str = "OK") -> dict[str, Any]:
    return {"description": description, "content": {_JSON: {"schema": schema}}}


def _health_responses(schema: str) -> dict[str, Any]:
    content = {_JSON: {"schema": _ref(schema)}, _HEALTH: {"schema": _ref("IetfHealth")}}
    return {
        "200": {"description": "pass or warn", "content": content},
        "503": {"description": "fail", "content": content},
    }


def _get(
    summary: str,
    responses: dict[str, Any],
    *,
    parameters: list[dict[str, Any]] | None = None,
    secured: bool = False,
    op_id: str,
) -> dict[str, Any]:
    op: dict[str, Any] = {"summary": summary, "operationId": op_id, "responses": responses}
    if parameters:
        op["parameters"] = parameters
    if secured:
        op["security"] = [{}, {"bearerAuth": []}]
    return op


_ACCEPT: Final = {
    "name": "Accept",
    "in": "header",
    "required": False,
    "description": "application/health+json selects the IETF health-check format",
    "schema": {"type": "string"},
}
_NAME: Final = {
    "name": "name",
    "in": "path",
    "required": True,
    "description": "the breaker's name, URL-encoded ('events' is taken by the event log)",
    "schema": {"type": "string", "minLength": 1},
}


def _schemas(event_log_size: int) -> dict[str, Any]:
    nullable_str = {"type": ["string", "null"]}
    return {
        "Error": {
            "type": "object",
            "required": ["error", "message"],
            "properties": {
                "error": {"type": "string"},
                "message": {"type": "string"},
                "field": {"type": "string"},
                "allowed": {"type": "array", "items": {"type": "string"}},
            },
        },
        "HealthSummary": {
            "type": "object",
            "required": ["overall_status", "status"],
            "properties": {
                "overall_status": {"enum": _STATUS_VALUES},
                "status": {"enum": _IETF_VALUES},
                "root_cause": nullable_str,
                "running": {"type": "boolean"},
                "checks": {"type": "object", "additionalProperties": {"enum": _STATUS_VALUES}},
                "counts": {"type": "object", "additionalProperties": {"type": "integer"}},
            },
        },
        "HealthDetailed": {
            "type": "object",
            "required": ["overall_status", "ietf_status", "checks", "missing_dependencies"],
            "properties": {
                "overall_status": {"enum": _STATUS_VALUES},
                "ietf_status": {"enum": _IETF_VALUES},
                "root_cause": nullable_str,
                "running": {"type": "boolean"},
                "at": {"type": "number"},
                "checks": {"type": "object", "additionalProperties": {"type": "object"}},
                "missing_dependencies": {"type": "array", "items": {"type": "string"}},
            },
        },
        "IetfHealth": {
            "type": "object",
            "required": ["status"],
            "properties": {
                "status": {"enum": _IETF_VALUES},
                "output": {"type": "string"},
                "description": {"type": "string"},
                "ready": {"type": "boolean"},
                "checks": {
                    "type": "object",
                    "additionalProperties": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "required": ["status"],
                            "properties": {
                                "componentId": {"type": "string"},
                                "componentType": {"type": "string"},
                                "status": {"enum": _IETF_VALUES},
                                "observedValue": {"type": "number"},
                                "observedUnit": {"type": "string"},
                                "time": {"type": "string"},
                                "output": {"type": "string"},
                                "dependsOn": {"type": "array", "items": {"type": "string"}},
                            },
                        },
                    },
                },
            },
        },
        "Readiness": {
            "type": "object",
            "required": ["status", "ready"],
            "properties": {
                "status": {"enum": _IETF_VALUES},
                "ready": {"type": "boolean"},
                "output": {"type": "string"},
            },
        },
        "Liveness": {
            "type": "object",
            "required": ["status"],
            "properties": {"status": {"const": "pass"}},
        },
        "HealthGroup": {
            "type": "object",
            "required": ["group", "overall_status", "status"],
            "properties": {
                "group": {"type": "string"},
                "overall_status": {"enum": _STATUS_VALUES},
                "status": {"enum": _IETF_VALUES},
                "root_cause": nullable_str,
                "checks": {"type": "object", "additionalProperties": {"enum": _STATUS_VALUES}},
            },
        },
        "HealthGroupList": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["name", "status", "overall_status"],
                "properties": {
                    "name": {"type": "string"},
                    "status": {"enum": _IETF_VALUES},
                    "overall_status": {"enum": _STATUS_VALUES},
                    "members": {"type": "array", "items": {"type": "string"}},
                },
            },
        },
        "CircuitBreaker": {
            "type": "object",
            "required": ["name", "state"],
            "properties": {
                "name": {"type": "string"},
                "state": {"enum": _BREAKER_STATES},
                "previous": {"enum": _BREAKER_STATES},
                "calls": {"type": "integer"},
                "failures": {"type": "integer"},
                "rejected": {"type": "integer"},
                "trips": {"type": "integer"},
                "retry_after": {"type": ["number", "null"]},
            },
        },
        "BreakerControl": {
            "type": "object",
            "required": ["state"],
            "additionalProperties": False,
            "properties": {"state": {"enum": ["closed", "forced_open", "disabled"]}},
        },
        "BreakerEvents": {
            "type": "object",
            "required": ["events", "size", "total", "watched"],
            "properties": {
                "size": {"type": "integer", "maximum": event_log_size},
                "total": {"type": "integer"},
                "watched": {"type": "integer"},
                "events": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["id", "name", "previous", "current", "reason", "source"],
                        "properties": {
                            "id": {"type": "integer"},
                            "name": {"type": "string"},
                            "previous": {"enum": _BREAKER_STATES},
                            "current": {"enum": _BREAKER_STATES},
                            "reason": {"type": "string"},
                            "source": {"enum": ["breaker", "api"]},
                            "at": {"type": "number"},
                            "time": {"type": "string"},
                        },
                    },
                },
            },
        },
        "ConnectionPool": {
            "type": "object",
            "required": ["name"],
            "properties": {"name": {"type": "string"}, "state": {"type": "string"}},
        },
        "Metrics": {
            "type": "object",
            "required": ["circuit_breakers", "connection_pools", "health"],
            "properties": {
                "circuit_breakers": {"type": "object"},
                "connection_pools": {"type": "object"},
                "health": {"type": "object"},
            },
            "additionalProperties": {"type": "object"},
        },
    }


def _dashboard_paths(p: str) -> dict[str, Any]:
    """The dashboard's page, assets, config and event stream (``_dashboard.py``)."""
    text = {"schema": {"type": "string"}}
    config = {
        "type": "object",
        "required": ["writes_enabled", "details", "show_details", "interval"],
        "properties": {
            "writes_enabled": {"type": "boolean"},
            "details": {"type": "boolean"},
            "show_details": {"type": "string", "enum": ["always", "when_authorized", "never"]},
            "interval": {"type": "number", "description": "seconds between frames"},
        },
    }
    return {
        "/": {
            "get": _get(
                "The dashboard page (HTML; no external requests)",
                {"200": {"description": "the page", "content": {"text/html": text}}},
                op_id="dashboardPage",
            )
        },
        "/dashboard/{file}": {
            "get": _get(
                "The dashboard's script and stylesheet",
                {
                    "200": {
                        "description": "the asset",
                        "content": {"text/javascript": text, "text/css": text},
                    },
                    "404": _error("no such asset"),
                },
                parameters=[
                    {
                        "name": "file",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "string", "enum": ["dashboard.js", "dashboard.css"]},
                    }
                ],
                op_id="dashboardAsset",
            )
        },
        f"{p}/dashboard/config": {
            "get": _get(
                "What the dashboard page needs: whether writes are enabled, whether "
                "the stream carries details, the frame interval",
                {"200": _json_ok(config)},
                op_id="dashboardConfig",
            )
        },
        f"{p}/stream": {
            "get": _get(
                "Server-sent events: an 'event: snapshot' frame (compact JSON of "
                "breakers, pools, exchanges, caches, health graph, recent breaker "
                "events) about once a second, one shared build for every client; "
                "only the overall status unless show_details=always",
                {
                    "200": {
                        "description": "an endless event stream",
                        "content": {"text/event-stream": text},
                    },
                    "503": _error("too many open streams, or shutting down"),
                },
                op_id="dashboardStream",
            )
        },
    }


def openapi_document(settings: MonitoringSettings) -> dict[str, Any]:
    """The document for an app with ``settings`` (they bound the event log)."""
    size = settings.event_log_size
    group_schema: dict[str, Any] = {"type": "string", "minLength": 1}
    if settings.groups:
        group_schema["enum"] = sorted(settings.groups)
    p = "/api/monitoring"
    events_params = [
        {
            "name": "limit",
            "in": "query",
            "required": False,
            "description": "the newest N events",
            "schema": {"type": "integer", "minimum": 1, "maximum": size},
        },
        {
            "name": "after",
            "in": "query",
            "required": False,
            "description": "only events with a larger id",
            "schema": {"type": "integer", "minimum": 0, "maximum": 999_999_999},
        },
        {
            "name": "name",
            "in": "query",
            "required": False,
            "description": "only this breaker's events",
            "schema": {"type": "string", "minLength": 1, "maxLength": 200},
        },
    ]
    paths: dict[str, Any] = {
        "/livez": {
            "get": _get(
                "Liveness: the process and its event loop answer",
                {
                    "200": {
                        "description": "alive",
                        "content": {
                            _JSON: {"schema": _ref("Liveness")},
                            _HEALTH: {"schema": _ref("Liveness")},
                        },
                    }
                },
                parameters=[_ACCEPT],
                op_id="livez",
            )
        },
        "/readyz": {
            "get": _get(
                "Readiness: started, not draining, critical checks pass",
                {
                    code: {
                        "description": text,
                        "content": {
                            _JSON: {"schema": _ref("Readiness")},
                            _HEALTH: {"schema": _ref("Readiness")},
                        },
                    }
                    for code, text in (("200", "ready"), ("503", "not ready"))
                },
                parameters=[_ACCEPT],
                op_id="readyz",
            )
        },
        f"{p}/health": {
            "get": _get(
                "Overall health (the seed's overall_status)",
                _health_responses("HealthSummary"),
                parameters=[_ACCEPT],
                op_id="health",
            )
        },
        f"{p}/health/detailed": {
            "get": _get(
                "Every check: status, dependencies, root cause, last result, metrics",
                {**_health_responses("HealthDetailed"), **_DETAIL_ERRORS},
                parameters=[_ACCEPT],
                secured=True,
                op_id="healthDetailed",
            )
        },
        f"{p}/health/groups": {
            "get": _get(
                "The configured health groups and their status",
                {"200": _json_ok(_ref("HealthGroupList"))},
                op_id="healthGroups",
            )
        },
        f"{p}/health/groups/{{group}}": {
            "get": _get(
                "One health group's status",
                {**_health_responses("HealthGroup"), "404": _error("no such group")},
                parameters=[
                    _ACCEPT,
                    {
                        "name": "group",
                        "in": "path",
                        "required": True,
                        "schema": group_schema,
                    },
                ],
                op_id="healthGroup",
            )
        },
        f"{p}/circuit-breakers": {
            "get": _get(
                "Every circuit breaker (a JSON array; states in lower case)",
                {
                    "200": _json_ok({"type": "array", "items": _ref("CircuitBreaker")}),
                    **_DETAIL_ERRORS,
                },
                secured=True,
                op_id="circuitBreakers",
            )
        },
        f"{p}/circuit-breakers/events": {
            "get": _get(
                "The bounded log of breaker state changes, oldest first",
                {
                    "200": _json_ok(_ref("BreakerEvents")),
                    "400": _BAD_QUERY,
                    **_DETAIL_ERRORS,
                },
                parameters=events_params,
                secured=True,
                op_id="circuitBreakerEvents",
            )
        },
        f"{p}/circuit-breakers/{{name}}": {
            "get": _get(
                "One circuit breaker",
                {
                    "200": _json_ok(
                        {"anyOf": [_ref("CircuitBreaker"), _ref("BreakerEvents")]},
                        "the breaker (the event log for the name 'events')",
                    ),
                    "400": _error("bad query parameter (the name 'events': the event log)"),
                    "404": _error("no such breaker"),
                    **_DETAIL_ERRORS,
                },
                parameters=[_NAME],
                secured=True,
                op_id="circuitBreaker",
            ),
            "post": {
                "summary": "Set a breaker's state by hand (needs the bearer token)",
                "operationId": "controlCircuitBreaker",
                "parameters": [_NAME],
                "security": [{"bearerAuth": []}],
                "requestBody": {
                    "required": True,
                    "content": {_JSON: {"schema": _ref("BreakerControl")}},
                },
                "responses": {
                    "200": _json_ok(_ref("CircuitBreaker"), "the breaker after the change"),
                    "400": _error("bad body; 'field' names the field at fault"),
                    "401": _UNAUTHORIZED,
                    "403": _error("write endpoints disabled: no token configured"),
                    "404": _error("no such breaker"),
                    "405": _error("the name 'events' is the event log, which is read-only"),
                    "413": _error("body too large"),
                    "415": _error("body is not application/json"),
                },
            },
        },
        f"{p}/connection-pools": {
            "get": _get(
                "Every connection pool: limits, live state, metrics, health",
                {
                    "200": _json_ok({"type": "array", "items": _ref("ConnectionPool")}),
                    **_DETAIL_ERRORS,
                },
                secured=True,
                op_id="connectionPools",
            )
        },
        f"{p}/metrics": {
            "get": _get(
                "Every registry component's snapshot by kind, plus health (JSON)",
                {"200": _json_ok(_ref("Metrics")), **_DETAIL_ERRORS},
                secured=True,
                op_id="metrics",
            )
        },
        f"{p}/openapi.json": {
            "get": _get(
                "This document",
                {"200": _json_ok({"type": "object"})},
                op_id="openapi",
            )
        },
        "/metrics": {
            "get": _get(
                "Prometheus exposition of every component, read at scrape time",
                {
                    "200": {
                        "description": "Prometheus text format (or OpenMetrics on request)",
                        "content": {"text/plain": {"schema": {"type": "string"}}},
                    },
                    "503": {
                        "description": "prometheus_client is not installed",
                        "content": {"application/json": {"schema": {"type": "object"}}},
                    },
                },
                op_id="prometheusMetrics",
            )
        },
        **_dashboard_paths(p),
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Virtuoso Resilience monitoring API",
            "version": __version__,
            "description": "Health, circuit breakers, pools and metrics of a resilience registry.",
        },
        "servers": [{"url": "/"}],
        "paths": paths,
        "components": {
            "schemas": _schemas(size),
            "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer"}},
        },
    }
