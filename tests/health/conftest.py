"""Fixtures for the health tests: a service on virtual time and a loop settler."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from virtuoso_resilience.clock import FakeClock
from virtuoso_resilience.health import HealthService

Settle = Callable[..., Awaitable[None]]


async def _settle(rounds: int = 40) -> None:
    """Let every ready task run until the loop is quiet (no time passes)."""
    for _ in range(rounds):
        await asyncio.sleep(0)


@pytest.fixture
def settle() -> Settle:
    return _settle


@pytest.fixture
async def service(clock: FakeClock) -> AsyncIterator[HealthService]:
    svc = HealthService(clock=clock, listener_timeout=5.0)
    try:
        yield svc
    finally:
        await svc.stop()


class Script:
    """A check function that plays back outcomes, then repeats the last one.

    An outcome is returned, or raised when it is an exception.
    """

    def __init__(self, *outcomes: Any) -> None:
        self.outcomes = list(outcomes) or [True]
        self.calls = 0

    async def __call__(self) -> Any:
        outcome = self.outcomes[min(self.calls, len(self.outcomes) - 1)]
        self.calls += 1
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome


@pytest.fixture
def script() -> type[Script]:
    return Script
