"""MemoTable, ReadyQueue and KeyedCounter unit tests, on every kernel implementation."""

from __future__ import annotations

import gc
import weakref

import pytest

# ------------------------------------------------------------------ MemoTable


def test_memo_step_ids_get_counter_suffixes(core):
    memo = core.MemoTable()
    assert [memo.next_id("fetch") for _ in range(4)] == ["fetch", "fetch:1", "fetch:2", "fetch:3"]
    assert memo.next_id("other") == "other"
    assert memo.next_id("fetch") == "fetch:4"
    memo.reset_counter()  # a replay starts over
    assert memo.next_id("fetch") == "fetch"
    assert memo.next_id("other") == "other"
    assert memo.next_id("other") == "other:1"


def test_memo_records_once(core):
    memo = core.MemoTable()
    assert len(memo) == 0
    assert memo.get("a") is None
    assert memo.get("a", "dflt") == "dflt"
    assert "a" not in memo
    memo.set("a", {"x": 1})
    memo.set("b", None)  # None is a legitimate outcome
    assert "a" in memo and "b" in memo
    assert memo.get("a") == {"x": 1}
    assert memo.get("b", "dflt") is None
    assert len(memo) == 2
    with pytest.raises(ValueError, match=r"step 'a' is already recorded"):
        memo.set("a", 2)
    assert memo.get("a") == {"x": 1}
    assert memo.items() == [("a", {"x": 1}), ("b", None)]


def test_memo_items_keep_insertion_order_and_pop(core):
    memo = core.MemoTable()
    for name in ("z", "a", "m"):
        memo.set(name, name.upper())
    assert memo.items() == [("z", "Z"), ("a", "A"), ("m", "M")]
    assert memo.pop("a") == "A"
    assert memo.pop("a", 42) == 42
    with pytest.raises(KeyError):
        memo.pop("a")
    assert memo.items() == [("z", "Z"), ("m", "M")]
    memo.set("a", "again")  # recordable again once popped
    assert memo.items()[-1] == ("a", "again")


def test_memo_argument_errors(core):
    memo = core.MemoTable()
    with pytest.raises(TypeError, match="step_id must be a str, got int"):
        memo.next_id(3)
    with pytest.raises(TypeError, match="full_id must be a str, got NoneType"):
        memo.set(None, 1)
    with pytest.raises(TypeError, match="step_id must be a str, got list"):
        memo.next_id(["unhashable"])
    assert len(memo) == 0


def test_memo_get_is_the_dicts_own(core):
    memo = core.MemoTable()
    memo.set("a", 1)
    assert memo.get("a") == 1
    assert memo.get("b", 2) == 2
    with pytest.raises(TypeError):
        memo.get("a", default=3)  # default is positional-only, as in dict.get
    with pytest.raises(TypeError):
        memo.next_id(step_id="a")  # so is next_id's argument


def test_memo_replays_repeat_the_same_ids(core):
    memo = core.MemoTable()
    first = [memo.next_id(base) for base in ["a", "b", "a", "a", "b", "c"]]
    assert first == ["a", "b", "a:1", "a:2", "b:1", "c"]
    for _ in range(3):
        memo.reset_counter()
        assert [memo.next_id(base) for base in ["a", "b", "a", "a", "b", "c"]] == first
    memo.reset_counter()
    assert [memo.next_id("a") for _ in range(5)] == ["a", "a:1", "a:2", "a:3", "a:4"]


# ------------------------------------------------------------------ ReadyQueue


def test_ready_queue_priority_then_fifo(core):
    q = core.ReadyQueue()
    assert len(q) == 0 and not q
    q.push("low-1", -5)
    q.push("mid-1")
    q.push("high", 100)
    q.push("mid-2", 0)
    q.push("low-2", -5)
    assert len(q) == 5 and q
    assert q.peek() == "high"
    assert [q.pop() for _ in range(5)] == ["high", "mid-1", "mid-2", "low-1", "low-2"]
    assert not q


def test_ready_queue_empty_errors(core):
    q = core.ReadyQueue()
    with pytest.raises(IndexError, match="pop from an empty ReadyQueue"):
        q.pop()
    with pytest.raises(IndexError, match="peek at an empty ReadyQueue"):
        q.peek()


def test_ready_queue_argument_errors(core):
    q = core.ReadyQueue()
    with pytest.raises(TypeError, match="priority must be an int, got float"):
        q.push("x", 1.0)
    with pytest.raises(ValueError, match="priority must fit in a signed 64-bit integer"):
        q.push("x", 2**63)
    assert len(q) == 0
    q.push("min", -(2**63))
    q.push("max", 2**63 - 1)
    assert q.pop() == "max" and q.pop() == "min"


def test_ready_queue_reuses_slots_across_bursts(core):
    q = core.ReadyQueue()
    for burst in range(3):
        for i in range(2_000):
            q.push((burst, i), i % 7)
        out = [q.pop() for _ in range(1_000)]
        for i in range(500):
            q.push((burst, "late", i), 3)
        out += [q.pop() for _ in range(len(q))]
        assert len(out) == 2_500
        assert len(set(out)) == 2_500
        assert not q
    q.push("after", 0)
    assert q.peek() == "after" and q.pop() == "after"


def test_ready_queue_gives_memory_back(core):
    q = core.ReadyQueue()
    q.push("keep", -1)
    for i in range(20_000):
        q.push(i, i % 5)
    for _ in range(20_000):
        q.pop()
    assert len(q) == 1 and q._storage_size() <= 1_100  # back to O(live + a constant)
    assert q.pop() == "keep"
    assert q._storage_size() <= 64


def test_ready_queue_items_are_released_and_collectable(core):
    class Item:
        pass

    q = core.ReadyQueue()
    item = Item()
    ref = weakref.ref(item)
    q.push(item)
    q.push("other")
    del item
    q.pop()
    gc.collect()
    assert ref() is None

    holder = Item()
    holder.queue = core.ReadyQueue()
    holder.queue.push(holder)
    ref = weakref.ref(holder)
    del holder
    gc.collect()
    assert ref() is None  # a queue <-> item cycle is visible to the garbage collector


# ------------------------------------------------------------------ KeyedCounter


def test_keyed_counter_limits_per_key(core):
    kc = core.KeyedCounter()
    assert kc.try_acquire("a", 2) is True
    assert kc.try_acquire("a", 2) is True
    assert kc.try_acquire("a", 2) is False
    assert kc.try_acquire(("t", 1), 1) is True
    assert kc.count("a") == 2 and kc.count(("t", 1)) == 1 and kc.count("nobody") == 0
    assert len(kc) == 2
    kc.release("a")
    assert kc.count("a") == 1
    assert kc.try_acquire("a", 2) is True
    kc.release("a")
    kc.release("a")
    kc.release(("t", 1))
    assert len(kc) == 0  # keys at zero are dropped
    assert kc.try_acquire("a", 10**30) is True  # a huge limit is just "no limit"


def test_keyed_counter_errors(core):
    kc = core.KeyedCounter()
    with pytest.raises(ValueError, match="release without acquire for key 'a'"):
        kc.release("a")
    for bad in (0, -1, -(10**30)):
        with pytest.raises(ValueError, match=f"limit must be >= 1, got {bad}"):
            kc.try_acquire("a", bad)
    with pytest.raises(TypeError, match="limit must be an int"):
        kc.try_acquire("a", 1.0)
    with pytest.raises(TypeError, match="unhashable"):
        kc.try_acquire(["a"], 1)
    assert len(kc) == 0
