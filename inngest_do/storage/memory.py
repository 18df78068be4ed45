"""The in-memory store: the default, and the fastest.

It keeps its own copy of every record, apart from the engine's working objects, so that a
simulated crash (drop the engine, recover from the store) behaves as it would with a file.
Every operation is O(1) (history append amortised).
"""

from __future__ import annotations

import copy
import typing

from .base import RecoveredState, Store


class MemoryStore(Store):
    """Records in dicts; lost with the process."""

    location = "memory"

    def __init__(self) -> None:
        self._events: dict[str, dict] = {}
        self._runs: dict[str, dict] = {}
        self._memos: dict[str, dict[str, list]] = {}
        self._history: dict[str, list[tuple]] = {}
        self._flow: dict[str, dict[str, typing.Any]] = {}
        self._meta: dict[str, typing.Any] = {}

    def save_event(self, event_id: str, payload: dict, received_ms: int) -> None:
        self._events[event_id] = {"id": event_id, "payload": payload, "received_ms": received_ms}

    def save_run(self, record: dict) -> None:
        self._runs[record["id"]] = record

    def save_memo(self, run_id: str, step_id: str, outcome: list) -> None:
        self._memos.setdefault(run_id, {})[step_id] = outcome

    def append_history(self, run_id: str, entry: tuple) -> None:
        self._history.setdefault(run_id, []).append(entry)

    def save_flow(self, namespace: str, key: str, value: typing.Any) -> None:
        space = self._flow.setdefault(namespace, {})
        if value is None:
            space.pop(key, None)
        else:
            space[key] = value

    def save_meta(self, key: str, value: typing.Any) -> None:
        self._meta[key] = value

    def recover(self) -> RecoveredState:
        runs = []
        for run_id, rec in self._runs.items():
            rec = dict(rec)
            rec["memos"] = dict(self._memos.get(run_id, {}))
            rec["history"] = list(self._history.get(run_id, []))
            runs.append(rec)
        return RecoveredState(
            runs=copy.deepcopy(runs),
            events=copy.deepcopy(list(self._events.values())),
            flow=copy.deepcopy(self._flow),
            meta=copy.deepcopy(self._meta),
        )
