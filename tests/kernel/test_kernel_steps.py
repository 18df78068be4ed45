"""The kernel's StepBook/StepRules (a step's short path), identically in both twins: which
answer ``open_step`` gives in each state, what ``record`` writes and where, and the
fallbacks (SLOW/BEGUN) that leave everything unusual to the caller's own code."""

from __future__ import annotations

import contextvars

import pytest

from ._impls import AVAILABLE, Entry, outcome, same


class Run:
    """The duck-typed run a book reads (the engine's RunState has these attributes)."""

    def __init__(self, core) -> None:
        self.id = "r1"
        self.fn_id = "f"
        self.memos = core.MemoTable()
        self.history: list = []
        self.pending: dict = {}
        self.attempt = 0
        self.cancel_requested = False


class Host:
    generation = 0


class Ctx:
    attempt = -1


CURRENT: contextvars.ContextVar = contextvars.ContextVar("kstep_test_current", default=None)


def _copy(value):
    return ("copied", value)


def _check(full_id, value):
    if isinstance(value, set):
        raise TypeError(f"{full_id}: a set")
    return ("checked", value)


def _setup(core, *, commit=True):
    seen: list = []
    journal = core.Journal(Entry, lambda subject, e: seen.append(("entry", subject, e)),
                           lambda subject, item, memo: seen.append(("memo", subject, item, memo)))
    trace: list = []
    journal.trace = trace
    clock = core.VirtualClock(1_000)
    rules = core.StepRules("run", "step.completed", journal, clock.now_ms, _check, _copy, CURRENT,
                           (lambda: seen.append(("commit",))) if commit else None)

    class Book(core.StepBook):
        __slots__ = ("extra",)  # the engine's Execution extends the book the same way

    book = Book()
    book.engine, book.run, book.ctx, book.rules = Host(), Run(core), Ctx(), rules
    book.generation = 0
    book.fast = True
    return book, seen, trace


def _state(book) -> tuple:
    return (book.in_body, book.step_name, book.full_id, book.busy_ms, book.ctx.attempt,
            book.run.attempt, sorted(book.run.memos.items()), list(book.run.history),
            dict(book.run.pending))


def test_a_new_book_starts_empty(core):
    book = core.StepBook()
    assert (book.engine, book.run, book.ctx, book.rules) == (None, None, None, None)
    assert (book.in_body, book.generation, book.full_id) == (None, None, None)
    assert (book.step_name, book.busy_ms, book.fast, book.memo_phase) == ("", 0, False, False)
    assert book.open_step("a") is core.SLOW  # not fast: nothing done


def test_body_then_record(core):
    book, seen, trace = _setup(core)
    book.run.attempt = 2
    assert book.open_step("a") is core.BODY
    assert (book.in_body, book.step_name, book.full_id, book.ctx.attempt) == ("a", "a", "a", 2)
    assert CURRENT.get() is book
    assert book.checked("a", 5) == 5 and book.checked("a", None) is None
    assert book.checked("a", [1]) == ("checked", [1])
    assert book.record("a", 5) == 5
    assert book.in_body is None and book.run.attempt == 0
    entry = (1_000, "r1", "f", "step.completed", "a", None)
    assert book.run.memos.get("a") == ("run", True, 5) and book.run.history == [entry]
    assert trace == [entry] and type(trace[0]) is Entry
    assert seen == [("memo", "r1", "a", ("run", True, 5)), ("entry", "r1", entry), ("commit",)]
    # a second "a" is "a:1"; a recorded container comes back through copy, a float as it is
    assert book.open_step("a") is core.BODY and book.full_id == "a:1"
    assert book.record("a:1", {"k": 1}) == ("copied", {"k": 1})
    assert book.open_step("b") is core.BODY
    assert book.record("b", 1.5) == 1.5


def test_memos_are_answered_on_replay(core):
    book, seen, _ = _setup(core, commit=False)
    book.run.memos.set("a", ("run", True, 3))
    book.run.memos.set("b", ("run", True, [1, 2]))
    book.run.memos.set("c", ("run", False, {"name": "E"}))  # an error: the caller raises it
    book.run.memos.set("d", ("sleep", True, None))  # another op: the caller reports it
    assert book.open_step("a") == 3
    assert book.open_step("b") == ("copied", [1, 2])
    assert book.open_step("c") is core.BEGUN and book.full_id == "c"
    assert book.open_step("d") is core.BEGUN and book.full_id == "d"
    assert book.in_body is None and seen == []


@pytest.mark.parametrize("change", ["not_fast", "memo_phase", "in_body", "generation",
                                    "cancel", "empty_id", "not_str", "str_subclass"])
def test_slow_means_nothing_was_done(core, change):
    book, seen, _ = _setup(core)
    step_id: object = "a"
    if change == "not_fast":
        book.fast = False
    elif change == "memo_phase":
        book.memo_phase = True
    elif change == "in_body":
        book.in_body = "outer"
    elif change == "generation":
        book.engine.generation = 1
    elif change == "cancel":
        book.run.cancel_requested = True
    elif change == "empty_id":
        step_id = ""
    elif change == "not_str":
        step_id = 3
    else:
        step_id = type("S", (str,), {})("a")
    before = _state(book)
    assert book.open_step(step_id) is core.SLOW
    assert _state(book) == before and seen == []
    assert book.run.memos.next_id("a") == "a"  # the counter was not moved


def test_pending_state_is_left_to_the_caller(core):
    book, _, _ = _setup(core)
    book.run.pending["x"] = "a retry"
    assert book.open_step("a") is core.BEGUN and book.in_body is None
    assert book.full_id == "a"


def test_record_pops_pending_and_a_busy_body_records_nothing(core):
    book, seen, _ = _setup(core)
    assert book.open_step("a") is core.BODY
    book.run.pending["a"] = "held"
    book.run.pending["z"] = "other"
    assert book.record("a", 1) == 1 and book.run.pending == {"z": "other"}
    assert book.open_step("b") is core.BEGUN  # pending left: the caller decides
    book.run.pending.clear()
    assert book.open_step("c") is core.BODY
    book.busy_ms = 50
    del seen[:]
    assert book.record("c", 1) is core.SLOW
    assert book.in_body is None and "c" not in book.run.memos and seen == []


def test_check_errors_and_a_repeated_record_raise(core):
    book, _, _ = _setup(core)
    assert book.open_step("a") is core.BODY
    with pytest.raises(TypeError, match="a: a set"):
        book.checked("a", {1})
    book.record("a", 1)
    with pytest.raises(ValueError, match="already recorded"):
        book.record("a", 2)


def test_bad_rules_are_named(core):
    journal = core.Journal(Entry, lambda *a: None, lambda *a: None)
    good = ("run", "k", journal, int, _check, _copy, CURRENT, None)
    for at, bad in ((0, 1), (1, None), (2, object()), (3, 5), (4, "x"), (5, None),
                    (6, "var"), (7, 3)):
        args = list(good)
        args[at] = bad
        with pytest.raises(TypeError) as err:
            core.StepRules(*args)
        name = ("op", "kind", "journal", "now_ms", "check", "copy", "current", "commit")[at]
        assert str(err.value).startswith(f"{name} must be")
    book = core.StepBook()
    book.fast = True
    book.rules = "nope"
    with pytest.raises(TypeError, match="rules must be a StepRules, got str"):
        book.record("a", 1)
    assert repr(core.StepRules(*good)) == "StepRules(op='run', kind='k')"
    assert (repr(core.SLOW), repr(core.BEGUN), repr(core.BODY)) == ("SLOW", "BEGUN", "BODY")


def _transcript(core) -> list:
    """One mixed sequence of operations; every answer and the book's state after it."""
    book, seen, trace = _setup(core)
    book.run.memos.set("m", ("run", True, {"v": 1}))
    out: list = []

    def note(name, fn, *args):
        got = outcome(fn, *args)
        if got[0] == "ok" and got[1] in (core.SLOW, core.BEGUN, core.BODY):
            got = ("ok", repr(got[1]))
        out.append((name, got, _state(book)))

    for step_id in ("m", "a", "a", "m", "", "b"):
        note("open", book.open_step, step_id)
        if book.in_body is not None:
            note("checked", book.checked, book.full_id, [step_id])
            note("record", book.record, book.full_id, step_id)
    book.memo_phase = True
    note("open", book.open_step, "c")
    book.memo_phase = False
    book.run.pending["p"] = 1
    note("open", book.open_step, "c")
    out.append(("sinks", [(s[0], *s[1:3]) for s in seen], list(trace)))
    return out


def test_the_twins_agree_on_a_transcript():
    same([_transcript(core) for _, core in AVAILABLE])

