"""The context a handler receives builds its event models, logger and group on first read
(issue 12: most handlers never read some of them). Reading, replacing, comparing and
printing it behave as on the plain Context/ContextSync dataclasses."""

from __future__ import annotations

import dataclasses
import logging

import inngest_do as inngest
from inngest_do.context import LazyContext, LazyContextSync
from inngest_do.step import Group, GroupSync
from inngest_do.testing import Simulation


def test_the_context_reads_as_the_dataclass_does() -> None:
    client = inngest.Inngest(app_id="lazy")
    seen: dict = {}

    @client.create_function(fn_id="f", trigger=inngest.TriggerEvent(event="go"))
    async def f(ctx: inngest.Context) -> str:
        seen["type"] = type(ctx)
        seen["is_context"] = isinstance(ctx, inngest.Context)
        seen["event"] = ctx.event
        seen["same"] = ctx.event is ctx.events[0] and ctx.events is ctx.events
        seen["group"] = ctx.group
        seen["same_group"] = ctx.group is ctx.group
        seen["logger"] = ctx.logger is ctx.logger and hasattr(ctx.logger, "info")
        seen["ids"] = (ctx.run_id, ctx.attempt, ctx.job_id, ctx.request_id)
        seen["fields"] = [field.name for field in dataclasses.fields(ctx)]
        seen["repr"] = repr(ctx)
        copy = dataclasses.replace(ctx, attempt=3)
        seen["eq"] = (copy == dataclasses.replace(copy), copy.attempt, copy.event is ctx.event,
                      copy.group is ctx.group, copy != ctx)
        return await ctx.step.run("s", lambda: ctx.event.data["who"])

    sim = Simulation(client)
    sim.send(inngest.Event(name="go", data={"who": "ada"}))
    run = sim.runs()[0]
    assert run.status == "Completed" and run.output == "ada"
    assert seen["type"] is LazyContext and seen["is_context"] and seen["same"]
    assert seen["event"].name == "go" and seen["event"].data == {"who": "ada"}
    assert isinstance(seen["group"], Group) and seen["same_group"] and seen["logger"]
    assert seen["ids"] == (run.id, 0, None, None)
    assert seen["fields"] == [field.name for field in dataclasses.fields(inngest.Context)]
    assert "ada" in seen["repr"] and seen["eq"] == (True, 3, True, True, True)


def test_a_sync_handler_gets_the_same_lazy_pieces() -> None:
    client = inngest.Inngest(app_id="lazy")
    seen: dict = {}

    @client.create_function(fn_id="f", trigger=inngest.TriggerEvent(event="go"))
    def f(ctx: inngest.ContextSync) -> int:
        seen["type"] = type(ctx)
        seen["group"] = type(ctx.group)
        seen["events"] = [e.data["i"] for e in ctx.events]
        return ctx.step.run("s", lambda: ctx.event.data["i"] * 2)

    sim = Simulation(client)
    sim.send(inngest.Event(name="go", data={"i": 4}))
    assert sim.runs()[0].output == 8
    assert seen == {"type": LazyContextSync, "group": GroupSync, "events": [4]}


def test_middleware_and_handlers_may_replace_the_lazy_fields() -> None:
    class Replace(inngest.MiddlewareSync):
        def transform_input(self, ctx, function, steps) -> None:
            ctx.event = inngest.Event(name="go", data={"i": 99})
            ctx.logger = logging.getLogger("replaced")

    client = inngest.Inngest(app_id="lazy", middleware=[Replace])

    @client.create_function(fn_id="f", trigger=inngest.TriggerEvent(event="go"))
    async def f(ctx: inngest.Context) -> list:
        original = ctx.events[0].data["i"]
        ctx.events = []
        return [ctx.event.data["i"], original, ctx.events, ctx.logger.name]

    sim = Simulation(client)
    sim.send(inngest.Event(name="go", data={"i": 1}))
    assert sim.runs()[0].output == [99, 1, [], "replaced"]


def test_replacing_events_leaves_event_as_it_was() -> None:
    client = inngest.Inngest(app_id="lazy")

    @client.create_function(fn_id="f", trigger=inngest.TriggerEvent(event="go"))
    async def f(ctx: inngest.Context) -> list:
        ctx.events = [inngest.Event(name="other", data={"i": 7})]
        return [ctx.event.name, ctx.event.data["i"], ctx.events[0].data["i"]]

    sim = Simulation(client)
    sim.send(inngest.Event(name="go", data={"i": 1}))
    assert sim.runs()[0].output == ["go", 1, 7]


def test_each_replay_builds_its_event_from_the_stored_payload() -> None:
    # The handler changes its event's data; the next pass (a new context after the sleep,
    # on a coroutine-less replay) sees the event as sent.
    client = inngest.Inngest(app_id="lazy")

    @client.create_function(fn_id="f", trigger=inngest.TriggerEvent(event="go"))
    async def f(ctx: inngest.Context) -> int:
        first = ctx.event.data["n"]
        ctx.event.data["n"] = -1
        await ctx.step.sleep("z", 1000)
        return first

    sim = Simulation(client, coroutine_cap=0)
    sim.send(inngest.Event(name="go", data={"n": 5}))
    sim.advance(1000)
    run = sim.runs()[0]
    assert run.status == "Completed" and run.output == 5
    assert run.event is not None and run.event.data == {"n": 5}
