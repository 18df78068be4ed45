"""``step.run``'s short path (the kernel's StepBook) makes exactly the slow path's decisions.

Each scenario runs twice in a Simulation: as it is (no middleware: the short path) and with a
middleware that does nothing (every step takes the slow path). The traces, run outputs and
errors must be the same, and the short path must really have been taken.
"""

from __future__ import annotations

import typing

import pytest

import inngest_do as inngest
from inngest_do import engine as engine_mod
from inngest_do.testing import Simulation, busy

Handler = typing.Callable[..., typing.Any]


class _Quiet(inngest.Middleware):
    """Hears every hook and changes nothing: it only turns the short path off."""


def _run_app(scenario: str, sync: bool, quiet: bool) -> tuple[list, list, int]:
    client = inngest.Inngest(app_id="short", middleware=[_Quiet] if quiet else [])
    calls = {"n": 0}

    def flaky() -> int:
        calls["n"] += 1
        if calls["n"] < 3:
            raise ValueError(f"flaky {calls['n']}")
        return calls["n"]

    def steps_of(outer: Handler, ctx: typing.Any) -> list[tuple[str, Handler]]:
        if scenario == "values":
            return [(f"v{i % 2}", (lambda v=v: v)) for i, v in
                    enumerate([1, "x", None, True, 1.5, {"a": [1]}, [1, {"b": 2}], (1, 2)])]
        if scenario == "retries":
            return [("a", lambda: 1), ("flaky", flaky), ("attempt", lambda: ctx.attempt)]
        if scenario == "non_retriable":
            def fail() -> None:
                raise inngest.NonRetriableError("stop here")
            return [("a", lambda: 1), ("fail", fail)]
        if scenario == "unserializable":
            return [("a", lambda: 1), ("bad", lambda: {1, 2})]
        if scenario == "nested":  # outer() starts a step inside its body
            return [("outer", outer), ("after", lambda: 3)]
        if scenario == "busy":
            def slow() -> int:
                busy(5_000)
                return 7
            return [("slow", slow), ("after", lambda: 8)]
        raise AssertionError(scenario)

    if sync:
        @client.create_function(fn_id="f", trigger=inngest.TriggerEvent(event="go"), retries=3)
        def fn_sync(ctx: inngest.ContextSync) -> list:
            out = []

            def outer() -> int:
                return ctx.step.run("inner", lambda: 2)

            for step_id, handler in steps_of(outer, ctx):
                try:
                    value = ctx.step.run(step_id, handler)
                except inngest.StepError as err:
                    value = f"StepError: {err.message}"
                out.append(value)
                if isinstance(value, dict):
                    value["mutated"] = True  # the memo must not change
            ctx.step.sleep("nap", 1_000)  # a replay follows: memos answered
            out.append(ctx.step.run("last", lambda: "done"))
            return out
    else:
        @client.create_function(fn_id="f", trigger=inngest.TriggerEvent(event="go"), retries=3)
        async def fn(ctx: inngest.Context) -> list:
            out = []

            async def outer() -> int:
                return await ctx.step.run("inner", lambda: 2)

            for step_id, handler in steps_of(outer, ctx):
                try:
                    value = await ctx.step.run(step_id, handler)
                except inngest.StepError as err:
                    value = f"StepError: {err.message}"
                out.append(value)
                if isinstance(value, dict):
                    value["mutated"] = True
            await ctx.step.sleep("nap", 1_000)
            out.append(await ctx.step.run("last", lambda: "done"))
            return out

    sim = Simulation(client)
    sim.send(inngest.Event(name="go"))
    sim.run_until_idle(max_iterations=100)
    runs = [(r.status, r.output, r.error and (r.error.name, r.error.message))
            for r in sim.runs()]
    trace = [(e.at_ms, e.kind, e.step, e.detail) for e in sim.trace
             if e.kind not in ("event.received",)]
    return runs, trace, calls["n"]


@pytest.mark.parametrize("sync", [False, True], ids=["async", "sync"])
@pytest.mark.parametrize("scenario", ["values", "retries", "non_retriable", "unserializable",
                                      "nested", "busy"])
def test_short_path_decides_as_the_slow_path(scenario, sync, monkeypatch):
    recorded_slowly = []
    original = engine_mod.Engine.step_succeeded

    def counting(self, ex, full_id, op, value, **kw):
        recorded_slowly.append(full_id)
        return original(self, ex, full_id, op, value, **kw)

    monkeypatch.setattr(engine_mod.Engine, "step_succeeded", counting)
    short = _run_app(scenario, sync, quiet=False)
    short_slow_records = list(recorded_slowly)
    recorded_slowly.clear()
    slow = _run_app(scenario, sync, quiet=True)
    assert short == slow
    # the slow path records every step through Engine.step_succeeded; the short path only
    # the ones it handed over (a busy body, a step after a retry was scheduled)
    assert len(short_slow_records) < len(recorded_slowly)
    if scenario == "values":
        status, output, _ = short[0][0]
        assert status == "Completed"
        assert output[5] == {"a": [1], "mutated": True} and output[7] == [1, 2]
        assert output[-1] == "done"
