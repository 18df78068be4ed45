"""The Worker on the real clock: runs start when events are sent, sleeps fire on the wall,
step bodies of different runs overlap (up to a cap), queries read live state, a stop is
graceful, and a new worker resumes what the store kept.

Timing bounds are generous (seconds, not milliseconds): these tests must not flake on a
loaded CI machine.
"""

from __future__ import annotations

import asyncio
import datetime
import threading
import time
import typing

import pytest

import inngest_do as inngest
from inngest_do.storage.sqlite import send_events
from inngest_do.testing import Simulation


def arun(coro: typing.Coroutine) -> typing.Any:
    return asyncio.run(asyncio.wait_for(coro, 60))


async def until(predicate: typing.Callable[[], bool], timeout: float = 15.0) -> float:
    """Wait until ``predicate()`` holds; returns the seconds it took."""
    started = time.monotonic()
    while not predicate():
        if time.monotonic() - started > timeout:
            raise AssertionError(f"not true after {timeout} s")
        await asyncio.sleep(0.01)
    return time.monotonic() - started


def finished(client: inngest.Inngest, n: int = 1) -> typing.Callable[[], bool]:
    def check() -> bool:
        runs = client.runs()
        return len(runs) >= n and all(r.status.is_final for r in runs)

    return check


def test_a_one_second_sleep_completes_after_about_a_second() -> None:
    client = inngest.Inngest(app_id="w")

    @client.create_function(fn_id="nap", trigger=inngest.TriggerEvent(event="w/nap"))
    async def nap(ctx: inngest.Context) -> str:
        before = await ctx.step.run("before", lambda: "ok")
        await ctx.step.sleep("one-second", datetime.timedelta(seconds=1))
        return before

    async def main() -> None:
        async with inngest.Worker(client):
            started = time.monotonic()
            await client.send(inngest.Event(name="w/nap"))
            await until(lambda: client.runs()[0].status == "Sleeping", timeout=5)
            took = await until(finished(client))
            total = time.monotonic() - started
        run = client.runs()[0]
        assert run.status == "Completed" and run.output == "ok"
        assert 0.95 <= total < 10, total
        assert took > 0.5
        slept = run.ended_at - run.started_at
        assert datetime.timedelta(seconds=1) <= slept < datetime.timedelta(seconds=10)

    arun(main())


def test_send_starts_runs_at_once_and_queries_read_live_state() -> None:
    client = inngest.Inngest(app_id="w")
    gate = asyncio.Event()

    @client.create_function(fn_id="gated", trigger=inngest.TriggerEvent(event="w/go"))
    async def gated(ctx: inngest.Context) -> int:
        async def body() -> int:
            await gate.wait()
            return ctx.event.data["n"]

        return await ctx.step.run("wait-for-gate", body)

    async def main() -> None:
        async with inngest.Worker(client):
            (event_id,) = await client.send(inngest.Event(name="w/go", data={"n": 5}))
            assert event_id
            await until(lambda: client.runs() and client.runs()[0].status == "Running",
                        timeout=5)
            run_id = client.runs()[0].id
            assert client.get_run(run_id).status == "Running"
            gate.set()
            await until(finished(client))
            assert client.get_run(run_id).output == 5

    arun(main())


def test_step_bodies_of_different_runs_overlap_up_to_the_cap() -> None:
    client = inngest.Inngest(app_id="w")
    live = [0]
    peak = [0]

    @client.create_function(fn_id="io", trigger=inngest.TriggerEvent(event="w/io"))
    async def io(ctx: inngest.Context) -> None:
        async def body() -> None:
            live[0] += 1
            peak[0] = max(peak[0], live[0])
            await asyncio.sleep(0.2)
            live[0] -= 1

        await ctx.step.run("a", body)
        await ctx.step.run("b", body)

    async def burst(max_concurrency: int) -> float:
        live[0] = peak[0] = 0
        client._engine = None  # a fresh memory store each time
        async with inngest.Worker(client, max_concurrency=max_concurrency):
            await client.send([inngest.Event(name="w/io") for _ in range(12)])
            return await until(finished(client, 12), timeout=30)

    took = arun(burst(100))
    assert peak[0] == 12  # all 12 runs were in a step body at once
    assert took < 12 * 2 * 0.2 / 2, took  # far from sequential (4.8 s)
    arun(burst(3))
    assert peak[0] == 3


def test_events_sent_while_slices_are_in_flight_start_promptly() -> None:
    client = inngest.Inngest(app_id="w")

    @client.create_function(fn_id="slow", trigger=inngest.TriggerEvent(event="w/slow"))
    async def slow(ctx: inngest.Context) -> None:
        await ctx.step.run("long", lambda: asyncio.sleep(2))

    @client.create_function(fn_id="quick", trigger=inngest.TriggerEvent(event="w/quick"))
    async def quick(ctx: inngest.Context) -> int:
        return await ctx.step.run("one", lambda: 1)

    async def main() -> None:
        async with inngest.Worker(client):
            await client.send(inngest.Event(name="w/slow"))
            await until(lambda: client.runs()[0].status == "Running", timeout=5)
            await client.send(inngest.Event(name="w/quick"))
            took = await until(lambda: client.runs("quick")
                               and client.runs("quick")[0].status == "Completed")
            assert took < 2.0, took  # not held until the slow step ends
            assert client.runs("slow")[0].status == "Running"

    arun(main())


def test_sync_handlers_wait_for_event_and_send_sync_from_another_thread() -> None:
    client = inngest.Inngest(app_id="w")

    @client.create_function(fn_id="waiter", trigger=inngest.TriggerEvent(event="w/start"))
    def waiter(ctx: inngest.ContextSync) -> dict:
        first = ctx.step.run("first", lambda: ctx.event.data["k"])
        got = ctx.step.wait_for_event("approval", event="w/approve",
                                      timeout=datetime.timedelta(minutes=5),
                                      if_exp="event.data.k == async.data.k")
        return {"first": first, "approved_by": got.data["who"] if got else None}

    async def main() -> None:
        async with inngest.Worker(client):
            await client.send(inngest.Event(name="w/start", data={"k": 1}))
            await until(lambda: client.runs()[0].status == "Waiting", timeout=5)
            # a sync web endpoint would call send_sync from a thread pool
            thread = threading.Thread(target=client.send_sync, args=(
                inngest.Event(name="w/approve", data={"k": 1, "who": "ada"}),))
            thread.start()
            await until(finished(client))
            thread.join()
        assert client.runs()[0].output == {"first": 1, "approved_by": "ada"}

    arun(main())


def test_a_stop_lets_steps_finish_and_a_new_worker_resumes_from_the_store(tmp_path) -> None:
    path = str(tmp_path / "w.db")
    calls: list[str] = []

    def make_client() -> inngest.Inngest:
        client = inngest.Inngest(app_id="w", store=path)

        @client.create_function(fn_id="steps", trigger=inngest.TriggerEvent(event="w/s"))
        async def steps(ctx: inngest.Context) -> list:
            async def body(name: str, seconds: float) -> str:
                calls.append(f"{name}:start")
                await asyncio.sleep(seconds)
                calls.append(f"{name}:end")
                return name

            a = await ctx.step.run("a", body, "a", 0.3)
            await ctx.step.sleep("nap", datetime.timedelta(seconds=1))
            b = await ctx.step.run("b", body, "b", 1.0)
            return [a, b]

        return client

    async def first() -> None:
        client = make_client()
        worker = inngest.Worker(client, stop_timeout=10)
        await worker.start()
        await client.send(inngest.Event(name="w/s"))
        await until(lambda: calls == ["a:start"], timeout=5)
        await worker.stop()  # "a" is in flight: it finishes and is recorded
        assert calls == ["a:start", "a:end"]
        assert client.runs()[0].status == "Sleeping"

        worker = inngest.Worker(client, stop_timeout=0.2)
        await worker.start()  # the same engine goes on: the sleep fires, "b" starts
        await until(lambda: "b:start" in calls, timeout=10)
        await worker.stop()  # "b" cannot finish in 0.2 s: cancelled, nothing recorded
        assert calls == ["a:start", "a:end", "b:start"]

    async def second() -> None:
        client = make_client()  # a new process, as far as the engine can tell
        run = client.runs()[0]
        assert not run.status.is_final and run.steps == ["a", "nap"]
        async with inngest.Worker(client):
            await until(finished(client), timeout=20)
        assert client.runs()[0].output == ["a", "b"]

    arun(first())
    arun(second())
    assert calls == ["a:start", "a:end", "b:start", "b:start", "b:end"]  # "a" ran once


def test_an_overdue_sleep_fires_at_once_after_a_restart(tmp_path) -> None:
    path = str(tmp_path / "w.db")

    def make_client() -> inngest.Inngest:
        client = inngest.Inngest(app_id="w", store=path)

        @client.create_function(fn_id="nap", trigger=inngest.TriggerEvent(event="w/nap"))
        async def nap(ctx: inngest.Context) -> str:
            await ctx.step.sleep("short", datetime.timedelta(milliseconds=300))
            return "woke"

        return client

    async def first() -> None:
        client = make_client()
        async with inngest.Worker(client):
            await client.send(inngest.Event(name="w/nap"))
            await until(lambda: client.runs()[0].status == "Sleeping", timeout=5)

    async def second() -> None:
        client = make_client()
        assert client.runs()[0].status == "Sleeping"
        async with inngest.Worker(client):
            took = await until(finished(client))
        assert took < 2.0 and client.runs()[0].output == "woke"

    arun(first())
    time.sleep(0.5)  # the sleep comes due while no worker runs
    arun(second())


def test_events_sent_by_another_process_through_the_inbox_are_run(tmp_path) -> None:
    path = str(tmp_path / "w.db")
    client = inngest.Inngest(app_id="w")

    @client.create_function(fn_id="echo", trigger=inngest.TriggerEvent(event="w/echo"))
    async def echo(ctx: inngest.Context) -> dict:
        return dict(ctx.event.data)

    payload = {"name": "w/echo", "data": {"x": 1}, "id": "", "ts": 0}
    send_events(path, [payload])  # before any worker: it waits in the inbox

    async def main() -> None:
        async with inngest.Worker(client, store=path, poll_interval=0.02):
            await until(finished(client))
            send_events(path, [dict(payload, data={"x": 2})])  # while the worker runs
            await until(finished(client, 2))
        assert sorted(r.output["x"] for r in client.runs()) == [1, 2]

    arun(main())
    client._engine = None
    async def again() -> None:  # accepted once: a restart does not take them again
        async with inngest.Worker(client, store=path):
            await asyncio.sleep(0.2)
            assert len(client.runs()) == 2

    arun(again())


def test_a_worker_replaces_a_simulations_virtual_clock() -> None:
    client = inngest.Inngest(app_id="w")

    @client.create_function(fn_id="f", trigger=inngest.TriggerEvent(event="w/f"))
    async def f(ctx: inngest.Context) -> int:
        return 1

    Simulation(client, seed=1).send(inngest.Event(name="w/f"))
    assert client.engine.clock.is_virtual

    async def main() -> None:
        async with inngest.Worker(client) as worker:
            assert not worker.engine.clock.is_virtual and client.engine is worker.engine
            await client.send(inngest.Event(name="w/f"))
            await until(finished(client))

    arun(main())


def test_arguments_are_checked() -> None:
    client = inngest.Inngest(app_id="w")
    with pytest.raises(ValueError, match="max_concurrency"):
        inngest.Worker(client, max_concurrency=0)
    with pytest.raises(ValueError, match="poll_interval"):
        inngest.Worker(client, poll_interval=0)

    async def twice() -> None:
        async with inngest.Worker(client) as worker:
            with pytest.raises(RuntimeError, match="already started"):
                await worker.start()

    arun(twice())


def test_the_fastapi_example_lifespan_runs_the_worker() -> None:
    """examples/fastapi_app.py's lifespan (serve() composes the worker into it), driven as an
    ASGI server would."""
    import importlib.util
    from pathlib import Path

    pytest.importorskip("fastapi")
    path = Path(__file__).resolve().parent.parent / "examples" / "fastapi_app.py"
    spec = importlib.util.spec_from_file_location("fastapi_app_example", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    client, app = module.inngest_client, module.app

    async def main() -> None:
        async with app.router.lifespan_context(app):
            await client.send(inngest.Event(name="shop/order.created",
                                            data={"order_id": 1, "amount": 30}))
            await until(finished(client), timeout=30)
        assert client.runs()[0].output == {"charged": 30}
        assert client.engine.on_work is None  # the worker stopped with the app

    arun(main())


# ------------------------------------- engine behaviour the worker relies on (once gaps, fixed)
def test_accept_wakes_the_worker_even_while_a_slice_executes() -> None:
    client = inngest.Inngest(app_id="w")

    @client.create_function(fn_id="f", trigger=inngest.TriggerEvent(event="w/f"))
    async def f(ctx: inngest.Context) -> None:
        return None

    engine = client.engine
    woken: list[int] = []
    engine.on_work = lambda: woken.append(1)
    engine.executing.add("some-run")  # a slice of another run awaits I/O
    client.send_sync(inngest.Event(name="w/f"))
    assert woken


def test_the_stored_status_of_a_run_executing_after_a_sleep_is_running(tmp_path) -> None:
    from inngest_do.storage.sqlite import StoreReader

    path = str(tmp_path / "w.db")
    client = inngest.Inngest(app_id="w", store=path)
    gate = asyncio.Event()

    @client.create_function(fn_id="f", trigger=inngest.TriggerEvent(event="w/f"))
    async def f(ctx: inngest.Context) -> None:
        await ctx.step.sleep("nap", datetime.timedelta(milliseconds=100))
        await ctx.step.run("after", gate.wait)

    async def main() -> str:
        async with inngest.Worker(client) as worker:
            await client.send(inngest.Event(name="w/f"))
            await until(lambda: client.runs()[0].steps == ["nap"], timeout=10)
            await asyncio.sleep(0.1)
            worker.engine.store.flush()
            with StoreReader(path, check=False) as reader:
                status = reader.runs()[0]["status"]
            gate.set()
            return status

    assert arun(main()) == "Running"


def test_sync_handlers_run_on_a_thread_pool_and_their_bodies_overlap() -> None:
    import time

    client = inngest.Inngest(app_id="w")
    threads: set[str] = set()
    inside = [0, 0]  # bodies running now, most at once
    guard = threading.Lock()
    all_in = threading.Barrier(2, timeout=10)  # two bodies must be inside at the same time

    @client.create_function(fn_id="slow", trigger=inngest.TriggerEvent(event="w/slow"))
    def slow(ctx: inngest.ContextSync) -> str:
        def body() -> str:
            threads.add(threading.current_thread().name)
            with guard:
                inside[0] += 1
                inside[1] = max(inside)
            all_in.wait()  # a blocking call; deadlocks (times out) if bodies cannot overlap
            time.sleep(0.05)
            with guard:
                inside[0] -= 1
            return "done"

        return ctx.step.run("block", body)

    async def main() -> None:
        async with inngest.Worker(client, sync_workers=2):
            await client.send([inngest.Event(name="w/slow") for _ in range(2)])
            await until(lambda: len(client.runs()) == 2
                        and all(r.status == "Completed" for r in client.runs()), timeout=15)

    arun(main())
    assert [r.output for r in client.runs()] == ["done"] * 2
    assert all(name.startswith("inngest_do-sync") for name in threads)
    assert inside[1] == 2


def test_sync_workers_must_be_positive() -> None:
    with pytest.raises(ValueError, match="sync_workers"):
        inngest.Worker(inngest.Inngest(app_id="w"), sync_workers=0)
