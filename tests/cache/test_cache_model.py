"""Model-based test of the fallback and write-back logic, on virtual time.

Hypothesis drives a :class:`ResilientCache` over an in-process backend (a
dict with expiry on the same :class:`FakeClock`) that can go down (raising
the real ``ConnectionRefusedError`` a refused socket raises), come back, or
come back empty (a restart). A plain dict is the model. After every step:

- a read returns the key's last written value (if not expired) or nothing;
  never an older value, an expired one or a deleted key's;
- while the breaker is open (and its wait has not passed) no call reaches
  the backend;

and after the backend is back and the cache has settled, the backend holds
exactly the model's value of every key written since the last restart.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

from cache_servers import DictBackend
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from virtuoso_resilience import CircuitState, FakeClock
from virtuoso_resilience.cache import CacheConfig, ResilientCache

KEYS = ["a", "b"]
RECOVERY = 2.0


class CacheMachine(RuleBasedStateMachine):
    @initialize()
    def start(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.clock = FakeClock()
        self.backend = DictBackend(self.clock)
        config = CacheConfig(
            name="model",
            retry_attempts=2,
            retry_base_delay=0.0,
            retry_max_delay=0.01,
            failure_threshold=2,
            recovery_timeout=RECOVERY,
            fallback_ttl=1_000.0,
        )
        self.cache = self.run(self._build(config))
        # key -> (value, expires_at) or None (deleted); the write's time
        self.model: dict[str, tuple[int, float | None] | None] = {}
        self.written_at: dict[str, int] = {}  # step of the key's last write
        self.restarted_at = -1  # step of the last restart
        self.step = 0
        self.seq = 0

    async def _build(self, config: CacheConfig) -> ResilientCache:
        return ResilientCache(self.backend, config, clock=self.clock)

    def run(self, coro: Coroutine[Any, Any, Any]) -> Any:
        result = self.loop.run_until_complete(coro)
        for _ in range(3):  # let background work (the recovery task) take its steps
            self.loop.run_until_complete(asyncio.sleep(0))
        return result

    def teardown(self) -> None:
        if hasattr(self, "loop"):
            self.run(self.cache.close())
            self.loop.close()

    def _open(self) -> bool:
        wait = self.cache.breaker.retry_after
        return self.cache.breaker.state is CircuitState.OPEN and wait is not None and wait > 0

    def _op(self, coro: Coroutine[Any, Any, Any]) -> Any:
        was_open, calls = self._open(), self.backend.calls
        result = self.run(coro)
        if was_open:
            assert self.backend.calls == calls, "a backend call while the breaker was open"
        return result

    def _expected(self, key: str) -> int | None:
        entry = self.model.get(key)
        if entry is None:
            return None
        value, expires_at = entry
        if expires_at is not None and expires_at <= self.clock.now():
            return None
        return value

    # ------------------------------------------------------------------ rules

    @rule(key=st.sampled_from(KEYS), ttl=st.sampled_from([None, 1.0]))
    def set(self, key: str, ttl: float | None) -> None:
        self.seq += 1
        self._op(self.cache.set(key, self.seq, ttl=ttl))
        now = self.clock.now()
        self.model[key] = (self.seq, None if ttl is None else now + ttl)
        self.step += 1
        self.written_at[key] = self.step

    @rule(key=st.sampled_from(KEYS))
    def delete(self, key: str) -> None:
        self._op(self.cache.delete(key))
        self.model[key] = None
        self.step += 1
        self.written_at[key] = self.step

    @rule(key=st.sampled_from(KEYS))
    def get(self, key: str) -> None:
        got = self._op(self.cache.get(key))
        if got is not None:
            assert got == self._expected(key), (key, got, self.model.get(key))

    @rule(keys=st.lists(st.sampled_from(KEYS), min_size=1, max_size=3, unique=True))
    def get_many(self, keys: list[str]) -> None:
        found = self._op(self.cache.get_many(keys))
        for key, got in found.items():
            assert got == self._expected(key), (key, got, self.model.get(key))

    @rule(seconds=st.sampled_from([0.5, 1.0, 3.0]))
    def advance(self, seconds: float) -> None:
        self.clock.advance(seconds)
        self.run(asyncio.sleep(0))

    @precondition(lambda self: not self.backend.down)
    @rule()
    def go_down(self) -> None:
        self.backend.down = True

    @precondition(lambda self: self.backend.down)
    @rule(empty=st.booleans())
    def come_back(self, empty: bool) -> None:
        self.backend.down = False
        if empty:  # a restarted memcached has lost everything
            self.backend.data.clear()
            self.step += 1
            self.restarted_at = self.step

    @precondition(lambda self: not self.backend.down)
    @rule(
        writes=st.lists(
            st.tuples(
                st.sampled_from(KEYS),
                st.sampled_from(["set", "delete"]),
                st.sampled_from([None, 1.0]),
            ),
            min_size=1,
            max_size=6,
        ),
        seconds=st.sampled_from([0.0, 0.5, 3.0]),
        empty=st.booleans(),
    )
    def outage(
        self, writes: list[tuple[str, str, float | None]], seconds: float, empty: bool
    ) -> None:
        """A whole outage in one step: the keys written first (so the backend holds
        older values), down, writes, time passes, back (maybe empty), settled."""
        for key, _, _ in writes:
            self.set(key, None)
        self.go_down()
        for key, kind, ttl in writes:
            if kind == "set":
                self.set(key, ttl)
            else:
                self.delete(key)
            self.get(key)
        self.advance(seconds)
        self.come_back(empty)
        self.settle()

    @precondition(lambda self: not self.backend.down)
    @rule()
    def settle(self) -> None:
        """Let the breaker's wait pass and the write-back finish; then compare."""
        for _ in range(20):
            if not self.cache.degraded:
                break
            self.clock.advance(RECOVERY)
            self.run(asyncio.sleep(0))
        assert not self.cache.degraded
        assert self.cache.snapshot()["dirty"] == 0
        for key in KEYS:
            want = self._expected(key)
            have = self.backend._live(key)
            got = None if have is None else self.cache._serializer.loads(have)
            if self.written_at.get(key, -2) > self.restarted_at:
                assert got == want, (key, got, want)
            else:
                assert got is None or got == want, (key, got, want)

    @invariant()
    def fallback_bounded(self) -> None:
        if hasattr(self, "cache"):
            snap = self.cache.snapshot()
            assert snap["fallback_entries"] <= len(KEYS)
            assert snap["fallback_dirty_dropped"] == 0


CacheMachine.TestCase.settings = settings(max_examples=60, stateful_step_count=40, deadline=None)
test_cache_model = CacheMachine.TestCase
