"""Health checks with a dependency graph, background monitoring and listeners.

Register checks on a :class:`HealthService` (the default registry's is
``virtuoso_resilience.get_health_service()``), declare what depends on what, start monitoring,
and read cached health or listen for changes of the overall status.
"""

from ._checks import (
    BreakerLike,
    CircuitBreakerHealthCheck,
    ConnectionPoolHealthCheck,
    HealthCheck,
    HealthCheckConfig,
    InvalidCheckResult,
    PoolHealthLike,
    PoolLike,
    SimpleHealthCheck,
)
from ._graph import DependencyCycleError
from ._listeners import StatusListener
from ._metrics import CheckMetricsSnapshot, ResponseTimeStats
from ._report import CheckReport, HealthReport
from ._service import HealthService
from ._status import CheckResult, HealthChange, ServiceStatus

__all__ = [
    "BreakerLike",
    "CheckMetricsSnapshot",
    "CheckReport",
    "CheckResult",
    "CircuitBreakerHealthCheck",
    "ConnectionPoolHealthCheck",
    "DependencyCycleError",
    "HealthChange",
    "HealthCheck",
    "HealthCheckConfig",
    "HealthReport",
    "HealthService",
    "InvalidCheckResult",
    "PoolHealthLike",
    "PoolLike",
    "ResponseTimeStats",
    "ServiceStatus",
    "SimpleHealthCheck",
    "StatusListener",
]
