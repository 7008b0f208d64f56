"""The monitoring surface over a :class:`ResilienceRegistry`.

``MonitoringServer(registry)`` serves, on ``127.0.0.1:8001`` by default,
``/livez``, ``/readyz``, ``/metrics`` (Prometheus) and ``/api/monitoring/...``
(health, health groups, circuit breakers with manual control and an event
log, connection pools, metrics as JSON, the OpenAPI document).
``create_monitoring_app`` builds the ``aiohttp.web.Application`` for mounting
elsewhere. ``PrometheusExporter`` exports every component at scrape time;
``AlertNotifier`` sends health status changes to ``AlertSink`` objects such as
``DiscordWebhookSink`` and ``JsonWebhookSink``. See ``docs/monitoring.md``,
``docs/metrics.md`` and ``docs/alerts.md``.
The live dashboard is at ``/`` (an event stream at ``/api/monitoring/stream``).
"""

from ._alerts import Alert, AlertNotifier, AlertNotifierConfig, AlertSink, SinkStats
from ._app import API_PREFIX, MONITORING_STATE, create_monitoring_app
from ._breaker_log import BreakerEvent, BreakerEventLog
from ._dashboard import DASHBOARD_HUB, DashboardHub
from ._health_format import HEALTH_JSON, GroupStatus, Readiness
from ._openapi import openapi_document
from ._server import MonitoringServer
from ._settings import DEFAULT_HOST, DEFAULT_PORT, HealthGroup, MonitoringSettings, ShowDetails
from ._state import MonitoringState
from ._webhooks import (
    DISCORD_CONTENT_LIMIT,
    DISCORD_WEBHOOK_ENV,
    DiscordWebhookSink,
    JsonWebhookSink,
)

__all__ = [
    "API_PREFIX",
    "CACHES",
    "DASHBOARD_HUB",
    "DEFAULT_HOST",
    "DEFAULT_PORT",
    "DISCORD_CONTENT_LIMIT",
    "DISCORD_WEBHOOK_ENV",
    "EXCHANGES",
    "HEALTH_JSON",
    "KIND_ADAPTERS",
    "METRIC_NAMES",
    "MONITORING_STATE",
    "Alert",
    "AlertNotifier",
    "AlertNotifierConfig",
    "AlertSink",
    "BreakerEvent",
    "BreakerEventLog",
    "DashboardHub",
    "DiscordWebhookSink",
    "GroupStatus",
    "HealthGroup",
    "JsonWebhookSink",
    "KindAdapter",
    "MetricFamilies",
    "MonitoringServer",
    "MonitoringSettings",
    "MonitoringState",
    "PrometheusExporter",
    "Readiness",
    "ShowDetails",
    "SinkStats",
    "create_monitoring_app",
    "make_metrics_handler",
    "openapi_document",
    "prometheus_exposition",
]

# Prometheus needs the ``metrics`` extra (prometheus_client): imported on first use.
_PROMETHEUS = frozenset(
    {
        "CACHES",
        "EXCHANGES",
        "KIND_ADAPTERS",
        "METRIC_NAMES",
        "KindAdapter",
        "MetricFamilies",
        "PrometheusExporter",
        "make_metrics_handler",
        "prometheus_exposition",
    }
)


def __getattr__(name: str) -> object:
    if name in _PROMETHEUS:
        try:
            from . import _prometheus
        except ImportError as exc:
            raise ImportError(
                f"virtuoso_resilience.monitoring.{name} needs prometheus_client: "
                "pip install 'virtuoso-resilience[metrics]'"
            ) from exc
        return getattr(_prometheus, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
