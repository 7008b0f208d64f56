"""Bybit v5 request authentication (HMAC-SHA256), checked as Bybit checks it.

``X-BAPI-SIGN = hex(HMAC_SHA256(secret, timestamp + apiKey + recvWindow + payload))``
where ``payload`` is the raw query string of a GET or the raw JSON body of a
POST. Error answers use Bybit's codes: 10003 (invalid key), 10002 (timestamp
outside the receive window), 10004 (bad signature). Malformed headers (not
ASCII, undecodable bytes) get the same codes, never an exception. Messages never
contain a secret, a signature or the API key.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping

__all__ = ["AuthFailure", "authenticate", "key_fingerprint", "sign"]

DEFAULT_RECV_WINDOW = 5000
"""Milliseconds, when the client sends no ``X-BAPI-RECV-WINDOW``."""
FUTURE_TOLERANCE_MS = 1000
"""A timestamp may be at most this far (ms) ahead of the server clock."""


class AuthFailure(Exception):
    """A private request failed authentication: ``code`` is the Bybit retCode."""

    def __init__(self, code: int, message: str) -> None:
        self.code = code
        self.message = message
        super().__init__(f"{code}: {message}")


def _utf8(text: str) -> bytes:
    # any str, even one with lone surrogates (undecodable header bytes), encodes
    return text.encode("utf-8", "surrogatepass")


def key_fingerprint(api_key: str) -> str:
    """A stable, non-secret label for an API key: ``key:`` and 10 hex digits of its SHA-256."""
    return "key:" + hashlib.sha256(_utf8(api_key)).hexdigest()[:10]


def sign(secret: str, timestamp: str, api_key: str, recv_window: str, payload: str) -> str:
    """The Bybit v5 signature of a request (hex HMAC-SHA256)."""
    message = _utf8(timestamp + api_key + recv_window + payload)
    return hmac.new(_utf8(secret), message, hashlib.sha256).hexdigest()


def authenticate(
    headers: Mapping[str, str], payload: str, secrets: Mapping[str, str], now_ms: int
) -> str:
    """Check a private request; return its API key or raise :class:`AuthFailure`."""
    api_key = headers.get("X-BAPI-API-KEY", "")
    secret = secrets.get(api_key) if api_key else None
    if secret is None:
        raise AuthFailure(10003, "API key is invalid.")
    raw_ts = headers.get("X-BAPI-TIMESTAMP", "")
    raw_window = headers.get("X-BAPI-RECV-WINDOW", "")
    try:
        timestamp = int(raw_ts)
        recv_window = int(raw_window) if raw_window else DEFAULT_RECV_WINDOW
    except ValueError:
        raise AuthFailure(
            10002, "invalid request, please check your timestamp and recv_window param"
        ) from None
    if not (now_ms - recv_window <= timestamp < now_ms + FUTURE_TOLERANCE_MS):
        raise AuthFailure(
            10002,
            "invalid request, please check your server timestamp or recv_window param. "
            f"req_timestamp[{timestamp}],server_timestamp[{now_ms}],recv_window[{recv_window}]",
        )
    expected = sign(secret, raw_ts, api_key, raw_window, payload)
    given = headers.get("X-BAPI-SIGN", "")
    # compare_digest raises TypeError on non-ASCII str: a garbled signature is just wrong
    if not given.isascii() or not hmac.compare_digest(expected, given.lower()):
        raise AuthFailure(10004, "Error sign, please check your signature generation algorithm.")
    return api_key
