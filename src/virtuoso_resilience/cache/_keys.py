"""Cache keys: validated, never mangled.

A key is a ``str`` of 1 to ``max_bytes`` bytes once encoded as UTF-8, with no
whitespace and no control characters (what memcached's text protocol allows;
Redis is held to the same rule so that a key works on both). A bad key raises
:class:`InvalidCacheKeyError` naming the key, what is wrong and what is
allowed; it is never silently rewritten, hashed or truncated.
"""

from __future__ import annotations

import re

__all__ = ["InvalidCacheKeyError", "check_key"]

# Whitespace (unicode-aware \s) and the C0/DEL/C1 control characters.
_BAD = re.compile("[\\s\x00-\x1f\x7f-\x9f]")
_SHOWN = 60


def _shown(key: str) -> str:
    """The key as shown in an error: its repr, cut to a readable length."""
    text = repr(key)
    return text if len(text) <= _SHOWN else text[: _SHOWN - 4] + "...'"


class InvalidCacheKeyError(ValueError):
    """A key the cache refuses. ``key`` is the key given, ``reason`` what is wrong."""

    def __init__(self, key: object, reason: str, max_bytes: int) -> None:
        self.key = key
        self.reason = reason
        self.max_bytes = max_bytes
        shown = _shown(key) if isinstance(key, str) else f"of type {type(key).__name__}"
        super().__init__(
            f"cache key {shown} is invalid: {reason} (allowed: a str of 1 to {max_bytes} "
            "bytes in UTF-8, without whitespace or control characters)"
        )


def check_key(key: object, max_bytes: int) -> str:
    """Return ``key`` unchanged if it is valid, else raise :class:`InvalidCacheKeyError`."""
    # The common case, at C speed: printable ASCII without spaces.
    if (
        type(key) is str
        and key.isascii()
        and 0 < len(key) <= max_bytes
        and key.isprintable()
        and " " not in key
    ):
        return key
    if not isinstance(key, str):
        raise InvalidCacheKeyError(key, "not a str", max_bytes)
    if not key:
        raise InvalidCacheKeyError(key, "empty", max_bytes)
    bad = _BAD.search(key)
    if bad is not None:
        char = bad.group()
        what = "whitespace" if char.isspace() else "a control character"
        raise InvalidCacheKeyError(
            key, f"contains {what} ({char!r}) at position {bad.start()}", max_bytes
        )
    try:
        size = len(key.encode("utf-8"))
    except UnicodeEncodeError:
        raise InvalidCacheKeyError(
            key, "not encodable as UTF-8 (a lone surrogate)", max_bytes
        ) from None
    if size > max_bytes:
        raise InvalidCacheKeyError(key, f"{size} bytes long", max_bytes)
    return key
