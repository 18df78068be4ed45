"""Concurrency slots: how many units of each concurrency key runs hold, and who waits.

Concurrency is counted in units: a unit is one count on each of a run's slot keys (its
``run.keys["concurrency"]``, a list of (slot key, limit) that flow control evaluated when
the run was created). A run needs one unit while a slice of it executes, plus one per step
still in flight (a busy step in a simulation), so each parallel step takes a slot of its own.

A run that cannot take a unit waits on the keys that block it, in (creation - priority,
creation order) order, first in first out within a key; when units go back, the waiting
runs of those keys are tried, oldest first, and enqueued when they fit. Each decision is
O(keys of the run x log waiting); a pump is O(runs started + finished runs skipped).

:class:`ConcurrencySlots` is handed the run table (waiters are kept by run id) and the
engine's ``enqueue``; :class:`~inngest_do.flow.FlowControl` decides when to call it.
"""

from __future__ import annotations

import typing

from sortedcontainers import SortedList

from .kernel import KeyedCounter

if typing.TYPE_CHECKING:
    from .runs import RunState

__all__ = ["ConcurrencySlots", "in_flight"]


def in_flight(run: RunState) -> int:
    """How many of ``run``'s steps are in flight (each holds a unit of its own)."""
    return sum(1 for p in run.pending.values() if p.kind == "hold")


def _order(run: RunState) -> tuple[int, int, str]:
    """Queue order: earlier creation first, shifted by the run's priority seconds; ties in
    creation order."""
    return (run.created_ms - run.priority * 1000, run.seq, run.id)


class ConcurrencySlots:
    """Units held per slot key and run, and the runs waiting for one."""

    def __init__(self, *, runs: typing.Mapping[str, RunState],
                 enqueue: typing.Callable[[RunState], None]) -> None:
        """``runs``: run id -> run (the run table: waiters are kept by id); ``enqueue``:
        put a run that got its unit in the ready queue."""
        self._runs = runs
        self._enqueue = enqueue
        self.counts = KeyedCounter()  # slot key -> units held on it
        self.units: dict[str, int] = {}  # run id -> concurrency units it holds
        self.waiters: dict[tuple, SortedList] = {}  # slot key -> orders of waiting runs
        self.waiting: dict[str, tuple] = {}  # run id -> (its order, the keys it waits on)

    def held(self, run: RunState) -> int:
        return self.units.get(run.id, 0)

    def take(self, run: RunState) -> bool:
        """True if ``run`` holds a unit for one more slice or step body (taking one if it
        must); else it now waits for one."""
        return self.held(run) > in_flight(run) or self.try_unit(run)

    def _blocking(self, run: RunState) -> list[tuple]:
        """The keys that stop ``run`` taking a unit now: full, or with an older run waiting
        (first in, first out within a key)."""
        order = _order(run)
        blocked = []
        for key, limit in run.keys["concurrency"]:
            queue = self.waiters.get(key)
            if self.counts.count(key) >= limit or (queue and queue[0] < order):
                blocked.append(key)
        return blocked

    def try_unit(self, run: RunState) -> bool:
        """Take one more unit for ``run``, or queue it on the keys that block it."""
        blocked = self._blocking(run)
        if blocked:
            self.wait(run, blocked)
            return False
        self.unwait(run.id)
        for key, limit in run.keys["concurrency"]:
            self.counts.try_acquire(key, limit)
        self.units[run.id] = self.held(run) + 1
        return True

    def wait(self, run: RunState, keys: list[tuple]) -> None:
        """Queue ``run`` on ``keys``, ordered by (creation - priority, creation order)."""
        self.unwait(run.id)
        order = _order(run)
        for key in keys:
            queue = self.waiters.get(key)
            if queue is None:
                queue = self.waiters[key] = SortedList()
            queue.add(order)
        self.waiting[run.id] = (order, keys)

    def unwait(self, run_id: str) -> None:
        entry = self.waiting.pop(run_id, None)
        if entry is None:
            return
        order, keys = entry
        for key in keys:
            queue = self.waiters.get(key)
            if queue is not None:
                queue.discard(order)
                if not queue:
                    del self.waiters[key]

    def give_back(self, run: RunState, count: int) -> None:
        """Return ``count`` of ``run``'s units to its keys (no one is started here)."""
        held = self.held(run)
        count = min(count, held)
        for _ in range(count):
            for key, _limit in run.keys.get("concurrency") or ():
                self.counts.release(key)
        if held - count:
            self.units[run.id] = held - count
        else:
            self.units.pop(run.id, None)

    def pump(self, keys: list[tuple]) -> None:
        """Start waiting runs of ``keys``, oldest (priority-adjusted) first, while they fit."""
        tried: set[str] = set()
        while True:
            best = None
            for key in keys:
                stale = []
                # From the head: O(finished + already tried) per key, not a copy of the queue.
                for order in self.waiters.get(key) or ():
                    run = self._runs.get(order[2])
                    if run is None or run.status.is_final:
                        stale.append(order[2])
                        continue
                    if order[2] not in tried:
                        if best is None or order < best:
                            best = order
                        break
                for run_id in stale:
                    self.unwait(run_id)
            if best is None:
                return
            tried.add(best[2])
            run = self._runs[best[2]]
            self.unwait(run.id)  # it competes by its order, not by its place in a queue
            if self.try_unit(run):
                self._enqueue(run)
                continue
            # A key that is full now stays full for the rest of this pump: stop looking at
            # its waiters (else every waiter is tried in turn, O(waiting) per release).
            full = {key for key, limit in run.keys["concurrency"]
                    if self.counts.count(key) >= limit}
            keys = [key for key in keys if key not in full]

    def step_landed(self, run: RunState, slots: list[tuple]) -> None:
        """A step of ``run`` that was in flight ended: its unit goes back, and the run
        competes for its next step with the waiting runs, in queue order."""
        self.give_back(run, 1)
        if self.held(run) <= in_flight(run) and not run.status.is_final:
            self.wait(run, [k for k, _ in slots])
        self.pump([k for k, _ in slots])

    def slice_ended(self, run: RunState) -> None:
        """A slice ended: keep a unit per step still in flight, give back the rest."""
        keep = 0 if run.status.is_final else in_flight(run)
        if self.held(run) > keep:
            self.give_back(run, self.held(run) - keep)
            self.pump([k for k, _ in run.keys["concurrency"]])

    def release_all(self, run: RunState) -> None:
        """``run`` ended: every unit it holds goes back."""
        self.give_back(run, self.held(run))
        self.pump([k for k, _ in run.keys["concurrency"]])
