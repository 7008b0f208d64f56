"""Virtuoso Resilience: the resilience layer for asyncio trading systems built on CCXT."""

from ._version import __version__
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

__all__ = [
    "MONOTONIC",
    "BulkheadFullError",
    "CircuitOpenError",
    "Clock",
    "ConfigurationError",
    "FakeClock",
    "MonotonicClock",
    "PoolExhaustedError",
    "RateLimitTimeoutError",
    "ResilienceError",
    "ResilienceTimeoutError",
    "__version__",
]
