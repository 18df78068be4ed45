"""The in-memory store: the default, and the fastest.

It keeps its own copy of every record, apart from the engine's working objects, so that a
simulated crash (drop the engine, recover from the store) behaves as it would with a file.
Active runs are kept as records; a run that ends is packed with its memos and history into
one zlib-compressed JSON string (a finished one-step run then costs a few hundred bytes), and
unpacked only when asked for. Writes are O(1) (history append amortised); recovery is
O(active work).
"""

from __future__ import annotations

import copy
import json
import typing
import zlib

from .base import RecoveredState, Store

_dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


def _pack(value: typing.Any) -> bytes:
    return zlib.compress(_dumps(value).encode(), 1)


def _unpack(blob: bytes) -> typing.Any:
    return json.loads(zlib.decompress(blob))


class MemoryStore(Store):
    """Records in dicts; lost with the process."""

    location = "memory"

    def __init__(self) -> None:
        # event id -> (received_ms, settled, packed [payload, outcomes]); arrival order
        self._events: dict[str, tuple[int, bool, bytes]] = {}
        # run id -> an active run's record, or a finished one packed with memos and history
        self._runs: dict[str, dict | bytes] = {}
        self._ended: dict[str, int] = {}  # run id -> ended_ms, for pruning
        self._memos: dict[str, dict[str, list]] = {}
        self._history: dict[str, list[tuple]] = {}
        self._flow: dict[str, dict[str, typing.Any]] = {}
        self._meta: dict[str, typing.Any] = {}
        self._count = 0

    def save_event(self, event_id: str, payload: dict, received_ms: int,
                   outcomes: list | None = None, settled: bool = False) -> None:
        if event_id not in self._events:
            self._count += 1
        self._events[event_id] = (received_ms, settled, _pack([payload, outcomes or []]))

    def save_run(self, record: dict) -> None:
        run_id = record["id"]
        if run_id not in self._runs:
            self._count += 1
        if record.get("ended_ms") is None:
            self._runs[run_id] = record
            return
        # A finished run: packed with its memos and history (a later entry unpacks it).
        old = self._runs.get(run_id)
        full = dict(record)
        if isinstance(old, bytes):
            packed = _unpack(old)
            full["memos"], full["history"] = packed["memos"], packed["history"]
        else:
            full["memos"] = self._memos.pop(run_id, {})
            full["history"] = self._history.pop(run_id, [])
        self._runs[run_id] = _pack(full)
        self._ended[run_id] = record["ended_ms"]

    def _unpacked(self, run_id: str) -> dict | None:
        rec = self._runs.get(run_id)
        if isinstance(rec, bytes):
            return _unpack(rec)
        if rec is None:
            return None
        rec = dict(rec)
        rec["memos"] = dict(self._memos.get(run_id, {}))
        rec["history"] = list(self._history.get(run_id, []))
        return copy.deepcopy(rec)

    def save_memo(self, run_id: str, step_id: str, outcome: list) -> None:
        if isinstance(self._runs.get(run_id), bytes):
            full = typing.cast(dict, self._unpacked(run_id))
            full["memos"][step_id] = outcome
            self._runs[run_id] = _pack(full)
            return
        self._memos.setdefault(run_id, {})[step_id] = outcome

    def append_history(self, run_id: str, entry: tuple) -> None:
        if isinstance(self._runs.get(run_id), bytes):
            full = typing.cast(dict, self._unpacked(run_id))
            full["history"].append(entry)
            self._runs[run_id] = _pack(full)
            return
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
        runs = [typing.cast(dict, self._unpacked(run_id))
                for run_id, rec in self._runs.items() if not isinstance(rec, bytes)]
        events = [self._event(event_id) for event_id, (_, settled, _) in self._events.items()
                  if not settled]
        meta = copy.deepcopy(self._meta)
        if self._count:
            meta["store:count"] = self._count
        return RecoveredState(runs=runs, events=events, flow=copy.deepcopy(self._flow),
                              meta=meta)

    def _event(self, event_id: str) -> dict:
        received_ms, _, blob = self._events[event_id]
        payload, outcomes = _unpack(blob)
        return {"id": event_id, "payload": payload, "received_ms": received_ms,
                "outcomes": outcomes}

    def load_runs(self, fn_id: str | None = None, status: str | None = None) -> list[dict]:
        out = []
        for run_id, rec in list(self._runs.items()):
            if isinstance(rec, dict):  # active: the engine knows its status better
                if fn_id is None or rec["fn_id"] == fn_id:
                    out.append(typing.cast(dict, self._unpacked(run_id)))
                continue
            full = _unpack(rec)
            if (fn_id is None or full["fn_id"] == fn_id) and (
                    status is None or full["status"] == status):
                out.append(full)
        return out

    def load_run(self, run_id: str) -> dict | None:
        return self._unpacked(run_id)

    def load_events(self, name: str | None = None) -> list[dict]:
        out = []
        for event_id in list(self._events):
            rec = self._event(event_id)
            if name is None or rec["payload"].get("name") == name:
                out.append(rec)
        return out

    def prune(self, before_ms: int, limit: int = 5000) -> int:
        gone = [run_id for run_id, ended in self._ended.items() if ended < before_ms][:limit]
        for run_id in gone:
            del self._runs[run_id], self._ended[run_id]
        for event_id in [e for e, (ms, settled, _) in self._events.items()
                         if settled and ms < before_ms][:limit]:
            del self._events[event_id]
        return len(gone)
