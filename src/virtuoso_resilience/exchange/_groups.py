"""Which method group a ccxt method belongs to, decided by its name."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from ._config import MethodGroup

__all__ = ["MethodSpec", "spec_for"]

_PRIVATE_READ_PREFIXES: Final = (
    "fetch_balance",
    "fetch_order",  # fetch_order, fetch_orders, fetch_order_trades, fetch_orders_by_status
    "fetch_open_order",
    "fetch_closed_order",
    "fetch_canceled",
    "fetch_my_",
    "fetch_position",
    "fetch_ledger",
    "fetch_deposit",
    "fetch_withdrawal",
    "fetch_transfer",
    "fetch_account",
    "fetch_trading_fee",
    "fetch_leverage",
    "fetch_margin_mode",
    "fetch_borrow",
    "fetch_transactions",
    "fetch_funding_history",
    "fetch_my_liquidations",
    "fetch_isolated_borrow",
    "fetch_cross_borrow",
    "fetch_convert",
)
_PUBLIC_READ: Final = frozenset(
    {"load_markets", "fetch_time", "fetch_status", "fetch_markets", "fetch_currencies"}
)
_TRANSFER_NAMES: Final = ("transfer", "withdraw")
_STALE_KINDS: Final = {
    "fetch_ticker": "ticker",
    "fetch_order_book": "order_book",
    "fetch_ohlcv": "ohlcv",
}


@dataclass(frozen=True, slots=True)
class MethodSpec:
    """How the adapter protects one method: its group, whether it writes, and
    (for market data) the kind of value the stale-data guard keeps."""

    name: str
    group: MethodGroup
    write: bool
    stale_kind: str | None = None


def spec_for(name: str) -> MethodSpec | None:
    """The protection of the ccxt method ``name``; ``None``: not wrapped (passes through)."""
    if name.startswith("_") or name.startswith("watch_") or name.startswith("un_watch"):
        return None
    if name in _PUBLIC_READ:
        return MethodSpec(name, MethodGroup.MARKET_DATA, False)
    if name.startswith("fetch_"):
        if name.startswith(_PRIVATE_READ_PREFIXES):
            return MethodSpec(name, MethodGroup.ACCOUNT, False)
        return MethodSpec(name, MethodGroup.MARKET_DATA, False, _STALE_KINDS.get(name))
    if any(word in name for word in _TRANSFER_NAMES):
        return MethodSpec(name, MethodGroup.TRANSFERS, True)
    if name.startswith(
        (
            "create_",
            "edit_",
            "cancel_",
            "set_",
            "add_margin",
            "reduce_margin",
            "close_",
            "borrow_",
            "repay_",
        )
    ):
        return MethodSpec(name, MethodGroup.ORDERS, True)
    return None
