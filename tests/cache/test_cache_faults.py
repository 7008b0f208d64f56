"""Outages against real servers: kill, pause, flap, for every client library.

10,000 mixed operations on 300 keys run from four tasks (each owning its
keys, so every key's operations are sequential and a model can say what a
read may return). In the middle the server is killed (SIGKILL) or paused
(SIGSTOP), then restarted or resumed; the breaker's recovery wait passes on
virtual time. Checked:

- no exception reaches a caller;
- no read returns a value other than the key's last written one (a miss is
  allowed: a restarted server lost its data), and never a deleted key's;
- after recovery the backend holds exactly the last written value (or no
  value, for a delete) of every key written during or after the outage.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from cache_servers import ClientFactory, ServerFactory, ServerProcess

from virtuoso_resilience import FakeClock
from virtuoso_resilience.cache import CacheConfig, ResilientCache

OPS = 10_000
KEYS = 300
WORKERS = 4
DELETED = object()


def fault_config(name: str) -> CacheConfig:
    return CacheConfig(
        name=name,
        timeout=0.1,
        retry_attempts=2,
        retry_base_delay=0.0,
        retry_max_delay=0.01,
        failure_threshold=3,
        recovery_timeout=1.0,
    )


@dataclass
class Run:
    """The model: each key's last written value, and what went wrong."""

    model: dict[str, Any] = field(default_factory=dict)
    written_at: dict[str, int] = field(default_factory=dict)
    violations: list[str] = field(default_factory=list)
    done: int = 0
    reads: int = 0
    misses: int = 0

    def check(self, key: str, got: Any) -> None:
        self.reads += 1
        want = self.model.get(key, DELETED)
        if got is None:
            self.misses += 1
            return
        if want is DELETED:
            self.violations.append(f"read {key}: got {got!r} after a delete (or never written)")
        elif got != want:
            self.violations.append(f"read {key}: got {got!r}, last written {want!r}")


async def worker(cache: ResilientCache, run: Run, index: int, ops: int, seed: int) -> None:
    rng = random.Random(seed)
    keys = [f"k{n}" for n in range(index, KEYS, WORKERS)]
    for step in range(ops):
        key = rng.choice(keys)
        roll = rng.random()
        if roll < 0.45:
            run.check(key, await cache.get(key))
        elif roll < 0.80:
            value = {"key": key, "seq": run.done, "w": index}
            await cache.set(key, value)
            run.model[key] = value
            run.written_at[key] = run.done
        elif roll < 0.90:
            await cache.delete(key)
            run.model[key] = DELETED
            run.written_at[key] = run.done
        else:
            some = rng.sample(keys, 3)
            found = await cache.get_many(some)
            for k in some:
                run.check(k, found.get(k))
        run.done += 1
        if step % 3 == 0:
            await asyncio.sleep(0)  # let the controller and the recovery task in


async def wait_until(predicate: Callable[[], bool], clock: FakeClock, step: float) -> None:
    """Advance virtual time and let I/O happen until ``predicate`` holds (5 s guard)."""
    for _ in range(500):
        if predicate():
            return
        clock.advance(step)
        await asyncio.sleep(0.01)
    raise AssertionError("condition not reached")


Fault = Callable[[ServerProcess, FakeClock, Run], Awaitable[int]]


async def kill_restart(server: ServerProcess, clock: FakeClock, run: Run) -> int:
    await until_done(run, 2_500)
    fault_at = run.done
    server.kill()
    await until_done(run, 5_000)
    await server.restart()
    clock.advance(1.0)  # the breaker's recovery wait
    return fault_at


async def pause_resume(server: ServerProcess, clock: FakeClock, run: Run) -> int:
    await until_done(run, 2_500)
    fault_at = run.done
    server.pause()
    await until_done(run, 5_000)
    server.resume()
    await server._wait_ready()
    clock.advance(1.0)
    return fault_at


async def flap(server: ServerProcess, clock: FakeClock, run: Run) -> int:
    """Kill, pause, kill. Returns when the last kill happened: a kill loses the
    server's data, so only keys written from then on must be there."""
    fault_at = -1
    for start in (1_500, 4_000, 6_500):
        await until_done(run, start)
        if start == 4_000:
            server.pause()
        else:
            fault_at = run.done
            server.kill()
        await until_done(run, start + 800)
        if server.paused:
            server.resume()
            await server._wait_ready()
        else:
            await server.restart()
        clock.advance(1.0)
    return fault_at


async def until_done(run: Run, ops: int) -> None:
    while run.done < ops:  # noqa: ASYNC110 - the workers yield every few operations
        await asyncio.sleep(0)


async def raw_get(raw: Any, kind: str, key: str) -> bytes | None:
    if kind == "aiomcache":
        value: bytes | None = await raw.get(key.encode())
        return value
    if kind == "emcache":
        item = await raw.get(key.encode())
        return None if item is None else bytes(item.value)
    result: bytes | None = await raw.get(key)
    return result


async def outage(
    make_server: ServerFactory, make_client: ClientFactory, kind: str, fault: Fault
) -> None:
    server = await make_server("redis" if kind == "redis" else "memcached")
    clock = FakeClock()
    cache = ResilientCache(await make_client(server, kind), fault_config(kind), clock=clock)
    run = Run()
    controller = asyncio.create_task(fault(server, clock, run))
    await asyncio.gather(*(worker(cache, run, w, OPS // WORKERS, seed=w) for w in range(WORKERS)))
    fault_at = await controller
    assert run.done == OPS
    await wait_until(lambda: not cache.degraded, clock, 1.0)
    await cache.flush()

    assert run.violations == []
    snapshot = cache.snapshot()
    assert snapshot["degraded_episodes"] >= 1
    assert snapshot["fallback_hits"] > 0
    assert snapshot["writebacks"] + snapshot["deletes_replayed"] > 0
    assert snapshot["dirty"] == 0
    assert sum(snapshot["backend_errors_by_kind"].values()) > 0, snapshot
    if fault is pause_resume:
        # Ours (ResilienceTimeoutError) or the client's own (redis-py's socket
        # timeout, which the cache sets to the same limit): a timeout, not a stall.
        assert any("Timeout" in name for name in snapshot["backend_errors_by_type"]), snapshot

    checker = await make_client(server, kind)
    serializer = cache._serializer
    mismatches = []
    for key, want in run.model.items():
        data = await raw_get(checker, kind, key)
        got = DELETED if data is None else serializer.loads(data)
        if run.written_at[key] >= fault_at:
            if got != want and not (got is DELETED and want is DELETED):
                mismatches.append((key, want, got))
        elif got is not DELETED and got != want:
            mismatches.append((key, want, got))
    assert mismatches == []
    await cache.close()


@pytest.mark.parametrize("kind", ["aiomcache", "redis", "emcache"])
async def test_kill_and_restart_in_the_middle_of_10000_operations(
    make_server: ServerFactory, make_client: ClientFactory, kind: str
) -> None:
    await outage(make_server, make_client, kind, kill_restart)


@pytest.mark.parametrize("kind", ["aiomcache", "redis", "emcache"])
async def test_sigstop_hang_times_out_and_recovers(
    make_server: ServerFactory, make_client: ClientFactory, kind: str
) -> None:
    await outage(make_server, make_client, kind, pause_resume)


@pytest.mark.parametrize("kind", ["aiomcache", "redis", "emcache"])
async def test_flapping_server(
    make_server: ServerFactory, make_client: ClientFactory, kind: str
) -> None:
    await outage(make_server, make_client, kind, flap)
