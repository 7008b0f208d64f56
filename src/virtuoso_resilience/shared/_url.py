"""State URLs: which backend, and a form that is safe to show (no password)."""

from __future__ import annotations

from typing import Final
from urllib.parse import urlsplit, urlunsplit

__all__ = ["JOURNAL_SCHEMES", "SHARED_SCHEMES", "check_url", "redact_url"]

SHARED_SCHEMES: Final = frozenset({"redis", "rediss", "unix"})
"""Schemes ``shared_state_url`` accepts."""
JOURNAL_SCHEMES: Final = frozenset({"sqlite", "redis", "rediss", "unix"})
"""Schemes ``order_journal_url`` accepts."""


def redact_url(url: str) -> str:
    """``url`` without its password (and user): safe for logs, reprs, errors."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        return "<unparseable url>"
    netloc = host if port is None else f"{host}:{port}"
    if parts.username is not None or parts.password is not None:
        netloc = "***@" + netloc
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def check_url(url: str, schemes: frozenset[str]) -> str:
    """``url`` if its scheme is one of ``schemes``; else a ``ValueError`` whose
    message shows the URL redacted."""
    if not isinstance(url, str):
        raise ValueError(f"must be a URL string, not {type(url).__name__}")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - validates the port
    except ValueError as exc:
        raise ValueError(f"{redact_url(url)} is not a valid URL: {_safe(exc, url)}") from None
    allowed = ", ".join(f"{s}://" for s in sorted(schemes))
    if parts.scheme not in schemes:
        raise ValueError(f"{redact_url(url)}: the scheme must be one of {allowed}")
    if parts.scheme == "sqlite" and not parts.path.strip("/"):
        raise ValueError(f"{redact_url(url)}: a sqlite URL needs a file path (sqlite:///path)")
    if parts.scheme in ("redis", "rediss") and not parts.hostname:
        raise ValueError(f"{redact_url(url)}: a redis URL needs a host")
    return url


def _safe(exc: Exception, url: str) -> str:
    text = str(exc)
    password = None
    try:
        password = urlsplit(url).password
    except ValueError:
        pass
    return text.replace(password, "***") if password else text
