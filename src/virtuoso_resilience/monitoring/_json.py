"""JSON bodies that are always valid JSON, whatever a snapshot holds."""

from __future__ import annotations

import dataclasses
import enum
import json
import math
from collections.abc import Mapping
from typing import Any, Final

__all__ = ["dumps", "plain", "short", "top_level"]

_MAX_DEPTH: Final = 32
_MAX_INT_BITS: Final = 1024


def plain(value: Any, depth: int = 0) -> Any:
    """``value`` as JSON-ready data: enums by value, dataclasses and
    ``as_dict()`` objects as mappings, non-finite floats as None, anything
    unknown as ``"<TypeName>"`` (never its ``str``, which could hold a secret)."""
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int):  # json cannot print ints beyond ~4300 digits
        return value if value.bit_length() <= _MAX_INT_BITS else "<int too large>"
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if depth >= _MAX_DEPTH:
        return "<nested too deep>"
    if isinstance(value, enum.Enum):
        return plain(value.value, depth + 1)
    if isinstance(value, Mapping):
        return {str(plain(k, depth + 1)): plain(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [plain(v, depth + 1) for v in value]
    as_dict = getattr(value, "as_dict", None)
    if callable(as_dict):
        return plain(as_dict(), depth + 1)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return plain(dataclasses.asdict(value), depth + 1)
    return f"<{type(value).__name__}>"


_COMPACT: Final[dict[str, Any]] = {"ensure_ascii": False, "separators": (",", ":")}


def _default(value: Any) -> Any:
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, set | frozenset):
        return list(value)
    as_dict = getattr(value, "as_dict", None)
    if callable(as_dict):
        return as_dict()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    return f"<{type(value).__name__}>"


def top_level(snapshot: Any) -> Any:
    """A snapshot as a mapping where it is one (``as_dict()``, a dataclass, a
    mapping), converting only the outer level; :func:`dumps` does the rest."""
    as_dict = getattr(snapshot, "as_dict", None)
    if callable(as_dict):
        return as_dict()
    if isinstance(snapshot, Mapping):
        return dict(snapshot)
    if dataclasses.is_dataclass(snapshot) and not isinstance(snapshot, type):
        return dataclasses.asdict(snapshot)
    return snapshot


def dumps(value: Any) -> bytes:
    """Compact UTF-8 JSON of ``plain(value)`` (never NaN or Infinity).

    The common case goes straight through :func:`json.dumps`; only a value
    it refuses (NaN or infinity, a key that is not a scalar, nesting deeper
    than the recursion limit) takes the slower :func:`plain` walk.
    """
    try:
        text = json.dumps(value, allow_nan=False, default=_default, **_COMPACT)
    except (ValueError, TypeError, RecursionError):
        text = json.dumps(plain(value), allow_nan=False, **_COMPACT)
    return text.encode()


def short(text: str, limit: int = 120) -> str:
    """``text`` quoted and cut to ``limit`` characters, for an error message."""
    cleaned = "".join(ch if ch.isprintable() else "?" for ch in text[: limit + 1])
    if len(cleaned) > limit:
        cleaned = cleaned[:limit] + "…"
    return repr(cleaned)
