"""Virtuoso Resilience: the resilience layer for asyncio trading systems built on CCXT.

The public API is what ``__all__`` lists; everything in underscore modules is
private.
"""

from ._version import __version__
from .classify import DEFAULT_CLASSIFIER, Classifier, Outcome, OutcomeKind
from .clock import MONOTONIC, Clock, FakeClock, MonotonicClock
from .config import (
    ResilienceConfiguration,
    create_default_resilience_config,
    create_development_resilience_config,
    create_production_resilience_config,
)
from .errors import (
    BulkheadFullError,
    CircuitOpenError,
    ConfigurationError,
    PoolExhaustedError,
    RateLimitTimeoutError,
    ResilienceError,
    ResilienceTimeoutError,
)
from .health import (
    CheckResult,
    CircuitBreakerHealthCheck,
    ConnectionPoolHealthCheck,
    DependencyCycleError,
    HealthChange,
    HealthCheck,
    HealthCheckConfig,
    HealthService,
    ServiceStatus,
    SimpleHealthCheck,
    get_health_service,
)
from .policies.bulkhead import Bulkhead, BulkheadConfig
from .policies.circuit_breaker import (
    CircuitBreaker,
    CircuitBreakerConfig,
    CircuitBreakerSnapshot,
    CircuitState,
    SlidingWindowType,
)
from .policies.fallback import Fallback, FallbackConfig, FallbackResult
from .policies.pipeline import ResiliencePipeline
from .policies.rate_limit import RateLimiter, RateLimiterConfig
from .policies.retry import (
    BackoffStrategy,
    JitterMode,
    RetryBudget,
    RetryConfig,
    RetryEvent,
    RetryMetrics,
    RetryPolicy,
    retry,
)
from .policies.timeout import TimeoutConfig, TimeoutPolicy
from .pools import (
    ConnectionPool,
    ConnectionPoolManager,
    PoolConfig,
    PoolHealth,
    get_connection_pool,
)
from .registry import (
    ResilienceRegistry,
    circuit_breaker,
    default_registry,
    get_circuit_breaker,
    set_default_registry,
)

# isort: split
# The exchange adapter builds on the names above: imported last.
from .exchange import (
    ExchangeResilienceConfig,
    MaintenanceError,
    OrderStatusUnknownError,
    ResilientExchange,
    create_binance_resilient_config,
    create_bybit_resilient_config,
    create_okx_resilient_config,
    create_resilient_exchange,
)

__all__ = [
    "DEFAULT_CLASSIFIER",
    "MONOTONIC",
    "BackoffStrategy",
    "Bulkhead",
    "BulkheadConfig",
    "BulkheadFullError",
    "CheckResult",
    "CircuitBreaker",
    "CircuitBreakerConfig",
    "CircuitBreakerHealthCheck",
    "CircuitBreakerSnapshot",
    "CircuitOpenError",
    "CircuitState",
    "Classifier",
    "Clock",
    "ConfigurationError",
    "ConnectionPool",
    "ConnectionPoolHealthCheck",
    "ConnectionPoolManager",
    "DependencyCycleError",
    "ExchangeResilienceConfig",
    "FakeClock",
    "Fallback",
    "FallbackConfig",
    "FallbackResult",
    "HealthChange",
    "HealthCheck",
    "HealthCheckConfig",
    "HealthService",
    "JitterMode",
    "MaintenanceError",
    "MonotonicClock",
    "OrderStatusUnknownError",
    "Outcome",
    "OutcomeKind",
    "PoolConfig",
    "PoolExhaustedError",
    "PoolHealth",
    "RateLimitTimeoutError",
    "RateLimiter",
    "RateLimiterConfig",
    "ResilienceConfiguration",
    "ResilienceError",
    "ResiliencePipeline",
    "ResilienceRegistry",
    "ResilienceTimeoutError",
    "ResilientExchange",
    "RetryBudget",
    "RetryConfig",
    "RetryEvent",
    "RetryMetrics",
    "RetryPolicy",
    "ServiceStatus",
    "SimpleHealthCheck",
    "SlidingWindowType",
    "TimeoutConfig",
    "TimeoutPolicy",
    "__version__",
    "circuit_breaker",
    "create_binance_resilient_config",
    "create_bybit_resilient_config",
    "create_default_resilience_config",
    "create_development_resilience_config",
    "create_okx_resilient_config",
    "create_production_resilience_config",
    "create_resilient_exchange",
    "default_registry",
    "get_circuit_breaker",
    "get_connection_pool",
    "get_health_service",
    "retry",
    "set_default_registry",
]
