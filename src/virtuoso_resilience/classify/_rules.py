"""The shapes of the tables: a rule per exception class, a rule per exchange code.

A library table (``_ccxt.py``, ``_aiohttp.py``, ...) maps a module name to
``(class name, rule)`` pairs; it names classes as strings, so importing a
table imports nothing from the library. An exchange table (``_bybit.py``, ...)
maps that exchange's error codes to :class:`CodeRule` values. A new
dependency or exchange adds a table, not a branch in the classifier.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

from ._outcome import OutcomeKind, Signal

__all__ = ["CodeRule", "ExchangeTable", "LibraryTable", "Rule"]


@dataclass(frozen=True, slots=True)
class Rule:
    """What an exception class means (private: the library tables use it)."""

    kind: OutcomeKind
    ambiguous_on_write: bool = False
    """A write that failed this way may have reached the server."""
    note: str = ""
    """Appended to the reason (``"DuplicateOrderId: duplicate order id"``)."""
    signal: Signal | None = None
    """What an adapter must do (``InvalidNonce`` -> :attr:`Signal.CLOCK_SKEW`)."""
    retry_attr: str | None = None
    """An attribute holding the seconds to wait (this library's own errors only)."""
    maintenance_hint: bool = False
    """A message that mentions maintenance means MAINTENANCE (ccxt raises
    ``ExchangeNotAvailable`` for an HTTP 503 "under maintenance" page)."""
    by_status: bool = False
    """ccxt raises this class for HTTP statuses (``httpExceptions``): the status
    in the message, or the one attached, decides (404 is permanent, 418 a ban)."""


LibraryTable = tuple[tuple[str, Rule], ...]
"""``(class name, rule)`` pairs of one module."""


@dataclass(frozen=True, slots=True)
class CodeRule:
    """What one exchange error code means.

    ``kind`` is the :class:`OutcomeKind` (on a write, ``TRANSIENT`` becomes
    ``AMBIGUOUS`` unless ``refused`` or the ccxt class is itself a refusal;
    ``AMBIGUOUS`` means transient on reads and ambiguous on writes).
    ``signal`` tells an adapter what to do. ``note`` is appended to the
    reason. ``text``, when set, restricts the rule to messages that contain
    it (case-insensitive), for codes that mean several things (Binance -2010
    is a duplicate only when the message says "Duplicate order sent").
    ``refused=True`` says the exchange refused the request before acting, so
    a write failing this way is not ambiguous.
    """

    kind: OutcomeKind
    signal: Signal | None = None
    note: str = ""
    text: str | None = None
    refused: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.kind, OutcomeKind) or self.kind is OutcomeKind.SUCCESS:
            raise ValueError(
                f"CodeRule.kind={self.kind!r} is invalid: must be an OutcomeKind other than SUCCESS"
            )
        if self.signal is not None and not isinstance(self.signal, Signal):
            raise ValueError(
                f"CodeRule.signal={self.signal!r} is invalid: must be a Signal or None"
            )
        if self.text is not None:
            if not isinstance(self.text, str) or not self.text.strip():
                raise ValueError(
                    f"CodeRule.text={self.text!r} is invalid: must be a non-empty str or None"
                )
            object.__setattr__(self, "text", self.text.lower())


@dataclass(frozen=True, slots=True)
class ExchangeTable:
    """One exchange's error codes, and where its answers put them.

    ``code_fields`` are the JSON keys holding the code, tried in order (OKX
    puts an order's own code in ``sCode`` and a generic ``"1"`` in ``code``).
    ``codes`` maps a code (a normalised string: ``"10006"``, ``"-1021"``) to
    its rules, tried in order; the first whose ``text`` matches (or that has
    none) applies. ``forbidden_is_ban`` says an HTTP 403 from this exchange
    is an IP ban (Bybit). ``aliases`` are the ccxt ids of the same family
    (``binanceusdm``, ``okxus``) the table also applies to.
    """

    exchange_id: str
    code_fields: tuple[str, ...]
    codes: Mapping[str, tuple[CodeRule, ...]] = field(default_factory=dict)
    forbidden_is_ban: bool = False
    aliases: tuple[str, ...] = ()
    """ccxt ids of the same family that share these codes (``binanceusdm``)."""


DEFAULT_CODE_FIELDS: Final = ("retCode", "ret_code", "sCode", "code")
"""Where the code is looked for in an exchange without a built-in table."""
