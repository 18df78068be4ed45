"""Issue 9, storage half: memory bounded by active work, retention, one writer per file
whatever its path, and bad files refused at open with one clear line."""

from __future__ import annotations

import datetime
import gc
import os
import sqlite3
import subprocess
import sys
import textwrap
import tracemalloc
from pathlib import Path

import pytest

import inngest_do as inngest
from inngest_do import cli
from inngest_do.storage import StoreError, StoreFormatError, StoreInUseError
from inngest_do.storage.sqlite import SQLiteStore, StoreReader, send_events
from inngest_do.testing import Simulation


def _app(**kw) -> inngest.Inngest:
    client = inngest.Inngest(app_id="fit", **kw)

    @client.create_function(fn_id="one", trigger=inngest.TriggerEvent(event="go"))
    async def one(ctx: inngest.Context) -> int:
        return await ctx.step.run("s", lambda: ctx.event.data["i"])

    @client.create_function(fn_id="nap", trigger=inngest.TriggerEvent(event="nap"))
    async def nap(ctx: inngest.Context) -> str:
        await ctx.step.sleep("z", datetime.timedelta(hours=1))
        return "up"

    return client


# memory bounded by active work ---------------------------------------------------------------
@pytest.mark.parametrize("store", ["memory", "sqlite"])
def test_finished_runs_leave_memory_and_are_read_from_the_store(tmp_path, store) -> None:
    path = None if store == "memory" else str(tmp_path / "s.db")
    sim = Simulation(_app(), store=path)
    for i in range(5):
        sim.send(inngest.Event(name="go", data={"i": i}))
    sim.send(inngest.Event(name="nap"))
    engine = sim.engine
    assert [r.fn_id for r in engine.runs.values()] == ["fit-nap"]  # only active work
    assert engine.events == {} or all(
        e["outcomes"] and e["payload"]["name"] == "nap" for e in engine.events.values())
    runs = sim.runs()
    assert [r.output for r in runs[:5]] == [0, 1, 2, 3, 4] and runs[5].status == "Sleeping"
    assert [r.output for r in sim.runs("one", status="Completed")] == [0, 1, 2, 3, 4]
    assert sim.runs(status="Sleeping")[0].fn_id == "fit-nap"
    got = sim.get_run(runs[2].id)
    assert got.output == 2 and got.steps == ["s"] and got.history
    records = sim.events("go")
    assert [(o.fn_id, o.outcome) for r in records for o in r.outcomes] == [
        ("fit-one", "started")] * 5
    assert records[1].outcomes[0].run_id == runs[1].id
    sim.crash()  # recovery reads active work only, the rest stays queryable
    assert list(sim.engine.runs) == [runs[5].id]
    assert [r.id for r in sim.runs()] == [r.id for r in runs]
    sim.advance(datetime.timedelta(hours=1))
    assert sim.runs()[5].output == "up" and sim.engine.runs == {}


def test_a_finished_one_step_run_costs_under_1_kb_in_the_memory_store() -> None:
    sim = Simulation(_app())
    for i in range(50):  # warm-up: caches, the loop, interned strings
        sim.send(inngest.Event(name="go", data={"i": i}))
    sim.engine.trace.clear()
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        n = 1000
        for i in range(n):
            sim.send(inngest.Event(name="go", data={"i": i}))
        sim.engine.trace.clear()  # the Simulation's debugging trace is not the store
        gc.collect()
        per_run = (tracemalloc.get_traced_memory()[0] - before) / n
    finally:
        tracemalloc.stop()
    assert per_run <= 1024, per_run


def test_retention_prunes_finished_runs_and_their_events(tmp_path) -> None:
    for path in (None, str(tmp_path / "s.db")):
        sim = Simulation(_app(retention=datetime.timedelta(days=1)), store=path)
        sim.send(inngest.Event(name="go", data={"i": 1}))
        sim.send(inngest.Event(name="nap"))
        sim.advance(datetime.timedelta(days=2))  # the nap ends: a commit, then a prune
        sim.send(inngest.Event(name="go", data={"i": 2}))
        sim.advance(datetime.timedelta(hours=3))  # past the next prune
        sim.send(inngest.Event(name="go", data={"i": 3}))
        assert [r.output for r in sim.runs()] == [2, 3]  # 1 and the nap ended > 1 day ago
        assert [e.data for e in sim.events("go")] == [{"i": 2}, {"i": 3}]


def test_retention_defaults_to_7_days_on_the_wall_clock_and_none_keeps_all() -> None:
    assert inngest.Inngest(app_id="a").engine.retention_ms == 7 * 86_400_000
    assert inngest.Inngest(app_id="a", retention=None).engine.retention_ms is None
    assert inngest.Inngest(app_id="a", retention=5000).engine.retention_ms == 5000
    assert Simulation(_app()).engine.retention_ms is None  # a test looks back at everything
    with pytest.raises(ValueError, match="retention"):
        inngest.Inngest(app_id="a", retention=-1)


# one writer per file, whatever its path ------------------------------------------------------
def test_the_lease_follows_the_file_through_symlinks_and_hard_links(tmp_path) -> None:
    path = tmp_path / "s.db"
    owner = SQLiteStore(path)
    owner.open()
    os.symlink(path, tmp_path / "sym.db")
    with pytest.raises(StoreInUseError, match=f"in use by process {os.getpid()}"):
        SQLiteStore(tmp_path / "sym.db").open()
    # there is no lock file to delete: only SQLite's own files sit beside the database
    assert set(os.listdir(tmp_path)) <= {"s.db", "s.db-wal", "s.db-shm", "sym.db"}
    # readers and senders keep working, through any path
    send_events(tmp_path / "sym.db", [{"name": "go", "data": {"i": 1}}])
    with StoreReader(tmp_path / "sym.db") as reader:
        assert reader.inbox_size() == 1
    # a hard link is the same file too; SQLite would look for its WAL beside the other
    # name, so no one may use either name while both exist
    os.link(path, tmp_path / "hard.db")
    for attempt in (lambda: SQLiteStore(tmp_path / "hard.db").open(),
                    lambda: send_events(tmp_path / "hard.db", [{"name": "go"}]),
                    lambda: StoreReader(tmp_path / "hard.db")):
        with pytest.raises(StoreError, match="hard.db: the file has 2 hard links"):
            attempt()
    os.remove(tmp_path / "hard.db")
    owner.close()
    SQLiteStore(tmp_path / "sym.db").open()  # free again


def test_a_second_process_is_refused_through_a_symlink_naming_the_holder(tmp_path) -> None:
    path = tmp_path / "s.db"
    owner = SQLiteStore(path)
    owner.open()
    os.symlink(path, tmp_path / "sym.db")
    code = textwrap.dedent(f"""
        from inngest_do.storage.sqlite import SQLiteStore, StoreInUseError
        try:
            SQLiteStore({str(tmp_path / 'sym.db')!r}).open()
        except StoreInUseError as err:
            print(err.pid)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60, check=True, cwd=Path(__file__).parent.parent)
    assert out.stdout.strip() == str(os.getpid())
    owner.close()


# bad files -----------------------------------------------------------------------------------
def _stored(path: Path) -> None:
    sim = Simulation(_app(), store=str(path))
    sim.send(inngest.Event(name="nap"))
    sim.engine.store.close()


def _files(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir())}


def test_a_read_only_file_is_refused_by_every_writer_and_still_read(tmp_path, capsys) -> None:
    path = tmp_path / "s.db"
    _stored(path)
    os.chmod(path, 0o444)
    before = _files(tmp_path)
    for attempt in (lambda: SQLiteStore(path).open(),
                    lambda: send_events(path, [{"name": "go"}]),
                    lambda: Simulation(_app(), store=str(path))):
        with pytest.raises(StoreError, match=r"s.db: the file is read-only \(mode 0444\)"):
            attempt()
    assert _files(tmp_path) == before
    app = tmp_path.parent / f"{tmp_path.name}_app.py"
    app.write_text("import inngest_do as inngest\nclient = inngest.Inngest(app_id='x')\n")
    for argv in (["send", "go", "{}"], ["run", str(app)]):
        assert cli.main(["--store", str(path), *argv]) == 2
        err = capsys.readouterr().err.splitlines()
        assert len(err) == 1 and "read-only" in err[0], err
    assert cli.main(["--store", str(path), "runs"]) == 0  # reading it is fine
    assert _files(tmp_path) == before


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write into a read-only directory")
def test_a_read_only_directory_is_refused_before_anything_is_acknowledged(tmp_path) -> None:
    directory = tmp_path / "d"
    directory.mkdir(mode=0o555)
    try:
        for attempt in (lambda: send_events(directory / "s.db", [{"name": "x"}]),
                        lambda: SQLiteStore(directory / "s.db").open()):
            with pytest.raises(StoreError, match="d is read-only"):
                attempt()
        assert os.listdir(directory) == []
    finally:
        os.chmod(directory, 0o755)


def test_a_read_only_filesystem_is_refused(tmp_path) -> None:
    mnt = tmp_path / "ro"
    mnt.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(mnt)],
                             capture_output=True, check=False, timeout=30)
    if mounted.returncode != 0:
        pytest.skip("cannot mount a read-only filesystem here")
    try:
        for attempt in (lambda: SQLiteStore(mnt / "s.db").open(),
                        lambda: send_events(mnt / "s.db", [{"name": "x"}])):
            with pytest.raises(StoreError, match="on a read-only filesystem"):
                attempt()
    finally:
        subprocess.run(["umount", str(mnt)], check=False, timeout=30)


def test_a_damaged_record_is_refused_at_open_naming_the_file_and_row(tmp_path, capsys) -> None:
    path = tmp_path / "s.db"
    _stored(path)
    conn = sqlite3.connect(path)
    conn.execute("UPDATE runs SET record = '{\"id\": \"x\", \"fn_'")
    conn.commit()
    conn.close()
    with pytest.raises(StoreFormatError, match=r"s.db: damaged record in table runs \(row 1\)"):
        Simulation(_app(), store=str(path))
    assert cli.main(["--store", str(path), "runs"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and "damaged record in table runs" in err[0], err


# group commit ----------------------------------------------------------------------------------
def test_a_worker_on_a_full_store_shares_commits_between_concurrent_runs(tmp_path) -> None:
    import asyncio

    client = inngest.Inngest(app_id="group")

    @client.create_function(fn_id="f", trigger=inngest.TriggerEvent(event="go"))
    async def f(ctx: inngest.Context) -> int:
        total = 0
        for i in range(5):
            total += await ctx.step.run("s", lambda i=i: i)
        return total

    store = SQLiteStore(tmp_path / "s.db", synchronous="FULL")
    commits = []
    real = store.commit

    def counting() -> None:
        commits.append(store.in_transaction)
        real()

    store.commit = counting  # type: ignore[method-assign]

    async def main() -> None:
        async with inngest.Worker(client, store=store, max_concurrency=20):
            await client.send([inngest.Event(name="go") for _ in range(20)])
            for _ in range(2000):
                if len(client.runs(status="Completed")) == 20:
                    break
                await asyncio.sleep(0.005)

    asyncio.run(main())
    assert [r.output for r in client.runs()] == [10] * 20
    # 100 steps and 40 slice starts/ends, each recorded before its run went on, in a
    # handful of shared commits (one fsync each)
    assert sum(commits) < 40, sum(commits)
    assert not client.engine.group_commit  # off again once the worker stopped


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
def test_prune_goes_in_bounded_batches_oldest_first(tmp_path, kind) -> None:
    from inngest_do.storage import MemoryStore

    store = MemoryStore() if kind == "memory" else SQLiteStore(tmp_path / "s.db")
    store.open()
    for i in range(10):
        store.save_run({"id": f"r{i}", "fn_id": "f", "status": "Completed", "created_ms": i,
                        "ended_ms": i})
        store.save_memo(f"r{i}", "s", ["run", True, i])
    store.save_run({"id": "live", "fn_id": "f", "status": "Running", "created_ms": 0,
                    "ended_ms": None})
    store.commit()
    assert store.prune(5, limit=3) == 3
    assert store.prune(5, limit=3) == 2
    assert store.prune(5, limit=3) == 0
    assert [r["id"] for r in store.load_runs()] == ["r5", "r6", "r7", "r8", "r9", "live"]
    assert store.load_run("r1") is None and store.load_run("r5")["memos"] == {
        "s": ["run", True, 5]}
    store.close()
