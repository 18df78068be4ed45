"""Pure-Python twin of the compiled kernel ``inngest_do/_core.pyx``.

Same names, same signatures, same results and same error messages as the compiled module;
``inngest_do.kernel`` picks one of the two. Nothing in here knows about Inngest: these are
the engine's data structures (clocks, a timer heap, memo tables, a ready queue, rate limiters,
a seeded random source). All times are integer milliseconds.

None of the types is thread-safe: each belongs to the one thread (event loop) driving an engine.

Integer arguments must be ``int`` (``bool`` is refused) and, where the compiled kernel keeps
them in a C ``int64``, fit in a signed 64-bit integer; the twin checks the same ranges so the
two raise the same errors.
"""

from __future__ import annotations

import collections
import contextvars
import datetime as _dt
import time as _time
import typing
from heapq import heapify as _heapify
from heapq import heappop as _heappop
from heapq import heappush as _heappush

__all__ = [
    "BEGUN",
    "BODY",
    "DONE",
    "GCRA",
    "PARKED",
    "RAISED",
    "SLOW",
    "Drive",
    "Journal",
    "KeyedCounter",
    "MemoTable",
    "ReadyQueue",
    "RealClock",
    "SeededRandom",
    "StepBook",
    "StepRules",
    "TimerHeap",
    "TimerLoop",
    "VirtualClock",
    "datetime_to_ms",
    "iso_utc",
    "ms_to_datetime",
    "plain_records",
    "untracked_record",
]

_I64_MIN = -(1 << 63)
_I64_MAX = (1 << 63) - 1
_U64 = 1 << 64
_MASK64 = _U64 - 1
_MISSING = object()


def _int(value: object, name: str) -> int:
    """Check that ``value`` is an int (not a bool); return it."""
    if type(value) is int:
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return int(value)
    raise TypeError(f"{name} must be an int, got {type(value).__name__}")


def _i64(value: object, name: str) -> int:
    """Check that ``value`` is an int that fits in a signed 64-bit integer; return it."""
    if type(value) is not int:
        value = _int(value, name)
    if _I64_MIN <= value <= _I64_MAX:
        return value
    raise ValueError(f"{name} must fit in a signed 64-bit integer, got {value}")


# --------------------------------------------------------------------------- time helpers

_EPOCH = _dt.datetime(1970, 1, 1, tzinfo=_dt.timezone.utc)


def untracked_record(cls: type, *fields: object) -> tuple:
    """``cls(*fields)`` for a tuple subclass ``cls`` (a NamedTuple, say), built with
    ``tuple.__new__`` and, in the compiled core, not tracked by the garbage collector.

    For records kept for a long time in large numbers whose fields can never lead back to the
    record (so it can never be part of a reference cycle): a collection then skips it and
    everything only it points at stays alive as its reference count says. The pure twin cannot
    untrack; it returns the same value.
    """
    return tuple.__new__(cls, fields)


def ms_to_datetime(ms: int) -> _dt.datetime:
    """Milliseconds since the Unix epoch -> aware UTC datetime (exact, no float)."""
    ms = _int(ms, "ms")
    return _EPOCH + _dt.timedelta(milliseconds=ms)


def datetime_to_ms(dt: _dt.datetime) -> int:
    """Datetime -> milliseconds since the Unix epoch (floor). Naive datetimes are UTC."""
    if not isinstance(dt, _dt.datetime):
        raise TypeError(f"dt must be a datetime.datetime, got {type(dt).__name__}")
    if dt.tzinfo is None or dt.tzinfo.utcoffset(dt) is None:
        dt = dt.replace(tzinfo=_dt.timezone.utc)
    delta = dt - _EPOCH
    return delta.days * 86_400_000 + delta.seconds * 1000 + delta.microseconds // 1000


# --------------------------------------------------------------------------- clocks


class VirtualClock:
    """A clock that moves only when told to. O(1) for every operation."""

    __slots__ = ("_now",)

    def __init__(self, start_ms: int) -> None:
        self._now = _i64(start_ms, "start_ms")

    @property
    def is_virtual(self) -> bool:
        return True

    def now_ms(self) -> int:
        return self._now

    def advance_to(self, t_ms: int) -> None:
        t_ms = _i64(t_ms, "t_ms")
        if t_ms < self._now:
            raise ValueError(f"clock cannot move backwards (now_ms={self._now}, t_ms={t_ms})")
        self._now = t_ms

    def advance_by(self, d_ms: int) -> None:
        d_ms = _i64(d_ms, "d_ms")
        if d_ms < 0:
            raise ValueError(f"d_ms must be >= 0, got {d_ms}")
        self._now = _i64(self._now + d_ms, "the advanced time")

    def __repr__(self) -> str:
        return f"VirtualClock(now_ms={self._now})"


class RealClock:
    """The wall clock, in integer milliseconds since the Unix epoch. O(1)."""

    __slots__ = ()

    @property
    def is_virtual(self) -> bool:
        return False

    def now_ms(self) -> int:
        return _time.time_ns() // 1_000_000

    def advance_to(self, t_ms: int) -> None:
        raise TypeError("a real clock cannot be moved")

    def advance_by(self, d_ms: int) -> None:
        raise TypeError("a real clock cannot be moved")

    def __repr__(self) -> str:
        return "RealClock()"


# --------------------------------------------------------------------------- timer heap


class TimerHeap:
    """Timers ordered by (due_ms, handle); handles are ints counting up from 1.

    A heap of (due_ms, handle) pairs; payloads live in a dict handle -> payload, which is also
    the set of live timers (cancel deletes from it, releasing the payload at once; dead heap
    entries are skipped when they reach the top, and the heap is compacted once they exceed
    half of it).

    Complexity: schedule O(log n); cancel O(1) amortised; pop_next O(log n) amortised; pop_due
    O(k log n) for k timers; peek_due O(1) amortised; len and ``in`` O(1).
    """

    __slots__ = ("_heap", "_live", "_next")

    def __init__(self) -> None:
        self._heap: list[tuple[int, int]] = []  # (due_ms, handle)
        self._live: dict[int, object] = {}  # handle -> payload
        self._next = 1

    def schedule(self, due_ms: int, payload: object) -> int:
        if type(due_ms) is not int or not _I64_MIN <= due_ms <= _I64_MAX:
            due_ms = _i64(due_ms, "due_ms")
        handle = self._next
        self._next = handle + 1
        self._live[handle] = payload
        _heappush(self._heap, (due_ms, handle))
        return handle

    def cancel(self, handle: int) -> None:
        if type(handle) is not int:
            handle = _int(handle, "handle")
        live = self._live
        if live.pop(handle, _MISSING) is not _MISSING:
            heap = self._heap
            if (len(heap) - len(live)) * 2 > len(heap):
                heap[:] = [entry for entry in heap if entry[1] in live]
                _heapify(heap)
            return
        if 1 <= handle < self._next:
            raise ValueError(f"timer {handle} was already cancelled or fired")
        raise ValueError(f"unknown timer handle {handle}")

    def pop_next(self, limit_ms: int) -> tuple[int, int, object] | None:
        if type(limit_ms) is not int or not _I64_MIN <= limit_ms <= _I64_MAX:
            limit_ms = _i64(limit_ms, "limit_ms")
        heap = self._heap
        live = self._live
        while heap:
            due, handle = heap[0]
            if due > limit_ms:
                return None
            _heappop(heap)
            payload = live.pop(handle, _MISSING)
            if payload is not _MISSING:
                self._after_pops()
                return (due, handle, payload)
        return None

    def _after_pops(self) -> None:
        # pops take live timers and leave cancelled ones deeper down: compact here too, not
        # only on cancel, so dead entries never outnumber live ones
        heap, live = self._heap, self._live
        if (len(heap) - len(live)) * 2 > len(heap):
            heap[:] = [entry for entry in heap if entry[1] in live]
            _heapify(heap)

    def pop_due(self, limit_ms: int) -> list[tuple[int, int, object]]:
        if type(limit_ms) is not int or not _I64_MIN <= limit_ms <= _I64_MAX:
            limit_ms = _i64(limit_ms, "limit_ms")
        heap = self._heap
        live = self._live
        out = []
        while heap:
            due, handle = heap[0]
            if due > limit_ms:
                break
            _heappop(heap)
            payload = live.pop(handle, _MISSING)
            if payload is not _MISSING:
                out.append((due, handle, payload))
        if out:
            self._after_pops()
        return out

    def peek_due(self) -> int | None:
        heap = self._heap
        live = self._live
        while heap:
            entry = heap[0]
            if entry[1] in live:
                return entry[0]
            _heappop(heap)
        return None

    def __len__(self) -> int:
        return len(self._live)

    def __contains__(self, handle: object) -> bool:
        if type(handle) is not int and (not isinstance(handle, int) or isinstance(handle, bool)):
            return False  # only int handles are ever live (1.0 and True are not handles)
        return handle in self._live

    def _storage_size(self) -> int:
        """Entries physically held, live and lazily-deleted (for memory-bound tests)."""
        return len(self._heap)

    def __repr__(self) -> str:
        return f"TimerHeap(live={len(self._live)})"


# --------------------------------------------------------------------------- memo table


class MemoTable:
    """A run's step id -> recorded outcome table, plus the per-replay step id counters.

    ``get(full_id, default=None, /)`` is a dict lookup (``default`` positional-only, as in
    ``dict.get``). A table holds as few objects the garbage collector must visit as it can
    (it lives as long as its run): the counters are plain ints.

    Complexity: next_id, get, set, ``in``, pop and len are O(1) (hash lookups); items is O(n);
    reset_counter is O(number of distinct base ids).
    """

    __slots__ = ("_counters", "_data")

    def __init__(self) -> None:
        self._data: dict[str, object] = {}
        self._counters: dict[str, int] = {}

    def get(self, full_id: str, default: object = None, /) -> object:
        return self._data.get(full_id, default)

    def next_id(self, step_id: str, /) -> str:
        counters = self._counters
        try:
            n = counters.get(step_id)
        except TypeError:  # unhashable: reported as the wrong type below
            n = None
        if n is None:
            if not isinstance(step_id, str):
                raise TypeError(f"step_id must be a str, got {type(step_id).__name__}")
            counters[step_id] = 0
            return step_id
        # A base id used again gets the first suffix ``:n`` not yet handed out in this
        # replay (every id handed out is a key here), so an explicit "a:1" never aliases
        # the automatic id of a second "a" (which then becomes "a:2").
        while True:
            n += 1
            name = f"{step_id}:{n}"
            if name not in counters:
                break
        counters[step_id] = n
        counters[name] = 0
        return name

    def reset_counter(self) -> None:
        self._counters.clear()

    def __contains__(self, full_id: object) -> bool:
        return full_id in self._data

    def set(self, full_id: str, outcome: object) -> None:
        if type(full_id) is not str and not isinstance(full_id, str):
            raise TypeError(f"full_id must be a str, got {type(full_id).__name__}")
        data = self._data
        if full_id in data:
            raise ValueError(f"step {full_id!r} is already recorded")
        data[full_id] = outcome

    def pop(self, full_id: str, default: object = _MISSING) -> object:
        if default is _MISSING:
            return self._data.pop(full_id)
        return self._data.pop(full_id, default)

    def items(self) -> list[tuple[str, object]]:
        return list(self._data.items())

    def __len__(self) -> int:
        return len(self._data)

    def __repr__(self) -> str:
        return f"MemoTable(recorded={len(self._data)})"


# --------------------------------------------------------------------------- ready queue


class ReadyQueue:
    """Highest priority first, FIFO among equal priorities.

    Complexity: push and pop O(log n) amortised; peek, len and bool O(1).
    """

    __slots__ = ("_heap", "_seq")

    def __init__(self) -> None:
        self._heap: list[tuple[int, int, object]] = []  # (-priority, seq, item)
        self._seq = 0

    def push(self, item: object, priority: int = 0) -> None:
        if type(priority) is not int or not _I64_MIN <= priority <= _I64_MAX:
            priority = _i64(priority, "priority")
        seq = self._seq
        self._seq = seq + 1
        _heappush(self._heap, (-priority, seq, item))

    def pop(self) -> object:
        if not self._heap:
            raise IndexError("pop from an empty ReadyQueue")
        return _heappop(self._heap)[2]

    def peek(self) -> object:
        if not self._heap:
            raise IndexError("peek at an empty ReadyQueue")
        return self._heap[0][2]

    def __len__(self) -> int:
        return len(self._heap)

    def __bool__(self) -> bool:
        return bool(self._heap)

    def _storage_size(self) -> int:
        """Item slots physically held (for memory-bound tests)."""
        return len(self._heap)

    def __repr__(self) -> str:
        return f"ReadyQueue(len={len(self._heap)})"


# --------------------------------------------------------------------------- GCRA


class GCRA:
    """Generic cell rate algorithm per key, in exact integer arithmetic.

    Times are scaled by ``limit`` so the emission interval T = period_ms / limit is the integer
    ``period_ms``: tat_s = tat_ms * limit, now_s = now_ms * limit, T_s = period_ms. A request
    at ``now_ms`` is admitted iff ``tat_s <= now_s + tolerance * T_s`` (an unseen key has
    tat = -infinity); admitting sets ``tat_s = max(tat_s, now_s) + T_s``.

    Keys are kept in the order they were last admitted (an admission moves its key to the
    end), and a key's tat is at most its last admission plus (tolerance + 1) * T, so the keys
    whose state is equivalent to none (tat_s <= now_s) gather at the front: :meth:`prune`
    drops them from there, O(1) per key dropped.

    Complexity: acquire, peek, get_state, set_state O(1); prune O(keys dropped + 1);
    forget_before O(number of keys).
    """

    __slots__ = ("_limit", "_period", "_tat", "_tol_t", "_tolerance")

    def __init__(self, limit: int, period_ms: int, tolerance: int) -> None:
        limit = _int(limit, "limit")
        period_ms = _int(period_ms, "period_ms")
        tolerance = _int(tolerance, "tolerance")
        if limit < 1:
            raise ValueError(f"limit must be >= 1, got {limit}")
        if period_ms < 1:
            raise ValueError(f"period_ms must be >= 1, got {period_ms}")
        if tolerance < 0:
            raise ValueError(f"tolerance must be >= 0, got {tolerance}")
        self._limit = limit
        self._tolerance = tolerance
        self._period = period_ms
        self._tol_t = tolerance * period_ms
        self._tat: collections.OrderedDict[object, int] = collections.OrderedDict()

    @property
    def limit(self) -> int:
        return self._limit

    @property
    def period_ms(self) -> int:
        return self._period

    @property
    def tolerance(self) -> int:
        return self._tolerance

    def acquire(self, key: object, now_ms: int) -> int:
        if type(now_ms) is not int or not 0 <= now_ms <= _I64_MAX:
            now_ms = _now(now_ms)
        tat = self._tat
        now_s = now_ms * self._limit
        t = tat.get(key)
        if t is None or t <= now_s:
            tat[key] = now_s + self._period
            if t is not None:
                tat.move_to_end(key)  # the dict stays in last-admitted order (see prune)
            return -1
        if t <= now_s + self._tol_t:
            tat[key] = t + self._period
            tat.move_to_end(key)
            return -1
        return -((self._tol_t - t) // self._limit)

    def peek(self, key: object, now_ms: int) -> int:
        if type(now_ms) is not int or not 0 <= now_ms <= _I64_MAX:
            now_ms = _now(now_ms)
        t = self._tat.get(key)
        if t is None or t <= now_ms * self._limit + self._tol_t:
            return -1
        return -((self._tol_t - t) // self._limit)

    def get_state(self, key: object) -> int | None:
        return self._tat.get(key)

    def set_state(self, key: object, tat_s: int) -> None:
        tat_s = _int(tat_s, "tat_s")
        self._tat[key] = tat_s
        self._tat.move_to_end(key)  # like an admission

    def prune(self, now_ms: int, max_keys: int = -1) -> list:
        """Drop, from the front (least recently admitted first), the keys whose state admits
        exactly like no state at ``now_ms`` (tat <= now), stopping at the first key whose tat
        is still ahead or after ``max_keys`` drops (-1: no bound). Returns the dropped keys."""
        now_s = _now(now_ms) * self._limit
        max_keys = _int(max_keys, "max_keys")
        tat = self._tat
        dropped: list = []
        # An OrderedDict: its front is O(1) to reach however many keys left it (a plain
        # dict would rescan the holes its deletions leave).
        while tat and len(dropped) != max_keys:
            key = next(iter(tat))
            if tat[key] > now_s:
                break
            del tat[key]
            dropped.append(key)
        return dropped

    def forget_before(self, now_ms: int) -> None:
        now_s = _now(now_ms) * self._limit
        tat = self._tat
        for key in [k for k, t in tat.items() if t <= now_s]:
            del tat[key]

    def __len__(self) -> int:
        return len(self._tat)

    def __repr__(self) -> str:
        return (
            f"GCRA(limit={self._limit}, period_ms={self._period}, "
            f"tolerance={self._tolerance}, keys={len(self._tat)})"
        )


def _now(now_ms: object) -> int:
    now_ms = _i64(now_ms, "now_ms")
    if now_ms < 0:
        raise ValueError(f"now_ms must be >= 0, got {now_ms}")
    return now_ms


# --------------------------------------------------------------------------- keyed counter


class KeyedCounter:
    """Counts held slots per key (concurrency limits). Keys at zero are dropped.

    Complexity: try_acquire, release, count and len are O(1).
    """

    __slots__ = ("_counts",)

    def __init__(self) -> None:
        self._counts: dict[object, int] = {}

    def try_acquire(self, key: object, limit: int) -> bool:
        if type(limit) is not int or limit < 1:
            limit = _int(limit, "limit")
            if limit < 1:
                raise ValueError(f"limit must be >= 1, got {limit}")
        counts = self._counts
        c = counts.get(key, 0)
        if c < limit:
            counts[key] = c + 1
            return True
        return False

    def release(self, key: object) -> None:
        counts = self._counts
        c = counts.get(key, 0)
        if c == 0:
            raise ValueError(f"release without acquire for key {key!r}")
        if c == 1:
            del counts[key]
        else:
            counts[key] = c - 1

    def count(self, key: object) -> int:
        return self._counts.get(key, 0)

    def __len__(self) -> int:
        return len(self._counts)

    def __repr__(self) -> str:
        return f"KeyedCounter(keys={len(self._counts)})"


# --------------------------------------------------------------------------- seeded random

_GAMMA = 0x9E3779B97F4A7C15
_MIX1 = 0xBF58476D1CE4E5B9
_MIX2 = 0x94D049BB133111EB
_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


class SeededRandom:
    """splitmix64; deterministic and identical in the compiled and pure kernels.

    ``randbelow(n)`` (1 <= n <= 2**64): draw r = next_u64() until r >= 2**64 mod n, return
    r mod n (unbiased rejection; the first draw is accepted with probability > 1/2).
    ``ulid(ms)``: 48-bit ms then 80 random bits = (low 16 bits of a first draw) followed by
    a second full draw, in 26 Crockford base-32 characters.
    ``hex(nbytes)``: ceil(nbytes / 8) draws, each written as 16 lowercase hex digits
    (big-endian), concatenated and cut to 2 * nbytes characters.

    Complexity: O(1) per draw; hex O(nbytes).
    """

    __slots__ = ("_state",)

    def __init__(self, seed: int) -> None:
        self._state = _int(seed, "seed") & _MASK64

    def get_state(self) -> int:
        return self._state

    def set_state(self, state: int) -> None:
        state = _int(state, "state")
        if not 0 <= state <= _MASK64:
            raise ValueError(f"state must be in [0, 2**64), got {state}")
        self._state = state

    def next_u64(self) -> int:
        s = (self._state + _GAMMA) & _MASK64
        self._state = s
        z = ((s ^ (s >> 30)) * _MIX1) & _MASK64
        z = ((z ^ (z >> 27)) * _MIX2) & _MASK64
        return z ^ (z >> 31)

    def randbelow(self, n: int) -> int:
        n = _int(n, "n")
        if n < 1:
            raise ValueError(f"n must be >= 1, got {n}")
        if n > _U64:
            raise ValueError(f"n must be <= 2**64, got {n}")
        threshold = _U64 % n
        while True:
            r = self.next_u64()
            if r >= threshold:
                return r % n

    def randrange(self, lo: int, hi: int) -> int:
        lo = _int(lo, "lo")
        hi = _int(hi, "hi")
        if hi <= lo:
            raise ValueError(f"empty range: lo={lo} must be < hi={hi}")
        if hi - lo > _U64:
            raise ValueError(f"range too wide: hi - lo must be <= 2**64, got {hi - lo}")
        return lo + self.randbelow(hi - lo)

    def ulid(self, ms: int) -> str:
        ms = _int(ms, "ms")
        if not 0 <= ms < (1 << 48):
            raise ValueError(f"ms must be in [0, 2**48), got {ms}")
        hi16 = self.next_u64() & 0xFFFF
        lo64 = self.next_u64()
        value = (ms << 80) | (hi16 << 64) | lo64
        return "".join(_CROCKFORD[(value >> shift) & 31] for shift in range(125, -1, -5))

    def hex(self, nbytes: int) -> str:
        nbytes = _int(nbytes, "nbytes")
        if nbytes < 0:
            raise ValueError(f"nbytes must be >= 0, got {nbytes}")
        draws = (nbytes + 7) // 8
        return "".join(f"{self.next_u64():016x}" for _ in range(draws))[: 2 * nbytes]

    def __repr__(self) -> str:
        return "SeededRandom(...)"


class Journal:
    """Builds a run's journal entries and hands each to everyone who keeps it: the run's own
    history list, the global trace (when kept), a listener, and the store's sinks.

    An entry is ``record_type(at_ms, subject, group, kind, item, detail)`` for a tuple
    subclass ``record_type``, built without its ``__new__`` and (compiled) not tracked by the
    garbage collector (see :func:`untracked_record`). ``trace`` and ``listener`` are plain
    attributes, None when unused. ``entry_lists`` (None, or a dict subject -> a list or
    anything else) lets the store's entry sink be skipped: when the subject maps to a list,
    the entry is appended to it instead of calling ``save_entry`` (a store keeps its active
    records' entries in such lists; a Python call per entry saved). Complexity: O(1) per
    entry (list appends, at most one sink call).
    """

    __slots__ = ("entry_lists", "listener", "record_type", "save_entry", "save_memo", "trace")

    def __init__(self, record_type: type, save_entry: typing.Callable[[str, tuple], None],
                 save_memo: typing.Callable[[str, str, object], None]) -> None:
        self.record_type = record_type
        self.save_entry = save_entry
        self.save_memo = save_memo
        self.trace: list | None = None
        self.listener: typing.Callable[[tuple], None] | None = None
        self.entry_lists: dict | None = None

    def log(self, history: list | None, at_ms: int, subject: str, group: str, kind: str,
            item: object = None, detail: object = None) -> tuple:
        """One entry: to the trace, the listener and, with a ``history`` list, to it and to
        the store's ``save_entry(subject, entry)``."""
        entry = tuple.__new__(self.record_type, (at_ms, subject, group, kind, item, detail))
        if self.trace is not None:
            self.trace.append(entry)
        if self.listener is not None:
            self.listener(entry)
        if history is not None:
            history.append(entry)
            if self.entry_lists is not None:
                target = self.entry_lists.get(subject)
                if type(target) is list:
                    target.append(entry)
                    return entry
            self.save_entry(subject, entry)
        return entry

    def memoize(self, memos: MemoTable, history: list, at_ms: int, subject: str, group: str,
                kind: str, item: str, memo: object, detail: object = None) -> tuple:
        """Record ``memo`` under ``item`` (``memos.set`` and the store's ``save_memo``), then
        :meth:`log` the entry ``kind`` for it."""
        memos.set(item, memo)
        self.save_memo(subject, item, memo)
        return self.log(history, at_ms, subject, group, kind, item, detail)


DONE = "done"
RAISED = "raised"
PARKED = "parked"


class Drive:
    """Awaitable that runs ``coro`` until it returns, raises or yields ``park``: the await
    gives ``(DONE, value)``, ``(RAISED, exception)`` or ``(PARKED, None)``. Whatever else
    ``coro`` yields (an asyncio future: real I/O) goes up to the awaiting task, and what the
    task sends or throws back goes down into ``coro``, so a driven coroutine keeps its place
    whether it parks or awaits. Complexity: O(1) per value passed through.
    """

    __slots__ = ("_coro", "_park")

    def __init__(self, coro: typing.Coroutine, park: object) -> None:
        self._coro = coro
        self._park = park

    def __await__(self) -> typing.Generator[typing.Any, typing.Any, tuple[str, typing.Any]]:
        coro, park = self._coro, self._park
        send: typing.Any = None
        exc: BaseException | None = None
        while True:
            try:
                y = coro.throw(exc) if exc is not None else coro.send(send)
            except StopIteration as stop:
                return (DONE, stop.value)
            except BaseException as err:  # noqa: BLE001 - the caller classifies it
                return (RAISED, err)
            if y is park:
                return (PARKED, None)
            exc = None
            try:
                send = yield y
            except BaseException as err:  # noqa: BLE001 - forwarded into the coroutine
                exc, send = err, None


# --- steps (kstep)
# A step that nothing but the engine's own bookkeeping hears of takes this short path: one
# call begins it, looks up its memo and enters its body; one more records its success.
# Anything unusual is answered with a signal, and the caller's own (slower) code goes on.


class _Signal:
    """An answer of :class:`StepBook` that is not a value; compared by identity."""

    __slots__ = ("_name",)

    def __init__(self, name: str) -> None:
        self._name = name

    def __repr__(self) -> str:
        return self._name


SLOW = _Signal("SLOW")
BEGUN = _Signal("BEGUN")
BODY = _Signal("BODY")


class StepRules:
    """What the :class:`StepBook` s of one engine share.

    ``op``: the op code a recorded success carries (``memo = (op, True, value)``) and that a
    memo must carry to be handed back; ``kind``: the journal entry kind of a recorded success;
    ``journal``: the :class:`Journal` that records it; ``now_ms()``: the clock; ``check(full_id,
    value)``: the output check for a value that is not None/str/int/bool (it returns the value
    to record, or raises); ``copy(value)``: what the handler gets of a recorded value that is
    not None/str/int/bool/float; ``current``: a ``contextvars.ContextVar`` set to the book whose
    step body starts; ``commit()``: called after each record (None: nothing to call).
    """

    __slots__ = ("check", "commit", "copy", "current", "journal", "kind", "now_ms", "op")

    def __init__(self, op: str, kind: str, journal: Journal, now_ms: typing.Callable[[], int],
                 check: typing.Callable[[str, object], object],
                 copy: typing.Callable[[object], object], current: contextvars.ContextVar,
                 commit: typing.Callable[[], object] | None = None) -> None:
        if not isinstance(op, str):
            raise TypeError(f"op must be a str, got {type(op).__name__}")
        if not isinstance(kind, str):
            raise TypeError(f"kind must be a str, got {type(kind).__name__}")
        if not isinstance(journal, Journal):
            raise TypeError(f"journal must be a Journal, got {type(journal).__name__}")
        for name, fn in (("now_ms", now_ms), ("check", check), ("copy", copy)):
            if not callable(fn):
                raise TypeError(f"{name} must be callable, got {type(fn).__name__}")
        if type(current) is not contextvars.ContextVar:
            raise TypeError(f"current must be a ContextVar, got {type(current).__name__}")
        if commit is not None and not callable(commit):
            raise TypeError(f"commit must be callable or None, got {type(commit).__name__}")
        self.op = op
        self.kind = kind
        self.journal = journal
        self.now_ms = now_ms
        self.check = check
        self.copy = copy
        self.current = current
        self.commit = commit

    def __repr__(self) -> str:
        return f"StepRules(op={self.op!r}, kind={self.kind!r})"


def _handed_back(rules: StepRules, value: object) -> object:
    # a recorded value as the handler gets it: scalars as they are, anything else a copy
    if value is None or type(value) in (str, int, bool, float):
        return value
    return rules.copy(value)


class StepBook:
    """The step bookkeeping of one handler's execution (a base class: the engine's
    execution object extends it), with the short path of a step.

    Attributes (plain, read and written by the owner's own code too): ``engine`` (its
    ``generation`` is compared with ours), ``run`` (duck-typed: ``memos`` a :class:`MemoTable`,
    ``history`` a list, ``pending`` a dict, ``attempt``, ``cancel_requested``, ``id``,
    ``fn_id``), ``ctx`` (its ``attempt`` is set when a body starts), ``rules`` (a
    :class:`StepRules`), ``in_body`` (the full id of the step whose body runs, or None),
    ``step_name``, ``busy_ms``, ``fast`` and ``memo_phase`` (the short path applies only while
    ``fast`` and not ``memo_phase``), ``generation`` and ``full_id`` (the step begun last).

    ``open_step(step_id)`` answers :data:`SLOW` (nothing done: the short path does not apply),
    a memo's value (recorded as a success under ``rules.op``), :data:`BEGUN` (the step is
    begun, ``full_id`` set, and its memo or pending state needs the caller's own code) or
    :data:`BODY` (begun and its body entered: run it, then ``record``). Complexity: O(1)
    per call (hash lookups, one journal entry).
    """

    __slots__ = ("busy_ms", "ctx", "engine", "fast", "full_id", "generation", "in_body",
                 "memo_phase", "rules", "run", "step_name")

    def __new__(cls, *args: typing.Any, **kwargs: typing.Any) -> typing.Self:
        # the compiled book's fields start out set (its __cinit__)
        self = super().__new__(cls)
        self.engine = self.run = self.ctx = self.rules = None
        self.in_body = self.generation = self.full_id = None
        self.step_name = ""
        self.busy_ms = 0
        self.fast = self.memo_phase = False
        return self

    def _rules(self) -> StepRules:
        if type(self.rules) is not StepRules:
            raise TypeError(f"rules must be a StepRules, got {type(self.rules).__name__}")
        return self.rules

    def open_step(self, step_id: str) -> object:
        """Begin step ``step_id`` on the short path; see the class docstring."""
        if not self.fast or self.memo_phase or self.in_body is not None:
            return SLOW
        if type(step_id) is not str or not step_id:
            return SLOW  # the caller's own code reports it
        rules = self._rules()
        if self.generation != self.engine.generation:
            return SLOW
        run = self.run
        if run.cancel_requested:
            return SLOW
        self.step_name = step_id
        memos = run.memos
        full_id = memos.next_id(step_id)
        self.full_id = full_id
        memo = memos._data.get(full_id, _MISSING)
        if memo is not _MISSING:
            if memo[0] == rules.op and memo[1]:
                return _handed_back(rules, memo[2])
            return BEGUN
        if run.pending:
            return BEGUN
        self.ctx.attempt = run.attempt
        self.in_body = full_id
        self.busy_ms = 0
        if rules.current.get(None) is not self:  # (a set makes a new context mapping)
            rules.current.set(self)
        return BODY

    def checked(self, full_id: str, value: object) -> object:
        """``value`` as step ``full_id`` records it: ``rules.check`` unless it is a JSON
        scalar (None, str, int, bool)."""
        if value is None or type(value) in (str, int, bool):
            return value
        return self._rules().check(full_id, value)

    def record(self, full_id: str, value: object) -> object:
        """Step ``full_id``'s body (entered by ``open_step``) returned ``value`` (already
        checked): leave the body, record the success and return what the handler gets, or
        :data:`SLOW` (the body declared ``busy_ms``: nothing recorded, the caller's code goes
        on)."""
        rules = self._rules()
        self.in_body = None
        if self.busy_ms:
            return SLOW
        run = self.run
        pending = run.pending
        if pending:
            pending.pop(full_id, None)
        run.attempt = 0
        rules.journal.memoize(run.memos, run.history, rules.now_ms(), run.id, run.fn_id,
                              rules.kind, full_id, (rules.op, True, value), None)
        if rules.commit is not None:
            rules.commit()
        return _handed_back(rules, value)


# --- timers (ksleep)


class TimerLoop:
    """The due-timer loop over one timer heap, and the check that lets a lone timed wait end
    without parking.

    ``horizon_ms`` is how far the drive in progress may move ``clock`` (None: no such drive,
    as with a wall clock or a worker); ``budget`` how many timer instants it may still take.
    ``started``, ``detail_key``, ``done`` and ``memo`` are what :meth:`skip` records: the
    entry kind a wait starts with, the key of its end in that entry's detail, the entry kind
    it ends with, and the memo it leaves. Complexity: :meth:`fire_due` O(k log n) for k
    timers plus their callbacks; :meth:`skip` O(1) amortised.
    """

    __slots__ = ("_horizon", "_journal", "_timers", "budget", "clock", "detail_key", "done",
                 "memo", "ready", "started")

    def __init__(self, clock: typing.Any, timers: TimerHeap, ready: typing.Any,
                 journal: Journal, started: str, detail_key: str, done: str,
                 memo: object) -> None:
        self.clock = clock
        self.timers = timers
        self.ready = ready
        self.journal = journal
        self.started = started
        self.detail_key = detail_key
        self.done = done
        self.memo = memo
        self._horizon: int | None = None
        self.budget = 0

    @property
    def timers(self) -> TimerHeap:
        return self._timers

    @timers.setter
    def timers(self, value: TimerHeap) -> None:
        if not isinstance(value, TimerHeap):
            raise TypeError(f"timers: expected a TimerHeap, got {type(value).__name__}")
        self._timers = value

    @property
    def journal(self) -> Journal:
        return self._journal

    @journal.setter
    def journal(self, value: Journal) -> None:
        if not isinstance(value, Journal):
            raise TypeError(f"journal: expected a Journal, got {type(value).__name__}")
        self._journal = value

    @property
    def horizon_ms(self) -> int | None:
        return self._horizon

    @horizon_ms.setter
    def horizon_ms(self, value: int | None) -> None:
        self._horizon = None if value is None else _i64(value, "horizon_ms")

    def fire_due(self, now_ms: int, fire: typing.Callable[[int, object], None]) -> int:
        """Pop every timer due at or before ``now_ms`` in (due, handle) order and call
        ``fire(handle, payload)`` for each (one ``fire`` schedules that is due by then fires
        in this call too); returns how many fired."""
        pop = self._timers.pop_next
        fired = 0
        while True:
            item = pop(now_ms)
            if item is None:
                return fired
            fired += 1
            fire(item[1], item[2])

    def due_step(self, target_ms: int, fire_due: typing.Callable[[int], object]) -> bool:
        """One step of a drive up to ``target_ms``: True at once if something is ready; else
        move the clock to the next timer due by ``target_ms`` (never backwards) and call
        ``fire_due(now_ms)``, True; False when no timer is due by then."""
        target_ms = _i64(target_ms, "target_ms")
        if self.ready:
            return True
        due = self._timers.peek_due()
        if due is None or due > target_ms:
            return False
        clock = self.clock
        if due > clock.now_ms():
            clock.advance_to(due)
        fire_due(clock.now_ms())
        return True

    def skip(self, history: list, memos: MemoTable, subject: str, group: str, item: str,
             ms: int) -> bool:
        """A wait of ``ms`` that nothing else could interleave with ends at once: when a
        drive may move the clock to its end (``horizon_ms``, with ``budget`` left), nothing
        is ready, no listener hears the journal and no timer is due at or before its end,
        record what a parked wait would (the ``started`` entry now with ``{detail_key:
        end}``, the clock moved to the end, ``memo`` under ``item`` with the ``done`` entry
        then), take one from ``budget`` and return True; otherwise do nothing, False."""
        ms = _i64(ms, "ms")
        if ms < 0:
            raise ValueError(f"ms must be >= 0, got {ms}")
        horizon = self._horizon
        if horizon is None or self.budget <= 0 or self.ready or \
                self._journal.listener is not None:
            return False
        clock = self.clock
        now = clock.now_ms()
        end = now + ms
        if end > horizon:
            return False
        due = self._timers.peek_due()
        if due is not None and due <= end:
            return False
        self.budget -= 1
        journal = self._journal
        journal.log(history, now, subject, group, self.started, item, {self.detail_key: end})
        clock.advance_to(end)
        journal.memoize(memos, history, clock.now_ms(), subject, group, self.done, item,
                        self.memo)
        return True


def plain_records(records: typing.Iterable[tuple]) -> tuple[tuple, ...]:
    """``records`` (tuples, or tuple subclasses such as journal entries) as one tuple of plain
    tuples, which is what ``marshal`` takes; in the compiled core the copies are not tracked
    by the garbage collector (as with :func:`untracked_record`, their fields never lead back
    to them), so copying a long history sets off no collection. O(n)."""
    items = list(records)
    for i, rec in enumerate(items):
        if not isinstance(rec, tuple):
            raise TypeError(f"records[{i}] must be a tuple, got {type(rec).__name__}")
        if type(rec) is not tuple:
            items[i] = tuple(rec)
    return tuple(items)


_ISO_DAY: list = [None, ""]  # the last day formatted, and its date (ticks share their day)


def iso_utc(ms: int) -> str:
    """``ms_to_datetime(ms).isoformat()`` (``2025-01-01T00:00:00+00:00``, with ``.ffffff``
    when there are milliseconds), from integers; ValueError outside years 1 to 9999. O(1)."""
    ms = _i64(ms, "ms")
    seconds, millis = divmod(ms, 1000)
    day, second = divmod(seconds, 86_400)
    if _ISO_DAY[0] == day:
        date = _ISO_DAY[1]
    else:
        if not 1 <= day + 719_163 <= 3_652_059:
            raise ValueError(f"ms {ms} is outside the years 1 to 9999")
        date = _dt.date.fromordinal(day + 719_163).isoformat()
        _ISO_DAY[:] = [day, date]
    hour, second = divmod(second, 3600)
    minute, second = divmod(second, 60)
    if millis:
        return f"{date}T{hour:02d}:{minute:02d}:{second:02d}.{millis * 1000:06d}+00:00"
    return f"{date}T{hour:02d}:{minute:02d}:{second:02d}+00:00"
