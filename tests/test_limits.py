"""The opt-in Inngest limits mode, and the default of no limits."""

from __future__ import annotations

import datetime

import pytest

import inngest_do as inngest
from inngest_do.testing import Simulation


def _client(limits: bool) -> inngest.Inngest:
    return inngest.Inngest(app_id="lim", inngest_limits=limits)


@pytest.mark.parametrize("limits", [False, True])
def test_step_count_limit_only_when_asked(limits: bool) -> None:
    client = _client(limits)

    @client.create_function(fn_id="many", trigger=inngest.TriggerEvent(event="go"), retries=0)
    async def many(ctx: inngest.Context) -> int:
        for i in range(1001):
            await ctx.step.run("s", lambda i=i: i)
        return 1001

    sim = Simulation(client)
    sim.send(inngest.Event(name="go"))
    (run,) = sim.runs()
    if limits:
        assert run.status == "Failed"
        assert run.error is not None and run.error.type == "InngestLimitError"
        assert "1,000 steps" in run.error.message and "s:1000" in run.error.message
    else:
        assert run.status == "Completed" and run.output == 1001


def test_step_output_limit() -> None:
    client = _client(True)

    @client.create_function(fn_id="big", trigger=inngest.TriggerEvent(event="go"), retries=0)
    async def big(ctx: inngest.Context) -> None:
        await ctx.step.run("huge", lambda: "x" * (4 * 1024 * 1024 + 1))

    sim = Simulation(client)
    sim.send(inngest.Event(name="go"))
    (run,) = sim.runs()
    assert run.status == "Failed"
    assert "4 MiB" in run.error.message and "huge" in run.error.message


def test_event_size_limit_rejects_before_storing() -> None:
    client = _client(True)
    sim = Simulation(client)
    with pytest.raises(ValueError, match="3 MiB"):
        sim.send(inngest.Event(name="big", data={"blob": "x" * (3 * 1024 * 1024)}))
    assert sim.events() == []


def test_sleep_longer_than_366_days() -> None:
    client = _client(True)

    @client.create_function(fn_id="nap", trigger=inngest.TriggerEvent(event="go"), retries=0)
    async def nap(ctx: inngest.Context) -> None:
        await ctx.step.sleep("long", datetime.timedelta(days=367))

    sim = Simulation(client)
    sim.send(inngest.Event(name="go"))
    (run,) = sim.runs()
    assert run.status == "Failed" and "366 days" in run.error.message
