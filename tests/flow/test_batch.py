"""batch_events: per key, a batch opens with its first event and runs when full or
``timeout`` after that event; ``ctx.events`` in arrival order; an event whose ``if_exp`` is
false runs alone at once (SPEC.md section 3)."""

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
    rejects,
    rel_ms,
    simple_fn,
)
from .models import SECOND_MS, batch_model
from .strategies import gaps, seeds, streams

MIN = datetime.timedelta(minutes=1)
MIN_MS = 60 * SECOND_MS


def run_stream(stream, seed=0, **batch):
    client = new_client()
    fn = simple_fn(client, batch_events=inngest.Batch(**batch))
    sim = Simulation(client, seed=seed)
    drive(sim, stream)
    return sim, fn


def starts(sim, fn):
    return sorted((tuple(e.data["seq"] for e in r.events), rel_ms(sim, r.started_at))
                  for r in sim.runs(fn))


# ----------------------------------------------------------------------------------- examples


def test_full_batches_run_at_once_and_the_rest_at_the_timeout():
    sim, fn = run_stream([(0, ev(i)) for i in range(7)], max_size=3, timeout=MIN)
    assert starts(sim, fn) == [((0, 1, 2), 0), ((3, 4, 5), 0), ((6,), MIN_MS)]


def test_timeout_counts_from_the_first_event_of_the_batch():
    stream = [(0, ev(0)), (30 * SECOND_MS, ev(1)), (70 * SECOND_MS, ev(2))]
    sim, fn = run_stream(stream, max_size=10, timeout=MIN)
    assert starts(sim, fn) == [((0, 1), MIN_MS), ((2,), 130 * SECOND_MS)]


def test_ctx_events_are_in_arrival_order_and_ctx_event_is_the_first():
    client = new_client()
    seen = []

    @client.create_function(fn_id="f", trigger=inngest.TriggerEvent(event="flow/ev"),
                            batch_events=inngest.Batch(max_size=4, timeout=MIN))
    async def fn(ctx: inngest.Context) -> None:
        seen.append((ctx.event.data["seq"], [e.data["seq"] for e in ctx.events]))

    sim = Simulation(client)
    drive(sim, [(i * 1_000, ev(i)) for i in range(4)])
    assert seen == [(0, [0, 1, 2, 3])]
    [run] = sim.runs(fn)
    assert run.event.data["seq"] == 0
    assert [e.data["seq"] for e in run.events] == [0, 1, 2, 3]


def test_each_key_batches_apart():
    stream = [(0, ev(0, user="a")), (1, ev(1, user="b")), (2, ev(2, user="a")),
              (3, ev(3, user="b")), (4, ev(4, user="c"))]
    sim, fn = run_stream(stream, max_size=2, timeout=MIN, key="event.data.user")
    assert starts(sim, fn) == [((0, 2), 2), ((1, 3), 3), ((4,), 4 + MIN_MS)]


def test_an_event_whose_if_exp_is_false_runs_alone_at_once():
    stream = [(0, ev(0, vip=False)), (1, ev(1, vip=True)), (2, ev(2, vip=False)),
              (3, ev(3, vip=False))]
    sim, fn = run_stream(stream, max_size=3, timeout=MIN, if_exp="event.data.vip == false")
    assert starts(sim, fn) == [((0, 2, 3), 3), ((1,), 1)]


def test_batched_events_name_their_run():
    stream = [(0, ev(i)) for i in range(5)]
    sim, fn = run_stream(stream, max_size=2, timeout=MIN)
    assert_outcomes(sim, fn, batch_model(stream, max_size=2, timeout_ms=MIN_MS),
                    also={"started": {"batched"}})


# --------------------------------------------------------------------------------- validation


@pytest.mark.parametrize(("options", "match"), [
    (lambda: {"batch_events": inngest.Batch(max_size=1, timeout=MIN)}, "batch_events.max_size"),
    (lambda: {"batch_events": inngest.Batch(max_size=0, timeout=MIN)}, "batch_events.max_size"),
    (lambda: {"batch_events": inngest.Batch(max_size=2)}, "batch_events.timeout"),
    (lambda: {"batch_events": inngest.Batch(max_size=2, timeout=0)}, "batch_events.timeout"),
    (lambda: {"batch_events": inngest.Batch(max_size=2, timeout=500)}, "batch_events.timeout"),
    (lambda: {"batch_events": inngest.Batch(max_size=2, timeout=1_200)},
     "batch_events.timeout"),
    (lambda: {"batch_events": inngest.Batch(max_size=2, timeout=MIN, key="event.data.(")},
     "batch_events.key"),
    (lambda: {"batch_events": inngest.Batch(max_size=2, timeout=MIN, if_exp="event.data ==")},
     "batch_events.if_exp"),
    (lambda: {"batch_events": inngest.Batch(max_size=2, timeout=MIN),
              "cancel": [inngest.Cancel(event="flow/stop")]}, "cancel"),
    (lambda: {"batch_events": inngest.Batch(max_size=2, timeout=MIN),
              "singleton": inngest.Singleton(mode="skip")}, "singleton"),
    (lambda: {"batch_events": inngest.Batch(max_size=2, timeout=MIN),
              "priority": inngest.Priority(run="1")}, "priority"),
    (lambda: {"batch_events": inngest.Batch(max_size=2, timeout=MIN),
              "rate_limit": inngest.RateLimit(limit=1, period=MIN)}, "rate_limit"),
    (lambda: {"batch_events": inngest.Batch(max_size=2, timeout=MIN),
              "idempotency": "event.data.id"}, "idempotency"),
    (lambda: {"batch_events": inngest.Batch(max_size="2", timeout=MIN)}, "max_size"),
])
def test_invalid_batch_is_rejected_naming_the_field(options, match):
    rejects(options, match)


# --------------------------------------------------------------------------------- properties


@FLOW
@given(data=st.data(), max_size=st.integers(2, 6), timeout_s=st.sampled_from([1, 5, 60, 3600]),
       keyed_=st.booleans(), conditional=st.booleans(), seed=seeds)
def test_runs_match_the_model(data, max_size, timeout_s, keyed_, conditional, seed):
    timeout_ms = timeout_s * SECOND_MS
    fields = {"user": st.sampled_from("ab"), "vip": st.booleans()}
    # whole-second gaps make events land exactly on a batch's timeout (it closes first)
    gap = st.integers(0, 10).map(lambda s: s * SECOND_MS) | gaps(timeout_ms // max_size)
    stream = data.draw(streams(gap, st.fixed_dictionaries(fields)), label="stream")
    sim, fn = run_stream(stream, seed, max_size=max_size, timeout=timeout_ms,
                         key="event.data.user" if keyed_ else None,
                         if_exp="event.data.vip" if conditional else None)
    model = batch_model(stream, max_size=max_size, timeout_ms=timeout_ms,
                        key="user" if keyed_ else None, if_field="vip" if conditional else None)
    assert_runs(sim, fn, model, ("status", "started_ms"))
    for run in sim.runs(fn):
        assert run.output == [e.data["seq"] for e in run.events], f"seed={seed}"
