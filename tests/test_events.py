"""The one listener contract (``virtuoso_resilience._events.Listeners``)."""

from __future__ import annotations

import asyncio
import gc
import logging
import warnings

import pytest

from virtuoso_resilience._events import Listeners


def test_sync_listener_runs_inline_and_in_order() -> None:
    hub: Listeners[int] = Listeners("test")
    seen: list[tuple[str, int]] = []
    hub.add(lambda e: seen.append(("a", e)))
    hub.add(lambda e: seen.append(("b", e)))
    hub.emit(1)
    hub.emit(2)
    assert seen == [("a", 1), ("b", 1), ("a", 2), ("b", 2)]
    assert hub.stats().delivered == 4


def test_adding_twice_has_no_effect_and_remove_reports() -> None:
    hub: Listeners[int] = Listeners("test")
    seen: list[int] = []
    hub.add(seen.append)
    hub.add(seen.append)
    hub.emit(1)
    assert seen == [1]
    assert hub.remove(seen.append) is True
    assert hub.remove(seen.append) is False
    assert not hub


def test_raising_sync_listener_is_isolated_and_logged_without_message(
    caplog: pytest.LogCaptureFixture,
) -> None:
    hub: Listeners[int] = Listeners("breaker 'x'")
    seen: list[int] = []

    def bad(event: int) -> None:
        raise RuntimeError("secret-token-123")

    def worse(event: int) -> None:
        raise GeneratorExit

    hub.add(bad)
    hub.add(worse)
    hub.add(seen.append)
    with caplog.at_level(logging.WARNING):
        hub.emit(7)
    assert seen == [7]
    assert hub.stats().failed == 2
    assert "bad" in caplog.text and "RuntimeError" in caplog.text
    assert "secret-token-123" not in caplog.text


def test_keyboard_interrupt_from_a_listener_propagates() -> None:
    hub: Listeners[int] = Listeners("test")

    def stop(event: int) -> None:
        raise KeyboardInterrupt

    hub.add(stop)
    with pytest.raises(KeyboardInterrupt):
        hub.emit(1)


async def test_async_listener_never_delays_the_publisher() -> None:
    hub: Listeners[int] = Listeners("test")
    started = asyncio.Event()
    release = asyncio.Event()
    seen: list[int] = []

    async def slow(event: int) -> None:
        started.set()
        await release.wait()
        seen.append(event)

    hub.add(slow)
    hub.emit(1)
    hub.emit(2)
    assert seen == []  # emit returned before the listener ran
    await started.wait()
    release.set()
    assert await hub.drain(within=5)
    assert seen == [1, 2]
    assert hub.stats().delivered == 2


@pytest.mark.looptime
async def test_hanging_listener_that_ignores_cancellation_is_cut_off() -> None:
    hub: Listeners[int] = Listeners("test", timeout=1.0)
    seen: list[int] = []

    async def stubborn(event: int) -> None:
        if event == 1:
            for _ in range(3):
                try:
                    await asyncio.sleep(100)
                except asyncio.CancelledError:
                    pass  # ignores cancellation twice, then gives up
            return
        seen.append(event)

    hub.add(stubborn)
    hub.emit(1)
    hub.emit(2)
    assert await hub.drain(within=50)
    assert seen == [2]
    assert hub.stats().timed_out == 1
    hub.close()


async def test_delivery_is_bounded_oldest_dropped() -> None:
    hub: Listeners[int] = Listeners("test", max_pending=3)
    seen: list[int] = []

    async def record(event: int) -> None:
        seen.append(event)

    hub.add(record)
    for i in range(10):
        hub.emit(i)
    assert hub.stats().pending == 3
    assert await hub.drain(within=5)
    assert seen == [7, 8, 9]
    assert hub.stats().dropped == 7


async def test_raising_async_listener_is_counted() -> None:
    hub: Listeners[int] = Listeners("test")

    async def bad(event: int) -> None:
        raise ValueError("no")

    hub.add(bad)
    hub.emit(1)
    assert await hub.drain(within=5)
    assert hub.stats().failed == 1


def test_async_listener_without_a_loop_is_dropped_sync_still_runs() -> None:
    hub: Listeners[int] = Listeners("test")
    seen: list[int] = []

    async def later(event: int) -> None:
        seen.append(-event)

    hub.add(later)
    hub.add(seen.append)
    hub.emit(3)
    assert seen == [3]
    assert hub.stats().dropped == 1


def test_listener_must_be_callable() -> None:
    hub: Listeners[int] = Listeners("test")
    with pytest.raises(TypeError, match="callable"):
        hub.add(42)  # type: ignore[arg-type]


async def test_close_cancels_pending_and_remove_drops_queue() -> None:
    hub: Listeners[int] = Listeners("test")
    gate = asyncio.Event()

    async def wait(event: int) -> None:
        await gate.wait()

    hub.add(wait)
    hub.emit(1)
    hub.emit(2)
    await asyncio.sleep(0)
    hub.close()
    await asyncio.sleep(0)
    assert hub.stats().pending == 0
    assert repr(hub).startswith("<Listeners test listeners=1")


def test_a_loop_shutting_down_drops_queued_events_without_leaking_coroutines() -> None:
    # asyncio.run() cancels a worker that may never have run: its queued
    # coroutines are closed and counted as dropped, none left "never awaited".
    hub: Listeners[int] = Listeners("test")
    started: list[int] = []

    async def listener(event: int) -> None:
        started.append(event)
        await asyncio.Event().wait()

    hub.add(listener)

    async def publish() -> None:
        for i in range(3):
            hub.emit(i)

    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        asyncio.run(publish())
        gc.collect()
    assert started == []
    stats = hub.stats()
    assert (stats.pending, stats.dropped, stats.delivered) == (0, 3, 0)


async def test_cancelling_a_worker_mid_delivery_drops_the_rest() -> None:
    hub: Listeners[int] = Listeners("test")
    seen: list[int] = []
    gate = asyncio.Event()

    async def slow(event: int) -> None:
        seen.append(event)
        await gate.wait()

    hub.add(slow)
    for i in range(4):
        hub.emit(i)
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert seen == [0]
    hub.close()
    for _ in range(3):
        await asyncio.sleep(0)
    stats = hub.stats()
    assert (stats.pending, stats.dropped) == (0, 4)  # the one in delivery too
    hub.emit(9)  # a closed hub still delivers to its subscribers later
    gate.set()
    assert await hub.drain(within=5)
    assert seen == [0, 9]


# ------------------------------------------------ clock, shutdown from inside


async def test_timeouts_run_on_an_injected_clock() -> None:
    from virtuoso_resilience.clock import FakeClock

    clock = FakeClock()
    hub: Listeners[int] = Listeners("test", timeout=5.0, clock=clock)
    seen: list[int] = []

    async def hangs_on_one(event: int) -> None:
        if event == 1:
            await asyncio.Event().wait()
        seen.append(event)

    hub.add(hangs_on_one)
    hub.emit(1)
    hub.emit(2)
    for _ in range(20):
        await asyncio.sleep(0)
    assert seen == [] and clock.sleepers == 1  # the delivery's cut-off, on the clock
    clock.advance(4.9)
    await asyncio.sleep(0)
    assert seen == []
    clock.advance(0.1)  # t=5: cut off; the next event is delivered
    assert await hub.drain(within=1.0)
    assert seen == [2]
    assert hub.stats().timed_out == 1
    assert clock.sleepers == 0


async def test_drain_on_the_clock_gives_up_after_within() -> None:
    from virtuoso_resilience.clock import FakeClock

    clock = FakeClock()
    hub: Listeners[int] = Listeners("test", timeout=100.0, clock=clock)

    async def hangs(event: int) -> None:
        await asyncio.Event().wait()

    hub.add(hangs)
    hub.emit(1)
    draining = asyncio.create_task(hub.drain(within=3.0))
    for _ in range(20):
        await asyncio.sleep(0)
    assert not draining.done()
    clock.advance(3.0)
    assert await draining is False
    ending = hub.close()
    assert ending  # the worker and the delivery, cancelled, not ended yet
    await asyncio.wait(ending)
    assert all(t.done() for t in ending)
    assert clock.sleepers == 0


async def test_close_returns_what_is_ending_and_cancels_it_once() -> None:
    hub: Listeners[int] = Listeners("test")
    cleanup: list[str] = []

    async def slow_cleanup(event: int) -> None:
        try:
            await asyncio.Event().wait()
        finally:
            cleanup.append("started")
            for _ in range(5):  # a cleanup that awaits (closing a connection)
                await asyncio.sleep(0)
            cleanup.append("finished")

    hub.add(slow_cleanup)
    hub.emit(1)
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    ending = hub.close()
    assert len(ending) == 2
    for task in ending:  # a caller cancelling again must not cut the cleanup short
        if isinstance(task, asyncio.Task) and not task.cancelling():
            task.cancel()
    await asyncio.wait(ending)
    assert cleanup == ["started", "finished"]


async def test_drain_and_close_from_inside_a_listener_spare_that_delivery() -> None:
    hub: Listeners[int] = Listeners("test", timeout=5.0)
    done: list[str] = []
    other: list[int] = []
    finished = asyncio.Event()

    async def shuts_down(event: int) -> None:
        if event == 1:
            drained = await hub.drain(within=1.0)  # would wait for itself
            hub.close()  # would cancel itself
            done.append(f"drained={drained}")
            finished.set()

    async def record(event: int) -> None:
        other.append(event)

    hub.add(shuts_down)
    hub.add(record)
    hub.emit(1)
    hub.emit(2)
    await asyncio.wait_for(finished.wait(), timeout=5.0)
    assert done == ["drained=True"]
    assert other == [1, 2]  # drained before close
    assert hub.stats().dropped == 1  # shuts_down's own event 2, dropped by close


def test_workers_of_an_ended_loop_are_forgotten() -> None:
    hub: Listeners[int] = Listeners("test")
    seen: list[int] = []

    async def record(event: int) -> None:
        if event == 1:
            await asyncio.Event().wait()  # still running when the loop ends
        seen.append(event)

    hub.add(record)

    async def first() -> None:
        hub.emit(1)
        await asyncio.sleep(0)

    asyncio.run(first())

    async def second() -> None:
        assert await hub.drain(within=1.0)  # nothing of this loop to wait for
        assert hub.close() == []
        hub.emit(2)
        assert await hub.drain(within=1.0)

    asyncio.run(second())
    assert seen == [2]
