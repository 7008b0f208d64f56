"""Response context: the HTTP status and headers that came with an exception.

ccxt exceptions carry neither; the exchange adapter records them with
:func:`attach_response` before re-raising, so every policy that asks the
classifier honours a wait the server asked for. Everything here reads
bounded input: header values are cut before parsing, numbers must be plain
ASCII digits, and messages are cut before any pattern runs.
"""

from __future__ import annotations

import email.utils
import math
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC
from typing import Final, TypeVar

__all__ = [
    "MESSAGE_HEAD",
    "Response",
    "attach_response",
    "attached_response",
    "ban_until",
    "check_headers",
    "check_status",
    "header",
    "parse_retry_after",
    "parse_seconds",
    "status_in_message",
]

E = TypeVar("E", bound=BaseException)

_ATTR: Final = "_virtuoso_resilience_response"

MESSAGE_HEAD: Final = 8192
"""Characters of an error message the classifier reads (ccxt puts the
exchange id, method, URL, status and the start of the body first). The rest
of a 1 MB echoed body is never scanned."""

_HEADER_VALUE_LIMIT: Final = 64
_HEADER_SCAN_LIMIT: Final = 256
_SECONDS: Final = re.compile(r"[0-9]{1,15}(?:\.[0-9]{1,9})?")
_METHODS: Final = frozenset({"GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"})
_BANNED_UNTIL: Final = re.compile(r"banned until ([0-9]{10,16})")


@dataclass(frozen=True, slots=True)
class Response:
    """The status and headers recorded with an exception."""

    status: int | None
    headers: Mapping[str, str] | None


def check_status(status: object) -> int | None:
    """``status`` if it is ``None`` or an HTTP status (int 100..599), else ``ValueError``."""
    if status is None:
        return None
    if isinstance(status, bool) or not isinstance(status, int) or not 100 <= status <= 599:
        raise ValueError(
            f"status={status!r} is invalid: must be None or an int HTTP status from 100 to 599"
        )
    return status


def check_headers(headers: object) -> Mapping[str, str] | None:
    """``headers`` if it is ``None`` or a mapping, else ``ValueError``."""
    if headers is None or isinstance(headers, Mapping):
        return headers
    raise ValueError(
        f"headers={type(headers).__name__} is invalid: must be None or a mapping of "
        "header names to values (ccxt's last_response_headers)"
    )


def attach_response(
    exc: E, *, status: int | None = None, headers: Mapping[str, str] | None = None
) -> E:
    """Record the HTTP ``status`` and response ``headers`` with ``exc``; return ``exc``.

    ccxt exceptions carry no headers. An adapter calls
    ``attach_response(exc, headers=exchange.last_response_headers, status=...)``
    before re-raising, and every policy that classifies ``exc`` then sees the
    server's ``Retry-After``, Bybit's ``X-Bapi-Limit-Reset-Timestamp`` and the
    status. The headers mapping is kept by reference (ccxt replaces, never
    mutates, ``last_response_headers``). A later call replaces the record.

    Caution: ``last_response_headers`` is per *client*, not per request. With
    concurrent calls on one ccxt client (and inside ccxt itself: bybit's
    ``create_order`` runs two account queries with ``asyncio.gather``) it may
    hold another response's headers by the time the exception is caught;
    against the simulator a 429's ``Retry-After: 1`` was replaced by a 200's
    ``X-Bapi-Limit-Reset-Timestamp`` (a wait of 0). Attach the headers of
    the response that failed (those ccxt passes to ``handle_errors``) when
    the adapter can get them.
    Raises ``ValueError`` for a status that is not an int 100..599 or headers
    that are not a mapping.
    """
    response = Response(check_status(status), check_headers(headers))
    try:
        setattr(exc, _ATTR, response)
    except (AttributeError, TypeError):  # an exception type without a __dict__
        pass
    return exc


def attached_response(exc: BaseException) -> Response | None:
    """What :func:`attach_response` recorded with ``exc``, if anything."""
    try:
        found = exc.__dict__.get(_ATTR)
    except Exception:  # a hostile __dict__
        return None
    return found if isinstance(found, Response) else None


def header(headers: Mapping[str, str], name: str) -> str | None:
    """The value of header ``name`` (lower case), looked up case-insensitively.

    A case-insensitive mapping (aiohttp's ``CIMultiDictProxy``) answers the
    first lookups; a plain dict (ccxt keeps the server's spelling) is scanned,
    at most its first 256 entries. Values are cut to 64 characters.
    """
    try:
        value = headers.get(name)
        if value is None:
            value = headers.get(name.title())
        if value is None and len(headers) <= _HEADER_SCAN_LIMIT:
            for key, item in headers.items():
                if isinstance(key, str) and key.lower() == name:
                    value = item
                    break
    except Exception:  # an odd mapping: no header
        return None
    if not isinstance(value, str):
        return None
    return value[:_HEADER_VALUE_LIMIT]


def parse_seconds(text: str) -> float | None:
    """Plain ASCII decimal seconds (``"120"``, ``"1.5"``), else ``None``.

    ``float()`` would accept ``"٣"``, ``"1_0"``, ``"nan"`` and ``"1e999"``;
    this does not.
    """
    text = text.strip()
    if not _SECONDS.fullmatch(text):
        return None
    return float(text)


def parse_retry_after(value: object, *, now: float | None = None) -> float | None:
    """Seconds to wait, from a ``Retry-After`` header value.

    Accepts delta-seconds (``"120"``, also ``"1.5"`` and finite non-negative
    numbers) and an HTTP-date (``"Wed, 21 Oct 2015 07:28:00 GMT"``), which is
    turned into seconds from ``now`` (Unix time in seconds; the wall clock by
    default). A date in the past gives ``0.0``. Anything else — negative, not
    finite, non-ASCII digits, over 64 characters — gives ``None``. The result
    is not capped here; the classifier caps it (``max_retry_after``).
    """
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        try:
            seconds = float(value)
        except OverflowError:  # an int too large for a float (10**400)
            return None
        # ``+ 0.0`` turns -0.0 into 0.0: a wait is never negative zero.
        return seconds + 0.0 if math.isfinite(seconds) and seconds >= 0 else None
    if not isinstance(value, str) or len(value) > _HEADER_VALUE_LIMIT or not value.isascii():
        return None
    delta = parse_seconds(value)
    if delta is not None:
        return delta
    try:
        when = email.utils.parsedate_to_datetime(value.strip())
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        target = when.timestamp()
    except (TypeError, ValueError, IndexError, OverflowError, OSError):
        return None
    if now is None:
        now = time.time()
    wait = target - now
    return max(0.0, wait) if math.isfinite(wait) else None


def status_in_message(head: str) -> int | None:
    """The HTTP status ccxt put in an error message, if it did.

    ccxt's ``handle_http_status_code`` raises ``"<id> <METHOD> <url> <status>
    <reason> <body>"``; Binance's 418/429 handler raises ``"<id> <status>
    <reason> <body>"``. ``head`` is the message, already cut.
    """
    parts = head.split(" ", 4)
    if len(parts) < 3:
        return None
    if parts[1] in _METHODS:
        return _status(parts[3]) if len(parts) >= 4 else None
    return _status(parts[1])


def _status(token: str) -> int | None:
    if len(token) == 3 and token.isascii() and token.isdigit() and "1" <= token[0] <= "5":
        return int(token)
    return None


def ban_until(head: str) -> float | None:
    """The ban's end (Unix seconds) in Binance's "IP banned until <ms>" text."""
    match = _BANNED_UNTIL.search(head)
    return None if match is None else int(match.group(1)) / 1000.0
