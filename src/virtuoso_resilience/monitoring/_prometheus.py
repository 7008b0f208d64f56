"""Prometheus exposition of a :class:`~virtuoso_resilience.ResilienceRegistry`.

A custom collector reads the registry's components at scrape time: nothing
runs on the path of a protected call. Each registry *kind* has an adapter
function in :data:`KIND_ADAPTERS` that turns one component's snapshot into
samples; a new kind adds a function to that table, not a branch here.

The collector lives on its own :class:`prometheus_client.CollectorRegistry`
(never the global default one), so two registries in one process, or a test
and the application, never share metrics.

Every metric is documented in ``docs/metrics.md``; a test checks that the
exposition and the page agree.
"""

from __future__ import annotations

import logging
import math
import platform
import weakref
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from aiohttp import web
from prometheus_client import CollectorRegistry
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
)
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from .._version import __version__
from ..health import HealthService, ServiceStatus
from ..policies import CircuitBreaker, CircuitState
from ..registry import (
    BULKHEADS,
    CIRCUIT_BREAKERS,
    CONNECTION_POOLS,
    RATE_LIMITERS,
    RETRY_POLICIES,
    TIMEOUTS,
    ResilienceRegistry,
)

__all__ = [
    "CACHES",
    "EXCHANGES",
    "KIND_ADAPTERS",
    "METRIC_NAMES",
    "KindAdapter",
    "MetricFamilies",
    "PrometheusExporter",
    "make_metrics_handler",
    "prometheus_exposition",
]

log = logging.getLogger("virtuoso_resilience.monitoring.prometheus")

EXCHANGES: Final = "exchanges"
"""The registry kind of the ccxt exchange adapters."""
CACHES: Final = "caches"
"""The registry kind of the resilient caches."""

_STATES: Final = tuple(s.value for s in CircuitState)
_HEALTH_STATES: Final = tuple(s.value for s in ServiceStatus)


def _num(value: object) -> float | None:
    """``value`` as a finite float; None for anything else (bools, strings, NaN, inf)."""
    kind = type(value)
    if kind is int:
        return float(value)  # type: ignore[arg-type]
    if kind is float:
        return value if math.isfinite(value) else None  # type: ignore[arg-type,return-value]
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _plain(snapshot: Any) -> Mapping[str, Any]:
    """A component snapshot as a mapping (``as_dict()``, a mapping, else empty)."""
    as_dict = getattr(snapshot, "as_dict", None)
    if callable(as_dict):
        snapshot = as_dict()
    return snapshot if isinstance(snapshot, Mapping) else {}


def _sub(mapping: Mapping[str, Any], *keys: str) -> Mapping[str, Any]:
    """``mapping[k1][k2]...`` when each level is a mapping, else empty."""
    current: Any = mapping
    for key in keys:
        current = current.get(key) if isinstance(current, Mapping) else None
    return current if isinstance(current, Mapping) else {}


class MetricFamilies:
    """The samples of one scrape, by family.

    Every documented family is present (its HELP and TYPE lines appear) even
    when no component of its kind exists. Adapters add samples with
    :meth:`gauge`, :meth:`counter`, :meth:`histogram` and :meth:`one_hot`,
    naming the family as in :data:`_SPECS` (counters without ``_total``),
    labels in the family's label order. Values that are not finite numbers
    (None, bools, strings, NaN, ±inf) are skipped, and so are negative counters.

    :meth:`render` writes the Prometheus text format (0.0.4) directly, byte
    for byte what ``prometheus_client.generate_latest`` writes for
    :meth:`metrics` (a test checks it), without building a sample object per
    value; :meth:`metrics` gives ``prometheus_client`` families for any other
    consumer of the collector.
    """

    __slots__ = ("_histograms", "_values")

    def __init__(self) -> None:
        self._values: dict[str, list[tuple[tuple[str, ...], float]]] = {
            spec.name: [] for spec in _SPECS if spec.type != "histogram"
        }
        self._histograms: dict[
            str, list[tuple[tuple[str, ...], list[tuple[str, float]], float]]
        ] = {spec.name: [] for spec in _SPECS if spec.type == "histogram"}

    def gauge(self, name: str, labels: list[str], value: object) -> None:
        """Add a gauge sample."""
        number = _num(value)
        if number is not None:
            self._values[name].append((tuple(labels), number))

    def counter(self, name: str, labels: list[str], value: object) -> None:
        """Add a counter sample (negative values are skipped)."""
        number = _num(value)
        if number is not None and number >= 0:
            self._values[name].append((tuple(labels), number))

    def histogram(self, name: str, labels: list[str], histogram: Mapping[str, Any]) -> None:
        """Add a histogram from ``{"buckets": {le: cumulative count}, "sum": seconds}``
        (the buckets must end with ``"+Inf"``; anything else is skipped)."""
        raw = histogram.get("buckets")
        total = _num(histogram.get("sum"))
        if not isinstance(raw, Mapping) or total is None:
            return
        buckets: list[tuple[str, float]] = []
        for bound, count in raw.items():
            number = _num(count)
            if number is None or not isinstance(bound, str) or _num_le(bound) is None:
                return
            buckets.append((bound, number))
        if not buckets or buckets[-1][0] != "+Inf":
            return
        self._histograms[name].append((tuple(labels), buckets, total))

    def one_hot(self, name: str, labels: list[str], current: str, values: tuple[str, ...]) -> None:
        """A gauge that is 1 for ``current`` and 0 for every other of ``values``."""
        samples = self._values[name]
        base = tuple(labels)
        for value in values:
            samples.append(((*base, value), 1.0 if value == current else 0.0))

    def metrics(self) -> list[Metric]:
        """The families as ``prometheus_client`` metric objects."""
        families: list[Metric] = []
        for spec in _SPECS:
            family = spec.make()
            if isinstance(family, HistogramMetricFamily):
                for labels, buckets, total in self._histograms[spec.name]:
                    family.add_metric(list(labels), buckets, total)
            else:
                assert isinstance(family, GaugeMetricFamily | CounterMetricFamily)
                for labels, value in self._values[spec.name]:
                    family.add_metric(list(labels), value)
            families.append(family)
        return families

    def render(self) -> bytes:
        """The Prometheus text format (what ``generate_latest`` writes for :meth:`metrics`)."""
        out: list[str] = []
        append = out.append
        escaped: dict[str, str] = {}
        for spec in _SPECS:
            exposed = spec.exposed_name
            append(spec.header)
            order = spec.label_order
            names = spec.labels
            if spec.type == "histogram":
                for labels, buckets, total in self._histograms[spec.name]:
                    pairs = [(n, _esc(v, escaped)) for n, v in zip(names, labels, strict=True)]
                    for bound, count in buckets:
                        text = _label_text(sorted([*pairs, ("le", bound)]))
                        append(f"{exposed}_bucket{text} {_go(count)}\n")
                    text = _label_text(sorted(pairs))
                    append(f"{exposed}_count{text} {_go(buckets[-1][1])}\n")
                    append(f"{exposed}_sum{text} {_go(total)}\n")
                continue
            samples = self._values[spec.name]
            if order is None:
                for _, value in samples:
                    append(f"{exposed} {_go(value)}\n")
            elif len(order) == 1:
                first = f'{exposed}{{{names[0]}="'
                for labels, value in samples:
                    label = escaped.get(labels[0]) or _esc(labels[0], escaped)
                    append(f'{first}{label}"}} {_go(value)}\n')
            elif len(order) == 2:
                i, j = order
                first, second = f'{exposed}{{{names[i]}="', f'",{names[j]}="'
                for labels, value in samples:
                    a = escaped.get(labels[i]) or _esc(labels[i], escaped)
                    b = escaped.get(labels[j]) or _esc(labels[j], escaped)
                    append(f'{first}{a}{second}{b}"}} {_go(value)}\n')
            else:
                for labels, value in samples:
                    inner = ",".join(f'{names[k]}="{_esc(labels[k], escaped)}"' for k in order)
                    append(f"{exposed}{{{inner}}} {_go(value)}\n")
        return "".join(out).encode("utf-8")


def _num_le(bound: str) -> float | None:
    if bound == "+Inf":
        return math.inf
    try:
        return _num(float(bound))
    except ValueError:
        return None


def _esc(value: str, cache: dict[str, str]) -> str:
    """A label value escaped for the text format (backslash, newline, double quote)."""
    found = cache.get(value)
    if found is None:
        found = value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')
        cache[value] = found
    return found


def _label_text(pairs: list[tuple[str, str]]) -> str:
    return "{" + ",".join(f'{name}="{value}"' for name, value in pairs) + "}"


def _go(value: float) -> str:
    """A finite float as Go writes it (what prometheus_client writes): Python's
    ``repr`` below 1e6, Go's exponent form above."""
    if value < 1e6:
        return repr(value)
    text: str = floatToGoString(value)  # type: ignore[no-untyped-call]
    return text


@dataclass(frozen=True, slots=True)
class _Spec:
    name: str
    type: str  # "gauge", "counter", "histogram"
    help: str
    labels: tuple[str, ...]

    def make(self) -> Metric:
        labels = list(self.labels)
        if self.type == "gauge":
            return GaugeMetricFamily(self.name, self.help, labels=labels)
        if self.type == "counter":
            return CounterMetricFamily(self.name, self.help, labels=labels)
        return HistogramMetricFamily(self.name, self.help, labels=labels)

    @property
    def exposed_name(self) -> str:
        """The name as it appears in docs and queries (counters end in ``_total``)."""
        return self.name + "_total" if self.type == "counter" else self.name

    @property
    def header(self) -> str:
        """The HELP and TYPE lines."""
        name = self.exposed_name
        doc = self.help.replace("\\", r"\\").replace("\n", r"\n")
        return f"# HELP {name} {doc}\n# TYPE {name} {self.type}\n"

    @property
    def label_order(self) -> tuple[int, ...] | None:
        """Indexes of the labels in sorted name order (None without labels)."""
        if not self.labels:
            return None
        return tuple(sorted(range(len(self.labels)), key=lambda i: self.labels[i]))


def _g(name: str, help_: str, *labels: str) -> _Spec:
    return _Spec(name, "gauge", help_, labels)


def _c(name: str, help_: str, *labels: str) -> _Spec:
    return _Spec(name, "counter", help_, labels)


def _h(name: str, help_: str, *labels: str) -> _Spec:
    return _Spec(name, "histogram", help_, labels)


_SPECS: Final[tuple[_Spec, ...]] = (
    _g("resilience_build_info", "Version of virtuoso-resilience (always 1)", "version", "python"),
    _c(
        "resilience_exporter_errors",
        "Components whose snapshot could not be exported, by kind",
        "kind",
    ),
    # circuit breakers
    _g("resilience_circuitbreaker_state", "Circuit breaker state (one-hot)", "name", "state"),
    _c(
        "resilience_circuitbreaker_calls",
        "Finished calls through the breaker by outcome",
        "name",
        "outcome",
    ),
    _c(
        "resilience_circuitbreaker_not_permitted_calls",
        "Calls the breaker rejected without running them",
        "name",
    ),
    _c(
        "resilience_circuitbreaker_transitions",
        "State transitions since the exporter first saw the breaker",
        "name",
        "from_state",
        "to_state",
    ),
    _c("resilience_circuitbreaker_trips", "Times the breaker opened", "name"),
    _c("resilience_circuitbreaker_slow_calls", "Calls slower than slow_call_duration", "name"),
    _c(
        "resilience_circuitbreaker_errors",
        "Classified errors seen by the breaker, counted or not, by classifier kind",
        "name",
        "kind",
    ),
    _g(
        "resilience_circuitbreaker_failure_ratio",
        "Failure ratio over the sliding window (0..1; 0 without a window)",
        "name",
    ),
    _g(
        "resilience_circuitbreaker_slow_call_ratio",
        "Slow-call ratio over the sliding window (0..1)",
        "name",
    ),
    _g(
        "resilience_circuitbreaker_consecutive_failures",
        "Current run of consecutive counted failures",
        "name",
    ),
    _g(
        "resilience_circuitbreaker_retry_after_seconds",
        "Seconds until an open breaker admits a trial call (absent unless open)",
        "name",
    ),
    # retry policies
    _c(
        "resilience_retry_calls",
        "Finished calls through the retry policy by outcome",
        "name",
        "outcome",
    ),
    _c("resilience_retry_attempts", "Attempts made (first tries plus retries)", "name"),
    _c(
        "resilience_retry_gave_up",
        "Calls the policy stopped retrying, by reason",
        "name",
        "reason",
    ),
    _c("resilience_retry_backoff_seconds", "Seconds spent backing off between attempts", "name"),
    # rate limiters
    _g("resilience_ratelimiter_available_permits", "Tokens in the bucket now", "name"),
    _g("resilience_ratelimiter_waiting_calls", "Calls queued for a token", "name"),
    _g("resilience_ratelimiter_rate", "Configured refill rate (tokens per second)", "name"),
    _c("resilience_ratelimiter_granted_calls", "Calls that got their tokens", "name"),
    _c("resilience_ratelimiter_rejected_calls", "Calls refused (max_wait exceeded)", "name"),
    _c("resilience_ratelimiter_wait_seconds", "Seconds calls spent waiting for tokens", "name"),
    # bulkheads
    _g(
        "resilience_bulkhead_available_concurrent_calls",
        "Free slots of the bulkhead",
        "name",
    ),
    _g(
        "resilience_bulkhead_max_allowed_concurrent_calls",
        "Configured maximum of concurrent calls",
        "name",
    ),
    _g("resilience_bulkhead_active_calls", "Calls holding a slot", "name"),
    _g("resilience_bulkhead_waiting_calls", "Calls waiting for a slot", "name"),
    _c("resilience_bulkhead_accepted_calls", "Calls that got a slot", "name"),
    _c(
        "resilience_bulkhead_rejected_calls",
        "Calls refused by the bulkhead, by reason",
        "name",
        "reason",
    ),
    # timeouts
    _c("resilience_timeout_calls", "Calls run under the timeout", "name"),
    _c("resilience_timeout_timeouts", "Calls cut off by the timeout", "name"),
    # connection pools
    _g("resilience_pool_connections", "Connections by state (open, in_use, idle)", "name", "state"),
    _g("resilience_pool_max_connections", "Configured connection limit (0: unlimited)", "name"),
    _g("resilience_pool_waiting_requests", "Requests waiting for a connection", "name"),
    _g("resilience_pool_utilization_ratio", "Connections in use / limit (0..1)", "name"),
    _c("resilience_pool_connections_created", "Connections opened", "name"),
    _c("resilience_pool_connections_reused", "Requests served on a reused connection", "name"),
    _c("resilience_pool_requests", "Finished requests by result", "name", "result"),
    _c("resilience_pool_responses", "Responses by status class", "name", "code_class"),
    _c("resilience_pool_exhaustion_events", "Times a request found the pool full", "name"),
    _h("resilience_pool_wait_duration_seconds", "Time waiting for a connection", "name"),
    _h("resilience_pool_response_duration_seconds", "Time until the response headers", "name"),
    # caches
    _c("resilience_cache_reads", "Cache reads by the tier that answered", "name", "source"),
    _c("resilience_cache_backend_errors", "Backend errors by classifier kind", "name", "kind"),
    _c("resilience_cache_fallback_writes", "Writes kept in the in-memory fallback", "name"),
    _g("resilience_cache_degraded", "1 while the cache serves from its fallback", "name"),
    # exchanges
    _g(
        "resilience_exchange_rate_limit_headroom_ratio",
        "Account rate-limit tokens left / capacity (0..1)",
        "name",
    ),
    _g(
        "resilience_exchange_market_data_age_seconds",
        "Age of the last good market data per symbol",
        "name",
        "symbol",
    ),
    _g(
        "resilience_exchange_orders_pending_reconciliation",
        "Orders whose outcome is not yet known (ambiguous writes)",
        "name",
    ),
    _g("resilience_exchange_maintenance", "1 while the exchange is in maintenance", "name"),
    # health
    _g("resilience_health_status", "Overall health status (one-hot)", "status"),
    _g("resilience_health_check_status", "Health check status (one-hot)", "check", "status"),
    _g(
        "resilience_health_check_duration_seconds",
        "Duration of the check's last run",
        "check",
    ),
    _c("resilience_health_check_runs", "Check runs by result", "check", "result"),
)

METRIC_NAMES: Final[frozenset[str]] = frozenset(s.exposed_name for s in _SPECS)
"""Every metric name the exporter can emit, as written in docs/metrics.md."""

KindAdapter = Callable[[MetricFamilies, str, Any], None]
"""``adapter(families, name, component)``: add one component's samples."""


# ------------------------------------------------------------------- adapters


def _breaker(out: MetricFamilies, name: str, breaker: Any) -> None:
    snap = breaker.snapshot()
    state = snap.state.value if isinstance(snap.state, CircuitState) else str(snap.state)
    out.one_hot("resilience_circuitbreaker_state", [name], state, _STATES)
    calls = "resilience_circuitbreaker_calls"
    out.counter(calls, [name, "success"], snap.successes)
    out.counter(calls, [name, "failure"], snap.failures)
    out.counter(calls, [name, "ignored"], snap.ignored)
    out.counter(calls, [name, "cancelled"], snap.cancelled)
    out.counter("resilience_circuitbreaker_not_permitted_calls", [name], snap.rejected)
    out.counter("resilience_circuitbreaker_trips", [name], snap.trips)
    out.counter("resilience_circuitbreaker_slow_calls", [name], snap.slow_calls)
    for kind, count in sorted(snap.outcomes_by_kind.items()):
        out.counter("resilience_circuitbreaker_errors", [name, str(kind)], count)
    rate, slow = _num(snap.failure_rate), _num(snap.slow_call_rate)
    out.gauge(
        "resilience_circuitbreaker_failure_ratio", [name], None if rate is None else rate / 100
    )
    out.gauge(
        "resilience_circuitbreaker_slow_call_ratio", [name], None if slow is None else slow / 100
    )
    out.gauge("resilience_circuitbreaker_consecutive_failures", [name], snap.consecutive_failures)
    out.gauge("resilience_circuitbreaker_retry_after_seconds", [name], snap.retry_after)


def _retry(out: MetricFamilies, name: str, policy: Any) -> None:
    snap = _plain(policy.snapshot())
    calls = "resilience_retry_calls"
    for outcome in (
        "success_without_retry",
        "success_with_retry",
        "failed_without_retry",
        "failed_with_retry",
    ):
        out.counter(calls, [name, outcome], snap.get(outcome))
    total, retries = _num(snap.get("calls")), _num(snap.get("retries"))
    if total is not None and retries is not None:
        out.counter("resilience_retry_attempts", [name], total + retries)
    gave_up = "resilience_retry_gave_up"
    for reason, key in (
        ("not_retryable", "not_retryable"),
        ("exhausted", "exhausted"),
        ("deadline", "gave_up_on_deadline"),
        ("retry_after", "gave_up_on_retry_after"),
        ("budget", "budget_exhausted"),
    ):
        out.counter(gave_up, [name, reason], snap.get(key))
    out.counter("resilience_retry_backoff_seconds", [name], snap.get("total_backoff_seconds"))


def _rate_limiter(out: MetricFamilies, name: str, limiter: Any) -> None:
    snap = _plain(limiter.snapshot())
    out.gauge("resilience_ratelimiter_available_permits", [name], snap.get("tokens"))
    out.gauge("resilience_ratelimiter_waiting_calls", [name], snap.get("queue_length"))
    out.gauge("resilience_ratelimiter_rate", [name], snap.get("rate"))
    out.counter("resilience_ratelimiter_granted_calls", [name], snap.get("granted"))
    out.counter("resilience_ratelimiter_rejected_calls", [name], snap.get("rejected"))
    out.counter("resilience_ratelimiter_wait_seconds", [name], snap.get("total_wait_seconds"))


def _bulkhead(out: MetricFamilies, name: str, bulkhead: Any) -> None:
    snap = _plain(bulkhead.snapshot())
    out.gauge("resilience_bulkhead_available_concurrent_calls", [name], snap.get("available"))
    out.gauge(
        "resilience_bulkhead_max_allowed_concurrent_calls", [name], snap.get("max_concurrent")
    )
    out.gauge("resilience_bulkhead_active_calls", [name], snap.get("active"))
    out.gauge("resilience_bulkhead_waiting_calls", [name], snap.get("waiting"))
    out.counter("resilience_bulkhead_accepted_calls", [name], snap.get("accepted"))
    for reason, count in sorted(_sub(snap, "rejected_by_reason").items()):
        out.counter("resilience_bulkhead_rejected_calls", [name, str(reason)], count)


def _timeout(out: MetricFamilies, name: str, policy: Any) -> None:
    snap = _plain(policy.snapshot())
    out.counter("resilience_timeout_calls", [name], snap.get("calls"))
    out.counter("resilience_timeout_timeouts", [name], snap.get("timeouts"))


def _pool(out: MetricFamilies, name: str, pool: Any) -> None:
    snap = _plain(pool.snapshot())
    connections = _sub(snap, "metrics", "connections")
    for state in ("open", "in_use", "idle"):
        out.gauge("resilience_pool_connections", [name, state], connections.get(state))
    out.gauge(
        "resilience_pool_max_connections", [name], _sub(snap, "limits").get("max_connections")
    )
    out.gauge("resilience_pool_waiting_requests", [name], connections.get("waiting"))
    out.gauge("resilience_pool_utilization_ratio", [name], _sub(snap, "health").get("utilisation"))
    out.counter("resilience_pool_connections_created", [name], connections.get("created"))
    out.counter("resilience_pool_connections_reused", [name], connections.get("reused"))
    requests = _sub(snap, "metrics", "requests")
    out.counter("resilience_pool_requests", [name, "succeeded"], requests.get("succeeded"))
    out.counter("resilience_pool_requests", [name, "failed"], requests.get("failed"))
    for code_class, count in sorted(_sub(requests, "responses").items()):
        out.counter("resilience_pool_responses", [name, str(code_class)], count)
    out.counter(
        "resilience_pool_exhaustion_events",
        [name],
        _sub(snap, "metrics", "exhaustion").get("events"),
    )
    metrics = _sub(snap, "metrics")
    out.histogram("resilience_pool_wait_duration_seconds", [name], _sub(metrics, "wait_seconds"))
    out.histogram(
        "resilience_pool_response_duration_seconds", [name], _sub(metrics, "response_seconds")
    )


def _cache(out: MetricFamilies, name: str, cache: Any) -> None:
    """Fields read (docs/metrics.md): ``reads_by_source``, ``backend_errors_by_kind``,
    ``fallback_writes``, ``status`` ("degraded"/"unhealthy" count as degraded)."""
    snap = _plain(cache.snapshot())
    for source, count in sorted(_sub(snap, "reads_by_source").items()):
        out.counter("resilience_cache_reads", [name, str(source)], count)
    for kind, count in sorted(_sub(snap, "backend_errors_by_kind").items()):
        out.counter("resilience_cache_backend_errors", [name, str(kind)], count)
    out.counter("resilience_cache_fallback_writes", [name], snap.get("fallback_writes"))
    status = snap.get("status")
    if isinstance(status, str):
        out.gauge("resilience_cache_degraded", [name], 0.0 if status == "healthy" else 1.0)


def _exchange(out: MetricFamilies, name: str, exchange: Any) -> None:
    """Fields read (docs/metrics.md): ``rate_limit.account.tokens`` and
    ``.capacity`` (or ``rate_limit.tokens``/``.capacity``), ``market_data_age``
    (symbol -> seconds), ``pending_orders``, ``maintenance.active``."""
    snap = _plain(exchange.snapshot())
    limit = _sub(snap, "rate_limit")
    account = _sub(limit, "account") or limit
    tokens, capacity = _num(account.get("tokens")), _num(account.get("capacity"))
    if capacity is None:
        capacity = _num(_sub(account, "config").get("capacity"))
    if tokens is not None and capacity is not None and capacity > 0:
        out.gauge(
            "resilience_exchange_rate_limit_headroom_ratio",
            [name],
            min(1.0, max(0.0, tokens / capacity)),
        )
    for symbol, age in sorted(_sub(snap, "market_data_age").items()):
        out.gauge("resilience_exchange_market_data_age_seconds", [name, str(symbol)], age)
    out.gauge(
        "resilience_exchange_orders_pending_reconciliation", [name], snap.get("pending_orders")
    )
    active = _sub(snap, "maintenance").get("active")
    if isinstance(active, bool):
        out.gauge("resilience_exchange_maintenance", [name], 1.0 if active else 0.0)


KIND_ADAPTERS: Final[Mapping[str, KindAdapter]] = {
    CIRCUIT_BREAKERS: _breaker,
    RETRY_POLICIES: _retry,
    RATE_LIMITERS: _rate_limiter,
    BULKHEADS: _bulkhead,
    TIMEOUTS: _timeout,
    CONNECTION_POOLS: _pool,
    CACHES: _cache,
    EXCHANGES: _exchange,
}
"""The built-in adapters by registry kind. Kinds without one (``pipelines``:
their parts are exported under their own kinds) are not exported."""


# ---------------------------------------------------------------- transitions


@dataclass(slots=True)
class _TransitionCounts:
    counts: dict[tuple[str, str], int] = field(default_factory=dict)

    def __call__(self, event: Any) -> None:
        key = (event.previous.value, event.current.value)
        self.counts[key] = self.counts.get(key, 0) + 1


# ------------------------------------------------------------------- exporter


_TEXT_FORMAT: Final = choose_encoder("")[1]  # the classic text format (0.0.4)


class PrometheusExporter(Collector):
    """Exports a registry's components (and its health service) to Prometheus.

    ``PrometheusExporter(registry)`` registers itself on its own
    :attr:`collector_registry`; :meth:`exposition` renders the text format.
    ``health`` is the health service whose checks are exported: by default the
    registry's (``"registry"``: ``registry.health``, created on first use as the
    monitoring API does), ``None`` for none, or any :class:`HealthService`.
    ``adapters`` replaces or extends :data:`KIND_ADAPTERS` (kind -> function).

    Breaker transitions are counted by a state-change listener the exporter
    adds to each breaker the first time it sees it (at creation and at each
    scrape); transitions before that are not in
    ``resilience_circuitbreaker_transitions_total`` (``..._trips_total`` comes
    from the breaker's own counter and is complete). :meth:`close` removes
    the listeners.
    """

    def __init__(
        self,
        registry: ResilienceRegistry,
        *,
        health: HealthService | Literal["registry"] | None = "registry",
        adapters: Mapping[str, KindAdapter] | None = None,
        _weak: bool = False,
    ) -> None:
        if not isinstance(registry, ResilienceRegistry):
            raise TypeError(
                f"PrometheusExporter(registry=...) takes a ResilienceRegistry, "
                f"not {type(registry).__name__}"
            )
        if health != "registry" and health is not None and not isinstance(health, HealthService):
            raise TypeError(
                f"PrometheusExporter(health=...) takes a HealthService or None, "
                f"not {type(health).__name__}"
            )
        # Strong by default; the exporters prometheus_exposition() keeps per
        # registry hold theirs weakly, so the cache never keeps a registry alive.
        self._registry_ref: Callable[[], ResilienceRegistry | None] = (
            weakref.ref(registry) if _weak else lambda: registry
        )
        self._health = health
        self._adapters: dict[str, KindAdapter] = {**KIND_ADAPTERS, **(adapters or {})}
        self._transitions: weakref.WeakKeyDictionary[CircuitBreaker, _TransitionCounts] = (
            weakref.WeakKeyDictionary()
        )
        self._errors: dict[str, int] = {}
        self._scrapes = 0
        self._closed = False
        self._watch_breakers()
        self.collector_registry = CollectorRegistry(auto_describe=False)
        self.collector_registry.register(self)

    # ------------------------------------------------------------- breakers

    @property
    def registry(self) -> ResilienceRegistry | None:
        """The registry exported (None once a weakly held one is gone)."""
        return self._registry_ref()

    def _watch_breakers(self) -> None:
        registry = self._registry_ref()
        if registry is None:
            return
        for breaker in registry.components(CIRCUIT_BREAKERS).values():
            if isinstance(breaker, CircuitBreaker) and breaker not in self._transitions:
                counts = _TransitionCounts()
                self._transitions[breaker] = counts
                breaker.add_listener(on_state_change=counts)

    def close(self) -> None:
        """Stop counting transitions (removes the listeners); scraping still works."""
        self._closed = True
        for breaker, counts in list(self._transitions.items()):
            breaker.remove_listener(counts)
        self._transitions.clear()

    # ------------------------------------------------------------- collecting

    def describe(self) -> list[Metric]:
        """Nothing up front: the registry is not scraped at registration."""
        return []

    def collect(self) -> Iterator[Metric]:
        """One scrape as ``prometheus_client`` families (the collector protocol)."""
        return iter(self.gather().metrics())

    def gather(self) -> MetricFamilies:
        """One scrape: every family, with the components' current values."""
        self._scrapes += 1
        if not self._closed:
            self._watch_breakers()
        out = MetricFamilies()
        out.gauge("resilience_build_info", [__version__, platform.python_version()], 1.0)
        registry = self._registry_ref()
        if registry is None:
            return out
        for kind in registry.kinds:
            adapter = self._adapters.get(kind)
            if adapter is None:
                continue
            for name, component in list(registry.components(kind).items()):
                try:
                    adapter(out, name, component)
                except Exception as exc:  # one bad component never fails the scrape
                    self._errors[kind] = self._errors.get(kind, 0) + 1
                    log.warning(
                        "prometheus: %s component %r not exported (%s)",
                        kind,
                        name,
                        type(exc).__name__,
                    )
        # Transitions of the breakers registered now (a replaced or
        # unregistered breaker's counts are not exported under its old name).
        transitions = self._transitions
        for name, breaker in registry.components(CIRCUIT_BREAKERS).items():
            counts = transitions.get(breaker) if isinstance(breaker, CircuitBreaker) else None
            if counts is not None:
                for (old, new), count in sorted(counts.counts.items()):
                    out.counter("resilience_circuitbreaker_transitions", [name, old, new], count)
        for kind, count in sorted(self._errors.items()):
            out.counter("resilience_exporter_errors", [kind], count)
        service = self._health_service(registry)
        if service is not None:
            self._collect_health(out, service)
        return out

    def _health_service(self, registry: ResilienceRegistry) -> HealthService | None:
        if self._health == "registry":
            return registry.health
        return self._health if isinstance(self._health, HealthService) else None

    @staticmethod
    def _collect_health(out: MetricFamilies, service: HealthService) -> None:
        out.one_hot(
            "resilience_health_status", [], service.get_overall_status().value, _HEALTH_STATES
        )
        for name, check in service.report().checks.items():
            out.one_hot(
                "resilience_health_check_status", [name], check.status.value, _HEALTH_STATES
            )
            out.gauge("resilience_health_check_duration_seconds", [name], check.last_duration)
            out.counter("resilience_health_check_runs", [name, "success"], check.metrics.successes)
            out.counter("resilience_health_check_runs", [name, "failure"], check.metrics.failures)

    # ------------------------------------------------------------- rendering

    def exposition(self, accept: str | None = None) -> tuple[bytes, str]:
        """``(body, content type)``: the Prometheus text format, or OpenMetrics
        when ``accept`` (an HTTP ``Accept`` header) asks for it."""
        encoder, content_type = choose_encoder(accept or "")
        if content_type == _TEXT_FORMAT:
            return self.gather().render(), content_type
        return encoder(self.collector_registry), content_type

    def __repr__(self) -> str:
        registry = self._registry_ref()
        return (
            f"<PrometheusExporter kinds={list(registry.kinds) if registry else 'gone'} "
            f"breakers_watched={len(self._transitions)} scrapes={self._scrapes} "
            f"errors={sum(self._errors.values())}{' closed' if self._closed else ''}>"
        )


_EXPORTERS: weakref.WeakKeyDictionary[ResilienceRegistry, PrometheusExporter] = (
    weakref.WeakKeyDictionary()
)


def _exporter_for(source: ResilienceRegistry | PrometheusExporter) -> PrometheusExporter:
    if isinstance(source, PrometheusExporter):
        return source
    exporter = _EXPORTERS.get(source)
    if exporter is None:
        exporter = _EXPORTERS[source] = PrometheusExporter(source, _weak=True)
    return exporter


def prometheus_exposition(
    source: ResilienceRegistry | PrometheusExporter, accept: str | None = None
) -> tuple[bytes, str]:
    """``(body, content type)`` of a scrape of ``source``.

    A registry gets one :class:`PrometheusExporter`, made on first use and
    kept as long as the registry lives (so transition counts accumulate); it
    holds the registry weakly, so it never keeps a dropped registry alive.
    """
    return _exporter_for(source).exposition(accept)


def make_metrics_handler(
    source: ResilienceRegistry | PrometheusExporter,
) -> Callable[[web.Request], Awaitable[web.Response]]:
    """An aiohttp handler serving ``GET /metrics`` for ``source``:
    ``app.router.add_get("/metrics", make_metrics_handler(registry))``."""
    exporter = _exporter_for(source)
    keep = source  # the handler keeps the registry alive (the cached exporter does not)

    async def metrics_handler(request: web.Request) -> web.Response:
        assert keep is not None
        body, content_type = exporter.exposition(request.headers.get("Accept"))
        response = web.Response(body=body)
        response.headers["Content-Type"] = content_type
        return response

    return metrics_handler
