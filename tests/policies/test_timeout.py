"""TimeoutPolicy on loop time (looptime: a 30 s limit runs instantly)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from virtuoso_resilience.errors import ConfigurationError, ResilienceTimeoutError
from virtuoso_resilience.policies import TimeoutConfig, TimeoutPolicy

pytestmark = pytest.mark.looptime


async def sleeper(seconds: float, value: Any = "done") -> Any:
    await asyncio.sleep(seconds)
    return value


def now() -> float:
    return asyncio.get_running_loop().time()


async def test_fast_call_returns_its_value() -> None:
    policy = TimeoutPolicy("fetch", seconds=30.0)
    assert await policy.call_async(sleeper, 29.0, value=42) == 42
    assert (policy.calls, policy.timeouts) == (1, 0)


async def test_slow_call_times_out_at_the_limit() -> None:
    policy = TimeoutPolicy("fetch", seconds=30.0)
    start = now()
    with pytest.raises(ResilienceTimeoutError) as info:
        await policy.call_async(sleeper, 3600.0)
    assert now() - start == pytest.approx(30.0)
    error = info.value
    assert isinstance(error, TimeoutError)
    assert isinstance(error, asyncio.TimeoutError)
    assert (error.operation, error.limit, error.scope) == ("fetch", 30.0, "attempt")
    assert isinstance(error.__cause__, asyncio.CancelledError)
    assert "'fetch' timed out after 30s (attempt limit)" in str(error)
    assert (policy.calls, policy.timeouts) == (1, 1)


async def test_the_inner_call_is_cancelled_and_cleans_up() -> None:
    seen: list[str] = []

    async def slow() -> None:
        try:
            await asyncio.sleep(100)
        except asyncio.CancelledError:
            seen.append("cancelled")
            raise
        finally:
            seen.append("cleanup")

    with pytest.raises(ResilienceTimeoutError):
        await TimeoutPolicy(seconds=1.0).call_async(slow)
    assert seen == ["cancelled", "cleanup"]


async def test_operation_scope_is_reported() -> None:
    policy = TimeoutPolicy("order", seconds=5.0, scope="operation")
    with pytest.raises(ResilienceTimeoutError) as info:
        await policy.call_async(sleeper, 10.0)
    assert info.value.scope == "operation"
    assert "operation limit" in str(info.value)


async def test_the_calls_own_timeout_error_passes_through_untouched() -> None:
    class Mine(TimeoutError):
        pass

    async def gives_up() -> None:
        await asyncio.sleep(1.0)
        raise Mine("server-side timeout")

    policy = TimeoutPolicy(seconds=30.0)
    with pytest.raises(Mine) as info:
        await policy.call_async(gives_up)
    assert not isinstance(info.value, ResilienceTimeoutError)
    assert policy.timeouts == 0


async def test_caller_cancellation_propagates_untouched() -> None:
    policy = TimeoutPolicy(seconds=30.0)
    task = asyncio.create_task(policy.call_async(sleeper, 100.0))
    await asyncio.sleep(5.0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert task.cancelled()
    assert policy.timeouts == 0


async def test_caller_cancellation_at_the_deadline_wins() -> None:
    policy = TimeoutPolicy(seconds=10.0)
    task = asyncio.create_task(policy.call_async(sleeper, 100.0))
    await asyncio.sleep(0)  # the call is running, its deadline armed at t0 + 10
    asyncio.get_running_loop().call_at(now() + 10.0, task.cancel)
    with pytest.raises(asyncio.CancelledError):
        await task
    assert task.cancelled()
    assert policy.timeouts == 0


async def test_timeout_inside_a_cancelled_scope_does_not_swallow_outer_cancel() -> None:
    # The outer task is cancelled while its inner call already timed out and is
    # cleaning up: the outer cancellation must still arrive.
    async def stubborn() -> None:
        try:
            await asyncio.sleep(100)
        finally:
            await asyncio.sleep(2.0)  # slow clean-up after the timeout cancel

    policy = TimeoutPolicy(seconds=1.0)
    task = asyncio.create_task(policy.call_async(stubborn))
    await asyncio.sleep(1.5)  # timed out at 1.0, cleaning up until 3.0
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert policy.timeouts == 0


async def test_runtime_change_applies_to_the_next_call() -> None:
    policy = TimeoutPolicy(seconds=30.0)
    assert await policy.call_async(sleeper, 20.0) == "done"
    policy.config.seconds = 10.0
    start = now()
    with pytest.raises(ResilienceTimeoutError) as info:
        await policy.call_async(sleeper, 20.0)
    assert info.value.limit == 10.0
    assert now() - start == pytest.approx(10.0)


async def test_many_concurrent_calls_each_get_their_own_deadline() -> None:
    policy = TimeoutPolicy(seconds=50.0)
    durations = [float(i) for i in range(0, 100)]  # 0..99 s: 50..99 time out
    results = await asyncio.gather(
        *(policy.call_async(sleeper, d, value=d) for d in durations), return_exceptions=True
    )
    ok = [r for r in results if not isinstance(r, BaseException)]
    timed_out = [r for r in results if isinstance(r, ResilienceTimeoutError)]
    assert ok == durations[:50]
    assert len(timed_out) == 50
    assert (policy.calls, policy.timeouts) == (100, 50)


async def test_decorator() -> None:
    policy = TimeoutPolicy("decorated", seconds=3.0)

    @policy
    async def fetch(symbol: str, *, delay: float) -> str:
        await asyncio.sleep(delay)
        return symbol

    assert fetch.__name__ == "fetch"
    assert await fetch("BTC/USDT", delay=1.0) == "BTC/USDT"
    with pytest.raises(ResilienceTimeoutError):
        await fetch("BTC/USDT", delay=4.0)
    assert policy.snapshot()["timeouts"] == 1


def test_decorating_a_sync_function_is_an_error() -> None:
    policy = TimeoutPolicy(seconds=1.0)
    with pytest.raises(TypeError, match="async def"):
        policy(lambda: None)  # type: ignore[arg-type, return-value]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("seconds", 0),
        ("seconds", -1.0),
        ("seconds", float("nan")),
        ("seconds", float("inf")),
        ("seconds", "10"),
        ("scope", "forever"),
    ],
)
def test_invalid_values_are_rejected_and_leave_the_old_value(field: str, value: Any) -> None:
    with pytest.raises(ConfigurationError) as info:
        TimeoutConfig(**{field: value})
    assert info.value.fields == (field,)
    policy = TimeoutPolicy(seconds=7.0, scope="attempt")
    before = getattr(policy.config, field)
    with pytest.raises(ConfigurationError, match=field):
        setattr(policy.config, field, value)
    assert getattr(policy.config, field) == before


def test_construction_variants() -> None:
    config = TimeoutConfig(seconds=2.5)
    policy = TimeoutPolicy("a", config)
    assert policy.name == "a" and config.name == "a" and policy.config is config
    assert TimeoutPolicy(seconds=1.0).name == "timeout"
    assert TimeoutPolicy(config=TimeoutConfig(name="b")).name == "b"
    with pytest.raises(ConfigurationError, match="name"):
        TimeoutPolicy("c", TimeoutConfig(name="d"))
    with pytest.raises(TypeError, match="not both"):
        TimeoutPolicy("e", TimeoutConfig(), seconds=1.0)
    with pytest.raises(ConfigurationError, match="unknown field"):
        TimeoutPolicy("f", secs=1.0)


async def test_snapshot_and_repr() -> None:
    policy = TimeoutPolicy("fetch", seconds=2.0)
    await policy.call_async(sleeper, 1.0)
    with pytest.raises(ResilienceTimeoutError):
        await policy.call_async(sleeper, 3.0)
    snap = policy.snapshot()
    assert json.loads(json.dumps(snap)) == {
        "name": "fetch",
        "kind": "timeout",
        "seconds": 2.0,
        "scope": "attempt",
        "calls": 2,
        "timeouts": 1,
    }
    assert repr(policy) == ("<TimeoutPolicy 'fetch' seconds=2 scope=attempt calls=2 timeouts=1>")
