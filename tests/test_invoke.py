"""step.invoke / step.invoke_by_id: the invoked function's output comes back, its failure
raises StepError in the caller, a timeout raises, and the invoked run sees its data."""

from __future__ import annotations

import collections
import datetime

import pytest
from helpers import MIN, SEC, ev, only_run

import inngest_do as inngest
from inngest_do.testing import DEFAULT_START, Simulation

START = DEFAULT_START


def add_children(client: inngest.Inngest) -> dict[str, inngest.Function]:
    @client.create_function(fn_id="double", trigger=inngest.TriggerEvent(event="never/double"))
    async def double(ctx: inngest.Context):
        return {"doubled": await ctx.step.run("x2", lambda: ctx.event.data["n"] * 2),
                "event": ctx.event.name}

    @client.create_function(fn_id="slow", trigger=inngest.TriggerEvent(event="never/slow"))
    async def slow(ctx: inngest.Context):
        await ctx.step.sleep("nap", ctx.event.data["ms"])
        return "slow done"

    @client.create_function(fn_id="broken", trigger=inngest.TriggerEvent(event="never/broken"),
                            retries=0)
    def broken(ctx: inngest.ContextSync):
        raise LookupError("nothing here")

    return {"double": double, "slow": slow, "broken": broken}


@pytest.mark.parametrize("cap", [0, 10_000])
def test_invoke_returns_the_output(client, cap):
    fns = add_children(client)

    @client.create_function(fn_id="caller", trigger=inngest.TriggerEvent(event="go"))
    async def caller(ctx: inngest.Context):
        by_fn = await ctx.step.invoke("a", function=fns["double"], data={"n": 4})
        by_id = await ctx.step.invoke_by_id("b", function_id="double", data={"n": 5})
        return [by_fn, by_id]

    sim = Simulation(client, coroutine_cap=cap)
    sim.send(ev())
    run = only_run(sim, caller)
    assert run.status == "Completed"
    assert run.output == [{"doubled": 8, "event": "inngest/function.invoked"},
                          {"doubled": 10, "event": "inngest/function.invoked"}]
    children = sim.runs(fns["double"])
    assert [c.event.data for c in children] == [{"n": 4}, {"n": 5}]
    assert all(c.status == "Completed" for c in children)


def test_invoke_waits_for_a_sleeping_child(client):
    fns = add_children(client)

    @client.create_function(fn_id="caller", trigger=inngest.TriggerEvent(event="go"))
    async def caller(ctx: inngest.Context):
        out = await ctx.step.invoke("s", function=fns["slow"], data={"ms": 5 * MIN})
        return [out, await ctx.step.run("t", lambda: sim.now.isoformat())]

    sim = Simulation(client)
    sim.send(ev())
    assert only_run(sim, caller).status == "Waiting"
    sim.advance(5 * MIN)
    run = only_run(sim, caller)
    assert run.output == ["slow done", (START + datetime.timedelta(minutes=5)).isoformat()]


def test_invoked_failure_raises_step_error_in_the_caller(client):
    fns = add_children(client)

    @client.create_function(fn_id="caller", trigger=inngest.TriggerEvent(event="go"))
    async def caller(ctx: inngest.Context):
        try:
            await ctx.step.invoke("b", function=fns["broken"])
        except inngest.StepError as err:
            return {"name": err.name, "message": err.message}
        return "no error"

    sim = Simulation(client)
    sim.send(ev())
    assert only_run(sim, caller).output == {"name": "LookupError", "message": "nothing here"}
    assert only_run(sim, fns["broken"]).status == "Failed"


def test_uncaught_invoke_failure_fails_the_caller(client):
    fns = add_children(client)

    @client.create_function(fn_id="caller", trigger=inngest.TriggerEvent(event="go"))
    def caller(ctx: inngest.ContextSync):
        return ctx.step.invoke("b", function=fns["broken"])

    sim = Simulation(client)
    sim.send(ev())
    sim.run_until_idle()
    run = only_run(sim, caller)
    assert run.status == "Failed"
    assert run.error.message == "nothing here"


def test_invoke_timeout_raises(client):
    fns = add_children(client)

    @client.create_function(fn_id="caller", trigger=inngest.TriggerEvent(event="go"))
    async def caller(ctx: inngest.Context):
        try:
            await ctx.step.invoke("s", function=fns["slow"], data={"ms": 10 * MIN},
                                  timeout=datetime.timedelta(minutes=2))
        except inngest.StepError as err:
            return {"name": err.name, "at": sim.now.isoformat()}
        return "no timeout"

    sim = Simulation(client)
    sim.send(ev())
    sim.advance(2 * MIN - 1)
    assert only_run(sim, caller).status == "Waiting"
    sim.advance(1)
    out = only_run(sim, caller).output
    assert out["at"] == (START + datetime.timedelta(minutes=2)).isoformat()
    assert "Timeout" in out["name"]
    sim.run_until_idle()  # the child still finishes on its own
    assert only_run(sim, fns["slow"]).status == "Completed"


def test_invoke_unknown_function_raises(client):
    @client.create_function(fn_id="caller", trigger=inngest.TriggerEvent(event="go"))
    async def caller(ctx: inngest.Context):
        try:
            await ctx.step.invoke_by_id("x", function_id="does-not-exist")
        except inngest.StepError as err:
            return err.message
        return "found?"

    sim = Simulation(client)
    sim.send(ev())
    assert "does-not-exist" in only_run(sim, caller).output


def test_invoke_runs_the_child_once_on_replay(client):
    calls = collections.Counter()

    @client.create_function(fn_id="child", trigger=inngest.TriggerEvent(event="never"))
    async def child(ctx: inngest.Context):
        calls["child"] += 1
        return ctx.event.data["v"]

    @client.create_function(fn_id="caller", trigger=inngest.TriggerEvent(event="go"))
    def caller(ctx: inngest.ContextSync):  # replays from the start on every resume
        a = ctx.step.invoke("a", function=child, data={"v": 1})
        ctx.step.sleep("s", MIN)
        b = ctx.step.invoke("b", function=child, data={"v": 2})
        return a + b

    sim = Simulation(client)
    sim.send(ev())
    sim.run_until_idle()
    assert only_run(sim, caller).output == 3
    assert calls["child"] == 2
    assert len(sim.runs(child)) == 2


def test_invoke_chain(client):
    @client.create_function(fn_id="leaf", trigger=inngest.TriggerEvent(event="never"))
    async def leaf(ctx: inngest.Context):
        await ctx.step.sleep("nap", SEC)
        return ctx.event.data["depth"]

    @client.create_function(fn_id="mid", trigger=inngest.TriggerEvent(event="never2"))
    async def mid(ctx: inngest.Context):
        return 1 + await ctx.step.invoke("leaf", function=leaf, data={"depth": 1})

    @client.create_function(fn_id="top", trigger=inngest.TriggerEvent(event="go"))
    async def top(ctx: inngest.Context):
        return 1 + await ctx.step.invoke("mid", function=mid)

    sim = Simulation(client)
    sim.send(ev())
    sim.run_until_idle()
    assert only_run(sim, top).output == 3
    assert only_run(sim, top).ended_at == START + datetime.timedelta(seconds=1)


def test_invoke_data_must_be_json(client):
    @client.create_function(fn_id="child", trigger=inngest.TriggerEvent(event="never"))
    async def child(ctx: inngest.Context):
        return 1

    @client.create_function(fn_id="caller", trigger=inngest.TriggerEvent(event="go"), retries=0)
    async def caller(ctx: inngest.Context):
        return await ctx.step.invoke("c", function=child, data={"when": datetime.date.today()})

    sim = Simulation(client)
    sim.send(ev())
    run = only_run(sim, caller)
    assert run.status == "Failed"
    assert "JSON" in run.error.message
