"""The shared budget against a private redis-server: outages, pauses, corrections."""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from redis_server import RedisServer

from virtuoso_resilience import ServiceStatus
from virtuoso_resilience.errors import ConfigurationError
from virtuoso_resilience.shared import (
    BudgetWindow,
    RedisLink,
    SharedBudget,
    SharedBudgetConfig,
    SharedStateHealthCheck,
    redact_url,
)

WIDE = [BudgetWindow(limit=5000, seconds=1.0, burst=500)]

Make = Callable[..., SharedBudget]


@pytest.fixture
async def make(redis_server: RedisServer) -> AsyncIterator[Make]:
    made: list[tuple[SharedBudget, RedisLink]] = []

    def factory(
        windows: list[BudgetWindow] = WIDE,
        config: SharedBudgetConfig | None = None,
        *,
        rejoin: float = 0.2,
        listen: bool = True,
        url: str | None = None,
    ) -> SharedBudget:
        link = RedisLink(url or redis_server.url, timeout=0.1, rejoin_interval=rejoin)
        budget = SharedBudget(link, "acct", windows, config)
        if listen:
            budget.start()
        made.append((budget, link))
        return budget

    yield factory
    for budget, link in made:
        await budget.close()
        await link.close()


async def until(check: Callable[[], bool], step: Callable[[], Awaitable[object]]) -> None:
    """Run ``step`` until ``check()`` holds (at most 400 steps)."""
    for _ in range(400):
        if check():
            return
        await step()
    raise AssertionError("condition never held")


def nap() -> Awaitable[None]:
    return asyncio.sleep(0.01)


async def test_leases_serve_most_calls_without_a_round_trip(make: Make) -> None:
    # Below the budget (the common case): one lease serves many calls.
    budget = make([BudgetWindow(limit=1_000_000, seconds=1.0, burst=2000)])
    for _ in range(1000):
        await budget.acquire(1.0)
    assert budget.round_trips <= 1000 / 100  # leases of up to 1000 units
    assert budget.local_grants == 0 and not budget.degraded


async def test_redis_killed_mid_run_no_caller_error_then_rejoin(
    make: Make, redis_server: RedisServer
) -> None:
    budget = make(config=SharedBudgetConfig(expected_processes=4))
    done = 0

    async def caller() -> None:
        nonlocal done
        for _ in range(50):
            await budget.acquire(1.0)
            done += 1
            await asyncio.sleep(0)

    callers = [asyncio.create_task(caller()) for _ in range(20)]
    await until(lambda: done >= 100, nap)
    redis_server.kill()
    await asyncio.gather(*callers)  # no caller sees the outage
    assert done == 1000
    await until(lambda: budget.degraded, lambda: budget.acquire(1.0))
    local_before = budget.local_grants
    await budget.acquire(1.0)
    assert budget.local_grants == local_before + 1
    assert budget.snapshot()["degraded"] is True
    redis_server.start()
    grants = budget.grants
    await until(lambda: budget.grants > grants, lambda: budget.acquire(1.0))
    assert not budget.degraded


async def test_no_round_trip_while_redis_is_down(make: Make, redis_server: RedisServer) -> None:
    budget = make(rejoin=600.0)  # no trial during the test
    await budget.acquire(1.0)
    redis_server.kill()
    await until(lambda: budget.degraded, lambda: budget.acquire(400.0))
    link = budget._link
    calls = link.calls
    for _ in range(200):
        await budget.acquire(1.0)
    assert link.calls == calls  # zero Redis round trips
    assert budget.degraded and budget.local_grants >= 1


async def test_a_stopped_redis_costs_one_timeout_then_local(
    make: Make, redis_server: RedisServer
) -> None:
    budget = make(rejoin=600.0)
    await budget.acquire(1.0)
    redis_server.stop()  # SIGSTOP: connections stay open, nothing answers
    try:
        # Spend the lease, then the next refill meets the silent server.
        await asyncio.wait_for(until(lambda: budget.degraded, lambda: budget.acquire(50.0)), 30)
        assert budget._link.failures >= 1
        assert "TimeoutError" in (budget._link.last_error or "")
        for _ in range(10):
            await budget.acquire(1.0)
    finally:
        redis_server.cont()


async def test_fail_closed_waits_for_redis_and_never_raises(
    make: Make, redis_server: RedisServer
) -> None:
    budget = make(config=SharedBudgetConfig(on_outage="wait"), rejoin=0.1)
    await budget.acquire(1.0)
    redis_server.kill()
    task = asyncio.create_task(budget.acquire(500.0))
    await until(lambda: budget.waits >= 3, nap)
    assert not task.done()  # fail closed: nothing granted while Redis is down
    redis_server.start()
    await asyncio.wait_for(task, 30)
    assert budget.local_grants == 0


async def test_a_pause_reaches_every_process(make: Make) -> None:
    a, b = make(), make()
    silent = make(listen=False)  # never hears pub/sub: meets the pause key
    await a.acquire(1.0)
    await b.acquire(1.0)
    await until(lambda: a._listener is not None and b._listener is not None, nap)
    await asyncio.sleep(0.05)  # subscriptions established
    a.pause(30.0)
    await until(lambda: b.pauses_received >= 1, nap)
    assert b.snapshot()["paused_for"] > 20
    assert b.snapshot()["lease"] == 0  # held tokens dropped at once
    waiting = asyncio.create_task(silent.acquire(1.0))
    await until(lambda: silent.waits >= 1, nap)
    assert not waiting.done()
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting


async def test_a_header_correction_lowers_the_shared_bucket(make: Make) -> None:
    windows = [BudgetWindow(limit=10, seconds=60.0, burst=10)]
    a, b = make(windows), make(windows)
    await a.acquire(1.0)
    a.correct(0, 0.0)
    await until(lambda: not a._tasks, nap)
    waiting = asyncio.create_task(b.acquire(1.0))
    await until(lambda: b.waits >= 1, nap)
    assert not waiting.done()
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting


async def test_a_restarted_server_gets_the_scripts_again(
    make: Make, redis_server: RedisServer
) -> None:
    budget = make(rejoin=0.05)
    await budget.acquire(1.0)
    redis_server.restart()  # script cache gone: NOSCRIPT, loaded again
    grants = budget.grants
    await until(lambda: budget.grants > grants, lambda: budget.acquire(300.0))


async def test_several_windows_the_tightest_decides(make: Make) -> None:
    windows = [
        BudgetWindow(limit=1000, seconds=1.0, burst=100),
        BudgetWindow(limit=5, seconds=3600.0, burst=5),  # e.g. orders per day
    ]
    budget = make(windows)
    for _ in range(5):
        await budget.acquire(1.0)
    waiting = asyncio.create_task(budget.acquire(1.0))
    await until(lambda: budget.waits >= 1, nap)
    assert not waiting.done()
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting


@pytest.mark.parametrize("cost", [math.nan, math.inf, -math.inf, -1.0, 0.0, -0.0])
async def test_hostile_costs_count_as_one(make: Make, cost: float) -> None:
    budget = make()
    await budget.acquire(cost)
    assert budget.snapshot()["lease"] < 500


@pytest.mark.parametrize("seconds", [math.nan, math.inf, -1.0, 0.0])
async def test_hostile_pauses_are_ignored(make: Make, seconds: float) -> None:
    budget = make()
    budget.pause(seconds)
    budget.correct(0, seconds)
    budget.correct(7, 1.0)
    assert budget.snapshot()["paused_for"] == 0
    await budget.acquire(1.0)


def test_local_share_cannot_exceed_the_limit() -> None:
    with pytest.raises(ConfigurationError) as info:
        SharedBudgetConfig(expected_processes=4, local_share=0.5)
    assert "local_share" in str(info.value) and "expected_processes" in str(info.value)
    with pytest.raises(ValueError, match="at least one"):
        SharedBudget(RedisLink("redis://127.0.0.1:1/0"), "a", [])


async def test_the_password_never_shows(tmp_path: object) -> None:
    url = "redis://user:s3cr3t-pw@127.0.0.1:1/0"  # nothing listens on port 1
    link = RedisLink(url, timeout=0.1)
    budget = SharedBudget(link, "a", WIDE)
    await budget.acquire(1.0)  # falls back to the local share
    assert budget.degraded
    shown = " ".join([repr(link), str(link.snapshot()), repr(budget), str(budget.snapshot())])
    assert "s3cr3t" not in shown and "127.0.0.1:1" in shown
    assert redact_url(url) == "redis://***@127.0.0.1:1/0"
    await link.close()


async def test_health_is_degraded_while_redis_is_down(redis_server: RedisServer) -> None:
    link = RedisLink(redis_server.url, timeout=0.1, rejoin_interval=0.05)
    check = SharedStateHealthCheck(link)
    assert (await check.check()).status is ServiceStatus.HEALTHY
    redis_server.kill()
    result = await check.check()
    assert result.status is ServiceStatus.DEGRADED and result.details["up"] is False
    redis_server.start()

    async def later() -> None:
        await asyncio.sleep(0.02)
        await check.check()

    await until(lambda: link.up, later)
    assert (await check.check()).status is ServiceStatus.HEALTHY
    await link.close()
