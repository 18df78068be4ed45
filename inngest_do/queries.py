"""Reading runs and events back: what a store has committed, merged with what the engine's
memory holds fresher (runs still active, events whose outcomes may still change, anything
not yet committed).

Each function is handed the store, the engine's lock (a Worker may be changing the working
state on another thread) and the in-memory table it merges; it copies that table under the
lock and does the rest outside it. O(records returned).
"""

from __future__ import annotations

import typing

from .kernel import ms_to_datetime
from .recovery import run_from_record
from .runs import EventOutcome, EventRecord, RunState, RunStatus

if typing.TYPE_CHECKING:
    from .storage import Store

__all__ = ["event_records", "get_run", "query_events", "query_runs"]


def event_records(store: Store, lock: typing.ContextManager[typing.Any],
                  events: typing.Mapping[str, dict],
                  name: str | None = None) -> list[tuple[str, dict]]:
    """(internal id, {"payload", "received_ms", "outcomes"}) of events in arrival order:
    the committed ones from ``store``, with what ``events`` (memory) knows fresher."""
    with lock:
        stored = store.load_events(name)
        live = {k: {"payload": v["payload"], "received_ms": v["received_ms"],
                    "outcomes": [list(o) for o in v["outcomes"]]}
                for k, v in events.items()}
    out = [(rec["id"], live.pop(rec["id"], rec)) for rec in stored]
    out += [(event_id, rec) for event_id, rec in live.items()
            if name is None or rec["payload"]["name"] == name]
    return out


def query_events(store: Store, lock: typing.ContextManager[typing.Any],
                 events: typing.Mapping[str, dict],
                 name: str | None = None) -> list[EventRecord]:
    """Events in arrival order, with their outcomes (see :func:`event_records`)."""
    return [_event_record(event_id, rec["payload"], rec["received_ms"], rec["outcomes"])
            for event_id, rec in event_records(store, lock, events, name)]


def query_runs(store: Store, lock: typing.ContextManager[typing.Any],
               runs: typing.Mapping[str, RunState], fn_id: str | None = None,
               status: RunStatus | str | None = None) -> list[RunState]:
    """Runs in creation order: finished ones read from ``store``, active ones as ``runs``
    (the engine's run table) holds them. Raises ``ValueError`` for an unknown status."""
    if status is not None:
        status = RunStatus(status)
    with lock:
        records = store.load_runs(fn_id, None if status is None else status.value)
        live = dict(runs)
    out = []
    for rec in records:
        run = live.pop(rec["id"], None) or run_from_record(rec)
        if status is None or run.status == status:
            out.append(run)
    for run in live.values():  # created since the last commit
        if (fn_id is None or run.fn_id == fn_id) and (status is None or run.status == status):
            out.append(run)
    return out


def get_run(store: Store, lock: typing.ContextManager[typing.Any],
            runs: typing.Mapping[str, RunState], run_id: str) -> RunState | None:
    """One run by id (an active one from ``runs``, a finished one from ``store``)."""
    with lock:
        run = runs.get(run_id)
        if run is not None:
            return run
        rec = store.load_run(run_id)
    return None if rec is None else run_from_record(rec)


def _event_record(event_id: str, payload: dict, received_ms: int,
                  outcomes: list) -> EventRecord:
    return EventRecord(id=event_id, name=payload["name"], data=payload.get("data") or {},
                       received_at=ms_to_datetime(received_ms),
                       outcomes=tuple(EventOutcome(*o) for o in outcomes))
