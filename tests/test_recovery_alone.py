"""recovery.restore on its own: what a store gave back goes into the plain tables, heap and
callables it is handed, with no Engine."""

from __future__ import annotations

from inngest_do.kernel import TimerHeap
from inngest_do.recovery import cron_cursors, restore
from inngest_do.runs import RunState, RunStatus
from inngest_do.storage import RecoveredState


def _record(run_id: str, status: str, pending: dict | None = None) -> dict:
    return {"id": run_id, "fn_id": "app-f", "events": [{"name": "e", "data": {}}],
            "created_ms": 5, "status": status, "started_ms": 6, "ended_ms": None,
            "output": None, "error": None, "attempt": 0, "attempts": 0,
            "memos": {"a": ["run", True, 1]}, "history": [[6, run_id, "app-f", "run.started",
                                                           None, None]],
            "pending": pending or {}}


class Flow:
    def __init__(self) -> None:
        self.state: dict | None = None
        self.requested: list[str] = []

    def restore(self, state: dict) -> None:
        self.state = state

    def request_slice(self, run: RunState) -> None:
        self.requested.append(run.id)


def test_restore_fills_what_it_is_handed() -> None:
    state = RecoveredState(
        runs=[_record("ready", "Running"),
              _record("sleeping", "Sleeping", {"nap": ["sleep", 9_000, None]}),
              _record("waiting", "Waiting",
                      {"w": ["wait", 7_000, {"event": "go", "if": "async.data.ok == true"}]}),
              _record("done", "Completed")],
        events=[{"id": "ev1", "payload": {"name": "e"}, "received_ms": 1,
                 "outcomes": [["app-f", "debounced", None]]}],
        flow={"rate:app-f": {"k": 3}}, meta={"store:count": 11, "cron:app-f:0": 60_000})
    runs: dict[str, RunState] = {}
    events: dict[str, dict] = {}
    waits: dict = {}
    timers = TimerHeap()
    flow = Flow()
    salts: list[int] = []
    restore(state, runs=runs, events=events, timers=timers, waits=waits, flow=flow,
            reseed=salts.append)
    assert list(runs) == ["ready", "sleeping", "waiting", "done"]
    assert runs["ready"].memos.get("a") == ["run", True, 1]
    assert runs["done"].status is RunStatus.COMPLETED
    assert events["ev1"]["outcomes"] == [["app-f", "debounced", None]]
    assert flow.state == {"rate:app-f": {"k": 3}} and flow.requested == ["ready"]
    assert salts == [11]
    assert [timers.pop_next(10_000)[2] for _ in range(2)] == [
        ("wait", "waiting", "w"), ("sleep", "sleeping", "nap")]
    [wait] = waits["go"].values()
    assert wait.run is runs["waiting"] and wait.step == "w"
    assert wait.expr is not None and wait.expr.matches({"async": {"data": {"ok": True}}})
    assert cron_cursors(state.meta) == {"app-f:0": 60_000}
