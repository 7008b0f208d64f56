"""The classifier: exception (+ status, headers) -> :class:`Outcome`.

The per-library tables say what each exception class means; the exchange
tables say what each exchange error code means; this module resolves an
exception type once (one MRO walk, cached) and looks at the instance only
when it can say more: a ccxt message (exchange id, error code, the HTTP
status ccxt put in it, maintenance or ban text), an aiohttp status, or the
response recorded with :func:`attach_response`.
"""

from __future__ import annotations

import asyncio
import importlib
import math
import re
import socket
import ssl
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final, TypeAlias

from ..errors import (
    BulkheadFullError,
    CircuitOpenError,
    ConfigurationError,
    FieldError,
    PoolExhaustedError,
    RateLimitTimeoutError,
    ResilienceError,
    ResilienceTimeoutError,
)
from . import _aiohttp, _binance, _bybit, _ccxt, _memcached, _okx, _redis
from ._config import ClassifierConfig
from ._outcome import SUCCESS, Outcome, OutcomeKind, Signal
from ._response import (
    MESSAGE_HEAD,
    Response,
    attached_response,
    ban_until,
    check_headers,
    check_status,
    header,
    parse_retry_after,
    parse_seconds,
    status_in_message,
)
from ._rules import DEFAULT_CODE_FIELDS, CodeRule, ExchangeTable, LibraryTable, Rule

__all__ = [
    "BUILTIN_OVERRIDES",
    "BYBIT_OVERRIDES",
    "DEFAULT_CLASSIFIER",
    "Classifier",
    "CodeRules",
    "classify",
]

_T = OutcomeKind.TRANSIENT
_RL = OutcomeKind.RATE_LIMITED
_PM = OutcomeKind.PERMANENT
_AMB = OutcomeKind.AMBIGUOUS

_TRANSIENT: Final = Rule(_T)
_MAYBE_SENT: Final = Rule(_T, ambiguous_on_write=True)
_PERMANENT: Final = Rule(_PM)
_REJECTED: Final = Rule(OutcomeKind.REJECTED)

# Always available: the builtins and the library's own errors.
_BUILTIN_RULES: Final[Mapping[type[BaseException], Rule]] = MappingProxyType(
    {
        Exception: _PERMANENT,  # unknown: a local bug, not worth retrying
        TimeoutError: _MAYBE_SENT,  # asyncio.TimeoutError is TimeoutError
        OSError: _MAYBE_SENT,
        ConnectionError: _MAYBE_SENT,
        ConnectionResetError: _MAYBE_SENT,
        ConnectionAbortedError: _MAYBE_SENT,
        BrokenPipeError: _MAYBE_SENT,
        ConnectionRefusedError: _TRANSIENT,  # nothing was sent
        InterruptedError: _MAYBE_SENT,
        BlockingIOError: _TRANSIENT,  # EAGAIN: nothing was written
        socket.gaierror: _TRANSIENT,  # name resolution failed: nothing was sent
        socket.herror: _TRANSIENT,
        ssl.SSLError: _MAYBE_SENT,
        ssl.SSLCertVerificationError: _PERMANENT,  # a bad certificate does not heal
        EOFError: _MAYBE_SENT,  # the peer closed the stream mid-answer
        asyncio.IncompleteReadError: _MAYBE_SENT,
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
        # Rejected without running; the wait is the breaker's next trial.
        CircuitOpenError: Rule(OutcomeKind.REJECTED, retry_attr="retry_after"),
        BulkheadFullError: _REJECTED,
        RateLimitTimeoutError: Rule(_RL, retry_attr="needed_wait"),
        ResilienceTimeoutError: _MAYBE_SENT,
        PoolExhaustedError: _REJECTED,  # no connection: nothing was sent
    }
)

_LIBRARY_TABLES: Final[Mapping[str, LibraryTable]] = MappingProxyType(
    {**_ccxt.TABLES, **_aiohttp.TABLES, **_redis.TABLES, **_memcached.TABLES}
)
_CCXT_MODULE: Final = "ccxt.base.errors"
_EXCHANGE_TABLES: Final[Mapping[str, ExchangeTable]] = MappingProxyType(
    {table.exchange_id: table for table in (_bybit.TABLE, _binance.TABLE, _okx.TABLE)}
)

# Kinds for which a wait the server asked for is passed on.
_WAITABLE: Final = frozenset({_T, _RL, OutcomeKind.MAINTENANCE, OutcomeKind.REJECTED, _AMB})
_REFUSALS: Final = frozenset({_T, _RL, OutcomeKind.MAINTENANCE, OutcomeKind.REJECTED})


# --------------------------------------------------------------------------
# Per-type resolution, cached.

_pending: dict[str, LibraryTable] = dict(_LIBRARY_TABLES)
_rules: dict[type[BaseException], Rule] = dict(_BUILTIN_RULES)
_ccxt_base: list[type[BaseException]] = []
_http_base: list[type[BaseException]] = []


def _load_present_tables() -> None:
    """Add the rules of every third-party module that has been imported since."""
    if not _pending:
        return
    for module_name in [name for name in _pending if name in sys.modules]:
        table = _pending.pop(module_name, None)
        if table is None:  # loaded meanwhile by another thread
            continue
        module = importlib.import_module(module_name)
        for class_name, rule in table:
            cls = getattr(module, class_name, None)
            if isinstance(cls, type) and issubclass(cls, BaseException):
                _rules[cls] = rule
        if module_name == _CCXT_MODULE:
            _ccxt_base.append(module.BaseError)
        elif module_name == _aiohttp.RESPONSE_ERROR[0]:
            _http_base.append(getattr(module, _aiohttp.RESPONSE_ERROR[1]))


@dataclass(frozen=True, slots=True)
class _Entry:
    rule: Rule
    read: Outcome
    write: Outcome
    http: bool
    """aiohttp ClientResponseError family: decided by HTTP status."""
    ccxt: bool
    """ccxt BaseError family: messages, codes and statuses apply."""
    plain: bool
    """Nothing about the instance matters beyond its type (when no exchange
    table applies and no response is attached)."""


_CACHE: dict[type[BaseException], _Entry] = {}
_CACHE_LIMIT: Final = 2048


def _resolve(cls: type[BaseException]) -> _Entry:
    _load_present_tables()
    rule = _PERMANENT
    for base in cls.__mro__:
        found = _rules.get(base)
        if found is not None:
            rule = found
            break
    reason = cls.__name__ + (f": {rule.note}" if rule.note else "")
    read = Outcome(rule.kind, None, reason, signal=rule.signal)
    write = Outcome(_AMB, None, reason, signal=rule.signal) if rule.ambiguous_on_write else read
    http = bool(_http_base) and issubclass(cls, _http_base[0])
    ccxt = bool(_ccxt_base) and issubclass(cls, _ccxt_base[0])
    entry = _Entry(
        rule=rule,
        read=read,
        write=write,
        http=http,
        ccxt=ccxt,
        plain=not http
        and rule.retry_attr is None
        and not (
            ccxt
            and (
                rule.by_status
                or rule.maintenance_hint
                or rule.ambiguous_on_write
                or rule.kind is _PM
            )
        ),
    )
    if len(_CACHE) >= _CACHE_LIMIT:
        _CACHE.clear()
    _CACHE[cls] = entry
    return entry


# --------------------------------------------------------------------------
# Exchange codes.

_MAX_ID: Final = 33  # the longest exchange id looked for, plus its space
_NUMERIC: Final = re.compile(r"-?[0-9]{1,30}")
_MAX_CODE: Final = 10**30
# A code is quoted (letters, digits, ``_.:- `` and spaces: Kraken's
# "EAPI:Rate limit exceeded") or bare (a number or a word); never URL or query
# syntax, so a request echoed into a message cannot smuggle a query string
# (``signature=...``) into ``Outcome.code``.
_CODE_VALUE: Final = r'"\s{0,8}:\s{0,8}(?:"([A-Za-z0-9_.: -]{1,64})"|(-?[A-Za-z0-9_.:]{1,64}))'
_CODE_PATTERNS: dict[tuple[str, ...], tuple[tuple[str, str, re.Pattern[str]], ...]] = {}
_BAN_WORDS: Final = ("banned", "ip ban", "ip has been ban", "ip is ban")


def _code_patterns(fields: tuple[str, ...]) -> tuple[tuple[str, str, re.Pattern[str]], ...]:
    patterns = _CODE_PATTERNS.get(fields)
    if patterns is None:
        patterns = tuple(
            (
                "retCode" if name == "ret_code" else name,
                f'"{name}"',
                re.compile('"' + re.escape(name) + _CODE_VALUE),
            )
            for name in fields
        )
        _CODE_PATTERNS[fields] = patterns
    return patterns


def _normalize_code(code: object) -> str | None:
    if isinstance(code, bool):
        return None
    if isinstance(code, int):
        return str(code) if -_MAX_CODE < code < _MAX_CODE else None
    if isinstance(code, str):
        text = code.strip()
        if _NUMERIC.fullmatch(text):
            return str(int(text))
        return text if text and text.isascii() else None
    return None


def _find_code(head: str, fields: tuple[str, ...]) -> tuple[str, str] | None:
    """The exchange error code in a ccxt message: ``(label, code)``; ``"0"`` is no error."""
    for label, quoted, pattern in _code_patterns(fields):
        if quoted not in head:  # a substring test is far cheaper than a regex search
            continue
        for match in pattern.finditer(head):
            code = _normalize_code(match.group(1) or match.group(2))
            if code is not None and code != "0":
                return label, code
    return None


def _pick(rules: tuple[CodeRule, ...] | None, head: str) -> CodeRule | None:
    if not rules:
        return None
    lowered: str | None = None
    for rule in rules:
        if rule.text is None:
            return rule
        if lowered is None:
            lowered = head.lower()
        if rule.text in lowered:
            return rule
    return None


CodeRules: TypeAlias = OutcomeKind | CodeRule | Sequence[CodeRule]
"""What one code may map to in ``overrides``: a kind, a rule, or rules tried in order."""

CodeTable: TypeAlias = (
    Mapping[int, CodeRules] | Mapping[str, CodeRules] | Mapping[int | str, CodeRules]
)
"""One exchange's codes in ``overrides``: code (int or str) -> what it means."""


def _normalize_overrides(
    overrides: Mapping[str, CodeTable],
) -> dict[str, dict[str, tuple[CodeRule, ...]]]:
    result: dict[str, dict[str, tuple[CodeRule, ...]]] = {}
    errors: list[FieldError] = []
    if not isinstance(overrides, Mapping):
        raise ConfigurationError(
            [FieldError("Classifier", "overrides", overrides, "must be a mapping")]
        )
    for exchange, codes in overrides.items():
        if not isinstance(exchange, str) or not exchange.strip():
            errors.append(
                FieldError("Classifier", "overrides", exchange, "keys must be ccxt exchange ids")
            )
            continue
        exchange_id = exchange.strip().lower()
        where = f"overrides[{exchange_id!r}]"
        if not isinstance(codes, Mapping):
            errors.append(
                FieldError("Classifier", where, codes, "must be a mapping of error codes")
            )
            continue
        table = result.setdefault(exchange_id, {})
        for code, value in codes.items():
            key = _normalize_code(code)
            if key is None:
                huge = isinstance(code, int) and not -_MAX_CODE < code < _MAX_CODE
                errors.append(
                    FieldError(
                        "Classifier",
                        where,
                        "<an int of over 30 digits>" if huge else code,
                        "error codes must be an int of at most 30 digits or a non-empty ASCII str",
                    )
                )
                continue
            rules = _code_rules(value)
            if rules is None:
                errors.append(
                    FieldError(
                        "Classifier",
                        f"{where}[{code!r}]",
                        value,
                        "must be an OutcomeKind other than SUCCESS, a CodeRule, "
                        "or a non-empty sequence of CodeRule",
                    )
                )
            else:
                table[key] = rules
    if errors:
        raise ConfigurationError(errors)
    return result


def _code_rules(value: object) -> tuple[CodeRule, ...] | None:
    if isinstance(value, OutcomeKind):
        return None if value is OutcomeKind.SUCCESS else (CodeRule(value),)
    if isinstance(value, CodeRule):
        return (value,)
    if (
        isinstance(value, Sequence)
        and not isinstance(value, str | bytes)
        and value
        and all(isinstance(rule, CodeRule) for rule in value)
    ):
        return tuple(value)
    return None


def _tables(
    codes: Mapping[str, Mapping[str, tuple[CodeRule, ...]]],
) -> dict[str, ExchangeTable]:
    tables: dict[str, ExchangeTable] = {}
    for exchange_id, table_codes in codes.items():
        known = _EXCHANGE_TABLES.get(exchange_id)
        tables[exchange_id] = ExchangeTable(
            exchange_id,
            known.code_fields if known else DEFAULT_CODE_FIELDS,
            MappingProxyType(dict(table_codes)),
            known.forbidden_is_ban if known else False,
            known.aliases if known else (),
        )
    return tables


def _lookup(tables: Mapping[str, ExchangeTable]) -> dict[str, ExchangeTable]:
    """Exchange id -> table, aliases included; an explicit table wins over an alias."""
    found = {alias: table for table in tables.values() for alias in table.aliases}
    found.update(tables)
    return found


BUILTIN_OVERRIDES: Final[Mapping[str, Mapping[str, tuple[CodeRule, ...]]]] = MappingProxyType(
    {exchange: MappingProxyType(dict(t.codes)) for exchange, t in _EXCHANGE_TABLES.items()}
)
"""The exchange-code tables of :data:`DEFAULT_CLASSIFIER` (Bybit, Binance, OKX):
exchange id -> code -> rules. ``Classifier(BUILTIN_OVERRIDES)`` is the default."""

BYBIT_OVERRIDES: Final[Mapping[int | str, OutcomeKind]] = MappingProxyType(
    {code: rule.kind for code, rule in _bybit.CODES.items()}
)
"""The built-in Bybit ``retCode`` kinds (the full rules are in :data:`BUILTIN_OVERRIDES`)."""


# --------------------------------------------------------------------------
# Statuses and waits.


def _message_head(error: BaseException) -> str:
    try:
        message = str(error)
    except Exception:  # a hostile __str__: nothing to read
        return ""
    return message[:MESSAGE_HEAD] if isinstance(message, str) else ""


def _attribute(error: BaseException, name: str) -> object:
    try:
        return getattr(error, name, None)
    except Exception:  # a hostile property
        return None


def _http_kind(status: int, write: bool) -> tuple[OutcomeKind, Signal | None] | None:
    """What an HTTP status says by itself (aiohttp response errors)."""
    if status < 400:
        return None
    if status == 418:
        return _RL, Signal.IP_BAN
    if status == 429:
        return _RL, Signal.RATE_LIMIT
    if status in (401, 403):
        return OutcomeKind.BUSINESS, None
    if status == 408:  # the server gave up waiting for the request: it did not act
        return _T, None
    if status >= 500 and status not in (501, 505, 511):
        return (_AMB if write else _T), None
    return _PM, None


_MemoKey: TypeAlias = tuple[str, str, str | None, int | None, type[BaseException], bool]


class Classifier:
    """Decides what an exception means, with per-exchange error-code tables.

    ``overrides`` maps a ccxt exchange id (``"bybit"``) to that exchange's
    error codes (an int or str code) and what they mean: an
    :class:`OutcomeKind`, a :class:`CodeRule` (kind, signal, text), or a
    sequence of rules tried in order. Codes take precedence over the ccxt
    exception class. ``Classifier()`` has no code tables at all;
    :data:`DEFAULT_CLASSIFIER` has the built-in Bybit, Binance and OKX ones
    (:data:`BUILTIN_OVERRIDES`). ``config`` sets the ban pause and the cap on
    waits. Classifiers are immutable apart from their config:
    :meth:`with_overrides` returns a new one.
    """

    __slots__ = ("_by_id", "_config", "_memo", "_tables")

    def __init__(
        self,
        overrides: Mapping[str, CodeTable] | None = None,
        *,
        config: ClassifierConfig | None = None,
    ) -> None:
        if config is not None and not isinstance(config, ClassifierConfig):
            raise ConfigurationError(
                [FieldError("Classifier", "config", config, "must be a ClassifierConfig or None")]
            )
        self._tables = _tables(_normalize_overrides(overrides)) if overrides else {}
        self._by_id = _lookup(self._tables)
        self._config = config if config is not None else ClassifierConfig()
        # Code answers without a wait, per (exchange, field, code, class, write).
        self._memo: dict[_MemoKey, Outcome] = {}

    @property
    def config(self) -> ClassifierConfig:
        """The settings (``ban_pause``, ``max_retry_after``), validated on assignment."""
        return self._config

    @property
    def overrides(self) -> Mapping[str, Mapping[str, OutcomeKind]]:
        """The code tables, read-only, codes as strings: ``{"bybit": {"10016": kind}}``.

        A code with several rules shows the kind of its first.
        """
        return MappingProxyType(
            {
                exchange: MappingProxyType({c: r[0].kind for c, r in table.codes.items()})
                for exchange, table in self._tables.items()
            }
        )

    def classify(
        self,
        error: BaseException | None,
        *,
        write: bool = False,
        exchange_id: str | None = None,
        status: int | None = None,
        headers: Mapping[str, str] | None = None,
        now: float | None = None,
    ) -> Outcome:
        """What ``error`` means. ``None`` is :data:`SUCCESS`.

        ``write=True`` marks an operation whose side effect may have happened
        (an order placement): failures after which the server may have acted
        become :attr:`OutcomeKind.AMBIGUOUS`. ``exchange_id`` selects the
        code table; by default it is read from the ccxt message prefix
        (``"bybit {...}"``). ``status`` and ``headers`` are the HTTP status
        and response headers that came with the error (they win over what
        :func:`attach_response` recorded); ``Retry-After`` (seconds or an
        HTTP date), Bybit's ``X-Bapi-Limit-Reset-Timestamp`` and Binance's
        ban end become ``retry_after``, capped at ``config.max_retry_after``.
        ``now`` is the wall clock (Unix seconds) for dates and timestamps,
        ``time.time()`` by default.

        :class:`asyncio.CancelledError` and other exceptions that are not
        :class:`Exception` (``KeyboardInterrupt``, ``SystemExit``) are never
        failures: they are re-raised untouched. A ``status`` that is not an
        int HTTP status or ``headers`` that are not a mapping raise
        ``ValueError``. For any other input this never raises.
        """
        if error is None:
            return SUCCESS
        if not isinstance(error, Exception) or isinstance(error, asyncio.CancelledError):
            raise error
        entry = _CACHE.get(type(error))
        if entry is None:
            entry = _resolve(type(error))
        response = attached_response(error)
        if status is not None or headers is not None:
            status = check_status(status)
            headers = check_headers(headers)
            if response is not None:
                status = response.status if status is None else status
                headers = response.headers if headers is None else headers
            response = Response(status, headers)
        elif response is None and entry.plain and not (entry.ccxt and self._tables):
            return entry.write if write else entry.read
        try:
            outcome = self._classify_instance(error, entry, write, exchange_id, response, now)
        except Exception:  # hostile attributes: fall back to the type's meaning
            outcome = None
        if outcome is not None:
            return outcome
        return entry.write if write else entry.read

    def _classify_instance(
        self,
        error: Exception,
        entry: _Entry,
        write: bool,
        exchange_id: str | None,
        response: Response | None,
        now: float | None,
    ) -> Outcome | None:
        if entry.ccxt:
            return self._classify_ccxt(error, entry, write, exchange_id, response, now)
        status = response.status if response is not None else None
        headers = response.headers if response is not None else None
        base = entry.write if write else entry.read
        kind, signal, reason = base.kind, base.signal, base.reason
        if entry.http:
            if status is None:
                found_status = _attribute(error, "status")
                if (
                    isinstance(found_status, int)
                    and not isinstance(found_status, bool)
                    and 100 <= found_status <= 999  # what an HTTP status line can carry
                ):
                    status = found_status
            if headers is None:
                found_headers = _attribute(error, "headers")
                headers = found_headers if isinstance(found_headers, Mapping) else None
            http = None if status is None else _http_kind(status, write)
            if http is not None:
                kind, signal = http
                reason = f"HTTP {status}"
        retry_after = self._wait(error, entry.rule, kind, signal, headers, "", now)
        if retry_after is None and status is None and kind is base.kind and reason == base.reason:
            return base
        return Outcome(kind, retry_after, reason, status, None, signal)

    def _classify_ccxt(
        self,
        error: Exception,
        entry: _Entry,
        write: bool,
        exchange_id: str | None,
        response: Response | None,
        now: float | None,
    ) -> Outcome:
        """A ccxt error: its code, the status in its message or attached, its text, its cause."""
        rule = entry.rule
        if response is not None and isinstance(error.__cause__, Exception):
            # ccxt raised it from a transport failure: there was no answer, and
            # ``last_response_headers`` still holds the previous response's.
            response = None
        status = response.status if response is not None else None
        head = _message_head(error)
        if status is None and rule.by_status:
            status = status_in_message(head)
        table = self._table(head, exchange_id)
        found = None if table is None else _find_code(head, table.code_fields)
        label, code = found if found is not None else ("", None)
        # Answers that depend on nothing but these are memoised: no response
        # attached, no cause, no text-dependent rule (see the checks below).
        memo_key = None
        if response is None and error.__cause__ is None:
            memo_key = (
                "" if table is None else table.exchange_id,
                label,
                code,
                status,
                type(error),
                write,
            )
            memoised = self._memo.get(memo_key)
            if memoised is not None:
                return memoised
        base = entry.write if write else entry.read
        kind, signal, reason = base.kind, base.signal, base.reason
        decided = False
        rules = None if table is None or code is None else table.codes.get(code)
        if rules is not None:
            code_rule = _pick(rules, head)
            if code_rule is not None:
                kind = self._code_kind(code_rule, rule, write)
                signal = code_rule.signal
                reason = f"{table.exchange_id} {label} {code}" if table is not None else reason
                if code_rule.note:
                    reason = f"{reason}: {code_rule.note}"
                decided = True
            if rules[0].text is not None:
                memo_key = None  # the message's text decides
        if not decided and status is not None and rule.by_status:
            decided_status = self._ccxt_status(status, head, table)
            if decided_status is not None:
                kind, signal, note = decided_status
                reason = f"{type(error).__name__}: HTTP {status}"
                if note:
                    reason = f"{reason} {note}"
                decided = True
                if status == 403:
                    memo_key = None  # the ban text decides
        if not decided:
            if rule.maintenance_hint:
                memo_key = None  # the maintenance text decides
            fallback = self._ccxt_fallback(error, entry, write, head)
            if fallback is not None:
                kind, signal, reason = fallback
        headers = response.headers if response is not None else None
        retry_after = self._wait(error, rule, kind, signal, headers, head, now)
        if (
            retry_after is None
            and status is None
            and code is None
            and kind is base.kind
            and signal is base.signal
            and reason == base.reason
        ):
            outcome = base
        else:
            outcome = Outcome(kind, retry_after, reason, status, code, signal)
        if memo_key is not None and signal is not Signal.IP_BAN:
            # IP_BAN waits depend on the ban text and the live ban_pause.
            if len(self._memo) >= _CACHE_LIMIT:
                self._memo.clear()
            self._memo[memo_key] = outcome
        return outcome

    def _table(self, head: str, exchange_id: str | None) -> ExchangeTable | None:
        if not self._by_id:
            return None
        if exchange_id:
            return self._by_id.get(exchange_id.strip().lower())
        # ccxt's messages start with the exchange id and a space.
        space = head.find(" ", 0, _MAX_ID)
        return self._by_id.get(head[:space]) if space > 0 else None

    @staticmethod
    def _code_kind(code_rule: CodeRule, rule: Rule, write: bool) -> OutcomeKind:
        kind = code_rule.kind
        if kind is _AMB:
            return _AMB if write else _T
        if kind is _T and write and not code_rule.refused:
            # Ambiguous unless the ccxt class is itself a clear refusal.
            refusal = rule.kind in _REFUSALS and not rule.ambiguous_on_write
            return _T if refusal else _AMB
        return kind

    @staticmethod
    def _ccxt_status(
        status: int, head: str, table: ExchangeTable | None
    ) -> tuple[OutcomeKind, Signal | None, str] | None:
        """What the HTTP status of a ccxt ``httpExceptions`` error means, if it decides."""
        if status == 418:
            return _RL, Signal.IP_BAN, "(ip banned)"
        if status == 429:
            return _RL, Signal.RATE_LIMIT, ""
        if status == 403:
            lowered = head.lower()
            if (table is not None and table.forbidden_is_ban) or any(
                word in lowered for word in _BAN_WORDS
            ):
                return _RL, Signal.IP_BAN, "(ip banned)"
            return _PM, None, ""
        if 400 <= status < 500 and status != 408:
            return _PM, None, ""
        if status in (501, 505):
            return _PM, None, ""
        return None

    @staticmethod
    def _ccxt_fallback(
        error: Exception, entry: _Entry, write: bool, head: str
    ) -> tuple[OutcomeKind, Signal | None, str] | None:
        rule = entry.rule
        if rule.maintenance_hint and "maintenance" in head.lower():
            return OutcomeKind.MAINTENANCE, Signal.MAINTENANCE, f"{entry.read.reason}: maintenance"
        cause = error.__cause__
        if not isinstance(cause, Exception) or isinstance(cause, asyncio.CancelledError):
            return None
        if rule.kind is _PM:
            # A generic ccxt error (``ExchangeError``) raised from a transport
            # failure, e.g. a response body cut off: the transport error says
            # what happened; on a write the server may have acted.
            cause_rule = (_CACHE.get(type(cause)) or _resolve(type(cause))).rule
            if cause_rule.kind is _T:
                kind = _AMB if write and cause_rule.ambiguous_on_write else _T
                return kind, None, f"{entry.read.reason} (cause: {type(cause).__name__})"
        elif write and rule.ambiguous_on_write:
            # ccxt wraps the aiohttp error (``raise ExchangeNotAvailable(...) from e``):
            # when the connection never opened, nothing was sent.
            cause_rule = (_CACHE.get(type(cause)) or _resolve(type(cause))).rule
            if cause_rule.kind is _T and not cause_rule.ambiguous_on_write:
                return _T, None, f"{entry.read.reason} (cause: {type(cause).__name__})"
        return None

    def _wait(
        self,
        error: Exception,
        rule: Rule,
        kind: OutcomeKind,
        signal: Signal | None,
        headers: Mapping[str, str] | None,
        head: str,
        now: float | None,
    ) -> float | None:
        """Seconds to wait, capped, from the headers, the ban text or the error."""
        config = self._config
        wait: float | None = None
        if signal is Signal.IP_BAN:
            candidates: list[float] = []
            if headers:
                after = header(headers, "retry-after")
                seconds = None if after is None else parse_retry_after(after, now=now)
                if seconds is not None:
                    candidates.append(seconds)
            until = ban_until(head) if head else None
            if until is not None:
                current = time.time() if now is None else now
                candidates.append(max(0.0, until - current))
            wait = max(candidates) if candidates else config.ban_pause
        elif kind in _WAITABLE:
            if headers:
                after = header(headers, "retry-after")
                wait = None if after is None else parse_retry_after(after, now=now)
                if wait is None and signal is Signal.RATE_LIMIT:
                    reset = header(headers, "x-bapi-limit-reset-timestamp")
                    reset_ms = None if reset is None else parse_seconds(reset)
                    if reset_ms is not None:
                        current = time.time() if now is None else now
                        wait = max(0.0, reset_ms / 1000.0 - current)
            if wait is None and rule.retry_attr is not None:
                value = _attribute(error, rule.retry_attr)
                if isinstance(value, int | float) and not isinstance(value, bool):
                    seconds = float(value)
                    wait = seconds if math.isfinite(seconds) and seconds >= 0 else None
        if wait is None:
            return None
        return min(wait, config.max_retry_after)

    def with_overrides(self, exchange_id: str, codes: CodeTable) -> Classifier:
        """A new classifier with ``codes`` added to ``exchange_id``'s table.

        Codes already present for that exchange are replaced; this classifier
        is unchanged. The new one shares this one's config.
        """
        merged = {exchange: dict(table.codes) for exchange, table in self._tables.items()}
        for exchange, table in _normalize_overrides({exchange_id: codes}).items():
            merged[exchange] = {**merged.get(exchange, {}), **table}
        clone = Classifier.__new__(Classifier)
        clone._tables = _tables(merged)
        clone._by_id = _lookup(clone._tables)
        clone._config = self._config
        clone._memo = {}
        return clone

    def __repr__(self) -> str:
        tables = ", ".join(
            f"{exchange!r}: {len(table.codes)} codes" for exchange, table in self._tables.items()
        )
        config = self._config
        return (
            f"Classifier(overrides={{{tables}}}, ban_pause={config.ban_pause:g}, "
            f"max_retry_after={config.max_retry_after:g}, cached_types={len(_CACHE)})"
        )


DEFAULT_CLASSIFIER: Final = Classifier(BUILTIN_OVERRIDES)
"""The classifier used by default: the built-in tables, Bybit, Binance and OKX codes."""


def classify(
    error: BaseException | None,
    *,
    write: bool = False,
    exchange_id: str | None = None,
    status: int | None = None,
    headers: Mapping[str, str] | None = None,
    now: float | None = None,
) -> Outcome:
    """What ``error`` means, according to :data:`DEFAULT_CLASSIFIER`.

    See :meth:`Classifier.classify`.
    """
    if error is None:
        return SUCCESS
    return DEFAULT_CLASSIFIER.classify(
        error, write=write, exchange_id=exchange_id, status=status, headers=headers, now=now
    )
