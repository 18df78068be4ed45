"""singleton: per key, a run holds the lock from being queued until it ends (queued,
running, sleeping, waiting, retrying); ``skip`` records a new run as Skipped, ``cancel``
cancels the live run and starts the new one (SPEC.md section 3)."""

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
    assert_outcomes,
    assert_runs,
    busy_fn,
    drive,
    ev,
    new_client,
    rejects,
    rel_ms,
    sleepy_fn,
)
from .models import HOUR_MS, SECOND_MS, singleton_model
from .strategies import gaps, seeds, streams

S = SECOND_MS
MIN_MS = 60 * S


def run_stream(stream, seed=0, **singleton):
    client = new_client()
    fn = sleepy_fn(client, singleton=inngest.Singleton(**singleton))
    sim = Simulation(client, seed=seed)
    drive(sim, stream)
    return sim, fn


def summary(sim, fn):
    return [(r.event.data["seq"], str(r.status), rel_ms(sim, r.ended_at)) for r in sim.runs(fn)]


def test_skip_records_a_new_run_as_skipped_while_one_is_live():
    stream = [(0, ev(0, ms=HOUR_MS)), (MIN_MS, ev(1, ms=HOUR_MS)),
              (2 * HOUR_MS, ev(2, ms=MIN_MS))]
    sim, fn = run_stream(stream, mode="skip")
    assert summary(sim, fn) == [(0, "Completed", HOUR_MS), (1, "Skipped", MIN_MS),
                                (2, "Completed", 2 * HOUR_MS + MIN_MS)]
    skipped = sim.runs(fn)[1]
    assert skipped.started_at is None
    assert skipped.reason


def test_cancel_cancels_the_live_run_and_starts_the_new_one():
    stream = [(0, ev(0, ms=HOUR_MS)), (MIN_MS, ev(1, ms=HOUR_MS))]
    sim, fn = run_stream(stream, mode="cancel")
    assert summary(sim, fn) == [(0, "Cancelled", MIN_MS), (1, "Completed", HOUR_MS + MIN_MS)]
    assert rel_ms(sim, sim.runs(fn)[1].started_at) == MIN_MS


def test_mode_defaults_to_skip():
    stream = [(0, ev(0, ms=HOUR_MS)), (MIN_MS, ev(1, ms=HOUR_MS))]
    sim, fn = run_stream(stream)
    assert [str(r.status) for r in sim.runs(fn)] == ["Completed", "Skipped"]


def test_each_key_has_its_own_lock():
    stream = [(0, ev(0, user="a", ms=HOUR_MS)), (1, ev(1, user="b", ms=HOUR_MS)),
              (2, ev(2, user="a", ms=HOUR_MS))]
    sim, fn = run_stream(stream, mode="skip", key="event.data.user")
    assert [str(r.status) for r in sim.runs(fn)] == ["Completed", "Completed", "Skipped"]


def test_a_queued_run_holds_the_lock():
    client = new_client()
    rec = Busy()
    fn = busy_fn(client, rec, concurrency=[inngest.Concurrency(limit=1)],
                 singleton=inngest.Singleton(key="event.data.user", mode="skip"))
    sim = rec.attach(Simulation(client))
    drive(sim, [(0, ev(0, user="a", ms=10 * MIN_MS)), (0, ev(1, user="b", ms=MIN_MS)),
                (MIN_MS, ev(2, user="b", ms=MIN_MS))])
    assert [str(r.status) for r in sim.runs(fn)] == ["Completed", "Completed", "Skipped"]


def test_a_retrying_run_holds_the_lock():
    client = new_client()
    attempts = []

    @client.create_function(fn_id="f", trigger=inngest.TriggerEvent(event=TRIGGER),
                            singleton=inngest.Singleton(mode="skip"))
    async def fn(ctx: inngest.Context) -> str:
        def flaky() -> str:
            attempts.append(ctx.attempt)
            if ctx.attempt == 0:
                raise RuntimeError("first attempt fails")
            return "ok"

        return await ctx.step.run("flaky", flaky)

    sim = Simulation(client)
    drive(sim, [(0, ev(0)), (5 * S, ev(1))])
    assert [str(r.status) for r in sim.runs(fn)] == ["Completed", "Skipped"]
    assert attempts == [0, 1]


def test_the_skipped_event_names_its_skipped_run():
    stream = [(0, ev(0, ms=HOUR_MS)), (MIN_MS, ev(1, ms=HOUR_MS))]
    sim, fn = run_stream(stream, mode="skip")
    assert_outcomes(sim, fn, singleton_model(stream, mode="skip"))


@pytest.mark.parametrize(("options", "match"), [
    (lambda: {"singleton": inngest.Singleton(mode="queue")}, "mode"),
    (lambda: {"singleton": inngest.Singleton(key="event.data.(", mode="skip")},
     "singleton.key"),
    (lambda: {"singleton": inngest.Singleton(key="run.id", mode="cancel")}, "singleton.key"),
    (lambda: {"singleton": inngest.Singleton(key="", mode="skip")}, "singleton.key"),
    (lambda: {"singleton": "skip"}, "singleton"),
])
def test_invalid_singleton_is_rejected_naming_the_field(options, match):
    rejects(options, match)


@FLOW
@given(data=st.data(), mode=st.sampled_from(["skip", "cancel"]), keyed_=st.booleans(),
       seed=seeds)
def test_runs_match_the_model(data, mode, keyed_, seed):
    # Short sleeps and whole-second gaps make an event land exactly as a run ends, where
    # the run ends first (it is due by then).
    seconds = st.integers(1, 30).map(lambda s: s * S)
    fields = {"user": st.sampled_from("ab"),
              "ms": seconds | st.integers(1, 7_200).map(lambda s: s * S)}
    gap = seconds | st.just(0) | gaps(HOUR_MS)
    stream = data.draw(streams(gap, st.fixed_dictionaries(fields)), label="stream")
    sim, fn = run_stream(stream, seed, mode=mode, key="event.data.user" if keyed_ else None)
    model = singleton_model(stream, mode=mode, key="user" if keyed_ else None)
    assert_runs(sim, fn, model, ("status", "created_ms", "started_ms", "ended_ms"))


def test_sleeping_and_waiting_runs_hold_the_lock():
    client = new_client()

    @client.create_function(fn_id="f", trigger=inngest.TriggerEvent(event=TRIGGER),
                            singleton=inngest.Singleton(mode="skip"))
    async def fn(ctx: inngest.Context) -> None:
        await ctx.step.wait_for_event("w", event="flow/never",
                                      timeout=datetime.timedelta(hours=1))

    sim = Simulation(client)
    drive(sim, [(0, ev(0)), (MIN_MS, ev(1)), (HOUR_MS, ev(2))])
    assert [str(r.status) for r in sim.runs(fn)] == ["Completed", "Skipped", "Completed"]
