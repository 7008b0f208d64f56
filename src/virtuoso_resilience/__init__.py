"""Virtuoso Resilience: the resilience layer for asyncio trading systems built on CCXT.

The public API is what ``__all__`` lists; everything in underscore modules is
private.
"""

from ._version import __version__
from .classify import DEFAULT_CLASSIFIER, Classifier, Outcome, OutcomeKind, classify
from .clock import MONOTONIC, Clock, FakeClock, MonotonicClock
from .errors import (
    BulkheadFullError,
    CircuitOpenError,
    ConfigurationError,
    PoolExhaustedError,
    RateLimitTimeoutError,
    ResilienceError,
    ResilienceTimeoutError,
)
from .policies.circuit_breaker import (
    CircuitBreaker,
    CircuitBreakerConfig,
    CircuitBreakerSnapshot,
    CircuitState,
    SlidingWindowType,
)
from .registry import (
    ResilienceRegistry,
    circuit_breaker,
    default_registry,
    get_circuit_breaker,
    set_default_registry,
)

__all__ = [
    "DEFAULT_CLASSIFIER",
    "MONOTONIC",
    "BulkheadFullError",
    "CircuitBreaker",
    "CircuitBreakerConfig",
    "CircuitBreakerSnapshot",
    "CircuitOpenError",
    "CircuitState",
    "Classifier",
    "Clock",
    "ConfigurationError",
    "FakeClock",
    "MonotonicClock",
    "Outcome",
    "OutcomeKind",
    "PoolExhaustedError",
    "RateLimitTimeoutError",
    "ResilienceError",
    "ResilienceRegistry",
    "ResilienceTimeoutError",
    "SlidingWindowType",
    "__version__",
    "circuit_breaker",
    "classify",
    "default_registry",
    "get_circuit_breaker",
    "set_default_registry",
]
