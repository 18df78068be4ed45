"""The SQLite store: records round-trip in order, the file format is checked (and a file we
cannot use is never modified), one engine holds the file at a time, and an engine on it
behaves exactly as one on the memory store -- crashes included."""

from __future__ import annotations

import datetime
import json
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import textwrap
import time
import typing

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import inngest_do as inngest
from inngest_do.storage import MemoryStore, open_store
from inngest_do.storage import sqlite as sqlite_mod
from inngest_do.storage.sqlite import (
    APPLICATION_ID,
    SCHEMA_VERSION,
    SQLiteStore,
    StoreFormatError,
    StoreInUseError,
    StoreReader,
    send_events,
)
from inngest_do.testing import Simulation


def _norm(value):
    """JSON's view of a value (tuples become lists), to compare stores."""
    return json.loads(json.dumps(value, default=str))


def _open(path, **kw) -> SQLiteStore:
    store = SQLiteStore(path, **kw)
    store.open()
    return store


def _files(directory) -> dict[str, bytes]:
    return {name: (directory / name).read_bytes() for name in sorted(os.listdir(directory))}


# ------------------------------------------------------------------------------ round trips
def test_open_store_maps_a_path_to_sqlite(tmp_path) -> None:
    store = open_store(str(tmp_path / "a.db"))
    assert isinstance(store, SQLiteStore) and store.location == str(tmp_path / "a.db")
    assert isinstance(open_store(tmp_path / "b.db"), SQLiteStore)  # a PathLike too


def test_every_record_round_trips_in_order(tmp_path) -> None:
    store = _open(tmp_path / "s.db")
    store.save_event("e2", {"name": "b", "data": {"x": [1, 2]}}, 20)
    store.save_event("e1", {"name": "a", "data": {}}, 10)
    store.save_run({"id": "r2", "fn_id": "f", "status": "Queued", "created_ms": 2,
                    "ended_ms": None, "pending": {"s": ["sleep", 99, None]}})
    store.save_run({"id": "r1", "fn_id": "g", "status": "Queued", "created_ms": 1,
                    "ended_ms": None})
    for step in ("z", "a", "m"):
        store.save_memo("r2", step, ["run", True, {"step": step}])
    store.append_history("r2", (1, "r2", "f", "run.started", None, None))
    store.append_history("r2", (2, "r2", "f", "sleep.started", "s", {"until_ms": 99}))
    store.save_run({"id": "r2", "fn_id": "f", "status": "Completed", "created_ms": 2,
                    "ended_ms": 5, "output": {"ok": True}})  # an update keeps its place
    store.save_flow("gcra", "fn:key", {"tat": 5})
    store.save_flow("gcra", "fn:gone", {"tat": 1})
    store.save_flow("gcra", "fn:gone", None)
    store.save_meta("cron:f:0", 1234)
    store.save_meta("cron:f:0", 5678)
    store.commit()
    store.close()

    store = _open(tmp_path / "s.db")
    state = store.recover()
    assert [r["id"] for r in state.runs] == ["r1"]  # only active work comes back
    assert [r["id"] for r in store.load_runs()] == ["r2", "r1"]  # the rest on demand
    r2 = store.load_run("r2")
    assert r2 is not None
    assert r2["status"] == "Completed" and r2["output"] == {"ok": True}
    assert list(r2["memos"]) == ["z", "a", "m"]
    assert r2["memos"]["a"] == ["run", True, {"step": "a"}]
    assert r2["history"] == [(1, "r2", "f", "run.started", None, None),
                             (2, "r2", "f", "sleep.started", "s", {"until_ms": 99})]
    assert state.runs[0]["memos"] == {} and state.runs[0]["history"] == []
    assert [e["id"] for e in state.events] == ["e2", "e1"]  # not settled: they come back
    assert state.events[0] == {"id": "e2", "payload": {"name": "b", "data": {"x": [1, 2]}},
                               "received_ms": 20, "outcomes": []}
    assert state.flow == {"gcra": {"fn:key": {"tat": 5}}}
    assert state.meta == {"cron:f:0": 5678, "store:count": 4}
    assert [e["id"] for e in store.load_events("a")] == ["e1"]


_ids = st.sampled_from(["a", "b", "c", "d"])
_json = st.recursive(st.none() | st.booleans() | st.integers(-10**12, 10**12) | st.text(max_size=5),
                     lambda kids: st.lists(kids, max_size=3)
                     | st.dictionaries(st.text(max_size=3), kids, max_size=3), max_leaves=6)
_ops = st.lists(st.one_of(
    st.tuples(st.just("event"), _ids, _json),
    st.tuples(st.just("run"), _ids, _json),
    st.tuples(st.just("memo"), _ids, _ids, _json),
    st.tuples(st.just("history"), _ids, _json),
    st.tuples(st.just("flow"), _ids, _ids, _json),
    st.tuples(st.just("meta"), _ids, _json),
), max_size=40)


@settings(max_examples=60, deadline=None)
@given(_ops)
def test_any_sequence_of_writes_reads_back_as_from_the_memory_store(ops) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        stores = [MemoryStore(), _open(os.path.join(tmp, "s.db"))]
        for i, op in enumerate(ops):
            for store in stores:
                kind = op[0]
                if kind == "event":
                    store.save_event(op[1], {"name": "n", "data": {"v": op[2]}}, i)
                elif kind == "run":
                    store.save_run({"id": op[1], "fn_id": "f", "status": "Queued",
                                    "created_ms": i, "ended_ms": None, "v": op[2]})
                elif kind == "memo":
                    store.save_memo(op[1], op[2], ["run", True, op[3]])
                elif kind == "history":
                    store.append_history(op[1], (i, op[1], "f", "k", None, op[2]))
                elif kind == "flow":
                    store.save_flow(op[1], op[2], op[3])
                else:
                    store.save_meta(op[1], op[2])
                store.commit()
        mem, sql = (s.recover() for s in stores)
        stores[1].close()
        # (the memory store may keep an empty namespace after a delete: no state either way)
        mem = mem._replace(flow={k: v for k, v in mem.flow.items() if v})
        assert _norm(sql) == _norm(mem)
        for a, b in zip(mem.runs, sql.runs):
            assert list(a["memos"]) == list(b["memos"])  # insertion order, not just content


def test_uncommitted_writes_are_lost_on_restart_and_committed_ones_kept(tmp_path) -> None:
    store = _open(tmp_path / "s.db")
    store.save_memo("r", "kept", ["run", True, 1])
    store.commit()
    store.save_memo("r", "lost", ["run", True, 2])
    assert store.in_transaction
    store.open()  # an engine starting over on the same store: from the last commit
    assert not store.in_transaction
    store.save_run({"id": "r", "fn_id": "f", "status": "Queued", "created_ms": 0,
                    "ended_ms": None})
    store.commit()
    assert store.recover().runs[0]["memos"] == {"kept": ["run", True, 1]}


def test_a_killed_process_loses_nothing_it_committed(tmp_path) -> None:
    path = tmp_path / "s.db"
    code = textwrap.dedent(f"""
        import os
        from inngest_do.storage.sqlite import SQLiteStore
        s = SQLiteStore({str(path)!r}); s.open()
        s.save_run({{"id": "r", "fn_id": "f", "status": "Queued", "created_ms": 0,
                     "ended_ms": None}})
        s.save_memo("r", "committed", ["run", True, 1]); s.commit()
        s.save_memo("r", "pending", ["run", True, 2])
        os.kill(os.getpid(), 9)
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=60,
                          check=False)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    store = _open(path)
    assert store.recover().runs[0]["memos"] == {"committed": ["run", True, 1]}


def _legacy_redo(path, commits: list[tuple[int, list, list]], tail: bytes = b"") -> None:
    """A redo log as schema-1 versions wrote it: (seq, journal rows, statements) frames."""
    import struct
    import zlib

    out = b""
    for seq, rows, statements in commits:
        payload = json.dumps([seq, rows, statements]).encode()
        out += struct.pack("<II", len(payload), zlib.crc32(payload)) + payload
    (path.parent / (path.name + "-redo")).write_bytes(out + tail)


def _run_stmt(status: str = "Running", ended=None) -> list:
    rec = {"id": "r", "fn_id": "f", "status": status, "created_ms": 0, "ended_ms": ended}
    return ["R", ["r", "f", status, 0, ended, json.dumps(rec)]]


def _memo_rows(i: int) -> list:
    return ["r", "m", f"s{i}", json.dumps(["run", True, i]),
            "r", "h", None, json.dumps([i, "r", "f", "step.completed", f"s{i}", None])]


def _legacy_commits() -> list[tuple[int, list, list]]:
    return [(1, _memo_rows(0), [_run_stmt()]), (2, _memo_rows(1), []), (3, _memo_rows(2), [])]


def test_a_redo_log_left_by_an_older_version_is_applied_once_and_removed(tmp_path) -> None:
    path = tmp_path / "s.db"
    _open(path).close()
    _legacy_redo(path, _legacy_commits(), tail=b"\x40\x00\x00\x00\x01\x02\x03\x04[4,[")
    store = _open(path)  # the torn tail (a write cut short by a kill) is dropped
    assert list(store.recover().runs[0]["memos"]) == ["s0", "s1", "s2"]
    assert not os.path.exists(str(path) + "-redo")
    store.close()
    state = _open(path).recover()
    assert len(state.runs[0]["memos"]) == 3 and len(state.runs[0]["history"]) == 3


@pytest.mark.parametrize("damage", ["garbage between frames", "a gap"])
def test_a_damaged_redo_log_is_refused_naming_the_file(tmp_path, damage) -> None:
    path = tmp_path / "s.db"
    _open(path).close()
    commits = _legacy_commits()
    if damage == "a gap":
        _legacy_redo(path, [commits[0], commits[2]])
    else:
        _legacy_redo(path, commits[:1])
        first = (tmp_path / "s.db-redo").read_bytes()
        _legacy_redo(path, commits[1:])
        rest = (tmp_path / "s.db-redo").read_bytes()
        (tmp_path / "s.db-redo").write_bytes(first + b"junk" + rest)
    before = _files(tmp_path)
    with pytest.raises(StoreFormatError, match="s.db-redo: damaged redo log"):
        _open(path)
    assert _files(tmp_path) == before


def test_readers_see_every_commit_at_once(tmp_path) -> None:
    path = tmp_path / "s.db"
    store = _open(path)
    store.save_run({"id": "r", "fn_id": "f", "status": "Running", "created_ms": 0,
                    "ended_ms": None})
    for i in range(3):
        store.save_memo("r", f"s{i}", ["run", True, i])
        store.append_history("r", (i, "r", "f", "step.completed", f"s{i}", None))
        store.commit()
    with StoreReader(path) as reader:
        assert [r["id"] for r in reader.runs()] == ["r"]
        assert [r["id"] for r in reader.runs(status="Running", limit=5)] == ["r"]
        assert reader.find_run("r")["status"] == "Running"
        assert list(reader.memos("r")) == ["s0", "s1", "s2"]
        assert [e[4] for e in reader.history("r")] == ["s0", "s1", "s2"]
    store.save_run({"id": "r", "fn_id": "f", "status": "Completed", "created_ms": 0,
                    "ended_ms": 9})
    store.commit()
    with StoreReader(path) as reader:
        assert reader.runs(status="Running") == []
        assert reader.find_run("r")["ended_ms"] == 9
    store.close()


def test_synchronous_full_commits_too(tmp_path) -> None:
    store = _open(tmp_path / "s.db", synchronous="full")
    store.save_meta("k", 1)
    store.commit()
    store.close()
    assert _open(tmp_path / "s.db").recover().meta == {"k": 1}
    with pytest.raises(ValueError, match="synchronous"):
        SQLiteStore(tmp_path / "x.db", synchronous="EXTRA")
    with pytest.raises(ValueError, match="synchronous"):
        send_events(tmp_path / "x.db", [{"name": "a"}], synchronous="OFF; DROP TABLE runs")


def test_synchronous_off_commits_and_survives_a_killed_process(tmp_path) -> None:
    """OFF skips every fsync; what was committed is still there for the next process
    (the kernel has it), which is the durability of a process crash."""
    path = tmp_path / "s.db"
    code = ("import os, sys; from inngest_do.storage.sqlite import SQLiteStore\n"
            "s = SQLiteStore(sys.argv[1], synchronous='off'); s.open()\n"
            "for i in range(50):\n"
            "    s.save_memo('r', f's{i}', ['ok', i]); s.commit()\n"
            "os._exit(9)  # no close, no checkpoint: as if killed\n")
    proc = subprocess.run([sys.executable, "-c", code, str(path)], timeout=60, check=False)
    assert proc.returncode == 9
    with StoreReader(path) as reader:
        assert list(reader.memos("r").values()) == [["ok", i] for i in range(50)]
    store = _open(path, synchronous="OFF")
    assert store.synchronous == "OFF"
    store.close()


# ---------------------------------------------------------------------------------- format
def test_the_file_is_marked_as_ours_in_wal_mode(tmp_path) -> None:
    _open(tmp_path / "s.db").close()
    conn = sqlite3.connect(tmp_path / "s.db")
    assert conn.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_an_empty_file_is_adopted(tmp_path) -> None:
    (tmp_path / "s.db").write_bytes(b"")
    store = _open(tmp_path / "s.db")
    store.save_meta("k", 1)
    store.close()
    assert _open(tmp_path / "s.db").recover().meta == {"k": 1}


def test_an_older_schema_is_migrated_forward(tmp_path, monkeypatch) -> None:
    path = tmp_path / "s.db"
    store = _open(path)
    store.save_meta("k", 1)
    store.close()

    def to_v2(conn: sqlite3.Connection) -> None:
        conn.execute("CREATE TABLE added_in_v2 (x)")

    monkeypatch.setattr(sqlite_mod, "SCHEMA_VERSION", SCHEMA_VERSION + 1)
    monkeypatch.setitem(sqlite_mod.MIGRATIONS, SCHEMA_VERSION, to_v2)
    store = _open(path)
    assert store.recover().meta == {"k": 1}
    store.close()
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION + 1
    assert conn.execute("SELECT count(*) FROM added_in_v2").fetchone() == (0,)


def _assert_refused(tmp_path, name: str, *needles: str) -> None:
    """Opening (as an engine, a sender or a reader) fails naming the file and the problem,
    and changes no byte in the directory."""
    before = _files(tmp_path)
    path = tmp_path / name
    for attempt in (lambda: _open(path), lambda: send_events(path, [{"name": "x"}]),
                    lambda: StoreReader(path)):
        with pytest.raises(StoreFormatError) as info:
            attempt()
        message = str(info.value)
        assert str(path) in message
        for needle in needles:
            assert needle in message
    assert _files(tmp_path) == before


def test_a_newer_schema_is_refused_untouched(tmp_path) -> None:
    path = tmp_path / "s.db"
    store = _open(path)
    store.save_meta("k", 1)
    store.close()
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.commit()
    conn.close()
    _assert_refused(tmp_path, "s.db", "newer", f"schema version {SCHEMA_VERSION + 1}")


def test_a_foreign_sqlite_database_is_refused_untouched(tmp_path) -> None:
    conn = sqlite3.connect(tmp_path / "app.db")
    conn.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)")
    conn.execute("INSERT INTO users VALUES (1, 'ada')")
    conn.commit()
    conn.close()
    _assert_refused(tmp_path, "app.db", "not an inngest_do store", "users")
    conn = sqlite3.connect(tmp_path / "other.db")
    conn.execute("PRAGMA application_id = 1234")
    conn.execute("CREATE TABLE t (x)")
    conn.commit()
    conn.close()
    _assert_refused(tmp_path, "other.db", "not an inngest_do store", "0x4d2")


def test_a_file_that_is_not_sqlite_is_refused_untouched(tmp_path) -> None:
    (tmp_path / "notes.db").write_text("these are my notes, not a database\n")
    _assert_refused(tmp_path, "notes.db", "not an SQLite database")


def test_a_corrupt_store_is_refused_untouched(tmp_path) -> None:
    path = tmp_path / "s.db"
    store = _open(path)
    for i in range(300):
        store.save_memo(f"run{i}", "step", ["run", True, "x" * 200])
    store.commit()
    store.close()
    data = bytearray(path.read_bytes())
    assert len(data) > 8 * 4096
    data[5 * 4096:7 * 4096] = b"\xa5" * (2 * 4096)  # two pages of garbage
    path.write_bytes(bytes(data))
    _assert_refused(tmp_path, "s.db", "corrupt")


# ------------------------------------------------------------------------------------ lease
_HOLDER = textwrap.dedent("""
    import sys, time
    from inngest_do.storage.sqlite import SQLiteStore
    s = SQLiteStore(sys.argv[1]); s.open()
    print("ready", flush=True)
    time.sleep(float(sys.argv[2]))
    s.close()
    print("released", flush=True)
    time.sleep(60)
""")


def _holder(path, hold: float) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", _HOLDER, str(path), str(hold)],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline() == "ready\n"
    return proc


def test_a_second_process_is_refused_with_the_holders_pid(tmp_path) -> None:
    path = tmp_path / "s.db"
    proc = _holder(path, 60)
    try:
        with pytest.raises(StoreInUseError) as info:
            _open(path)
        assert f"is in use by process {proc.pid}" in str(info.value)
        assert str(path) in str(info.value) and info.value.pid == proc.pid
        # senders and readers do not need the lease
        assert send_events(path, [{"name": "a/b", "data": {}, "id": "", "ts": 0}]) == [1]
        with StoreReader(path) as reader:
            assert reader.inbox_size() == 1 and reader.runs() == []
    finally:
        proc.kill()  # SIGKILL: the kernel drops the lock with the process
        proc.wait()
    _open(path).close()


def test_a_second_process_may_wait_for_the_lease(tmp_path) -> None:
    path = tmp_path / "s.db"
    proc = _holder(path, 0.5)
    try:
        started = time.monotonic()
        store = _open(path, lease_timeout=30)
        assert time.monotonic() - started < 20
        store.close()
    finally:
        proc.kill()
        proc.wait()


def test_inbox_events_are_taken_once_with_the_commit_that_accepts_them(tmp_path) -> None:
    path = tmp_path / "s.db"
    store = _open(path)
    assert send_events(path, [{"name": "a", "data": {"i": 1}}, {"name": "b"}]) == [1, 2]
    assert store.take_inbox() == [(1, {"name": "a", "data": {"i": 1}}), (2, {"name": "b"})]
    assert store.take_inbox() == []  # handed out once
    store.consume_inbox(1)
    store.save_event("e1", {"name": "a"}, 0)
    store.open()  # died before the accepting commit: "a" is handed out again
    assert [seq for seq, _ in store.take_inbox(limit=1)] == [1]
    store.consume_inbox(1)
    store.save_event("e1", {"name": "a"}, 0)
    store.commit()  # accepted and gone, together (in the redo log)
    store.open()  # a restart: "b" only
    assert [seq for seq, _ in store.take_inbox()] == [2]
    store.consume_inbox(2)
    store.commit()
    store.close()
    with StoreReader(path) as reader:
        assert reader.inbox_size() == 0
    assert [e["id"] for e in _open(path).recover().events] == ["e1"]
    assert send_events(path, [{"name": "c"}]) == [3]  # numbers are never reused


# ------------------------------------------------------- engines on SQLite and on memory
def _workload_client() -> inngest.Inngest:
    client = inngest.Inngest(app_id="wl")

    @client.create_function(fn_id="chain", trigger=inngest.TriggerEvent(event="wl/chain"),
                            retries=2)
    async def chain(ctx: inngest.Context) -> dict:
        total = 0
        for i in range(ctx.event.data["n"]):
            total += await ctx.step.run("add", lambda i=i: i * ctx.event.data["k"])
        await ctx.step.sleep("nap", datetime.timedelta(seconds=ctx.event.data["sleep"]))
        go = await ctx.step.wait_for_event(
            "go", event="wl/go", timeout=datetime.timedelta(hours=1),
            if_exp="event.data.k == async.data.k")
        return {"total": total, "go": None if go is None else go.data["k"]}

    @client.create_function(fn_id="flaky", trigger=inngest.TriggerEvent(event="wl/flaky"),
                            retries=3)
    async def flaky(ctx: inngest.Context) -> int:
        def body() -> int:
            if ctx.attempt < ctx.event.data["fails"]:
                raise ValueError(f"attempt {ctx.attempt}")
            return ctx.attempt

        got = await ctx.step.run("try", body)
        child = await ctx.step.invoke("child", function=child_fn, data={"v": got})
        return got + child

    @client.create_function(fn_id="child", trigger=inngest.TriggerEvent(event="wl/never"))
    def child_fn(ctx: inngest.ContextSync) -> int:
        ctx.step.sleep("pause", datetime.timedelta(minutes=1))
        return ctx.step.run("double", lambda: ctx.event.data["v"] * 2)

    @client.create_function(fn_id="relay", trigger=inngest.TriggerEvent(event="wl/relay"))
    async def relay(ctx: inngest.Context) -> int:
        ids = await ctx.step.send_event("fwd", inngest.Event(
            name="wl/chain", data={"n": 2, "k": ctx.event.data["k"] + 100, "sleep": 5}))
        return len(ids)

    return client


_actions = st.lists(st.one_of(
    st.tuples(st.just("chain"), st.integers(0, 4), st.integers(0, 9), st.integers(1, 120)),
    st.tuples(st.just("go"), st.integers(0, 9)),
    st.tuples(st.just("flaky"), st.integers(0, 5)),
    st.tuples(st.just("relay"), st.integers(0, 9)),
    st.tuples(st.just("advance"), st.integers(0, 600)),
    st.tuples(st.just("crash")),
), min_size=1, max_size=14)


def _play(actions, store, seed: int, *, crashes: bool) -> Simulation:
    sim = Simulation(_workload_client(), seed=seed, store=store)
    for action in actions:
        kind = action[0]
        if kind == "chain":
            sim.send(inngest.Event(name="wl/chain",
                                   data={"n": action[1], "k": action[2], "sleep": action[3]}))
        elif kind == "go":
            sim.send(inngest.Event(name="wl/go", data={"k": action[1]}))
        elif kind == "flaky":
            sim.send(inngest.Event(name="wl/flaky", data={"fails": action[1]}))
        elif kind == "relay":
            sim.send(inngest.Event(name="wl/relay", data={"k": action[1]}))
        elif kind == "advance":
            sim.advance(datetime.timedelta(seconds=action[1]))
        elif crashes:
            sim.crash()
    sim.run_until_idle()
    return sim


def _runs(sim: Simulation) -> list:
    return [(r.id, r.fn_id, r.status.value, r.output, r.error and r.error.message,
             r.created_at, r.ended_at, r.history) for r in sim.runs()]


def _outcomes(sim: Simulation) -> list:
    """What each run came to, without ids or times: a restart reseeds the random source, so
    ids and retry jitter differ after one."""
    return sorted(json.dumps([r.fn_id, r.event.data if r.event else None, r.status.value,
                              r.output, r.error and r.error.message], sort_keys=True)
                  for r in sim.runs())


_sim_settings = settings(max_examples=40, deadline=None,
                         suppress_health_check=[HealthCheck.too_slow])


@_sim_settings
@given(_actions, st.integers(0, 2**32))
def test_sqlite_and_memory_stores_give_the_same_runs_and_traces(actions, seed) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        memory = _play(actions, None, seed, crashes=True)
        sqlite = _play(actions, os.path.join(tmp, "s.db"), seed, crashes=True)
        assert sqlite.trace == memory.trace
        assert _norm(_runs(sqlite)) == _norm(_runs(memory))
        sqlite.engine.store.close()


@_sim_settings
@given(_actions, st.integers(0, 2**32))
def test_crashes_at_any_point_give_the_same_final_results(actions, seed) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        calm = _play(actions, None, seed, crashes=False)
        crashed = _play(actions, os.path.join(tmp, "s.db"), seed, crashes=True)
        assert all(r.status.is_final for r in crashed.runs())
        assert _outcomes(crashed) == _outcomes(calm)
        crashed.engine.store.close()


def test_a_simulation_resumes_from_the_file_in_a_new_process(tmp_path) -> None:
    """The store outlives the process: a new Simulation on the file finishes the run."""
    path = str(tmp_path / "s.db")
    sim = Simulation(_workload_client(), seed=7, store=path)
    sim.send(inngest.Event(name="wl/chain", data={"n": 3, "k": 2, "sleep": 30}))
    assert sim.runs()[0].status == "Sleeping"
    sim.engine.store.close()

    again = Simulation(_workload_client(), seed=7, store=path)
    run = again.runs()[0]
    assert run.status == "Sleeping" and run.steps == ["add", "add:1", "add:2"]
    again.advance(datetime.timedelta(seconds=30))
    again.send(inngest.Event(name="wl/go", data={"k": 2}))
    assert again.runs()[0].output == {"total": 6, "go": 2}
    again.engine.store.close()


def test_an_event_is_accepted_with_all_its_deliveries_or_not_at_all(tmp_path) -> None:
    path = str(tmp_path / "s.db")

    def make_client() -> inngest.Inngest:
        client = inngest.Inngest(app_id="at")

        @client.create_function(fn_id="waiter", trigger=inngest.TriggerEvent(event="at/w"))
        async def waiter(ctx: inngest.Context) -> bool:
            got = await ctx.step.wait_for_event("go", event="at/go",
                                                timeout=datetime.timedelta(hours=1))
            return got is not None

        @client.create_function(fn_id="started", trigger=inngest.TriggerEvent(event="at/go"))
        async def started(ctx: inngest.Context) -> int:
            return 1

        return client

    sim = Simulation(make_client(), seed=3, store=path)
    sim.send(inngest.Event(name="at/w"))
    send_events(path, [{"name": "at/go", "data": {}, "id": "", "ts": 0}])
    store = sim.engine.store
    ((seq, payload),) = store.take_inbox()
    store.consume_inbox(seq)
    commits = []
    real_commit = store.commit

    def dying_commit() -> None:  # the process dies at accept's second commit
        commits.append(1)
        if len(commits) == 2:
            raise KeyboardInterrupt("killed")
        real_commit()

    store.commit = dying_commit
    with pytest.raises(KeyboardInterrupt):
        sim.engine.accept([inngest.Event.from_payload(payload)])
    typing.cast(sqlite3.Connection, store._conn).close()  # what a SIGKILL leaves
    store._lease.release()

    again = Simulation(make_client(), seed=3, store=path)
    started = [r for r in again.runs() if r.fn_id == "at-started"]
    retry = again.engine.store.take_inbox()  # or the event still waits to be taken again
    assert started or retry


def test_waits_debounces_and_batches_survive_a_restart(tmp_path) -> None:
    path = str(tmp_path / "s.db")

    def make_client() -> inngest.Inngest:
        client = inngest.Inngest(app_id="fc")

        @client.create_function(
            fn_id="debounced", trigger=inngest.TriggerEvent(event="fc/d"),
            debounce=inngest.Debounce(period=datetime.timedelta(seconds=10)))
        async def debounced(ctx: inngest.Context) -> int:
            return ctx.event.data["n"]

        @client.create_function(
            fn_id="batched", trigger=inngest.TriggerEvent(event="fc/b"),
            batch_events=inngest.Batch(max_size=5, timeout=datetime.timedelta(seconds=10)))
        async def batched(ctx: inngest.Context) -> list:
            return [e.data["n"] for e in ctx.events]

        @client.create_function(fn_id="waiting", trigger=inngest.TriggerEvent(event="fc/w"))
        async def waiting(ctx: inngest.Context) -> bool:
            got = await ctx.step.wait_for_event("w", event="fc/go",
                                                timeout=datetime.timedelta(minutes=5))
            return got is not None

        return client

    sim = Simulation(make_client(), seed=1, store=path)
    for n in range(3):
        sim.send(inngest.Event(name="fc/d", data={"n": n}))
        sim.send(inngest.Event(name="fc/b", data={"n": n}))
    sim.send(inngest.Event(name="fc/w"))
    sim.advance(datetime.timedelta(seconds=3))
    assert [r.fn_id for r in sim.runs()] == ["fc-waiting"]
    sim.engine.store.close()

    again = Simulation(make_client(), seed=1, start=sim.now, store=path)  # a new process
    again.send(inngest.Event(name="fc/go"))
    again.advance(datetime.timedelta(seconds=20))
    assert {r.fn_id: r.output for r in again.runs()} == {
        "fc-waiting": True, "fc-debounced": 2, "fc-batched": [0, 1, 2]}
    again.engine.store.close()
