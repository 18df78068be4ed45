"""The memory store keeps finished runs and settled events as snapshots compressed in
batches: whatever the sequence of writes, and wherever batch boundaries fall, every read gives
back what a store that kept each record as JSON would; finished records are isolated from
later changes; pruning cuts through batches; a crash recovers from packed data; and a run
costs the store a few hundred bytes."""

from __future__ import annotations

import copy
import datetime
import enum
import gc
import json
import tracemalloc
import typing

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import inngest_do as inngest
from inngest_do.storage import MemoryStore
from inngest_do.storage import memory as memory_mod
from inngest_do.testing import Simulation


def _as_json(value: typing.Any) -> typing.Any:
    return json.loads(json.dumps(value))


class JsonModel:
    """The behaviour the store must keep, written the plain way: copies of everything,
    finished runs and events read as JSON, active runs as they were saved; prune by ended_ms
    in the order runs ended and by received_ms in the order events settled."""

    def __init__(self) -> None:
        self.events: dict[str, tuple[int, bool, typing.Any]] = {}
        self.settle_order: dict[str, int] = {}
        self.runs: dict[str, dict] = {}  # run id -> a copy of its last record
        self.memos: dict[str, dict] = {}
        self.history: dict[str, list] = {}
        self.ended: dict[str, int] = {}

    def save_event(self, event_id: str, payload: dict, received_ms: int,
                   outcomes: list | None = None, settled: bool = False) -> None:
        self.events[event_id] = (received_ms, settled, _as_json([payload, outcomes or []]))
        self.settle_order.pop(event_id, None)
        if settled:
            self.settle_order[event_id] = received_ms

    def save_run(self, record: dict) -> None:
        run_id = record["id"]
        if record.get("ended_ms") is None:
            self.ended.pop(run_id, None)  # (active again: its memos and history as they were)
        else:
            self.ended[run_id] = record["ended_ms"]  # (an existing key keeps its place)
        self.runs[run_id] = copy.deepcopy(record)

    def save_memo(self, run_id: str, step_id: str, outcome: list) -> None:
        self.memos.setdefault(run_id, {})[step_id] = copy.deepcopy(outcome)

    def append_history(self, run_id: str, entry: tuple) -> None:
        self.history.setdefault(run_id, []).append(copy.deepcopy(entry))

    def load_run(self, run_id: str) -> dict | None:
        rec = self.runs.get(run_id)
        if rec is None:
            return None
        full = {**copy.deepcopy(rec), "memos": copy.deepcopy(self.memos.get(run_id, {})),
                "history": copy.deepcopy(self.history.get(run_id, []))}
        return _as_json(full) if run_id in self.ended else full

    def load_runs(self, fn_id: str | None = None, status: str | None = None) -> list[dict]:
        out = []
        for run_id, rec in self.runs.items():
            if fn_id is not None and rec["fn_id"] != fn_id:
                continue
            if run_id in self.ended and status is not None and rec["status"] != status:
                continue
            out.append(self.load_run(run_id))
        return out

    def load_events(self, name: str | None = None) -> list[dict]:
        return [{"id": event_id, "payload": packed[0], "received_ms": ms, "outcomes": packed[1]}
                for event_id, (ms, _, packed) in self.events.items()
                if name is None or packed[0].get("name") == name]

    def active(self) -> list[dict]:
        return [typing.cast(dict, self.load_run(r)) for r in self.runs if r not in self.ended]

    def unsettled(self) -> list[dict]:
        return [e for e in self.load_events() if not self.events[e["id"]][1]]

    def prune(self, before_ms: int, limit: int = 5000) -> int:
        runs = [r for r, ended in self.ended.items() if ended < before_ms][:limit]
        for run_id in runs:
            del self.runs[run_id], self.ended[run_id]
            self.memos.pop(run_id, None)
            self.history.pop(run_id, None)
        for event_id in [e for e, ms in self.settle_order.items() if ms < before_ms][:limit]:
            del self.events[event_id], self.settle_order[event_id]
        return len(runs)


def _same(store: MemoryStore, model: JsonModel) -> None:
    for fn_id in (None, "f", "g"):
        for status in (None, "Completed", "Failed"):
            assert store.load_runs(fn_id, status) == model.load_runs(fn_id, status)
    for run_id in list(model.runs) + ["nope"]:
        assert store.load_run(run_id) == model.load_run(run_id)
    for name in (None, "a", "b"):
        assert store.load_events(name) == model.load_events(name)
    state = store.recover()
    assert state.runs == model.active()
    assert state.events == model.unsettled()


@pytest.fixture
def small_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(memory_mod, "_BATCH", 3)


_ids = st.sampled_from(["r1", "r2", "r3", "r4", "r5"])
_values = st.recursive(st.none() | st.booleans() | st.integers(-10**6, 10**6) | st.text(max_size=4),
                       lambda kids: st.lists(kids, max_size=3) | st.tuples(kids, kids)
                       | st.dictionaries(st.text(max_size=3), kids, max_size=3), max_leaves=5)
_ops = st.lists(st.one_of(
    st.tuples(st.just("event"), _ids, st.sampled_from(["a", "b"]), st.booleans(), _values),
    st.tuples(st.just("run"), _ids, st.sampled_from(["f", "g"]),
              st.sampled_from(["Running", "Parked", "Completed", "Failed"]), _values),
    st.tuples(st.just("memo"), _ids, st.sampled_from(["s1", "s2"]), _values),
    st.tuples(st.just("history"), _ids, _values),
    st.tuples(st.just("prune"), st.integers(0, 60), st.integers(1, 4)),
    st.tuples(st.just("check")),
), min_size=10, max_size=80)


def _apply(op: tuple, i: int, store: MemoryStore, model: JsonModel) -> None:
    kind = op[0]
    if kind == "check":
        _same(store, model)
        return
    if kind == "prune":
        assert store.prune(op[1], op[2]) == model.prune(op[1], op[2])
        return
    for target in (store, model):
        if kind == "event":
            target.save_event("e" + op[1], {"name": op[2], "data": {"v": op[4]}}, i,
                              [("f", "started", op[1], op[4])], op[3])
        elif kind == "run":
            ended = None if op[3] in ("Running", "Parked") else i
            target.save_run({"id": op[1], "fn_id": op[2], "status": op[3], "created_ms": 0,
                             "ended_ms": ended, "output": op[4],
                             "pending": {"z": ["sleep", i, op[4]]} if op[3] == "Parked" else {}})
        elif kind == "memo":
            target.save_memo(op[1], op[2], ("run", True, op[3]))
        else:
            target.append_history(op[1], (i, op[1], "f", "k", None, op[2]))


@settings(max_examples=150, deadline=None)
@given(_ops)
def test_any_writes_read_back_as_if_every_record_were_json_across_batch_boundaries(ops) -> None:
    old = memory_mod._BATCH
    memory_mod._BATCH = 3  # (a fixture would not be reset between hypothesis examples)
    try:
        store, model = MemoryStore(), JsonModel()
        for i, op in enumerate(ops):
            _apply(op, i, store, model)
        _same(store, model)
    finally:
        memory_mod._BATCH = old


def _finished(i: int, fn_id: str = "f") -> dict:
    return {"id": f"r{i}", "fn_id": fn_id, "status": "Completed", "created_ms": i,
            "ended_ms": i, "output": {"i": i}}


def test_a_finished_record_is_a_snapshot_later_changes_do_not_reach(small_batches) -> None:
    store = MemoryStore()
    record = _finished(1)
    entry = (1, "r1", "f", "run.completed", None, {"detail": [1]})
    outcome = ("run", True, {"out": [1]})
    store.save_run({**record, "ended_ms": None, "status": "Running"})
    store.save_memo("r1", "s", outcome)
    store.append_history("r1", entry)
    store.save_run(record)
    record["output"]["i"] = 99  # the engine (or anyone) changing what it handed over
    entry[5]["detail"].append(2)
    outcome[2]["out"].append(2)
    payload = {"name": "a", "data": {"x": [1]}}
    store.save_event("e1", payload, 5, [("f", "started", "r1")], settled=True)
    payload["data"]["x"].append(2)
    got = store.load_run("r1")
    assert got["output"] == {"i": 1} and got["memos"] == {"s": ["run", True, {"out": [1]}]}
    assert got["history"] == [[1, "r1", "f", "run.completed", None, {"detail": [1]}]]
    assert store.load_events()[0]["payload"]["data"] == {"x": [1]}
    got["output"]["i"] = 7  # nor do changes to what a read gave back
    assert store.load_run("r1")["output"] == {"i": 1}


def test_reads_find_early_finished_runs_after_many_more_finished() -> None:
    store = MemoryStore()
    n = memory_mod._BATCH * 20 + 7  # sealed batches, and an open one
    for i in range(n):
        store.save_event(f"e{i}", {"name": "a" if i % 2 else "b", "data": {"i": i}}, i,
                         [("f", "started", f"r{i}")], settled=True)
        store.save_run(_finished(i, "f" if i % 3 else "g"))
    assert len(store._run_batches) == 21 and len(store._event_batches) == 21
    for i in (0, 1, memory_mod._BATCH - 1, memory_mod._BATCH, n // 2, n - 1):
        assert store.load_run(f"r{i}")["output"] == {"i": i}
    # one read decompresses a batch only up to its record; the next, further on, the rest
    for i in (5, 2, 40, 3, 63, 70, 64, 69):
        assert store.load_run(f"r{i}")["output"] == {"i": i}
    assert [r["id"] for r in store.load_runs()] == [f"r{i}" for i in range(n)]
    assert [r["created_ms"] for r in store.load_runs("g")] == list(range(0, n, 3))
    assert [e["payload"]["data"]["i"] for e in store.load_events("b")] == list(range(0, n, 2))
    assert store.load_events()[5]["outcomes"] == [["f", "started", "r5"]]


def test_runs_that_end_out_of_creation_order_read_back_in_creation_order(small_batches) -> None:
    import random

    store = MemoryStore()
    n = 40  # 14 batches: more than a scan keeps decompressed at once
    for i in range(n):
        store.save_run({**_finished(i), "status": "Running", "ended_ms": None})
    order = list(range(n))
    random.Random(7).shuffle(order)
    for i in order:
        store.save_run(_finished(i, "f" if i % 2 else "g"))
    assert [(r["id"], r["output"]) for r in store.load_runs()] == [
        (f"r{i}", {"i": i}) for i in range(n)]
    assert [r["id"] for r in store.load_runs("g", "Completed")] == [
        f"r{i}" for i in range(0, n, 2)]
    assert store.prune(n // 2) == n // 2  # ended_ms is i: the first half, wherever it is
    assert [r["id"] for r in store.load_runs()] == [f"r{i}" for i in range(n // 2, n)]


def test_prune_cuts_through_batches_oldest_first_and_drops_emptied_ones(small_batches) -> None:
    store = MemoryStore()
    for i in range(10):  # batches [0 1 2] [3 4 5] [6 7 8], then 9 in the open one
        store.save_run(_finished(i))
        store.save_event(f"e{i}", {"name": "a"}, i, [], settled=True)
    store.save_run({"id": "live", "fn_id": "f", "status": "Running", "created_ms": 0,
                    "ended_ms": None})
    assert len(store._run_batches) == 4
    assert store.prune(5, limit=4) == 4  # a whole sealed batch, then one run of the next
    assert len(store._run_batches) == 3
    assert [r["id"] for r in store.load_runs()] == [f"r{i}" for i in range(4, 10)] + ["live"]
    assert store.prune(8, limit=100) == 4  # the rest of [3 4 5] (gone) and 6, 7 of [6 7 8]
    assert [r["id"] for r in store.load_runs()] == ["r8", "r9", "live"]
    assert store.load_run("r7") is None and store.load_run("r8")["output"] == {"i": 8}
    assert [e["id"] for e in store.load_events()] == ["e8", "e9"]
    assert store.prune(100) == 2 and [r["id"] for r in store.load_runs()] == ["live"]
    store.save_run(_finished(10))  # the open batch goes on after a prune emptied it
    assert [r["id"] for r in store.load_runs()] == ["live", "r10"]


def test_late_writes_to_a_finished_run_in_a_sealed_batch_keep_its_place(small_batches) -> None:
    store = MemoryStore()
    for i in range(7):
        store.save_run(_finished(i))
    store.save_memo("r1", "late", ["run", True, 1])
    store.append_history("r1", (9, "r1", "f", "late", None, None))
    store.save_run({**_finished(1), "status": "Failed", "ended_ms": 50})
    got = store.load_run("r1")
    assert got["status"] == "Failed" and got["memos"] == {"late": ["run", True, 1]}
    assert got["history"] == [[9, "r1", "f", "late", None, None]]
    assert [r["id"] for r in store.load_runs()] == [f"r{i}" for i in range(7)]
    # r1 ended again later but keeps its place in the order runs ended: prune goes by it
    assert store.prune(100, limit=2) == 2
    assert [r["id"] for r in store.load_runs()] == [f"r{i}" for i in range(2, 7)]
    store.save_run({**_finished(3), "ended_ms": 60})  # and prune sees when it ended now
    assert store.prune(50) == 4 and [r["id"] for r in store.load_runs()] == ["r3"]


class Color(str, enum.Enum):
    RED = "red"


def test_values_marshal_does_not_know_are_kept_as_their_json_form() -> None:
    store = MemoryStore()
    store.save_run({**_finished(1), "output": [Color.RED, ("a", 1)]})
    store.save_event("e1", {"name": "a", "data": {"c": Color.RED}}, 1, [], settled=True)
    assert store.load_run("r1")["output"] == ["red", ["a", 1]]
    assert store.load_events()[0]["payload"]["data"] == {"c": "red"}


# through the engine ----------------------------------------------------------------------
def _app() -> inngest.Inngest:
    client = inngest.Inngest(app_id="mem")

    @client.create_function(fn_id="one", trigger=inngest.TriggerEvent(event="go"))
    async def one(ctx: inngest.Context) -> int:
        return await ctx.step.run("s", lambda: ctx.event.data["i"])

    @client.create_function(fn_id="nap", trigger=inngest.TriggerEvent(event="nap"))
    async def nap(ctx: inngest.Context) -> int:
        first = await ctx.step.run("before", lambda: ctx.event.data["i"])
        await ctx.step.sleep("z", datetime.timedelta(hours=1))
        return first * 10

    return client


def test_a_crash_recovers_parked_runs_among_packed_finished_ones(small_batches) -> None:
    sim = Simulation(_app())
    for i in range(8):
        sim.send(inngest.Event(name="go", data={"i": i}))
        if i % 3 == 0:
            sim.send(inngest.Event(name="nap", data={"i": i}))
    before = [(r.id, r.status.value, r.output) for r in sim.runs()]
    sim.crash()
    assert [(r.id, r.status.value, r.output) for r in sim.runs()] == before
    assert sorted(r.fn_id for r in sim.engine.runs.values()) == ["mem-nap"] * 3
    sim.advance(datetime.timedelta(hours=1))
    assert [r.output for r in sim.runs("nap")] == [0, 30, 60]
    assert [r.output for r in sim.runs("one", status="Completed")] == list(range(8))
    early = sim.runs()[0]
    assert sim.get_run(early.id).steps == ["s"] and sim.get_run(early.id).history
    assert [e.data["i"] for e in sim.events("go")] == list(range(8))
    sim.crash()  # again, with the naps now finished and packed too
    assert sim.engine.runs == {} and len(sim.runs()) == 11


def _store_bytes_per_run(parked: bool, n: int = 600) -> float:
    """Bytes only the store holds per run: what emptying it frees."""
    sim = Simulation(_app())
    name = "nap" if parked else "go"
    for i in range(50):  # warm-up
        sim.send(inngest.Event(name=name, data={"i": i}))
    gc.collect()
    tracemalloc.start()
    try:
        for i in range(n):
            sim.send(inngest.Event(name=name, data={"i": i}))
        sim.engine.trace.clear()  # the Simulation's debugging trace is not the store
        gc.collect()
        before = tracemalloc.get_traced_memory()[0]
        store = sim.engine.store
        MemoryStore.__init__(typing.cast(MemoryStore, store))
        gc.collect()
        return (before - tracemalloc.get_traced_memory()[0]) / n
    finally:
        tracemalloc.stop()


def test_the_store_holds_a_few_hundred_bytes_per_finished_or_parked_run() -> None:
    # measured ~330 (finished: compressed snapshots, ids and their index) and ~560 (parked:
    # the record as a tuple, flat suspensions and memos, history references)
    assert _store_bytes_per_run(parked=False) <= 450
    assert _store_bytes_per_run(parked=True) <= 700


def test_saves_do_no_json_and_compress_once_per_batch(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = {"json": 0, "compress": 0}
    real_compress, real_json = memory_mod.zlib.compress, memory_mod._json

    def compress(*args: typing.Any) -> bytes:
        calls["compress"] += 1
        return real_compress(*args)

    def as_json(value: typing.Any) -> typing.Any:
        calls["json"] += 1
        return real_json(value)

    monkeypatch.setattr(memory_mod.zlib, "compress", compress)
    monkeypatch.setattr(memory_mod, "_json", as_json)
    sim = Simulation(_app())
    n = memory_mod._BATCH * 3
    for i in range(n):
        sim.send(inngest.Event(name="go", data={"i": i}))
    assert calls == {"json": 0, "compress": 6}  # 3 batches of runs, 3 of their events
    assert [r.output for r in sim.runs()] == list(range(n))


def test_history_goes_straight_into_active_runs_unless_a_subclass_listens() -> None:
    # The engine's journal appends an active run's history entries to the store's own lists
    # (MemoryStore.entry_lists); a subclass with its own append_history hears every entry.
    sim = Simulation(_app())
    store = typing.cast(MemoryStore, sim.engine.store)
    assert sim.engine.journal.entry_lists is store.entry_lists() is not None
    sim.send(inngest.Event(name="nap", data={"i": 2}))
    run = sim.runs()[0]
    assert store.load_run(run.id)["id"] == run.id
    assert [e[3] for e in store._runs[run.id][3:]] == [e.kind for e in run.history]

    heard: list[str] = []

    class Listening(MemoryStore):
        def append_history(self, run_id: str, entry: tuple) -> None:
            heard.append(entry[3])
            super().append_history(run_id, entry)

    listening = Listening()
    assert listening.entry_lists() is None
    client = _app()
    sim2 = Simulation(client, store=listening)
    sim2.send(inngest.Event(name="nap", data={"i": 2}))
    assert heard == [e.kind for e in sim2.runs()[0].history]
    sim2.advance(datetime.timedelta(hours=1))
    assert sim2.runs()[0].status == "Completed"
    assert heard == [e.kind for e in sim2.runs()[0].history]

    # initialised again (emptied), the store still takes the journal's entries
    MemoryStore.__init__(store)
    assert sim.engine.journal.entry_lists is store.entry_lists()
