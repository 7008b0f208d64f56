"""Order safety: a client order id on every order, look-ups instead of blind resends.

The contract (``docs/exchange.md``):

* ``create_order`` always sends a client order id (the caller's, else a new
  one from the venue's codec).
* After an *ambiguous* outcome (timeout, reset, 5xx: the exchange may have
  booked the order) the order is looked up by that id, with backoff. Found:
  it is returned. Confirmed absent: it is sent again, with the same id.
  A duplicate-id rejection proves an earlier attempt landed: look up, return.
* Unresolved after ``order_resolve_timeout``: :class:`OrderStatusUnknownError`
  with the id; the order stays pending (not terminal) and a later
  ``create_order`` with the same id reconciles instead of sending.
"""

from __future__ import annotations

import asyncio
import enum
from dataclasses import dataclass
from typing import Any

from ..classify import OutcomeKind, Signal
from ..clock import Clock
from ._config import ExchangeResilienceConfig, MethodGroup
from ._errors import OrderStatusUnknownError
from ._groups import MethodSpec
from ._protocol import AdapterLike

__all__ = ["OrderState", "OrderTracker", "PendingOrder"]

_CREATE = MethodSpec("create_order", MethodGroup.ORDERS, True)
_CANCEL = MethodSpec("cancel_order", MethodGroup.ORDERS, True)
_LOOKUP = MethodSpec("fetch_order", MethodGroup.ACCOUNT, False)


class OrderState(enum.Enum):
    """Where a pending order stands."""

    SENDING = "sending"
    """A placement is in flight or being resolved."""
    UNKNOWN = "unknown"
    """Its fate could not be learned in time: it may be live."""


@dataclass(frozen=True, slots=True)
class PendingOrder:
    """An order whose fate is not known yet. ``since`` is clock time (seconds)."""

    client_order_id: str
    symbol: str
    type: str
    side: str
    amount: float
    price: float | None
    state: OrderState
    since: float
    attempts: int
    reason: str


class _Absent:
    __slots__ = ()


_ABSENT = _Absent()


class _Entry:
    __slots__ = ("attempts", "busy", "order", "reason", "since", "state")

    def __init__(self, order: tuple[str, str, str, float, float | None], since: float) -> None:
        self.order = order
        self.since = since
        self.state = OrderState.SENDING
        self.attempts = 0
        self.reason = ""
        self.busy = asyncio.Lock()


class OrderTracker:
    """The adapter's pending orders and the create / cancel algorithms."""

    def __init__(
        self, adapter: AdapterLike, config: ExchangeResilienceConfig, clock: Clock
    ) -> None:
        self._adapter = adapter
        self._config = config
        self._clock = clock
        self._pending: dict[str, _Entry] = {}
        self.resends = 0
        self.lookups = 0
        self.reconciled = 0
        self.duplicates = 0

    def __repr__(self) -> str:
        return (
            f"<OrderTracker pending={len(self._pending)} lookups={self.lookups} "
            f"resends={self.resends} duplicates={self.duplicates} reconciled={self.reconciled}>"
        )

    def pending(self) -> list[PendingOrder]:
        return [
            PendingOrder(
                cid, *e.order, state=e.state, since=e.since, attempts=e.attempts, reason=e.reason
            )
            for cid, e in self._pending.items()
        ]

    async def create(
        self,
        symbol: str,
        type: str,
        side: str,
        amount: float,
        price: float | None,
        params: dict[str, Any],
    ) -> Any:
        adapter = self._adapter
        cid, send_params = adapter.codec.take(params, self._config.client_order_id_prefix)
        entry = self._pending.get(cid)
        reconcile = entry is not None
        if entry is None:
            entry = _Entry((symbol, type, side, amount, price), self._clock.now())
            self._pending[cid] = entry
        async with entry.busy:  # one resolution per client order id at a time
            if cid not in self._pending:  # resolved by the caller ahead of us
                self._pending[cid] = entry
                reconcile = True
            entry.state = OrderState.SENDING
            try:
                result = await self._place(
                    cid, entry, symbol, type, side, amount, price, send_params, reconcile
                )
            except OrderStatusUnknownError:
                entry.state = OrderState.UNKNOWN
                raise
            except asyncio.CancelledError:
                # The caller gave up, maybe after the order was sent: it may be live.
                entry.state = OrderState.UNKNOWN
                entry.reason = "cancelled by the caller"
                raise
            except BaseException:
                self._pending.pop(cid, None)
                raise
            self._pending.pop(cid, None)
            return result

    async def _place(
        self,
        cid: str,
        entry: _Entry,
        symbol: str,
        type: str,
        side: str,
        amount: float,
        price: float | None,
        params: dict[str, Any],
        reconcile: bool,
    ) -> Any:
        adapter = self._adapter
        raw: Any = adapter.exchange
        deadline = self._clock.now() + self._config.order_resolve_timeout
        if reconcile:
            found = await self._resolve(cid, entry, symbol, deadline, "reconciling")
            if found is not _ABSENT:
                self.reconciled += 1
                return found
        while True:
            entry.attempts += 1
            try:
                return await adapter._invoke(
                    _CREATE, raw.create_order, (symbol, type, side, amount, price, params), {}
                )
            except Exception as exc:
                outcome = adapter._outcome(exc, True)
                signal = outcome.signal
                if signal is Signal.DUPLICATE_CLIENT_ORDER_ID:
                    self.duplicates += 1
                elif outcome.kind is not OutcomeKind.AMBIGUOUS:
                    raise  # refused: nothing was booked
                entry.reason = outcome.reason or type_name(exc)
                found = await self._resolve(cid, entry, symbol, deadline, entry.reason)
                if found is not _ABSENT:
                    return found
                if signal is Signal.DUPLICATE_CLIENT_ORDER_ID:
                    # The exchange says the id is taken but cannot show it: never resend.
                    raise OrderStatusUnknownError(
                        cid,
                        symbol,
                        self._clock.now() - entry.since,
                        "duplicate id, order not found",
                    ) from exc
                if self._clock.now() >= deadline:
                    raise OrderStatusUnknownError(
                        cid, symbol, self._clock.now() - entry.since, entry.reason
                    ) from exc
                self.resends += 1  # confirmed absent: send again, same id

    async def _resolve(
        self, cid: str, entry: _Entry, symbol: str, deadline: float, reason: str
    ) -> Any:
        """The order with client id ``cid``, or ``_ABSENT`` when the exchange
        confirms it does not know it; :class:`OrderStatusUnknownError` when
        neither is learned before ``deadline``."""
        adapter = self._adapter
        raw: Any = adapter.exchange
        codec = adapter.codec
        params: dict[str, Any] = {codec.lookup_param: cid}
        if adapter.exchange_id == "bybit":
            params["acknowledged"] = True
        config = self._config
        delay = config.order_lookup_base_delay
        last = reason
        while True:
            self.lookups += 1
            try:
                order = await adapter._invoke(_LOOKUP, raw.fetch_order, ("", symbol, params), {})
            except Exception as exc:
                outcome = adapter._outcome(exc, False)
                if outcome.signal is Signal.ORDER_NOT_FOUND:
                    return _ABSENT
                if outcome.kind in (OutcomeKind.BUSINESS, OutcomeKind.PERMANENT):
                    raise OrderStatusUnknownError(
                        cid,
                        symbol,
                        self._clock.now() - entry.since,
                        f"look-up failed: {outcome.reason}",
                    ) from exc
                last = f"{reason}; look-up: {outcome.reason or type_name(exc)}"
            else:
                if isinstance(order, dict) and order.get("clientOrderId") in (cid, None):
                    return order
                last = f"{reason}; look-up answered another order"
            now = self._clock.now()
            if now >= deadline:
                raise OrderStatusUnknownError(cid, symbol, now - entry.since, last)
            await self._clock.sleep(min(delay, max(0.0, deadline - now)))
            delay = min(delay * 2.0, config.order_lookup_max_delay)

    async def cancel(self, id: str, symbol: str | None, params: dict[str, Any]) -> Any:
        adapter = self._adapter
        raw: Any = adapter.exchange
        deadline = self._clock.now() + self._config.order_resolve_timeout
        ambiguous = False
        delay = self._config.order_lookup_base_delay
        while True:
            try:
                return await adapter._invoke(_CANCEL, raw.cancel_order, (id, symbol, params), {})
            except Exception as exc:
                outcome = adapter._outcome(exc, True)
                signal = outcome.signal
                if signal is Signal.ORDER_NOT_FOUND and ambiguous:
                    return await self._gone(id, symbol, exc)
                if signal is Signal.CANCEL_PENDING:
                    ambiguous = True
                elif outcome.kind is OutcomeKind.AMBIGUOUS:
                    ambiguous = True  # a cancel may be sent again: it is idempotent
                else:
                    raise
                now = self._clock.now()
                if now >= deadline:
                    raise
                await self._clock.sleep(min(delay, deadline - now))
                delay = min(delay * 2.0, self._config.order_lookup_max_delay)

    async def _gone(self, id: str, symbol: str | None, cause: Exception) -> Any:
        """The first cancel landed (or the order filled): return the order as it is."""
        adapter = self._adapter
        raw: Any = adapter.exchange
        params: dict[str, Any] = {"acknowledged": True} if adapter.exchange_id == "bybit" else {}
        try:
            return await adapter._invoke(_LOOKUP, raw.fetch_order, (id, symbol, params), {})
        except Exception:
            raise cause from None


def type_name(exc: BaseException) -> str:
    return type(exc).__name__
