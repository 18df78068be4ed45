"""The events an engine holds in memory, and what each did for each function (outcomes).

An accepted event gets an internal id and is stored at once; flow control then records
its outcomes ("started", "debounced", "rate_limited", ...). An event stays in memory only
while its outcomes may still change (a debounce, batch or throttle has not yet started its
run) or its last save is not committed: :meth:`EventTable.forget_settled` (called after
each commit) lets the settled ones go, since the store has them.

Outcomes are a tuple of (fn id, outcome, run id[, error]) tuples, replaced rather than
changed: one is kept per event while it is in memory, and the garbage collector stops
visiting tuples of strings (it visits every list and dict, every pass).
"""

from __future__ import annotations

import typing

if typing.TYPE_CHECKING:
    from .storage import Store

__all__ = ["EventTable", "is_settled"]

#: outcomes an event may still change from (so it stays in memory until it does)
OPEN_OUTCOMES = ("debounced", "batched", "throttled")


def is_settled(outcomes: typing.Iterable[typing.Sequence[typing.Any]]) -> bool:
    """True when none of an event's outcomes can change any more."""
    # a loop, not any() over a generator: called twice for every accepted event
    for o in outcomes:
        if o[1] in OPEN_OUTCOMES and (o[2] is None or o[1] == "throttled"):
            return False
    return True


class Ids(typing.Protocol):
    def ulid(self, ms: int) -> str: ...


class EventTable:
    """Event id -> {"payload", "received_ms", "outcomes", "user_id"} for the events in
    memory, written through to ``store``. Each operation is O(1) plus the event's
    outcomes (a handful)."""

    def __init__(self, *, store: Store, now_ms: typing.Callable[[], int], rng: Ids) -> None:
        """``store``: where events are saved (``save_event``); ``now_ms``: the engine's
        clock; ``rng``: the engine's seeded source of internal ids."""
        self._store = store
        self._now_ms = now_ms
        self._rng = rng
        self.records: dict[str, dict] = {}
        #: ids saved as settled: they leave memory at the next :meth:`forget_settled`
        self.settled: list[str] = []

    def record(self, payload: dict, *, save: bool = True) -> str:
        """Give ``payload`` its internal id (and ``id``/``ts`` if it has none) and store it
        (``save=False``: the caller saves it later with :meth:`save`, once)."""
        now = self._now_ms()
        event_id = self._rng.ulid(now)
        user_id = payload.get("id") or None
        if not user_id:
            payload["id"] = event_id
        if not payload.get("ts"):
            payload["ts"] = now
        self.records[event_id] = {"payload": payload, "received_ms": now, "outcomes": (),
                                  "user_id": user_id}
        if save:
            self._store.save_event(event_id, payload, now)
        return event_id

    def save(self, event_id: str) -> None:
        """Save an event with its outcomes; once they can no longer change it leaves
        memory after the next commit."""
        rec = self.records.get(event_id)
        if rec is None:
            return
        settled = is_settled(rec["outcomes"])
        self._store.save_event(event_id, rec["payload"], rec["received_ms"], rec["outcomes"],
                               settled)
        if settled:
            self.settled.append(event_id)

    def record_outcome(self, event_id: str, fn_id: str, outcome: str,
                       run_id: str | None = None, error: str | None = None) -> None:
        """Say why an event did or did not start a run of ``fn_id`` (for queries)."""
        rec = self.records.get(event_id)
        if rec is not None:
            entry = (fn_id, outcome, run_id) if error is None else (
                fn_id, outcome, run_id, error)
            rec["outcomes"] = (*rec["outcomes"], entry)

    def set_outcome(self, event_id: str, fn_id: str, outcome: str, run_id: str) -> None:
        """Change what ``event_id`` did for ``fn_id`` (a throttled run has now started)."""
        rec = self.records.get(event_id)
        if rec is not None:
            rec["outcomes"] = tuple(
                (fn_id, outcome, run_id, *e[3:]) if e[0] == fn_id and e[2] == run_id else e
                for e in rec["outcomes"])
            self.save(event_id)

    def set_outcome_run(self, event_id: str, fn_id: str, run_id: str) -> None:
        """A debounced or batched event's run now exists."""
        rec = self.records.get(event_id)
        if rec is not None:
            rec["outcomes"] = tuple(
                (fn_id, e[1], run_id, *e[3:]) if e[0] == fn_id and e[2] is None else e
                for e in rec["outcomes"])
            self.save(event_id)

    def forget_settled(self) -> None:
        """After a commit: settled events leave memory (the store has them)."""
        records = self.records
        for event_id in self.settled:
            rec = records.get(event_id)
            if rec is not None and is_settled(rec["outcomes"]):
                del records[event_id]
        self.settled.clear()
