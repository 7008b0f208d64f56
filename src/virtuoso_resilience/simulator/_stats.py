"""Request and violation counters of a simulator, and their frozen snapshot."""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from ._ratelimit import Violation

__all__ = ["VIOLATIONS_KEPT", "Counters", "SimulatorStats"]

VIOLATIONS_KEPT = 1000
"""How many violation records are kept (the most recent); counts stay exact."""


@dataclass(frozen=True, slots=True)
class SimulatorStats:
    """What a simulator received and did, at one moment.

    Clients are named ``ip:<address>`` (public requests, and private ones
    without an API key) or ``key:<fingerprint>`` (see ``key_fingerprint``).
    """

    seed: int
    requests_total: int
    by_path: Mapping[str, int]
    by_client: Mapping[str, int]
    violations_total: int
    """Every budget violation since the start (or the last reset)."""
    violations: tuple[Violation, ...]
    """The most recent ``VIOLATIONS_KEPT`` (1000) violation records, oldest first."""
    faults_fired: Mapping[str, int]
    orders_created: int
    orders_filled: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "seed": self.seed,
            "requests_total": self.requests_total,
            "by_path": dict(self.by_path),
            "by_client": dict(self.by_client),
            "violations_total": self.violations_total,
            "violations": [v.to_dict() for v in self.violations],
            "faults_fired": dict(self.faults_fired),
            "orders_created": self.orders_created,
            "orders_filled": self.orders_filled,
        }


class Counters:
    """Plain counters, updated once per request; snapshots are built when asked.

    Violation counts are exact; only the most recent ``keep`` violation
    records are kept.
    """

    __slots__ = (
        "by_client",
        "by_client_path",
        "by_path",
        "total",
        "violations",
        "violations_by_client_path",
        "violations_total",
    )

    def __init__(self, keep: int = VIOLATIONS_KEPT) -> None:
        self.total = 0
        self.by_path: dict[str, int] = {}
        self.by_client: dict[str, int] = {}
        self.by_client_path: dict[tuple[str, str], int] = {}
        self.violations: deque[Violation] = deque(maxlen=keep)
        self.violations_total = 0
        self.violations_by_client_path: dict[tuple[str, str], int] = {}

    def record(self, path: str, client: str) -> None:
        self.total += 1
        self.by_path[path] = self.by_path.get(path, 0) + 1
        self.by_client[client] = self.by_client.get(client, 0) + 1
        key = (client, path)
        self.by_client_path[key] = self.by_client_path.get(key, 0) + 1

    def record_violation(self, violation: Violation) -> None:
        self.violations.append(violation)
        self.violations_total += 1
        key = (violation.client, violation.path)
        self.violations_by_client_path[key] = self.violations_by_client_path.get(key, 0) + 1

    def violation_count(self, path: str | None, client: str | None) -> int:
        """Exact number of violations, optionally for one path and/or client."""
        if path is None and client is None:
            return self.violations_total
        return sum(
            n
            for (c, p), n in self.violations_by_client_path.items()
            if (path is None or p == path) and (client is None or c == client)
        )

    def count(self, path: str | None, client: str | None) -> int:
        if path is None and client is None:
            return self.total
        if client is None:
            return self.by_path.get(path, 0) if path is not None else self.total
        if path is None:
            return self.by_client.get(client, 0)
        return self.by_client_path.get((client, path), 0)

    def reset(self) -> None:
        self.total = 0
        self.by_path.clear()
        self.by_client.clear()
        self.by_client_path.clear()
        self.violations.clear()
        self.violations_total = 0
        self.violations_by_client_path.clear()

    def snapshot(
        self, seed: int, faults_fired: Mapping[str, int], created: int, filled: int
    ) -> SimulatorStats:
        return SimulatorStats(
            seed=seed,
            requests_total=self.total,
            by_path=MappingProxyType(dict(self.by_path)),
            by_client=MappingProxyType(dict(self.by_client)),
            violations_total=self.violations_total,
            violations=tuple(self.violations),
            faults_fired=MappingProxyType(dict(faults_fired)),
            orders_created=created,
            orders_filled=filled,
        )
