"""Hostile review of the policies and the one listener contract (_events)."""

from __future__ import annotations

import asyncio
from typing import Any, NoReturn

import pytest

from virtuoso_resilience import CircuitBreaker, CircuitBreakerConfig, CircuitState
from virtuoso_resilience._events import Listeners
from virtuoso_resilience.errors import ConfigurationError, ResilienceTimeoutError
from virtuoso_resilience.policies import RateLimiter, RateLimiterConfig, TimeoutPolicy


class _AttributeDict:
    """A callable whose unknown attributes raise KeyError (a config proxy, a
    Mock-like object): ``getattr(obj, "__qualname__", None)`` raises."""

    def __init__(self) -> None:
        self.events: list[Any] = []

    def __getattr__(self, name: str) -> NoReturn:
        raise KeyError(name)

    def __call__(self, event: Any) -> None:
        self.events.append(event)
        raise RuntimeError("listener failed")


def test_emit_never_raises_for_a_failing_listener_without_a_name() -> None:
    """Defect: naming a failing listener for the log line used getattr with a
    default, which only swallows AttributeError; a listener whose attribute
    lookup raises anything else made emit() raise, breaking 'never raises'."""
    hub: Listeners[str] = Listeners("review")
    listener = _AttributeDict()
    hub.add(listener)
    hub.emit("event")
    assert listener.events == ["event"]
    assert hub.stats().failed == 1


async def test_breaker_call_survives_a_failing_listener_without_a_name() -> None:
    breaker = CircuitBreaker("review", CircuitBreakerConfig(failure_threshold=1))
    listener = _AttributeDict()
    breaker.add_listener(on_state_change=listener)

    async def down() -> None:
        raise ConnectionError("down")

    with pytest.raises(ConnectionError):
        await breaker.call_async(down)
    assert breaker.state is CircuitState.OPEN
    assert len(listener.events) == 1


@pytest.mark.looptime
async def test_timeout_bounds_a_callee_that_ignores_cancellation() -> None:
    """Defect: TimeoutPolicy uses ``asyncio.timeout`` around the callee in the
    caller's own task, so a callee that swallows the cancellation keeps the
    caller for as long as it likes (here an hour past a 1 s limit) and then
    its value comes back as if no limit had passed."""
    loop = asyncio.get_running_loop()
    finished = asyncio.Event()

    async def stubborn() -> str:
        try:
            await asyncio.sleep(10.0)
        except asyncio.CancelledError:
            pass  # ignores the cancellation
        await asyncio.sleep(3600.0)
        finished.set()
        return "late"

    policy = TimeoutPolicy("stubborn", seconds=1.0)
    start = loop.time()
    with pytest.raises(ResilienceTimeoutError):
        await policy.call_async(stubborn)
    assert loop.time() - start < 2.0  # virtual (looptime) seconds
    assert policy.timeouts == 1


@pytest.mark.parametrize("method", ["pause_for", "update_from_headers"])
def test_rate_limiter_errors_for_huge_ints_are_readable(method: str) -> None:
    """Defect: the messages quote the value with f-string formatting, so an
    int of over 4,300 digits made building the error raise ValueError
    ("Exceeds the limit ... for integer string conversion") instead."""
    limiter = RateLimiter("review", RateLimiterConfig(rate=1.0, capacity=1.0))
    huge = 10**5000

    def call() -> None:
        if method == "pause_for":
            limiter.pause_for(huge)
        else:
            limiter.update_from_headers(limit=huge, remaining=1, reset_in=1.0)

    with pytest.raises((ValueError, ConfigurationError)) as caught:
        call()
    message = str(caught.value)
    assert method in message
    assert len(message) < 1000
