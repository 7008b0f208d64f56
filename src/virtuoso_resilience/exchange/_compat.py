"""The classifier API the adapter needs (``Signal``, ``attach_response``).

Temporary: until the classify package lands on this branch, a stand-in with
the same names; removed by the merge.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Any

__all__ = ["Signal", "attach_response", "signal_of", "status_of"]

try:
    from ..classify import Signal, attach_response  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover

    class Signal(enum.Enum):  # type: ignore[no-redef]
        CLOCK_SKEW = "clock_skew"
        IP_BAN = "ip_ban"
        DUPLICATE_CLIENT_ORDER_ID = "duplicate_client_order_id"
        ORDER_NOT_FOUND = "order_not_found"
        CANCEL_PENDING = "cancel_pending"
        RATE_LIMIT = "rate_limit"
        MAINTENANCE = "maintenance"

    def attach_response(
        exc: BaseException,
        *,
        status: int | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Any:
        return exc


def signal_of(outcome: object) -> Signal | None:
    value = getattr(outcome, "signal", None)
    return value if isinstance(value, Signal) else None


def status_of(outcome: object) -> int | None:
    value = getattr(outcome, "status", None)
    return value if isinstance(value, int) else None
