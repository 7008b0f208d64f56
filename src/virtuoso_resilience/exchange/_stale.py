"""The stale-data guard: the last good ticker / order book / candles per symbol.

While the exchange is unavailable, the last good value may be served,
marked with its age, as long as it is no older than the kind's
``max_staleness``; otherwise the caller gets the original error. A strategy
never receives a stale value it did not accept by configuration.
"""

from __future__ import annotations

from typing import Any, Final

from ..classify import Outcome, OutcomeKind
from ..clock import Clock
from ._config import ExchangeResilienceConfig
from ._groups import MethodSpec

__all__ = ["StaleCache", "StaleDict", "StaleList"]

_SERVABLE: Final = frozenset(
    {
        OutcomeKind.TRANSIENT,
        OutcomeKind.RATE_LIMITED,
        OutcomeKind.REJECTED,
        OutcomeKind.MAINTENANCE,
        OutcomeKind.AMBIGUOUS,
    }
)


class StaleDict(dict[str, Any]):
    """A cached ticker or order book served while the exchange is unavailable.

    ``age`` (seconds) and ``stale`` (``True``) are attributes; the dict also
    carries ``"stale": True`` and ``"staleAge"`` (seconds) beside ccxt's keys.
    """

    age: float
    stale: bool = True


class StaleList(list[Any]):
    """Cached candles (ccxt's OHLCV list) served while the exchange is unavailable;
    ``age`` (seconds) and ``stale`` are attributes."""

    age: float
    stale: bool = True


def _key(args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[str, str] | None:
    symbol = args[0] if args else kwargs.get("symbol")
    if not isinstance(symbol, str):
        return None
    if len(args) == 1 and not kwargs:
        return symbol, ""
    rest = repr((args[1:], sorted(kwargs.items())))
    if len(rest) > 512:
        return None
    return symbol, rest


class StaleCache:
    """Last good values per (method, symbol, other arguments)."""

    def __init__(self, config: ExchangeResilienceConfig, clock: Clock) -> None:
        self._config = config
        self._clock = clock
        self._values: dict[tuple[str, str, str], tuple[Any, float]] = {}
        self._latest: dict[tuple[str, str], float] = {}
        self.served = 0
        self.refused = 0

    def _max(self, kind: str) -> float | None:
        value: float | None = getattr(self._config, f"{kind}_max_staleness")
        return value

    def store(
        self, spec: MethodSpec, args: tuple[Any, ...], kwargs: dict[str, Any], value: Any
    ) -> None:
        key = _key(args, kwargs)
        if key is None or spec.stale_kind is None or self._max(spec.stale_kind) is None:
            return
        now = self._clock.now()
        self._values[(spec.name, key[0], key[1])] = (value, now)
        self._latest[(spec.name, key[0])] = now

    def age(self, method: str, symbol: str) -> float | None:
        stamp = self._latest.get((method, symbol))
        return None if stamp is None else max(0.0, self._clock.now() - stamp)

    def serve_or_raise(
        self,
        spec: MethodSpec,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        error: Exception,
        outcome: Outcome,
        paused: bool = False,
    ) -> Any:
        """The cached value if the failure means "unavailable" and it is fresh
        enough; else ``error`` is raised. ``paused``: the adapter itself held the
        call back (maintenance, ban)."""
        key = _key(args, kwargs)
        limit = self._max(spec.stale_kind) if spec.stale_kind else None
        if key is None or limit is None or not (paused or outcome.kind in _SERVABLE):
            raise error
        found = self._values.get((spec.name, key[0], key[1]))
        if found is None:
            raise error
        value, stamp = found
        age = max(0.0, self._clock.now() - stamp)
        if age > limit:
            self.refused += 1
            error.add_note(
                f"stale {spec.stale_kind} for {key[0]} refused: "
                f"{age:.3f}s old > max_staleness {limit}s"
            )
            raise error
        self.served += 1
        if isinstance(value, dict):
            mapping = StaleDict(value)
            mapping["stale"] = True
            mapping["staleAge"] = age
            mapping.age = age
            return mapping
        if isinstance(value, list):
            candles = StaleList(value)
            candles.age = age
            return candles
        raise error

    def __repr__(self) -> str:
        return (
            f"<StaleCache values={len(self._values)} served={self.served} refused={self.refused}>"
        )
