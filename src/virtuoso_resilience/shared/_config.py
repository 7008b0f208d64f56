"""Settings of the shared budget."""

from __future__ import annotations

from typing import Literal, Self

from pydantic import model_validator

from .._model import ConfigModel, Count, PositiveFloat, PositiveRatio, PositiveSeconds, RuleError

__all__ = ["BudgetWindow", "SharedBudgetConfig"]


class BudgetWindow(ConfigModel):
    """One of an account's limits: ``limit`` cost units per ``seconds``.

    The shared bucket of this window refills ``limit / seconds`` per second and
    holds at most ``burst`` (default: a tenth of ``limit``, at least 1). Any
    rolling ``seconds`` then grants at most ``limit + burst``: set ``limit``
    with that margin below the exchange's own number.
    """

    limit: PositiveFloat
    """Cost units (ccxt's ``cost``) allowed per window."""
    seconds: PositiveSeconds
    """The window's length, seconds."""
    burst: PositiveFloat | None = None
    """Bucket capacity, cost units (None: ``max(1, limit / 10)``)."""

    @property
    def rate(self) -> float:
        """Refill, cost units per second."""
        return self.limit / self.seconds

    @property
    def capacity(self) -> float:
        return self.burst if self.burst is not None else max(1.0, self.limit / 10.0)


class SharedBudgetConfig(ConfigModel):
    """How one process takes its part of a shared budget (durations in seconds)."""

    expected_processes: Count = 1
    """Processes sharing the account: sizes leases and the local share while Redis is down."""
    local_share: PositiveRatio | None = None
    """Fraction of each window a process may use alone while Redis is down
    (None: ``1 / expected_processes``)."""
    lease_ttl: PositiveSeconds = 0.2
    """Seconds a lease may be spent before its rest is dropped."""
    max_lease_fraction: PositiveRatio = 0.5
    """Leases held by all processes together stay under this fraction of the
    smallest bucket: each process's lease is at most ``fraction * capacity /
    expected_processes`` (but at least one call's cost)."""
    on_outage: Literal["local", "wait"] = "local"
    """Redis down: ``"local"`` (fail open to the local share) or ``"wait"``
    (fail closed: callers wait until Redis is back)."""
    max_wait: PositiveSeconds = 5.0
    """Longest single sleep while the shared budget says wait, seconds."""

    @model_validator(mode="after")
    def _share_fits(self) -> Self:
        share, processes = self.local_share, self.expected_processes
        if share is not None and share * processes > 1.0 + 1e-9:
            raise RuleError(
                {"local_share": share, "expected_processes": processes},
                f"local_share ({share!r}) times expected_processes ({processes!r}) "
                "must be <= 1: the processes together would break the limit",
            )
        return self
