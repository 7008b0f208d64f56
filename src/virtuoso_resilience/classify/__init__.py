"""What an outcome means: the one place that decides.

Circuit breakers, retry policies, fallbacks and the exchange and cache
adapters all ask :func:`classify` (or a :class:`Classifier`) what an exception
means; none of them re-derives it. The answer is an :class:`Outcome`: a kind
(success, transient, rate limited, maintenance, ambiguous, permanent,
business, rejected), the seconds to wait before trying again when the server
said so, a short secret-free reason, the HTTP status and exchange error code
when known, and a :class:`Signal` telling an adapter what to do (re-sync the
clock, stop calling a banned host, look up a duplicate order, drain the
account's budget). Adapters read ``signal``, never exception types.

The package holds the outcome types (``_outcome``), the classifier
(``_core``), one table per library (``_ccxt``, ``_aiohttp``, ``_redis``,
``_memcached``) and one per exchange's codes (``_bybit``, ``_binance``,
``_okx``): a new dependency adds a table, not a branch. Third-party tables
are loaded lazily, the first time an exception is classified after that
library has been imported, so importing this package imports none of them.

ccxt exceptions carry no headers: :func:`attach_response` records the HTTP
status and response headers with an exception (the exchange adapter passes
``exchange.last_response_headers``), so every policy honours a
``Retry-After`` the server sent.

``write=True`` marks an operation whose side effect may have happened (an
order placement). A failure after which we cannot know whether the server
acted (a timeout, a connection dropped mid-request, a 5xx answer) is then
:attr:`OutcomeKind.AMBIGUOUS` rather than :attr:`OutcomeKind.TRANSIENT`: the
caller must reconcile (look the order up) before trying again.
"""

from ._config import ClassifierConfig
from ._core import (
    BUILTIN_OVERRIDES,
    BYBIT_OVERRIDES,
    DEFAULT_CLASSIFIER,
    Classifier,
    CodeRules,
    classify,
)
from ._outcome import SUCCESS, Outcome, OutcomeKind, Signal
from ._response import attach_response, parse_retry_after
from ._rules import CodeRule

__all__ = [
    "BUILTIN_OVERRIDES",
    "BYBIT_OVERRIDES",
    "DEFAULT_CLASSIFIER",
    "SUCCESS",
    "Classifier",
    "ClassifierConfig",
    "CodeRule",
    "CodeRules",
    "Outcome",
    "OutcomeKind",
    "Signal",
    "attach_response",
    "classify",
    "parse_retry_after",
]
