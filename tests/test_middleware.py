"""Middleware with the SDK's hooks: which are called, in which order (before hooks in
registration order, after hooks reversed), client- and function-level, sync and async, and
what transform_input/transform_output and the send hooks can change."""

from __future__ import annotations

import asyncio

import pytest
from helpers import ev

import inngest_do as inngest
from inngest_do.testing import Simulation

HOOKS = ("before_memoization", "after_memoization", "before_execution", "after_execution",
         "before_response")


def recorder(tag: str, log: list, *, use_async: bool = False, real_io: bool = False) -> type:
    """A middleware class appending (tag, hook, detail) to ``log`` for every hook; with
    ``use_async`` its hooks are coroutines (awaiting asyncio with ``real_io``)."""

    def entry(name: str, *args: object) -> None:
        if name == "transform_input":
            detail = args[2].size  # how many memoized steps the handler will replay
        elif name == "transform_output":
            res = args[0]
            detail = (res.step.id if res.step else None, res.output)
        elif name == "before_send_events":
            detail = [e.name for e in args[0]]
        elif name == "after_send_events":
            detail = len(args[0].ids)
        else:
            detail = None
        log.append((tag, name) if detail is None else (tag, name, detail))

    names = HOOKS + ("transform_input", "transform_output", "before_send_events",
                     "after_send_events")
    body: dict = {}
    for name in names:
        if use_async:
            async def hook(self, *args, _n=name):
                if real_io:
                    await asyncio.sleep(0.001)
                entry(_n, *args)
        else:
            def hook(self, *args, _n=name):
                entry(_n, *args)
        body[name] = hook
    base = inngest.Middleware if use_async else inngest.MiddlewareSync
    return type(f"Rec_{tag}", (base,), body)


# ------------------------------------------------------------------------------ order of hooks


@pytest.mark.parametrize("use_async", [False, True], ids=["MiddlewareSync", "Middleware"])
@pytest.mark.parametrize("sync_handler", [False, True], ids=["async-fn", "sync-fn"])
def test_hook_order_one_request_per_step(use_async, sync_handler):
    # Against Inngest's server a request ends after each step: the step's run is one request
    # and the handler's going on from it the next (fresh instances, memo hooks and all).
    log: list = []
    client = inngest.Inngest(app_id="mw", middleware=[recorder("c", log, use_async=use_async)])
    fn_mw = [recorder("f", log, use_async=use_async)]

    if sync_handler:
        @client.create_function(fn_id="f", trigger=inngest.TriggerEvent(event="go"),
                                middleware=fn_mw)
        def f(ctx: inngest.ContextSync):
            return ctx.step.run("a", lambda: 1) + 1
    else:
        @client.create_function(fn_id="f", trigger=inngest.TriggerEvent(event="go"),
                                middleware=fn_mw)
        async def f(ctx: inngest.Context):
            return await ctx.step.run("a", lambda: 1) + 1

    sim = Simulation(client)
    sim.send(ev())
    assert sim.runs()[0].output == 2
    assert log == [
        ("c", "before_send_events", ["go"]),
        ("c", "transform_input", 0), ("f", "transform_input", 0),
        ("c", "before_execution"), ("f", "before_execution"),
        ("f", "after_execution"), ("c", "after_execution"),
        ("f", "transform_output", ("a", 1)), ("c", "transform_output", ("a", 1)),
        ("c", "before_response"), ("f", "before_response"),
        ("c", "transform_input", 1), ("f", "transform_input", 1),
        ("c", "before_memoization"), ("f", "before_memoization"),
        ("f", "after_memoization"), ("c", "after_memoization"),
        ("c", "before_execution"), ("f", "before_execution"),
        ("f", "after_execution"), ("c", "after_execution"),
        ("f", "transform_output", (None, 2)), ("c", "transform_output", (None, 2)),
        ("c", "before_response"), ("f", "before_response"),
        ("c", "after_send_events", 1),
    ]


def replayed_hooks(tail_step: bool) -> list:
    """Hooks of the second slice of a run that replays (coroutine_cap=0) after a sleep."""
    log: list = []
    client = inngest.Inngest(app_id="mw", middleware=[recorder("c", log)])

    @client.create_function(fn_id="f", trigger=inngest.TriggerEvent(event="go"),
                            middleware=[recorder("f", log)])
    async def f(ctx: inngest.Context):
        await ctx.step.run("a", lambda: 1)
        await ctx.step.sleep("s", 1_000)
        if tail_step:
            await ctx.step.run("b", lambda: 2)
        return "done"

    sim = Simulation(client, coroutine_cap=0)
    sim.send(ev())
    log.clear()
    sim.advance(1_000)
    assert sim.runs()[0].output == "done"
    return [e for e in log if e[1] != "transform_output"]


REPLAYED = [
    ("c", "transform_input", 2), ("f", "transform_input", 2),
    ("c", "before_memoization"), ("f", "before_memoization"),
    ("f", "after_memoization"), ("c", "after_memoization"),
    ("c", "before_execution"), ("f", "before_execution"),
    ("f", "after_execution"), ("c", "after_execution"),
    ("c", "before_response"), ("f", "before_response"),
]


def test_hooks_on_a_replayed_slice():
    # the replayed request, then step "b" ends it and the next request begins
    assert replayed_hooks(tail_step=True) == REPLAYED[:-4] + [
        ("f", "after_execution"), ("c", "after_execution"),
        ("c", "before_response"), ("f", "before_response"),
        ("c", "transform_input", 3), ("f", "transform_input", 3),
        ("c", "before_memoization"), ("f", "before_memoization"),
        ("f", "after_memoization"), ("c", "after_memoization"),
        ("c", "before_execution"), ("f", "before_execution"),
    ] + REPLAYED[-4:]


def test_hooks_on_a_replayed_slice_that_ends_after_its_memos():
    assert replayed_hooks(tail_step=False) == REPLAYED


def test_hook_sequence_does_not_depend_on_the_coroutine_cap():
    def hooks(cap: int) -> list:
        log: list = []
        client = inngest.Inngest(app_id="mw", middleware=[recorder("c", log)])

        @client.create_function(fn_id="f", trigger=inngest.TriggerEvent(event="go"))
        async def f(ctx: inngest.Context):
            await ctx.step.run("a", lambda: 1)
            await ctx.step.sleep("s", 1_000)
            await ctx.step.run("b", lambda: 2)
            return "done"

        sim = Simulation(client, coroutine_cap=cap)
        sim.send(ev())
        sim.advance(1_000)
        return log

    assert hooks(10_000) == hooks(0)


# ---------------------------------------------------------------------- transforming data


def test_transform_output_changes_a_steps_recorded_output():
    class Redact(inngest.MiddlewareSync):
        def transform_output(self, result: inngest.TransformOutputResult) -> None:
            if result.step is not None and result.step.id == "secret":
                result.output = {"token": "***"}

    client = inngest.Inngest(app_id="mw", middleware=[Redact])
    seen: list = []

    @client.create_function(fn_id="f", trigger=inngest.TriggerEvent(event="go"))
    async def f(ctx: inngest.Context):
        tok = await ctx.step.run("secret", lambda: {"token": "hunter2"})
        seen.append(tok)
        await ctx.step.sleep("s", 1_000)
        return tok

    sim = Simulation(client, coroutine_cap=0)
    sim.send(ev())
    sim.advance(1_000)
    assert seen == [{"token": "***"}, {"token": "***"}]  # live and replayed
    assert sim.runs()[0].output == {"token": "***"}


def test_transform_output_changes_the_function_output():
    class Wrap(inngest.Middleware):
        async def transform_output(self, result: inngest.TransformOutputResult) -> None:
            if result.step is None:
                result.output = {"wrapped": result.output}

    client = inngest.Inngest(app_id="mw")

    @client.create_function(fn_id="f", trigger=inngest.TriggerEvent(event="go"),
                            middleware=[Wrap])
    def f(ctx: inngest.ContextSync):
        return ctx.step.run("a", lambda: 5)

    sim = Simulation(client)
    sim.send(ev())
    assert sim.runs()[0].output == {"wrapped": 5}


def test_transform_output_error_fails_the_step_attempt():
    class Veto(inngest.MiddlewareSync):
        def transform_output(self, result: inngest.TransformOutputResult) -> None:
            if result.step is not None and result.output == "bad":
                result.error = inngest.NonRetriableError("vetoed by middleware")

    client = inngest.Inngest(app_id="mw", middleware=[Veto])

    @client.create_function(fn_id="f", trigger=inngest.TriggerEvent(event="go"))
    async def f(ctx: inngest.Context):
        return await ctx.step.run("a", lambda: "bad")

    sim = Simulation(client)
    sim.send(ev())
    run = sim.runs()[0]
    assert run.status == "Failed"
    assert run.error.message == "vetoed by middleware"


def test_transform_input_can_change_the_context():
    class Inject(inngest.MiddlewareSync):
        def transform_input(self, ctx, function, steps) -> None:
            ctx.event = inngest.Event(name=ctx.event.name,
                                      data={**ctx.event.data, "tenant": "acme"})

    client = inngest.Inngest(app_id="mw", middleware=[Inject])

    @client.create_function(fn_id="f", trigger=inngest.TriggerEvent(event="go"))
    async def f(ctx: inngest.Context):
        return ctx.event.data

    sim = Simulation(client)
    sim.send(ev(k=1))
    assert sim.runs()[0].output == {"k": 1, "tenant": "acme"}


def test_async_middleware_may_await_real_io():
    log: list = []
    client = inngest.Inngest(app_id="mw",
                             middleware=[recorder("c", log, use_async=True, real_io=True)])

    @client.create_function(fn_id="f", trigger=inngest.TriggerEvent(event="go"))
    async def f(ctx: inngest.Context):
        return await ctx.step.run("a", lambda: 1)

    sim = Simulation(client)
    sim.send(ev())
    sim.run_until_idle()
    run = sim.runs()[0]
    assert run.status == "Completed" and run.output == 1
    assert ("c", "transform_output", ("a", 1)) in log


def test_middleware_gets_the_client():
    got: list = []

    class Probe(inngest.MiddlewareSync):
        def __init__(self, client, raw_request):
            super().__init__(client, raw_request)
            got.append(client)

    client = inngest.Inngest(app_id="mw", middleware=[Probe])

    @client.create_function(fn_id="f", trigger=inngest.TriggerEvent(event="go"))
    async def f(ctx: inngest.Context):
        return 1

    Simulation(client).send(ev())
    assert got and all(c is client for c in got)


# ------------------------------------------------------------------------------ send events


@pytest.mark.parametrize("use_async", [False, True], ids=["MiddlewareSync", "Middleware"])
def test_send_hooks_on_client_send_can_change_events(use_async):
    log: list = []
    if use_async:
        class Stamp(inngest.Middleware):
            async def before_send_events(self, events):
                for e in events:
                    e.data["stamped"] = True

            async def after_send_events(self, result):
                log.append(list(result.ids))
    else:
        class Stamp(inngest.MiddlewareSync):
            def before_send_events(self, events):
                for e in events:
                    e.data["stamped"] = True

            def after_send_events(self, result):
                log.append(list(result.ids))

    client = inngest.Inngest(app_id="mw", middleware=[Stamp])

    @client.create_function(fn_id="f", trigger=inngest.TriggerEvent(event="go"))
    async def f(ctx: inngest.Context):
        return ctx.event.data

    sim = Simulation(client)
    ids = sim.send([ev(n=1), ev(n=2)])
    assert log == [ids]
    assert [r.output for r in sim.runs()] == [{"n": 1, "stamped": True},
                                              {"n": 2, "stamped": True}]
    ids2 = asyncio.run(client.send(ev(n=3)))
    assert log[-1] == ids2


def test_send_hooks_on_step_send_event():
    log: list = []
    client = inngest.Inngest(app_id="mw", middleware=[recorder("c", log)])

    @client.create_function(fn_id="f", trigger=inngest.TriggerEvent(event="go"),
                            middleware=[recorder("f", log)])
    async def f(ctx: inngest.Context):
        return await ctx.step.send_event("notify", [ev("a"), ev("b")])

    sim = Simulation(client)
    sim.send(ev())
    sends = [e for e in log if e[1] in ("before_send_events", "after_send_events")]
    assert sends == [
        ("c", "before_send_events", ["go"]),
        ("c", "before_send_events", ["a", "b"]), ("f", "before_send_events", ["a", "b"]),
        ("f", "after_send_events", 2), ("c", "after_send_events", 2),
        ("c", "after_send_events", 1),
    ]


def test_skip_middleware_on_send(client):
    log: list = []
    client = inngest.Inngest(app_id="mw", middleware=[recorder("c", log)])
    sim = Simulation(client)
    client.send_sync(ev(), skip_middleware=True)
    sim.run_until_idle()
    assert log == []


def test_function_middleware_applies_only_to_its_function():
    log: list = []
    client = inngest.Inngest(app_id="mw")

    @client.create_function(fn_id="with", trigger=inngest.TriggerEvent(event="go"),
                            middleware=[recorder("f", log)])
    async def with_mw(ctx: inngest.Context):
        return 1

    @client.create_function(fn_id="without", trigger=inngest.TriggerEvent(event="go"))
    async def without(ctx: inngest.Context):
        return 2

    sim = Simulation(client)
    sim.send(ev())
    assert [e for e in log if e[1] == "transform_input"] == [("f", "transform_input", 0)]
