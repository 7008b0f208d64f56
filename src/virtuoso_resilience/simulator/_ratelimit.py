"""Bybit's request budgets: per IP for everything, per API key and endpoint for private calls.

Budgets are rolling windows (a log of request times per client and rule), as
Bybit describes them. A request that would exceed a budget is rejected and
does not consume it; every rejection is recorded as a :class:`Violation`.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType

from ..clock import Clock

__all__ = ["DEFAULT_KEY_LIMITS", "RateLimiter", "Verdict", "Violation"]

DEFAULT_KEY_LIMITS: Mapping[str, int] = MappingProxyType(
    {
        "/v5/order/create": 10,
        "/v5/order/cancel": 10,
        "/v5/order/realtime": 50,
        "/v5/order/history": 50,
        "/v5/account/wallet-balance": 50,
        "/v5/account/info": 50,
        "/v5/user/query-api": 10,
        "/v5/asset/coin/query-info": 5,
    }
)
"""Per-key budgets (requests per second) for the private endpoints served."""


@dataclass(frozen=True, slots=True)
class Violation:
    """One rejected request: who, where, which budget."""

    at: float
    """Wall-clock time of the request (seconds since the epoch)."""
    client: str
    """``ip:<address>`` or ``key:<fingerprint>`` (never the API key itself)."""
    path: str
    rule: str
    """``ip`` (per-IP budget), ``key`` (per-key endpoint budget) or ``fault#<id>``."""
    limit: int
    period: float
    """Window of the budget, seconds."""

    def to_dict(self) -> dict[str, object]:
        return {
            "at": self.at,
            "client": self.client,
            "path": self.path,
            "rule": self.rule,
            "limit": self.limit,
            "period": self.period,
        }


@dataclass(frozen=True, slots=True)
class Verdict:
    """The state of the tightest budget a request was checked against."""

    allowed: bool
    rule: str
    limit: int
    remaining: int
    reset_in: float
    """Seconds until the budget has room again (0 when it has room now)."""
    period: float
    """Window of the budget, seconds."""


_Rule = tuple[str, str, str, int, float]  # name, client, log scope, limit, period


class RateLimiter:
    """Rolling-window budgets keyed by client and rule."""

    __slots__ = ("_logs", "clock", "enabled", "ip_limit", "ip_period", "key_default", "key_limits")

    def __init__(
        self,
        clock: Clock,
        *,
        ip_limit: int,
        ip_period: float,
        key_default: int,
        key_limits: Mapping[str, int] = DEFAULT_KEY_LIMITS,
        enabled: bool = True,
    ) -> None:
        self.clock = clock
        self.ip_limit = ip_limit
        self.ip_period = ip_period
        self.key_default = key_default
        self.key_limits = dict(key_limits)
        self.enabled = enabled
        # rule name -> (client, scope) -> times of the requests in the window
        self._logs: dict[str, dict[tuple[str, str], deque[float]]] = {}

    def reset(self) -> None:
        self._logs.clear()

    def forget(self, rule: str) -> None:
        """Drop the request logs of ``rule`` (e.g. ``fault#3`` once that fault is removed)."""
        self._logs.pop(rule, None)

    def __len__(self) -> int:
        """Number of request logs kept (one per rule and client)."""
        return sum(len(logs) for logs in self._logs.values())

    def check(
        self,
        path: str,
        ip_client: str,
        key_client: str | None,
        extra: Sequence[tuple[str, int, float]] = (),
        *,
        ip: bool = True,
    ) -> Verdict | None:
        """Check (and, if allowed, consume) every budget that applies to this request.

        ``ip=False`` skips the per-IP budget (checked separately, before
        authentication). Returns ``None`` when no budget applies, else the
        verdict of the rejecting budget, or of the tightest one when allowed.
        """
        rules: list[_Rule] = []
        if self.enabled:
            if ip:
                rules.append(("ip", ip_client, "*", self.ip_limit, self.ip_period))
            if key_client is not None:
                limit = self.key_limits.get(path, self.key_default)
                rules.append(("key", key_client, path, limit, 1.0))
        for name, limit, period in extra:
            rules.append((name, key_client or ip_client, "*", limit, period))
        if not rules:
            return None
        now = self.clock.now()
        logs: list[deque[float]] = []
        verdicts: list[Verdict] = []
        for name, client, scope, limit, period in rules:
            by_client = self._logs.get(name)
            if by_client is None:
                by_client = self._logs[name] = {}
            log = by_client.get((client, scope))
            if log is None:
                log = by_client[(client, scope)] = deque()
            horizon = now - period
            while log and log[0] <= horizon:
                log.popleft()
            if len(log) >= limit:
                return Verdict(False, name, limit, 0, max(0.0, log[0] + period - now), period)
            remaining = limit - len(log) - 1
            if remaining > 0:
                reset_in = 0.0
            else:
                reset_in = (log[0] + period - now) if log else period
            verdicts.append(Verdict(True, name, limit, remaining, reset_in, period))
            logs.append(log)
        for log in logs:
            log.append(now)
        # Bybit's headers describe the API (per-key / endpoint) budget; prefer it over the IP one.
        preferred = [v for v in verdicts if v.rule != "ip"] or verdicts
        return min(preferred, key=lambda v: v.remaining)

    def __repr__(self) -> str:
        return (
            f"<RateLimiter enabled={self.enabled} ip={self.ip_limit}/{self.ip_period:g}s "
            f"key_default={self.key_default}/s "
            f"clients={len({k[0] for logs in self._logs.values() for k in logs})}>"
        )
