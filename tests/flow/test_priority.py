"""priority: ``run`` gives whole seconds (clamped to +-600) subtracted from the run's queue
score, for its start and every step; a non-int or failing expression gives 0; it reorders
waiting work and bypasses no limit (SPEC.md section 3). Observed under Concurrency(limit=1).
"""

from __future__ import annotations

import pytest

import inngest_do as inngest
from inngest_do.testing import Simulation

from .harness import Busy, busy_fn, drive, ev, new_client, rejects, rel_ms
from .models import SECOND_MS

S = SECOND_MS


def run_prioritized(stream, seed=0):
    client = new_client()
    rec = Busy()
    fn = busy_fn(client, rec, concurrency=[inngest.Concurrency(limit=1)],
                 priority=inngest.Priority(run="event.data.p"))
    sim = rec.attach(Simulation(client, seed=seed))
    drive(sim, stream)
    return sim, fn, rec


def start_order(sim, fn):
    runs = sorted(sim.runs(fn), key=lambda r: (r.started_at, r.event.data["seq"]))
    return [r.event.data["seq"] for r in runs]


def test_a_higher_priority_run_jumps_the_queue_but_not_the_running_step():
    stream = [(0, ev(0, p=0, ms=10 * S)), (S, ev(1, p=0, ms=10 * S)),
              (2 * S, ev(2, p=100, ms=10 * S))]
    sim, fn, _ = run_prioritized(stream)
    assert start_order(sim, fn) == [0, 2, 1]
    assert rel_ms(sim, sim.runs(fn)[2].started_at) == 10 * S


def test_priority_is_clamped_to_600_seconds():
    # 0 holds the slot for 1000 s. 1 (at 1 s, +600) scores -599 s; 2 (at 2 s, +100000,
    # clamped to +600) scores -598 s, so 1 goes first.
    stream = [(0, ev(0, p=0, ms=1_000 * S)), (S, ev(1, p=600, ms=S)),
              (2 * S, ev(2, p=100_000, ms=S))]
    sim, fn, _ = run_prioritized(stream)
    assert start_order(sim, fn) == [0, 1, 2]


def test_negative_priority_is_clamped_to_minus_600_seconds():
    # 1 (at 1 s, -10000 clamped to -600) scores 601 s; 2 (at 700 s, 0) scores 700 s.
    stream = [(0, ev(0, p=0, ms=1_000 * S)), (S, ev(1, p=-10_000, ms=S)),
              (700 * S, ev(2, p=0, ms=S))]
    sim, fn, _ = run_prioritized(stream)
    assert start_order(sim, fn) == [0, 1, 2]


@pytest.mark.parametrize("value", ["high", 1.5, None, [5], {"s": 5}])
def test_a_non_int_priority_counts_as_zero(value):
    # 2 (at 3 s) would go before 1 (at 2 s) with any positive priority; as 0 it does not.
    stream = [(0, ev(0, p=0, ms=10 * S)), (2 * S, ev(1, p=0, ms=S)),
              (3 * S, ev(2, p=value, ms=S))]
    sim, fn, _ = run_prioritized(stream)
    assert start_order(sim, fn) == [0, 1, 2]
    assert [r.status for r in sim.runs(fn)] == ["Completed"] * 3


def test_a_failing_priority_expression_counts_as_zero():
    stream = [(0, ev(0, p=0, ms=10 * S)), (2 * S, ev(1, p=0, ms=S)), (3 * S, ev(2, ms=S))]
    sim, fn, _ = run_prioritized(stream)
    assert start_order(sim, fn) == [0, 1, 2]
    assert [r.status for r in sim.runs(fn)] == ["Completed"] * 3


def test_priority_applies_to_every_step_not_only_the_start():
    # 0 runs three 10 s steps; 1 (+600) arrives at 1 s and goes before 0's second step.
    stream = [(0, ev(0, p=0, ms=10 * S, steps=3)), (S, ev(1, p=600, ms=10 * S))]
    sim, fn, rec = run_prioritized(stream)
    assert sorted((start, label) for label, start, _ in rec.intervals) == [
        (0, 0), (10 * S, 1), (20 * S, 0), (30 * S, 0)]
    assert [rel_ms(sim, r.ended_at) for r in sim.runs(fn)] == [40 * S, 20 * S]


def test_priority_alone_changes_nothing_without_a_limit():
    client = new_client()
    rec = Busy()
    fn = busy_fn(client, rec, priority=inngest.Priority(run="event.data.p"))
    sim = rec.attach(Simulation(client))
    drive(sim, [(0, ev(0, p=-600, ms=10 * S)), (0, ev(1, p=600, ms=10 * S))])
    assert [rel_ms(sim, r.started_at) for r in sim.runs(fn)] == [0, 0]


@pytest.mark.parametrize(("options", "match"), [
    (lambda: {"priority": inngest.Priority(run="event.data.(")}, "priority.run"),
    (lambda: {"priority": inngest.Priority(run="")}, "priority.run"),
    (lambda: {"priority": inngest.Priority(run="ctx.attempt")}, "priority.run"),
    (lambda: {"priority": inngest.Priority(run=5)}, "run"),
    (lambda: {"priority": "event.data.p"}, "priority"),
])
def test_invalid_priority_is_rejected_naming_the_field(options, match):
    rejects(options, match)
