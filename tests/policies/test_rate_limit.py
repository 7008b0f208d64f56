"""RateLimiter: weighted token bucket, FIFO fairness, pauses, budgets, on a FakeClock."""

from __future__ import annotations

import asyncio
import json
import random
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from virtuoso_resilience.clock import MONOTONIC, FakeClock
from virtuoso_resilience.errors import ConfigurationError, RateLimitTimeoutError
from virtuoso_resilience.policies import RateLimiter, RateLimiterConfig

# --------------------------------------------------------------------- helpers


async def settle(rounds: int = 6) -> None:
    """Let every ready task (the limiter's timer, woken waiters) run."""
    for _ in range(rounds):
        await asyncio.sleep(0)


class Recorder:
    """Starts callers and records, for each, when (clock time) it was granted."""

    def __init__(self, limiter: RateLimiter, clock: FakeClock) -> None:
        self.limiter = limiter
        self.clock = clock
        self.granted: list[tuple[Any, float]] = []

    def start(
        self, key: Any, cost: float = 1.0, max_wait: float | None = None
    ) -> asyncio.Task[None]:
        async def caller() -> None:
            await self.limiter.acquire(cost, max_wait=max_wait)
            self.granted.append((key, self.clock.now()))

        return asyncio.create_task(caller())

    @property
    def keys(self) -> list[Any]:
        return [key for key, _ in self.granted]

    def time_of(self, key: Any) -> float:
        return float(dict(self.granted)[key])


async def advance(clock: FakeClock, seconds: float) -> None:
    await settle()
    clock.advance(seconds)
    await settle()


def make(clock: FakeClock, rate: float = 1.0, capacity: float = 5.0) -> RateLimiter:
    return RateLimiter("api", rate=rate, capacity=capacity, clock=clock)


# ------------------------------------------------------------------ the bucket


async def test_burst_up_to_capacity_then_one_token_per_interval(autoclock: FakeClock) -> None:
    limiter = RateLimiter("api", rate=4.0, capacity=3.0, clock=autoclock)
    times = []
    for _ in range(7):
        await limiter.acquire()
        times.append(autoclock.now())
    assert times == [0.0, 0.0, 0.0, 0.25, 0.5, 0.75, 1.0]
    snap = limiter.snapshot()
    assert (snap["granted"], snap["granted_cost"], snap["waited"]) == (7, 7.0, 4)
    assert snap["total_wait_seconds"] == pytest.approx(1.0)  # 4 waits of 0.25 s


async def test_weighted_costs(autoclock: FakeClock) -> None:
    limiter = RateLimiter("api", rate=2.0, capacity=10.0, clock=autoclock)
    await limiter.acquire(10)  # the whole burst
    assert autoclock.now() == 0.0
    await limiter.acquire(4)  # 4 tokens at 2/s
    assert autoclock.now() == 2.0
    await limiter.acquire(0.5)
    assert autoclock.now() == 2.25
    assert limiter.snapshot()["granted_cost"] == 14.5


async def test_tokens_refill_up_to_capacity_only(clock: FakeClock) -> None:
    limiter = make(clock, rate=1.0, capacity=5.0)
    await limiter.acquire(5)
    assert limiter.tokens == 0.0
    clock.advance(2.0)
    assert limiter.tokens == 2.0
    clock.advance(100.0)
    assert limiter.tokens == 5.0


async def test_cost_above_capacity_is_a_clear_error(clock: FakeClock) -> None:
    limiter = make(clock, capacity=5.0)
    with pytest.raises(ConfigurationError) as info:
        await limiter.acquire(6)
    assert isinstance(info.value, ValueError)
    assert info.value.fields == ("cost",)
    message = str(info.value)
    assert "cost=6" in message and "capacity (5 tokens)" in message and "'api'" in message
    for bad in (0, -1.0, float("nan")):
        with pytest.raises(ConfigurationError, match="cost"):
            await limiter.acquire(bad)
    with pytest.raises(ValueError, match="max_wait"):
        await limiter.acquire(1, max_wait=-1.0)
    assert limiter.snapshot()["granted"] == 0
    tiny = RateLimiter("tiny", rate=1.0, capacity=0.5, clock=clock)
    with pytest.raises(ConfigurationError, match="capacity"):
        await tiny.call_async(asyncio.sleep, 0)  # call_async costs 1 token
    assert await tiny.call_weighted_async(0.5, asyncio.sleep, 0, "ok") == "ok"


# -------------------------------------------------------------------- fairness


async def test_a_thousand_waiters_are_released_in_arrival_order(autoclock: FakeClock) -> None:
    limiter = RateLimiter("api", rate=8.0, capacity=10.0, clock=autoclock)
    recorder = Recorder(limiter, autoclock)
    rng = random.Random(42)
    costs = [rng.choice([0.5, 1.0, 2.0, 5.0, 10.0]) for _ in range(1000)]
    tasks = [recorder.start(i, cost) for i, cost in enumerate(costs)]
    await asyncio.gather(*tasks)
    assert recorder.keys == list(range(1000))
    # Each is granted exactly when the tokens for everyone up to it have
    # accrued: max(0, (cumulative cost - capacity) / rate).
    cumulative = 0.0
    for i, cost in enumerate(costs):
        cumulative += cost
        expected = max(0.0, (cumulative - 10.0) / 8.0)
        assert recorder.time_of(i) == pytest.approx(expected, abs=1e-6)
    assert limiter.snapshot()["granted_cost"] == pytest.approx(sum(costs))


async def test_a_costly_head_is_not_starved_by_cheaper_later_callers(clock: FakeClock) -> None:
    limiter = make(clock, rate=1.0, capacity=10.0)
    recorder = Recorder(limiter, clock)
    await limiter.acquire(10)
    big = recorder.start("big", 10)
    await settle()
    small = []
    for i in range(8):  # a small caller every second; each alone would fit
        small.append(recorder.start(i, 1))
        await advance(clock, 1.0)
    assert recorder.granted == []
    await advance(clock, 2.0)  # t = 10
    assert recorder.keys == ["big"]
    assert recorder.time_of("big") == 10.0
    for _ in range(8):
        await advance(clock, 1.0)
    assert recorder.keys == ["big", *range(8)]
    await asyncio.gather(big, *small)


async def test_no_barging_while_someone_waits(clock: FakeClock) -> None:
    limiter = make(clock, rate=1.0, capacity=5.0)
    recorder = Recorder(limiter, clock)
    await limiter.acquire(2)  # 3 tokens left
    head = recorder.start("head", 5)
    await settle()
    newcomer = recorder.start("newcomer", 1)  # 3 tokens would do, but someone waits
    await settle()
    assert recorder.granted == []
    assert limiter.snapshot()["queue_length"] == 2
    await advance(clock, 2.0)
    assert recorder.keys == ["head"]
    await advance(clock, 1.0)
    assert recorder.keys == ["head", "newcomer"]
    await asyncio.gather(head, newcomer)


async def test_several_waiters_released_together_in_order(clock: FakeClock) -> None:
    limiter = make(clock, rate=1.0, capacity=5.0)
    recorder = Recorder(limiter, clock)
    await limiter.acquire(5)
    tasks = [recorder.start(i, 1) for i in range(4)]
    await settle()
    await advance(clock, 3.0)  # three tokens at once: the first three, in order
    assert recorder.keys == [0, 1, 2]
    await advance(clock, 1.0)
    assert recorder.keys == [0, 1, 2, 3]
    await asyncio.gather(*tasks)


# ---------------------------------------------------------------- cancellation


async def test_cancelled_head_lets_the_next_waiter_through(clock: FakeClock) -> None:
    limiter = make(clock, rate=1.0, capacity=5.0)
    recorder = Recorder(limiter, clock)
    await limiter.acquire(4)  # 1 token left
    head = recorder.start("head", 5)
    second = recorder.start("second", 1)
    await settle()
    assert recorder.granted == []
    head.cancel()
    await settle()
    assert head.cancelled()
    assert recorder.granted == [("second", 0.0)]  # the token left was enough
    assert limiter.tokens == 0.0  # the cancelled head took nothing
    await second


async def test_cancelled_middle_waiter_moves_the_rest_up(clock: FakeClock) -> None:
    limiter = make(clock, rate=1.0, capacity=5.0)
    recorder = Recorder(limiter, clock)
    await limiter.acquire(5)
    first = recorder.start("first", 1)
    middle = recorder.start("middle", 3)
    last = recorder.start("last", 1)
    await settle()
    middle.cancel()
    await settle()
    assert limiter.snapshot()["queue_length"] == 2
    await advance(clock, 1.0)
    assert recorder.keys == ["first"]
    await advance(clock, 1.0)
    assert recorder.granted == [("first", 1.0), ("last", 2.0)]  # not 5.0
    await asyncio.gather(first, last)
    assert middle.cancelled()


async def test_cancelled_last_waiter(clock: FakeClock) -> None:
    limiter = make(clock, rate=1.0, capacity=5.0)
    recorder = Recorder(limiter, clock)
    await limiter.acquire(5)
    first = recorder.start("first", 2)
    last = recorder.start("last", 2)
    await settle()
    last.cancel()
    await advance(clock, 2.0)
    assert recorder.keys == ["first"]
    await advance(clock, 10.0)
    assert limiter.tokens == 5.0  # nothing was taken for `last`
    await first
    assert last.cancelled()


async def test_cancelled_after_grant_before_return_gets_a_refund(clock: FakeClock) -> None:
    limiter = make(clock, rate=1.0, capacity=5.0)
    limiter.pause_for(10.0)
    task = asyncio.create_task(limiter.acquire(3))
    await settle()
    clock.advance(1.0)  # paused: 1 s of refill is not granted to anyone
    limiter.resume()  # grants synchronously: the 3 tokens are deducted now...
    assert limiter.tokens == 2.0
    task.cancel()  # ...and the caller is cancelled before it could return
    await settle()
    assert task.cancelled()
    assert limiter.tokens == 5.0  # given back (capped at capacity)
    snap = limiter.snapshot()
    assert (snap["granted"], snap["granted_cost"]) == (0, 0.0)


async def test_refund_goes_to_the_next_waiter(clock: FakeClock) -> None:
    limiter = make(clock, rate=1.0, capacity=5.0)
    recorder = Recorder(limiter, clock)
    await limiter.acquire(5)
    limiter.pause_for(100.0)
    first = recorder.start("first", 4)
    second = recorder.start("second", 4)
    await settle()
    clock.advance(4.0)
    limiter.resume()  # grants `first` (4 tokens), `second` must wait
    first.cancel()
    await settle()
    assert first.cancelled()
    assert recorder.granted == [("second", 4.0)]  # got the refunded tokens at once
    await second


async def test_cancelling_every_waiter_disarms_the_timer(clock: FakeClock) -> None:
    limiter = make(clock, rate=1.0, capacity=1.0)
    await limiter.acquire()
    tasks = [asyncio.create_task(limiter.acquire()) for _ in range(50)]
    await settle()
    assert clock.sleepers == 1  # one timer for the whole line
    for task in tasks:
        task.cancel()
    await settle()
    assert clock.sleepers == 0
    assert limiter.snapshot()["queue_length"] == 0
    await advance(clock, 1.0)
    await limiter.acquire()  # the bucket works as before
    assert limiter.snapshot()["granted"] == 2


async def test_cancellation_while_the_call_runs_keeps_the_tokens_spent(
    clock: FakeClock,
) -> None:
    limiter = make(clock, rate=1.0, capacity=5.0)
    started = asyncio.Event()

    async def slow() -> None:
        started.set()
        await asyncio.Event().wait()

    task = asyncio.create_task(limiter.call_weighted_async(3, slow))
    await started.wait()
    task.cancel()
    await settle()
    assert limiter.tokens == 2.0  # the request went out: no refund


async def test_random_cancellations_keep_order_and_accounting(autoclock: FakeClock) -> None:
    limiter = RateLimiter("api", rate=4.0, capacity=4.0, clock=autoclock)
    recorder = Recorder(limiter, autoclock)
    rng = random.Random(3)
    costs = [rng.choice([1.0, 2.0, 3.0]) for _ in range(300)]
    tasks = [recorder.start(i, c) for i, c in enumerate(costs)]
    await asyncio.sleep(0)
    cancelled = set(rng.sample(range(300), 100))
    for i in cancelled:
        tasks[i].cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    survivors = [i for i in range(300) if not tasks[i].cancelled()]
    assert recorder.keys == survivors
    assert limiter.snapshot()["granted_cost"] == sum(costs[i] for i in survivors)
    # The schedule is the one of the survivors alone, minus those granted
    # before the cancellations landed (at t=0 from the initial burst).
    cumulative = 0.0
    for i in survivors:
        cumulative += costs[i]
        assert recorder.time_of(i) <= max(0.0, (cumulative - 4.0) / 4.0) + 1e-6


# -------------------------------------------------------------------- max_wait


async def test_max_wait_rejects_at_once_when_the_needed_wait_is_longer(
    clock: FakeClock,
) -> None:
    limiter = make(clock, rate=1.0, capacity=5.0)
    recorder = Recorder(limiter, clock)
    await limiter.acquire(5)
    a = recorder.start("a", 3)  # granted at 3
    b = recorder.start("b", 2)  # granted at 5
    await settle()
    with pytest.raises(RateLimitTimeoutError) as info:
        await limiter.acquire(4, max_wait=8.0)  # would be granted at 9
    error = info.value
    assert (error.name, error.cost, error.max_wait) == ("api", 4, 8.0)
    assert error.needed_wait == pytest.approx(9.0)
    assert clock.now() == 0.0  # rejected without waiting
    c = recorder.start("c", 4, max_wait=9.0)  # just fits
    await settle()
    for _ in range(9):
        await advance(clock, 1.0)
    assert recorder.granted == [("a", 3.0), ("b", 5.0), ("c", 9.0)]
    await asyncio.gather(a, b, c)
    snap = limiter.snapshot()
    assert (snap["rejected"], snap["granted"]) == (1, 4)


async def test_max_wait_zero_takes_only_what_is_there(clock: FakeClock) -> None:
    limiter = make(clock, rate=1.0, capacity=2.0)
    await limiter.acquire(1, max_wait=0)
    await limiter.acquire(1, max_wait=0)
    with pytest.raises(RateLimitTimeoutError) as info:
        await limiter.acquire(1, max_wait=0)
    assert info.value.needed_wait == pytest.approx(1.0)


async def test_max_wait_counts_a_pause(clock: FakeClock) -> None:
    limiter = make(clock, rate=1.0, capacity=5.0)
    limiter.pause_for(30.0)
    with pytest.raises(RateLimitTimeoutError) as info:
        await limiter.acquire(1, max_wait=10.0)
    assert info.value.needed_wait == pytest.approx(30.0)


async def test_a_later_pause_rejects_waiters_pushed_past_their_max_wait(
    clock: FakeClock,
) -> None:
    limiter = make(clock, rate=1.0, capacity=5.0)
    recorder = Recorder(limiter, clock)
    await limiter.acquire(5)
    patient = recorder.start("patient", 1)  # no limit
    hasty = recorder.start("hasty", 1, max_wait=5.0)  # due at 2
    await settle()
    limiter.pause_for(20.0)
    await settle()
    assert hasty.done()
    with pytest.raises(RateLimitTimeoutError) as info:
        await hasty
    assert info.value.max_wait == 5.0
    assert info.value.needed_wait == pytest.approx(20.0)  # tokens accrue during the pause
    await advance(clock, 20.0)
    assert recorder.keys == ["patient"]
    await patient
    assert limiter.snapshot()["rejected"] == 1


# ----------------------------------------------------------------------- pause


async def test_pause_until_blocks_every_grant(clock: FakeClock) -> None:
    limiter = make(clock, rate=1.0, capacity=5.0)
    recorder = Recorder(limiter, clock)
    limiter.pause_until(10.0)
    assert limiter.paused_until == 10.0
    tasks = [recorder.start(i, 2) for i in range(3)]  # tokens are there: 5
    await settle()
    await advance(clock, 9.9)
    assert recorder.granted == []
    snap = limiter.snapshot()
    assert snap["paused_until"] == 10.0
    assert snap["pause_remaining"] == pytest.approx(0.1)
    await advance(clock, 0.1)
    # Tokens kept accruing (capped at 5): two are granted at once, the third at 11.
    assert recorder.granted == [(0, 10.0), (1, 10.0)]
    await advance(clock, 1.0)
    assert recorder.granted[2] == (2, 11.0)
    await asyncio.gather(*tasks)
    assert limiter.paused_until is None
    assert limiter.snapshot()["paused_until"] is None


async def test_pause_never_shortens_and_resume_ends_it(clock: FakeClock) -> None:
    limiter = make(clock)
    limiter.pause_for(10.0)
    limiter.pause_for(3.0)  # an earlier end does not shorten the pause
    assert limiter.paused_until == 10.0
    limiter.pause_until(12.0)
    assert limiter.paused_until == 12.0
    task = asyncio.create_task(limiter.acquire())
    await settle()
    assert not task.done()
    limiter.resume()
    await settle()
    assert task.done() and task.exception() is None
    assert limiter.paused_until is None
    await limiter.acquire()  # the fast path is open again
    with pytest.raises(ValueError, match="seconds"):
        limiter.pause_for(-1.0)
    with pytest.raises(ValueError, match="when"):
        limiter.pause_until(float("nan"))


# ---------------------------------------------------------------------- resize


async def test_resize_rate_retimes_the_waiting_head(clock: FakeClock) -> None:
    limiter = make(clock, rate=1.0, capacity=10.0)
    recorder = Recorder(limiter, clock)
    await limiter.acquire(10)
    task = recorder.start("head", 10)  # due at 10 s at 1/s
    await settle()
    await advance(clock, 2.0)  # 2 tokens earned at the old rate
    limiter.resize(rate=4.0)  # 8 more at 4/s: due at 2 + 2 = 4
    await advance(clock, 1.9)
    assert recorder.granted == []
    await advance(clock, 0.1)
    assert recorder.granted == [("head", 4.0)]
    await task
    assert limiter.config.rate == 4.0


async def test_config_assignment_is_a_resize(clock: FakeClock) -> None:
    limiter = make(clock, rate=1.0, capacity=10.0)
    recorder = Recorder(limiter, clock)
    await limiter.acquire(10)
    task = recorder.start("head", 4)
    await settle()
    limiter.config.rate = 2.0
    await advance(clock, 2.0)
    assert recorder.granted == [("head", 2.0)]
    await task
    assert limiter.snapshot()["rate"] == 2.0


async def test_shrinking_capacity_caps_tokens_and_fails_oversized_waiters(
    clock: FakeClock,
) -> None:
    limiter = make(clock, rate=1.0, capacity=10.0)
    recorder = Recorder(limiter, clock)
    await limiter.acquire(9)  # 1 left
    big = recorder.start("big", 8)
    small = recorder.start("small", 2)
    await settle()
    limiter.resize(capacity=4.0)
    await settle()
    with pytest.raises(ConfigurationError, match="capacity"):
        await big
    await advance(clock, 1.0)
    assert recorder.granted == [("small", 1.0)]
    await small
    clock.advance(100.0)
    assert limiter.tokens == 4.0


async def test_growing_capacity_keeps_tokens_and_lets_the_bucket_fill(clock: FakeClock) -> None:
    limiter = make(clock, rate=1.0, capacity=2.0)
    limiter.resize(capacity=6.0)
    assert limiter.tokens == 2.0
    clock.advance(10.0)
    assert limiter.tokens == 6.0
    await limiter.acquire(6)


def test_resize_validates_everything_before_changing_anything(clock: FakeClock) -> None:
    limiter = make(clock, rate=1.0, capacity=5.0)
    with pytest.raises(ConfigurationError) as info:
        limiter.resize(rate=3.0, capacity=-1.0)
    assert info.value.fields == ("capacity",)
    assert (limiter.config.rate, limiter.config.capacity) == (1.0, 5.0)
    assert limiter.snapshot()["rate"] == 1.0
    limiter.resize()  # nothing asked, nothing changed
    assert limiter.config.rate == 1.0


# --------------------------------------------------------------------- headers


async def test_headers_budget_caps_grants_until_the_reset(clock: FakeClock) -> None:
    limiter = make(clock, rate=10.0, capacity=10.0)
    recorder = Recorder(limiter, clock)
    limiter.update_from_headers(limit=600, remaining=3, reset_in=5.0)
    tasks = [recorder.start(i) for i in range(6)]
    await settle()
    assert recorder.keys == [0, 1, 2]  # the bucket has 10, the window only 3
    snap = limiter.snapshot()
    assert snap["budget"] == 0.0 and snap["budget_reset_in"] == 5.0
    assert snap["exchange_limit"] == 600
    await advance(clock, 4.9)
    assert recorder.keys == [0, 1, 2]
    await advance(clock, 0.1)
    assert recorder.keys == [0, 1, 2, 3, 4, 5]  # the window reset: the bucket rules again
    assert [t for _, t in recorder.granted[3:]] == [5.0, 5.0, 5.0]
    await asyncio.gather(*tasks)
    assert limiter.snapshot()["budget"] is None


async def test_headers_same_window_can_only_lower_the_budget(clock: FakeClock) -> None:
    limiter = make(clock, rate=10.0, capacity=10.0)
    limiter.update_from_headers(limit=10, remaining=4, reset_in=1.0)
    clock.advance(0.2)
    # A slower response of the same window reports more remaining: ignored.
    limiter.update_from_headers(limit=10, remaining=8, reset_in=0.8)
    assert limiter.snapshot()["budget"] == 4.0
    limiter.update_from_headers(limit=10, remaining=2, reset_in=0.8)
    assert limiter.snapshot()["budget"] == 2.0
    # A later reset is a new window.
    limiter.update_from_headers(limit=10, remaining=9, reset_in=1.8)
    assert limiter.snapshot()["budget"] == 9.0
    assert limiter.snapshot()["budget_reset_in"] == pytest.approx(1.8)


async def test_headers_budget_is_charged_by_the_fast_path_and_waiters(clock: FakeClock) -> None:
    limiter = make(clock, rate=1.0, capacity=5.0)
    recorder = Recorder(limiter, clock)
    limiter.update_from_headers(limit=10, remaining=6, reset_in=10.0)
    await limiter.acquire(5)  # budget 1 left, bucket empty
    task = recorder.start("w", 2)  # bucket due at 2, budget only at 10
    await settle()
    await advance(clock, 2.0)
    assert recorder.granted == []
    await advance(clock, 8.0)
    assert recorder.granted == [("w", 10.0)]
    await task


async def test_headers_zero_remaining_waits_for_reset_and_max_wait_knows(
    clock: FakeClock,
) -> None:
    limiter = make(clock, rate=1.0, capacity=5.0)
    limiter.update_from_headers(limit=120, remaining=0, reset_in=4.0)
    with pytest.raises(RateLimitTimeoutError) as info:
        await limiter.acquire(1, max_wait=3.0)
    assert info.value.needed_wait == pytest.approx(4.0)
    task = asyncio.create_task(limiter.acquire(1, max_wait=4.0))
    await settle()
    await advance(clock, 4.0)
    assert task.done() and task.exception() is None


async def test_headers_a_smaller_budget_rejects_waiters_past_max_wait(clock: FakeClock) -> None:
    limiter = make(clock, rate=1.0, capacity=5.0)
    await limiter.acquire(5)
    task = asyncio.create_task(limiter.acquire(1, max_wait=2.0))  # due at 1
    await settle()
    limiter.update_from_headers(limit=10, remaining=0, reset_in=30.0)
    await settle()
    with pytest.raises(RateLimitTimeoutError):
        await task


def test_headers_validation_and_zero_reset(clock: FakeClock) -> None:
    limiter = make(clock)
    for kwargs in (
        {"limit": -1, "remaining": 0, "reset_in": 1.0},
        {"limit": 10, "remaining": -1, "reset_in": 1.0},
        {"limit": 10, "remaining": 1, "reset_in": -1.0},
        {"limit": 10, "remaining": 1, "reset_in": float("nan")},
        {"limit": 10, "remaining": 1, "reset_in": float("inf")},
    ):
        with pytest.raises(ValueError, match="update_from_headers"):
            limiter.update_from_headers(**kwargs)  # type: ignore[arg-type]
    limiter.update_from_headers(limit=10, remaining=0, reset_in=0.0)  # already reset
    assert limiter.snapshot()["budget"] is None


# -------------------------------------------------------------- property test


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    rate=st.sampled_from([0.5, 1.0, 3.0, 10.0]),
    capacity=st.sampled_from([1.0, 2.5, 5.0, 20.0]),
    arrivals=st.lists(
        st.tuples(
            st.floats(min_value=0.0, max_value=3.0),  # gap before this caller arrives
            st.floats(min_value=0.1, max_value=1.0),  # cost, as a fraction of capacity
        ),
        min_size=1,
        max_size=40,
    ),
    step=st.sampled_from([0.01, 0.1, 0.37]),
)
def test_throughput_never_exceeds_rate_times_t_plus_capacity(
    rate: float, capacity: float, arrivals: list[tuple[float, float]], step: float
) -> None:
    async def scenario() -> list[tuple[int, float, float]]:
        clock = FakeClock(start=1000.0)
        limiter = RateLimiter("p", rate=rate, capacity=capacity, clock=clock)
        grants: list[tuple[int, float, float]] = []

        async def caller(i: int, cost: float) -> None:
            await limiter.acquire(cost)
            grants.append((i, clock.now(), cost))

        tasks = []
        due = 1000.0
        schedule = []
        for gap, fraction in arrivals:
            due += gap
            schedule.append((due, fraction * capacity))
        pending = list(enumerate(schedule))
        while pending or len(grants) < len(schedule):
            while pending and pending[0][1][0] <= clock.now():
                i, (_, cost) = pending.pop(0)
                tasks.append(asyncio.create_task(caller(i, cost)))
                await asyncio.sleep(0)  # arrival order is the start order
            await settle()
            clock.advance(step)
        await asyncio.gather(*tasks)
        return grants

    grants = asyncio.run(scenario())
    # FIFO, no barging: a later caller is never granted at an earlier time.
    # (Two callers granted at the same instant may resume in either order: a
    # waiter granted by the drain timer resumes one loop step after a newcomer
    # that the bucket can serve at once, behind it in the line.)
    granted_at = {i: t for i, t, _ in grants}
    assert sorted(granted_at) == list(range(len(arrivals)))
    times = [granted_at[i] for i in range(len(arrivals))]
    assert times == sorted(times)
    for a in range(len(grants)):
        for b in range(a, len(grants)):
            spent = sum(cost for _, _, cost in grants[a : b + 1])
            window = grants[b][1] - grants[a][1]
            assert spent <= rate * window + capacity + 1e-6


# ------------------------------------------------------------------ call shapes


async def test_call_shapes(clock: FakeClock) -> None:
    limiter = make(clock, rate=1.0, capacity=10.0)

    async def echo(x: Any, *, y: Any = None) -> Any:
        return (x, y)

    assert await limiter.call_async(echo, 1, y=2) == (1, 2)
    assert await limiter.call_weighted_async(3, echo, "a") == ("a", None)
    async with limiter.limit(2):
        assert limiter.tokens == 4.0
    async with limiter.limit():
        pass

    @limiter
    async def fetch(symbol: str) -> str:
        return symbol

    assert fetch.__name__ == "fetch"
    assert await fetch("BTC/USDT") == "BTC/USDT"
    assert limiter.tokens == 2.0
    assert limiter.snapshot()["granted"] == 5
    with pytest.raises(TypeError, match="async def"):
        limiter(lambda: None)  # type: ignore[arg-type, return-value]


async def test_default_clock_is_monotonic_and_fast_path_needs_no_wait() -> None:
    limiter = RateLimiter("real", rate=1.0, capacity=3.0)
    assert limiter._clock is MONOTONIC
    for _ in range(3):
        await limiter.acquire()
    assert limiter.snapshot()["waited"] == 0


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("rate", 0),
        ("rate", -2.0),
        ("rate", float("inf")),
        ("rate", float("nan")),
        ("rate", "10"),
        ("capacity", 0.0),
        ("capacity", None),
    ],
)
def test_invalid_values_are_rejected(clock: FakeClock, field: str, value: Any) -> None:
    kwargs: dict[str, Any] = {"rate": 1.0, "capacity": 5.0, field: value}
    with pytest.raises(ConfigurationError) as info:
        RateLimiterConfig(**kwargs)
    assert info.value.fields == (field,)
    limiter = make(clock, rate=1.0, capacity=5.0)
    with pytest.raises(ConfigurationError):
        setattr(limiter.config, field, value)
    assert (limiter.config.rate, limiter.config.capacity) == (1.0, 5.0)
    assert limiter.snapshot()["rate"] == 1.0


def test_rate_and_capacity_are_required() -> None:
    with pytest.raises(ConfigurationError) as info:
        RateLimiterConfig(rate=1.0)  # type: ignore[call-arg]
    assert info.value.fields == ("capacity",)


def test_construction_variants(clock: FakeClock) -> None:
    config = RateLimiterConfig(rate=2.0, capacity=4.0)
    limiter = RateLimiter("a", config, clock=clock)
    assert limiter.config is config and config.name == "a"
    assert RateLimiter(rate=1.0, capacity=1.0).name == "rate_limiter"
    with pytest.raises(ConfigurationError, match="name"):
        RateLimiter("b", RateLimiterConfig(name="c", rate=1.0, capacity=1.0))
    with pytest.raises(TypeError, match="not both"):
        RateLimiter("d", config, rate=1.0)


async def test_snapshot_is_json_ready_and_repr_shows_live_state(clock: FakeClock) -> None:
    limiter = make(clock, rate=2.0, capacity=4.0)
    await limiter.acquire(4)
    tasks = [asyncio.create_task(limiter.acquire(1.5)) for _ in range(2)]
    await settle()
    limiter.pause_for(1.0)
    snap = limiter.snapshot()
    assert json.loads(json.dumps(snap)) == snap
    assert snap == {
        "name": "api",
        "kind": "rate_limiter",
        "rate": 2.0,
        "capacity": 4.0,
        "tokens": 0.0,
        "queue_length": 2,
        "queued_cost": 3.0,
        "granted": 1,
        "granted_cost": 4.0,
        "waited": 0,
        "total_wait_seconds": 0.0,
        "rejected": 0,
        "paused_until": 1.0,
        "pause_remaining": 1.0,
        "budget": None,
        "budget_reset_in": None,
        "exchange_limit": None,
    }
    assert repr(limiter) == (
        "<RateLimiter 'api' rate=2/s capacity=4 tokens=0.000 waiting=2 granted=1 "
        "rejected=0 paused_for=1.000s>"
    )
    await advance(clock, 3.0)
    await asyncio.gather(*tasks)
    assert limiter.snapshot()["waited"] == 2


# ------------------------------------------------------------------ edge cases


async def test_shrinking_capacity_below_the_tokens_held_caps_them(clock: FakeClock) -> None:
    limiter = make(clock, rate=1.0, capacity=10.0)
    limiter.config.capacity = 3.0
    assert limiter.tokens == 3.0
    with pytest.raises(ConfigurationError, match="capacity"):
        await limiter.acquire(4)


async def test_max_wait_projection_counts_the_budget_spent_by_those_ahead(
    clock: FakeClock,
) -> None:
    limiter = make(clock, rate=1.0, capacity=5.0)
    await limiter.acquire(4)  # 1 token left
    limiter.update_from_headers(limit=10, remaining=3, reset_in=10.0)
    ahead = asyncio.create_task(limiter.acquire(2))  # at 1 s, leaves a budget of 1
    await settle()
    with pytest.raises(RateLimitTimeoutError) as info:
        await limiter.acquire(2, max_wait=9.0)  # the budget holds it until the reset
    assert info.value.needed_wait == pytest.approx(10.0)
    await advance(clock, 1.0)
    assert ahead.done()
    assert limiter.snapshot()["budget"] == 1.0


async def test_refund_gives_the_window_budget_back_too(clock: FakeClock) -> None:
    limiter = make(clock, rate=1.0, capacity=5.0)
    limiter.update_from_headers(limit=10, remaining=4, reset_in=60.0)
    limiter.pause_for(5.0)
    task = asyncio.create_task(limiter.acquire(3))
    await settle()
    limiter.resume()  # granted: 3 tokens and 3 of the budget
    assert limiter.snapshot()["budget"] == 1.0
    task.cancel()
    await settle()
    assert task.cancelled()
    assert limiter.snapshot()["budget"] == 4.0
    assert limiter.tokens == 5.0


async def test_reprojection_skips_cancelled_waiters(clock: FakeClock) -> None:
    limiter = make(clock, rate=1.0, capacity=5.0)
    recorder = Recorder(limiter, clock)
    await limiter.acquire(5)
    first = recorder.start("first", 1)
    gone = recorder.start("gone", 4)
    last = recorder.start("last", 1, max_wait=10.5)  # due at 6
    await settle()
    gone.cancel()
    # Re-time the line before `gone` has cleaned up. After the pause the bucket
    # holds 5: `first` and `last` go at 10; had `gone` counted, `last` would go
    # at 11, past its max_wait.
    limiter.pause_for(10.0)
    await settle()
    assert not last.done()
    await advance(clock, 10.0)
    assert recorder.granted == [("first", 10.0), ("last", 10.0)]
    await asyncio.gather(first, last)
    assert limiter.snapshot()["rejected"] == 0


async def test_rejected_and_cancelled_at_the_same_moment(clock: FakeClock) -> None:
    limiter = make(clock, rate=1.0, capacity=1.0)
    await limiter.acquire()
    task = asyncio.create_task(limiter.acquire(1, max_wait=2.0))
    await settle()
    limiter.pause_for(10.0)  # rejects the waiter (sets its error)...
    task.cancel()  # ...and the caller is cancelled before it runs
    await settle()
    assert task.cancelled()  # cancellation wins; the error was consumed, not leaked
    assert limiter.snapshot()["queue_length"] == 0


# ------------------------------------------------- hostile inputs (defect 14)


@pytest.mark.parametrize("when", [float("inf"), float("-inf"), float("nan"), 2e9])
def test_pause_until_refuses_non_finite_and_absurd_times(clock: FakeClock, when: float) -> None:
    limiter = make(clock)
    with pytest.raises(ValueError, match=r"pause_until\(when=") as info:
        limiter.pause_until(when)
    assert "finite" in str(info.value) or "at most" in str(info.value)
    assert limiter.paused_until is None  # nothing changed
    json.dumps(limiter.snapshot(), allow_nan=False)


@pytest.mark.parametrize("when", [True, "10", None])
def test_pause_until_refuses_non_numbers(clock: FakeClock, when: Any) -> None:
    limiter = make(clock)
    with pytest.raises(TypeError, match=r"when must be a number"):
        limiter.pause_until(when)
    assert limiter.paused_until is None


@pytest.mark.parametrize("seconds", [float("inf"), float("nan"), -0.5, 1e10, True, "3"])
def test_pause_for_refuses_what_is_not_a_duration(clock: FakeClock, seconds: Any) -> None:
    limiter = make(clock)
    with pytest.raises((TypeError, ValueError), match=r"pause_for\(seconds="):
        limiter.pause_for(seconds)
    assert limiter.paused_until is None


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [
        ({"limit": float("nan"), "remaining": 1, "reset_in": 1.0}, "limit"),
        ({"limit": 10, "remaining": float("inf"), "reset_in": 1.0}, "remaining"),
        ({"limit": 10, "remaining": float("nan"), "reset_in": 1.0}, "remaining"),
        ({"limit": 10, "remaining": 2.5, "reset_in": 1.0}, "remaining"),
        ({"limit": True, "remaining": 1, "reset_in": 1.0}, "limit"),
        ({"limit": 10, "remaining": False, "reset_in": 1.0}, "remaining"),
        ({"limit": "10", "remaining": 1, "reset_in": 1.0}, "limit"),
        ({"limit": 10, "remaining": 1, "reset_in": "1"}, "reset_in"),
        ({"limit": 10, "remaining": 1, "reset_in": 2e9}, "reset_in"),
    ],
)
def test_headers_refuse_nan_inf_bools_and_strings(
    clock: FakeClock, kwargs: dict[str, Any], argument: str
) -> None:
    limiter = make(clock)
    with pytest.raises((TypeError, ValueError), match=rf"update_from_headers\({argument}=") as info:
        limiter.update_from_headers(**kwargs)
    assert argument in str(info.value)
    snap = limiter.snapshot()
    assert (snap["budget"], snap["exchange_limit"]) == (None, None)  # nothing changed
    json.dumps(snap, allow_nan=False)


def test_headers_take_integral_floats_as_counts(clock: FakeClock) -> None:
    limiter = make(clock)
    limiter.update_from_headers(limit=120.0, remaining=5.0, reset_in=2.0)
    snap = limiter.snapshot()
    assert (snap["exchange_limit"], snap["budget"]) == (120, 5.0)
    assert isinstance(snap["exchange_limit"], int)
    json.dumps(snap, allow_nan=False)


@pytest.mark.parametrize("cost", [True, False, "1", None, b"1"])
async def test_acquire_refuses_bools_and_strings_for_a_cost(clock: FakeClock, cost: Any) -> None:
    limiter = make(clock)
    before = limiter.tokens
    with pytest.raises(TypeError, match=r"acquire\(cost=.*cost must be a number"):
        await limiter.acquire(cost)
    assert limiter.tokens == before  # nothing taken
    assert limiter.snapshot()["granted"] == 0


@pytest.mark.parametrize("cost", [float("nan"), float("inf"), -1.0, 0.0, -0.0])
async def test_acquire_refuses_costs_no_bucket_can_grant(clock: FakeClock, cost: float) -> None:
    limiter = make(clock)
    with pytest.raises(ConfigurationError) as info:
        await limiter.acquire(cost)
    assert info.value.fields == ("cost",)


@pytest.mark.parametrize("max_wait", [True, "1", float("nan"), -1.0])
async def test_acquire_refuses_bad_max_waits(clock: FakeClock, max_wait: Any) -> None:
    limiter = make(clock)
    with pytest.raises((TypeError, ValueError), match="max_wait"):
        await limiter.acquire(1.0, max_wait=max_wait)


async def test_snapshot_is_always_json_under_pauses_and_budgets(clock: FakeClock) -> None:
    limiter = make(clock)
    limiter.pause_for(1e9)  # the longest pause allowed
    limiter.update_from_headers(limit=0, remaining=0, reset_in=1e9)
    snap = limiter.snapshot()
    json.dumps(snap, allow_nan=False)
    assert snap["pause_remaining"] == 1e9
    assert "paused_for=" in repr(limiter)


def test_integers_beyond_any_float_are_refused_not_overflowed(clock: FakeClock) -> None:
    limiter = make(clock)
    with pytest.raises(ValueError, match="remaining"):
        limiter.update_from_headers(limit=10, remaining=10**400, reset_in=1.0)
    with pytest.raises(ValueError, match="when"):
        limiter.pause_until(10**400)
    json.dumps(limiter.snapshot(), allow_nan=False)


async def test_errors_for_huge_values_stay_short_and_printable(clock: FakeClock) -> None:
    limiter = make(clock)
    for call in (
        lambda: limiter.pause_until(10**5000),
        lambda: limiter.update_from_headers(limit="9" * 1_000_000, remaining=1, reset_in=1.0),
        lambda: limiter.update_from_headers(limit=10, remaining=10**5000, reset_in=1.0),
    ):
        with pytest.raises((TypeError, ValueError)) as info:
            call()
        assert len(str(info.value)) < 300
    with pytest.raises(ConfigurationError) as cost_info:
        await limiter.acquire(10**5000)
    assert "<int of 16610 bits>" in str(cost_info.value)
