"""Rebuild an engine's working state from what its store kept.

After a restart (or a simulated crash) every run that was not final goes on: memos come back
into the kernel's memo tables, sleeps/waits/retries/invoke timeouts back onto the timer heap
(an overdue one fires at once), waits back into the wait index, and a run that had work in
hand (no suspension) goes back to the ready queue, where its handler replays against its
memos. Cost: O(active runs + their memos and history) once: the store gives back only active
work, finished runs stay in it.
"""

from __future__ import annotations

import typing

from .expressions import Expression
from .kernel import MemoTable
from .runs import Pending, RunState, RunStatus, TraceEntry, Wait

if typing.TYPE_CHECKING:
    from .runs import WaitIndex
    from .storage import RecoveredState


class FlowRestore(typing.Protocol):
    """What restoring needs of flow control: its stored state back, and runs with work in
    hand offered a slice."""

    def restore(self, state: dict[str, dict[str, typing.Any]]) -> None: ...

    def request_slice(self, run: RunState) -> None: ...


class Scheduler(typing.Protocol):
    def schedule(self, due_ms: int, payload: tuple) -> int: ...


def restore(state: RecoveredState, *, runs: dict[str, RunState], events: dict[str, dict],
            timers: Scheduler, waits: WaitIndex, flow: FlowRestore,
            reseed: typing.Callable[[int], None]) -> None:
    """Put what ``state`` holds back into the working state handed in: unsettled events
    into ``events``, runs into ``runs``, their suspensions onto ``timers`` and into
    ``waits``; then ``reseed`` the id source and offer ``flow`` the runs that had work in
    hand. O(active runs + their memos and history)."""
    for rec in state.events:  # the unsettled ones: their outcomes may still change
        events[rec["id"]] = {"payload": rec["payload"], "received_ms": rec["received_ms"],
                             "outcomes": [list(o) for o in rec.get("outcomes", [])],
                             "user_id": None}
    flow.restore(state.flow)
    to_wake: list[RunState] = []
    for rec in state.runs:
        run = run_from_record(rec)
        runs[run.id] = run
        if run.status.is_final:
            continue
        for step_id, pending in run.pending.items():
            _rearm(timers, waits, run, step_id, pending)
        if not run.pending:
            to_wake.append(run)
    # Reseed so ids made after a restart never repeat ones made before it.
    reseed(state.meta.get("store:count", len(state.events) + len(state.runs)))
    for run in to_wake:
        flow.request_slice(run)


def cron_cursors(meta: dict[str, typing.Any]) -> dict[str, int]:
    """The cron cursors a store kept among its meta values: "fn_id:idx" -> next tick."""
    return {k[5:]: v for k, v in meta.items() if k.startswith("cron:")}


def run_from_record(rec: dict) -> RunState:
    """A run's working state from its stored record (memos and history inside)."""
    memos = MemoTable()
    for step_id, outcome in rec.get("memos", {}).items():
        memos.set(step_id, list(outcome))
    run = RunState(
        id=rec["id"], fn_id=rec["fn_id"], events=rec["events"], created_ms=rec["created_ms"],
        status=RunStatus(rec["status"]), started_ms=rec["started_ms"],
        ended_ms=rec["ended_ms"], output=rec["output"], error=rec["error"],
        attempt=rec["attempt"], attempts=rec["attempts"], priority=rec.get("priority", 0),
        invoker=tuple(rec["invoker"]) if rec.get("invoker") else None,
        cancel_requested=rec.get("cancel_requested", False), reason=rec.get("reason"),
        keys=_keys(rec.get("keys") or {}), memos=memos,
        history=[TraceEntry(*e) for e in rec.get("history", [])],
    )
    for step_id, (kind, due, data) in rec.get("pending", {}).items():
        run.pending[step_id] = Pending(kind, due, None, data)
    return run


def _keys(keys: dict) -> dict:
    """Flow-control keys as the engine holds them (JSON made the slot keys lists)."""
    if keys.get("concurrency"):
        keys["concurrency"] = [(tuple(k), limit) for k, limit in keys["concurrency"]]
    return keys


def _rearm(timers: Scheduler, waits: WaitIndex, run: RunState, step_id: str,
           pending: Pending) -> None:
    if pending.due_ms is not None:
        pending.timer = timers.schedule(pending.due_ms, (pending.kind, run.id, step_id))
    if pending.kind == "wait":
        source = pending.data.get("if")
        expr = Expression.compile(source, what="wait_for_event.if_exp") if source else None
        waits.setdefault(pending.data["event"], {})[(run.id, step_id)] = Wait(run, step_id, expr)
