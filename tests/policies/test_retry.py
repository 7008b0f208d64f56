"""RetryPolicy, RetryConfig, RetryBudget and the @retry decorator, on virtual time."""

from __future__ import annotations

import asyncio
import json
import logging
import random
from collections.abc import Awaitable
from typing import Any

import ccxt
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from virtuoso_resilience.classify import DEFAULT_CLASSIFIER, Outcome, OutcomeKind
from virtuoso_resilience.clock import FakeClock
from virtuoso_resilience.errors import (
    CircuitOpenError,
    ConfigurationError,
    RateLimitTimeoutError,
)
from virtuoso_resilience.policies import (
    BackoffStrategy,
    JitterMode,
    RetryBudget,
    RetryConfig,
    RetryEvent,
    RetryMetrics,
    RetryPolicy,
    retry,
)
from virtuoso_resilience.policies._backoff import Backoff

NONE = JitterMode.NONE

# --------------------------------------------------------------------- helpers


class Script:
    """An async operation that plays a script: exceptions are raised, values returned."""

    def __init__(self, *steps: object, clock: FakeClock | None = None, takes: float = 0.0):
        self.steps = list(steps)
        self.calls = 0
        self.clock = clock
        self.takes = takes

    async def __call__(self, *args: object, **kwargs: object) -> object:
        self.calls += 1
        if self.clock is not None and self.takes:
            await self.clock.sleep(self.takes)
        step = self.steps.pop(0) if len(self.steps) > 1 else self.steps[0]
        if isinstance(step, BaseException):
            raise step
        return step


class CountingClock:
    """Delegates to a FakeClock and counts what the policy asks of it."""

    def __init__(self, inner: FakeClock) -> None:
        self.inner = inner
        self.reads = 0
        self.sleeps: list[tuple[float, float]] = []  # (start, seconds)

    def now(self) -> float:
        self.reads += 1
        return self.inner.now()

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append((self.inner.now(), seconds))
        await self.inner.sleep(seconds)


class CountingClassifier:
    """The default classifier, recording every question it is asked."""

    def __init__(self) -> None:
        self.asked: list[tuple[str, bool, str | None]] = []

    def classify(
        self, error: BaseException | None, *, write: bool = False, exchange_id: str | None = None
    ) -> Outcome:
        self.asked.append((type(error).__name__, write, exchange_id))
        return DEFAULT_CLASSIFIER.classify(error, write=write, exchange_id=exchange_id)


def transient() -> Exception:
    error: Exception = ccxt.NetworkError("connection reset by peer")
    return error


def policy_on(clock: Any, **settings: Any) -> RetryPolicy:
    settings.setdefault("jitter", NONE)
    settings.setdefault("budget_ratio", None)
    return RetryPolicy(clock=clock, rng=random.Random(0), **settings)


async def drive(clock: FakeClock, awaitable: Awaitable[Any], step: float = 0.25) -> Any:
    """Run ``awaitable`` while moving virtual time forward whenever it is waiting."""
    task = asyncio.ensure_future(awaitable)
    while not task.done():
        for _ in range(5):
            await asyncio.sleep(0)
        if clock.sleepers:
            clock.advance(step)
    return task.result()


# --------------------------------------------------------------------- basics


async def test_first_try_success_touches_neither_clock_nor_classifier(
    clock: FakeClock,
) -> None:
    counting = CountingClock(clock)
    classifier = CountingClassifier()
    policy = RetryPolicy(clock=counting, classifier=classifier)  # type: ignore[arg-type]
    counting.reads = 0  # the budget notes its creation time
    op = Script("ok")
    for _ in range(10):
        assert await policy.call_async(op, "BTC/USDT", limit=5) == "ok"
    assert counting.reads == 0
    assert counting.sleeps == []
    assert classifier.asked == []
    m = policy.metrics
    assert (m.calls, m.success_without_retry, m.retries) == (10, 10, 0)
    assert m.attempts == {1: 10}
    assert m.success_rate_by_attempt == {1: 1.0}


async def test_arguments_are_passed_on_every_attempt(autoclock: FakeClock) -> None:
    seen: list[tuple[tuple[object, ...], dict[str, object]]] = []

    async def fetch(*args: object, **kwargs: object) -> str:
        seen.append((args, kwargs))
        if len(seen) < 3:
            raise transient()
        return "ticker"

    policy = policy_on(autoclock)
    assert await policy.call_async(fetch, "BTC/USDT", params={"a": 1}) == "ticker"
    assert seen == [(("BTC/USDT",), {"params": {"a": 1}})] * 3


async def test_transient_failures_are_retried_with_backoff(autoclock: FakeClock) -> None:
    policy = policy_on(autoclock, base_delay=1.0, strategy="exponential")
    op = Script(transient(), transient(), "ok")
    assert await policy.call_async(op) == "ok"
    assert op.calls == 3
    assert autoclock.slept == [1.0, 2.0]
    assert autoclock.now() == 3.0
    m = policy.metrics
    assert (m.success_with_retry, m.retries, m.total_backoff_seconds) == (1, 2, 3.0)
    assert m.attempts == {3: 1}
    assert m.success_rate_by_attempt == {1: 0.0, 2: 0.0, 3: 1.0}


async def test_gives_up_after_max_attempts_with_the_last_error(autoclock: FakeClock) -> None:
    errors = [ccxt.NetworkError(f"failure {i}") for i in range(4)]
    policy = policy_on(autoclock, max_attempts=4)
    op = Script(*errors)
    with pytest.raises(ccxt.NetworkError) as info:
        await policy.call_async(op)
    assert info.value is errors[3]
    assert op.calls == 4
    m = policy.metrics
    assert (m.failed_with_retry, m.exhausted, m.retries) == (1, 1, 3)
    assert m.attempts == {4: 1}
    assert m.success_rate == 0.0


async def test_max_attempts_one_never_retries(autoclock: FakeClock) -> None:
    policy = policy_on(autoclock, max_attempts=1)
    op = Script(transient())
    with pytest.raises(ccxt.NetworkError):
        await policy.call_async(op)
    assert op.calls == 1
    assert policy.metrics.failed_without_retry == 1
    assert autoclock.slept == []


@pytest.mark.parametrize(
    ("strategy", "expected"),
    [
        ("fixed", [0.5, 0.5, 0.5, 0.5]),
        ("linear", [0.5, 1.0, 1.5, 2.0]),
        ("exponential", [0.5, 1.0, 2.0, 3.0]),
    ],
)
async def test_each_strategy_sleeps_its_schedule(
    autoclock: FakeClock, strategy: str, expected: list[float]
) -> None:
    policy = policy_on(autoclock, strategy=strategy, base_delay=0.5, max_delay=3.0, max_attempts=5)
    with pytest.raises(ccxt.NetworkError):
        await policy.call_async(Script(transient()))
    assert autoclock.slept == expected


@pytest.mark.parametrize("jitter", list(JitterMode))
@pytest.mark.parametrize("strategy", list(BackoffStrategy))
async def test_policy_sleeps_exactly_what_the_backoff_computes(
    autoclock: FakeClock, strategy: BackoffStrategy, jitter: JitterMode
) -> None:
    policy = RetryPolicy(
        clock=autoclock,
        rng=random.Random(99),
        strategy=strategy,
        jitter=jitter,
        base_delay=0.2,
        max_delay=5.0,
        max_attempts=8,
        budget_ratio=None,
    )
    with pytest.raises(ccxt.NetworkError):
        await policy.call_async(Script(transient()))
    backoff = Backoff(strategy, 0.2, 5.0, 2.0, jitter)
    rng = random.Random(99)
    expected: list[float] = []
    previous = 0.0
    for n in range(1, 8):
        previous = backoff.delay(n, previous, rng)
        expected.append(previous)
    assert autoclock.slept == expected
    assert all(0.0 <= delay <= 5.0 for delay in autoclock.slept)


# --------------------------------------------------------------------- what is retried


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (ccxt.InsufficientFunds("not enough USDT"), OutcomeKind.BUSINESS),
        (ccxt.InvalidOrder("bad qty"), OutcomeKind.BUSINESS),
        (ccxt.AuthenticationError("bad key"), OutcomeKind.BUSINESS),
        (ccxt.OnMaintenance("bybit maintenance"), OutcomeKind.MAINTENANCE),
        (ccxt.NotSupported("no such method"), OutcomeKind.PERMANENT),
        (KeyError("bug"), OutcomeKind.PERMANENT),
    ],
)
async def test_non_retryable_outcomes_are_not_retried(
    autoclock: FakeClock, error: Exception, kind: OutcomeKind
) -> None:
    assert DEFAULT_CLASSIFIER.classify(error).kind is kind
    policy = policy_on(autoclock)
    op = Script(error, "never")
    with pytest.raises(type(error)) as info:
        await policy.call_async(op)
    assert info.value is error
    assert op.calls == 1
    assert autoclock.slept == []
    m = policy.metrics
    assert (m.failed_without_retry, m.not_retryable, m.retries) == (1, 1, 0)


async def test_a_timed_out_write_is_ambiguous_and_not_retried(autoclock: FakeClock) -> None:
    classifier = CountingClassifier()
    policy = RetryPolicy(
        clock=autoclock,
        classifier=classifier,  # type: ignore[arg-type]
        write=True,
        budget_ratio=None,
        exchange_id="bybit",
    )
    op = Script(ccxt.RequestTimeout("bybit POST /v5/order/create timed out"), "placed")
    with pytest.raises(ccxt.RequestTimeout):
        await policy.call_async(op)
    assert op.calls == 1
    assert classifier.asked == [("RequestTimeout", True, "bybit")]
    assert policy.metrics.not_retryable == 1


async def test_an_idempotent_write_retries_ambiguous_outcomes(autoclock: FakeClock) -> None:
    policy = policy_on(autoclock, write=True, idempotent=True)
    op = Script(ccxt.RequestTimeout("timed out"), "placed")
    assert await policy.call_async(op) == "placed"
    assert op.calls == 2


async def test_idempotence_and_write_can_be_set_per_call(autoclock: FakeClock) -> None:
    policy = policy_on(autoclock, write=True)
    op = Script(ccxt.RequestTimeout("timed out"), "placed")
    call = policy.with_options(idempotent=True)
    assert await call.call_async(op) == "placed"
    assert op.calls == 2
    assert "idempotent=True" in repr(call)
    # The same timeout on a read is transient, so it is retried without idempotence.
    read_policy = policy_on(autoclock)
    assert await read_policy.call_async(Script(ccxt.RequestTimeout("t"), "ok")) == "ok"
    # ...and a read made a write for one call is not.
    op = Script(ccxt.RequestTimeout("t"), "ok")
    with pytest.raises(ccxt.RequestTimeout):
        await read_policy.with_options(write=True).call_async(op)
    assert op.calls == 1
    assert read_policy.metrics.calls == 2


async def test_a_per_call_view_counts_like_the_policy(autoclock: FakeClock) -> None:
    # The view runs the policy's one retry loop from the first attempt: a
    # first-try success, a retried success and the metrics are the same as
    # through the policy itself.
    policy = policy_on(autoclock, write=True, budget_ratio=0.2)
    view = policy.with_options(idempotent=True)
    assert await view.call_async(Script("ok")) == "ok"
    assert await view.call_async(Script(ccxt.RequestTimeout("t"), "ok")) == "ok"
    assert await policy.call_async(Script("ok")) == "ok"
    m = policy.metrics
    assert (m.calls, m.success_without_retry, m.success_with_retry, m.retries) == (3, 2, 1, 1)
    assert m.attempts == {1: 2, 2: 1}
    budget = policy.budget
    assert budget is not None and budget.withdrawals == 1
    rejecting = policy_on(autoclock, retry_on_result=lambda r: r == "busy", max_attempts=2)
    assert await rejecting.with_options(write=True).call_async(Script("busy", "done")) == "done"
    assert rejecting.metrics.success_with_retry == 1


@pytest.mark.parametrize("value", ["yes", 1, 0.0])
def test_per_call_options_must_be_bools(value: object) -> None:
    with pytest.raises(TypeError, match="must be True, False or None"):
        RetryPolicy().with_options(idempotent=value)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="write"):
        RetryPolicy().with_options(write=value)  # type: ignore[arg-type]


async def test_retry_on_overrides_the_retried_kinds(autoclock: FakeClock) -> None:
    policy = policy_on(autoclock, retry_on={"maintenance"})
    assert policy.config.retry_on == frozenset({OutcomeKind.MAINTENANCE})
    op = Script(ccxt.OnMaintenance("upgrade"), "ok")
    assert await policy.call_async(op) == "ok"
    op = Script(transient(), "ok")
    with pytest.raises(ccxt.NetworkError):
        await policy.call_async(op)
    assert op.calls == 1


async def test_exchange_id_and_write_reach_the_classifier(autoclock: FakeClock) -> None:
    classifier = CountingClassifier()
    policy = RetryPolicy(
        clock=autoclock,
        classifier=classifier,  # type: ignore[arg-type]
        exchange_id="bybit",
        max_attempts=2,
        jitter=NONE,
    )
    with pytest.raises(ccxt.NetworkError):
        await policy.call_async(Script(transient()))
    assert classifier.asked == [("NetworkError", False, "bybit")] * 2


async def test_exchange_id_selects_per_exchange_overrides(autoclock: FakeClock) -> None:
    body = '{"retCode":10016,"retMsg":"System error","result":{}}'
    generic = policy_on(autoclock)
    op = Script(ccxt.ExchangeError(body), "ok")
    with pytest.raises(ccxt.ExchangeError):
        await generic.call_async(op)  # an unknown ExchangeError is permanent
    assert op.calls == 1
    bybit = policy_on(autoclock, exchange_id="bybit")
    op = Script(ccxt.ExchangeError(body), "ok")
    assert await bybit.call_async(op) == "ok"  # Bybit's "System error" is transient
    assert op.calls == 2


async def test_cancelled_error_raised_by_the_operation_propagates_uncounted(
    autoclock: FakeClock,
) -> None:
    policy = policy_on(autoclock)
    op = Script(asyncio.CancelledError())
    with pytest.raises(asyncio.CancelledError):
        await policy.call_async(op)
    op = Script(transient(), asyncio.CancelledError())
    with pytest.raises(asyncio.CancelledError):
        await policy.call_async(op)
    assert op.calls == 2
    assert policy.metrics.calls == 0


# --------------------------------------------------------------------- Retry-After


async def test_retry_after_takes_precedence_over_backoff(autoclock: FakeClock) -> None:
    policy = RetryPolicy(clock=autoclock, base_delay=1.0, max_delay=30.0, budget_ratio=None)
    op = Script(
        RateLimitTimeoutError("bybit", cost=1.0, max_wait=0.0, needed_wait=2.5),
        CircuitOpenError("exchange_api", "open", retry_after=7.0),
        RateLimitTimeoutError("bybit", cost=1.0, max_wait=0.0, needed_wait=0.0),
        "ok",
    )
    assert await policy.call_async(op) == "ok"
    assert autoclock.slept == [2.5, 7.0, 0.0]


async def test_a_negative_retry_after_means_no_wait(autoclock: FakeClock) -> None:
    class Fixed:
        def classify(self, error: BaseException | None, **_: object) -> Outcome:
            return Outcome(OutcomeKind.RATE_LIMITED, retry_after=-3.0, reason="test")

    policy = RetryPolicy(clock=autoclock, classifier=Fixed(), budget_ratio=None)  # type: ignore[arg-type]
    assert await policy.call_async(Script(transient(), "ok")) == "ok"
    assert autoclock.slept == [0.0]


async def test_a_retry_after_longer_than_max_delay_gives_up_at_once(
    autoclock: FakeClock,
) -> None:
    policy = policy_on(autoclock, max_delay=5.0)
    error = CircuitOpenError("exchange_api", "open", retry_after=60.0)
    op = Script(error, "ok")
    with pytest.raises(CircuitOpenError) as info:
        await policy.call_async(op)
    assert info.value is error
    assert op.calls == 1
    assert autoclock.slept == []
    m = policy.metrics
    assert (m.gave_up_on_retry_after, m.failed_without_retry) == (1, 1)


async def test_a_retry_after_beyond_the_deadline_gives_up_at_once(
    autoclock: FakeClock,
) -> None:
    policy = policy_on(autoclock, max_delay=30.0, max_elapsed=10.0, base_delay=1.0)
    op = Script(
        transient(),
        RateLimitTimeoutError("bybit", cost=1.0, max_wait=0.0, needed_wait=9.5),
        "ok",
    )
    with pytest.raises(RateLimitTimeoutError):
        await policy.call_async(op)
    assert autoclock.slept == [1.0]  # 1 s slept; 1 + 9.5 > 10
    m = policy.metrics
    assert (m.gave_up_on_retry_after, m.failed_with_retry) == (1, 1)


# --------------------------------------------------------------------- deadline


async def test_no_retry_starts_whose_backoff_would_end_after_the_deadline(
    autoclock: FakeClock,
) -> None:
    policy = policy_on(autoclock, max_elapsed=10.0, base_delay=1.0, max_attempts=100)
    op = Script(transient(), clock=autoclock, takes=0.5)
    with pytest.raises(ccxt.NetworkError):
        await policy.call_async(op)
    # attempts end at 0.5, 2.0, 4.5, 9.0; the next backoff (8 s) would end at 17 > 10.
    assert [d for d in autoclock.slept if d != 0.5] == [1.0, 2.0, 4.0]
    assert op.calls == 4
    assert autoclock.now() == 9.0
    assert policy.metrics.gave_up_on_deadline == 1


async def test_a_slow_async_listener_never_delays_the_backoff(autoclock: FakeClock) -> None:
    # An async listener (a webhook post taking 3 s) runs on its own worker:
    # the attempts and backoffs are exactly those of a policy without it.
    policy = policy_on(
        autoclock, max_elapsed=10.0, base_delay=4.0, max_delay=4.0, strategy="fixed", max_attempts=3
    )
    posted: list[int] = []

    async def alert(event: RetryEvent) -> None:
        await autoclock.sleep(3.0)
        posted.append(event.attempt)

    policy.add_listener(alert)
    ends: list[float] = []

    async def op() -> None:
        if not ends:
            await autoclock.sleep(5.0)
        ends.append(autoclock.now())
        raise transient()

    with pytest.raises(ccxt.NetworkError):
        await policy.call_async(op)
    assert ends == [5.0, 9.0]  # attempt 2 right after its 4 s backoff
    m = policy.metrics
    assert (m.retries, m.total_backoff_seconds, m.gave_up_on_deadline) == (1, 4.0, 1)
    assert await policy.drain_listeners(within=10.0)
    assert posted == [1]


async def test_a_hanging_listener_never_holds_up_the_call(clock: FakeClock) -> None:
    policy = RetryPolicy(clock=clock, base_delay=1.0, jitter=NONE, rng=random.Random(0))
    never = asyncio.Event()
    seen: list[int] = []

    async def hangs(event: RetryEvent) -> None:
        seen.append(event.attempt)
        await never.wait()

    policy.add_listener(hangs)
    op = Script(transient(), "ok")
    task = asyncio.create_task(policy.call_async(op))
    for _ in range(5):
        await asyncio.sleep(0)
    assert seen == [1]  # the listener runs ...
    assert clock.sleepers == 1  # ... while the call is already in its backoff
    clock.advance(1.0)
    assert await task == "ok"
    assert policy.listener_stats().pending == 0
    policy.close_listeners()


async def test_a_retry_after_is_honoured_whatever_the_listener_does(
    autoclock: FakeClock,
) -> None:
    policy = policy_on(autoclock, max_elapsed=10.0, max_delay=30.0)

    async def alert(event: RetryEvent) -> None:
        await autoclock.sleep(6.0)

    policy.add_listener(alert)
    op = Script(
        RateLimitTimeoutError("bybit", cost=1.0, max_wait=0.0, needed_wait=4.0),
        "ok",
        clock=autoclock,
        takes=1.0,
    )
    assert await policy.call_async(op) == "ok"
    assert op.calls == 2
    assert 4.0 in autoclock.slept  # the server's wait, neither shortened nor lengthened
    assert policy.metrics.gave_up_on_retry_after == 0
    policy.close_listeners()


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(
    max_elapsed=st.floats(min_value=0.1, max_value=100.0),
    durations=st.lists(st.floats(min_value=0.0, max_value=20.0), min_size=1, max_size=30),
    strategy=st.sampled_from(BackoffStrategy),
    jitter=st.sampled_from(JitterMode),
    base_delay=st.floats(min_value=0.0, max_value=10.0),
    retry_afters=st.lists(st.none() | st.floats(min_value=0.0, max_value=50.0), max_size=30),
    seed=st.integers(min_value=0, max_value=1000),
    listener_seconds=st.none() | st.floats(min_value=0.0, max_value=10.0),
)
def test_the_policy_never_sleeps_past_max_elapsed(
    max_elapsed: float,
    durations: list[float],
    strategy: BackoffStrategy,
    jitter: JitterMode,
    base_delay: float,
    retry_afters: list[float | None],
    seed: int,
    listener_seconds: float | None,
) -> None:
    async def scenario() -> None:
        inner = FakeClock(start=1000.0, autojump=True)
        clock = CountingClock(inner)
        policy = RetryPolicy(
            clock=clock,
            rng=random.Random(seed),
            max_elapsed=max_elapsed,
            strategy=strategy,
            jitter=jitter,
            base_delay=base_delay,
            max_delay=60.0,
            max_attempts=1000,
            budget_ratio=None,
        )
        if listener_seconds is not None:
            pause = listener_seconds

            async def slow_listener(event: RetryEvent) -> None:
                await inner.sleep(pause)  # not counted in clock.sleeps

            policy.add_listener(slow_listener)
        attempt = 0

        async def op() -> None:
            nonlocal attempt
            await inner.sleep(durations[attempt % len(durations)])
            wait = retry_afters[attempt] if attempt < len(retry_afters) else None
            attempt += 1
            if wait is None:
                raise transient()
            raise RateLimitTimeoutError("x", cost=1.0, max_wait=0.0, needed_wait=wait)

        with pytest.raises((ccxt.NetworkError, RateLimitTimeoutError)):
            await policy.call_async(op)
        deadline = 1000.0 + max_elapsed
        for start, seconds in clock.sleeps:
            assert start + seconds <= deadline
        m = policy.metrics
        assert m.calls == 1
        assert m.gave_up_on_deadline + m.gave_up_on_retry_after + m.exhausted == 1
        assert m.retries == len(clock.sleeps)

    asyncio.run(scenario())


# --------------------------------------------------------------------- retry_on_result


async def test_retry_on_result_retries_rejected_results(autoclock: FakeClock) -> None:
    policy = policy_on(autoclock, retry_on_result=lambda r: r == "try later")
    op = Script("try later", transient(), "try later", "done")
    assert await policy.call_async(op) == "done"
    assert op.calls == 4
    assert autoclock.slept == [1.0, 2.0, 4.0]
    assert policy.metrics.success_with_retry == 1


async def test_retry_on_result_returns_the_last_result_when_attempts_run_out(
    autoclock: FakeClock,
) -> None:
    events: list[RetryEvent] = []
    policy = policy_on(autoclock, retry_on_result=lambda r: r == "busy", max_attempts=3)
    policy.add_listener(events.append)
    op = Script("busy")
    assert await policy.call_async(op) == "busy"
    assert op.calls == 3
    m = policy.metrics
    assert (m.failed_with_retry, m.exhausted, m.success_with_retry) == (1, 1, 0)
    assert [(e.attempt, e.error, e.outcome.kind) for e in events] == [
        (1, None, OutcomeKind.TRANSIENT),
        (2, None, OutcomeKind.TRANSIENT),
    ]


async def test_accepted_results_are_a_plain_success(autoclock: FakeClock) -> None:
    policy = policy_on(autoclock, retry_on_result=lambda r: r is None)
    assert await policy.call_async(Script({"last": 1.0})) == {"last": 1.0}
    assert policy.metrics.success_without_retry == 1
    assert autoclock.slept == []


# --------------------------------------------------------------------- configuration


def test_config_defaults_and_the_seed_names() -> None:
    config = RetryConfig()
    assert (config.max_attempts, config.max_retries) == (4, 3)
    assert (config.base_delay, config.max_delay, config.multiplier) == (1.0, 30.0, 2.0)
    assert config.strategy is BackoffStrategy.EXPONENTIAL
    assert config.jitter is JitterMode.FULL
    assert config.max_elapsed is None
    assert (config.idempotent, config.write, config.retry_on) == (False, False, None)
    assert (config.budget_ratio, config.budget_ttl, config.budget_min_retries_per_second) == (
        0.2,
        10.0,
        1.0,
    )
    assert RetryConfig(max_retries=3).max_attempts == 4
    assert RetryConfig(max_retries=0, max_attempts=1).max_attempts == 1
    config.max_retries = 5
    assert config.max_attempts == 6


@pytest.mark.parametrize(
    ("field", "value", "allowed"),
    [
        ("max_attempts", 0, ">= 1"),
        ("max_attempts", 2.5, "an integer"),
        ("base_delay", -1.0, ">= 0"),
        ("max_delay", 0.0, "> 0"),
        ("max_delay", float("inf"), "finite"),
        ("multiplier", 0.5, ">= 1"),
        ("max_elapsed", 0.0, "> 0"),
        ("strategy", "quadratic", "'exponential'"),
        ("jitter", "some", "'full'"),
        ("budget_ratio", -0.1, ">= 0"),
        ("budget_ttl", 0.5, ">= 1"),
        ("budget_min_retries_per_second", -1.0, ">= 0"),
        ("idempotent", "yes", "a boolean"),
        ("retry_on", {"success"}, "other than 'success'"),
        ("retry_on", {"nonsense"}, "OutcomeKind"),
        ("retry_on_result", 3, "callable"),
        ("max_retries", -1, "integer >= 0"),
    ],
)
def test_bad_values_are_rejected_naming_field_and_range(
    field: str, value: object, allowed: str
) -> None:
    with pytest.raises(ConfigurationError) as info:
        RetryConfig(**{field: value})
    assert info.value.fields == (field,)
    assert allowed in str(info.value)
    config = RetryConfig()
    before = config.model_dump()
    with pytest.raises(ConfigurationError) as info:
        setattr(config, field, value)
    assert info.value.fields == (field,)
    assert config.model_dump() == before


def test_cross_field_rules() -> None:
    with pytest.raises(ConfigurationError) as info:
        RetryConfig(base_delay=10.0, max_delay=5.0)
    assert info.value.fields == ("base_delay, max_delay",)
    assert "base_delay (10) must be <= max_delay (5)" in str(info.value)
    config = RetryConfig(base_delay=1.0, max_delay=5.0)
    with pytest.raises(ConfigurationError, match=r"=\(1.0, 0.5\) is invalid: base_delay"):
        config.max_delay = 0.5
    assert config.max_delay == 5.0
    with pytest.raises(ConfigurationError, match="base_delay"):
        config.base_delay = 6.0
    assert config.base_delay == 1.0
    with pytest.raises(ConfigurationError, match="conflicts with max_attempts"):
        RetryConfig(max_retries=3, max_attempts=2)


async def test_runtime_config_update_applies_to_the_next_call(autoclock: FakeClock) -> None:
    retry_policy = policy_on(autoclock)
    op = Script(transient())
    with pytest.raises(ccxt.NetworkError):
        await retry_policy.call_async(op)
    assert op.calls == 4
    retry_policy.config.max_attempts = 5  # the seed's "Configuration Updates"
    op = Script(transient())
    with pytest.raises(ccxt.NetworkError):
        await retry_policy.call_async(op)
    assert op.calls == 5
    with pytest.raises(ConfigurationError, match="max_attempts"):
        retry_policy.config.max_attempts = 0
    assert retry_policy.config.max_attempts == 5
    retry_policy.config.strategy = BackoffStrategy.FIXED
    retry_policy.config.base_delay = 0.25
    autoclock.slept.clear()
    with pytest.raises(ccxt.NetworkError):
        await retry_policy.call_async(Script(transient()))
    assert autoclock.slept == [0.25] * 4


def test_config_and_keyword_settings_do_not_mix() -> None:
    with pytest.raises(TypeError, match="not both"):
        RetryPolicy(RetryConfig(), max_attempts=3)
    config = RetryConfig(name="orders", max_attempts=2)
    policy = RetryPolicy(config)
    assert policy.config is config
    assert policy.name == "orders"


# --------------------------------------------------------------------- budget


def test_budget_deposits_withdrawals_and_reserve(clock: FakeClock) -> None:
    budget = RetryBudget(ttl=10.0, ratio=0.5, min_retries_per_second=0.2, clock=clock)
    assert budget.reserve == 2.0
    assert budget.balance == 2.0
    budget.deposit(4)
    assert budget.balance == 4.0
    assert [budget.try_withdraw() for _ in range(5)] == [True, True, True, True, False]
    assert (budget.withdrawals, budget.refused) == (4, 1)
    budget.refund()
    assert budget.balance == 1.0
    assert "balance=1" in repr(budget)
    # Deposits and withdrawals expire after ttl; the reserve stays.
    clock.advance(10.0)
    assert budget.balance == 2.0


def test_budget_window_slides(clock: FakeClock) -> None:
    budget = RetryBudget(ttl=10.0, ratio=1.0, min_retries_per_second=0.0, clock=clock)
    budget.deposit(3)
    clock.advance(5.0)
    assert budget.try_withdraw()
    assert budget.balance == 2.0
    clock.advance(5.0)
    assert budget.balance == -1.0  # the deposits expired, the withdrawal not yet
    assert not budget.try_withdraw()
    clock.advance(5.0)
    assert budget.balance == 0.0


def test_calls_deposited_together_are_spread_since_the_previous_deposit(
    clock: FakeClock,
) -> None:
    budget = RetryBudget(ttl=10.0, ratio=1.0, min_retries_per_second=0.0, clock=clock)
    budget.deposit(3)
    clock.advance(5.0)
    budget.deposit(6)  # taken to have arrived evenly over the last 5 s (slices 0..5)
    assert budget.balance == 9.0
    clock.advance(5.0)  # slice 0 expires: the first 3 and a sixth of the 6
    assert budget.balance == 5.0


def test_lazily_deposited_calls_are_spread_over_the_time_since_the_last_deposit(
    clock: FakeClock,
) -> None:
    budget = RetryBudget(ttl=10.0, ratio=0.2, min_retries_per_second=1.0, clock=clock)
    clock.advance(3600.0)
    budget.deposit(10_000)  # an hour of calls: only the last 10 s of them count
    assert budget.balance == pytest.approx(10.0 + 2000 * 10 / 3600, abs=1e-3)


def test_a_refund_goes_back_to_the_withdrawals_slice(clock: FakeClock) -> None:
    budget = RetryBudget(ttl=10.0, ratio=0.0, min_retries_per_second=0.1, clock=clock)
    assert budget.balance == 1.0
    receipt = budget.withdraw()
    assert receipt == 0 and budget.balance == 0.0
    clock.advance(5.0)
    assert budget.refund(receipt) is True
    assert budget.balance == 1.0
    # The refund cancels the withdrawal exactly: when slice 0 leaves the
    # window nothing is left over (credited to slice 5 it would outlive it).
    clock.advance(5.0)
    assert budget.balance == 1.0
    assert [budget.try_withdraw() for _ in range(2)] == [True, False]


def test_an_expired_withdrawal_is_not_credited_back(clock: FakeClock) -> None:
    budget = RetryBudget(ttl=10.0, ratio=0.0, min_retries_per_second=0.1, clock=clock)
    assert budget.try_withdraw()
    clock.advance(25.0)  # the withdrawal has expired: the balance is whole again
    assert budget.balance == 1.0
    assert budget.refund() is False  # the latest withdrawal, long gone
    assert budget.balance == 1.0
    assert (budget.withdrawals, budget.refunds) == (1, 1)
    assert [budget.try_withdraw() for _ in range(2)] == [True, False]
    assert budget.withdraw() is None
    assert budget.refund(None) is False  # a refused withdrawal: nothing to give back
    assert RetryBudget(clock=clock).refund() is False  # nothing was ever withdrawn
    assert budget.refunds == 1


def test_a_budget_can_continue_the_deposit_timeline(clock: FakeClock) -> None:
    first = RetryBudget(ttl=10.0, ratio=1.0, min_retries_per_second=0.0, clock=clock)
    clock.advance(100.0)
    assert first.last_deposit_at == 0.0
    second = RetryBudget(
        ttl=10.0,
        ratio=1.0,
        min_retries_per_second=0.0,
        clock=clock,
        last_deposit_at=first.last_deposit_at,
    )
    second.deposit(100)  # spread over 100 s: 10 s of them are in the window
    assert second.balance == 10.0
    assert second.last_deposit_at == 100.0
    fresh = RetryBudget(ttl=10.0, ratio=1.0, min_retries_per_second=0.0, clock=clock)
    fresh.deposit(100)  # all "since now"
    assert fresh.balance == 100.0
    with pytest.raises(ValueError, match="last_deposit_at"):
        RetryBudget(clock=clock, last_deposit_at=101.0)
    with pytest.raises(ValueError, match="last_deposit_at"):
        RetryBudget(clock=clock, last_deposit_at=float("nan"))


def test_budget_rejects_bad_settings(clock: FakeClock) -> None:
    with pytest.raises(ValueError, match="ttl"):
        RetryBudget(ttl=0.0, clock=clock)
    with pytest.raises(ValueError, match="ratio"):
        RetryBudget(ratio=-1.0, clock=clock)
    with pytest.raises(ValueError, match="min_retries_per_second"):
        RetryBudget(min_retries_per_second=float("inf"), clock=clock)


async def test_budget_caps_retries_in_a_failure_storm(clock: FakeClock) -> None:
    # Time stands still (zero backoff), so the whole storm is in one window:
    # retries = ratio * calls + min_retries_per_second * ttl = 0.2*1000 + 1.0*10 = 210.
    policy = RetryPolicy(clock=clock, base_delay=0.0, max_attempts=4)
    op = Script(transient())
    for _ in range(1000):
        with pytest.raises(ccxt.NetworkError):
            await policy.call_async(op)
    m = policy.metrics
    assert m.retries == 210
    assert op.calls == 1210
    assert m.calls == 1000
    assert m.budget_exhausted + m.exhausted == 1000
    assert m.budget is not None
    assert m.budget["withdrawals"] == 210
    assert m.budget["deposits"] == 1000


async def test_budget_caps_a_concurrent_storm(clock: FakeClock) -> None:
    policy = RetryPolicy(clock=clock, base_delay=0.0, max_attempts=4)
    op = Script(transient())

    async def one() -> None:
        with pytest.raises(ccxt.NetworkError):
            await policy.call_async(op)

    await asyncio.gather(*(one() for _ in range(1000)))
    assert policy.retries == 210
    assert policy.metrics.calls == 1000


async def test_budget_over_a_storm_spread_in_time(clock: FakeClock) -> None:
    # 1000 failing calls, one every 0.1 s (100 s), each wanting 3 retries:
    # per 10 s window at most 0.2*100 deposits + 10 reserve; over 100 s the
    # total is bounded by 0.2*1000 + 1.0*(100 + 10).
    policy = RetryPolicy(clock=clock, base_delay=0.0, max_attempts=4)
    op = Script(transient())
    for _ in range(1000):
        with pytest.raises(ccxt.NetworkError):
            await policy.call_async(op)
        clock.advance(0.1)
    assert 200 < policy.retries <= 0.2 * 1000 + 1.0 * 110


async def test_no_budget_when_disabled(clock: FakeClock) -> None:
    policy = RetryPolicy(clock=clock, base_delay=0.0, max_attempts=4, budget_ratio=None)
    op = Script(transient())
    for _ in range(100):
        with pytest.raises(ccxt.NetworkError):
            await policy.call_async(op)
    assert policy.retries == 300
    assert policy.budget is None
    assert policy.metrics.budget is None


async def test_an_empty_budget_gives_up_and_counts(clock: FakeClock) -> None:
    policy = RetryPolicy(
        clock=clock, base_delay=0.0, budget_ratio=0.0, budget_min_retries_per_second=0.1
    )
    op = Script(transient())
    with pytest.raises(ccxt.NetworkError):
        await policy.call_async(op)
    assert op.calls == 2  # the reserve held one retry (0.1/s * 10 s)
    m = policy.metrics
    assert (m.budget_exhausted, m.failed_with_retry) == (1, 1)
    # Changing the budget settings at run time builds a new budget.
    policy.config.budget_min_retries_per_second = 0.3
    op = Script(transient())
    with pytest.raises(ccxt.NetworkError):
        await policy.call_async(op)
    assert op.calls == 4


async def _healthy_then_storm(
    clock: FakeClock, policy: RetryPolicy, change: Any = None, storm: int = 200
) -> int:
    """10,000 healthy calls over 100 s, ``change(policy)``, then ``storm`` failing
    calls in one instant; returns the retries the storm got."""

    async def healthy() -> int:
        return 1

    for _ in range(100):
        for _ in range(100):
            await policy.call_async(healthy)
        clock.advance(1.0)
    if change is not None:
        change(policy)
    before = policy.retries
    op = Script(transient())
    for _ in range(storm):
        with pytest.raises(ccxt.NetworkError):
            await policy.call_async(op)
    return policy.retries - before


async def test_a_budget_rebuilt_at_run_time_credits_only_recent_calls(clock: FakeClock) -> None:
    def ttl_11(policy: RetryPolicy) -> None:
        policy.config.budget_ttl = 11.0

    policy = RetryPolicy(clock=clock, base_delay=0.0, max_attempts=4, rng=random.Random(0))
    retries = await _healthy_then_storm(clock, policy, ttl_11)
    # Of the 10,000 calls since the last deposit only the last 11 s (1,100)
    # count, plus the storm's 200, at 0.2 each, plus the 11-retry reserve.
    # (Crediting all 10,000 to the current slice allowed every retry: 600.)
    # Whole retries only, so up to one short of the exact 271.
    assert 270 <= retries <= 0.2 * (1100 + 200) + 11.0
    budget = policy.budget
    assert budget is not None and budget.ttl == 11.0
    # Just what the same storm gets without the change (with 10 s: 250).
    other = FakeClock()
    unchanged = RetryPolicy(clock=other, base_delay=0.0, max_attempts=4, rng=random.Random(0))
    assert 249 <= await _healthy_then_storm(other, unchanged) <= 0.2 * (1000 + 200) + 10.0


async def test_a_budget_switched_back_on_starts_fresh(clock: FakeClock) -> None:
    def budget_on(policy: RetryPolicy) -> None:
        policy.config.budget_ratio = 0.2

    policy = RetryPolicy(
        clock=clock, base_delay=0.0, max_attempts=4, budget_ratio=None, rng=random.Random(0)
    )
    retries = await _healthy_then_storm(clock, policy, budget_on)
    # The calls made while the budget was off are not credited: only the
    # storm's own calls and the reserve (the first failing call, counted while
    # the budget was off, is not credited either).
    assert retries == int(0.2 * 199 + 10.0)


# --------------------------------------------------------------------- cancellation


async def test_cancellation_during_backoff_propagates_and_refunds(clock: FakeClock) -> None:
    policy = RetryPolicy(clock=clock, base_delay=5.0, jitter=NONE)
    op = Script(transient(), "ok")
    task = asyncio.create_task(policy.call_async(op))
    for _ in range(5):
        await asyncio.sleep(0)
    assert clock.sleepers == 1
    budget = policy.budget
    assert budget is not None
    assert budget.withdrawals == 1
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert budget.refunds == 1
    assert budget.balance == pytest.approx(10.0 + 0.2)
    clock.advance(60.0)
    await asyncio.sleep(0)
    assert op.calls == 1
    m = policy.metrics
    assert (m.calls, m.failed_without_retry, m.failed_with_retry, m.retries) == (0, 0, 0, 0)
    assert m.total_backoff_seconds == 0.0


async def test_a_retry_cancelled_after_its_withdrawal_expired_refunds_nothing(
    clock: FakeClock,
) -> None:
    # The reserve holds one retry (0.1/s * 10 s); a call earns nothing (ratio 0).
    policy = RetryPolicy(
        clock=clock,
        base_delay=30.0,
        max_delay=30.0,
        jitter=NONE,
        budget_ratio=0.0,
        budget_min_retries_per_second=0.1,
        rng=random.Random(0),
    )
    budget = policy.budget
    assert budget is not None
    task = asyncio.create_task(policy.call_async(Script(transient())))
    for _ in range(5):
        await asyncio.sleep(0)
    assert budget.balance == 0.0
    clock.advance(25.0)  # the withdrawal has expired during the 30 s backoff
    assert budget.balance == 1.0
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert budget.balance == 1.0  # not 2: the budget gains nothing
    assert (budget.withdrawals, budget.refunds) == (1, 1)
    assert [budget.try_withdraw() for _ in range(2)] == [True, False]


async def test_cancellation_during_the_first_call(clock: FakeClock) -> None:
    policy = RetryPolicy(clock=clock)
    started = asyncio.Event()
    calls = 0

    async def hang() -> None:
        nonlocal calls
        calls += 1
        started.set()
        await asyncio.Event().wait()

    task = asyncio.create_task(policy.call_async(hang))
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert calls == 1
    assert policy.metrics.calls == 0


async def test_cancellation_during_a_retried_call(autoclock: FakeClock) -> None:
    policy = RetryPolicy(clock=autoclock, jitter=NONE)
    started = asyncio.Event()
    calls = 0

    async def fail_then_hang() -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise transient()
        started.set()
        await asyncio.Event().wait()

    task = asyncio.create_task(policy.call_async(fail_then_hang))
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await asyncio.sleep(0)
    assert calls == 2
    m = policy.metrics
    assert (m.calls, m.retries, m.failed_with_retry) == (0, 1, 0)


# --------------------------------------------------------------------- concurrency


async def test_many_coroutines_share_one_policy(clock: FakeClock) -> None:
    policy = RetryPolicy(clock=clock, base_delay=0.5, max_delay=2.0, budget_ratio=None)
    rng = random.Random(5)
    plans = [rng.randrange(0, 5) for _ in range(300)]  # failures before success

    async def one(failures: int) -> str:
        op = Script(*([transient()] * failures), "ok", clock=clock, takes=0.1)
        try:
            return str(await policy.call_async(op))
        except ccxt.NetworkError:
            return "failed"

    results = await drive(clock, asyncio.gather(*(one(k) for k in plans)))
    assert results == ["ok" if k < 4 else "failed" for k in plans]
    m = policy.metrics
    assert m.calls == 300
    assert m.success_without_retry == plans.count(0)
    assert m.success_with_retry == sum(1 for k in plans if 0 < k < 4)
    assert m.failed_with_retry == plans.count(4)
    assert m.retries == sum(min(k, 3) for k in plans)
    expected_attempts: dict[int, int] = {}
    for k in plans:
        expected_attempts[min(k, 3) + 1] = expected_attempts.get(min(k, 3) + 1, 0) + 1
    assert m.attempts == dict(sorted(expected_attempts.items()))
    reached_2 = sum(1 for k in plans if k >= 1)
    assert m.success_rate_by_attempt[2] == pytest.approx(plans.count(1) / reached_2)


# --------------------------------------------------------------------- listeners


async def test_listeners_see_each_retry_before_the_sleep(autoclock: FakeClock) -> None:
    seen: list[tuple[RetryEvent, float]] = []
    async_seen: list[RetryEvent] = []

    def listener(event: RetryEvent) -> None:
        seen.append((event, autoclock.now()))

    async def async_listener(event: RetryEvent) -> None:
        await asyncio.sleep(0)
        async_seen.append(event)

    policy = policy_on(autoclock, name="ticker")
    policy.add_listener(listener)
    policy.add_listener(async_listener)
    op = Script(transient(), RateLimitTimeoutError("x", 1.0, 0.0, 3.0), "ok")
    assert await policy.call_async(op) == "ok"
    assert await policy.drain_listeners(within=1.0)
    events = [e for e, _ in seen]
    assert events == async_seen
    assert [(e.attempt, e.delay, e.outcome.kind, e.error, e.policy) for e in events] == [
        (1, 1.0, OutcomeKind.TRANSIENT, "NetworkError", "ticker"),
        (2, 3.0, OutcomeKind.RATE_LIMITED, "RateLimitTimeoutError", "ticker"),
    ]
    assert [at for _, at in seen] == [0.0, 1.0]  # before each sleep
    policy.remove_listener(listener)
    policy.remove_listener(async_listener)
    await policy.call_async(Script(transient(), "ok"))
    assert len(seen) == 2


async def test_a_failing_listener_does_not_break_the_call(
    autoclock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(event: RetryEvent) -> None:
        raise RuntimeError("api_key=SECRET123")

    async def broken_async(event: RetryEvent) -> None:
        raise ValueError("token SECRET456")

    policy = policy_on(autoclock, name="orders")
    policy.add_listener(broken)
    policy.add_listener(broken_async)
    with caplog.at_level(logging.WARNING, logger="virtuoso_resilience.events"):
        assert await policy.call_async(Script(transient(), "ok")) == "ok"
        assert await policy.drain_listeners(within=1.0)
    assert policy.listener_stats().failed == 2
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 2
    assert "'orders'" in messages[0]
    assert "RuntimeError" in messages[0]
    assert "ValueError" in messages[1]
    assert all("SECRET" not in m for m in messages)


# --------------------------------------------------------------------- decorators


async def test_policy_as_decorator(autoclock: FakeClock) -> None:
    policy = policy_on(autoclock, name="fetch")
    calls = 0

    @policy
    async def fetch_ticker(symbol: str) -> str:
        """Fetch."""
        nonlocal calls
        calls += 1
        if calls < 2:
            raise transient()
        return symbol

    assert await fetch_ticker("BTC/USDT") == "BTC/USDT"
    assert fetch_ticker.__name__ == "fetch_ticker"
    assert fetch_ticker.__doc__ == "Fetch."
    assert fetch_ticker.retry_policy is policy  # type: ignore[attr-defined]
    assert policy.metrics.success_with_retry == 1


async def test_retry_decorator_bare_and_with_settings(autoclock: FakeClock) -> None:
    @retry
    async def plain() -> int:
        return 1

    calls = 0

    @retry(max_attempts=2, base_delay=0.5, jitter="none", clock=autoclock)
    async def flaky() -> int:
        nonlocal calls
        calls += 1
        raise transient()

    assert await plain() == 1
    policy = plain.retry_policy  # type: ignore[attr-defined]
    assert isinstance(policy, RetryPolicy)
    assert policy.name.endswith("plain")
    with pytest.raises(ccxt.NetworkError):
        await flaky()
    assert calls == 2
    assert autoclock.slept == [0.5]
    named = retry(name="custom", clock=autoclock)(plain)
    assert named.retry_policy.name == "custom"  # type: ignore[attr-defined]


def test_decorating_a_sync_function_is_an_error() -> None:
    def sync() -> int:
        return 1

    with pytest.raises(TypeError, match="coroutine function"):
        RetryPolicy()(sync)  # type: ignore[arg-type]


# --------------------------------------------------------------------- reporting


async def test_repr_and_snapshot(autoclock: FakeClock) -> None:
    policy = policy_on(autoclock, name="exchange_api")
    for _ in range(9):
        await policy.call_async(Script("ok"))
    await policy.call_async(Script(transient(), transient(), transient(), "ok"))
    assert repr(policy) == (
        "<RetryPolicy 'exchange_api' max_attempts=4 strategy=exponential calls=10 retries=3>"
    )
    metrics = policy.metrics
    assert isinstance(metrics, RetryMetrics)
    with pytest.raises(AttributeError):
        metrics.calls = 0  # type: ignore[misc]
    snapshot = policy.snapshot()
    assert json.loads(json.dumps(snapshot)) == snapshot
    assert snapshot["attempts"] == {"1": 9, "4": 1}
    assert snapshot["success_rate_by_attempt"] == {"1": 0.9, "2": 0.0, "3": 0.0, "4": 1.0}
    assert snapshot["success_rate"] == 1.0
    assert snapshot["total_backoff_seconds"] == 7.0
    assert snapshot["config"]["strategy"] == "exponential"
    assert snapshot["name"] == "exchange_api"


def test_event_is_frozen() -> None:
    event = RetryEvent(1, 0.5, Outcome(OutcomeKind.TRANSIENT), "NetworkError", "p")
    with pytest.raises(AttributeError):
        event.delay = 1.0  # type: ignore[misc]


def test_the_decorator_names_its_policy_after_the_function_within_the_name_limit() -> None:
    async def fetch() -> None:
        return None

    fetch.__qualname__ = "deep." * 100 + "fetch"
    decorated = retry(fetch)
    name = decorated.retry_policy.name  # type: ignore[attr-defined]
    assert name.endswith(".fetch") and len(name) == 200
