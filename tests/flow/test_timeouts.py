"""timeouts: ``start`` runs from creation to the first execution (waiting on concurrency or
throttle included); ``finish`` from the first execution to the end, checked between steps;
either cancels the run: Cancelled, not Failed (SPEC.md section 3)."""

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
    busy_fn,
    drive,
    ev,
    new_client,
    rejects,
    rel_ms,
)
from .models import SECOND_MS, timeouts_model
from .strategies import gaps, seeds, streams

S = SECOND_MS
MIN = datetime.timedelta(minutes=1)
MIN_MS = 60 * S


def run_busy(stream, seed=0, **options):
    client = new_client()
    rec = Busy()
    fn = busy_fn(client, rec, **options)
    sim = rec.attach(Simulation(client, seed=seed))
    drive(sim, stream)
    return sim, fn, rec


# ----------------------------------------------------------------------------------- examples


def test_a_run_not_started_within_start_is_cancelled_then():
    stream = [(0, ev(0, ms=10 * MIN_MS)), (0, ev(1, ms=MIN_MS))]
    sim, fn, rec = run_busy(stream, concurrency=[inngest.Concurrency(limit=1)],
                            timeouts=inngest.Timeouts(start=MIN))
    first, second = sim.runs(fn)
    assert first.status == "Completed"
    assert second.status == "Cancelled"
    assert second.started_at is None
    assert rel_ms(sim, second.ended_at) == MIN_MS
    assert rec.bodies == {0: 1}


def test_a_run_started_within_start_is_not_cancelled():
    stream = [(0, ev(0, ms=30 * S)), (0, ev(1, ms=MIN_MS))]
    sim, fn, _ = run_busy(stream, concurrency=[inngest.Concurrency(limit=1)],
                          timeouts=inngest.Timeouts(start=MIN))
    assert [r.status for r in sim.runs(fn)] == ["Completed", "Completed"]
    assert rel_ms(sim, sim.runs(fn)[1].started_at) == 30 * S


def test_start_includes_waiting_on_a_throttle():
    stream = [(0, ev(i, ms=S)) for i in range(3)]
    sim, fn, _ = run_busy(stream, throttle=inngest.Throttle(limit=1, period=60 * MIN),
                          timeouts=inngest.Timeouts(start=10 * MIN))
    assert [r.status for r in sim.runs(fn)] == ["Completed", "Completed", "Cancelled"]


def test_a_run_not_finished_within_finish_is_cancelled_between_steps():
    client = new_client()
    rec = Busy()

    @client.create_function(fn_id="f", trigger=inngest.TriggerEvent(event=TRIGGER),
                            timeouts=inngest.Timeouts(finish=30 * MIN))
    async def fn(ctx: inngest.Context) -> str:
        await ctx.step.run("before", rec.body("before", MIN_MS))
        await ctx.step.sleep("nap", datetime.timedelta(hours=1))
        await ctx.step.run("after", rec.body("after", MIN_MS))
        return "done"

    sim = rec.attach(Simulation(client))
    drive(sim, [(0, ev(0))])
    [run] = sim.runs(fn)
    assert run.status == "Cancelled"
    assert rec.bodies == {"before": 1}
    assert "before" in run.steps
    assert rel_ms(sim, run.ended_at) <= 61 * MIN_MS


def test_a_run_that_finishes_in_time_completes():
    stream = [(0, ev(0, ms=MIN_MS, steps=3))]
    sim, fn, _ = run_busy(stream, timeouts=inngest.Timeouts(finish=5 * MIN))
    assert [r.status for r in sim.runs(fn)] == ["Completed"]


def test_finish_counts_from_the_first_execution_not_from_creation():
    stream = [(0, ev(0, ms=10 * MIN_MS)), (0, ev(1, ms=MIN_MS))]
    sim, fn, _ = run_busy(stream, concurrency=[inngest.Concurrency(limit=1)],
                          timeouts=inngest.Timeouts(finish=5 * MIN))
    first, second = sim.runs(fn)
    assert first.status == "Cancelled"  # 10 min step, 5 min allowed
    assert second.status == "Completed"  # waited 10 min, then ran 1 min


def test_a_run_cancelled_by_finish_keeps_its_slot_until_its_step_in_flight_ends():
    # "checked between steps": the first run's 10 min step is executing past its 5 min
    # deadline, so with limit 1 the second run's step cannot execute before it ends.
    stream = [(0, ev(0, ms=10 * MIN_MS)), (0, ev(1, ms=MIN_MS))]
    sim, fn, rec = run_busy(stream, concurrency=[inngest.Concurrency(limit=1)],
                            timeouts=inngest.Timeouts(finish=5 * MIN))
    assert rel_ms(sim, sim.runs(fn)[1].started_at) == 10 * MIN_MS
    assert rec.max_overlap(lambda _: "all") == {"all": 1}


def test_a_step_in_flight_at_the_finish_deadline_completes_its_body_and_the_run_stops():
    stream = [(0, ev(0, ms=10 * S, steps=5))]
    sim, fn, rec = run_busy(stream, timeouts=inngest.Timeouts(finish=25 * S))
    [run] = sim.runs(fn)
    assert run.status == "Cancelled"
    assert rec.bodies == {0: 3}  # steps end at 10, 20, 30 s: the third is in flight at 25 s


# --------------------------------------------------------------------------------- validation


@pytest.mark.parametrize(("options", "match"), [
    (lambda: {"timeouts": inngest.Timeouts(start=0)}, "timeouts.start"),
    (lambda: {"timeouts": inngest.Timeouts(finish=-MIN)}, "timeouts.finish"),
    (lambda: {"timeouts": inngest.Timeouts(start=500)}, "timeouts.start"),
    (lambda: {"timeouts": inngest.Timeouts(start=MIN, finish=1_500)}, "timeouts.finish"),
    (lambda: {"timeouts": inngest.Timeouts(start="1m")}, "start"),
    (lambda: {"timeouts": 60_000}, "timeouts"),
])
def test_invalid_timeouts_are_rejected_naming_the_field(options, match):
    rejects(options, match)


# --------------------------------------------------------------------------------- properties


@FLOW
@given(data=st.data(), start_s=st.none() | st.integers(1, 600),
       finish_s=st.none() | st.integers(1, 600), limited=st.booleans(), seed=seeds)
def test_runs_match_the_model(data, start_s, finish_s, limited, seed):
    # Events on whole seconds, steps of k s + 333 ms: no step end meets a deadline, so the
    # model needs no tie-breaking the spec does not give.
    fields = {"steps": st.integers(1, 4),
              "ms": st.integers(0, 120).map(lambda s: s * S + 333)}
    stream = data.draw(streams(gaps(60 * S), st.fixed_dictionaries(fields), grid_ms=S,
                               max_events=15), label="stream")
    options = {"timeouts": inngest.Timeouts(start=start_s and start_s * S,
                                            finish=finish_s and finish_s * S)}
    if limited:
        options["concurrency"] = [inngest.Concurrency(limit=1)]
    sim, fn, rec = run_busy(stream, seed, **options)
    model = timeouts_model(stream, start_ms=start_s and start_s * S,
                           finish_ms=finish_s and finish_s * S, limit=1 if limited else None)
    assert_runs(sim, fn, model, ("status", "created_ms", "started_ms", "steps"),
                steps=rec.bodies)
