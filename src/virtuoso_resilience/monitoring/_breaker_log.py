"""A bounded log of circuit-breaker state changes, fed by breaker listeners."""

from __future__ import annotations

import contextlib
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ..policies.circuit_breaker import CircuitBreaker

__all__ = ["BreakerEvent", "BreakerEventLog"]


@dataclass(frozen=True, slots=True)
class BreakerEvent:
    """One state change. ``at`` is the breaker clock's time (seconds),
    ``time`` the wall-clock time (ISO 8601, UTC); ``source`` is ``"api"`` for
    a change made through the monitoring API, else ``"breaker"``."""

    id: int
    name: str
    previous: str
    current: str
    reason: str
    source: str
    at: float
    time: str

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready mapping."""
        return {
            "id": self.id,
            "name": self.name,
            "previous": self.previous,
            "current": self.current,
            "reason": self.reason,
            "source": self.source,
            "at": self.at,
            "time": self.time,
        }


def _iso(timestamp: float) -> str:
    moment = datetime.fromtimestamp(timestamp, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class BreakerEventLog:
    """Keeps the last ``size`` state changes of the breakers it watches.

    :meth:`watch` takes the current breakers by name: it subscribes to new
    ones (``add_listener(on_state_change=...)``), and unsubscribes from
    breakers that were removed or replaced. ``on_change`` is called after
    every recorded change (the monitoring API drops its cached bodies).
    """

    def __init__(self, size: int, on_change: Callable[[], None] | None = None) -> None:
        self._events: deque[BreakerEvent] = deque(maxlen=size)
        self._watched: dict[str, CircuitBreaker] = {}
        self._next_id = 1
        self._manual: str | None = None
        self._on_change = on_change

    @property
    def size(self) -> int:
        """How many events are kept at most."""
        return self._events.maxlen or 0

    @property
    def total(self) -> int:
        """Events recorded since the log was made (kept or dropped)."""
        return self._next_id - 1

    @property
    def watched(self) -> tuple[str, ...]:
        """Names of the breakers listened to."""
        return tuple(self._watched)

    def watch(self, breakers: Mapping[str, Any]) -> bool:
        """Follow exactly ``breakers`` (a name → breaker mapping); True if that changed."""
        changed = False
        for name in [n for n, cb in self._watched.items() if breakers.get(n) is not cb]:
            self._watched.pop(name).remove_listener(self._record)
            changed = True
        for name, cb in breakers.items():
            if name not in self._watched and isinstance(cb, CircuitBreaker):
                cb.add_listener(on_state_change=self._record)
                self._watched[name] = cb
                changed = True
        return changed

    def close(self) -> None:
        """Stop listening to every breaker."""
        for cb in self._watched.values():
            cb.remove_listener(self._record)
        self._watched.clear()

    @contextlib.contextmanager
    def manual(self, name: str) -> Iterator[None]:
        """Changes of breaker ``name`` inside the block are marked ``source="api"``."""
        self._manual = name
        try:
            yield
        finally:
            self._manual = None

    def _record(self, event: Any) -> None:
        # event: the breaker's StateChangeEvent (name, previous, current, reason, at)
        source = "api" if self._manual == event.name else "breaker"
        self._events.append(
            BreakerEvent(
                id=self._next_id,
                name=event.name,
                previous=event.previous.value,
                current=event.current.value,
                reason=event.reason,
                source=source,
                at=event.at,
                time=_iso(time.time()),
            )
        )
        self._next_id += 1
        if self._on_change is not None:
            self._on_change()

    def events(
        self, *, name: str | None = None, after: int = 0, limit: int | None = None
    ) -> list[BreakerEvent]:
        """The kept events, oldest first: only ``name``'s, only with ``id > after``,
        the newest ``limit`` of them."""
        found = [e for e in self._events if e.id > after and (name is None or e.name == name)]
        if limit is not None and len(found) > limit:
            found = found[-limit:]
        return found

    def __repr__(self) -> str:
        return (
            f"<BreakerEventLog watched={len(self._watched)} kept={len(self._events)}/"
            f"{self.size} total={self.total}>"
        )
