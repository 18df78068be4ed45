"""The reference models against the sentences of SPEC.md section 3 they encode.

These need no engine: they check that each model says what the spec says, so that a
disagreement between a model and the engine points at the engine (or at a spec reading the
report names), not at a slip in the model.
"""

from __future__ import annotations

from .harness import ev
from .models import (
    DAY_MS,
    HOUR_MS,
    SECOND_MS,
    ExpectedRun,
    batch_model,
    cancel_model,
    clamp_priority,
    concurrency_model,
    debounce_model,
    event_id_model,
    idempotency_model,
    quiet_periods,
    rate_limit_model,
    singleton_model,
    throttle_model,
    timeouts_model,
)

MIN = 60 * SECOND_MS


def started(expected):
    return sorted((r.events, r.started_ms) for r in expected.runs)


def test_rate_limit_from_idle_burst_plus_one_then_one_per_interval():
    # limit 20 per minute: T = 3 s, hidden burst floor(20/10) = 2, so 3 at once.
    stream = [(0, ev(i)) for i in range(5)] + [(2_999, ev(5)), (3_000, ev(6)), (3_000, ev(7))]
    model = rate_limit_model(stream, limit=20, period_ms=MIN)
    assert [r.events for r in model.runs] == [(0,), (1,), (2,), (6,)]
    assert model.outcomes[3].kind == "rate_limited"


def test_rate_limit_small_limits_have_no_burst():
    stream = [(0, ev(0)), (20 * SECOND_MS, ev(1)), (40 * SECOND_MS, ev(2)), (HOUR_MS, ev(3))]
    model = rate_limit_model(stream, limit=1, period_ms=HOUR_MS)
    assert [r.events for r in model.runs] == [(0,), (3,)]


def test_rate_limit_key_false_is_not_limited():
    stream = [(0, ev(i, user=False)) for i in range(3)] + [(0, ev(3 + i, user="a"))
                                                            for i in range(3)]
    model = rate_limit_model(stream, limit=1, period_ms=HOUR_MS, key="user")
    assert [r.events for r in model.runs] == [(0,), (1,), (2,), (3,)]


def test_idempotency_is_one_per_key_per_day_from_first_accepted():
    stream = [(0, ev(0, k="a")), (HOUR_MS, ev(1, k="a")), (HOUR_MS, ev(2, k="b")),
              (DAY_MS - 1, ev(3, k="a")), (DAY_MS, ev(4, k="a")), (DAY_MS + 5, ev(5, k="a"))]
    model = idempotency_model(stream, key="k")
    assert [r.events for r in model.runs] == [(0,), (2,), (4,)]


def test_event_id_readings_differ_only_on_chains():
    stream = [(0, ev(0, id="x")), (20 * HOUR_MS, ev(1, id="x")), (30 * HOUR_MS, ev(2, id="x")),
              (30 * HOUR_MS, ev(3))]
    assert [r.events for r in event_id_model(stream, seen="any").runs] == [(0,), (3,)]
    assert [r.events for r in event_id_model(stream, seen="accepted").runs] == [(0,), (2,), (3,)]


def test_throttle_from_idle_limit_plus_burst_then_one_per_interval_none_dropped():
    stream = [(0, ev(i)) for i in range(6)]
    model = throttle_model(stream, limit=2, period_ms=MIN, burst=1)  # T = 30 s
    assert started(model) == [((0,), 0), ((1,), 0), ((2,), 0), ((3,), 30_000), ((4,), 60_000),
                              ((5,), 90_000)]
    assert {o.kind for o in model.outcomes.values()} == {"started", "throttled"}


def test_throttle_fractional_interval_starts_on_the_next_millisecond():
    stream = [(0, ev(i)) for i in range(4)]
    model = throttle_model(stream, limit=3, period_ms=SECOND_MS, burst=1)  # T = 333.3 ms
    # tolerance (limit+burst-1)T = 1000 ms: limit+burst = 4 start at once
    assert started(model) == [((0,), 0), ((1,), 0), ((2,), 0), ((3,), 0)]
    model = throttle_model([(0, ev(i)) for i in range(6)], limit=3, period_ms=SECOND_MS)
    assert started(model)[4:] == [((4,), 334), ((5,), 667)]


def test_throttle_queue_is_fifo_per_key():
    stream = [(0, ev(0, k="a")), (0, ev(1, k="a")), (0, ev(2, k="b")), (1, ev(3, k="a"))]
    model = throttle_model(stream, limit=1, period_ms=MIN, burst=1, key="k")
    assert started(model) == [((0,), 0), ((1,), 0), ((2,), 0), ((3,), 60_000)]


def test_debounce_runs_period_after_last_event_with_it():
    stream = [(0, ev(0)), (MIN, ev(1)), (2 * MIN, ev(2))]
    model = debounce_model(stream, period_ms=5 * MIN)
    assert started(model) == [((2,), 7 * MIN)]
    assert {s: o.run for s, o in model.outcomes.items()} == {0: (2,), 1: (2,), 2: (2,)}


def test_debounce_timeout_is_an_absolute_deadline_from_the_first_event():
    stream = [(i * 30 * SECOND_MS, ev(i)) for i in range(10)]  # every 30 s for 4.5 min
    model = debounce_model(stream, period_ms=MIN, timeout_ms=3 * MIN)
    # 0..150 s go into the first run at 180 s (last: event 5 at 150 s); event 6 at 180 s
    # arrives once it started and opens the next, which ends 60 s after event 9 (270 s).
    assert started(model) == [((5,), 3 * MIN), ((9,), 330 * SECOND_MS)]


def test_quiet_periods():
    assert quiet_periods([0, 5, 15, 30, 31], 10) == [[0, 1], [2], [3, 4]]


def test_batch_closes_on_size_or_timeout_from_first_event():
    stream = [(0, ev(i)) for i in range(7)] + [(70 * SECOND_MS, ev(7))]
    model = batch_model(stream, max_size=3, timeout_ms=MIN)
    assert started(model) == [((0, 1, 2), 0), ((3, 4, 5), 0), ((6,), MIN),
                              ((7,), 130 * SECOND_MS)]


def test_batch_if_exp_false_runs_alone_at_once():
    stream = [(0, ev(0, b=True)), (1, ev(1, b=False)), (2, ev(2, b=True))]
    model = batch_model(stream, max_size=5, timeout_ms=MIN, if_field="b")
    assert started(model) == [((0, 2), MIN), ((1,), 1)]


def test_concurrency_fifo_then_priority_first():
    stream = [(0, ev(0, ms=10_000)), (1_000, ev(1, ms=10_000, p=0)),
              (2_000, ev(2, ms=10_000, p=5))]
    model = concurrency_model(stream, slots=lambda e: [("fn", 1)],
                              duration=lambda e: e["data"]["ms"],
                              priority=lambda e: e["data"].get("p"))
    assert started(model) == [((0,), 0), ((1,), 20_000), ((2,), 10_000)]


def test_concurrency_key_limits_do_not_block_other_keys():
    stream = [(0, ev(0, u="a")), (0, ev(1, u="a")), (0, ev(2, u="b")), (0, ev(3, u="c"))]
    model = concurrency_model(stream, slots=lambda e: [("fn", 2), (e["data"]["u"], 1)],
                              duration=lambda e: 10)
    assert started(model) == [((0,), 0), ((1,), 10), ((2,), 0), ((3,), 10)]


def test_priority_is_clamped_and_non_ints_are_zero():
    assert [clamp_priority(v) for v in (5, 10_000, -10_000, "x", 1.5, True, None)] == [
        5, 600, -600, 0, 0, 0, 0]


def test_cancel_only_live_matching_runs_created_before_within_timeout():
    stream = [
        (0, ev(0, "t", ms=DAY_MS, o=1)),
        (0, ev(1, "t", ms=DAY_MS, o=2)),
        (500, ev(2, "c", o=1)),  # cancels 0
        (HOUR_MS, ev(3, "t", ms=MIN, o=1)),  # completes at 1h+1min
        (HOUR_MS + 2 * MIN, ev(4, "c", o=1)),  # too late for 3; 1 does not match
        (2 * HOUR_MS + 500, ev(5, "c", o=2)),  # 1 is 2 h old: past a 1 h timeout
    ]
    model = cancel_model(stream, trigger="t", cancel_event="c", timeout_ms=HOUR_MS, match="o")
    assert sorted((r.events, r.status, r.ended_ms) for r in model.runs) == [
        ((0,), "Cancelled", 500), ((1,), "Completed", DAY_MS),
        ((3,), "Completed", HOUR_MS + MIN)]


def test_timeouts_start_and_finish():
    stream = [(0, ev(0, steps=1, ms=600_333)), (0, ev(1, steps=1, ms=1_333))]
    model = timeouts_model(stream, start_ms=MIN, limit=1)
    assert sorted(model.runs, key=lambda r: r.events) == [
        ExpectedRun((0,), created_ms=0, started_ms=0, ended_ms=600_333, steps=1),
        ExpectedRun((1,), "Cancelled", created_ms=0, ended_ms=MIN, steps=0)]
    stream = [(0, ev(0, steps=5, ms=10_333))]
    model = timeouts_model(stream, finish_ms=30 * SECOND_MS)
    assert model.runs == [ExpectedRun((0,), "Cancelled", created_ms=0, started_ms=0,
                                      ended_ms=30_999, steps=3)]


def test_singleton_skip_and_cancel():
    stream = [(0, ev(0, ms=HOUR_MS)), (MIN, ev(1, ms=HOUR_MS)), (HOUR_MS, ev(2, ms=MIN))]
    skip = singleton_model(stream, mode="skip")
    assert sorted((r.events, r.status) for r in skip.runs) == [
        ((0,), "Completed"), ((1,), "Skipped"), ((2,), "Completed")]
    cancel = singleton_model(stream, mode="cancel")
    assert sorted((r.events, r.status, r.ended_ms) for r in cancel.runs) == [
        ((0,), "Cancelled", MIN), ((1,), "Cancelled", HOUR_MS), ((2,), "Completed",
                                                                 HOUR_MS + MIN)]
