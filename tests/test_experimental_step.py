"""inngest_do.experimental: the step decorator and the step context, as in the SDK."""

from __future__ import annotations

import pytest

import inngest_do as inngest
from inngest_do import experimental
from inngest_do.testing import Simulation
from tests.helpers import ev, only_run


def test_decorated_function_outside_a_run_is_a_plain_call() -> None:
    @experimental.step("greet")
    def greet(name: str) -> str:
        return f"hi {name}"

    assert greet("ann") == "hi ann"


@pytest.mark.parametrize("sync", [False, True])
def test_decorated_function_inside_a_run_is_a_memoized_step(client, sync) -> None:
    calls: list[str] = []

    if sync:
        @experimental.step("greet")
        def greet(name: str) -> str:
            calls.append(name)
            return f"hi {name}"

        @client.create_function(fn_id="f", trigger=inngest.TriggerEvent(event="go"))
        def f(ctx: inngest.ContextSync) -> str:
            out = greet("ann")
            ctx.step.sleep("nap", 1_000)
            return out
    else:
        @experimental.step("greet")
        async def greet(name: str) -> str:
            calls.append(name)
            return f"hi {name}"

        @client.create_function(fn_id="f", trigger=inngest.TriggerEvent(event="go"))
        async def f(ctx: inngest.Context) -> str:
            out = await greet("ann")
            await ctx.step.sleep("nap", 1_000)
            return out

    sim = Simulation(client)
    sim.send(ev())
    sim.advance(1_000)
    run = only_run(sim)
    assert run.output == "hi ann" and calls == ["ann"]
    assert run.steps[0] == "greet"


def test_get_step_context_is_the_runs_step_tools(client) -> None:
    seen: list[bool] = []

    @client.create_function(fn_id="f", trigger=inngest.TriggerEvent(event="go"))
    async def f(ctx: inngest.Context) -> int:
        seen.append(experimental.get_step_context() is ctx.step)
        return await experimental.get_step_context().run("one", lambda: 1)

    sim = Simulation(client)
    sim.send(ev())
    assert seen == [True] and only_run(sim).output == 1


def test_step_context_outside_a_run() -> None:
    with pytest.raises(LookupError):
        experimental.get_step_context()
    marker = object()
    with experimental.set_step_context(marker):  # type: ignore[arg-type]
        assert experimental.get_step_context() is marker
        with pytest.raises(Exception, match="Step context already set"), \
                experimental.set_step_context(marker):  # type: ignore[arg-type]
            pass
    with pytest.raises(LookupError):
        experimental.get_step_context()


def test_step_id_is_checked() -> None:
    with pytest.raises(ValueError, match="step_id"):
        experimental.step("")
