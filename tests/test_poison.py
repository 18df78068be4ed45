"""No run can take the worker down: whatever a step body or handler raises (SystemExit,
KeyboardInterrupt, CancelledError, GeneratorExit included) is a failed attempt with the
normal retries, recorded with its type; a signal to the process still stops the worker.

And sync handlers run without the engine lock: two that wait on each other complete, and the
event loop keeps turning meanwhile.
"""

from __future__ import annotations

import asyncio
import signal
import textwrap
import threading

import pytest

import inngest_do as inngest
from inngest_do.testing import Simulation
from tests.helpers import ev, only_run
from tests.test_cli import Worker, inngest_do
from tests.test_worker import arun, finished, until

POISONS: list[type[BaseException]] = [SystemExit, KeyboardInterrupt, asyncio.CancelledError,
                                      GeneratorExit]


def _poison_app(poison: type[BaseException], *, sync: bool, in_step: bool,
                fail_times: int, retries: int) -> tuple[inngest.Inngest, list[int]]:
    """A function that raises ``poison`` ``fail_times`` times (in a step body or in the
    handler's own code), then returns "ok"."""
    client = inngest.Inngest(app_id="p")
    calls = [0]

    def body() -> str:
        calls[0] += 1
        if calls[0] <= fail_times:
            raise poison("poisoned")
        return "ok"

    trigger = inngest.TriggerEvent(event="go")
    if sync:
        @client.create_function(fn_id="f", trigger=trigger, retries=retries)
        def f(ctx: inngest.ContextSync) -> str:
            return ctx.step.run("s", body) if in_step else body()
    else:
        @client.create_function(fn_id="f", trigger=trigger, retries=retries)
        async def f(ctx: inngest.Context) -> str:
            return await ctx.step.run("s", body) if in_step else body()

    return client, calls


@pytest.mark.parametrize("poison", POISONS, ids=lambda p: p.__name__)
@pytest.mark.parametrize("sync", [False, True], ids=["async", "sync"])
@pytest.mark.parametrize("in_step", [True, False], ids=["step", "handler"])
def test_a_poison_exception_is_a_failed_attempt_that_is_retried(
        poison: type[BaseException], sync: bool, in_step: bool) -> None:
    client, calls = _poison_app(poison, sync=sync, in_step=in_step, fail_times=2, retries=3)
    sim = Simulation(client, seed=1)
    sim.send(ev())
    sim.run_until_idle()
    run = only_run(sim)
    assert run.status == "Completed" and run.output == "ok"
    assert calls[0] == 3
    kind = "step.failed" if in_step else "run.retrying"
    failures = [e for e in run.history if e.kind == kind]
    assert [e.detail["type"] for e in failures] == [poison.__name__] * 2  # recorded with its type


@pytest.mark.parametrize("poison", POISONS, ids=lambda p: p.__name__)
@pytest.mark.parametrize("sync", [False, True], ids=["async", "sync"])
@pytest.mark.parametrize("in_step", [True, False], ids=["step", "handler"])
def test_out_of_retries_the_run_fails_naming_the_exception_type(
        poison: type[BaseException], sync: bool, in_step: bool) -> None:
    client, calls = _poison_app(poison, sync=sync, in_step=in_step, fail_times=99, retries=1)
    sim = Simulation(client, seed=1)
    sim.send(ev())
    sim.run_until_idle()
    run = only_run(sim)
    assert run.status == "Failed"
    assert run.error.name == poison.__name__
    assert run.error.message == "poisoned"
    assert calls[0] == 2
    failed = [r for r in sim.runs() if r.fn_id != "p-f"]  # no on_failure: none
    assert failed == []


@pytest.mark.parametrize("sync", [False, True], ids=["async", "sync"])
def test_poison_runs_on_a_worker_fail_and_the_worker_keeps_running(sync: bool) -> None:
    client = inngest.Inngest(app_id="p")
    poisons = {"exit": SystemExit, "interrupt": KeyboardInterrupt,
               "cancel": asyncio.CancelledError, "genexit": GeneratorExit}

    def body(kind: str) -> str:
        if kind in poisons:
            raise poisons[kind](kind)
        return kind

    trigger = inngest.TriggerEvent(event="go")
    if sync:
        @client.create_function(fn_id="f", trigger=trigger, retries=0)
        def f(ctx: inngest.ContextSync) -> str:
            out = ctx.step.run("s", body, ctx.event.data["kind"])
            return body(ctx.event.data.get("then", out))
    else:
        @client.create_function(fn_id="f", trigger=trigger, retries=0)
        async def f(ctx: inngest.Context) -> str:
            out = await ctx.step.run("s", body, ctx.event.data["kind"])
            return body(ctx.event.data.get("then", out))

    async def main() -> None:
        async with inngest.Worker(client) as worker:
            await client.send([ev(kind=k) for k in poisons])
            await client.send([ev(kind="fine", then=k) for k in poisons])  # outside steps
            await until(finished(client, 2 * len(poisons)))
            await client.send(ev(kind="fine"))
            await until(finished(client, 2 * len(poisons) + 1))
            assert worker.running

    arun(main())
    runs = client.runs()
    by_kind = {(r.event.data["kind"], r.event.data.get("then")): r for r in runs}
    for kind, exc in poisons.items():
        for key in ((kind, None), ("fine", kind)):
            run = by_kind[key]
            assert run.status == "Failed", (key, run.status)
            assert run.error.name == exc.__name__
    assert by_kind[("fine", None)].status == "Completed"


def test_a_worker_that_is_stopped_cancels_its_slices_without_failing_them() -> None:
    """The Worker's own cancellation (stop with slices in flight) is not a failed attempt."""
    client = inngest.Inngest(app_id="p")
    entered = asyncio.Event()

    @client.create_function(fn_id="slow", trigger=inngest.TriggerEvent(event="go"))
    async def slow(ctx: inngest.Context) -> str:
        async def body() -> str:
            entered.set()
            await asyncio.sleep(60)
            return "late"

        return await ctx.step.run("s", body)

    async def main() -> None:
        worker = inngest.Worker(client, stop_timeout=0.05)
        await worker.start()
        await client.send(ev())
        await asyncio.wait_for(entered.wait(), 15)
        await worker.stop()

    arun(main())
    (run,) = client.runs()
    assert run.status == "Running"
    assert [e.kind for e in run.history if e.kind.startswith("step.")] == []


def test_sigint_stops_a_worker_whose_runs_raise_keyboard_interrupt(tmp_path) -> None:
    """The process's own SIGINT stops it cleanly even though its step bodies raise
    KeyboardInterrupt (handled as failed attempts, not confused with the signal)."""
    app = tmp_path / "poison_app.py"
    app.write_text(textwrap.dedent("""
        import inngest_do as inngest

        client = inngest.Inngest(app_id="p")

        @client.create_function(fn_id="f", trigger=inngest.TriggerEvent(event="go"),
                                retries=0)
        def f(ctx):
            def body():
                raise KeyboardInterrupt("from the body")
            return ctx.step.run("s", body)
    """))
    store = tmp_path / "p.db"
    worker = Worker(str(app), store, tmp_path)
    try:
        for _ in range(2):
            sent = inngest_do("--store", str(store), "send", "go", cwd=tmp_path)
            assert sent.returncode == 0, sent.stderr
        worker.expect("failed", "p-f")
        worker.expect("failed", "p-f")
        assert worker.proc.poll() is None  # still serving
    finally:
        code, err = worker.stop(signal.SIGINT)
    assert code == 0, err
    listed = inngest_do("--store", str(store), "runs", "--status", "Failed", cwd=tmp_path)
    assert listed.stdout.count("p-f") == 2


# ------------------------------------------------------------------- sync handlers and the lock


def test_two_sync_runs_that_wait_for_each_other_both_complete_and_the_loop_turns() -> None:
    """Each sync handler, in its own code (outside any step), sends an event and blocks until
    the other run's event has been handled by an async function on the loop. Holding an
    engine-wide lock while handler code runs would deadlock this."""
    client = inngest.Inngest(app_id="p")
    seen = {"a": threading.Event(), "b": threading.Event()}
    both_in = threading.Barrier(2, timeout=20)

    @client.create_function(fn_id="pinged", trigger=inngest.TriggerEvent(event="ping"))
    async def pinged(ctx: inngest.Context) -> str:
        who = await ctx.step.run("note", lambda: ctx.event.data["who"])
        seen[who].set()
        return who

    @client.create_function(fn_id="player", trigger=inngest.TriggerEvent(event="play"))
    def player(ctx: inngest.ContextSync) -> str:
        me = ctx.event.data["me"]
        other = "b" if me == "a" else "a"
        ctx.step.run("warm-up", lambda: me)
        both_in.wait()  # both handlers are inside their own code at once
        client.send_sync(inngest.Event(name="ping", data={"who": me}))
        if not seen[other].wait(timeout=20):  # the loop must run the other's ping meanwhile
            raise AssertionError("the other run's event was never handled")
        return ctx.step.run("done", lambda: f"{me} saw {other}")

    async def main() -> None:
        async with inngest.Worker(client, sync_workers=2):
            await client.send([ev("play", me="a"), ev("play", me="b")])
            await until(finished(client, 4), timeout=30)

    arun(main())
    outputs = sorted(r.output for r in client.runs() if r.fn_id == "p-player")
    assert outputs == ["a saw b", "b saw a"]
    assert all(r.status == "Completed" for r in client.runs())


def test_sync_handler_code_runs_without_the_engine_lock() -> None:
    client = inngest.Inngest(app_id="p")
    held: list[bool] = []

    @client.create_function(fn_id="f", trigger=inngest.TriggerEvent(event="go"))
    def f(ctx: inngest.ContextSync) -> str:
        lock = client._engine.lock  # type: ignore[union-attr]

        def probe() -> bool:
            # another thread can take the lock while this handler runs
            box: list[bool] = []

            def take() -> None:
                box.append(lock.acquire(timeout=10))
                if box[0]:
                    lock.release()

            t = threading.Thread(target=take)
            t.start()
            t.join()
            return box[0]

        held.append(probe())
        ctx.step.run("s", lambda: held.append(probe()))
        held.append(probe())
        return "ok"

    async def main() -> None:
        async with inngest.Worker(client):
            await client.send(ev())
            await until(finished(client))

    arun(main())
    assert [r.status for r in client.runs()] == ["Completed"]
    assert held and all(held)

