"""The resilience policies, and the one public surface for them.

Import policies, their configurations, events and snapshots from here (or
from the top-level package); the modules inside are implementation detail.
"""

from ._core import Policy
from .bulkhead import Bulkhead, BulkheadConfig, BulkheadRejectionEvent
from .circuit_breaker import (
    CallEvent,
    CircuitBreaker,
    CircuitBreakerConfig,
    CircuitBreakerSnapshot,
    CircuitState,
    RejectionEvent,
    SlidingWindowType,
    StateChangeEvent,
)
from .fallback import (
    DEFAULT_FALLBACK_ON,
    DEFAULT_WRITE_FALLBACK_ON,
    PRIMARY,
    Fallback,
    FallbackConfig,
    FallbackEvent,
    FallbackResult,
)
from .pipeline import ResiliencePipeline
from .rate_limit import RateLimiter, RateLimiterConfig, RateLimitEvent
from .retry import (
    BackoffStrategy,
    JitterMode,
    RetryBudget,
    RetryCall,
    RetryConfig,
    RetryEvent,
    RetryMetrics,
    RetryPolicy,
    retry,
)
from .timeout import TimeoutConfig, TimeoutEvent, TimeoutPolicy, TimeoutScope

__all__ = [
    "DEFAULT_FALLBACK_ON",
    "DEFAULT_WRITE_FALLBACK_ON",
    "PRIMARY",
    "BackoffStrategy",
    "Bulkhead",
    "BulkheadConfig",
    "BulkheadRejectionEvent",
    "CallEvent",
    "CircuitBreaker",
    "CircuitBreakerConfig",
    "CircuitBreakerSnapshot",
    "CircuitState",
    "Fallback",
    "FallbackConfig",
    "FallbackEvent",
    "FallbackResult",
    "JitterMode",
    "Policy",
    "RateLimitEvent",
    "RateLimiter",
    "RateLimiterConfig",
    "RejectionEvent",
    "ResiliencePipeline",
    "RetryBudget",
    "RetryCall",
    "RetryConfig",
    "RetryEvent",
    "RetryMetrics",
    "RetryPolicy",
    "SlidingWindowType",
    "StateChangeEvent",
    "TimeoutConfig",
    "TimeoutEvent",
    "TimeoutPolicy",
    "TimeoutScope",
    "retry",
]
