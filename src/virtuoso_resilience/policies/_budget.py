"""A Finagle-style retry budget.

Retries are paid for by calls: every call deposits ``ratio`` of a retry into
a token bucket whose contents expire after (about) ``ttl`` seconds, every retry
withdraws one whole retry, and a fixed reserve of
``min_retries_per_second * ttl`` retries lets low-traffic callers retry at
all. A failure storm therefore cannot multiply the load on a struggling
service by more than ``1 + ratio`` (plus the reserve).

Time is kept in ten slices of ``ttl / 10`` seconds: a deposit or a
withdrawal expires when its slice leaves the window, between ``0.9 * ttl``
and ``ttl`` seconds after it was made. The bound therefore holds per window
to within one slice (see :class:`RetryBudget`).

Arithmetic is done in integer units of 1/1000 of a retry (as Finagle does),
so ``ratio`` has a resolution of 0.001 and sums are exact.
"""

from __future__ import annotations

import enum
import math
from typing import Final, Literal

from ..clock import MONOTONIC, Clock

__all__ = ["RetryBudget"]

_SCALE = 1000
"""Units per retry."""
_SLICES = 10
"""The window is kept as this many slices of ``ttl / _SLICES`` seconds."""


class _Latest(enum.Enum):
    LATEST = "latest"


_LATEST: Final = _Latest.LATEST
"""``refund()`` without a receipt: the latest withdrawal."""


class RetryBudget:
    """A token bucket of retries over a sliding window of ``ttl`` seconds.

    * :meth:`deposit` credits ``ratio`` retries per call;
    * :meth:`withdraw` (or :meth:`try_withdraw`) takes one retry if the
      balance (live deposits minus live withdrawals plus the reserve) holds
      at least one;
    * :meth:`refund` gives back a withdrawn retry that was not made, as long
      as that withdrawal has not expired yet.

    Time is kept in ten slices of ``ttl / 10`` seconds. A deposit or a
    withdrawal counts until its slice leaves the window: between
    ``0.9 * ttl`` and ``ttl`` seconds after it was made. The reserve,
    ``min_retries_per_second * ttl`` retries, never expires. So the bound
    holds per window to within one slice: in any 10 consecutive slices
    (any span of ``0.9 * ttl`` seconds) at most
    ``ratio * calls + min_retries_per_second * ttl`` retries are granted,
    ``calls`` being those credited in the ``ttl`` seconds before the last of
    them; a span of a full ``ttl`` seconds can straddle 11 slices and so
    see the retries of one more slice.

    ``last_deposit_at`` (clock seconds, default now) is the time calls
    deposited next are taken to have arrived since (see :meth:`deposit`);
    a budget that replaces another passes the old one's
    :attr:`last_deposit_at` so that the calls counted since are not all
    credited to the current slice.

    Time comes from the injected ``clock`` (seconds). Not thread-safe: use it
    from one event loop, like every policy.
    """

    __slots__ = (
        "_amounts",
        "_clock",
        "_deposit_units",
        "_last_deposit_at",
        "_last_withdrawal",
        "_reserve",
        "_slice_ids",
        "_slice_seconds",
        "deposits",
        "min_retries_per_second",
        "ratio",
        "refunds",
        "refused",
        "ttl",
        "withdrawals",
    )

    def __init__(
        self,
        *,
        ttl: float = 10.0,
        ratio: float = 0.2,
        min_retries_per_second: float = 1.0,
        clock: Clock = MONOTONIC,
        last_deposit_at: float | None = None,
    ) -> None:
        if not ttl > 0 or math.isinf(ttl):
            raise ValueError(f"RetryBudget.ttl={ttl!r} must be a finite number of seconds > 0")
        if not ratio >= 0 or math.isinf(ratio):
            raise ValueError(f"RetryBudget.ratio={ratio!r} must be a finite number >= 0")
        if not min_retries_per_second >= 0 or math.isinf(min_retries_per_second):
            raise ValueError(
                f"RetryBudget.min_retries_per_second={min_retries_per_second!r} "
                "must be a finite number >= 0"
            )
        self.ttl = float(ttl)
        self.ratio = float(ratio)
        self.min_retries_per_second = float(min_retries_per_second)
        self._clock = clock
        self._deposit_units = round(ratio * _SCALE)
        self._reserve = round(min_retries_per_second * ttl * _SCALE)
        self._slice_seconds = self.ttl / _SLICES
        self._amounts = [0] * _SLICES
        self._slice_ids = [-_SLICES - 1] * _SLICES
        now = clock.now()
        if last_deposit_at is not None and not (
            math.isfinite(last_deposit_at) and last_deposit_at <= now
        ):
            raise ValueError(
                f"RetryBudget.last_deposit_at={last_deposit_at!r} must be a finite clock time "
                f"<= now ({now!r})"
            )
        self._last_deposit_at = now if last_deposit_at is None else float(last_deposit_at)
        self._last_withdrawal: int | None = None
        self.deposits = 0
        """Calls deposited so far."""
        self.withdrawals = 0
        """Retries granted so far (refunds not subtracted)."""
        self.refused = 0
        """Retries refused because the budget was empty."""
        self.refunds = 0
        """Granted retries given back unused (credited back only while their
        withdrawal had not expired)."""

    # ------------------------------------------------------------- internals

    def _slice_id(self, now: float) -> int:
        return math.floor(now / self._slice_seconds)

    def _add(self, slice_id: int, units: int) -> None:
        pos = slice_id % _SLICES
        if self._slice_ids[pos] != slice_id:
            self._slice_ids[pos] = slice_id
            self._amounts[pos] = units
        else:
            self._amounts[pos] += units

    def _live_units(self, current: int) -> int:
        oldest = current - _SLICES
        total = 0
        for slice_id, amount in zip(self._slice_ids, self._amounts, strict=True):
            if oldest < slice_id <= current:
                total += amount
        return total

    # ------------------------------------------------------------------ API

    def deposit(self, calls: int = 1) -> None:
        """Credit ``calls`` calls (``ratio`` retries each).

        The calls are taken to have arrived evenly since the previous
        deposit, so a caller may count calls cheaply and deposit them in one
        go when a retry is wanted: of calls spread over more than ``ttl``
        seconds only the share that falls inside the window is credited.
        """
        if calls <= 0:
            return
        now = self._clock.now()
        since = self._last_deposit_at
        self._last_deposit_at = now
        self.deposits += calls
        units = calls * self._deposit_units
        if units == 0:
            return
        span = now - since
        if span > self.ttl:
            units = int(units * self.ttl / span)
            since = now - self.ttl
        current = self._slice_id(now)
        first = max(self._slice_id(since), current - _SLICES + 1)
        count = current - first + 1
        each, rest = divmod(units, count)
        if each:
            for slice_id in range(first, current):
                self._add(slice_id, each)
        self._add(current, each + rest)

    @property
    def last_deposit_at(self) -> float:
        """Clock time of the last :meth:`deposit` (or of the budget's creation)."""
        return self._last_deposit_at

    def withdraw(self) -> int | None:
        """Take one retry if the budget holds one.

        Returns a receipt to pass to :meth:`refund` if the retry is not made,
        or ``None`` (counted in :attr:`refused`) when the budget is empty.
        """
        current = self._slice_id(self._clock.now())
        if self._live_units(current) + self._reserve >= _SCALE:
            self._add(current, -_SCALE)
            self.withdrawals += 1
            self._last_withdrawal = current
            return current
        self.refused += 1
        return None

    def try_withdraw(self) -> bool:
        """Take one retry if the budget holds one; ``False`` (counted) if not."""
        return self.withdraw() is not None

    def refund(self, receipt: int | Literal[_Latest.LATEST] | None = _LATEST) -> bool:
        """Give back one retry taken by :meth:`withdraw` and not made.

        ``receipt`` is what :meth:`withdraw` returned; left out, the latest
        withdrawal. The retry is credited back to the slice it was taken
        from, so it expires when the withdrawal would have; a withdrawal
        that has already expired is not credited (the balance already
        stopped counting it). Either way the refund is counted in
        :attr:`refunds`. A ``None`` receipt (a refused withdrawal) gives back
        nothing and is not counted. Returns whether the balance was credited.
        """
        if receipt is _LATEST:
            receipt = self._last_withdrawal
        if receipt is None:
            return False  # nothing was withdrawn
        self.refunds += 1
        current = self._slice_id(self._clock.now())
        pos = receipt % _SLICES
        if current - _SLICES < receipt <= current and self._slice_ids[pos] == receipt:
            self._amounts[pos] += _SCALE
            return True
        return False

    @property
    def balance(self) -> float:
        """Retries that could be withdrawn now (live deposits - withdrawals + reserve)."""
        current = self._slice_id(self._clock.now())
        return (self._live_units(current) + self._reserve) / _SCALE

    @property
    def reserve(self) -> float:
        """The never-expiring floor: ``min_retries_per_second * ttl`` retries."""
        return self._reserve / _SCALE

    def snapshot(self) -> dict[str, float | int]:
        """JSON-ready state and counters."""
        return {
            "balance": self.balance,
            "ratio": self.ratio,
            "ttl": self.ttl,
            "min_retries_per_second": self.min_retries_per_second,
            "deposits": self.deposits,
            "withdrawals": self.withdrawals,
            "refunds": self.refunds,
            "refused": self.refused,
        }

    def __repr__(self) -> str:
        return (
            f"<RetryBudget balance={self.balance:g} ratio={self.ratio:g} ttl={self.ttl:g}s "
            f"min_retries_per_second={self.min_retries_per_second:g} "
            f"withdrawals={self.withdrawals} refused={self.refused}>"
        )
