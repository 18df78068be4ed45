"""cancel: an event received after the run was created, matching ``event`` and ``if_exp``,
within ``timeout`` of the run's creation, cancels it between steps; a step in flight
finishes but its result is dropped; status Cancelled; ``inngest/function.cancelled`` is
emitted (SPEC.md section 3)."""

from __future__ import annotations

import datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

import inngest_do as inngest
from inngest_do.testing import Simulation

from .harness import (
    FLOW,
    TRIGGER,
    Busy,
    assert_runs,
    drive,
    ev,
    new_client,
    rejects,
    rel_ms,
    sleepy_fn,
)
from .models import DAY_MS, HOUR_MS, SECOND_MS, cancel_model
from .strategies import merge, seeds, streams

S = SECOND_MS
HOUR = datetime.timedelta(hours=1)
STOP = "flow/stop"
MATCH = "event.data.o == async.data.o"


def stepped_fn(client, **options):
    """A step, a one-day sleep, a step."""

    @client.create_function(fn_id="f", trigger=inngest.TriggerEvent(event=TRIGGER), **options)
    async def fn(ctx: inngest.Context) -> str:
        await ctx.step.run("before", lambda: "b")
        await ctx.step.sleep("nap", datetime.timedelta(days=1))
        await ctx.step.run("after", lambda: "a")
        return "done"

    return fn


def run_one(stream, **options):
    client = new_client()
    fn = stepped_fn(client, **options)
    sim = Simulation(client)
    drive(sim, stream)
    return sim, fn


# ----------------------------------------------------------------------------------- examples


def test_a_matching_event_cancels_a_sleeping_run_and_keeps_its_recorded_steps():
    sim, fn = run_one([(0, ev(0, o=1)), (HOUR_MS, ev(1, STOP, o=1))],
                      cancel=[inngest.Cancel(event=STOP, if_exp=MATCH)])
    [run] = sim.runs(fn)
    assert run.status == "Cancelled"
    assert rel_ms(sim, run.ended_at) == HOUR_MS
    assert "before" in run.steps
    assert "after" not in run.steps


def test_an_event_that_does_not_match_if_exp_cancels_nothing():
    sim, fn = run_one([(0, ev(0, o=1)), (HOUR_MS, ev(1, STOP, o=2))],
                      cancel=[inngest.Cancel(event=STOP, if_exp=MATCH)])
    [run] = sim.runs(fn)
    assert run.status == "Completed"
    assert run.output == "done"


def test_without_if_exp_any_event_of_that_name_cancels():
    sim, fn = run_one([(0, ev(0, o=1)), (0, ev(1, o=2)), (HOUR_MS, ev(2, STOP, o=3))],
                      cancel=[inngest.Cancel(event=STOP)])
    assert [r.status for r in sim.runs(fn)] == ["Cancelled", "Cancelled"]


def test_an_event_received_before_the_run_was_created_cancels_nothing():
    sim, fn = run_one([(0, ev(0, STOP, o=1)), (1, ev(1, o=1))],
                      cancel=[inngest.Cancel(event=STOP, if_exp=MATCH)])
    assert [r.status for r in sim.runs(fn)] == ["Completed"]


def test_timeout_bounds_the_window_from_the_runs_creation():
    cancel = [inngest.Cancel(event=STOP, timeout=HOUR)]
    sim, fn = run_one([(0, ev(0)), (2 * HOUR_MS, ev(1, STOP))], cancel=cancel)
    assert [r.status for r in sim.runs(fn)] == ["Completed"]
    sim, fn = run_one([(0, ev(0)), (HOUR_MS // 2, ev(1, STOP))], cancel=cancel)
    assert [r.status for r in sim.runs(fn)] == ["Cancelled"]


@pytest.mark.parametrize(("after_days", "status"), [(300, "Cancelled"), (400, "Completed")])
def test_the_default_timeout_is_one_year(after_days, status):
    client = new_client()
    fn = sleepy_fn(client, cancel=[inngest.Cancel(event=STOP)])
    sim = Simulation(client)
    drive(sim, [(0, ev(0, ms=500 * DAY_MS)), (after_days * DAY_MS, ev(1, STOP))])
    assert [str(r.status) for r in sim.runs(fn)] == [status]


def test_any_of_several_cancel_events_cancels():
    cancel = [inngest.Cancel(event="flow/stop-a"), inngest.Cancel(event="flow/stop-b")]
    sim, fn = run_one([(0, ev(0)), (0, ev(1)), (S, ev(2, "flow/stop-b"))], cancel=cancel)
    assert [r.status for r in sim.runs(fn)] == ["Cancelled", "Cancelled"]


def test_a_step_in_flight_finishes_but_its_result_is_dropped():
    client = new_client()
    rec = Busy()

    @client.create_function(fn_id="f", trigger=inngest.TriggerEvent(event=TRIGGER),
                            cancel=[inngest.Cancel(event=STOP)])
    async def fn(ctx: inngest.Context) -> str:
        await ctx.step.run("first", lambda: 1)
        await ctx.step.run("slow", rec.body("slow", 600 * S))
        await ctx.step.run("next", rec.body("next", S))
        return "done"

    sim = rec.attach(Simulation(client))
    drive(sim, [(0, ev(0)), (300 * S, ev(1, STOP))])
    [run] = sim.runs(fn)
    assert run.status == "Cancelled"
    assert rec.bodies == {"slow": 1}  # it ran, once; the next step never did
    assert "first" in run.steps
    assert "slow" not in run.steps
    assert rel_ms(sim, run.ended_at) >= 300 * S


def test_a_cancelled_run_keeps_its_slot_until_its_step_in_flight_ends():
    # The cancelled run's step goes on executing (its result is dropped), so under
    # Concurrency(limit=1) the next run's step waits for it.
    client = new_client()
    rec = Busy()

    @client.create_function(fn_id="f", trigger=inngest.TriggerEvent(event=TRIGGER),
                            concurrency=[inngest.Concurrency(limit=1)],
                            cancel=[inngest.Cancel(event=STOP, if_exp=MATCH)])
    async def fn(ctx: inngest.Context) -> int:
        await ctx.step.run("work", rec.body(ctx.event.data["o"], 600 * S))
        return ctx.event.data["o"]

    sim = rec.attach(Simulation(client))
    drive(sim, [(0, ev(0, o=1)), (0, ev(1, o=2)), (300 * S, ev(2, STOP, o=1))])
    first, second = sim.runs(fn)
    assert first.status == "Cancelled"
    assert second.status == "Completed"
    assert rel_ms(sim, second.started_at) == 600 * S
    assert rec.max_overlap(lambda _: "all") == {"all": 1}


def test_a_queued_run_is_cancelled_before_it_starts():
    client = new_client()
    rec = Busy()

    @client.create_function(fn_id="f", trigger=inngest.TriggerEvent(event=TRIGGER),
                            concurrency=[inngest.Concurrency(limit=1)],
                            cancel=[inngest.Cancel(event=STOP, if_exp=MATCH)])
    async def fn(ctx: inngest.Context) -> int:
        await ctx.step.run("work", rec.body(ctx.event.data["o"], 600 * S))
        return ctx.event.data["o"]

    sim = rec.attach(Simulation(client))
    drive(sim, [(0, ev(0, o=1)), (0, ev(1, o=2)), (S, ev(2, STOP, o=2))])
    first, second = sim.runs(fn)
    assert first.status == "Completed"
    assert second.status == "Cancelled"
    assert second.started_at is None
    assert rec.bodies == {1: 1}


def test_cancelling_emits_function_cancelled():
    client = new_client()
    fn = stepped_fn(client, cancel=[inngest.Cancel(event=STOP)])
    heard = []

    @client.create_function(fn_id="listener",
                            trigger=inngest.TriggerEvent(event="inngest/function.cancelled"))
    async def listener(ctx: inngest.Context) -> None:
        heard.append(dict(ctx.event.data))

    sim = Simulation(client)
    drive(sim, [(0, ev(0)), (HOUR_MS, ev(1, STOP))])
    [run] = sim.runs(fn)
    assert run.status == "Cancelled"
    assert len(heard) == 1
    assert heard[0].get("run_id") == run.id
    assert heard[0].get("function_id") in (fn.id, fn.local_id)
    assert [r.status for r in sim.runs(listener)] == ["Completed"]


# --------------------------------------------------------------------------------- validation


@pytest.mark.parametrize(("options", "match"), [
    (lambda: {"cancel": [inngest.Cancel(event=f"flow/stop-{i}") for i in range(6)]}, "cancel"),
    (lambda: {"cancel": [inngest.Cancel(event="")]}, "cancel[0].event"),
    (lambda: {"cancel": [inngest.Cancel(event=STOP),
                         inngest.Cancel(event=STOP, if_exp="async.data.o ==")]},
     "cancel[1].if_exp"),
    (lambda: {"cancel": [inngest.Cancel(event=STOP, if_exp="other.data.o == 1")]},
     "cancel[0].if_exp"),
    (lambda: {"cancel": [inngest.Cancel(event=STOP, timeout=0)]}, "cancel[0].timeout"),
    (lambda: {"cancel": [inngest.Cancel(event=STOP, timeout=-HOUR)]}, "cancel[0].timeout"),
    (lambda: {"cancel": [inngest.Cancel(event=STOP, timeout=1_500)]}, "cancel[0].timeout"),
    (lambda: {"cancel": [inngest.Cancel(event=5)]}, "event"),
    (lambda: {"cancel": "flow/stop"}, "cancel"),
])
def test_invalid_cancel_is_rejected_naming_the_field(options, match):
    rejects(options, match)


# --------------------------------------------------------------------------------- properties


@FLOW
@given(data=st.data(), timeout_s=st.none() | st.integers(1, 4 * 3600), matched=st.booleans(),
       seed=seeds)
def test_runs_match_the_model(data, timeout_s, matched, seed):
    # Runs are created on whole seconds and sleep whole seconds; cancel events come on
    # half seconds, so none coincides with a run's end or its timeout: the model needs no
    # tie-breaking the spec does not give.
    gap = st.integers(0, 1_800).map(lambda s: s * S) | st.integers(0, 4 * HOUR_MS)
    runs_ = data.draw(streams(gap, st.fixed_dictionaries({
        "o": st.sampled_from([1, 2]),
        "ms": st.integers(1, 8 * 3600).map(lambda s: s * S)}), grid_ms=S, max_events=15),
        label="runs")
    stops = data.draw(streams(gap | st.integers(0, 2 * DAY_MS),
                              st.fixed_dictionaries({"o": st.sampled_from([1, 2])}),
                              name=STOP, grid_ms=S, offset_ms=S // 2, max_events=10),
                      label="cancels")
    stream = merge(runs_, stops)
    client = new_client()
    fn = sleepy_fn(client, cancel=[inngest.Cancel(
        event=STOP, if_exp=MATCH if matched else None,
        timeout=None if timeout_s is None else timeout_s * S)])
    sim = Simulation(client, seed=seed)
    drive(sim, stream)
    model = cancel_model(stream, trigger=TRIGGER, cancel_event=STOP,
                         timeout_ms=None if timeout_s is None else timeout_s * S,
                         match="o" if matched else None)
    assert_runs(sim, fn, model, ("status", "created_ms", "started_ms", "ended_ms"))
