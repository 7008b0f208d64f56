"""Threshold rules as properties over arbitrary pass/fail sequences (hypothesis)."""

from __future__ import annotations

import asyncio

from hypothesis import given, settings
from hypothesis import strategies as st

from virtuoso_resilience.clock import FakeClock
from virtuoso_resilience.health import (
    HealthCheckConfig,
    HealthService,
    ServiceStatus,
    SimpleHealthCheck,
)

S = ServiceStatus


async def play(outcomes: list[bool], failure_threshold: int, success_threshold: int) -> list[S]:
    service = HealthService(clock=FakeClock())
    feed = iter(outcomes)
    config = HealthCheckConfig(
        failure_threshold=failure_threshold, success_threshold=success_threshold
    )
    service.register_health_check(SimpleHealthCheck("x", lambda: next(feed), config))
    seen = [(await service.run_check("x")).status for _ in outcomes]
    await service.stop()
    return seen


@settings(max_examples=150, deadline=None)
@given(
    outcomes=st.lists(st.booleans(), min_size=1, max_size=30),
    failure_threshold=st.integers(1, 5),
    success_threshold=st.integers(1, 4),
)
def test_threshold_properties(
    outcomes: list[bool], failure_threshold: int, success_threshold: int
) -> None:
    seen = asyncio.run(play(outcomes, failure_threshold, success_threshold))
    fails = passes = 0
    ever_tripped = False
    for ok, status in zip(outcomes, seen, strict=True):
        fails = 0 if ok else fails + 1
        passes = passes + 1 if ok else 0
        ever_tripped = ever_tripped or fails >= failure_threshold
        # Only ever one of the three statuses a plain check can have.
        assert status in (S.HEALTHY, S.DEGRADED, S.UNHEALTHY)
        # failure_threshold consecutive failures always mean UNHEALTHY.
        if fails >= failure_threshold:
            assert status is S.UNHEALTHY
        # Never UNHEALTHY without having reached the threshold at some point.
        if not ever_tripped:
            assert status is not S.UNHEALTHY
        # success_threshold consecutive successes always mean HEALTHY.
        if passes >= success_threshold:
            assert status is S.HEALTHY
        # A failing run is never reported HEALTHY.
        if not ok:
            assert status is not S.HEALTHY
