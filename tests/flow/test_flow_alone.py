"""Flow control on its own: no Engine, only the pieces it is handed (a clock, a timer heap,
a store, a run table, an event table and a few callables). If FlowControl ever reaches for
something it was not given, these tests fail with an AttributeError or TypeError."""

from __future__ import annotations

import datetime
import typing

import inngest_do as inngest
from inngest_do.event_table import EventTable
from inngest_do.flow import FlowControl
from inngest_do.kernel import TimerHeap
from inngest_do.runs import RunState, RunStatus
from inngest_do.storage import MemoryStore

SEC = datetime.timedelta(seconds=1)


class Host:
    """What an engine would do with flow control's decisions, recorded."""

    def __init__(self) -> None:
        self.now = 1_000_000
        self.timers = TimerHeap()
        self.store = MemoryStore()
        self.runs: dict[str, RunState] = {}
        self.ids = 0
        self.table = EventTable(store=self.store, now_ms=lambda: self.now, rng=self)
        self.enqueued: list[str] = []
        self.cancelled: list[tuple[str, str]] = []
        self.notes: list[tuple[str, str]] = []
        self.flow = FlowControl(
            now_ms=lambda: self.now, timers=self.timers, store=self.store, runs=self.runs,
            outcomes=self.table, executing=set(), enqueue=self._enqueue,
            create_run=self._create_run, cancel_run=self._cancel,
            note=lambda run, kind, detail=None: self.notes.append((run.id, kind)))

    def ulid(self, now: int) -> str:
        self.ids += 1
        return f"id{self.ids}"

    def _enqueue(self, run: RunState) -> None:
        self.enqueued.append(run.id)

    def _cancel(self, run: RunState, reason: str) -> None:
        self.cancelled.append((run.id, reason))

    def _create_run(self, fn: typing.Any, events: list[dict], *,
                    status: RunStatus = RunStatus.QUEUED, reason: str | None = None,
                    lock: str | None = None) -> RunState:
        run = RunState(id=self.ulid(self.now), fn_id=fn.id, events=events,
                       created_ms=self.now, status=status, reason=reason)
        self.runs[run.id] = run
        if status is RunStatus.QUEUED:
            self.flow.on_run_created(run, fn, lock)
        return run

    def send(self, fn: typing.Any, name: str = "flow/ev") -> str:
        payload = {"name": name, "data": {}}
        event_id = self.table.record(payload)
        self.flow.admit(fn, event_id, payload)
        return event_id

    def fire_due(self) -> None:
        while (item := self.timers.pop_next(self.now)) is not None:
            self.flow.fire(item[2])

    def outcomes(self, event_id: str) -> list[tuple]:
        return [tuple(o[1:3]) for o in self.table.records[event_id]["outcomes"]]


def _fn(**options: typing.Any) -> typing.Any:
    client = inngest.Inngest(app_id="alone")

    @client.create_function(fn_id="f", trigger=inngest.TriggerEvent(event="flow/ev"), **options)
    def f(ctx: typing.Any) -> None:
        return None

    return f


def test_a_rate_limit_decides_with_nothing_but_what_it_was_handed() -> None:
    host = Host()
    fn = _fn(rate_limit=inngest.RateLimit(limit=1, period=10 * SEC))
    host.flow.register(fn)
    first, second = host.send(fn), host.send(fn)
    assert host.outcomes(first) == [("started", host.enqueued[0])]
    assert host.outcomes(second) == [("rate_limited", None)]
    host.now += 10_000
    third = host.send(fn)
    assert host.outcomes(third) == [("started", host.enqueued[1])]
    assert len(host.enqueued) == 2


def test_a_debounce_starts_its_run_when_its_timer_fires() -> None:
    host = Host()
    fn = _fn(debounce=inngest.Debounce(period=5 * SEC))
    host.flow.register(fn)
    a, b = host.send(fn), host.send(fn)
    assert host.outcomes(a) == host.outcomes(b) == [("debounced", None)]
    assert host.timers.peek_due() == host.now + 5_000
    host.now += 5_000
    host.fire_due()
    [run_id] = host.enqueued
    assert host.outcomes(a) == host.outcomes(b) == [("debounced", run_id)]
    assert host.runs[run_id].events[0]["id"] == b  # the last event is the run's


def test_a_singleton_in_skip_mode_skips_while_a_run_holds_the_lock() -> None:
    host = Host()
    fn = _fn(singleton=inngest.Singleton(mode="skip"))
    host.flow.register(fn)
    first, second = host.send(fn), host.send(fn)
    [holder] = host.enqueued
    assert host.outcomes(first) == [("started", holder)]
    [(outcome, skipped)] = host.outcomes(second)
    assert outcome == "skipped" and host.runs[skipped].status is RunStatus.SKIPPED
    assert host.cancelled == []
