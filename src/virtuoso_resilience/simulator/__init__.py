"""A fault-injecting exchange simulator that speaks Bybit's v5 (or Binance's spot) REST API.

The unmodified ``ccxt.async_support.bybit`` client talks to it over loopback
HTTP; faults (latency, 5xx, maintenance, rate limits, resets, hangs,
malformed JSON, lost responses) are injected from Python, over the control
API (``/__sim__/...``) or from the ``virtuoso-resilience simulate`` command.
See ``docs/simulator.md``.
"""

from ._auth import key_fingerprint
from ._binance_config import BinanceLimits
from ._config import DEFAULT_API_KEY, DEFAULT_API_SECRET, SimulatorConfig
from ._faults import (
    Fault,
    FaultHandle,
    FaultKind,
    FaultSet,
    FaultSpecError,
    FaultStatus,
    parse_faults,
)
from ._market import MarketModel
from ._ratelimit import Violation
from ._server import Simulator
from ._stats import SimulatorStats

__all__ = [
    "DEFAULT_API_KEY",
    "DEFAULT_API_SECRET",
    "BinanceLimits",
    "Fault",
    "FaultHandle",
    "FaultKind",
    "FaultSet",
    "FaultSpecError",
    "FaultStatus",
    "MarketModel",
    "Simulator",
    "SimulatorConfig",
    "SimulatorStats",
    "Violation",
    "key_fingerprint",
    "parse_faults",
]
