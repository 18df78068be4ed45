"""debounce: per key, one run ``period`` after the last event, with that event; ``timeout``
is an absolute deadline from the first event (SPEC.md section 3)."""

from __future__ import annotations

import collections
import datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

import inngest_do as inngest
from inngest_do.testing import Simulation

from .harness import (
    FLOW,
    advance_to_ms,
    assert_outcomes,
    assert_runs,
    drive,
    ev,
    new_client,
    rejects,
    rel_ms,
    simple_fn,
    to_event,
)
from .models import SECOND_MS, debounce_model, quiet_periods
from .strategies import KEYS, gaps, keyed, seeds, streams

MIN = datetime.timedelta(minutes=1)
MIN_MS = 60 * SECOND_MS


def run_stream(stream, seed=0, idle=True, **debounce):
    client = new_client()
    fn = simple_fn(client, debounce=inngest.Debounce(**debounce))
    sim = Simulation(client, seed=seed)
    drive(sim, stream, idle=idle)
    return sim, fn


def starts(sim, fn):
    return sorted((tuple(e.data["seq"] for e in r.events), rel_ms(sim, r.started_at))
                  for r in sim.runs(fn))


# ----------------------------------------------------------------------------------- examples


def test_one_run_period_after_the_last_event_with_the_last_event():
    sim, fn = run_stream([(0, ev(0)), (MIN_MS, ev(1)), (2 * MIN_MS, ev(2))], period=5 * MIN)
    assert starts(sim, fn) == [((2,), 7 * MIN_MS)]
    [run] = sim.runs(fn)
    assert run.status == "Completed"
    assert run.output == [2]
    assert run.event.data["seq"] == 2


def test_nothing_starts_while_events_keep_coming():
    client = new_client()
    fn = simple_fn(client, debounce=inngest.Debounce(period=5 * MIN))
    sim = Simulation(client)
    for i in range(10):
        advance_to_ms(sim, i * 4 * MIN_MS)
        sim.send(to_event(ev(i)))
        assert all(r.started_at is None for r in sim.runs(fn))
    sim.advance(5 * MIN - datetime.timedelta(milliseconds=1))
    assert all(r.started_at is None for r in sim.runs(fn))
    sim.advance(1)
    assert starts(sim, fn) == [((9,), 41 * MIN_MS)]


def test_timeout_caps_the_delay_from_the_first_event():
    stream = [(i * 30 * SECOND_MS, ev(i)) for i in range(10)]  # 0 .. 270 s
    sim, fn = run_stream(stream, period=MIN, timeout=3 * MIN)
    # The first run starts at 180 s with the last event before it (150 s); the event at
    # 180 s arrives once it started and begins the next, which ends 60 s after 270 s.
    assert starts(sim, fn) == [((5,), 180 * SECOND_MS), ((9,), 330 * SECOND_MS)]


def test_an_event_after_the_run_started_begins_a_new_debounce():
    sim, fn = run_stream([(0, ev(0)), (6 * MIN_MS, ev(1))], period=5 * MIN)
    assert starts(sim, fn) == [((0,), 5 * MIN_MS), ((1,), 11 * MIN_MS)]


def test_each_key_debounces_apart():
    stream = [(0, ev(0, user="a")), (MIN_MS, ev(1, user="b")), (2 * MIN_MS, ev(2, user="a")),
              (3 * MIN_MS, ev(3, user="b")), (4 * MIN_MS, ev(4, user="c"))]
    sim, fn = run_stream(stream, period=3 * MIN, key="event.data.user")
    assert starts(sim, fn) == [((2,), 5 * MIN_MS), ((3,), 6 * MIN_MS), ((4,), 7 * MIN_MS)]


def test_an_event_exactly_period_after_the_last_comes_once_the_run_started():
    # advance() fires what is due up to its target before the next send: the run due at
    # 2 min starts, then the event sent at 2 min begins a new debounce.
    sim, fn = run_stream([(0, ev(0)), (2 * MIN_MS, ev(1))], period=2 * MIN)
    assert starts(sim, fn) == [((0,), 2 * MIN_MS), ((1,), 4 * MIN_MS)]


def test_debounced_events_name_the_run_they_went_into():
    stream = [(0, ev(0)), (MIN_MS, ev(1)), (10 * MIN_MS, ev(2))]
    sim, fn = run_stream(stream, period=2 * MIN)
    assert_outcomes(sim, fn, debounce_model(stream, period_ms=2 * MIN_MS),
                    also={"debounced": {"started"}})
    records = {r.data["seq"]: r for r in sim.events()}
    kinds = [o.outcome for o in records[0].outcomes]
    assert kinds == ["debounced"]


# --------------------------------------------------------------------------------- validation


@pytest.mark.parametrize(("options", "match"), [
    (lambda: {"debounce": inngest.Debounce(period=0)}, "debounce.period"),
    (lambda: {"debounce": inngest.Debounce(period=500)}, "debounce.period"),
    (lambda: {"debounce": inngest.Debounce(period=-MIN)}, "debounce.period"),
    (lambda: {"debounce": inngest.Debounce(period=datetime.timedelta(days=7, seconds=1))},
     "debounce.period"),
    (lambda: {"debounce": inngest.Debounce(period=MIN, timeout=30 * SECOND_MS)},
     "debounce.timeout"),
    (lambda: {"debounce": inngest.Debounce(period=MIN, timeout=90_500)}, "debounce.timeout"),
    (lambda: {"debounce": inngest.Debounce(period=MIN, key="event.data.(")}, "debounce.key"),
    (lambda: {"debounce": inngest.Debounce(period=MIN, key="evt.data.x")}, "debounce.key"),
    (lambda: {"debounce": inngest.Debounce(period=MIN),
              "batch_events": inngest.Batch(max_size=2, timeout=MIN)}, "debounce"),
    (lambda: {"debounce": inngest.Debounce(period="1m")}, "period"),
])
def test_invalid_debounce_is_rejected_naming_the_field(options, match):
    rejects(options, match)


def test_seven_days_is_the_longest_period():
    simple_fn(new_client(), debounce=inngest.Debounce(period=datetime.timedelta(days=7)))


# --------------------------------------------------------------------------------- properties

debounce_periods_s = st.one_of(st.sampled_from([1, 2, 60, 300, 3600]), st.integers(1, 7200))


@FLOW
@given(data=st.data(), period_s=debounce_periods_s, timeout_factor=st.none() | st.integers(1, 5),
       keyed_=st.booleans(), seed=seeds)
def test_runs_match_the_model(data, period_s, timeout_factor, keyed_, seed):
    period_ms = period_s * SECOND_MS
    timeout_ms = None if timeout_factor is None else period_ms * timeout_factor
    stream = data.draw(streams(gaps(period_ms), keyed("user")), label="stream")
    sim, fn = run_stream(stream, seed, period=period_ms, timeout=timeout_ms,
                         key="event.data.user" if keyed_ else None)
    model = debounce_model(stream, period_ms=period_ms, timeout_ms=timeout_ms,
                           key="user" if keyed_ else None)
    assert_runs(sim, fn, model, ("status", "started_ms"))


@FLOW
@given(data=st.data(), period_s=debounce_periods_s, seed=seeds)
def test_exactly_one_run_per_quiet_period_per_key(data, period_s, seed):
    """Without a timeout, each key's events fall into bursts separated by at least
    ``period`` of quiet; each burst gives exactly one run, ``period`` after its last event,
    holding that event alone."""
    period_ms = period_s * SECOND_MS
    stream = data.draw(streams(gaps(period_ms), keyed("user")), label="stream")
    sim, fn = run_stream(stream, seed, period=period_ms, key="event.data.user")
    by_key = collections.defaultdict(list)
    for t, e in stream:
        by_key[e["data"]["user"]].append((t, e["data"]["seq"]))
    runs_by_key = collections.defaultdict(list)
    for run in sim.runs(fn):
        assert len(run.events) == 1, f"seed={seed}: a debounced run holds one event"
        runs_by_key[run.event.data["user"]].append(
            (rel_ms(sim, run.started_at), run.event.data["seq"], str(run.status)))
    for key in KEYS:
        events = by_key.get(key, [])
        bursts = quiet_periods([t for t, _ in events], period_ms)
        want = sorted((events[b[-1]][0] + period_ms, events[b[-1]][1], "Completed")
                      for b in bursts)
        assert sorted(runs_by_key.get(key, [])) == want, f"seed={seed} key={key}"
