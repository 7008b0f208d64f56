"""Client order ids per venue: the parameter name, the rules, a generator."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from typing import Any, Final

from ._errors import InvalidClientOrderIdError

__all__ = ["ClientOrderIdCodec", "codec_for"]


@dataclass(frozen=True, slots=True)
class ClientOrderIdCodec:
    """How one venue names a client order id.

    ``param`` is the venue's request field (``orderLinkId``); ``lookup_param``
    the field that finds an order by it; ``pattern`` the allowed ids;
    ``max_length`` their length; ``separator`` what may join a prefix.
    """

    exchange_id: str
    param: str
    lookup_param: str
    pattern: re.Pattern[str]
    max_length: int
    allowed: str
    separator: str = "-"

    def generate(self, prefix: str) -> str:
        """A fresh, unique id that satisfies the venue's rules."""
        body = secrets.token_hex(12)  # 24 hex digits: 96 random bits
        candidate = f"{prefix}{self.separator}{body}" if prefix else body
        return candidate[: self.max_length]

    def validate(self, value: object, field: str) -> str:
        """``value`` as an id, or :class:`InvalidClientOrderIdError` naming the rule."""
        if not isinstance(value, str):
            raise InvalidClientOrderIdError(
                self.exchange_id, field, repr(value), f"must be a string; {self.allowed}"
            )
        if len(value) > self.max_length or not self.pattern.fullmatch(value):
            raise InvalidClientOrderIdError(self.exchange_id, field, value, self.allowed)
        return value

    def take(self, params: dict[str, Any], prefix: str) -> tuple[str, dict[str, Any]]:
        """The caller's id (from ``clientOrderId`` or the venue field) or a new one,
        and the params to send: the id under ``clientOrderId`` (ccxt maps it to
        the venue field), the venue field removed."""
        out = dict(params)
        given: object = None
        field = "clientOrderId"
        for key in ("clientOrderId", self.param):
            if key in out:
                value = out.pop(key)
                if value is not None:
                    if given is not None and value != given:
                        raise InvalidClientOrderIdError(
                            self.exchange_id,
                            key,
                            str(value),
                            f"conflicts with {field}={given!r}: pass one id",
                        )
                    given, field = value, key
        cid = self.generate(prefix) if given is None else self.validate(given, field)
        out["clientOrderId"] = cid
        return cid, out


# Bybit accepts letters, digits, '-' and '_' (and says <= 36 characters).
_BYBIT: Final = ClientOrderIdCodec(
    "bybit",
    "orderLinkId",
    "orderLinkId",
    re.compile(r"[A-Za-z0-9_-]{1,36}", re.ASCII),
    36,
    "must be 1-36 characters: ASCII letters, digits, '-' or '_'",
)
_BINANCE: Final = ClientOrderIdCodec(
    "binance",
    "newClientOrderId",
    "origClientOrderId",
    re.compile(r"[.A-Z:/a-z0-9_-]{1,36}", re.ASCII),
    36,
    "must match ^[.A-Z:/a-z0-9_-]{1,36}$",
)
_OKX: Final = ClientOrderIdCodec(
    "okx",
    "clOrdId",
    "clOrdId",
    re.compile(r"[A-Za-z0-9]{1,32}", re.ASCII),
    32,
    "must be 1-32 ASCII letters or digits (no hyphens)",
    separator="",
)
_GENERIC: Final = ClientOrderIdCodec(
    "generic",
    "clientOrderId",
    "clientOrderId",
    re.compile(r"[A-Za-z0-9]{1,32}", re.ASCII),
    32,
    "must be 1-32 ASCII letters or digits",
    separator="",
)
_CODECS: Final = {"bybit": _BYBIT, "binance": _BINANCE, "okx": _OKX}


def codec_for(exchange_id: str) -> ClientOrderIdCodec:
    """The codec of ``exchange_id``; a conservative one (32 alphanumerics) otherwise."""
    return _CODECS.get(exchange_id, _GENERIC)
