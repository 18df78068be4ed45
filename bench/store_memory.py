"""Memory and restart figures for issue 9 (a script, not a timed test):

    python bench/store_memory.py worker  [N]   # a Worker on SQLite runs N one-step runs:
                                               # RSS after 10% of them and after all
    python bench/store_memory.py restart [N]   # open an engine on a file holding N finished
                                               # runs (made first if missing): time and RSS
    python bench/store_memory.py simulation [N]  # bytes per finished one-step run, memory store

N defaults to 200,000. Files go to $BENCH_DIR (default: a temporary directory).
"""

from __future__ import annotations

import asyncio
import gc
import os
import sys
import tempfile
import time
import tracemalloc

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import inngest_do as inngest
from inngest_do.testing import Simulation


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def app(store: str | None = None) -> tuple[inngest.Inngest, list[int]]:
    client = inngest.Inngest(app_id="mem", store=store)
    done = [0]

    @client.create_function(fn_id="one", trigger=inngest.TriggerEvent(event="go"))
    async def one(ctx: inngest.Context) -> int:
        out = await ctx.step.run("s", lambda: ctx.event.data["i"])
        done[0] += 1
        return out

    return client, done


def worker(n: int, path: str) -> None:
    client, done = app()

    async def main() -> None:
        marks = {}
        started = time.perf_counter()
        async with inngest.Worker(client, store=path, max_concurrency=100):
            sent = 0
            while done[0] < n:
                if sent - done[0] < 2000 and sent < n:
                    batch = min(500, n - sent)
                    await client.send([inngest.Event(name="go", data={"i": sent + k})
                                       for k in range(batch)])
                    sent += batch
                else:
                    await asyncio.sleep(0.005)
                for mark in (n // 10, n):
                    if mark not in marks and done[0] >= mark:
                        gc.collect()
                        marks[mark] = rss_mb()
                        print(f"  {done[0]:>9,} runs done: RSS {marks[mark]:.1f} MB, "
                              f"{done[0] / (time.perf_counter() - started):,.0f} runs/s",
                              flush=True)
        growth = marks[n] - marks[n // 10]
        print(f"worker, SQLite: RSS growth from {n // 10:,} to {n:,} runs: {growth:.1f} MB "
              f"(engine.runs holds {len(client.engine.runs)})")

    asyncio.run(main())


def restart(n: int, path: str) -> None:
    if not os.path.exists(path):
        print(f"making a file with {n:,} finished runs ...", flush=True)
        worker(n, path)
        os.execv(sys.executable, [sys.executable, __file__, "restart", str(n), path])
    client, _ = app(store=path)
    gc.collect()
    before = rss_mb()
    started = time.perf_counter()
    engine = client.engine  # opens the store and recovers
    took = time.perf_counter() - started
    gc.collect()
    print(f"restart on {os.path.getsize(path) / 2**20:.0f} MB file with "
          f"{len(client.runs()):,} finished runs: {took:.3f} s, RSS {rss_mb():.1f} MB "
          f"(+{rss_mb() - before:.1f} MB for the engine; {len(engine.runs)} runs in memory)")


def simulation(n: int) -> None:
    client, _ = app()
    sim = Simulation(client)
    for i in range(100):
        sim.send(inngest.Event(name="go", data={"i": i}))
    sim.engine.trace.clear()
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for i in range(n):
        sim.send(inngest.Event(name="go", data={"i": i}))
    sim.engine.trace.clear()  # a Simulation's debugging trace, not the store
    gc.collect()
    per_run = (tracemalloc.get_traced_memory()[0] - before) / n
    tracemalloc.stop()
    print(f"simulation, memory store: {per_run:.0f} bytes per finished one-step run "
          f"({n:,} runs)")


if __name__ == "__main__":
    what = sys.argv[1] if len(sys.argv) > 1 else "worker"
    count = int(sys.argv[2]) if len(sys.argv) > 2 else 200_000
    directory = os.environ.get("BENCH_DIR") or tempfile.mkdtemp(prefix="inngest-do-bench-")
    file = sys.argv[3] if len(sys.argv) > 3 else os.path.join(directory, f"runs-{count}.db")
    if what == "worker":
        worker(count, file)
    elif what == "restart":
        restart(count, file)
    else:
        simulation(count)
