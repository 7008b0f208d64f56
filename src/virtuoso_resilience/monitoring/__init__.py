"""The monitoring surface: Prometheus metrics and alerts over a registry.

``PrometheusExporter(registry)`` (or ``prometheus_exposition(registry)``,
``make_metrics_handler(registry)`` for an aiohttp route) exports every
component at scrape time; ``AlertNotifier`` sends health status changes to
``AlertSink`` objects such as ``DiscordWebhookSink`` and ``JsonWebhookSink``.
See ``docs/metrics.md`` and ``docs/alerts.md``.
"""

from ._alerts import Alert, AlertNotifier, AlertNotifierConfig, AlertSink, SinkStats
from ._prometheus import (
    CACHES,
    EXCHANGES,
    KIND_ADAPTERS,
    METRIC_NAMES,
    KindAdapter,
    MetricFamilies,
    PrometheusExporter,
    make_metrics_handler,
    prometheus_exposition,
)
from ._webhooks import (
    DISCORD_CONTENT_LIMIT,
    DISCORD_WEBHOOK_ENV,
    DiscordWebhookSink,
    JsonWebhookSink,
)

__all__ = [
    "CACHES",
    "DISCORD_CONTENT_LIMIT",
    "DISCORD_WEBHOOK_ENV",
    "EXCHANGES",
    "KIND_ADAPTERS",
    "METRIC_NAMES",
    "Alert",
    "AlertNotifier",
    "AlertNotifierConfig",
    "AlertSink",
    "DiscordWebhookSink",
    "JsonWebhookSink",
    "KindAdapter",
    "MetricFamilies",
    "PrometheusExporter",
    "SinkStats",
    "make_metrics_handler",
    "prometheus_exposition",
]
