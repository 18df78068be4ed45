"""Simulation fault injection and the event-outcome query."""

from __future__ import annotations

import datetime

import pytest

import inngest_do as inngest
from inngest_do.testing import Simulation


def _app() -> tuple[inngest.Inngest, list[int]]:
    client = inngest.Inngest(app_id="faults")
    bodies: list[int] = []

    @client.create_function(fn_id="f", trigger=inngest.TriggerEvent(event="go"), retries=3)
    async def f(ctx: inngest.Context) -> int:
        value = await ctx.step.run("a", lambda: bodies.append(1) or len(bodies))
        await ctx.step.sleep("nap", datetime.timedelta(minutes=1))
        return value

    return client, bodies


def test_fail_step_makes_attempts_fail_then_retries() -> None:
    client, bodies = _app()
    sim = Simulation(client, seed=3)
    sim.fail_step("a", times=2)
    sim.send(inngest.Event(name="go"))
    sim.run_until_idle()
    (run,) = sim.runs()
    assert run.status == "Completed" and run.output == 1
    assert run.attempts == 3
    assert bodies == [1]  # the injected failures struck before the body ran
    failed = [e for e in run.history if e.kind == "step.failed"]
    assert [e.detail["attempt"] for e in failed] == [1, 2]


def test_fail_step_beyond_retries_fails_the_step() -> None:
    client, _ = _app()
    sim = Simulation(client)
    sim.fail_step("a", times=10, error=ValueError("db down"))
    sim.send(inngest.Event(name="go"))
    sim.run_until_idle()
    (run,) = sim.runs()
    assert run.status == "Failed"
    assert run.error.type == "ValueError" and run.error.message == "db down"


def test_fail_step_validates_arguments() -> None:
    client, _ = _app()
    sim = Simulation(client)
    with pytest.raises(ValueError, match="times"):
        sim.fail_step("a", times=0)
    with pytest.raises(TypeError, match="step_id"):
        sim.fail_step("", times=1)


def test_duplicate_delivery_with_and_without_event_id() -> None:
    client, _ = _app()
    sim = Simulation(client)
    sim.send(inngest.Event(name="go", id="order-1"), duplicate=True)
    sim.send(inngest.Event(name="go"), duplicate=True)
    sim.run_until_idle()
    assert len(sim.runs()) == 3
    outcomes = [o.outcome for rec in sim.events("go") for o in rec.outcomes]
    assert outcomes == ["started", "deduplicated", "started", "started"]


def test_spurious_wakeups_run_nothing_twice() -> None:
    client, bodies = _app()
    sim = Simulation(client)
    sim.send([inngest.Event(name="go") for _ in range(3)])
    assert sim.wake_all() == 3
    assert all(r.status == "Sleeping" for r in sim.runs())
    sim.run_until_idle()
    assert bodies == [1, 1, 1]
    assert [r.output for r in sim.runs()] == [1, 2, 3]


def test_crash_recovers_from_the_store_and_runs_nothing_twice() -> None:
    client, bodies = _app()
    sim = Simulation(client, seed=9)
    sim.send([inngest.Event(name="go") for _ in range(2)])
    sim.crash()
    assert all(r.status == "Sleeping" for r in sim.runs())
    sim.run_until_idle()
    assert [r.status for r in sim.runs()] == ["Completed", "Completed"]
    assert bodies == [1, 1]


def test_every_matching_event_has_an_outcome() -> None:
    client = inngest.Inngest(app_id="outcomes")

    @client.create_function(
        fn_id="limited", trigger=inngest.TriggerEvent(event="hit"),
        rate_limit=inngest.RateLimit(limit=1, period=datetime.timedelta(hours=1)))
    async def limited(ctx: inngest.Context) -> None:
        return None

    sim = Simulation(client)
    sim.send([inngest.Event(name="hit"), inngest.Event(name="hit"), inngest.Event(name="miss")])
    records = sim.events()
    assert [r.name for r in records] == ["hit", "hit", "miss"]
    assert [[o.outcome for o in r.outcomes] for r in records] == [
        ["started"], ["rate_limited"], []]
    assert records[0].outcomes[0].run_id == sim.runs()[0].id


def test_two_matching_triggers_start_one_run() -> None:
    client = inngest.Inngest(app_id="dup")

    @client.create_function(
        fn_id="f",
        trigger=[inngest.TriggerEvent(event="app/*"), inngest.TriggerEvent(event="app/user.created")])
    async def f(ctx: inngest.Context) -> str:
        return ctx.event.name

    sim = Simulation(client)
    sim.send(inngest.Event(name="app/user.created"))
    assert [r.output for r in sim.runs()] == ["app/user.created"]


def test_a_cron_function_created_after_the_simulation_still_ticks() -> None:
    client = inngest.Inngest(app_id="late")
    sim = Simulation(client)

    @client.create_function(fn_id="tick", trigger=inngest.TriggerCron(cron="0 * * * *"))
    async def tick(ctx: inngest.Context) -> str:
        return ctx.event.name

    sim.advance(datetime.timedelta(hours=3))
    assert [r.output for r in sim.runs(tick)] == ["inngest/scheduled.timer"] * 3


def test_cron_ticks_missed_while_down_fire_late_in_order(tmp_path) -> None:
    client = inngest.Inngest(app_id="down")

    @client.create_function(fn_id="hourly", trigger=inngest.TriggerCron(cron="0 * * * *"))
    async def hourly(ctx: inngest.Context) -> str:
        return ctx.event.data["scheduledAt"]

    sim = Simulation(client, store=str(tmp_path / "down.db"))
    sim.advance(datetime.timedelta(minutes=30))
    sim.clock.advance_by(3 * 3_600_000)  # the process is down for three hours: nothing runs
    sim.crash()  # ... and comes back
    sim.advance(0)
    runs = sim.runs(hourly)
    assert [r.output[11:16] for r in runs] == ["01:00", "02:00", "03:00"]
    assert all(r.started_at == sim.now for r in runs)  # late, at restart, in order


def test_a_sleep_that_ended_while_down_fires_at_once_after_restart(tmp_path) -> None:
    client, bodies = _app()
    sim = Simulation(client, store=str(tmp_path / "nap.db"))
    sim.send(inngest.Event(name="go"))
    sim.clock.advance_by(3_600_000)  # down for an hour; the one-minute nap ended meanwhile
    sim.crash()
    restarted = sim.now
    sim.advance(0)
    (run,) = sim.runs()
    assert run.status == "Completed" and run.ended_at == restarted
    assert bodies == [1]
