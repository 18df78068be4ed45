"""The kernel's TimerLoop: the due-timer loop and the lone-wait check, identically in both
twins (each test runs on each kernel, and the random sequences compare the two directly)."""

from __future__ import annotations

import datetime
import random
import typing

import pytest

from ._impls import COMPILED, PURE, Entry

MEMO = ("sleep", True, None)


def _recorder(sink: list) -> typing.Callable[[int, object], None]:
    return lambda handle, payload: sink.append((handle, payload))


def _loop(core, seen: list, start: int = 1000):
    clock = core.VirtualClock(start)
    timers = core.TimerHeap()
    ready = core.ReadyQueue()
    journal = core.Journal(Entry, lambda subject, e: seen.append(("entry", subject, e)),
                           lambda subject, item, memo: seen.append(("memo", subject, item, memo)))
    journal.trace = []
    loop = core.TimerLoop(clock, timers, ready, journal, "w.started", "until", "w.done", MEMO)
    return loop, clock, timers, ready, journal


def test_fire_due_calls_back_in_due_then_handle_order(core):
    loop, _, timers, _, _ = _loop(core, [])
    for due, name in ((30, "c"), (10, "a"), (10, "b"), (40, "late")):
        timers.schedule(due, name)
    fired: list = []

    def fire(handle: int, payload: object) -> None:
        fired.append((handle, payload))
        if payload == "a":  # a timer scheduled by a callback, already due, fires in this call
            timers.schedule(20, "from-a")

    assert loop.fire_due(30, fire) == 4
    assert fired == [(2, "a"), (3, "b"), (5, "from-a"), (1, "c")]
    assert loop.fire_due(35, fire) == 0 and len(timers) == 1


def test_fire_due_checks_its_limit_and_passes_callback_errors_on(core):
    loop, _, timers, _, _ = _loop(core, [])
    with pytest.raises(TypeError, match="limit_ms must be an int"):
        loop.fire_due("1", print)
    timers.schedule(1, "x")
    timers.schedule(2, "y")

    def boom(handle: int, payload: object) -> None:
        raise RuntimeError(payload)

    with pytest.raises(RuntimeError, match="x"):
        loop.fire_due(5, boom)
    assert len(timers) == 1  # the failing timer was taken; the next one waits


def test_due_step_moves_the_clock_to_the_next_due_timer_and_fires(core):
    loop, clock, timers, ready, _ = _loop(core, [])
    calls: list = []

    def fire_due(now_ms: int) -> int:
        calls.append(now_ms)
        return loop.fire_due(now_ms, lambda handle, payload: calls.append(payload))

    timers.schedule(900, "overdue")
    timers.schedule(1200, "b")
    timers.schedule(1200, "c")
    timers.schedule(5000, "late")
    assert loop.due_step(2000, fire_due) and clock.now_ms() == 1000  # never backwards
    assert calls == [1000, "overdue"]
    assert loop.due_step(2000, fire_due) and clock.now_ms() == 1200
    assert calls[2:] == [1200, "b", "c"]
    assert not loop.due_step(2000, fire_due) and clock.now_ms() == 1200  # 5000 is past it
    ready.push("run", 0)
    assert loop.due_step(0, fire_due) and len(calls) == 5  # something ready: nothing moves
    with pytest.raises(TypeError, match="target_ms must be an int"):
        loop.due_step(None, fire_due)


def test_skip_records_what_a_parked_wait_would(core):
    seen: list = []
    loop, clock, timers, _, journal = _loop(core, seen)
    memos, history = core.MemoTable(), []
    assert loop.horizon_ms is None
    assert not loop.skip(history, memos, "r", "f", "s", 500)  # no drive in progress
    loop.horizon_ms, loop.budget = 2000, 5
    assert loop.skip(history, memos, "r", "f", "s", 500)
    assert clock.now_ms() == 1500 and loop.budget == 4
    started = Entry(1000, "r", "f", "w.started", "s", {"until": 1500})
    done = Entry(1500, "r", "f", "w.done", "s", None)
    assert history == [started, done] and journal.trace == [started, done]
    assert seen == [("entry", "r", started), ("memo", "r", "s", MEMO), ("entry", "r", done)]
    assert memos.get("s") == MEMO and len(timers) == 0
    assert loop.skip(history, memos, "r", "f", "s:1", 500)  # up to the horizon itself
    assert clock.now_ms() == 2000
    assert not loop.skip(history, memos, "r", "f", "s:2", 1)  # past it
    assert loop.skip(history, memos, "r", "f", "s:2", 0) and clock.now_ms() == 2000


def test_skip_declines_whenever_something_could_happen_first(core):
    loop, clock, timers, ready, journal = _loop(core, [])
    memos, history = core.MemoTable(), []
    loop.horizon_ms, loop.budget = 10_000, 1
    timers.schedule(1500, "other")
    assert not loop.skip(history, memos, "r", "f", "s", 500)  # a timer due at its end
    assert loop.skip(history, memos, "r", "f", "s", 499)  # before it
    assert not loop.skip(history, memos, "r", "f", "t", 0)  # no budget left
    loop.budget = 3
    ready.push("other-run", 0)
    assert not loop.skip(history, memos, "r", "f", "t", 0)  # another run is ready
    ready.pop()
    journal.listener = lambda entry: None
    assert not loop.skip(history, memos, "r", "f", "t", 0)  # someone hears the journal
    journal.listener = None
    assert loop.skip(history, memos, "r", "f", "t", 0)
    assert clock.now_ms() == 1499 and len(history) == 4 and loop.budget == 2


def test_skip_and_horizon_check_their_arguments(core):
    loop, _, _, _, _ = _loop(core, [])
    loop.horizon_ms, loop.budget = 10, 1
    with pytest.raises(ValueError, match="ms must be >= 0, got -1"):
        loop.skip([], core.MemoTable(), "r", "f", "s", -1)
    with pytest.raises(TypeError, match="ms must be an int"):
        loop.skip([], core.MemoTable(), "r", "f", "s", 1.5)
    with pytest.raises(TypeError, match="horizon_ms must be an int"):
        loop.horizon_ms = "soon"
    with pytest.raises(ValueError, match="horizon_ms must fit"):
        loop.horizon_ms = 1 << 63
    assert not loop.skip([], core.MemoTable(), "r", "f", "s", (1 << 63) - 1)  # past any end
    loop.horizon_ms = None
    assert loop.horizon_ms is None
    for name in ("timers", "journal"):
        with pytest.raises(TypeError):
            setattr(loop, name, None)  # (the compiled loop calls their C methods directly)
    with pytest.raises(TypeError):
        core.TimerLoop(core.VirtualClock(0), None, [], None, "a", "b", "c", None)


def test_skip_of_a_recorded_item_raises_before_logging_its_end(core):
    seen: list = []
    loop, _, _, _, _ = _loop(core, seen)
    memos = core.MemoTable()
    memos.set("s", MEMO)
    loop.horizon_ms, loop.budget = 10_000, 5
    with pytest.raises(ValueError, match="already recorded"):
        loop.skip([], memos, "r", "f", "s", 5)
    assert [kind for kind, *_ in seen] == ["entry"]  # the start only, in both twins


@pytest.mark.skipif(COMPILED is None, reason="compiled kernel not built")
def test_random_sequences_agree_between_the_twins():
    for seed in range(20):
        results = []
        for core in (PURE, COMPILED):
            rnd = random.Random(seed)
            seen: list = []
            loop, clock, timers, ready, _ = _loop(core, seen, start=rnd.randrange(5000))
            memos, history = core.MemoTable(), []
            out: list = []
            fired: list = []
            for i in range(200):
                op = rnd.randrange(7)
                if op == 0:
                    timers.schedule(clock.now_ms() + rnd.randrange(3000), i)
                elif op == 1:
                    loop.horizon_ms = rnd.choice([None, clock.now_ms() + rnd.randrange(4000)])
                    loop.budget = rnd.randrange(4)
                elif op == 2:
                    out.append(loop.fire_due(clock.now_ms() + rnd.randrange(2000),
                                             _recorder(fired)))
                elif op == 6:
                    out.append(loop.due_step(
                        clock.now_ms() + rnd.randrange(2000),
                        lambda now, lp=loop, sink=fired: lp.fire_due(now, _recorder(sink))))
                elif op == 3 and rnd.random() < 0.3:
                    ready.push(f"r{i}", 0)
                elif op == 3 and ready:
                    ready.pop()
                else:
                    out.append(loop.skip(history, memos, "r", "f", f"s{i}", rnd.randrange(1500)))
                out.append((clock.now_ms(), loop.budget, loop.horizon_ms, len(timers)))
            results.append((out, fired, seen, history, list(memos.items())))
        assert results[0] == results[1], seed


def test_plain_records_copies_subclasses_as_plain_tuples(core):
    entries = [Entry(1, "r", "f", "k", None, {"a": [1]}), (2, "x"), Entry(3, "r", "f", "k", "s", None)]
    out = core.plain_records(entries)
    assert type(out) is tuple and out == ((1, "r", "f", "k", None, {"a": [1]}), (2, "x"),
                                          (3, "r", "f", "k", "s", None))
    assert all(type(rec) is tuple for rec in out) and out[1] is entries[1]
    assert out[0][5] is entries[0][5]  # the fields are shared, not copied
    assert core.plain_records(iter(())) == ()
    with pytest.raises(TypeError, match=r"records\[1\] must be a tuple, got list"):
        core.plain_records([(1,), [2]])


def test_iso_utc_is_isoformat_of_the_datetime(core):
    rnd = random.Random(3)
    lo = core.datetime_to_ms(datetime.datetime(1, 1, 1, tzinfo=datetime.timezone.utc))
    hi = core.datetime_to_ms(datetime.datetime.max.replace(tzinfo=datetime.timezone.utc))
    samples = [lo, hi, 0, -1, 999, 1000, -1000, -86_400_000, 1_735_689_600_000,
               951_782_400_000]  # 2000-02-29
    samples += [rnd.randrange(lo, hi + 1) for _ in range(3000)]
    samples += [rnd.randrange(-10**11, 10**11) // 1000 * 1000 for _ in range(500)]
    for ms in samples:
        assert core.iso_utc(ms) == core.ms_to_datetime(ms).isoformat(), ms
    for bad in (lo - 1, hi + 1, -(1 << 63)):
        with pytest.raises(ValueError, match="outside the years 1 to 9999"):
            core.iso_utc(bad)
    with pytest.raises(TypeError, match="ms must be an int"):
        core.iso_utc(1.0)


class _RecordingClock:
    """A clock that is only a pair of methods: the loop must move and read it through them
    (a clock may keep more than a number, e.g. one shared int per instant)."""

    def __init__(self, now: int) -> None:
        self.now = now
        self.calls: list = []

    def now_ms(self) -> int:
        return self.now

    def advance_to(self, t_ms: int) -> None:
        self.calls.append(t_ms)
        self.now = t_ms


def test_the_clock_is_moved_and_read_through_its_methods(core):
    clock = _RecordingClock(100)
    timers = core.TimerHeap()
    journal = core.Journal(Entry, lambda subject, e: None, lambda subject, item, memo: None)
    loop = core.TimerLoop(clock, timers, [], journal, "w.started", "until", "w.done", MEMO)
    timers.schedule(300, "x")
    fired: list = []

    def fire_due(now_ms: int) -> int:
        fired.append(now_ms)
        return loop.fire_due(now_ms, _recorder(fired))

    assert loop.due_step(1000, fire_due) and clock.calls == [300] and fired == [300, (1, "x")]
    loop.horizon_ms, loop.budget = 1000, 1
    history: list = []
    assert loop.skip(history, core.MemoTable(), "r", "f", "s", 50)
    assert clock.calls == [300, 350] and [e.at_ms for e in history] == [300, 350]
