"""What an outcome means: the one place that decides.

Circuit breakers, retry policies, fallbacks and the exchange and cache
adapters all ask :func:`classify` (or a :class:`Classifier`) what an exception
means; none of them re-derives it. The answer is an :class:`Outcome`: a kind
(success, transient, rate limited, maintenance, ambiguous, permanent,
business), the seconds to wait before trying again when the error says so,
and a short, secret-free reason.

The mapping covers ccxt's whole exception hierarchy, aiohttp, the builtin
network errors, redis-py, aiomcache and this library's own errors, plus
per-exchange error-code overrides (Bybit ``retCode`` values are built in).
Third-party tables are loaded lazily, the first time an exception is
classified after the third-party module has been imported, so importing this
module imports none of them. The result for an exception type is computed
once (one MRO walk) and cached.

``write=True`` marks an operation whose side effect may have happened (an
order placement). A failure after which we cannot know whether the server
acted (a timeout, a connection dropped mid-request, a 5xx answer) is then
:attr:`OutcomeKind.AMBIGUOUS` rather than :attr:`OutcomeKind.TRANSIENT`: the
caller must reconcile (look the order up) before trying again.
"""

from __future__ import annotations

import asyncio
import email.utils
import enum
import importlib
import math
import re
import socket
import ssl
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC
from types import MappingProxyType
from typing import Final

from .errors import (
    BulkheadFullError,
    CircuitOpenError,
    ConfigurationError,
    FieldError,
    PoolExhaustedError,
    RateLimitTimeoutError,
    ResilienceError,
    ResilienceTimeoutError,
)

__all__ = [
    "BYBIT_OVERRIDES",
    "DEFAULT_CLASSIFIER",
    "SUCCESS",
    "Classifier",
    "Outcome",
    "OutcomeKind",
    "classify",
    "parse_retry_after",
]


class OutcomeKind(enum.Enum):
    """What a call's outcome means to a resilience policy."""

    SUCCESS = "success"
    """The call succeeded."""
    TRANSIENT = "transient"
    """A temporary failure; trying again (after a backoff) may succeed."""
    RATE_LIMITED = "rate_limited"
    """The server refused the request because of a rate limit; wait, then retry."""
    MAINTENANCE = "maintenance"
    """The service said it is down for maintenance; retrying soon is pointless."""
    AMBIGUOUS = "ambiguous"
    """A write failed in a way that leaves unknown whether the server acted."""
    PERMANENT = "permanent"
    """A failure that retrying will not fix (unsupported, misconfigured, a bug)."""
    BUSINESS = "business"
    """The caller's or the account's problem (bad order, no funds, bad key)."""
    REJECTED = "rejected"
    """Refused locally by a resilience policy (open breaker, full bulkhead, no
    pooled connection): the call never reached the service. Retryable, but
    never a service failure, so a breaker does not count it."""


_RETRYABLE: Final = frozenset(
    {OutcomeKind.TRANSIENT, OutcomeKind.RATE_LIMITED, OutcomeKind.REJECTED}
)
_SERVICE_FAILURES: Final = frozenset(
    {
        OutcomeKind.TRANSIENT,
        OutcomeKind.MAINTENANCE,
        OutcomeKind.AMBIGUOUS,
        OutcomeKind.PERMANENT,
    }
)
_WAITABLE: Final = frozenset(
    {
        OutcomeKind.TRANSIENT,
        OutcomeKind.RATE_LIMITED,
        OutcomeKind.MAINTENANCE,
        OutcomeKind.REJECTED,
    }
)


@dataclass(frozen=True, slots=True, repr=False)
class Outcome:
    """The meaning of one call's outcome.

    ``retry_after`` is the number of seconds to wait before trying again when
    the failure says so (a ``Retry-After`` header, an open breaker's next
    trial); ``None`` when unknown. ``reason`` is short and never contains
    secrets (no messages, no URLs): an exception class name, ``"HTTP 503"``,
    or ``"bybit retCode 10016"``.
    """

    kind: OutcomeKind
    retry_after: float | None = None
    reason: str = ""

    @property
    def is_success(self) -> bool:
        """The call succeeded."""
        return self.kind is OutcomeKind.SUCCESS

    @property
    def is_retryable(self) -> bool:
        """Trying again may succeed: transient, rate limited or rejected locally."""
        return self.kind in _RETRYABLE

    @property
    def is_service_failure(self) -> bool:
        """The service failed: what a circuit breaker counts by default.

        Transient, maintenance, ambiguous and permanent outcomes count.
        Rate limits are left to the breaker's own configuration; business
        errors never count.
        """
        return self.kind in _SERVICE_FAILURES

    def __repr__(self) -> str:
        parts = [self.kind.name]
        if self.retry_after is not None:
            parts.append(f"retry_after={self.retry_after:g}")
        if self.reason:
            parts.append(f"reason={self.reason!r}")
        return f"Outcome({', '.join(parts)})"


SUCCESS: Final = Outcome(OutcomeKind.SUCCESS)
"""The outcome of every successful call."""


# --------------------------------------------------------------------------
# The explicit tables: exception class -> rule.


@dataclass(frozen=True, slots=True)
class _Rule:
    kind: OutcomeKind
    ambiguous_on_write: bool = False
    """A write that failed this way may have reached the server."""
    note: str = ""
    """Appended to the reason (``"DuplicateOrderId: duplicate order id"``)."""
    retry_attr: str | None = None
    """Attribute holding seconds to wait (default ``retry_after`` for waitable kinds)."""
    maintenance_hint: bool = False
    """A message that mentions maintenance means MAINTENANCE (ccxt raises
    ``ExchangeNotAvailable`` for an HTTP 503 "under maintenance" page)."""


_T = OutcomeKind.TRANSIENT
_RL = OutcomeKind.RATE_LIMITED
_MT = OutcomeKind.MAINTENANCE
_PM = OutcomeKind.PERMANENT
_BZ = OutcomeKind.BUSINESS

_TRANSIENT: Final = _Rule(_T)
_TRANSIENT_MAYBE_SENT: Final = _Rule(_T, ambiguous_on_write=True)
_RATE_LIMITED: Final = _Rule(_RL)
_PERMANENT: Final = _Rule(_PM)
_BUSINESS: Final = _Rule(_BZ)
_REJECTED: Final = _Rule(OutcomeKind.REJECTED)

# Always available: the builtins and the library's own errors.
_BUILTIN_RULES: Final[dict[type[BaseException], _Rule]] = {
    Exception: _PERMANENT,  # unknown: a local bug, not worth retrying
    TimeoutError: _TRANSIENT_MAYBE_SENT,  # asyncio.TimeoutError is TimeoutError
    OSError: _TRANSIENT_MAYBE_SENT,
    ConnectionError: _TRANSIENT_MAYBE_SENT,
    ConnectionResetError: _TRANSIENT_MAYBE_SENT,
    ConnectionAbortedError: _TRANSIENT_MAYBE_SENT,
    BrokenPipeError: _TRANSIENT_MAYBE_SENT,
    ConnectionRefusedError: _TRANSIENT,  # nothing was sent
    InterruptedError: _TRANSIENT_MAYBE_SENT,
    BlockingIOError: _TRANSIENT,  # EAGAIN: nothing was written
    socket.gaierror: _TRANSIENT,  # name resolution failed: nothing was sent
    socket.herror: _TRANSIENT,
    ssl.SSLError: _TRANSIENT_MAYBE_SENT,
    ssl.SSLCertVerificationError: _PERMANENT,  # a bad certificate does not heal by retrying
    EOFError: _TRANSIENT_MAYBE_SENT,  # the peer closed the stream mid-answer
    asyncio.IncompleteReadError: _TRANSIENT_MAYBE_SENT,
    # OSError subclasses that are local problems, not network ones.
    FileNotFoundError: _PERMANENT,
    FileExistsError: _PERMANENT,
    IsADirectoryError: _PERMANENT,
    NotADirectoryError: _PERMANENT,
    PermissionError: _PERMANENT,
    ProcessLookupError: _PERMANENT,
    ChildProcessError: _PERMANENT,
    # The library's own errors.
    ResilienceError: _PERMANENT,
    ConfigurationError: _PERMANENT,
    CircuitOpenError: _REJECTED,  # rejected without running; retry_after from the breaker
    BulkheadFullError: _REJECTED,
    RateLimitTimeoutError: _Rule(_RL, retry_attr="needed_wait"),
    ResilienceTimeoutError: _TRANSIENT_MAYBE_SENT,
    PoolExhaustedError: _REJECTED,  # no connection: nothing was sent
}

# ccxt 4.5 (ccxt.base.errors). Every class is listed on purpose; the test
# suite walks ccxt's hierarchy so that a class added by an upgrade is noticed.
_CCXT_RULES: Final[tuple[tuple[str, _Rule], ...]] = (
    ("BaseError", _PERMANENT),
    ("ExchangeError", _PERMANENT),  # plain and unknown, unless an override says otherwise
    ("AuthenticationError", _BUSINESS),
    ("PermissionDenied", _BUSINESS),
    ("AccountNotEnabled", _BUSINESS),
    ("AccountSuspended", _BUSINESS),
    ("ArgumentsRequired", _BUSINESS),
    ("BadRequest", _BUSINESS),
    ("BadSymbol", _BUSINESS),
    ("OperationRejected", _BUSINESS),
    ("NoChange", _BUSINESS),
    ("MarginModeAlreadySet", _BUSINESS),
    ("MarketClosed", _BUSINESS),
    ("ManualInteractionNeeded", _BUSINESS),
    ("RestrictedLocation", _BUSINESS),
    ("InsufficientFunds", _BUSINESS),
    ("InvalidAddress", _BUSINESS),
    ("AddressPending", _BUSINESS),
    ("InvalidOrder", _BUSINESS),
    ("OrderNotFound", _BUSINESS),
    ("OrderNotCached", _BUSINESS),
    ("OrderImmediatelyFillable", _BUSINESS),
    ("OrderNotFillable", _BUSINESS),
    # The order already exists: an earlier attempt of this write succeeded.
    ("DuplicateOrderId", _Rule(_BZ, note="duplicate order id")),
    ("ContractUnavailable", _BUSINESS),
    ("NotSupported", _PERMANENT),
    ("InvalidProxySettings", _PERMANENT),
    ("ExchangeClosedByUser", _PERMANENT),
    ("OperationFailed", _TRANSIENT_MAYBE_SENT),
    ("NetworkError", _TRANSIENT_MAYBE_SENT),
    ("DDoSProtection", _RATE_LIMITED),
    ("RateLimitExceeded", _RATE_LIMITED),
    # ccxt also raises it for HTTP 5xx answers: a write may have been applied.
    # HTTP 503 pages: "maintenance" in the text is a maintenance answer (a
    # clear refusal, even for writes); anything else may have reached the server.
    ("ExchangeNotAvailable", _Rule(_T, ambiguous_on_write=True, maintenance_hint=True)),
    ("OnMaintenance", _Rule(_MT)),
    ("InvalidNonce", _TRANSIENT),  # refused before acting; re-sync the clock and retry
    ("ChecksumError", _TRANSIENT),
    ("RequestTimeout", _TRANSIENT_MAYBE_SENT),
    ("BadResponse", _TRANSIENT_MAYBE_SENT),
    ("NullResponse", _TRANSIENT_MAYBE_SENT),
    ("CancelPending", _TRANSIENT),  # the cancel is in flight
    ("UnsubscribeError", _BUSINESS),  # the caller unsubscribed; not a service failure
)

_AIOHTTP_RULES: Final[tuple[tuple[str, _Rule], ...]] = (
    ("ClientError", _PERMANENT),
    # ClientResponseError and its subclasses are decided by HTTP status when
    # the status is an error (>= 400); these rules apply otherwise.
    ("ClientResponseError", _PERMANENT),
    ("ContentTypeError", _TRANSIENT_MAYBE_SENT),  # an unexpected body, like ccxt BadResponse
    ("WSServerHandshakeError", _TRANSIENT),
    ("ClientHttpProxyError", _TRANSIENT),
    ("TooManyRedirects", _PERMANENT),
    ("ClientConnectionError", _TRANSIENT_MAYBE_SENT),
    ("ClientConnectionResetError", _TRANSIENT_MAYBE_SENT),
    ("ClientOSError", _TRANSIENT_MAYBE_SENT),
    ("ClientConnectorError", _TRANSIENT),  # could not connect: nothing was sent
    ("ClientConnectorDNSError", _TRANSIENT),
    ("ClientProxyConnectionError", _TRANSIENT),
    ("UnixClientConnectorError", _TRANSIENT),
    ("ClientSSLError", _TRANSIENT),
    ("ClientConnectorSSLError", _TRANSIENT),
    ("ClientConnectorCertificateError", _PERMANENT),
    ("ServerConnectionError", _TRANSIENT_MAYBE_SENT),
    ("ServerDisconnectedError", _TRANSIENT_MAYBE_SENT),
    ("ServerTimeoutError", _TRANSIENT_MAYBE_SENT),
    ("ConnectionTimeoutError", _TRANSIENT),  # connect phase: nothing was sent
    ("SocketTimeoutError", _TRANSIENT_MAYBE_SENT),
    ("ServerFingerprintMismatch", _PERMANENT),
    ("ClientPayloadError", _TRANSIENT_MAYBE_SENT),
    ("UploadAbortedError", _TRANSIENT_MAYBE_SENT),
    ("InvalidURL", _PERMANENT),
    ("InvalidUrlClientError", _PERMANENT),
    ("InvalidUrlRedirectClientError", _PERMANENT),
    ("RedirectClientError", _PERMANENT),
    ("NonHttpUrlClientError", _PERMANENT),
    ("NonHttpUrlRedirectClientError", _PERMANENT),
)

_REDIS_RULES: Final[tuple[tuple[str, _Rule], ...]] = (
    ("RedisError", _PERMANENT),
    ("ConnectionError", _TRANSIENT_MAYBE_SENT),
    # Credentials: for a cache, a permanent failure (count it, fall back, do not retry).
    ("AuthenticationError", _PERMANENT),
    ("AuthorizationError", _PERMANENT),
    ("ExternalAuthProviderError", _PERMANENT),
    ("NoPermissionError", _PERMANENT),
    ("AuthenticationWrongNumberOfArgsError", _PERMANENT),
    ("BusyLoadingError", _TRANSIENT),  # refused while loading the dataset
    ("MaxConnectionsError", _TRANSIENT),  # client pool exhausted: nothing was sent
    ("TimeoutError", _TRANSIENT_MAYBE_SENT),
    ("InvalidResponse", _TRANSIENT_MAYBE_SENT),
    ("ResponseError", _PERMANENT),
    ("DataError", _PERMANENT),
    ("NoScriptError", _PERMANENT),
    ("OutOfMemoryError", _PERMANENT),
    ("ExecAbortError", _PERMANENT),
    ("ModuleError", _PERMANENT),
    ("NoSuchFieldsetError", _PERMANENT),
    ("ReadOnlyError", _TRANSIENT),  # a replica during failover refused the write
    ("ClusterError", _TRANSIENT_MAYBE_SENT),
    ("ClusterDownError", _TRANSIENT),
    ("MasterDownError", _TRANSIENT),
    ("TryAgainError", _TRANSIENT),
    ("AskError", _TRANSIENT),
    ("MovedError", _TRANSIENT),
    ("ClusterCrossSlotError", _PERMANENT),
    ("PubSubError", _PERMANENT),
    ("WatchError", _BUSINESS),  # optimistic-lock conflict: the caller's transaction logic
    ("LockError", _BUSINESS),
    ("LockNotOwnedError", _BUSINESS),
    ("ChildDeadlockedError", _PERMANENT),
    ("RedisClusterException", _PERMANENT),
    ("SlotNotCoveredError", _TRANSIENT),  # cluster topology is changing
    ("CrossSlotTransactionError", _PERMANENT),
    ("InvalidPipelineStack", _PERMANENT),
    ("IncorrectPolicyType", _PERMANENT),
)

_SENTINEL_RULES: Final[tuple[tuple[str, _Rule], ...]] = (
    ("MasterNotFoundError", _TRANSIENT),
    ("SlaveNotFoundError", _TRANSIENT),
)

_AIOMCACHE_RULES: Final[tuple[tuple[str, _Rule], ...]] = (
    # An unexpected server answer ("SERVER_ERROR ...", a failed command).
    ("ClientException", _PERMANENT),
    # The caller passed a bad key or value (too long, control characters).
    ("ValidationException", _BUSINESS),
)

_PENDING_TABLES: dict[str, tuple[tuple[str, _Rule], ...]] = {
    "ccxt.base.errors": _CCXT_RULES,
    "aiohttp.client_exceptions": _AIOHTTP_RULES,
    "redis.exceptions": _REDIS_RULES,
    "redis.sentinel": _SENTINEL_RULES,
    "redis.asyncio.sentinel": _SENTINEL_RULES,
    "aiomcache.exceptions": _AIOMCACHE_RULES,
}

_RULES: dict[type[BaseException], _Rule] = dict(_BUILTIN_RULES)
_CCXT_BASE: list[type[BaseException]] = []
_HTTP_BASE: list[type[BaseException]] = []


def _load_present_tables() -> None:
    """Add the rules of every third-party module that has been imported since."""
    if not _PENDING_TABLES:
        return
    for module_name in [name for name in _PENDING_TABLES if name in sys.modules]:
        rules = _PENDING_TABLES.pop(module_name, None)
        if rules is None:  # loaded meanwhile by another thread
            continue
        module = importlib.import_module(module_name)
        for class_name, rule in rules:
            cls = getattr(module, class_name, None)
            if isinstance(cls, type) and issubclass(cls, BaseException):
                _RULES[cls] = rule
        if module_name == "ccxt.base.errors":
            _CCXT_BASE.append(module.BaseError)
        elif module_name == "aiohttp.client_exceptions":
            _HTTP_BASE.append(module.ClientResponseError)


def _explicit_rule(cls: type[BaseException]) -> _Rule | None:
    """The rule listed for exactly ``cls`` (no base-class fallback), if any."""
    _load_present_tables()
    return _RULES.get(cls)


# --------------------------------------------------------------------------
# Per-type resolution, cached.


@dataclass(frozen=True, slots=True)
class _Entry:
    rule: _Rule
    read: Outcome
    write: Outcome
    http: bool
    """aiohttp ClientResponseError family: decided by HTTP status."""
    ccxt: bool
    """ccxt BaseError family: exchange-code overrides apply."""
    retry_attr: str | None
    plain: bool
    """Nothing about the instance matters beyond its type (when no overrides apply)."""
    refusal: bool
    """A clear "request refused" answer: an override's TRANSIENT stays TRANSIENT on writes."""


_CACHE: dict[type[BaseException], _Entry] = {}
_CACHE_LIMIT: Final = 2048


def _resolve(cls: type[BaseException]) -> _Entry:
    _load_present_tables()
    rule = _PERMANENT
    for base in cls.__mro__:
        found = _RULES.get(base)
        if found is not None:
            rule = found
            break
    reason = cls.__name__ + (f": {rule.note}" if rule.note else "")
    read = Outcome(rule.kind, None, reason)
    write = Outcome(OutcomeKind.AMBIGUOUS, None, reason) if rule.ambiguous_on_write else read
    retry_attr = rule.retry_attr or ("retry_after" if rule.kind in _WAITABLE else None)
    http = bool(_HTTP_BASE) and issubclass(cls, _HTTP_BASE[0])
    ccxt = bool(_CCXT_BASE) and issubclass(cls, _CCXT_BASE[0])
    entry = _Entry(
        rule=rule,
        read=read,
        write=write,
        http=http,
        ccxt=ccxt,
        retry_attr=retry_attr,
        plain=not http
        and retry_attr is None
        and not rule.maintenance_hint
        and not (ccxt and (rule.ambiguous_on_write or rule.kind is OutcomeKind.PERMANENT)),
        refusal=rule.kind in _WAITABLE and not rule.ambiguous_on_write,
    )
    if len(_CACHE) >= _CACHE_LIMIT:
        _CACHE.clear()
    _CACHE[cls] = entry
    return entry


def _seconds(value: object) -> float | None:
    """``value`` as a finite, non-negative number of seconds, else ``None``."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    seconds = float(value)
    if math.isfinite(seconds) and seconds >= 0:
        return seconds
    return None


def parse_retry_after(value: object, *, now: float | None = None) -> float | None:
    """Seconds to wait, from a ``Retry-After`` header value.

    Accepts delta-seconds (``"120"``, also ``"1.5"`` and numbers) and an
    HTTP-date (``"Wed, 21 Oct 2015 07:28:00 GMT"``), which is turned into
    seconds from ``now`` (Unix time in seconds; the wall clock by default). A
    date in the past gives ``0.0``. Anything else, negative or not finite
    gives ``None``.
    """
    if value is None:
        return None
    if not isinstance(value, str):
        return _seconds(value)
    text = value.strip()
    try:
        return _seconds(float(text))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(text)
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        target = when.timestamp()
    except (TypeError, ValueError, IndexError, OverflowError, OSError):
        return None
    current = time.time() if now is None else now
    return max(0.0, target - current)


def _header_retry_after(error: BaseException) -> float | None:
    try:
        headers = getattr(error, "headers", None)
        if headers is None or not hasattr(headers, "get"):
            return None
        value = headers.get("Retry-After")
        if value is None:
            value = headers.get("retry-after")
    except Exception:  # odd headers object: the status still decides
        return None
    return parse_retry_after(value)


def _http_outcome(error: BaseException, write: bool) -> Outcome | None:
    status = getattr(error, "status", None)
    if isinstance(status, bool) or not isinstance(status, int) or status < 400:
        return None
    reason = f"HTTP {status}"
    if status == 429:
        return Outcome(OutcomeKind.RATE_LIMITED, _header_retry_after(error), reason)
    if status in (401, 403):
        return Outcome(OutcomeKind.BUSINESS, None, reason)
    if status == 408:  # the server gave up waiting for the request: it did not act
        return Outcome(OutcomeKind.TRANSIENT, None, reason)
    if status >= 500 and status not in (501, 505, 511):
        kind = OutcomeKind.AMBIGUOUS if write else OutcomeKind.TRANSIENT
        return Outcome(kind, _header_retry_after(error), reason)
    return Outcome(OutcomeKind.PERMANENT, None, reason)


# --------------------------------------------------------------------------
# Exchange error codes.

_EXCHANGE_PREFIX: Final = re.compile(r"([a-z][a-z0-9_]*) ")
# A JSON value: quoted (any text up to the closing quote) or bare (a number or word).
_RET_CODE: Final = re.compile(r'"(?:retCode|ret_code)"\s*:\s*(?:"([^"]{1,64})"|(-?[\w.]+))')
_CODE: Final = re.compile(r'"code"\s*:\s*(?:"([^"]{1,64})"|(-?[\w.]+))')
_NUMERIC: Final = re.compile(r"-?\d{1,30}")

BYBIT_OVERRIDES: Final[Mapping[int | str, OutcomeKind]] = MappingProxyType(
    {
        # Server-side failures: retry reads; a write may have been applied.
        5004: _T,  # Server Timeout
        10000: _T,  # Server timeout
        10016: _T,  # System error / service error, please try again later
        170001: _T,  # Internal error
        170007: _T,  # Timeout waiting for response from backend server
        170032: _T,  # Network error, please try again later
        170234: _T,  # System Error
        131200: _T,  # Service error
        131201: _T,  # Internal error
        340099: _T,  # Server error
        170146: _T,  # Order creation timeout (ccxt: InvalidOrder)
        170147: _T,  # Order cancellation timeout (ccxt: InvalidOrder)
        # Refused before acting.
        10002: _T,  # request expired: timestamp / recv_window; re-sync and retry
        10006: _RL,  # too many visits
        10018: _RL,  # exceeded the IP rate limit
        170222: _RL,  # too many requests in this time frame
        # The order already exists: an earlier attempt succeeded.
        110072: _BZ,  # OrderLinkedID is duplicate
        12141: _BZ,  # duplicate clientOrderId
        170141: _BZ,  # duplicate clientOrderId (spot)
        110030: _BZ,  # duplicate orderId
        140030: _BZ,  # duplicate orderId
    }
)
"""The built-in Bybit ``retCode`` overrides of :data:`DEFAULT_CLASSIFIER`."""

_CODE_NOTES: Final[Mapping[tuple[str, str], str]] = MappingProxyType(
    {("bybit", str(code)): "duplicate order id" for code in (110072, 12141, 170141, 110030, 140030)}
)


def _normalize_code(code: object) -> str | None:
    if isinstance(code, bool):
        return None
    if isinstance(code, int):
        return str(code)
    if isinstance(code, str):
        text = code.strip()
        if _NUMERIC.fullmatch(text):
            return str(int(text))
        return text or None
    return None


def _find_code(message: str) -> tuple[str, str] | None:
    """The exchange error code in a ccxt message: ``(label, code)``."""
    match = _RET_CODE.search(message)
    label = "retCode"
    if match is None:
        match = _CODE.search(message)
        label = "code"
        if match is None:
            return None
    code = _normalize_code(match.group(1) or match.group(2))
    return None if code is None else (label, code)


def _normalize_overrides(
    overrides: Mapping[str, Mapping[int | str, OutcomeKind]],
) -> dict[str, dict[str, OutcomeKind]]:
    result: dict[str, dict[str, OutcomeKind]] = {}
    errors: list[FieldError] = []
    for exchange, codes in overrides.items():
        if not isinstance(exchange, str) or not exchange.strip():
            errors.append(
                FieldError("Classifier", "overrides", exchange, "keys must be ccxt exchange ids")
            )
            continue
        exchange_id = exchange.strip().lower()
        table = result.setdefault(exchange_id, {})
        for code, kind in codes.items():
            key = _normalize_code(code)
            where = f"overrides[{exchange_id!r}]"
            if key is None:
                errors.append(
                    FieldError(
                        "Classifier", where, code, "error codes must be an int or a non-empty str"
                    )
                )
            elif not isinstance(kind, OutcomeKind):
                errors.append(
                    FieldError("Classifier", f"{where}[{code!r}]", kind, "must be an OutcomeKind")
                )
            else:
                table[key] = kind
    if errors:
        raise ConfigurationError(errors)
    return result


# --------------------------------------------------------------------------
# The classifier.


class Classifier:
    """Decides what an exception means, with per-exchange error-code overrides.

    ``overrides`` maps a ccxt exchange id (``"bybit"``) to a mapping of that
    exchange's error codes (an int ``retCode`` or a str ``code``) to the
    :class:`OutcomeKind` they mean. Overrides take precedence over the ccxt
    exception class. Classifiers are immutable: :meth:`with_overrides`
    returns a new one.
    """

    __slots__ = ("_overrides",)

    def __init__(
        self, overrides: Mapping[str, Mapping[int | str, OutcomeKind]] | None = None
    ) -> None:
        self._overrides = _normalize_overrides(overrides) if overrides else {}

    @property
    def overrides(self) -> Mapping[str, Mapping[str, OutcomeKind]]:
        """The overrides, read-only, codes as strings (``{"bybit": {"10016": ...}}``)."""
        return MappingProxyType(
            {exchange: MappingProxyType(codes) for exchange, codes in self._overrides.items()}
        )

    def classify(
        self,
        error: BaseException | None,
        *,
        write: bool = False,
        exchange_id: str | None = None,
    ) -> Outcome:
        """What ``error`` means. ``None`` is :data:`SUCCESS`.

        ``write=True`` marks an operation whose side effect may have happened
        (an order placement): failures after which the server may have acted
        become :attr:`OutcomeKind.AMBIGUOUS`. ``exchange_id`` selects the
        override table; by default it is read from the ccxt message prefix
        (``"bybit {...}"``).

        :class:`asyncio.CancelledError` and other exceptions that are not
        :class:`Exception` (``KeyboardInterrupt``, ``SystemExit``) are never
        failures: they are re-raised untouched. For any other exception this
        never raises.
        """
        if error is None:
            return SUCCESS
        if not isinstance(error, Exception) or isinstance(error, asyncio.CancelledError):
            raise error
        entry = _CACHE.get(type(error))
        if entry is None:
            entry = _resolve(type(error))
        if entry.plain and not (entry.ccxt and self._overrides):
            return entry.write if write else entry.read
        try:
            outcome = self._classify_instance(error, entry, write, exchange_id)
        except Exception:  # a hostile __str__ or attribute: fall back to the type's meaning
            outcome = None
        if outcome is not None:
            return outcome
        return entry.write if write else entry.read

    def _classify_instance(
        self, error: Exception, entry: _Entry, write: bool, exchange_id: str | None
    ) -> Outcome | None:
        if entry.ccxt and self._overrides:
            outcome = self._override(error, entry, write, exchange_id)
            if outcome is not None:
                return outcome
        if entry.http:
            outcome = _http_outcome(error, write)
            if outcome is not None:
                return outcome
        if entry.rule.maintenance_hint and "maintenance" in str(error).lower():
            return Outcome(OutcomeKind.MAINTENANCE, None, f"{entry.read.reason}: maintenance")
        if entry.ccxt and entry.rule.kind is OutcomeKind.PERMANENT:
            # A generic ccxt error (``ExchangeError``) raised from a transport
            # failure, e.g. a response body cut off: the transport error says
            # what happened; on a write the server may have acted.
            cause = error.__cause__
            if isinstance(cause, Exception) and not isinstance(cause, asyncio.CancelledError):
                cause_rule = (_CACHE.get(type(cause)) or _resolve(type(cause))).rule
                if cause_rule.kind is OutcomeKind.TRANSIENT:
                    kind = (
                        OutcomeKind.AMBIGUOUS
                        if write and cause_rule.ambiguous_on_write
                        else OutcomeKind.TRANSIENT
                    )
                    reason = f"{entry.read.reason} (cause: {type(cause).__name__})"
                    return Outcome(kind, None, reason)
        if write and entry.ccxt and entry.rule.ambiguous_on_write:
            # ccxt wraps the aiohttp error (``raise ExchangeNotAvailable(...) from e``):
            # when the connection never opened, nothing was sent.
            cause = error.__cause__
            if isinstance(cause, Exception) and not isinstance(cause, asyncio.CancelledError):
                cause_entry = _CACHE.get(type(cause)) or _resolve(type(cause))
                rule = cause_entry.rule
                if rule.kind is OutcomeKind.TRANSIENT and not rule.ambiguous_on_write:
                    reason = f"{entry.read.reason} (cause: {type(cause).__name__})"
                    return Outcome(OutcomeKind.TRANSIENT, None, reason)
        if entry.retry_attr is not None:
            seconds = _seconds(getattr(error, entry.retry_attr, None))
            if seconds is not None:
                base = entry.write if write else entry.read
                return Outcome(base.kind, seconds, base.reason)
        return None

    def _override(
        self, error: Exception, entry: _Entry, write: bool, exchange_id: str | None
    ) -> Outcome | None:
        message = str(error)
        if exchange_id:
            exchange = exchange_id.lower()
        else:
            prefix = _EXCHANGE_PREFIX.match(message)
            if prefix is None:
                return None
            exchange = prefix.group(1)
        table = self._overrides.get(exchange)
        if not table:
            return None
        found = _find_code(message)
        if found is None:
            return None
        label, code = found
        kind = table.get(code)
        if kind is None:
            return None
        reason = f"{exchange} {label} {code}"
        note = _CODE_NOTES.get((exchange, code))
        if note:
            reason = f"{reason}: {note}"
        if kind is OutcomeKind.AMBIGUOUS:
            kind = OutcomeKind.AMBIGUOUS if write else OutcomeKind.TRANSIENT
        elif kind is OutcomeKind.TRANSIENT and write and not entry.refusal:
            kind = OutcomeKind.AMBIGUOUS
        retry_after = None
        if kind in _WAITABLE:
            retry_after = _seconds(getattr(error, entry.retry_attr or "retry_after", None))
        return Outcome(kind, retry_after, reason)

    def with_overrides(
        self, exchange_id: str, codes: Mapping[int | str, OutcomeKind]
    ) -> Classifier:
        """A new classifier with ``codes`` added to ``exchange_id``'s overrides.

        Codes already present for that exchange are replaced; this classifier
        is unchanged.
        """
        merged = {exchange: dict(table) for exchange, table in self._overrides.items()}
        for exchange, table in _normalize_overrides({exchange_id: codes}).items():
            merged[exchange] = {**merged.get(exchange, {}), **table}
        clone = Classifier.__new__(Classifier)
        clone._overrides = merged
        return clone

    def __repr__(self) -> str:
        tables = ", ".join(
            f"{exchange!r}: {len(codes)} codes" for exchange, codes in self._overrides.items()
        )
        return f"Classifier(overrides={{{tables}}}, cached_types={len(_CACHE)})"


DEFAULT_CLASSIFIER: Final = Classifier({"bybit": BYBIT_OVERRIDES})
"""The classifier used by default: the built-in tables and the Bybit overrides."""


def classify(
    error: BaseException | None, *, write: bool = False, exchange_id: str | None = None
) -> Outcome:
    """What ``error`` means, according to :data:`DEFAULT_CLASSIFIER`.

    See :meth:`Classifier.classify`.
    """
    if error is None:
        return SUCCESS
    return DEFAULT_CLASSIFIER.classify(error, write=write, exchange_id=exchange_id)
