"""rate_limit: GCRA per key with a hidden burst of floor(limit/10); events over the limit
start no run, stay stored and show as rate-limited (SPEC.md section 3)."""

from __future__ import annotations

import datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

import inngest_do as inngest
from inngest_do.testing import Simulation

from .harness import FLOW, assert_outcomes, assert_runs, drive, ev, new_client, rejects, simple_fn
from .models import HOUR_MS, SECOND_MS, rate_limit_model
from .strategies import gaps, keyed, periods_s, seeds, streams

HOUR = datetime.timedelta(hours=1)
MIN_MS = 60 * SECOND_MS


def started_seqs(sim, fn):
    return [r.event.data["seq"] for r in sim.runs(fn) if r.status != "Skipped"]


def run_stream(stream, seed=0, **rate_limit):
    client = new_client()
    fn = simple_fn(client, rate_limit=inngest.RateLimit(**rate_limit))
    sim = Simulation(client, seed=seed)
    drive(sim, stream)
    return sim, fn


# ----------------------------------------------------------------------------------- examples


def test_one_per_hour_three_events_in_a_minute_start_one_run():
    stream = [(0, ev(0)), (20 * SECOND_MS, ev(1)), (40 * SECOND_MS, ev(2))]
    sim, fn = run_stream(stream, limit=1, period=HOUR)
    assert started_seqs(sim, fn) == [0]
    assert [r.status for r in sim.runs(fn) if r.status != "Skipped"] == ["Completed"]


def test_next_run_is_admitted_once_the_period_has_passed():
    stream = [(0, ev(0)), (30 * MIN_MS, ev(1)), (HOUR_MS - 1, ev(2)), (HOUR_MS, ev(3)),
              (HOUR_MS + 1, ev(4))]
    sim, fn = run_stream(stream, limit=1, period=HOUR)
    assert started_seqs(sim, fn) == [0, 3]


def test_a_key_per_user_limits_each_user_apart():
    stream = [(0, ev(0, user="u1")), (1, ev(1, user="u2")), (2, ev(2, user="u1")),
              (3, ev(3, user="u3")), (4, ev(4, user="u2"))]
    sim, fn = run_stream(stream, limit=1, period=HOUR, key="event.data.user")
    assert started_seqs(sim, fn) == [0, 1, 3]


def test_hidden_burst_is_a_tenth_of_the_limit():
    # 20 per minute: T = 3 s, burst 2, so 3 start at once, then one each 3 s.
    stream = [(0, ev(i)) for i in range(5)] + [(2_999, ev(5)), (3_000, ev(6)),
                                               (3_000, ev(7))]
    sim, fn = run_stream(stream, limit=20, period=datetime.timedelta(minutes=1))
    assert started_seqs(sim, fn) == [0, 1, 2, 6]


def test_limits_below_ten_have_no_burst():
    stream = [(0, ev(i)) for i in range(3)] + [(20 * SECOND_MS, ev(3))]
    sim, fn = run_stream(stream, limit=3, period=datetime.timedelta(minutes=1))
    assert started_seqs(sim, fn) == [0, 3]


def test_a_key_that_evaluates_to_false_is_not_limited():
    stream = [(0, ev(i, user=False)) for i in range(3)] + [
        (0, ev(3 + i, user="a")) for i in range(3)]
    sim, fn = run_stream(stream, limit=1, period=HOUR, key="event.data.user")
    assert started_seqs(sim, fn) == [0, 1, 2, 3]


def test_period_as_int_ms_equals_timedelta():
    stream = [(i * 10 * MIN_MS, ev(i)) for i in range(10)]
    sim_ms, fn_ms = run_stream(stream, limit=2, period=HOUR_MS)
    sim_td, fn_td = run_stream(stream, limit=2, period=HOUR)
    assert started_seqs(sim_ms, fn_ms) == started_seqs(sim_td, fn_td) == [0, 3, 6, 9]


def test_rate_limited_events_are_stored_and_shown_as_rate_limited():
    stream = [(0, ev(0)), (1, ev(1)), (2, ev(2))]
    sim, fn = run_stream(stream, limit=1, period=HOUR)
    records = [r for r in sim.events() if r.name == "flow/ev"]
    assert [r.data["seq"] for r in records] == [0, 1, 2]
    assert_outcomes(sim, fn, rate_limit_model(stream, limit=1, period_ms=HOUR_MS))
    # A rate-limited event starts no run: at most a Skipped record, never started.
    assert all(r.started_at is None for r in sim.runs(fn) if r.event.data["seq"] != 0)


def test_limit_is_per_function():
    client = new_client()
    f = simple_fn(client, "f", rate_limit=inngest.RateLimit(limit=1, period=HOUR))
    g = simple_fn(client, "g", rate_limit=inngest.RateLimit(limit=1, period=HOUR))
    sim = Simulation(client)
    drive(sim, [(0, ev(0)), (1, ev(1))])
    assert started_seqs(sim, f) == started_seqs(sim, g) == [0]


# --------------------------------------------------------------------------------- validation

GOOD_PERIOD = datetime.timedelta(minutes=1)


@pytest.mark.parametrize(("options", "match"), [
    (lambda: {"rate_limit": inngest.RateLimit(limit=0, period=GOOD_PERIOD)}, "rate_limit.limit"),
    (lambda: {"rate_limit": inngest.RateLimit(limit=-3, period=GOOD_PERIOD)},
     "rate_limit.limit"),
    (lambda: {"rate_limit": inngest.RateLimit(limit="1", period=GOOD_PERIOD)}, "limit"),
    (lambda: {"rate_limit": inngest.RateLimit(limit=1, period=0)}, "rate_limit.period"),
    (lambda: {"rate_limit": inngest.RateLimit(limit=1, period=datetime.timedelta(seconds=-1))},
     "rate_limit.period"),
    (lambda: {"rate_limit": inngest.RateLimit(limit=1, period=500)}, "rate_limit.period"),
    (lambda: {"rate_limit": inngest.RateLimit(limit=1, period=1_500)}, "rate_limit.period"),
    (lambda: {"rate_limit": inngest.RateLimit(limit=1, period=datetime.timedelta(hours=25))},
     "rate_limit.period"),
    (lambda: {"rate_limit": inngest.RateLimit(limit=1, period=GOOD_PERIOD, key="event.data.(")},
     "rate_limit.key"),
    (lambda: {"rate_limit": inngest.RateLimit(limit=1, period=GOOD_PERIOD, key="user.id")},
     "rate_limit.key"),
    (lambda: {"rate_limit": inngest.RateLimit(limit=1, period=GOOD_PERIOD, key=" ")},
     "rate_limit.key"),
    (lambda: {"rate_limit": "1/h"}, "rate_limit"),
])
def test_invalid_rate_limit_is_rejected_naming_the_field(options, match):
    rejects(options, match)


def test_a_24_hour_period_is_allowed():
    simple_fn(new_client(), rate_limit=inngest.RateLimit(limit=1,
                                                         period=datetime.timedelta(hours=24)))


# --------------------------------------------------------------------------------- properties


@FLOW
@given(data=st.data(), limit=st.integers(1, 25), period_s=periods_s, keyed_=st.booleans(),
       seed=seeds)
def test_runs_match_the_gcra_model(data, limit, period_s, keyed_, seed):
    period_ms = period_s * SECOND_MS
    key = "user" if keyed_ else None
    stream = data.draw(streams(gaps(period_ms // limit), keyed("user")), label="stream")
    sim, fn = run_stream(stream, seed, limit=limit, period=period_ms,
                         key="event.data.user" if keyed_ else None)
    model = rate_limit_model(stream, limit=limit, period_ms=period_ms, key=key)
    assert_runs(sim, fn, model, ("status", "created_ms", "started_ms"), skipped=False)
