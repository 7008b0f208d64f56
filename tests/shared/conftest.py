"""Fixtures: a private redis-server per test, and a Bybit-dialect simulator."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from procs import kill_all
from redis_server import RedisServer

from virtuoso_resilience.simulator import Simulator


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.kill()


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    async with Simulator(seed=3) as simulator:
        yield simulator


@pytest.fixture
async def quiet_sim() -> AsyncIterator[Simulator]:
    """Without the venue's own budgets (for tests about something else)."""
    async with Simulator(seed=4, rate_limits=False) as simulator:
        yield simulator


@pytest.fixture(autouse=True)
async def _no_worker_left() -> AsyncIterator[None]:
    yield
    await kill_all()
