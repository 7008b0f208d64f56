"""The one policy core: name/config binding, one listener contract, snapshots, weak observers."""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import weakref
from collections.abc import Callable
from typing import Any

import ccxt
import pytest

import virtuoso_resilience
from virtuoso_resilience import (
    Bulkhead,
    BulkheadConfig,
    BulkheadFullError,
    BulkheadRejectionEvent,
    CallEvent,
    CircuitBreaker,
    CircuitBreakerConfig,
    ConfigurationError,
    FakeClock,
    Fallback,
    FallbackConfig,
    FallbackEvent,
    OutcomeKind,
    RateLimiter,
    RateLimiterConfig,
    RateLimitEvent,
    RateLimitTimeoutError,
    RejectionEvent,
    ResiliencePipeline,
    RetryConfig,
    RetryEvent,
    RetryPolicy,
    StateChangeEvent,
    TimeoutConfig,
    TimeoutEvent,
    TimeoutPolicy,
)
from virtuoso_resilience import policies as policies_package
from virtuoso_resilience.policies import Policy
from virtuoso_resilience.policies._core import NO_LISTENERS

# One factory per policy: (name, config) -> policy.
FACTORIES: dict[str, Callable[[str | None, Any], Policy[Any]]] = {
    "circuit_breaker": lambda name, config: CircuitBreaker("cb" if name is None else name, config),
    "bulkhead": lambda name, config: Bulkhead(name, config),
    "rate_limiter": lambda name, config: RateLimiter(
        name, config, **({} if config else {"rate": 1.0, "capacity": 1.0})
    ),
    "timeout": lambda name, config: TimeoutPolicy(name, config),
    "fallback": lambda name, config: Fallback(name, config, value=0),
}
CONFIGS: dict[str, Callable[..., Any]] = {
    "circuit_breaker": CircuitBreakerConfig,
    "bulkhead": BulkheadConfig,
    "rate_limiter": lambda **kw: RateLimiterConfig(rate=1.0, capacity=1.0, **kw),
    "timeout": TimeoutConfig,
    "fallback": FallbackConfig,
}

HOSTILE_NAMES = ["", "a\nb", "tab\there", "nul\x00", "x" * 201, "x" * 1_000_000]


# ------------------------------------------------------------------ binding


@pytest.mark.parametrize("kind", sorted(FACTORIES))
@pytest.mark.parametrize("name", HOSTILE_NAMES, ids=lambda n: repr(n[:12]) + f"[{len(n)}]")
def test_every_policy_refuses_a_bad_name(kind: str, name: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        FACTORIES[kind](name, None)
    assert info.value.fields == ("name",)
    assert len(str(info.value)) < 400  # a 1 MB name is never echoed whole


@pytest.mark.parametrize("name", HOSTILE_NAMES[:4], ids=repr)
def test_retry_refuses_a_bad_name(name: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        RetryPolicy(name=name)
    assert info.value.fields == ("name",)


@pytest.mark.parametrize("kind", sorted(FACTORIES))
def test_non_string_names_are_refused(kind: str) -> None:
    with pytest.raises(ConfigurationError, match="must be a string"):
        FACTORIES[kind](123, None)  # type: ignore[arg-type]


@pytest.mark.parametrize("kind", sorted(FACTORIES))
def test_a_config_without_a_name_gets_the_policy_name(kind: str) -> None:
    config = CONFIGS[kind]()
    policy = FACTORIES[kind]("orders", config)
    assert policy.name == "orders"
    assert config.name == "orders"
    assert policy.config is config


@pytest.mark.parametrize("kind", sorted(FACTORIES))
def test_a_config_named_for_another_policy_is_refused(kind: str) -> None:
    config = CONFIGS[kind](name="other")
    with pytest.raises(ConfigurationError) as info:
        FACTORIES[kind]("orders", config)
    assert info.value.fields == ("name",)
    assert "must be 'orders'" in str(info.value)
    assert config.name == "other"  # untouched


def test_config_and_settings_are_exclusive_and_config_must_match_the_policy() -> None:
    with pytest.raises(TypeError, match="not both"):
        Bulkhead("b", BulkheadConfig(), max_concurrent=3)
    with pytest.raises(TypeError, match="not both"):
        CircuitBreaker("b", CircuitBreakerConfig(), failure_threshold=3)
    with pytest.raises(TypeError, match="must be a BulkheadConfig"):
        Bulkhead("b", TimeoutConfig())  # type: ignore[arg-type]
    # keyword settings build the config; the name defaults per policy
    assert CircuitBreaker("cb", failure_threshold=2).config.failure_threshold == 2
    assert Bulkhead().name == "bulkhead"
    assert TimeoutPolicy().name == "timeout"
    assert RetryPolicy().name == "retry"
    assert RetryPolicy(name="orders").config.name == "orders"


# ------------------------------------------------------------- public surface


EVENTS = [
    "BulkheadRejectionEvent",
    "CallEvent",
    "FallbackEvent",
    "RateLimitEvent",
    "RejectionEvent",
    "RetryEvent",
    "StateChangeEvent",
    "TimeoutEvent",
]


def test_event_types_are_public_from_the_top_level_and_the_policies_package() -> None:
    for name in EVENTS:
        assert name in virtuoso_resilience.__all__
        assert name in policies_package.__all__
        assert getattr(virtuoso_resilience, name) is getattr(policies_package, name)
    assert list(virtuoso_resilience.__all__) == sorted(
        virtuoso_resilience.__all__, key=lambda n: (not n.isupper(), not n[:1].isupper(), n)
    )


# ------------------------------------------------------- one listener contract


async def test_bulkhead_publishes_its_rejections() -> None:
    bulkhead = Bulkhead("orders", max_concurrent=1)
    seen: list[BulkheadRejectionEvent] = []
    bulkhead.add_listener(seen.append)
    gate = asyncio.Event()
    holder = asyncio.create_task(bulkhead.call_async(gate.wait))
    await asyncio.sleep(0)
    with pytest.raises(BulkheadFullError):
        await bulkhead.call_async(gate.wait)
    gate.set()
    await holder
    assert seen == [BulkheadRejectionEvent("orders", "no waiting place", 1, 0, 1, 0)]
    assert bulkhead.remove_listener(seen.append) is True


@pytest.mark.looptime
async def test_timeout_publishes_each_timeout() -> None:
    policy = TimeoutPolicy("fetch", seconds=5.0)
    seen: list[TimeoutEvent] = []
    policy.add_listener(seen.append)
    with pytest.raises(TimeoutError):
        await policy.call_async(asyncio.sleep, 60.0)
    assert seen == [TimeoutEvent("fetch", 5.0, "attempt")]


async def test_fallback_publishes_answers_and_exhaustion() -> None:
    def broken(error: Exception) -> Any:
        raise KeyError("cache miss")

    fallback = Fallback("ticker", tiers=[("cache", broken), ("default", 0.0)])
    seen: list[FallbackEvent] = []
    fallback.add_listener(seen.append)

    async def down() -> float:
        raise ccxt.NetworkError("reset")

    assert await fallback.call_async(down) == 0.0
    assert seen == [
        FallbackEvent("ticker", "default", "NetworkError", OutcomeKind.TRANSIENT, ("cache",))
    ]
    only_broken = Fallback("t2", func=broken)
    seen2: list[FallbackEvent] = []
    only_broken.add_listener(seen2.append)
    with pytest.raises(ccxt.NetworkError):
        await only_broken.call_async(down)
    assert [(e.tier, e.failed_tiers) for e in seen2] == [(None, ("func",))]


async def test_rate_limiter_publishes_pauses_budgets_and_rejections(clock: FakeClock) -> None:
    limiter = RateLimiter("bybit", rate=1.0, capacity=1.0, clock=clock)
    seen: list[RateLimitEvent] = []
    limiter.add_listener(seen.append)
    limiter.pause_for(2.0)
    limiter.update_from_headers(limit=120, remaining=5, reset_in=3.0)
    with pytest.raises(RateLimitTimeoutError):
        await limiter.acquire(1.0, max_wait=0.5)
    assert seen == [
        RateLimitEvent("bybit", "paused", 2.0),
        RateLimitEvent("bybit", "budget", 3.0, remaining=5.0),
        RateLimitEvent("bybit", "rejected", 2.0, cost=1.0),
    ]


async def test_breaker_streams_share_the_contract(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    cb = CircuitBreaker("ex", failure_threshold=1, timeout=5.0, clock=clock)
    states: list[StateChangeEvent] = []
    calls: list[CallEvent] = []
    rejections: list[RejectionEvent] = []
    never = asyncio.Event()

    async def hangs(event: object) -> None:
        await never.wait()

    def raises(event: object) -> None:
        raise RuntimeError("webhook https://user:pw@example.com")

    cb.add_listener(on_state_change=states.append, on_call=calls.append, on_rejection=raises)
    cb.add_listener(on_state_change=hangs, on_rejection=rejections.append)

    async def down() -> None:
        raise ccxt.NetworkError("reset")

    with caplog.at_level(logging.WARNING, logger="virtuoso_resilience.events"):
        with pytest.raises(ccxt.NetworkError):
            await cb.call_async(down)
        with pytest.raises(virtuoso_resilience.CircuitOpenError):
            await cb.call_async(down)
    assert [e.current.value for e in states] == ["open"]
    assert [c.counted for c in calls] == [True]
    assert [r.retry_after for r in rejections] == [5.0]
    stats = cb.listener_stats()
    assert (stats.listeners, stats.failed) == (5, 1)
    assert "RuntimeError" in caplog.text and "pw@" not in caplog.text
    assert cb.remove_listener(hangs) is True
    cb.close_listeners()


async def test_async_listeners_never_delay_or_fail_the_call(autoclock: FakeClock) -> None:
    # The same contract for every policy: an async listener that hangs or
    # raises changes nothing for the call.
    policy = RetryPolicy(clock=autoclock, base_delay=1.0, jitter="none", budget_ratio=None)
    never = asyncio.Event()

    async def hangs(event: RetryEvent) -> None:
        await never.wait()

    async def raises(event: RetryEvent) -> None:
        raise ValueError("token SECRET")

    policy.add_listener(hangs)
    policy.add_listener(raises)
    attempts = 0

    async def flaky() -> str:
        nonlocal attempts
        attempts += 1
        if attempts < 3:
            raise ccxt.NetworkError("reset")
        return "ok"

    assert await policy.call_async(flaky) == "ok"
    assert autoclock.slept == [1.0, 2.0]
    for _ in range(10):
        await asyncio.sleep(0)
    stats = policy.listener_stats()
    assert stats.listeners == 2
    assert stats.failed == 2
    policy.close_listeners()


# ------------------------------------------------------------------ snapshots


async def test_every_snapshot_dict_is_json(clock: FakeClock) -> None:
    policies: list[Policy[Any]] = [
        CircuitBreaker("cb", clock=clock),
        RetryPolicy(clock=clock),
        TimeoutPolicy("t"),
        Bulkhead("b"),
        RateLimiter("r", rate=1.0, capacity=1.0, clock=clock),
        Fallback("f", value=None),
    ]
    for policy in policies:
        data = policy.snapshot_dict()
        assert data["name"] == policy.name
        json.dumps(data, allow_nan=False)
    pipe = ResiliencePipeline(
        "p",
        retry=RetryPolicy(clock=clock),
        circuit_breaker=CircuitBreaker("p", clock=clock),
        bulkhead=Bulkhead("p"),
    )
    json.dumps(pipe.snapshot(), allow_nan=False)


# ------------------------------------------------------ weakly held observers


def _collected(refs: list[weakref.ref[Any]]) -> int:
    gc.collect()
    return sum(1 for r in refs if r() is None)


async def test_a_thousand_limiters_sharing_a_config_are_collected(clock: FakeClock) -> None:
    config = RateLimiterConfig(name="shared", rate=10.0, capacity=10.0)
    limiters = [RateLimiter("shared", config, clock=clock) for _ in range(1000)]
    refs = [weakref.ref(limiter) for limiter in limiters]
    keep = limiters[::100]
    del limiters
    assert _collected(refs) == 990
    config.rate = 2.0  # still reaches the live ones
    assert all(limiter.snapshot()["rate"] == 2.0 for limiter in keep)
    assert len(config._observers) == 10  # the dead ones are forgotten
    del keep
    assert _collected(refs) == 1000


async def test_a_thousand_breakers_and_retries_sharing_a_config_are_collected(
    clock: FakeClock,
) -> None:
    cb_config = CircuitBreakerConfig(name="shared", sliding_window_size=10, minimum_calls=5)
    breakers = [CircuitBreaker("shared", cb_config, clock=clock) for _ in range(1000)]
    retry_config = RetryConfig(name="shared")
    retries = [RetryPolicy(retry_config, clock=clock) for _ in range(1000)]
    for breaker in breakers[:10]:
        breaker.add_listener(on_state_change=lambda e: None)  # listeners do not pin it either
    del breaker
    refs: list[weakref.ref[Any]] = [weakref.ref(p) for p in [*breakers, *retries]]
    live_cb, live_retry = breakers[-1], retries[-1]
    del breakers, retries
    assert _collected(refs) == 1998
    cb_config.failure_rate_threshold = 50.0  # the live breaker builds its window
    assert live_cb.window_totals() is not None
    retry_config.max_attempts = 2
    attempts = 0

    async def down() -> None:
        nonlocal attempts
        attempts += 1
        raise ccxt.NetworkError("reset")

    clock_task = asyncio.create_task(live_retry.call_async(down))
    for _ in range(5):
        await asyncio.sleep(0)
    clock.advance(60.0)
    with pytest.raises(ccxt.NetworkError):
        await clock_task
    assert attempts == 2
    del live_cb, live_retry, clock_task
    await asyncio.sleep(0)  # the loop's last callback of the finished task
    assert _collected(refs) == 2000


# ------------------------------------------------- one "already exists" check


def test_check_same_names_every_differing_field_once() -> None:
    current = CircuitBreakerConfig(name="bybit", failure_threshold=5, timeout=60.0)
    current.check_same(CircuitBreakerConfig(), owner="breaker 'bybit'", via="breaker.config")
    with pytest.raises(ConfigurationError) as info:
        current.check_same(
            CircuitBreakerConfig(name="other", failure_threshold=3, timeout=30.0),
            owner="breaker 'bybit'",
            via="breaker.config",
        )
    assert info.value.fields == ("failure_threshold", "timeout")  # never the name
    assert "breaker 'bybit' already exists with timeout=60.0" in str(info.value)
    assert "change it through breaker.config instead" in str(info.value)


@pytest.mark.parametrize("kind", sorted(CONFIGS))
@pytest.mark.parametrize("name", HOSTILE_NAMES, ids=lambda n: repr(n[:12]) + f"[{len(n)}]")
def test_every_policy_config_refuses_a_bad_name_without_echoing_it(kind: str, name: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        CONFIGS[kind](name=name)
    assert info.value.fields == ("name",)
    assert len(str(info.value)) < 400


@pytest.mark.parametrize("name", HOSTILE_NAMES[:4], ids=repr)
def test_a_pipeline_name_follows_the_same_rule(name: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        ResiliencePipeline(name)
    assert info.value.fields == ("name",)
    assert ResiliencePipeline("ok").snapshot_dict()["name"] == "ok"


async def test_removing_the_last_listener_restores_the_lean_path(clock: FakeClock) -> None:
    cb = CircuitBreaker("lean", clock=clock)
    calls: list[CallEvent] = []
    cb.add_listener(on_call=calls.append)
    assert cb._fast is False  # an on_call listener needs the full path
    await cb.call_async(asyncio.sleep, 0)
    assert cb.remove_listener(calls.append) is True
    assert cb._fast is True
    assert cb._call_hub is NO_LISTENERS  # nothing is built for nobody
    assert cb.remove_listener(calls.append) is False
    await cb.call_async(asyncio.sleep, 0)
    assert len(calls) == 1
    cb.add_listener(on_call=calls.append)  # the stream's hub is reused: counts go on
    await cb.call_async(asyncio.sleep, 0)
    assert cb.listener_stats().delivered == 2
    bulkhead = Bulkhead("b")
    seen: list[object] = []
    listener = seen.append
    assert bulkhead.add_listener(listener) is listener
    assert bulkhead.remove_listener(listener) is True
    assert bulkhead._events is NO_LISTENERS


@pytest.mark.parametrize(
    ("config", "field"),
    [
        (RetryConfig, "max_attempts"),
        (CircuitBreakerConfig, "failure_threshold"),
        (CircuitBreakerConfig, "half_open_max_calls"),
        (BulkheadConfig, "max_concurrent"),
        (BulkheadConfig, "max_waiting"),
    ],
)
def test_counts_are_bounded_so_snapshots_stay_json(config: Any, field: str) -> None:
    for huge in (10**5000, 10**9 + 1):
        with pytest.raises(ConfigurationError) as info:
            config(**{field: huge})
        assert info.value.fields == (field,)
        assert len(str(info.value)) < 400
    config(**{field: 10**9})  # the largest count accepted


def test_the_shared_empty_hub_cannot_be_subscribed_to() -> None:
    with pytest.raises(RuntimeError, match="shared"):
        NO_LISTENERS.add(print)
    assert not NO_LISTENERS
