"""Triggers through the engine: exact event names, trailing wildcards, expression filters,
several triggers per function, and cron schedules on the virtual clock."""

from __future__ import annotations

import datetime

import pytest
from helpers import ev

import inngest_do as inngest
from inngest_do.testing import DEFAULT_START, Simulation

START = DEFAULT_START
UTC = datetime.timezone.utc
HOUR = 3_600_000
DAY = 24 * HOUR


def names_run(sim: Simulation, fn: inngest.Function) -> list[str]:
    return [r.event.name for r in sim.runs(fn)]


# ---------------------------------------------------------------------------------- event names


def test_exact_event_name(client):
    @client.create_function(fn_id="f", trigger=inngest.TriggerEvent(event="app/user.created"))
    async def f(ctx: inngest.Context):
        return ctx.event.data["id"]

    sim = Simulation(client)
    sim.send([ev("app/user.created", id=1), ev("app/user.deleted", id=2),
              ev("app/user.created.v2", id=3), ev("App/User.Created", id=4)])
    assert [r.output for r in sim.runs(f)] == [1]


@pytest.mark.parametrize("pattern,matching,other", [
    ("app/*", ["app/user.created", "app/x", "app/a/b"], ["apps/x", "other/app/x", "app"]),
    ("app/user.*", ["app/user.created", "app/user.deleted"], ["app/users", "app/user"]),
])
def test_trailing_wildcard(client, pattern, matching, other):
    @client.create_function(fn_id="f", trigger=inngest.TriggerEvent(event=pattern))
    async def f(ctx: inngest.Context):
        return ctx.event.name

    sim = Simulation(client)
    sim.send([ev(n) for n in other + matching])
    assert [r.output for r in sim.runs(f)] == matching


def test_expression_filter(client):
    @client.create_function(fn_id="big", trigger=inngest.TriggerEvent(
        event="order/created", expression="event.data.amount > 100 && event.data.currency == 'EUR'"))
    async def big(ctx: inngest.Context):
        return ctx.event.data["amount"]

    sim = Simulation(client)
    sim.send([ev("order/created", amount=50, currency="EUR"),
              ev("order/created", amount=500, currency="EUR"),
              ev("order/created", amount=500, currency="USD"),
              ev("order/created", amount=101, currency="EUR")])
    assert [r.output for r in sim.runs(big)] == [500, 101]


def test_expression_missing_field_does_not_match_or_crash(client):
    @client.create_function(fn_id="f", trigger=inngest.TriggerEvent(
        event="x", expression="event.data.flag == true"))
    async def f(ctx: inngest.Context):
        return "ran"

    sim = Simulation(client)
    sim.send([ev("x"), ev("x", flag=True), ev("x", flag="yes")])
    assert [r.event.data for r in sim.runs(f)] == [{"flag": True}]


def test_several_triggers_in_a_list(client):
    @client.create_function(fn_id="f", trigger=[
        inngest.TriggerEvent(event="user/signed_up"),
        inngest.TriggerEvent(event="user/invited", expression="event.data.accepted == true"),
        inngest.TriggerEvent(event="admin/*"),
    ])
    async def f(ctx: inngest.Context):
        return ctx.event.name

    sim = Simulation(client)
    sim.send([ev("user/signed_up"), ev("user/invited", accepted=False),
              ev("user/invited", accepted=True), ev("admin/reset"), ev("user/left")])
    assert [r.output for r in sim.runs(f)] == ["user/signed_up", "user/invited", "admin/reset"]


def test_overlapping_triggers_start_one_run_per_event(client):
    @client.create_function(fn_id="f", trigger=[inngest.TriggerEvent(event="app/*"),
                                                inngest.TriggerEvent(event="app/x")])
    async def f(ctx: inngest.Context):
        return ctx.event.name

    sim = Simulation(client)
    sim.send(ev("app/x"))
    assert len(sim.runs(f)) == 1


def test_one_event_triggers_every_matching_function(client):
    @client.create_function(fn_id="a", trigger=inngest.TriggerEvent(event="shop/order"))
    async def a(ctx: inngest.Context):
        return "a"

    @client.create_function(fn_id="b", trigger=inngest.TriggerEvent(event="shop/*"))
    def b(ctx: inngest.ContextSync):
        return "b"

    @client.create_function(fn_id="c", trigger=inngest.TriggerEvent(event="other"))
    async def c(ctx: inngest.Context):
        return "c"

    sim = Simulation(client)
    sim.send(ev("shop/order"))
    assert sorted(r.output for r in sim.runs()) == ["a", "b"]


def test_functions_created_after_the_simulation_started_are_triggered(client):
    sim = Simulation(client)

    @client.create_function(fn_id="late", trigger=inngest.TriggerEvent(event="go"))
    async def late(ctx: inngest.Context):
        return "late"

    sim.send(ev("go"))
    assert [r.output for r in sim.runs(late)] == ["late"]


def test_client_send_and_send_sync_return_ids(client):
    import asyncio

    @client.create_function(fn_id="f", trigger=inngest.TriggerEvent(event="go"))
    async def f(ctx: inngest.Context):
        return ctx.event.id

    sim = Simulation(client)
    ids = client.send_sync([ev("go"), ev("go")])
    ids += asyncio.run(client.send(ev("go")))
    sim.run_until_idle()
    assert len(ids) == 3 and len(set(ids)) == 3
    assert [r.output for r in sim.runs(f)] == ids


# ------------------------------------------------------------------------------------------ cron


def cron_fn(client: inngest.Inngest, cron: str, fn_id: str = "cron") -> inngest.Function:
    @client.create_function(fn_id=fn_id, trigger=inngest.TriggerCron(cron=cron))
    async def tick(ctx: inngest.Context):
        return {"name": ctx.event.name, "data": ctx.event.data}

    return tick


def test_hourly_cron_runs_at_each_hour(client):
    fn = cron_fn(client, "0 * * * *")
    sim = Simulation(client, start=datetime.datetime(2025, 1, 1, 0, 30, tzinfo=UTC))
    sim.advance(3 * HOUR)
    runs = sim.runs(fn)
    assert [r.created_at for r in runs] == [datetime.datetime(2025, 1, 1, h, tzinfo=UTC)
                                            for h in (1, 2, 3)]
    assert all(r.status == "Completed" for r in runs)
    first = runs[0].output
    assert first["name"] == "inngest/scheduled.timer"
    assert first["data"]["cron"] == "0 * * * *"
    scheduled = datetime.datetime.fromisoformat(first["data"]["scheduledAt"])
    assert scheduled == datetime.datetime(2025, 1, 1, 1, tzinfo=UTC)


def test_cron_does_not_fire_at_the_start_instant(client):
    fn = cron_fn(client, "0 * * * *")
    sim = Simulation(client)  # starts at 00:00 exactly
    sim.advance(HOUR - 1)
    assert sim.runs(fn) == []
    sim.advance(1)
    assert len(sim.runs(fn)) == 1


def test_daily_cron(client):
    fn = cron_fn(client, "30 6 * * *")
    sim = Simulation(client)
    sim.advance(7 * DAY)
    assert [r.created_at for r in sim.runs(fn)] == [
        datetime.datetime(2025, 1, d, 6, 30, tzinfo=UTC) for d in range(1, 8)]


def test_cron_descriptor(client):
    fn = cron_fn(client, "@daily")
    sim = Simulation(client, start=datetime.datetime(2025, 1, 1, 12, tzinfo=UTC))
    sim.advance(3 * DAY)
    assert [r.created_at.day for r in sim.runs(fn)] == [2, 3, 4]


def test_cron_with_a_time_zone_follows_dst(client):
    fn = cron_fn(client, "TZ=Europe/Paris 0 9 * * *")
    # Paris leaves CET (UTC+1) for CEST (UTC+2) on 2025-03-30
    sim = Simulation(client, start=datetime.datetime(2025, 3, 28, 12, tzinfo=UTC))
    sim.advance(4 * DAY)
    assert [r.created_at for r in sim.runs(fn)] == [
        datetime.datetime(2025, 3, 29, 8, tzinfo=UTC),
        datetime.datetime(2025, 3, 30, 7, tzinfo=UTC),
        datetime.datetime(2025, 3, 31, 7, tzinfo=UTC),
        datetime.datetime(2025, 4, 1, 7, tzinfo=UTC),
    ]
    data = sim.runs(fn)[0].output["data"]
    assert data["cron"] == "TZ=Europe/Paris 0 9 * * *"


def test_cron_tz_prefix_variant(client):
    fn = cron_fn(client, "CRON_TZ=America/New_York 0 12 * * *")
    sim = Simulation(client)
    sim.advance(2 * DAY)
    assert [r.created_at for r in sim.runs(fn)] == [  # noon in New York (UTC-5 in January)
        datetime.datetime(2025, 1, 1, 17, tzinfo=UTC),
        datetime.datetime(2025, 1, 2, 17, tzinfo=UTC)]


def test_cron_jitter_delays_each_tick_by_a_seeded_amount(client):
    @client.create_function(fn_id="j", trigger=inngest.TriggerCron(cron="0 * * * *",
                                                                    jitter="5m"))
    async def j(ctx: inngest.Context):
        return [ctx.event.data["scheduledAt"], ctx.event.data["fireAt"]]

    def fire_offsets(seed: int) -> list[int]:
        sim = Simulation(client, seed=seed)
        sim.advance(6 * HOUR)
        runs = sim.runs(j)
        assert len(runs) in (5, 6)  # the 6th tick may still be in its jitter
        out = []
        for r in runs:
            scheduled, fired = (datetime.datetime.fromisoformat(x) for x in r.output)
            assert scheduled.minute == 0 and r.created_at == fired
            delay = (fired - scheduled) / datetime.timedelta(milliseconds=1)
            assert 1_000 <= delay < 5 * 60_000
            out.append(delay)
        return out

    assert fire_offsets(1) == fire_offsets(1)
    assert fire_offsets(1) != fire_offsets(2)


def test_cron_and_event_triggers_together(client):
    @client.create_function(fn_id="both", trigger=[inngest.TriggerCron(cron="0 0 * * *"),
                                                   inngest.TriggerEvent(event="manual")])
    async def both(ctx: inngest.Context):
        return ctx.event.name

    sim = Simulation(client)
    sim.send(ev("manual"))
    sim.advance(DAY)
    assert [r.output for r in sim.runs(both)] == ["manual", "inngest/scheduled.timer"]


def test_run_until_idle_ignores_cron_schedules(client):
    fn = cron_fn(client, "* * * * *")
    sim = Simulation(client)
    sim.run_until_idle()
    assert sim.now == START
    assert sim.runs(fn) == []


def test_cron_runs_that_sleep_overlap(client):
    @client.create_function(fn_id="slow", trigger=inngest.TriggerCron(cron="0 * * * *"))
    async def slow(ctx: inngest.Context):
        await ctx.step.sleep("long", 90 * 60_000)
        return "ok"

    sim = Simulation(client)
    sim.advance(3 * HOUR)
    statuses = [r.status for r in sim.runs(slow)]
    assert statuses == ["Completed", "Sleeping", "Sleeping"]
