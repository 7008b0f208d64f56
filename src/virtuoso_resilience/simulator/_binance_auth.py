"""Binance signed-endpoint authentication (HMAC-SHA256), checked as Binance checks it.

``signature = hex(HMAC_SHA256(secret, totalParams))`` where ``totalParams`` is
the raw query string concatenated with the raw request body, both without
their ``signature`` parameter. The API key travels in the ``X-MBX-APIKEY``
header; ``timestamp`` (ms) and the optional ``recvWindow`` (ms, default 5000,
at most 60000) are parameters. A request is accepted when
``timestamp < serverTime + 1000`` and ``serverTime - timestamp <= recvWindow``.

Failures raise :class:`~._binance_errors.BinanceError` with Binance's codes
and messages; a message never contains a secret, a signature or the API key.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping

from ._binance_errors import BinanceError, mandatory

__all__ = ["DEFAULT_RECV_WINDOW", "MAX_RECV_WINDOW", "authenticate", "sign", "strip_signature"]

DEFAULT_RECV_WINDOW = 5000
"""Milliseconds, when the request has no ``recvWindow``."""
MAX_RECV_WINDOW = 60000
"""The largest ``recvWindow`` Binance accepts (ms)."""
FUTURE_TOLERANCE_MS = 1000
"""A timestamp may be at most this far (ms) ahead of the server clock."""


def _utf8(text: str) -> bytes:
    return text.encode("utf-8", "surrogatepass")


def sign(secret: str, total_params: str) -> str:
    """Binance's HMAC-SHA256 signature of ``total_params`` (lowercase hex)."""
    return hmac.new(_utf8(secret), _utf8(total_params), hashlib.sha256).hexdigest()


def strip_signature(raw: str) -> tuple[str, list[str]]:
    """``raw`` without its ``signature=`` pairs, and the signature values found (still encoded)."""
    if "signature=" not in raw:
        return raw, []
    kept: list[str] = []
    found: list[str] = []
    for pair in raw.split("&"):
        if pair.startswith("signature="):
            found.append(pair[len("signature=") :])
        else:
            kept.append(pair)
    return "&".join(kept), found


def _millis(raw: str | None, name: str) -> int:
    if raw is None or raw == "" or not raw.isascii() or not raw.isdigit() or len(raw) > 20:
        raise mandatory(name)
    return int(raw)


def authenticate(
    headers: Mapping[str, str],
    query: str,
    body: str,
    params: Mapping[str, str],
    secrets: Mapping[str, str],
    now_ms: int,
) -> str:
    """Check a signed request; return its API key or raise :class:`BinanceError`.

    ``query`` and ``body`` are the raw (still percent-encoded) texts;
    ``params`` their parsed union.
    """
    api_key = headers.get("X-MBX-APIKEY", "")
    if not api_key:
        raise BinanceError(-2014, "API-key format invalid.", status=401)
    secret = secrets.get(api_key)
    if secret is None:
        raise BinanceError(-2015, "Invalid API-key, IP, or permissions for action.", status=401)
    timestamp = _millis(params.get("timestamp"), "timestamp")
    raw_window = params.get("recvWindow")
    recv_window = DEFAULT_RECV_WINDOW if raw_window is None else _millis(raw_window, "recvWindow")
    if recv_window > MAX_RECV_WINDOW:
        raise BinanceError(-1131, f"recvWindow must be less than {MAX_RECV_WINDOW}.")
    unsigned_query, in_query = strip_signature(query)
    unsigned_body, in_body = strip_signature(body)
    given = in_query + in_body
    if len(given) != 1 or not given[0]:
        raise mandatory("signature")
    if timestamp >= now_ms + FUTURE_TOLERANCE_MS:
        raise BinanceError(
            -1021, "Timestamp for this request was 1000ms ahead of the server's time."
        )
    if now_ms - timestamp > recv_window:
        raise BinanceError(-1021, "Timestamp for this request is outside of the recvWindow.")
    expected = sign(secret, unsigned_query + unsigned_body)
    signature = given[0]
    # compare_digest raises TypeError on non-ASCII str: a garbled signature is just wrong
    if not signature.isascii() or not hmac.compare_digest(expected, signature.lower()):
        raise BinanceError(-1022, "Signature for this request is not valid.")
    return api_key
