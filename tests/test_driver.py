"""The Driver on its own: no Engine, only a clock, a ready queue, a timer heap and callables.
It runs what is ready, moves a virtual clock from timer to timer in time order, and stops a
drain that never ends."""

from __future__ import annotations

import asyncio

import pytest

from inngest_do.driver import Driver, resolve
from inngest_do.kernel import ReadyQueue, TimerHeap, VirtualClock
from inngest_do.runs import RunState


class Host:
    """Timers that make runs ready; slices that record when they ran."""

    def __init__(self) -> None:
        self.clock = VirtualClock(0)
        self.ready = ReadyQueue()
        self.timers = TimerHeap()
        self.runs: dict[str, RunState] = {}
        self.ran: list[tuple[int, str]] = []
        self.fired = 0
        self.swept = 0
        self.driver = Driver(
            clock=self.clock, ready=self.ready, timers=self.timers, pop_ready=self.pop,
            run_slice=self.slice, fire_due=self.fire_due, has_work=self.has_work,
            sync_functions=lambda: None, clock_moved=self.sweep)

    def add(self, run_id: str, at_ms: int | None = None) -> None:
        self.runs[run_id] = RunState(id=run_id, fn_id="f", events=[], created_ms=0)
        if at_ms is None:
            self.ready.push(run_id, 0)
        else:
            self.timers.schedule(at_ms, run_id)

    def pop(self) -> RunState | None:
        return self.runs.get(self.ready.pop())

    async def slice(self, run: RunState) -> None:
        await asyncio.sleep(0)  # a slice may await: it runs inside an event loop
        self.ran.append((self.clock.now_ms(), run.id))

    def fire_due(self, now_ms: int) -> int:
        fired = 0
        while (item := self.timers.pop_next(now_ms)) is not None:
            self.ready.push(item[2], 0)
            fired += 1
        self.fired += fired
        return fired

    def has_work(self) -> bool:
        return bool(self.ready) or len(self.timers) > 0

    def sweep(self) -> None:
        self.swept += 1


def test_run_until_runs_timers_in_time_order_then_sets_the_clock() -> None:
    host = Host()
    host.add("now")
    host.add("late", 3_000)
    host.add("early", 1_000)
    host.add("beyond", 9_000)
    host.driver.run_until(5_000)
    assert host.ran == [(0, "now"), (1_000, "early"), (3_000, "late")]
    assert host.clock.now_ms() == 5_000 and host.swept == 1
    assert host.driver.run_until_idle(10)
    assert host.ran[-1] == (9_000, "beyond") and host.fired == 3


def test_run_until_idle_gives_up_after_max_iterations() -> None:
    host = Host()
    for i in range(5):
        host.add(f"r{i}", 1_000 * (i + 1))
    assert not host.driver.run_until_idle(2)
    assert [run_id for _, run_id in host.ran] == ["r0", "r1"]


def test_a_drain_stops_at_its_limit_with_the_busy_error() -> None:
    host = Host()
    for i in range(3):
        host.add(f"r{i}")
    host.driver.drain_limit = 2
    host.driver.busy_error = lambda n: LookupError(f"busy after {n}")
    with pytest.raises(LookupError, match="busy after 2"):
        host.driver.drain()


def test_attach_points_the_driver_at_new_state() -> None:
    host = Host()
    ready = ReadyQueue()
    host.driver.attach(ready, TimerHeap())
    host.add("old")  # into the queue the driver no longer looks at
    assert host.driver.drain() == 0


def test_resolve_runs_an_awaitable_with_or_without_a_running_loop() -> None:
    async def answer() -> int:
        await asyncio.sleep(0)
        return 42

    assert resolve(answer()) == 42

    async def inside() -> object:
        return resolve(answer())  # inside a running loop: a helper thread with its own

    assert asyncio.run(inside()) == 42
