"""idempotency (one run per key value per 24 h from the first accepted event, a rate limit
of 1 per 24 h) and event ``id`` deduplication (per function, an id seen in the last 24 h
starts no new run) (SPEC.md section 3)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from inngest_do.testing import Simulation

from .harness import (
    FLOW,
    assert_outcomes,
    assert_runs,
    drive,
    ev,
    new_client,
    rejects,
    simple_fn,
)
from .models import DAY_MS, HOUR_MS, event_id_model, idempotency_model
from .strategies import gaps, keyed, seeds, streams

KEY = "event.data.order"


def started_seqs(sim, fn):
    return [r.event.data["seq"] for r in sim.runs(fn) if r.status != "Skipped"]


def run_stream(stream, seed=0, **options):
    client = new_client()
    fn = simple_fn(client, **options)
    sim = Simulation(client, seed=seed)
    drive(sim, stream)
    return sim, fn


# ------------------------------------------------------------------------------- idempotency


def test_one_run_per_key_within_24_hours():
    stream = [(0, ev(0, order=1)), (HOUR_MS, ev(1, order=1)), (DAY_MS - 1, ev(2, order=1))]
    sim, fn = run_stream(stream, idempotency=KEY)
    assert started_seqs(sim, fn) == [0]


def test_the_window_is_24_hours_from_the_first_accepted_event():
    stream = [(0, ev(0, order=1)), (DAY_MS - 1, ev(1, order=1)), (DAY_MS, ev(2, order=1)),
              (DAY_MS + HOUR_MS, ev(3, order=1)), (2 * DAY_MS, ev(4, order=1))]
    sim, fn = run_stream(stream, idempotency=KEY)
    assert started_seqs(sim, fn) == [0, 2, 4]


def test_each_key_value_has_its_own_run():
    stream = [(0, ev(0, order=1)), (1, ev(1, order=2)), (2, ev(2, order=1)),
              (3, ev(3, order="1x"))]
    sim, fn = run_stream(stream, idempotency=KEY)
    assert started_seqs(sim, fn) == [0, 1, 3]


def test_idempotency_is_per_function():
    client = new_client()
    f = simple_fn(client, "f", idempotency=KEY)
    g = simple_fn(client, "g", idempotency=KEY)
    sim = Simulation(client)
    drive(sim, [(0, ev(0, order=1)), (1, ev(1, order=1))])
    assert started_seqs(sim, f) == started_seqs(sim, g) == [0]


def test_duplicates_show_why_they_started_nothing():
    stream = [(0, ev(0, order=1)), (1, ev(1, order=1))]
    sim, fn = run_stream(stream, idempotency=KEY)
    assert_outcomes(sim, fn, idempotency_model(stream, key="order"),
                    also={"idempotent": {"rate_limited"}})


@pytest.mark.parametrize(("options", "match"), [
    (lambda: {"idempotency": ""}, "idempotency"),
    (lambda: {"idempotency": "  "}, "idempotency"),
    (lambda: {"idempotency": "event.data.("}, "idempotency"),
    (lambda: {"idempotency": "user.id"}, "idempotency"),
    (lambda: {"idempotency": 5}, "idempotency"),
])
def test_invalid_idempotency_is_rejected_naming_the_field(options, match):
    rejects(options, match)


@FLOW
@given(data=st.data(), seed=seeds)
def test_idempotency_matches_the_model(data, seed):
    stream = data.draw(streams(gaps(DAY_MS), keyed("order", values=[1, 2, "a"])),
                       label="stream")
    sim, fn = run_stream(stream, seed, idempotency=KEY)
    assert_runs(sim, fn, idempotency_model(stream, key="order"),
                ("status", "created_ms", "started_ms"), skipped=False)


# ---------------------------------------------------------------------------------- event id


def test_an_event_id_seen_in_the_last_24_hours_starts_nothing_new():
    stream = [(0, ev(0, id="evt-1")), (HOUR_MS, ev(1, id="evt-1")), (HOUR_MS, ev(2, id="evt-2"))]
    sim, fn = run_stream(stream)
    assert started_seqs(sim, fn) == [0, 2]
    assert_outcomes(sim, fn, event_id_model(stream))


def test_an_event_id_older_than_24_hours_starts_a_new_run():
    stream = [(0, ev(0, id="evt-1")), (25 * HOUR_MS, ev(1, id="evt-1"))]
    sim, fn = run_stream(stream)
    assert started_seqs(sim, fn) == [0, 1]


def test_events_without_an_id_are_never_deduplicated():
    stream = [(0, ev(0)), (0, ev(1)), (1, ev(2))]
    sim, fn = run_stream(stream)
    assert started_seqs(sim, fn) == [0, 1, 2]


def test_event_id_deduplication_is_per_function():
    client = new_client()
    f = simple_fn(client, "f")
    g = simple_fn(client, "g")
    sim = Simulation(client)
    drive(sim, [(0, ev(0, id="evt-1")), (1, ev(1, id="evt-1"))])
    assert started_seqs(sim, f) == started_seqs(sim, g) == [0]


def test_a_duplicate_event_is_still_stored():
    stream = [(0, ev(0, id="evt-1")), (1, ev(1, id="evt-1"))]
    sim, _ = run_stream(stream)
    assert sorted(r.data["seq"] for r in sim.events() if r.name == "flow/ev") == [0, 1]


@FLOW
@given(data=st.data(), seed=seeds)
def test_event_ids_match_the_model(data, seed):
    ids = st.fixed_dictionaries({}, optional={"id": st.sampled_from(["x", "y", "z"])})
    stream = data.draw(streams(gaps(DAY_MS), ids), label="stream")
    stream = [(t, {**e, "id": e["data"].pop("id")} if "id" in e["data"] else e)
              for t, e in stream]
    sim, fn = run_stream(stream, seed)
    # A chain of duplicates longer than a day is read two ways (see event_id_model).
    models = [event_id_model(stream, seen="any"), event_id_model(stream, seen="accepted")]
    assert_runs(sim, fn, models, ("status", "created_ms", "started_ms"), skipped=False)
