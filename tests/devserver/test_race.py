"""A RACE group of an official-SDK app runs as Inngest runs it: a branch's next step starts
as soon as its previous one lands, whatever the other branches are doing."""

from __future__ import annotations

import threading

import inngest

from .conftest import finished, run_ids, start_sdk_app


def test_race_branch_goes_on_while_the_other_is_in_flight(dev, serve_app):
    order: list[str] = []
    calls = [0]
    lock = threading.Lock()
    fast_done = threading.Event()
    waited: list[bool] = []

    def note(name: str) -> str:
        with lock:
            order.append(name)
        return name

    def fns(client):
        @client.create_function(fn_id="race", trigger=inngest.TriggerEvent(event="t/race"),
                                retries=0)
        def race(ctx: inngest.ContextSync) -> object:
            with lock:
                calls[0] += 1

            def b1() -> str:
                # Blocks until the fast branch ran both its steps: only possible if the
                # server starts a.2 while this request is still in flight.
                waited.append(fast_done.wait(15))
                return note("b.1")

            def a2() -> str:
                out = note("a.2")
                fast_done.set()
                return out

            def slow() -> list:  # first, so that its position cannot be what helps
                return [ctx.step.run("b.1", b1), ctx.step.run("b.2", lambda: note("b.2"))]

            def fast() -> list:
                return [ctx.step.run("a.1", lambda: note("a.1")), ctx.step.run("a.2", a2)]

            return list(ctx.group.parallel((slow, fast),
                                           parallel_mode=inngest.ParallelMode.RACE))
        return [race]

    client, _ = start_sdk_app(dev, serve_app, "racer", fns)
    [event_id] = client.send_sync(inngest.Event(name="t/race"))
    run = finished(dev, run_ids(dev, event_id)[0], timeout=30)
    assert run["status"] == "COMPLETED", run
    assert waited == [True]
    assert order == ["a.1", "a.2", "b.1", "b.2"]
    assert run["output"] == [["b.1", "b.2"], ["a.1", "a.2"]]
    # the plan, 4 steps, a discovery after each step (the last one returns the output)
    assert calls[0] == 9


def test_race_step_error_is_retried_while_the_other_branch_goes_on(dev, serve_app):
    attempts: list[str] = []
    lock = threading.Lock()

    def fns(client):
        @client.create_function(fn_id="race-err", trigger=inngest.TriggerEvent(event="t/re"),
                                retries=0)
        async def race_err(ctx: inngest.Context) -> object:
            def bad() -> str:
                with lock:
                    attempts.append("bad")
                raise ValueError("boom")

            async def failing() -> str:
                try:
                    return await ctx.step.run("bad", bad)
                except inngest.StepError as err:
                    return f"caught {err.message}"

            async def fine() -> list:
                return [await ctx.step.run("f.1", lambda: 1),
                        await ctx.step.run("f.2", lambda: 2)]

            return list(await ctx.group.parallel((failing, fine),
                                                 parallel_mode=inngest.ParallelMode.RACE))
        return [race_err]

    client, _ = start_sdk_app(dev, serve_app, "racerr", fns)
    [event_id] = client.send_sync(inngest.Event(name="t/re"))
    run = finished(dev, run_ids(dev, event_id)[0], timeout=30)
    assert run["status"] == "COMPLETED", run
    assert run["output"] == ["caught boom", [1, 2]]
    assert attempts == ["bad"]
