"""Run under LD_PRELOAD=faultshim.so by tests/test_store_faults.py (not a test module).

For N = 1, 2, ... it forks a child that arms the shim to fail the Nth write (or fsync) under
a fresh directory and runs a workload on a SQLite store there, telling the parent over a
pipe which commits were acknowledged and which failed (with the StoreError's message). In
the ``die`` variant the child exits at once after the first failure, leaving the files as a
killed process would; in the ``continue`` variant it goes on once the fault is gone (the
disk has room again) and closes the store. The parent, which never opened the file, then
opens it with the faults off and checks that exactly the acknowledged commits are there.
It stops at the first N the workload never reaches, and prints one JSON summary line.

usage: driver.py WORKLOAD MODE ERRNO SYNCHRONOUS VARIANT
"""

from __future__ import annotations

import ctypes
import errno as errno_mod
import json
import os
import shutil
import sys
import tempfile

import inngest_do as inngest
from inngest_do.storage import StoreError
from inngest_do.storage.sqlite import SQLiteStore
from inngest_do.testing import Simulation

K = 4  # commits (or events) per workload
MODES = {"write": 1, "short": 2, "fsync": 3}


def _shim() -> ctypes.CDLL:
    lib = ctypes.CDLL(None)
    lib.faultshim_arm.argtypes = [ctypes.c_char_p, ctypes.c_int, ctypes.c_long, ctypes.c_int]
    lib.faultshim_fired.restype = ctypes.c_long
    return lib


class Child:
    def __init__(self, fd: int, variant: str, shim: ctypes.CDLL) -> None:
        self.fd, self.variant, self.shim = fd, variant, shim

    def say(self, *parts: object) -> None:
        os.write(self.fd, (json.dumps(parts) + "\n").encode())

    def ack(self, i: int) -> None:
        self.say("ack", i)

    def failed(self, where: str, err: StoreError) -> None:
        self.say("fail", where, str(err))
        if self.variant == "die":
            self.finish()
        self.shim.faultshim_disarm()  # room on the disk again

    def finish(self) -> None:
        self.say("fired", self.shim.faultshim_fired())
        os._exit(0)  # no clean-up: the files stay as they are


def store_workload(path: str, sync: str, child: Child) -> None:
    store = SQLiteStore(path, synchronous=sync, check=False)
    try:
        store.open()
    except StoreError as err:
        child.failed("open", err)
        store.open()
    for i in range(K):
        store.save_event(f"e{i}", {"name": "n", "data": {"i": i}}, i, [], True)
        store.save_run({"id": f"r{i}", "fn_id": "f", "status": "Completed", "created_ms": i,
                        "ended_ms": i})
        store.save_memo(f"r{i}", "s", ["run", True, i])
        store.append_history(f"r{i}", (i, f"r{i}", "f", "run.completed", None, None))
        try:
            store.commit()
        except StoreError as err:
            child.failed(f"commit {i}", err)
            continue
        child.ack(i)
    store.close()


def check_store(path: str, acked: set[int]) -> list[str]:
    store = SQLiteStore(path, check=True)  # quick_check: the file is sound
    store.open()
    try:
        events = {e["id"] for e in store.load_events()}
        runs = {r["id"]: r for r in store.load_runs()}
        problems = []
        if events != {f"e{i}" for i in acked}:
            problems.append(f"events {sorted(events)} != acknowledged {sorted(acked)}")
        if set(runs) != {f"r{i}" for i in acked}:
            problems.append(f"runs {sorted(runs)} != acknowledged {sorted(acked)}")
        for run_id, rec in runs.items():
            if list(rec["memos"]) != ["s"] or len(rec["history"]) != 1:
                problems.append(f"run {run_id}: memos/history {rec['memos']} {rec['history']}")
        return problems
    finally:
        store.close()


def _client() -> inngest.Inngest:
    client = inngest.Inngest(app_id="faults")

    @client.create_function(fn_id="f", trigger=inngest.TriggerEvent(event="go"), retries=0)
    async def f(ctx: inngest.Context) -> int:
        a = await ctx.step.run("a", lambda: ctx.event.data["i"])
        b = await ctx.step.run("b", lambda: a + 1)
        return a + b

    return client


def engine_workload(path: str, sync: str, child: Child) -> None:
    def simulation() -> Simulation:
        sim = Simulation(_client(), seed=1, store=SQLiteStore(path, synchronous=sync,
                                                              check=False))
        sim.engine.auto_drain = False  # sends and slices apart: each send's ack is exact
        return sim

    try:
        sim = simulation()
    except StoreError as err:
        child.failed("open", err)
        sim = simulation()
    for i in range(K):
        try:
            sim.engine.accept([inngest.Event(name="go", data={"i": i})])
        except StoreError as err:
            child.failed(f"send {i}", err)
            continue
        child.ack(i)
        if i % 2 == 1:
            try:
                sim.engine.drain()
            except StoreError as err:
                child.failed(f"drain after {i}", err)
    try:
        sim.run_until_idle()
    except StoreError as err:
        child.failed("drain", err)
        sim.run_until_idle()
    sim.engine.store.close()


def check_engine(path: str, acked: set[int]) -> list[str]:
    sim = Simulation(_client(), seed=2, store=SQLiteStore(path, check=True))
    sim.run_until_idle()  # what was acknowledged and not finished goes on
    problems = []
    sent = sorted(e.data["i"] for e in sim.events("go"))
    if sent != sorted(acked):
        problems.append(f"events {sent} != acknowledged {sorted(acked)}")
    runs = sim.runs()
    got = sorted(r.event.data["i"] for r in runs)
    if got != sorted(acked):
        problems.append(f"runs for {got} != acknowledged {sorted(acked)}")
    for r in runs:
        i = r.event.data["i"]
        if r.status != "Completed" or r.output != 2 * i + 1:
            problems.append(f"run for {i}: {r.status} {r.output} {r.error}")
    sim.engine.store.close()
    return problems


def main() -> None:
    workload, mode, err_name, sync, variant = sys.argv[1:6]
    shim = _shim()
    run, check = {"store": (store_workload, check_store),
                  "engine": (engine_workload, check_engine)}[workload]
    code = getattr(errno_mod, err_name)
    summary: dict = {"faults": 0, "problems": [], "messages": set()}
    n = 0
    while n < 5000:
        n += 1
        # on tmpfs when there is one: the faults are the shim's, and real fsyncs (one per
        # commit with synchronous=FULL, for hundreds of children) would only cost time
        tmp = tempfile.mkdtemp(prefix="faults-", dir="/dev/shm" if os.path.isdir(
            "/dev/shm") else None)
        path = os.path.join(tmp, "s.db")
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(read)
            child = Child(write, variant, shim)
            shim.faultshim_arm(tmp.encode() + b"/", MODES[mode], n, code)
            try:
                run(path, sync, child)
            except BaseException as err:  # noqa: BLE001 - reported to the parent
                child.say("crash", f"{type(err).__name__}: {err}")
            child.finish()
        os.close(write)
        with os.fdopen(read) as f:
            lines = [json.loads(line) for line in f]
        os.waitpid(pid, 0)
        acked = {line[1] for line in lines if line[0] == "ack"}
        fails = [line for line in lines if line[0] == "fail"]
        crashes = [line for line in lines if line[0] == "crash"]
        fired = next((line[1] for line in lines if line[0] == "fired"), 0)
        for c in crashes:
            summary["problems"].append(f"N={n}: child crashed: {c[1]}")
        if fired == 0:
            shutil.rmtree(tmp)
            break
        summary["faults"] += 1
        for f_ in fails:
            summary["messages"].add(f_[2].replace(tmp, "DIR"))
        if not fails:
            # a fault SQLite absorbed (it retried, or it hit a file it does not need)
            summary.setdefault("absorbed", 0)
            summary["absorbed"] = summary.get("absorbed", 0) + 1
        try:
            for p in check(path, acked):
                summary["problems"].append(f"N={n} ({fails[:1]}): {p}")
        except Exception as err:  # noqa: BLE001 - the file must open
            summary["problems"].append(f"N={n}: reopening failed: {type(err).__name__}: {err}")
        shutil.rmtree(tmp)
    summary["n"] = n
    summary["messages"] = sorted(summary["messages"])
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
