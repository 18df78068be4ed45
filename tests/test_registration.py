"""What runs is what is served: create_function only builds a Function, as in the SDK."""

from __future__ import annotations

import asyncio

import pytest
from helpers import ev

import inngest_do as inngest
from inngest_do.testing import Simulation


def _fn(client: inngest.Inngest, fn_id: str, event: str = "go") -> inngest.Function:
    @client.create_function(fn_id=fn_id, trigger=inngest.TriggerEvent(event=event))
    async def handler(ctx: inngest.Context) -> str:
        return fn_id

    return handler


def test_create_function_returns_a_function_and_serves_nothing_by_itself():
    client = inngest.Inngest(app_id="app")
    fn = _fn(client, "a")
    assert isinstance(fn, inngest.Function)
    assert fn.id == "app-a"
    assert client.functions == [fn]


def test_a_simulation_with_a_list_runs_only_those_functions():
    client = inngest.Inngest(app_id="app")
    a, _b = _fn(client, "a"), _fn(client, "b")
    sim = Simulation(client, functions=[a])
    sim.send(ev("go"))
    assert [(r.fn_id, r.output) for r in sim.runs()] == [("app-a", "a")]


def test_without_a_list_every_function_of_the_client_runs_also_later_ones():
    client = inngest.Inngest(app_id="app")
    _fn(client, "a")
    sim = Simulation(client)
    _fn(client, "b")  # created after the simulation: still served
    sim.send(ev("go"))
    assert sorted(r.output for r in sim.runs()) == ["a", "b"]


def test_functions_of_several_clients_are_served_together():
    shop, billing = inngest.Inngest(app_id="shop"), inngest.Inngest(app_id="billing")
    a, b = _fn(shop, "a"), _fn(billing, "b")
    sim = Simulation(shop, functions=[a, b])
    billing.send_sync(ev("go"))  # the other client sends into the same engine
    assert sorted(r.fn_id for r in sim.runs()) == ["billing-b", "shop-a"]


def test_on_failure_handler_is_served_with_its_function():
    client = inngest.Inngest(app_id="app")
    seen = []

    async def failed(ctx: inngest.Context) -> None:
        seen.append(ctx.event.data["function_id"])

    @client.create_function(fn_id="f", trigger=inngest.TriggerEvent(event="go"), retries=0,
                            on_failure=failed)
    async def f(ctx: inngest.Context) -> None:
        raise inngest.NonRetriableError("no")

    sim = Simulation(client, functions=[f])
    sim.send(ev("go"))
    assert seen == ["app-f"]


def test_serving_the_same_function_twice_is_fine():
    client = inngest.Inngest(app_id="app")
    a = _fn(client, "a")
    sim = Simulation(client, functions=[a, a])
    sim.send(ev("go"))
    assert len(sim.runs()) == 1


@pytest.mark.parametrize("bad", ["a", [1], {"f": 1}])
def test_functions_must_be_a_list_of_functions(bad):
    client = inngest.Inngest(app_id="app")
    with pytest.raises(TypeError, match="functions"):
        Simulation(client, functions=bad)


def test_a_worker_runs_only_the_listed_functions():
    client = inngest.Inngest(app_id="app")
    a, _b = _fn(client, "a"), _fn(client, "b")

    async def main() -> list[str]:
        async with inngest.Worker(client, functions=[a]) as worker:
            await client.send(ev("go"))
            for _ in range(500):  # bounded: at most ~5 s
                if client.runs(status="Completed"):
                    break
                await asyncio.sleep(0.01)
            await worker.stop()
        return [r.fn_id for r in client.runs()]

    assert asyncio.run(main()) == ["app-a"]


def test_a_worker_refuses_two_functions_with_one_id():
    client = inngest.Inngest(app_id="app")
    a, b = _fn(client, "same"), _fn(client, "same", event="other")

    async def main() -> None:
        async with inngest.Worker(client, functions=[a, b]):
            pass

    with pytest.raises(ValueError, match="'app-same'"):
        asyncio.run(main())
