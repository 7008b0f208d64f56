"""How values are stored: one documented format, pluggable.

:class:`JsonSerializer` (the default) stores

- ``bytes`` (and ``bytearray``, ``memoryview``) as the byte ``0xFF``
  followed by the bytes themselves, unchanged. ``0xFF`` never occurs in
  UTF-8, so it can never start a JSON text: the two kinds cannot be confused.
- every other value as compact JSON text in UTF-8 (``{"a":1}``): ``None``,
  ``bool``, ``int``, finite ``float``, ``str``, and lists/tuples and dicts
  (with ``str`` keys) of those. A tuple reads back as a list. NaN and
  infinities are refused (JSON has no such numbers), and so are other types.

Another process can read a JSON value with any memcached or Redis client.

:class:`BytesSerializer` stores bytes exactly as given (no marker) and
refuses everything else. Any object with ``dumps(value) -> bytes`` and
``loads(data) -> value`` can be passed as ``serializer=``.
"""

from __future__ import annotations

import json
from typing import Any, Protocol, runtime_checkable

__all__ = ["BytesSerializer", "CacheValueError", "JsonSerializer", "Serializer"]

_BYTES_MARK = b"\xff"
_MARK = 0xFF


class CacheValueError(ValueError):
    """A value the serializer cannot store (the reason says why)."""


@runtime_checkable
class Serializer(Protocol):
    """Turns values into the bytes stored in the backend and back."""

    def dumps(self, value: Any) -> bytes:
        """The bytes to store for ``value``; raise ``ValueError``/``TypeError`` if it cannot."""
        ...

    def loads(self, data: bytes) -> Any:
        """The value stored as ``data``."""
        ...


_encoder = json.JSONEncoder(
    ensure_ascii=False, allow_nan=False, separators=(",", ":"), check_circular=True
)
_decoder = json.JSONDecoder()


class JsonSerializer:
    """JSON text for JSON-compatible values; bytes pass through after a 0xFF marker."""

    __slots__ = ()

    def dumps(self, value: Any) -> bytes:
        if isinstance(value, bytes | bytearray | memoryview):
            return _BYTES_MARK + bytes(value)
        try:
            return _encoder.encode(value).encode("utf-8")
        except RecursionError:
            raise CacheValueError("value is nested too deeply to store as JSON") from None
        except (TypeError, ValueError) as exc:
            # json's own words: "Object of type set is not JSON serializable",
            # "Out of range float values are not JSON compliant", "Circular reference".
            raise CacheValueError(f"value cannot be stored as JSON: {exc}") from None
        except UnicodeEncodeError:
            raise CacheValueError("value holds a str that is not valid UTF-8") from None

    def loads(self, data: bytes) -> Any:
        if data[:1] == _BYTES_MARK:
            return data[1:]
        return _decoder.decode(data.decode("utf-8"))

    def __repr__(self) -> str:
        return "JsonSerializer()"


class BytesSerializer:
    """Stores ``bytes`` exactly as given; refuses every other type."""

    __slots__ = ()

    def dumps(self, value: Any) -> bytes:
        if isinstance(value, bytes | bytearray | memoryview):
            return bytes(value)
        raise CacheValueError(
            f"BytesSerializer stores bytes only, not {type(value).__name__} "
            "(use JsonSerializer, the default, for other values)"
        )

    def loads(self, data: bytes) -> Any:
        return data

    def __repr__(self) -> str:
        return "BytesSerializer()"
