"""ctx.group.parallel: results in order, children that park do not block the others, retries
inside children, RACE, and the same through sync handlers and forced replays."""

from __future__ import annotations

import collections
import datetime

import pytest
from helpers import MIN, ev, only_run

import inngest_do as inngest
from inngest_do.testing import DEFAULT_START, Simulation

START = DEFAULT_START


def completed_at(run: inngest.Run, step: str) -> datetime.datetime:
    [at] = [e.at for e in run.history if e.step == step and e.kind in (
        "step.completed", "sleep.completed", "wait.completed")]
    return at


@pytest.mark.parametrize("cap", [0, 10_000])
def test_parallel_results_in_order(client, cap):
    calls = collections.Counter()

    def body(n: int) -> int:
        calls[n] += 1
        return n * 10

    @client.create_function(fn_id="f", trigger=inngest.TriggerEvent(event="go"))
    async def f(ctx: inngest.Context):
        results = await ctx.group.parallel(tuple(
            (lambda n=n: ctx.step.run(f"s{n}", body, n)) for n in range(5)))
        return list(results)

    sim = Simulation(client, coroutine_cap=cap)
    sim.send(ev())
    run = only_run(sim)
    assert run.status == "Completed"
    assert run.output == [0, 10, 20, 30, 40]
    assert calls == {n: 1 for n in range(5)}


@pytest.mark.parametrize("cap", [0, 10_000])
def test_a_sleeping_child_does_not_block_the_others(client, cap):
    calls = collections.Counter()

    async def slow_branch(ctx: inngest.Context) -> str:
        await ctx.step.sleep("slow-nap", 10 * MIN)
        return await ctx.step.run("slow-work", lambda: calls.update(["slow"]) or "slow")

    async def fast_branch(ctx: inngest.Context) -> str:
        await ctx.step.sleep("fast-nap", MIN)
        return await ctx.step.run("fast-work", lambda: calls.update(["fast"]) or "fast")

    async def instant(ctx: inngest.Context) -> str:
        return await ctx.step.run("instant", lambda: calls.update(["instant"]) or "instant")

    @client.create_function(fn_id="f", trigger=inngest.TriggerEvent(event="go"))
    async def f(ctx: inngest.Context):
        results = await ctx.group.parallel((lambda: slow_branch(ctx), lambda: fast_branch(ctx),
                                            lambda: instant(ctx)))
        return list(results)

    sim = Simulation(client, coroutine_cap=cap)
    sim.send(ev())
    assert calls == {"instant": 1}
    assert only_run(sim).status == "Sleeping"
    sim.advance(MIN)
    assert calls == {"instant": 1, "fast": 1}
    sim.advance(9 * MIN)
    run = only_run(sim)
    assert run.status == "Completed"
    assert run.output == ["slow", "fast", "instant"]
    assert calls == {"instant": 1, "fast": 1, "slow": 1}
    assert completed_at(run, "instant") == START
    assert completed_at(run, "fast-work") == START + datetime.timedelta(minutes=1)
    assert completed_at(run, "slow-work") == START + datetime.timedelta(minutes=10)


def test_a_retrying_child_does_not_block_the_others(client):
    calls = collections.Counter()

    def flaky():
        calls["flaky"] += 1
        if calls["flaky"] < 3:
            raise RuntimeError("not yet")
        return "flaky-ok"

    def steady():
        calls["steady"] += 1
        return "steady-ok"

    @client.create_function(fn_id="f", trigger=inngest.TriggerEvent(event="go"))
    async def f(ctx: inngest.Context):
        return list(await ctx.group.parallel((lambda: ctx.step.run("flaky", flaky),
                                              lambda: ctx.step.run("steady", steady))))

    sim = Simulation(client)
    sim.send(ev())
    assert calls == {"flaky": 1, "steady": 1}
    sim.run_until_idle()
    run = only_run(sim)
    assert run.output == ["flaky-ok", "steady-ok"]
    assert calls == {"flaky": 3, "steady": 1}


def test_a_failing_child_raises_step_error_in_the_handler(client):
    @client.create_function(fn_id="f", trigger=inngest.TriggerEvent(event="go"), retries=0)
    async def f(ctx: inngest.Context):
        def boom():
            raise ValueError("child failed")

        try:
            await ctx.group.parallel((lambda: ctx.step.run("ok", lambda: 1),
                                      lambda: ctx.step.run("boom", boom)))
        except inngest.StepError as err:
            return {"caught": err.message}
        return "no error"

    sim = Simulation(client)
    sim.send(ev())
    assert only_run(sim).output == {"caught": "child failed"}


def test_parallel_waits_for_events(client):
    @client.create_function(fn_id="f", trigger=inngest.TriggerEvent(event="go"))
    async def f(ctx: inngest.Context):
        a, b = await ctx.group.parallel((
            lambda: ctx.step.wait_for_event("wa", event="a", timeout=MIN),
            lambda: ctx.step.wait_for_event("wb", event="b", timeout=MIN)))
        return [a and a.name, b and b.name]

    sim = Simulation(client)
    sim.send(ev())
    sim.send(ev("b"))
    assert only_run(sim).status == "Waiting"
    sim.advance(MIN)
    assert only_run(sim).output == [None, "b"]


def test_race_returns_every_result_in_order(client):
    # as the SDK's group.parallel: every branch's output, whatever the mode
    @client.create_function(fn_id="f", trigger=inngest.TriggerEvent(event="go"))
    async def f(ctx: inngest.Context):
        async def slow():
            await ctx.step.sleep("slow", 10 * MIN)
            return "slow"

        async def fast():
            await ctx.step.sleep("fast", MIN)
            return "fast"

        winner = await ctx.group.parallel((slow, fast), parallel_mode=inngest.ParallelMode.RACE)
        return list(winner)

    sim = Simulation(client)
    sim.send(ev())
    sim.advance(MIN)
    assert only_run(sim).status == "Sleeping"  # the slow branch still runs
    sim.advance(9 * MIN)
    run = only_run(sim)
    assert run.status == "Completed"
    assert run.output == ["slow", "fast"]
    assert run.ended_at == START + datetime.timedelta(minutes=10)


def test_sync_race_returns_every_result_in_order(client):
    @client.create_function(fn_id="f", trigger=inngest.TriggerEvent(event="go"))
    def f(ctx: inngest.ContextSync):
        def slow():
            ctx.step.sleep("slow", 10 * MIN)
            return "slow"

        def fast():
            ctx.step.sleep("fast", MIN)
            return "fast"

        return list(ctx.group.parallel((slow, fast), parallel_mode=inngest.ParallelMode.RACE))

    sim = Simulation(client)
    sim.send(ev("go"))
    sim.advance(10 * MIN)
    run = only_run(sim)
    assert (run.status, run.output) == ("Completed", ["slow", "fast"])


@pytest.mark.parametrize("mode", ["wait", "race"])
def test_wait_runs_branches_in_rounds_and_race_lets_each_go_on(client, mode):
    order: list[str] = []

    def note(name: str):
        def body() -> str:
            order.append(name)
            return name
        return body

    @client.create_function(fn_id="f", trigger=inngest.TriggerEvent(event="go"))
    async def f(ctx: inngest.Context):
        async def a():
            return [await ctx.step.run("a.1", note("a.1")), await ctx.step.run("a.2", note("a.2"))]

        async def b():
            return [await ctx.step.run("b.1", note("b.1")), await ctx.step.run("b.2", note("b.2"))]

        return list(await ctx.group.parallel((a, b), parallel_mode=inngest.ParallelMode(mode)))

    sim = Simulation(client)
    sim.send(ev("go"))
    run = only_run(sim)
    assert run.output == [["a.1", "a.2"], ["b.1", "b.2"]]
    assert order == (["a.1", "b.1", "a.2", "b.2"] if mode == "wait"
                     else ["a.1", "a.2", "b.1", "b.2"])


def test_sync_handler_parallel(client):
    calls = collections.Counter()

    def body(n: int) -> int:
        calls[n] += 1
        return n

    @client.create_function(fn_id="f", trigger=inngest.TriggerEvent(event="go"))
    def f(ctx: inngest.ContextSync):
        def branch(n: int) -> int:
            ctx.step.sleep(f"nap{n}", (3 - n) * MIN)
            return ctx.step.run(f"s{n}", body, n)

        return list(ctx.group.parallel(tuple((lambda n=n: branch(n)) for n in range(3))))

    sim = Simulation(client)
    sim.send(ev())
    sim.advance(3 * MIN)
    run = only_run(sim)
    assert run.status == "Completed" and run.output == [0, 1, 2]
    assert calls == {0: 1, 1: 1, 2: 1}
    assert completed_at(run, "s2") == START + datetime.timedelta(minutes=1)
    assert completed_at(run, "s0") == START + datetime.timedelta(minutes=3)


@pytest.mark.filterwarnings("ignore:coroutine 'Step.run' was never awaited")
def test_parallel_rejects_non_callables(client):
    @client.create_function(fn_id="f", trigger=inngest.TriggerEvent(event="go"), retries=0)
    async def f(ctx: inngest.Context):
        return await ctx.group.parallel((ctx.step.run("x", lambda: 1),))

    sim = Simulation(client)
    sim.send(ev())
    run = only_run(sim)
    assert run.status == "Failed" and run.error.type == "TypeError"
