"""Reads of runs and events as JSON: the REST endpoints, the SDK's API (``use_api``) and the
data behind the GraphQL schema. Everything is read under the engine lock and copied out."""

from __future__ import annotations

import json
import typing

from ..kernel import ms_to_datetime
from ..runs import RunState, RunStatus
from .remote import sdk_steps

if typing.TYPE_CHECKING:
    from ..engine import Engine
    from .remote import RemoteExecutor

__all__ = ["Views"]

#: our statuses as Inngest's API spells them
API_STATUS = {
    RunStatus.QUEUED: "QUEUED",
    RunStatus.RUNNING: "RUNNING",
    RunStatus.SLEEPING: "RUNNING",
    RunStatus.WAITING: "RUNNING",
    RunStatus.COMPLETED: "COMPLETED",
    RunStatus.FAILED: "FAILED",
    RunStatus.CANCELLED: "CANCELLED",
    RunStatus.SKIPPED: "SKIPPED",
}


def _iso(ms: int | None) -> str | None:
    return None if ms is None else ms_to_datetime(ms).isoformat().replace("+00:00", "Z")


class Views:
    """Read-only projections of the engine's runs and events."""

    def __init__(self, engine: Engine, executor: RemoteExecutor) -> None:
        self.engine = engine
        self.executor = executor

    # runs -----------------------------------------------------------------------------------
    def run_state(self, run_id: str) -> RunState | None:
        with self.engine.lock:
            return self.engine.get_run(run_id)  # a finished one from the store

    def output_json(self, run: RunState) -> str | None:
        """A run's output as Inngest shows it: the returned value (JSON), or for a failed
        run the error the app answered with."""
        if run.status is RunStatus.COMPLETED:
            return json.dumps(run.output)
        if run.status is RunStatus.FAILED:
            body = run.keys.get("app_error") or run.error
            return json.dumps(body)
        return None

    def run(self, run_id: str) -> dict | None:
        with self.engine.lock:
            run = self.engine.get_run(run_id)
            if run is None:
                return None
            return {
                "run_id": run.id, "function_id": run.fn_id,
                "status": API_STATUS[run.status], "state": run.status.value,
                "output": run.output if run.status is RunStatus.COMPLETED else None,
                "error": (run.keys.get("app_error") or run.error)
                if run.status is RunStatus.FAILED else None,
                "event_ids": [e.get("id") for e in run.events],
                "attempts": run.attempts + (0 if run.started_ms is None else 1),
                "reason": run.reason,
                "created_at": _iso(run.created_ms), "started_at": _iso(run.started_ms),
                "ended_at": _iso(run.ended_ms),
                "steps": self.steps(run),
                "history": [{"at": _iso(h.at_ms), "kind": h.kind, "step": h.step,
                             "detail": h.detail} for h in run.history],
            }

    def runs(self, *, fn_id: str | None = None, status: str | None = None,
             limit: int = 100) -> list[dict]:
        with self.engine.lock:
            ids = [r.id for r in self.engine.query_runs(fn_id)
                   if status is None or API_STATUS[r.status] == status.upper()
                   or r.status.value == status]
        return [d for d in (self.run(i) for i in ids[-limit:]) if d is not None]

    def steps(self, run: RunState) -> list[dict]:
        """The run's recorded steps in the order they were recorded."""
        names = run.keys.get("step_names") or {}
        out = []
        for sid, memo in run.memos.items():
            op, ok, value = memo
            out.append({"id": sid, "name": names.get(sid, sid), "op": op,
                        "output_id": f"{run.id}:{sid}", "ok": ok,
                        "data": value if ok else None, "error": None if ok else value})
        return out

    def step_output(self, output_id: str) -> dict | None:
        run_id, _, sid = output_id.partition(":")
        with self.engine.lock:
            run = self.engine.get_run(run_id)
            memo = None if run is None else run.memos.get(sid)
            if memo is None:
                return None
            shaped = sdk_steps([(sid, memo)])[sid]
        return shaped

    def batch(self, run_id: str) -> list[dict] | None:
        with self.engine.lock:
            run = self.engine.get_run(run_id)
            return None if run is None else json.loads(json.dumps(run.events))

    def actions(self, run_id: str) -> dict | None:
        with self.engine.lock:
            run = self.engine.get_run(run_id)
            return None if run is None else sdk_steps(run.memos.items())

    # events ---------------------------------------------------------------------------------
    def _event_record(self, event_id: str) -> tuple[str, dict] | None:
        # finished events live in the store, not in memory (issue 9)
        records = self.engine.event_records()
        for internal, rec in records:
            if internal == event_id:
                return internal, rec
        for internal, rec in records:
            if rec["payload"].get("id") == event_id:
                return internal, rec
        return None

    def event(self, event_id: str) -> dict | None:
        found = self._event_record(event_id)
        if found is None:
            return None
        internal, rec = found
        with self.engine.lock:
            payload = json.loads(json.dumps(rec["payload"]))
            outcomes = [list(o) for o in rec["outcomes"]]
        return {"internal_id": internal, "id": payload.get("id"), "name": payload.get("name"),
                "data": payload.get("data"), "ts": payload.get("ts"),
                "received_at": _iso(rec["received_ms"]),
                "outcomes": [{"function_id": f, "outcome": o, "run_id": r}
                             for f, o, r in outcomes],
                "payload": payload}

    def event_run_ids(self, event_id: str) -> list[str]:
        ev = self.event(event_id)
        if ev is None:
            return []
        return [o["run_id"] for o in ev["outcomes"] if o["run_id"]]

    def events(self, *, name: str | None = None, limit: int = 100) -> list[dict]:
        ids = [i for i, _ in self.engine.event_records(name)]
        return [e for e in (self.event(i) for i in ids[-limit:]) if e is not None]
