"""The monitoring surface: an HTTP API over a :class:`ResilienceRegistry`.

``MonitoringServer(registry)`` serves, on ``127.0.0.1:8001`` by default,
``/livez``, ``/readyz`` and ``/api/monitoring/...`` (health, health groups,
circuit breakers with manual control and an event log, connection pools,
metrics as JSON, the OpenAPI document) and the live dashboard at ``/``
(an event stream at ``/api/monitoring/stream``). ``create_monitoring_app`` builds the
``aiohttp.web.Application`` for mounting elsewhere. See ``docs/monitoring.md``.
"""

from ._app import API_PREFIX, MONITORING_STATE, create_monitoring_app
from ._breaker_log import BreakerEvent, BreakerEventLog
from ._dashboard import DASHBOARD_HUB, DashboardHub
from ._health_format import HEALTH_JSON, GroupStatus, Readiness
from ._openapi import openapi_document
from ._server import MonitoringServer
from ._settings import DEFAULT_HOST, DEFAULT_PORT, HealthGroup, MonitoringSettings, ShowDetails
from ._state import MonitoringState

__all__ = [
    "API_PREFIX",
    "DASHBOARD_HUB",
    "DEFAULT_HOST",
    "DEFAULT_PORT",
    "HEALTH_JSON",
    "MONITORING_STATE",
    "BreakerEvent",
    "BreakerEventLog",
    "DashboardHub",
    "GroupStatus",
    "HealthGroup",
    "MonitoringServer",
    "MonitoringSettings",
    "MonitoringState",
    "Readiness",
    "ShowDetails",
    "create_monitoring_app",
    "openapi_document",
]
