"""Stateful differential tests: Hypothesis drives every available kernel implementation with
the same random operation sequence, asserts that they answer identically (values and errors),
and checks the common answer against a deliberately simple reference model."""

from __future__ import annotations

import math
from fractions import Fraction

import hypothesis.strategies as st
from hypothesis import HealthCheck, settings
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from ._impls import AVAILABLE, outcome, same

I64_MIN = -(2**63)
I64_MAX = 2**63 - 1
MASK64 = 2**64 - 1

FAST = settings(
    max_examples=100,
    stateful_step_count=70,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)

BAD_INTS = st.one_of(
    st.integers(min_value=I64_MAX + 1, max_value=2**70),
    st.integers(min_value=-(2**70), max_value=I64_MIN - 1),
    st.floats(allow_nan=False),
    st.booleans(),
    st.none(),
    st.text(max_size=2),
)


class _Differential(RuleBasedStateMachine):
    """Holds one object per implementation; ``call`` runs a method on all of them."""

    objects: list

    def call(self, name: str, *args):
        return same([outcome(getattr(obj, name), *args) for obj in self.objects])


# ------------------------------------------------------------------ TimerHeap


class TimerHeapMachine(_Differential):
    def __init__(self):
        super().__init__()
        self.objects = [module.TimerHeap() for _, module in AVAILABLE]
        self.ref: dict[int, tuple[int, int, object]] = {}
        self.next_handle = 1

    def _expected_due(self, limit: int) -> list[tuple[int, int, object]]:
        return sorted(entry for entry in self.ref.values() if entry[0] <= limit)

    @rule(due=st.integers(-50, 200), payload=st.integers())
    def schedule(self, due, payload):
        assert self.call("schedule", due, payload) == ("ok", self.next_handle)
        self.ref[self.next_handle] = (due, self.next_handle, payload)
        self.next_handle += 1

    @rule(due=st.one_of(st.just(I64_MIN), st.just(I64_MAX)))
    def schedule_extreme(self, due):
        self.schedule(due, "extreme")

    @rule(due=BAD_INTS)
    def schedule_bad(self, due):
        result = self.call("schedule", due, None)
        assert result[0] == "raise" and result[1] in (TypeError, ValueError)

    @rule(data=st.data())
    def cancel(self, data):
        choices = st.integers(-2, self.next_handle + 2)
        if self.ref:
            choices = st.one_of(st.sampled_from(sorted(self.ref)), choices)
        handle = data.draw(choices)
        result = self.call("cancel", handle)
        if handle in self.ref:
            assert result == ("ok", None)
            del self.ref[handle]
        else:
            assert result[0] == "raise" and result[1] is ValueError

    @precondition(lambda self: len(self.ref) > 4)
    @rule(data=st.data())
    def cancel_most(self, data):
        # pushes dead entries past half the heap, forcing a compaction
        victims = data.draw(st.lists(st.sampled_from(sorted(self.ref)), unique=True))
        for handle in victims:
            assert self.call("cancel", handle) == ("ok", None)
            del self.ref[handle]

    @rule(limit=st.integers(-60, 250))
    def pop_next(self, limit):
        expected = self._expected_due(limit)
        result = self.call("pop_next", limit)
        if expected:
            assert result == ("ok", expected[0])
            del self.ref[expected[0][1]]
        else:
            assert result == ("ok", None)

    @rule(limit=st.integers(-60, 250))
    def pop_due(self, limit):
        expected = self._expected_due(limit)
        assert self.call("pop_due", limit) == ("ok", expected)
        for entry in expected:
            del self.ref[entry[1]]

    @rule()
    def peek_due(self):
        expected = min(self.ref.values())[0] if self.ref else None
        assert self.call("peek_due") == ("ok", expected)

    @rule(handle=st.integers(-2, 300))
    def contains(self, handle):
        assert self.call("__contains__", handle) == ("ok", handle in self.ref)

    @invariant()
    def sizes(self):
        assert self.call("__len__") == ("ok", len(self.ref))
        for obj in self.objects:
            assert obj._storage_size() <= 2 * len(self.ref) + 1 or obj._storage_size() < 8


# ------------------------------------------------------------------ ReadyQueue


class ReadyQueueMachine(_Differential):
    def __init__(self):
        super().__init__()
        self.objects = [module.ReadyQueue() for _, module in AVAILABLE]
        self.ref: list[tuple[int, int, object]] = []  # (-priority, seq, item)
        self.seq = 0

    @rule(
        priority=st.one_of(st.integers(-3, 3), st.integers(I64_MIN, I64_MAX)),
        use_default=st.booleans(),
    )
    def push(self, priority, use_default):
        item = ("item", self.seq)
        if use_default:
            priority = 0
            assert self.call("push", item) == ("ok", None)
        else:
            assert self.call("push", item, priority) == ("ok", None)
        self.ref.append((-priority, self.seq, item))
        self.seq += 1

    @rule(priority=BAD_INTS)
    def push_bad(self, priority):
        result = self.call("push", "bad", priority)
        assert result[0] == "raise" and result[1] in (TypeError, ValueError)

    @rule()
    def pop(self):
        result = self.call("pop")
        if self.ref:
            best = min(self.ref)
            self.ref.remove(best)
            assert result == ("ok", best[2])
        else:
            assert result[:2] == ("raise", IndexError)

    @rule()
    def peek(self):
        result = self.call("peek")
        if self.ref:
            assert result == ("ok", min(self.ref)[2])
        else:
            assert result[:2] == ("raise", IndexError)

    @invariant()
    def sizes(self):
        assert self.call("__len__") == ("ok", len(self.ref))
        assert self.call("__bool__") == ("ok", bool(self.ref))


# ------------------------------------------------------------------ MemoTable

BASE_IDS = st.sampled_from(["a", "b", "a:1", "step"])
FULL_IDS = st.sampled_from(["a", "a:1", "a:2", "a:1:1", "b", "b:1", "step", "step:3"])


class MemoTableMachine(_Differential):
    def __init__(self):
        super().__init__()
        self.objects = [module.MemoTable() for _, module in AVAILABLE]
        self.ref: dict[str, object] = {}
        self.counters: dict[str, int] = {}

    @rule(base=BASE_IDS)
    def next_id(self, base):
        # the reference rule: a base used again in this replay takes the first suffix not
        # yet handed out (so an explicit "a:1" never aliases the second "a")
        used = self.counters  # every id handed out since the last reset -> its last suffix
        if base not in used:
            used[base] = 0
            expected = base
        else:
            n = used[base]
            while True:
                n += 1
                expected = f"{base}:{n}"
                if expected not in used:
                    break
            used[base] = n
            used[expected] = 0
        assert self.call("next_id", base) == ("ok", expected)

    @rule()
    def reset_counter(self):
        assert self.call("reset_counter") == ("ok", None)
        self.counters.clear()

    @rule(full_id=FULL_IDS, value=st.one_of(st.none(), st.integers(), st.text(max_size=3)))
    def set(self, full_id, value):
        result = self.call("set", full_id, value)
        if full_id in self.ref:
            assert result == ("raise", ValueError, f"step {full_id!r} is already recorded")
        else:
            assert result == ("ok", None)
            self.ref[full_id] = value

    @rule(full_id=FULL_IDS, with_default=st.booleans())
    def get(self, full_id, with_default):
        if with_default:
            assert self.call("get", full_id, "dflt") == ("ok", self.ref.get(full_id, "dflt"))
        else:
            assert self.call("get", full_id) == ("ok", self.ref.get(full_id))

    @rule(full_id=FULL_IDS)
    def pop(self, full_id):
        result = self.call("pop", full_id)
        if full_id in self.ref:
            assert result == ("ok", self.ref.pop(full_id))
        else:
            assert result[:2] == ("raise", KeyError)

    @rule(value=st.one_of(st.integers(), st.none(), st.binary(max_size=2)))
    def bad_ids(self, value):
        assert self.call("next_id", value)[:2] == ("raise", TypeError)
        assert self.call("set", value, 1)[:2] == ("raise", TypeError)

    @invariant()
    def contents(self):
        assert self.call("__len__") == ("ok", len(self.ref))
        assert self.call("items") == ("ok", list(self.ref.items()))
        for full_id in ("a", "a:1", "b"):
            assert self.call("__contains__", full_id) == ("ok", full_id in self.ref)


# ------------------------------------------------------------------ KeyedCounter

KEYS = st.sampled_from(["x", "y", ("tuple", 1), 7])


class KeyedCounterMachine(_Differential):
    def __init__(self):
        super().__init__()
        self.objects = [module.KeyedCounter() for _, module in AVAILABLE]
        self.ref: dict[object, int] = {}

    @rule(key=KEYS, limit=st.one_of(st.integers(1, 3), st.integers(-(2**65), 2**65)))
    def try_acquire(self, key, limit):
        result = self.call("try_acquire", key, limit)
        if limit < 1:
            assert result[:2] == ("raise", ValueError)
            return
        admitted = self.ref.get(key, 0) < limit
        assert result == ("ok", admitted)
        if admitted:
            self.ref[key] = self.ref.get(key, 0) + 1

    @rule(key=KEYS)
    def release(self, key):
        result = self.call("release", key)
        if self.ref.get(key, 0) == 0:
            assert result == ("raise", ValueError, f"release without acquire for key {key!r}")
        else:
            assert result == ("ok", None)
            self.ref[key] -= 1
            if self.ref[key] == 0:
                del self.ref[key]

    @invariant()
    def counts(self):
        assert self.call("__len__") == ("ok", len(self.ref))
        for key in ("x", "y", ("tuple", 1), 7):
            assert self.call("count", key) == ("ok", self.ref.get(key, 0))


# ------------------------------------------------------------------ GCRA


class FractionGCRA:
    """The GCRA as written in the docs, with exact rational times in ms."""

    def __init__(self, limit: int, period_ms: int, tolerance: int) -> None:
        self.limit = limit
        self.T = Fraction(period_ms, limit)
        self.slack = tolerance * self.T
        self.tat: dict[object, Fraction] = {}

    def peek(self, key, now: int) -> int:
        tat = self.tat.get(key)
        if tat is None or tat <= now + self.slack:
            return -1
        return math.ceil(tat - self.slack)

    def acquire(self, key, now: int) -> int:
        answer = self.peek(key, now)
        if answer == -1:
            self.tat[key] = max(self.tat.get(key, Fraction(now)), Fraction(now)) + self.T
        return answer

    def get_state(self, key):
        tat = self.tat.get(key)
        if tat is None:
            return None
        scaled = tat * self.limit
        assert scaled.denominator == 1
        return int(scaled)

    def set_state(self, key, tat_s: int) -> None:
        self.tat[key] = Fraction(tat_s, self.limit)

    def forget_before(self, now: int) -> None:
        self.tat = {k: t for k, t in self.tat.items() if t > now}


GCRA_KEYS = st.sampled_from(["k1", "k2", ("acct", 3)])


class GCRAMachine(_Differential):
    def __init__(self):
        super().__init__()
        self.objects = []
        self.model = None
        self.now = 0

    @initialize(
        params=st.one_of(
            st.tuples(st.integers(1, 50), st.integers(1, 10_000), st.integers(0, 60)),
            # huge parameters: the compiled kernel must leave its int64 fast path, exactly
            st.tuples(st.integers(1, 2**64), st.integers(1, 2**64), st.integers(0, 2**40)),
        ),
        start=st.integers(0, 10**13),
    )
    def setup(self, params, start):
        limit, period, tolerance = params
        self.objects = [module.GCRA(limit, period, tolerance) for _, module in AVAILABLE]
        self.model = FractionGCRA(limit, period, tolerance)
        self.now = start
        self.period = period

    @rule(d=st.integers(0, 20_000))
    def advance(self, d):
        self.now = min(self.now + d, I64_MAX)

    @rule(frac=st.integers(0, 8))
    def advance_by_periods(self, frac):
        self.now = min(self.now + frac * self.period // 4, I64_MAX)

    @rule(now=st.one_of(st.integers(0, I64_MAX), st.integers(I64_MAX - 10**6, I64_MAX)))
    def jump(self, now):
        # also far past 2**62 / limit, where the compiled kernel computes with Python ints
        self.now = now

    @rule(key=GCRA_KEYS, repeat=st.integers(1, 5))
    def acquire(self, key, repeat):
        for _ in range(repeat):
            assert self.call("acquire", key, self.now) == ("ok", self.model.acquire(key, self.now))

    @rule(key=GCRA_KEYS)
    def peek(self, key):
        assert self.call("peek", key, self.now) == ("ok", self.model.peek(key, self.now))

    @rule(key=GCRA_KEYS, delta=st.integers(-(10**6), 10**6), huge=st.booleans())
    def set_state(self, key, delta, huge):
        tat_s = self.now * self.model.limit + delta * (2**70 if huge else 1)
        assert self.call("set_state", key, tat_s) == ("ok", None)
        self.model.set_state(key, tat_s)

    @rule(back=st.integers(0, 50_000))
    def forget_before(self, back):
        at = max(self.now - back, 0)
        assert self.call("forget_before", at) == ("ok", None)
        self.model.forget_before(at)

    @rule(now=BAD_INTS.filter(lambda v: not isinstance(v, bool)) | st.integers(-(2**64), -1))
    def bad_now(self, now):
        result = self.call("acquire", "k1", now)
        assert result[0] == "raise" and result[1] in (TypeError, ValueError)

    @invariant()
    def states(self):
        if self.model is None:
            return
        assert self.call("__len__") == ("ok", len(self.model.tat))
        for key in ("k1", "k2", ("acct", 3)):
            assert self.call("get_state", key) == ("ok", self.model.get_state(key))


# ------------------------------------------------------------------ SeededRandom


class RefSplitMix:
    """splitmix64 and the kernel's derived draws, straight from their definitions."""

    def __init__(self, seed: int) -> None:
        self.state = seed % 2**64

    def next_u64(self) -> int:
        self.state = (self.state + 0x9E3779B97F4A7C15) % 2**64
        z = self.state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) % 2**64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) % 2**64
        return z ^ (z >> 31)

    def randbelow(self, n: int) -> int:
        while True:
            r = self.next_u64()
            if r >= 2**64 % n:
                return r % n

    def ulid(self, ms: int) -> str:
        rand = ((self.next_u64() & 0xFFFF) << 64) | self.next_u64()
        value = (ms << 80) | rand
        alphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
        return "".join(alphabet[(value >> (5 * i)) & 31] for i in reversed(range(26)))

    def hex(self, nbytes: int) -> str:
        return "".join(f"{self.next_u64():016x}" for _ in range((nbytes + 7) // 8))[: 2 * nbytes]


class SeededRandomMachine(_Differential):
    def __init__(self):
        super().__init__()
        self.objects = []
        self.ref = None

    @initialize(seed=st.integers(-(2**70), 2**70))
    def setup(self, seed):
        self.objects = [module.SeededRandom(seed) for _, module in AVAILABLE]
        self.ref = RefSplitMix(seed)

    @rule()
    def next_u64(self):
        assert self.call("next_u64") == ("ok", self.ref.next_u64())

    @rule(n=st.one_of(st.integers(1, 10), st.integers(1, 2**64), st.just(2**63 + 1)))
    def randbelow(self, n):
        assert self.call("randbelow", n) == ("ok", self.ref.randbelow(n))

    @rule(lo=st.integers(-(2**64), 2**64), width=st.integers(1, 2**64))
    def randrange(self, lo, width):
        assert self.call("randrange", lo, lo + width) == ("ok", lo + self.ref.randbelow(width))

    @rule(ms=st.integers(0, 2**48 - 1))
    def ulid(self, ms):
        assert self.call("ulid", ms) == ("ok", self.ref.ulid(ms))

    @rule(nbytes=st.integers(0, 40))
    def hex(self, nbytes):
        assert self.call("hex", nbytes) == ("ok", self.ref.hex(nbytes))

    @rule(state=st.integers(0, MASK64))
    def set_state(self, state):
        assert self.call("set_state", state) == ("ok", None)
        self.ref.state = state

    @rule(
        n=st.one_of(
            st.integers(max_value=0),
            st.integers(min_value=2**64 + 1),
            st.floats(),
            st.booleans(),
            st.none(),
        ),
        ms=st.one_of(st.integers(max_value=-1), st.integers(min_value=2**48)),
    )
    def bad_arguments(self, n, ms):
        for name, args in (("randbelow", (n,)), ("ulid", (ms,)), ("hex", (-1,))):
            result = self.call(name, *args)
            assert result[0] == "raise" and result[1] in (TypeError, ValueError)

    @invariant()
    def state(self):
        if self.ref is not None:
            assert self.call("get_state") == ("ok", self.ref.state)


TestTimerHeap = TimerHeapMachine.TestCase
TestReadyQueue = ReadyQueueMachine.TestCase
TestMemoTable = MemoTableMachine.TestCase
TestKeyedCounter = KeyedCounterMachine.TestCase
TestGCRA = GCRAMachine.TestCase
TestSeededRandom = SeededRandomMachine.TestCase

for _case in (
    TestTimerHeap,
    TestReadyQueue,
    TestMemoTable,
    TestKeyedCounter,
    TestGCRA,
    TestSeededRandom,
):
    _case.settings = FAST
del _case  # unittest-style classes are collected under any name
