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
# Adapters import the names above from this package, so they come last.
from .cache import (
    CacheConfig,
    ResilientCache,
    create_memcached_resilient_config,
    create_redis_resilient_config,
    create_resilient_cache,
)

__all__ = [
    "DEFAULT_CLASSIFIER",
    "MONOTONIC",
    "BackoffStrategy",
    "Bulkhead",
    "BulkheadConfig",
    "BulkheadFullError",
    "CacheConfig",
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
    "FakeClock",
    "Fallback",
    "FallbackConfig",
    "FallbackResult",
    "HealthChange",
    "HealthCheck",
    "HealthCheckConfig",
    "HealthService",
    "JitterMode",
    "MonotonicClock",
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
    "ResilientCache",
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
    "create_default_resilience_config",
    "create_development_resilience_config",
    "create_memcached_resilient_config",
    "create_production_resilience_config",
    "create_redis_resilient_config",
    "create_resilient_cache",
    "default_registry",
    "get_circuit_breaker",
    "get_connection_pool",
    "get_health_service",
    "retry",
    "set_default_registry",
]
