"""Hypothesis stateful test: the breaker against a small reference model."""

from __future__ import annotations

import asyncio

import ccxt
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from virtuoso_resilience import CircuitBreaker, CircuitBreakerConfig, CircuitOpenError, FakeClock


class Model:
    """Consecutive-failure breaker, one trial at a time, as documented."""

    def __init__(self, failure_threshold: int, success_threshold: int, timeout: float) -> None:
        self.ft, self.st, self.timeout = failure_threshold, success_threshold, timeout
        self.state = "closed"
        self.fails = 0
        self.trial_successes = 0
        self.open_until = 0.0

    def call(self, kind: str, now: float) -> str:
        """Returns what the caller sees: 'ok', 'error' or 'rejected'."""
        if self.state == "open":
            if now < self.open_until:
                return "rejected"
            self.state, self.trial_successes = "half_open", 0
        if kind == "business":
            return "error"
        if kind == "success":
            self.fails = 0
            if self.state == "half_open":
                self.trial_successes += 1
                if self.trial_successes >= self.st:
                    self.state = "closed"
            return "ok"
        self.fails += 1
        if self.state == "half_open" or self.fails >= self.ft:
            self.state, self.open_until = "open", now + self.timeout
        return "error"


class Transient(ConnectionError):
    pass


async def succeed() -> str:
    return "ok"


async def transient() -> str:
    raise Transient("reset")


async def business() -> str:
    raise ccxt.InvalidOrder("bybit bad qty")


FUNCS = {"success": succeed, "failure": transient, "business": business}


class BreakerMachine(RuleBasedStateMachine):
    @initialize(
        ft=st.integers(1, 5), succ=st.integers(1, 3), timeout=st.sampled_from([1.0, 5.0, 60.0])
    )
    def setup(self, ft: int, succ: int, timeout: float) -> None:
        self.loop = asyncio.new_event_loop()
        self.clock = FakeClock()
        self.cb = CircuitBreaker(
            "model",
            CircuitBreakerConfig(failure_threshold=ft, success_threshold=succ, timeout=timeout),
            clock=self.clock,
        )
        self.model = Model(ft, succ, timeout)

    def teardown(self) -> None:
        if hasattr(self, "loop"):
            self.loop.close()

    @rule(kind=st.sampled_from(sorted(FUNCS)))
    def call(self, kind: str) -> None:
        expected = self.model.call(kind, self.clock.now())
        try:
            self.loop.run_until_complete(self.cb.call_async(FUNCS[kind]))
            seen = "ok"
        except CircuitOpenError:
            seen = "rejected"
        except (Transient, ccxt.InvalidOrder):
            seen = "error"
        assert seen == expected

    @rule(dt=st.floats(0, 120, allow_nan=False))
    def advance(self, dt: float) -> None:
        self.clock.advance(dt)

    @invariant()
    def same_state(self) -> None:
        if hasattr(self, "cb"):
            assert self.cb.state.value == self.model.state


BreakerMachine.TestCase.settings = settings(max_examples=150, stateful_step_count=40, deadline=None)
TestBreakerAgainstModel = BreakerMachine.TestCase
