"""OKX error codes where the code says more than ccxt's class.

From the codes ccxt itself maps (``ccxt/async_support/okx.py``,
``exceptions``). An order's own code is in ``data[i].sCode`` (the top-level
``code`` is then a generic ``"1"``), so ``sCode`` is read first. ccxt maps an
HTTP 429 from OKX to ``ExchangeNotAvailable``; the status in the message
makes it a rate limit.
"""

from __future__ import annotations

from typing import Final

from ._outcome import OutcomeKind, Signal
from ._rules import CodeRule, ExchangeTable

__all__ = ["TABLE"]

_T = OutcomeKind.TRANSIENT
_RL = OutcomeKind.RATE_LIMITED
_BZ = OutcomeKind.BUSINESS

TABLE: Final = ExchangeTable(
    "okx",
    code_fields=("sCode", "code"),
    aliases=("myokx", "okxus"),
    codes={
        "50001": (CodeRule(OutcomeKind.MAINTENANCE, Signal.MAINTENANCE),),  # engine upgrading
        # Endpoint request timeout: "does not indicate success or failure of order".
        "50004": (CodeRule(OutcomeKind.AMBIGUOUS),),
        "50011": (CodeRule(_RL, Signal.RATE_LIMIT),),  # request too frequent
        "50061": (CodeRule(_RL, Signal.RATE_LIMIT),),  # account order rate limit (ccxt: generic)
        "50013": (CodeRule(OutcomeKind.AMBIGUOUS),),  # system is busy
        "50026": (CodeRule(OutcomeKind.AMBIGUOUS),),  # system error
        "50102": (CodeRule(_T, Signal.CLOCK_SKEW, refused=True),),  # timestamp request expired
        "51016": (CodeRule(_BZ, Signal.DUPLICATE_CLIENT_ORDER_ID, "duplicate order id"),),
        "51400": (CodeRule(_BZ, Signal.ORDER_NOT_FOUND),),  # cancel: order does not exist
        "51401": (CodeRule(_BZ, Signal.ORDER_NOT_FOUND),),  # cancel: already canceled
        "51402": (CodeRule(_BZ, Signal.ORDER_NOT_FOUND),),  # cancel: already completed
        "51603": (CodeRule(_BZ, Signal.ORDER_NOT_FOUND),),  # order does not exist
        "51410": (CodeRule(_T, Signal.CANCEL_PENDING, refused=True),),  # already cancelling
    },
)
