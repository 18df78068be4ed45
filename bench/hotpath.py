"""Workloads of issue 12 (the engine's hot path), as plain functions returning measurements.

Shared by ``bench/test_hotpath_bench.py`` (pytest-benchmark; its app builders also by
``test_engine_bench.py``, ``test_store_bench.py`` and ``test_dbos_bench.py``) and by
subprocesses that need a fresh interpreter: the pure-Python twin (``INNGEST_DO_PURE_PYTHON=1``) and peak RSS. Run as a
script it prints one JSON object, so another process can compare kernels side by side:

    python bench/hotpath.py dispatch 2000        # {"kernel": ..., "seconds": ..., ...}
    python bench/hotpath.py cron_year 365        # days of a once-a-minute cron, peak RSS
    python bench/hotpath.py store_calls 5000 5   # the memory store alone (us/run: 1e6/per_s)
    python bench/hotpath.py bytes_split_parked 2000  # bytes/run: trace, store, engine

Every workload builds its client and Simulation/Worker outside the timed part.
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import pathlib
import resource
import sys
import time
import tracemalloc
import typing

# Run as a script, measure the checkout this file is in (not whatever copy of inngest_do an
# editable install points at), or the one INNGEST_DO_BENCH_ROOT names (before/after figures
# from one run: point it at a checkout of the older commit, its kernel built in place).
sys.path.insert(0, os.environ.get("INNGEST_DO_BENCH_ROOT")
                or str(pathlib.Path(__file__).resolve().parent.parent))

import inngest_do as inngest  # after the path above
from inngest_do.testing import Simulation

MINUTE_MS = 60_000


def dispatch_app(n: int, sync: bool = False) -> tuple[inngest.Inngest, list[inngest.Event]]:
    """A function of one trivial step and ``n`` events, each of which starts one run.

    ``sync`` makes the function a sync handler (``ContextSync``); the issue-12 workloads use
    the async one (the default).
    """
    client = inngest.Inngest(app_id="bench")
    if sync:
        @client.create_function(fn_id="one", trigger=inngest.TriggerEvent(event="go"))
        def one_sync(ctx: inngest.ContextSync) -> int:
            return ctx.step.run("only", lambda: 1)
    else:
        @client.create_function(fn_id="one", trigger=inngest.TriggerEvent(event="go"))
        async def one(ctx: inngest.Context) -> int:
            return await ctx.step.run("only", lambda: 1)

    return client, [inngest.Event(name="go", data={"i": i}) for i in range(n)]


def sim_dispatch(n: int) -> float:
    """Seconds for ``n`` ``sim.send`` calls, each run to completion (one trivial step)."""
    client, events = dispatch_app(n)
    sim = Simulation(client)
    gc.collect()
    send = sim.send
    t0 = time.perf_counter()
    for event in events:
        send(event)
    elapsed = time.perf_counter() - t0
    runs = sim.runs()
    assert len(runs) == n and all(r.status == "Completed" for r in runs), "dispatch failed"
    return elapsed


def worker_dispatch(n: int) -> float:
    """Seconds from the first ``await client.send`` until all ``n`` runs completed, on a
    Worker with the memory store (the wall clock; the loop polls for completion every ms)."""
    client, events = dispatch_app(n)

    async def main() -> float:
        async with inngest.Worker(client, store=None) as worker:
            engine = worker.engine
            gc.collect()
            t0 = time.perf_counter()
            for event in events:
                await client.send(event)
            # Finished runs leave engine.runs (the store keeps them), so wait for it to hold
            # no active run; every run is created when its event is accepted.
            while any(not r.status.is_final for r in engine.runs.values()):
                await asyncio.sleep(0.001)
            elapsed = time.perf_counter() - t0
            runs = client.runs()
            assert len(runs) == n and all(r.status == "Completed" for r in runs), "dispatch failed"
            return elapsed

    return asyncio.run(main())


def sleeps_app(n: int) -> Simulation:
    client = inngest.Inngest(app_id="bench")

    @client.create_function(fn_id="sleeper", trigger=inngest.TriggerEvent(event="go"))
    async def sleeper(ctx: inngest.Context) -> int:
        for _ in range(n):
            await ctx.step.sleep("z", 1_000)
        return n

    return Simulation(client)


def sim_sleeps(n: int) -> float:
    """Seconds for one run of ``n`` one-second ``step.sleep``s, start to completion."""
    sim = sleeps_app(n)
    gc.collect()
    t0 = time.perf_counter()
    sim.send(inngest.Event(name="go"))
    sim.run_until_idle(max_iterations=n + 10)
    elapsed = time.perf_counter() - t0
    [run] = sim.runs()
    assert run.status == "Completed" and run.output == n
    return elapsed


def simpy_timeouts(n: int) -> float:
    """Seconds for one SimPy process that yields ``n`` one-second bare timeouts."""
    import simpy

    env = simpy.Environment()

    def proc(env: simpy.Environment) -> typing.Generator[typing.Any, None, None]:
        for _ in range(n):
            yield env.timeout(1)

    env.process(proc(env))
    gc.collect()
    t0 = time.perf_counter()
    env.run()
    elapsed = time.perf_counter() - t0
    assert env.now == n
    return elapsed


def steps_app(n: int, sync: bool = False) -> Simulation:
    """A Simulation whose function runs ``n`` sequential trivial ``step.run``s (ids ``s``,
    ``s:1``, ...) and returns ``n``; ``sync`` as in :func:`dispatch_app`."""
    client = inngest.Inngest(app_id="bench")
    if sync:
        @client.create_function(fn_id="seq", trigger=inngest.TriggerEvent(event="go"))
        def seq_sync(ctx: inngest.ContextSync) -> int:
            total = 0
            for _ in range(n):
                total += ctx.step.run("s", int, 1)
            return total
    else:
        @client.create_function(fn_id="seq", trigger=inngest.TriggerEvent(event="go"))
        async def seq(ctx: inngest.Context) -> int:
            total = 0
            for _ in range(n):
                total += await ctx.step.run("s", int, 1)
            return total

    return Simulation(client)


def indexed_steps_client(n: int) -> inngest.Inngest:
    """A client whose function runs ``n`` sequential ``step.run``s that return their index and
    returns the sum: every step records a different output (the store benchmarks' workload,
    ``bench/test_store_bench.py`` and ``bench/test_dbos_bench.py``)."""
    client = inngest.Inngest(app_id="bench")

    @client.create_function(fn_id="steps", trigger=inngest.TriggerEvent(event="go"))
    async def steps(ctx: inngest.Context) -> int:
        total = 0
        for i in range(n):
            total += await ctx.step.run("step", lambda i=i: i)
        return total

    return client


def sim_steps(n: int, sync: bool = False) -> float:
    """Seconds for one run of ``n`` sequential trivial ``step.run``s (``sync``: a sync
    handler, the ``steps_sync`` workload)."""
    sim = steps_app(n, sync)
    gc.collect()
    t0 = time.perf_counter()
    sim.send(inngest.Event(name="go"))
    elapsed = time.perf_counter() - t0
    [run] = sim.runs()
    assert run.status == "Completed" and run.output == n
    return elapsed


def cron_app() -> Simulation:
    client = inngest.Inngest(app_id="bench")

    @client.create_function(fn_id="tick", trigger=inngest.TriggerCron(cron="* * * * *"))
    async def tick(ctx: inngest.Context) -> None:
        return None

    return Simulation(client)


def cron_days(days: int) -> float:
    """Seconds to advance a Simulation ``days`` days with a once-a-minute cron."""
    sim = cron_app()
    gc.collect()
    t0 = time.perf_counter()
    sim.advance(days * 24 * 60 * MINUTE_MS)
    elapsed = time.perf_counter() - t0
    # Counted from the trace: sim.runs() would unpack every run at once (a year: 525,600
    # Run objects, ~4 GB), and that, not the simulation, would be the peak RSS reported.
    done = sum(1 for entry in sim.engine.trace if entry.kind == "run.completed")
    assert done == days * 24 * 60, f"{done} cron runs completed in {days} days"
    return elapsed


def _one_step_app(parked: bool) -> inngest.Inngest:
    """One step returning 1 and, if ``parked``, a one-hour sleep after it (the memory
    workloads' function)."""
    client = inngest.Inngest(app_id="bench")

    @client.create_function(fn_id="one", trigger=inngest.TriggerEvent(event="go"))
    async def one(ctx: inngest.Context) -> int:
        out = await ctx.step.run("only", lambda: 1)
        if parked:
            await ctx.step.sleep("nap", 3_600_000)
        return out

    return client


def bytes_per_run(n: int, parked: bool) -> float:
    """Bytes still allocated (tracemalloc) per run after ``n`` runs of one step finished, or
    (``parked``) after each ran one step and parked on a one-hour sleep. Includes the event,
    the run, its memo, history and trace entries and the memory store's copies."""
    sim = Simulation(_one_step_app(parked))
    events = [inngest.Event(name="go", data={"i": i}) for i in range(n)]
    sim.send(inngest.Event(name="go", data={"i": -1}))  # warm caches outside the count
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for event in events:
        sim.send(event)
    gc.collect()
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    want = "Sleeping" if parked else "Completed"
    assert sum(1 for r in sim.runs() if r.status == want) == n + 1
    return (after - before) / n


def bytes_split(n: int, parked: bool) -> dict[str, float]:
    """:func:`bytes_per_run` taken apart: what the Simulation's debugging trace holds, what
    only the memory store holds (what emptying it frees, the trace gone first) and the rest
    (the engine's: for a parked run its coroutine, execution and context)."""
    from inngest_do.storage import MemoryStore

    sim = Simulation(_one_step_app(parked))
    events = [inngest.Event(name="go", data={"i": i}) for i in range(n)]
    sim.send(inngest.Event(name="go", data={"i": -1}))  # warm caches outside the count
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for event in events:
            sim.send(event)
        gc.collect()
        total = tracemalloc.get_traced_memory()[0]
        sim.engine.trace.clear()
        gc.collect()
        no_trace = tracemalloc.get_traced_memory()[0]
        store = sim.engine.store
        assert isinstance(store, MemoryStore)
        MemoryStore.__init__(store)  # forget everything it holds
        gc.collect()
        no_store = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    return {"bytes_per_run": (total - before) / n, "trace": (total - no_trace) / n,
            "store": (no_trace - no_store) / n, "engine": (no_store - before) / n}


def store_calls(n: int) -> float:
    """Seconds the memory store alone takes for ``n`` one-step runs: the calls the engine made
    to it (recorded from a Simulation) replayed into a fresh MemoryStore."""
    from inngest_do.storage import MemoryStore

    calls: list[tuple[typing.Callable[..., None], tuple]] = []

    class Recorder(MemoryStore):
        def save_event(self, *args: typing.Any) -> None:
            calls.append((MemoryStore.save_event, args))
            super().save_event(*args)

        def save_run(self, *args: typing.Any) -> None:
            calls.append((MemoryStore.save_run, args))
            super().save_run(*args)

        def save_memo(self, *args: typing.Any) -> None:
            calls.append((MemoryStore.save_memo, args))
            super().save_memo(*args)

        def append_history(self, *args: typing.Any) -> None:
            calls.append((MemoryStore.append_history, args))
            super().append_history(*args)

    sim = Simulation(_one_step_app(False), store=Recorder())
    for i in range(n):
        sim.send(inngest.Event(name="go", data={"i": i}))
    store = MemoryStore()
    gc.collect()
    t0 = time.perf_counter()
    for method, args in calls:
        method(store, *args)
    return time.perf_counter() - t0


def peak_rss_mib() -> float:
    """This process's peak resident set size so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


WORKLOADS: dict[str, typing.Callable[[int], float]] = {
    "dispatch": sim_dispatch,
    "worker_dispatch": worker_dispatch,
    "sleeps": sim_sleeps,
    "steps": sim_steps,
    "steps_sync": lambda n: sim_steps(n, sync=True),
    "cron_days": cron_days,
    "simpy": simpy_timeouts,  # the sleeps' yardstick, in the same kind of process
    "store_calls": store_calls,
}


def main(argv: list[str]) -> None:
    name, n = argv[0], int(argv[1])
    repeat = int(argv[2]) if len(argv) > 2 else 1
    if name == "cron_year":
        name = "cron_days"
    out: dict[str, typing.Any] = {
        "kernel": inngest._core_impl, "workload": name, "n": n,
        "root": str(pathlib.Path(inngest.__file__).resolve().parent.parent)}
    if name in ("bytes_finished", "bytes_parked"):  # repeat is ignored: one count
        out["bytes_per_run"] = round(bytes_per_run(n, parked=name == "bytes_parked"))
    elif name in ("bytes_split_finished", "bytes_split_parked"):
        split = bytes_split(n, parked=name == "bytes_split_parked")
        out.update({key: round(value) for key, value in split.items()})
    else:
        best = min(WORKLOADS[name](n) for _ in range(repeat))
        out.update(seconds=best, per_s=round(n / best), peak_rss_mib=round(peak_rss_mib()))
    print(json.dumps(out))


if __name__ == "__main__":
    main(sys.argv[1:])
