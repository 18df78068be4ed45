"""TimerHeap unit tests, on every kernel implementation."""

from __future__ import annotations

import gc
import random
import weakref

import pytest

from ._impls import AVAILABLE


def test_handles_count_up_from_one(core):
    timers = core.TimerHeap()
    assert [timers.schedule(d, None) for d in (30, 10, 20)] == [1, 2, 3]
    assert len(timers) == 3


def test_pops_in_due_order_with_fifo_ties(core):
    timers = core.TimerHeap()
    timers.schedule(20, "b")
    timers.schedule(10, "a")
    timers.schedule(20, "c")
    timers.schedule(-5, "neg")
    assert timers.peek_due() == -5
    assert timers.pop_next(-6) is None
    assert timers.pop_next(-5) == (-5, 4, "neg")
    assert timers.pop_next(19) == (10, 2, "a")
    assert timers.pop_next(19) is None
    assert timers.pop_due(100) == [(20, 1, "b"), (20, 3, "c")]
    assert timers.pop_due(100) == []
    assert timers.pop_next(100) is None
    assert timers.peek_due() is None
    assert len(timers) == 0


def test_pop_due_stops_at_the_limit(core):
    timers = core.TimerHeap()
    for due in (5, 1, 9, 3, 7):
        timers.schedule(due, due * 10)
    assert timers.pop_due(5) == [(1, 2, 10), (3, 4, 30), (5, 1, 50)]
    assert timers.peek_due() == 7
    assert len(timers) == 2


def test_cancel_is_lazy_but_invisible(core):
    timers = core.TimerHeap()
    a = timers.schedule(1, "a")
    b = timers.schedule(2, "b")
    c = timers.schedule(3, "c")
    timers.cancel(a)
    assert a not in timers
    assert b in timers
    assert len(timers) == 2
    assert timers.peek_due() == 2
    timers.cancel(c)
    assert timers.pop_due(10) == [(2, b, "b")]
    assert len(timers) == 0


def test_cancel_errors(core):
    timers = core.TimerHeap()
    h = timers.schedule(1, None)
    timers.cancel(h)
    with pytest.raises(ValueError, match=f"timer {h} was already cancelled or fired"):
        timers.cancel(h)
    h2 = timers.schedule(2, None)
    assert timers.pop_next(2) == (2, h2, None)
    with pytest.raises(ValueError, match=f"timer {h2} was already cancelled or fired"):
        timers.cancel(h2)
    for unknown in (0, -1, 3, 10**30):
        with pytest.raises(ValueError, match=f"unknown timer handle {unknown}"):
            timers.cancel(unknown)
    with pytest.raises(TypeError, match="handle must be an int"):
        timers.cancel(1.0)
    with pytest.raises(TypeError, match="handle must be an int"):
        timers.cancel(True)


def test_argument_errors(core):
    timers = core.TimerHeap()
    with pytest.raises(TypeError, match="due_ms must be an int, got float"):
        timers.schedule(1.5, None)
    with pytest.raises(TypeError, match="due_ms must be an int, got bool"):
        timers.schedule(False, None)
    with pytest.raises(ValueError, match="due_ms must fit in a signed 64-bit integer"):
        timers.schedule(2**63, None)
    with pytest.raises(ValueError, match="due_ms must fit in a signed 64-bit integer"):
        timers.schedule(-(2**63) - 1, None)
    with pytest.raises(TypeError, match="limit_ms must be an int"):
        timers.pop_next(None)
    with pytest.raises(TypeError, match="limit_ms must be an int"):
        timers.pop_due("1")
    with pytest.raises(ValueError, match="limit_ms must fit"):
        timers.pop_due(2**64)
    assert len(timers) == 0
    # the extremes of the range are fine
    lo = timers.schedule(-(2**63), "lo")
    hi = timers.schedule(2**63 - 1, "hi")
    assert timers.pop_due(2**63 - 1) == [(-(2**63), lo, "lo"), (2**63 - 1, hi, "hi")]


def test_contains_ignores_foreign_values(core):
    timers = core.TimerHeap()
    h = timers.schedule(1, None)
    assert h in timers
    assert "x" not in timers
    assert 99 not in timers
    assert 1.0 not in timers  # equal to a live handle, but not a handle
    assert True not in timers
    assert [h] not in timers
    assert 2**70 not in timers


def test_int_subclasses_are_accepted(core):
    class Millis(int):
        pass

    timers = core.TimerHeap()
    h = timers.schedule(Millis(7), "p")
    timers.cancel(type(h)(h))
    h = timers.schedule(Millis(8), "q")
    assert timers.pop_next(Millis(8)) == (8, h, "q")


def test_compacts_when_most_entries_are_dead(core):
    timers = core.TimerHeap()
    handles = [timers.schedule(i, i) for i in range(10_000)]
    for h in handles[:9_000]:
        timers.cancel(h)
    assert len(timers) == 1_000
    # dead entries never outnumber live ones by more than the compaction threshold
    assert timers._storage_size() <= 2 * len(timers) + 1
    assert [entry[2] for entry in timers.pop_due(10**9)] == list(range(9_000, 10_000))
    assert timers._storage_size() == 0


def test_repeated_schedule_cancel_keeps_memory_bounded(core):
    timers = core.TimerHeap()
    keep = timers.schedule(10**12, "far")
    for i in range(50_000):
        timers.cancel(timers.schedule(i, i))
    assert len(timers) == 1
    assert timers._storage_size() <= 3
    assert keep in timers


def test_memory_is_given_back_after_a_burst(core):
    timers = core.TimerHeap()
    keep = timers.schedule(10**12, "far")
    for i in range(20_000):
        timers.schedule(i, i)
    assert len(timers.pop_due(10**6)) == 20_000
    assert timers._storage_size() <= 4
    for i in range(20_000):
        timers.schedule(i, i)
    for h in range(keep + 20_001, keep + 39_990):
        timers.cancel(h)
    assert len(timers) == 12
    assert timers._storage_size() <= 1_100  # back to O(live + a constant)
    assert [e[2] for e in timers.pop_due(10**13)] == [*range(19_989, 20_000), "far"]


def test_payloads_are_released(core):
    class Payload:
        pass

    timers = core.TimerHeap()
    p1, p2 = Payload(), Payload()
    r1, r2 = weakref.ref(p1), weakref.ref(p2)
    h1 = timers.schedule(1, p1)
    timers.schedule(2, p2)
    del p1, p2
    timers.cancel(h1)
    gc.collect()
    assert r1() is None  # a cancelled timer's payload is not kept forever
    timers.pop_due(5)
    assert r2() is None


def test_cycle_through_a_payload_is_collected(core):
    class Holder:
        pass

    holder = Holder()
    holder.timers = core.TimerHeap()
    holder.timers.schedule(1, holder)
    ref = weakref.ref(holder)
    del holder
    gc.collect()
    assert ref() is None


def test_large_random_workload_matches_reference():
    """A long random run (compactions, shrinking, duplicate dues) against a sorted list."""
    rng = random.Random(1234)
    impls = [module.TimerHeap() for _, module in AVAILABLE]
    reference: dict[int, tuple[int, int, object]] = {}
    now = 0
    for step in range(30_000):
        roll = rng.random()
        if roll < 0.5:
            due = now + rng.randrange(-10, 500)
            handles = {t.schedule(due, step) for t in impls}
            assert len(handles) == 1
            h = handles.pop()
            reference[h] = (due, h, step)
        elif roll < 0.8 and reference:
            h = rng.choice(list(reference)) if rng.random() < 0.9 else rng.randrange(1, step + 2)
            if h in reference:
                del reference[h]
                for t in impls:
                    t.cancel(h)
        else:
            now += rng.randrange(0, 40)
            expected = sorted(e for e in reference.values() if e[0] <= now)
            for e in expected:
                del reference[e[1]]
            for t in impls:
                assert t.pop_due(now) == expected
        if step % 1000 == 0:
            expected_peek = min(reference.values())[0] if reference else None
            for t in impls:
                assert len(t) == len(reference)
                assert t.peek_due() == expected_peek
    for t in impls:
        assert t.pop_due(2**63 - 1) == sorted(reference.values())
