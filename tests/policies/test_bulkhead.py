"""Bulkhead: slots, a FIFO waiting line, cancellation, runtime resize.

``max_wait`` runs on loop time: those tests use looptime, so a 2 s wait
passes instantly.
"""

from __future__ import annotations

import asyncio
import json
import random
from typing import Any

import pytest

from virtuoso_resilience.errors import BulkheadFullError, ConfigurationError
from virtuoso_resilience.policies import Bulkhead, BulkheadConfig


async def settle(rounds: int = 5) -> None:
    """Let every ready task run until the loop is quiet."""
    for _ in range(rounds):
        await asyncio.sleep(0)


class Gate:
    """Protected calls that block until the test opens them, recording order."""

    def __init__(self) -> None:
        self.entered: list[int] = []
        self.running = 0
        self.max_running = 0
        self._events: dict[int, asyncio.Event] = {}

    async def work(self, key: int) -> int:
        self.entered.append(key)
        self.running += 1
        self.max_running = max(self.max_running, self.running)
        try:
            await self._events.setdefault(key, asyncio.Event()).wait()
        finally:
            self.running -= 1
        return key

    def open(self, key: int) -> None:
        self._events.setdefault(key, asyncio.Event()).set()


async def test_admits_up_to_max_concurrent_then_rejects() -> None:
    bulkhead = Bulkhead("orders", max_concurrent=3)
    gate = Gate()
    tasks = [asyncio.create_task(bulkhead.call_async(gate.work, i)) for i in range(3)]
    await settle()
    assert bulkhead.active == 3 and gate.running == 3
    with pytest.raises(BulkheadFullError) as info:
        await bulkhead.call_async(gate.work, 99)
    error = info.value
    assert error.reason == "no waiting place"
    assert (error.name, error.max_concurrent, error.max_waiting) == ("orders", 3, 0)
    assert 99 not in gate.entered
    for i in range(3):
        gate.open(i)
    assert await asyncio.gather(*tasks) == [0, 1, 2]
    snap = bulkhead.snapshot()
    assert (snap["active"], snap["accepted"], snap["rejected"]) == (0, 3, 1)
    assert snap["rejected_by_reason"] == {"no_waiting_place": 1, "max_wait": 0}
    assert snap["peak_active"] == 3


async def test_waiters_are_served_in_arrival_order() -> None:
    bulkhead = Bulkhead(max_concurrent=2, max_waiting=300)
    gate = Gate()
    tasks = [asyncio.create_task(bulkhead.call_async(gate.work, i)) for i in range(300)]
    await settle()
    assert gate.entered == [0, 1]
    assert bulkhead.waiting == 298
    # Finish calls in a scrambled order: entry order must stay the arrival order.
    for key in random.Random(7).sample(range(300), 300):
        gate.open(key)
        await settle(2)
    await asyncio.gather(*tasks)
    assert gate.entered == list(range(300))
    assert gate.max_running == 2
    snap = bulkhead.snapshot()
    assert (snap["accepted"], snap["waited"], snap["peak_active"]) == (300, 298, 2)
    assert (snap["active"], snap["waiting"]) == (0, 0)


async def test_no_barging_while_someone_waits() -> None:
    bulkhead = Bulkhead(max_concurrent=1, max_waiting=5)
    await bulkhead.acquire()
    waiter = asyncio.create_task(bulkhead.acquire())
    await settle()
    bulkhead.release()  # handed straight to the waiter, which has not run yet
    assert bulkhead.active == 1 and bulkhead.waiting == 0
    newcomer = asyncio.create_task(bulkhead.acquire())
    await settle()
    assert waiter.done() and not newcomer.done()  # the newcomer could not grab it
    bulkhead.release()  # the waiter's slot
    await newcomer
    bulkhead.release()
    assert bulkhead.active == 0


def test_release_without_acquire_is_an_error() -> None:
    bulkhead = Bulkhead("x")
    with pytest.raises(RuntimeError, match="without acquire"):
        bulkhead.release()
    assert bulkhead.active == 0


async def test_exceptions_release_the_slot() -> None:
    bulkhead = Bulkhead(max_concurrent=1)

    async def boom() -> None:
        raise ValueError("bad")

    for _ in range(3):
        with pytest.raises(ValueError, match="bad"):
            await bulkhead.call_async(boom)
    assert bulkhead.active == 0
    assert bulkhead.snapshot()["accepted"] == 3


@pytest.mark.looptime
async def test_max_wait_rejects_after_waiting() -> None:
    bulkhead = Bulkhead("api", max_concurrent=1, max_waiting=5, max_wait=2.0)
    loop = asyncio.get_running_loop()
    holder = asyncio.create_task(bulkhead.call_async(asyncio.sleep, 10.0))
    await asyncio.sleep(0)
    start = loop.time()
    with pytest.raises(BulkheadFullError) as info:
        await bulkhead.call_async(asyncio.sleep, 0)
    assert loop.time() - start == pytest.approx(2.0)
    assert info.value.reason == "waited 2.0s"
    assert "waited 2.0s" in str(info.value)
    await holder
    snap = bulkhead.snapshot()
    assert snap["rejected_by_reason"] == {"no_waiting_place": 0, "max_wait": 1}
    assert snap["total_wait_seconds"] == pytest.approx(2.0)
    assert (snap["active"], snap["waiting"]) == (0, 0)


@pytest.mark.looptime
async def test_max_wait_none_waits_as_long_as_needed() -> None:
    bulkhead = Bulkhead(max_concurrent=1, max_waiting=1)
    loop = asyncio.get_running_loop()
    holder = asyncio.create_task(bulkhead.call_async(asyncio.sleep, 3600.0))
    await asyncio.sleep(0)
    start = loop.time()
    assert await bulkhead.call_async(asyncio.sleep, 0, "mine") == "mine"
    assert loop.time() - start == pytest.approx(3600.0)
    await holder
    snap = bulkhead.snapshot()
    assert snap["waited"] == 1
    assert snap["total_wait_seconds"] == pytest.approx(3600.0)


@pytest.mark.looptime
async def test_waiter_served_within_max_wait_is_accepted() -> None:
    bulkhead = Bulkhead(max_concurrent=1, max_waiting=1, max_wait=5.0)
    holder = asyncio.create_task(bulkhead.call_async(asyncio.sleep, 4.0))
    await asyncio.sleep(0)
    assert await bulkhead.call_async(asyncio.sleep, 0, "ok") == "ok"
    await holder
    assert bulkhead.snapshot()["rejected"] == 0


@pytest.mark.looptime
async def test_expiry_and_release_at_the_same_instant_leak_nothing() -> None:
    bulkhead = Bulkhead(max_concurrent=1, max_waiting=10, max_wait=5.0)
    holder = asyncio.create_task(bulkhead.call_async(asyncio.sleep, 5.0))
    await asyncio.sleep(0)
    waiters = [asyncio.create_task(bulkhead.call_async(asyncio.sleep, 1.0)) for _ in range(5)]
    results = await asyncio.gather(holder, *waiters, return_exceptions=True)
    for result in results:
        assert result is None or isinstance(result, BulkheadFullError)
    assert (bulkhead.active, bulkhead.waiting) == (0, 0)
    snap = bulkhead.snapshot()
    assert snap["accepted"] + snap["rejected"] == 6
    # The bulkhead still works: one slot, free.
    assert await bulkhead.call_async(asyncio.sleep, 0, 1) == 1


async def test_cancelled_waiter_frees_its_waiting_place() -> None:
    bulkhead = Bulkhead(max_concurrent=1, max_waiting=1)
    gate = Gate()
    holder = asyncio.create_task(bulkhead.call_async(gate.work, 0))
    await settle()
    first = asyncio.create_task(bulkhead.call_async(gate.work, 1))
    await settle()
    assert bulkhead.waiting == 1
    with pytest.raises(BulkheadFullError):
        await bulkhead.call_async(gate.work, 2)
    first.cancel()
    await settle()
    assert first.cancelled()
    assert bulkhead.waiting == 0
    second = asyncio.create_task(bulkhead.call_async(gate.work, 3))
    await settle()
    assert bulkhead.waiting == 1
    gate.open(0)
    gate.open(3)
    assert list(await asyncio.gather(holder, second)) == [0, 3]
    assert gate.entered == [0, 3]
    assert (bulkhead.active, bulkhead.waiting) == (0, 0)
    assert bulkhead.snapshot()["accepted"] == 2  # the cancelled one is not counted


async def test_cancelled_waiter_place_is_free_before_its_cleanup_runs() -> None:
    bulkhead = Bulkhead(max_concurrent=1, max_waiting=1)
    await bulkhead.acquire()
    first = asyncio.create_task(bulkhead.acquire())
    await settle()
    # The newcomer runs before `first` has run its clean-up: the place of a
    # cancelled waiter counts as free at once.
    newcomer = asyncio.create_task(bulkhead.acquire())
    first.cancel()
    await settle()
    assert not newcomer.done() and bulkhead.waiting == 1
    bulkhead.release()
    await newcomer
    assert first.cancelled()
    bulkhead.release()
    assert (bulkhead.active, bulkhead.waiting) == (0, 0)


async def test_slot_handed_to_a_waiter_cancelled_at_that_moment_goes_to_the_next() -> None:
    bulkhead = Bulkhead(max_concurrent=1, max_waiting=5)
    await bulkhead.acquire()
    first = asyncio.create_task(bulkhead.acquire())
    second = asyncio.create_task(bulkhead.acquire())
    await settle()
    bulkhead.release()  # hands the slot to `first`...
    first.cancel()  # ...which is cancelled before it could run
    await settle()
    assert first.cancelled()
    assert second.done() and second.exception() is None
    assert bulkhead.active == 1 and bulkhead.waiting == 0
    bulkhead.release()
    assert bulkhead.active == 0
    assert bulkhead.snapshot()["accepted"] == 2  # the test's own and `second`


async def test_waiter_cancelled_just_before_the_handover_is_skipped() -> None:
    bulkhead = Bulkhead(max_concurrent=1, max_waiting=5)
    await bulkhead.acquire()
    first = asyncio.create_task(bulkhead.acquire())
    second = asyncio.create_task(bulkhead.acquire())
    await settle()
    first.cancel()
    bulkhead.release()  # `first` is already cancelled: the slot goes to `second`
    await settle()
    assert first.cancelled() and second.done()
    assert bulkhead.active == 1
    bulkhead.release()
    assert bulkhead.active == 0


async def test_cancellation_while_running_releases_the_slot() -> None:
    bulkhead = Bulkhead(max_concurrent=2, max_waiting=10)
    gate = Gate()
    running = [asyncio.create_task(bulkhead.call_async(gate.work, i)) for i in range(2)]
    waiting = [asyncio.create_task(bulkhead.call_async(gate.work, i)) for i in range(2, 5)]
    await settle()
    running[0].cancel()
    await settle()
    assert gate.entered == [0, 1, 2]  # the freed slot went to the first waiter
    for task in waiting[1:]:
        task.cancel()
    await settle()
    assert bulkhead.waiting == 0
    gate.open(1)
    gate.open(2)
    await asyncio.gather(running[1], waiting[0])
    assert (bulkhead.active, bulkhead.waiting) == (0, 0)


async def test_mass_cancellation_never_leaks_a_slot() -> None:
    bulkhead = Bulkhead(max_concurrent=5, max_waiting=500)
    gate = Gate()
    tasks = [asyncio.create_task(bulkhead.call_async(gate.work, i)) for i in range(400)]
    await settle()
    # Cancel every third task (running or waiting), open every fifth gate.
    for i, task in enumerate(tasks):
        if i % 3 == 0:
            task.cancel()
        if i % 5 == 0:
            gate.open(i)
    await settle(20)
    for i in range(400):
        gate.open(i)
        await settle(2)
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert gate.max_running <= 5
    assert (bulkhead.active, bulkhead.waiting) == (0, 0)
    assert gate.entered == sorted(gate.entered)  # slots went out in arrival order
    assert bulkhead.snapshot()["accepted"] == len(gate.entered)
    finished = {r for r in results if isinstance(r, int)}
    assert finished == {i for i in range(400) if i % 3} | set(gate.entered) - {
        i for i, t in enumerate(tasks) if t.cancelled()
    }


async def test_hundreds_of_callers_never_exceed_the_limit() -> None:
    bulkhead = Bulkhead(max_concurrent=10, max_waiting=1000)
    running = 0
    peak = 0

    async def work(i: int) -> int:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        for _ in range(i % 4):
            await asyncio.sleep(0)
        running -= 1
        return i

    results = await asyncio.gather(*(bulkhead.call_async(work, i) for i in range(500)))
    assert results == list(range(500))
    assert peak == 10
    assert bulkhead.snapshot()["peak_active"] == 10
    assert bulkhead.snapshot()["accepted"] == 500


async def test_waiting_line_overflow_is_rejected_with_reason() -> None:
    bulkhead = Bulkhead(max_concurrent=5, max_waiting=20)
    gate = Gate()
    tasks = [asyncio.create_task(bulkhead.call_async(gate.work, i)) for i in range(100)]
    await settle()
    rejected = [t for t in tasks if t.done()]
    assert len(rejected) == 75
    assert all(isinstance(t.exception(), BulkheadFullError) for t in rejected)
    for i in range(100):
        gate.open(i)
    await asyncio.gather(*tasks, return_exceptions=True)
    snap = bulkhead.snapshot()
    assert (snap["accepted"], snap["rejected"]) == (25, 75)
    assert gate.entered == list(range(25))


async def test_growing_max_concurrent_wakes_waiters_at_once() -> None:
    bulkhead = Bulkhead(max_concurrent=1, max_waiting=10)
    gate = Gate()
    tasks = [asyncio.create_task(bulkhead.call_async(gate.work, i)) for i in range(6)]
    await settle()
    assert gate.entered == [0]
    bulkhead.config.max_concurrent = 4
    await settle()
    assert gate.entered == [0, 1, 2, 3]
    assert (bulkhead.active, bulkhead.waiting) == (4, 2)
    for i in range(6):
        gate.open(i)
    await asyncio.gather(*tasks)
    assert bulkhead.snapshot()["max_concurrent"] == 4


async def test_shrinking_max_concurrent_lets_running_calls_finish() -> None:
    bulkhead = Bulkhead(max_concurrent=4, max_waiting=10)
    gate = Gate()
    tasks = [asyncio.create_task(bulkhead.call_async(gate.work, i)) for i in range(6)]
    await settle()
    assert gate.entered == [0, 1, 2, 3]
    bulkhead.config.max_concurrent = 2
    gate.open(0)
    gate.open(1)
    await settle()
    assert gate.entered == [0, 1, 2, 3]  # 2 running: not under the new limit yet
    gate.open(2)
    await settle()
    assert gate.entered == [0, 1, 2, 3, 4]  # 1 running: room for one
    for i in range(3, 6):
        gate.open(i)
    await asyncio.gather(*tasks)
    assert gate.max_running == 4
    assert bulkhead.active == 0


async def test_async_with_and_decorator() -> None:
    bulkhead = Bulkhead("ctx", max_concurrent=1)
    async with bulkhead:
        assert bulkhead.active == 1
        with pytest.raises(BulkheadFullError):
            async with bulkhead:
                pass  # pragma: no cover
    assert bulkhead.active == 0

    @bulkhead
    async def fetch(x: int) -> int:
        assert bulkhead.active == 1
        return x * 2

    assert fetch.__name__ == "fetch"
    assert await fetch(21) == 42
    with pytest.raises(TypeError, match="async def"):
        bulkhead(lambda: None)  # type: ignore[arg-type, return-value]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("max_concurrent", 0),
        ("max_concurrent", 2.5),
        ("max_concurrent", "3"),
        ("max_waiting", -1),
        ("max_wait", 0),
        ("max_wait", -1.0),
        ("max_wait", float("inf")),
        ("max_wait", float("nan")),
        ("name", ""),
    ],
)
def test_invalid_values_are_rejected(field: str, value: Any) -> None:
    with pytest.raises(ConfigurationError) as info:
        BulkheadConfig(**{field: value})
    assert info.value.fields == (field,)
    bulkhead = Bulkhead("x", max_concurrent=3, max_waiting=2, max_wait=1.0)
    before = getattr(bulkhead.config, field)
    with pytest.raises(ConfigurationError):
        setattr(bulkhead.config, field, value)
    assert getattr(bulkhead.config, field) == before
    assert bulkhead.snapshot()["max_concurrent"] == 3


def test_construction_variants() -> None:
    config = BulkheadConfig(max_concurrent=2)
    assert Bulkhead("a", config).config is config and config.name == "a"
    assert Bulkhead().name == "bulkhead"
    with pytest.raises(ConfigurationError, match="name"):
        Bulkhead("b", BulkheadConfig(name="c"))
    with pytest.raises(TypeError, match="not both"):
        Bulkhead("d", BulkheadConfig(), max_concurrent=1)
    with pytest.raises(ConfigurationError, match="unknown field"):
        Bulkhead("e", max_conc=1)


async def test_snapshot_is_json_ready_and_repr_shows_live_state() -> None:
    bulkhead = Bulkhead("orders", max_concurrent=2, max_waiting=3, max_wait=1.5)
    gate = Gate()
    tasks = [asyncio.create_task(bulkhead.call_async(gate.work, i)) for i in range(3)]
    await settle()
    assert repr(bulkhead) == (
        "<Bulkhead 'orders' active=2/2 waiting=1/3 peak=2 accepted=2 rejected=0>"
    )
    snap = bulkhead.snapshot()
    assert json.loads(json.dumps(snap)) == snap
    assert snap["available"] == 0 and snap["max_wait"] == 1.5
    for i in range(3):
        gate.open(i)
    await asyncio.gather(*tasks)
    assert bulkhead.available == 2
