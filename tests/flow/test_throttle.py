"""throttle: GCRA on run starts, tolerance (limit+burst-1)*T; runs over the limit wait FIFO
per key and start as the limiter allows; none is dropped (SPEC.md section 3)."""

from __future__ import annotations

import datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

import inngest_do as inngest
from inngest_do.testing import Simulation

from .harness import (
    FLOW,
    assert_outcomes,
    assert_runs,
    drive,
    ev,
    new_client,
    outcomes_for,
    rejects,
    rel_ms,
    simple_fn,
)
from .models import SECOND_MS, throttle_model
from .strategies import gaps, keyed, periods_s, seeds, streams

MIN = datetime.timedelta(minutes=1)
MIN_MS = 60 * SECOND_MS


def run_stream(stream, seed=0, idle=True, **throttle):
    client = new_client()
    fn = simple_fn(client, throttle=inngest.Throttle(**throttle))
    sim = Simulation(client, seed=seed)
    drive(sim, stream, idle=idle)
    return sim, fn


def starts(sim, fn):
    return sorted((r.event.data["seq"], rel_ms(sim, r.started_at)) for r in sim.runs(fn))


# ----------------------------------------------------------------------------------- examples


def test_default_burst_lets_limit_plus_one_through_then_one_per_interval():
    sim, fn = run_stream([(0, ev(i)) for i in range(5)], limit=1, period=MIN)
    assert starts(sim, fn) == [(0, 0), (1, 0), (2, MIN_MS), (3, 2 * MIN_MS), (4, 3 * MIN_MS)]
    assert [r.status for r in sim.runs(fn)] == ["Completed"] * 5


def test_burst_adds_to_the_limit():
    # limit 2 per minute (T = 30 s), burst 3: 5 start at once, then one each 30 s.
    sim, fn = run_stream([(0, ev(i)) for i in range(7)], limit=2, period=MIN, burst=3)
    assert starts(sim, fn) == [(0, 0), (1, 0), (2, 0), (3, 0), (4, 0), (5, 30_000),
                               (6, 60_000)]


def test_waiting_runs_are_queued_not_dropped():
    sim, fn = run_stream([(0, ev(i)) for i in range(4)], idle=False, limit=1, period=MIN)
    assert [r.status for r in sim.runs(fn)] == ["Completed", "Completed", "Queued", "Queued"]
    sim.advance(MIN)
    assert [r.status for r in sim.runs(fn)] == ["Completed", "Completed", "Completed",
                                                "Queued"]


def test_queued_runs_start_fifo():
    sim, fn = run_stream([(i * 1_000, ev(i)) for i in range(6)], limit=1, period=MIN)
    order = [seq for seq, _ in sorted(starts(sim, fn), key=lambda x: (x[1], x[0]))]
    assert order == [0, 1, 2, 3, 4, 5]


def test_each_key_has_its_own_limiter_and_queue():
    stream = [(0, ev(0, user="a")), (0, ev(1, user="a")), (0, ev(2, user="a")),
              (0, ev(3, user="b")), (0, ev(4, user="b"))]
    sim, fn = run_stream(stream, limit=1, period=MIN, key="event.data.user")
    assert starts(sim, fn) == [(0, 0), (1, 0), (2, MIN_MS), (3, 0), (4, 0)]


def test_fractional_interval_starts_on_the_next_millisecond():
    # 3 per second: T = 333.3 ms, tolerance 1000 ms: 4 at once, then at 334 and 667 ms.
    sim, fn = run_stream([(0, ev(i)) for i in range(6)], limit=3, period=SECOND_MS)
    assert starts(sim, fn) == [(0, 0), (1, 0), (2, 0), (3, 0), (4, 334), (5, 667)]


def test_throttled_events_show_the_run_they_wait_as():
    stream = [(0, ev(i)) for i in range(3)]
    sim, fn = run_stream(stream, limit=1, period=MIN)
    assert_outcomes(sim, fn, throttle_model(stream, limit=1, period_ms=MIN_MS),
                    also={"throttled": {"started"}})


def test_an_event_whose_run_waits_on_the_throttle_shows_throttled_meanwhile():
    # Issue 4: a delayed event is never lost silently; the outcome "throttled" (with the
    # run it waits as) says why its run has not started yet.
    sim, fn = run_stream([(0, ev(i)) for i in range(3)], idle=False, limit=1, period=MIN)
    waiting = sim.runs(fn)[2]
    assert waiting.status == "Queued"
    assert outcomes_for(sim, fn)[2] == [("throttled", waiting.id)]


# --------------------------------------------------------------------------------- validation


@pytest.mark.parametrize(("options", "match"), [
    (lambda: {"throttle": inngest.Throttle(limit=0, period=MIN)}, "throttle.limit"),
    (lambda: {"throttle": inngest.Throttle(limit=1, period=MIN, burst=-1)}, "throttle.burst"),
    (lambda: {"throttle": inngest.Throttle(limit=1, period=0)}, "throttle.period"),
    (lambda: {"throttle": inngest.Throttle(limit=1, period=-MIN)}, "throttle.period"),
    (lambda: {"throttle": inngest.Throttle(limit=1, period=999)}, "throttle.period"),
    (lambda: {"throttle": inngest.Throttle(limit=1, period=2_500)}, "throttle.period"),
    (lambda: {"throttle": inngest.Throttle(limit=1, period=MIN, key="event.data.(")},
     "throttle.key"),
    (lambda: {"throttle": inngest.Throttle(limit=1, period=MIN, key="ctx.user")},
     "throttle.key"),
    (lambda: {"throttle": inngest.Throttle(limit=1.5, period=MIN)}, "limit"),
    (lambda: {"throttle": 5}, "throttle"),
])
def test_invalid_throttle_is_rejected_naming_the_field(options, match):
    rejects(options, match)


# --------------------------------------------------------------------------------- properties


@FLOW
@given(data=st.data(), limit=st.integers(1, 12), burst=st.integers(0, 4), period_s=periods_s,
       keyed_=st.booleans(), seed=seeds)
def test_runs_match_the_model_and_none_is_dropped(data, limit, burst, period_s, keyed_, seed):
    period_ms = period_s * SECOND_MS
    stream = data.draw(streams(gaps(period_ms // limit), keyed("user")), label="stream")
    sim, fn = run_stream(stream, seed, limit=limit, period=period_ms, burst=burst,
                         key="event.data.user" if keyed_ else None)
    # none dropped: one Completed run per event, whatever the model says about times
    runs = sim.runs(fn)
    assert sorted(r.event.data["seq"] for r in runs) == list(range(len(stream))), \
        f"seed={seed}"
    assert {r.status for r in runs} <= {"Completed"}, f"seed={seed}"
    model = throttle_model(stream, limit=limit, period_ms=period_ms, burst=burst,
                           key="user" if keyed_ else None)
    assert_runs(sim, fn, model, ("status", "created_ms", "started_ms"))
