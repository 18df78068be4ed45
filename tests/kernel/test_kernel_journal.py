"""The kernel's Journal: one entry reaches the trace, a listener, the run's history and the
store's sinks, in that order, identically in both twins."""

from __future__ import annotations

import gc

import pytest

from ._impls import Entry


def _journal(core, seen):
    journal = core.Journal(Entry, lambda subject, e: seen.append(("entry", subject, e)),
                           lambda subject, item, memo: seen.append(("memo", subject, item, memo)))
    return journal


def test_log_hands_the_entry_to_everyone_who_keeps_it(core):
    seen: list = []
    journal = _journal(core, seen)
    trace: list = []
    journal.trace = trace
    journal.listener = lambda e: seen.append(("listener", e))
    history: list = []
    entry = journal.log(history, 5, "r1", "f", "run.started")
    assert type(entry) is Entry and entry == (5, "r1", "f", "run.started", None, None)
    assert trace == [entry] and history == [entry]
    assert seen == [("listener", entry), ("entry", "r1", entry)]


def test_log_without_history_skips_the_store(core):
    seen: list = []
    journal = _journal(core, seen)
    entry = journal.log(None, 1, "", "", "event.received", None, "go")
    assert entry.detail == "go" and seen == []  # no trace, no listener, no history


def test_entry_lists_take_the_entry_instead_of_the_sink(core):
    # A subject that maps to a list gets the entry appended there; anything else (missing,
    # not a list) goes to save_entry as before.
    seen: list = []
    journal = _journal(core, seen)
    assert journal.entry_lists is None
    state: list = ["record"]
    journal.entry_lists = {"r1": state, "r2": ("not", "a", "list")}
    history: list = []
    first = journal.log(history, 1, "r1", "f", "run.started")
    second = journal.log(history, 2, "r2", "f", "run.started")
    third = journal.log(history, 3, "r3", "f", "run.started")
    assert state == ["record", first] and history == [first, second, third]
    assert seen == [("entry", "r2", second), ("entry", "r3", third)]
    journal.log(None, 4, "r1", "", "event.received")  # no history: nowhere but the trace
    assert state == ["record", first]
    journal.entry_lists = None
    journal.log(history, 5, "r1", "f", "run.completed")
    assert seen[-1][:2] == ("entry", "r1") and state == ["record", first]


def test_memoize_records_then_logs(core):
    seen: list = []
    journal = _journal(core, seen)
    memos = core.MemoTable()
    history: list = []
    entry = journal.memoize(memos, history, 7, "r1", "f", "step.completed", "a", ("run", True, 1))
    assert memos.get("a") == ("run", True, 1)
    assert entry == (7, "r1", "f", "step.completed", "a", None) and history == [entry]
    assert seen == [("memo", "r1", "a", ("run", True, 1)), ("entry", "r1", entry)]
    failed = journal.memoize(memos, history, 9, "r1", "f", "step.errored", "b",
                             ("run", False, {"name": "E"}), "E: boom")
    assert failed == (9, "r1", "f", "step.errored", "b", "E: boom") and history[-1] is failed
    history.pop()
    seen[2:] = []
    with pytest.raises(ValueError, match="already recorded"):
        journal.memoize(memos, history, 8, "r1", "f", "step.completed", "a", ("run", True, 2))
    assert len(history) == 1


def test_entries_are_not_tracked_by_the_collector_when_compiled(core):
    journal = _journal(core, [])
    entry = journal.log(None, 1, "r", "f", "k", None, {"a": 1})
    assert gc.is_tracked(entry) is (core.__name__.endswith("_core_py"))
