# cython: language_level=3, boundscheck=False, wraparound=False, initializedcheck=False
# cython: cdivision=True, auto_pickle=False, embedsignature=True
"""Compiled kernel of inngest_do: clocks, a timer heap, memo tables, a ready queue, rate limiters
and a seeded random source. All times are integer milliseconds.

Its twin ``inngest_do/_core_py.py`` has the same names, signatures, results and error messages;
``inngest_do.kernel`` picks one. Keep the two in step: the kernel tests drive both with the same
operation sequences and compare every answer.

None of the types is thread-safe: each belongs to the one thread (event loop) driving an engine.
"""

from collections import OrderedDict
import datetime as _dt
import time as _time

cimport cython

from cpython.contextvars cimport PyContextVar_Set, get_value as _context_value
from cpython.long cimport PyLong_AsLongLongAndOverflow, PyLong_AsUnsignedLongLong
from cpython.unicode cimport PyUnicode_DecodeASCII
from libc.stdint cimport INT64_MAX, int64_t, uint64_t, uintptr_t
from libc.stdio cimport snprintf
from libc.string cimport memcpy
from libc.stdlib cimport calloc, free, malloc, realloc

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

cdef extern from "Python.h":
    bint PyLong_CheckExact(object o)
    bint PyLong_Check(object o)
    bint PyUnicode_Check(object o)
    bint PyUnicode_CheckExact(object o)
    bint PyContextVar_CheckExact(object o)
    # raw-pointer forms, for moving references without refcount traffic
    ctypedef struct PyObject
    PyObject* _Py_None "Py_None"
    PyObject* _PyTuple_New "PyTuple_New" (Py_ssize_t n)
    void _PyTuple_SET_ITEM "PyTuple_SET_ITEM" (PyObject* t, Py_ssize_t i, PyObject* o)
    PyObject* _PyList_GET_ITEM "PyList_GET_ITEM" (PyObject* l, Py_ssize_t i)
    void _PyList_SET_ITEM "PyList_SET_ITEM" (PyObject* l, Py_ssize_t i, PyObject* o)
    PyObject* _PyLong_FromLongLong "PyLong_FromLongLong" (long long v)
    void _Py_INCREF "Py_INCREF" (PyObject* o)
    void _Py_DECREF "Py_DECREF" (PyObject* o)
    void _Py_XDECREF "Py_XDECREF" (PyObject* o)
    PyObject* _PyDict_GetItem "PyDict_GetItem" (object d, object key)
    void PyObject_GC_UnTrack(object o)

cdef extern from *:
    """
    #if defined(__GNUC__) || defined(__clang__)
    #define INNGEST_DO_PREFETCH(p) __builtin_prefetch(p)
    #else
    #define INNGEST_DO_PREFETCH(p) ((void)0)
    #endif
    """
    void _prefetch "INNGEST_DO_PREFETCH" (const void* p) noexcept nogil

cdef object _I64_MIN = -(1 << 63)
cdef object _I64_MAX = (1 << 63) - 1
cdef object _U64 = 1 << 64
cdef object _MASK64 = (1 << 64) - 1
cdef object _MISSING = object()


cdef object _int(object value, str name):
    """Check that ``value`` is an int (not a bool); return it as an exact int."""
    if PyLong_CheckExact(value):
        return value
    if PyLong_Check(value) and not isinstance(value, bool):
        return int(value)
    raise TypeError(f"{name} must be an int, got {type(value).__name__}")


cdef inline int64_t _i64(object value, str name) except? -1:
    """Check that ``value`` is an int fitting in a signed 64-bit integer; return it."""
    cdef int overflow = 0
    cdef int64_t r
    if not PyLong_CheckExact(value):
        value = _int(value, name)
    r = PyLong_AsLongLongAndOverflow(value, &overflow)
    if overflow:
        raise ValueError(f"{name} must fit in a signed 64-bit integer, got {value}")
    return r


cdef inline int64_t _now(object now_ms) except? -1:
    cdef int64_t now = _i64(now_ms, "now_ms")
    if now < 0:
        raise ValueError(f"now_ms must be >= 0, got {now}")
    return now


# --------------------------------------------------------------------------- time helpers

_EPOCH = _dt.datetime(1970, 1, 1, tzinfo=_dt.timezone.utc)


def untracked_record(type cls, *fields):
    """``cls(*fields)`` for a tuple subclass ``cls`` (a NamedTuple, say), built with
    ``tuple.__new__`` and, in the compiled core, not tracked by the garbage collector.

    For records kept for a long time in large numbers whose fields can never lead back to the
    record (so it can never be part of a reference cycle): a collection then skips it and
    everything only it points at stays alive as its reference count says. The pure twin cannot
    untrack; it returns the same value.
    """
    record = tuple.__new__(cls, fields)
    PyObject_GC_UnTrack(record)
    return record


def ms_to_datetime(ms):
    """Milliseconds since the Unix epoch -> aware UTC datetime (exact, no float)."""
    ms = _int(ms, "ms")
    return _EPOCH + _dt.timedelta(milliseconds=ms)


def datetime_to_ms(dt):
    """Datetime -> milliseconds since the Unix epoch (floor). Naive datetimes are UTC."""
    if not isinstance(dt, _dt.datetime):
        raise TypeError(f"dt must be a datetime.datetime, got {type(dt).__name__}")
    if dt.tzinfo is None or dt.tzinfo.utcoffset(dt) is None:
        dt = dt.replace(tzinfo=_dt.timezone.utc)
    delta = dt - _EPOCH
    return delta.days * 86_400_000 + delta.seconds * 1000 + delta.microseconds // 1000


# --------------------------------------------------------------------------- clocks


cdef class VirtualClock:
    """A clock that moves only when told to. O(1) for every operation."""

    cdef int64_t _now
    # The time as a Python int, made once per move (as the twin keeps its int): every trace
    # entry and record stamped at one instant shares it instead of holding its own 32 bytes.
    cdef object _now_obj

    def __init__(self, start_ms):
        self._now = _i64(start_ms, "start_ms")
        self._now_obj = self._now

    @property
    def is_virtual(self):
        return True

    def now_ms(self):
        return self._now_obj

    def advance_to(self, t_ms):
        cdef int64_t t = _i64(t_ms, "t_ms")
        if t < self._now:
            raise ValueError(f"clock cannot move backwards (now_ms={self._now}, t_ms={t})")
        if t != self._now:
            self._now = t
            self._now_obj = t

    def advance_by(self, d_ms):
        cdef int64_t d = _i64(d_ms, "d_ms")
        if d < 0:
            raise ValueError(f"d_ms must be >= 0, got {d}")
        if d > INT64_MAX - self._now:
            _i64(self._now + d_ms, "the advanced time")  # raises the twin's ValueError
        if d:
            self._now += d
            self._now_obj = self._now

    def __repr__(self):
        return f"VirtualClock(now_ms={self._now})"


cdef class RealClock:
    """The wall clock, in integer milliseconds since the Unix epoch. O(1)."""

    @property
    def is_virtual(self):
        return False

    def now_ms(self):
        return _time.time_ns() // 1_000_000

    def advance_to(self, t_ms):
        raise TypeError("a real clock cannot be moved")

    def advance_by(self, d_ms):
        raise TypeError("a real clock cannot be moved")

    def __repr__(self):
        return "RealClock()"


# --------------------------------------------------------------------------- timer heap

ctypedef struct _Timer:
    int64_t due
    int64_t handle


ctypedef struct _MapEntry:
    int64_t key  # a live handle (>= 1); 0 marks an empty bucket, -1 a deleted one
    Py_ssize_t slot  # where its payload sits in the payload list


cdef inline Py_ssize_t _map_size_for(Py_ssize_t n) noexcept nogil:
    # smallest power of two >= 16 that holds n entries at most 1/3 full
    cdef Py_ssize_t cap = 16
    while cap < n * 3:
        cap *= 2
    return cap


cdef inline bint _timer_lt(const _Timer* a, const _Timer* b) noexcept nogil:
    return a.due < b.due or (a.due == b.due and a.handle < b.handle)


# The heap is 4-ary: half the depth of a binary heap, and with 16-byte entries stored from
# index 3 of a 64-byte aligned block, the four children of a node share one cache line.
cdef enum:
    _HEAP_PAD = 3


cdef class TimerHeap:
    """Timers ordered by (due_ms, handle); handles are ints counting up from 1.

    All bookkeeping is in C: a 4-ary heap of (due, handle) structs, cache-line aligned; an
    open-addressing hash map live handle -> payload slot (probed as CPython's dict probes ints,
    with tombstones) for cancel, ``in`` and liveness; payloads in a Python list indexed by slot
    (so the garbage collector sees them), slots being recycled. Cancelling drops the handle from
    the map and releases the payload at once; its heap entry is skipped when it reaches the
    top, and the heap is compacted once such dead entries exceed half of it.

    Complexity: schedule O(log n); cancel O(1) amortised; pop_next O(log n) amortised; pop_due
    O(k log n) for k timers; peek_due O(1) amortised; len and ``in`` O(1).
    """

    cdef void* _block  # the allocation; _heap points into it
    cdef _Timer* _heap
    cdef Py_ssize_t _size
    cdef Py_ssize_t _cap
    cdef int64_t _next
    cdef _MapEntry* _map
    cdef Py_ssize_t _map_mask
    cdef Py_ssize_t _map_fill
    cdef Py_ssize_t _live
    cdef list _payloads
    cdef Py_ssize_t* _free
    cdef Py_ssize_t _nfree
    cdef Py_ssize_t _free_cap

    def __cinit__(self):
        self._block = NULL
        self._heap = NULL
        self._map = NULL
        self._free = NULL
        self._size = 0
        self._cap = 0
        self._next = 1
        self._live = 0
        self._nfree = 0
        self._free_cap = 0
        self._payloads = []
        self._map_alloc(16)
        self._heap_resize(61)

    def __dealloc__(self):
        free(self._block)
        free(self._map)
        free(self._free)

    # ---- handle -> slot map
    # Open addressing as CPython's dict does it for ints: the home bucket is the handle itself
    # (sequential handles fill sequential buckets, which keeps scheduling cache-friendly) and
    # collisions follow the perturbed probe sequence i = 5*i + 1 + (perturb >>= 5), which
    # mixes in the high bits so congruent handles do not pile up. Deleted entries leave
    # tombstones (-1); the table is rebuilt when live + tombstones pass 2/3 of it.

    cdef int _map_alloc(self, Py_ssize_t cap) except -1:
        # cap: a power of two
        cdef _MapEntry* m = <_MapEntry*>calloc(cap, sizeof(_MapEntry))
        if m == NULL:
            raise MemoryError()
        free(self._map)
        self._map = m
        self._map_mask = cap - 1
        self._map_fill = 0
        return 0

    cdef inline Py_ssize_t _map_find(self, int64_t key) noexcept nogil:
        # bucket index of key, or -1
        cdef uint64_t perturb = <uint64_t>key
        cdef Py_ssize_t mask = self._map_mask
        cdef Py_ssize_t i = <Py_ssize_t>(perturb & <uint64_t>mask)
        cdef int64_t k
        while True:
            k = self._map[i].key
            if k == key:
                return i
            if k == 0:
                return -1
            perturb >>= 5
            i = <Py_ssize_t>((<uint64_t>i * 5 + perturb + 1) & <uint64_t>mask)

    cdef inline void _map_put(self, int64_t key, Py_ssize_t slot) noexcept nogil:
        # key is absent and the map has room: take the first empty or deleted bucket
        cdef uint64_t perturb = <uint64_t>key
        cdef Py_ssize_t mask = self._map_mask
        cdef Py_ssize_t i = <Py_ssize_t>(perturb & <uint64_t>mask)
        while self._map[i].key > 0:
            perturb >>= 5
            i = <Py_ssize_t>((<uint64_t>i * 5 + perturb + 1) & <uint64_t>mask)
        if self._map[i].key == 0:
            self._map_fill += 1
        self._map[i].key = key
        self._map[i].slot = slot

    cdef inline void _map_remove_at(self, Py_ssize_t i) noexcept nogil:
        self._map[i].key = -1

    cdef int _map_rehash(self, Py_ssize_t cap) except -1:
        cdef _MapEntry* old = self._map
        cdef Py_ssize_t old_cap = self._map_mask + 1
        cdef Py_ssize_t i
        self._map = NULL
        try:
            self._map_alloc(cap)
        except MemoryError:
            self._map = old
            raise
        for i in range(old_cap):
            if old[i].key > 0:
                self._map_put(old[i].key, old[i].slot)
        free(old)
        return 0

    cdef int _map_reserve_one(self) except -1:
        # room for one more insertion: live + tombstones stay under 2/3 of the buckets
        cdef Py_ssize_t cap = self._map_mask + 1
        if (self._map_fill + 1) * 3 <= cap * 2:
            return 0
        return self._map_rehash(_map_size_for(self._live + 1))

    # ---- payload slots

    cdef inline Py_ssize_t _store(self, object payload) except -1:
        cdef Py_ssize_t slot
        if self._nfree > 0:
            self._nfree -= 1
            slot = self._free[self._nfree]
            self._payloads[slot] = payload
        else:
            slot = len(self._payloads)
            self._payloads.append(payload)
        return slot

    cdef inline int _push_free(self, Py_ssize_t slot) except -1:
        cdef Py_ssize_t cap
        cdef Py_ssize_t* fr
        if self._nfree == self._free_cap:
            cap = self._free_cap * 2 if self._free_cap else 64
            fr = <Py_ssize_t*>realloc(self._free, cap * sizeof(Py_ssize_t))
            if fr == NULL:
                raise MemoryError()
            self._free = fr
            self._free_cap = cap
        self._free[self._nfree] = slot
        self._nfree += 1
        return 0

    cdef int _release(self, Py_ssize_t bucket) except -1:
        # forget a live timer: its map entry and its slot (dropping the payload reference)
        cdef Py_ssize_t slot = self._map[bucket].slot
        self._map[bucket].key = -1
        self._live -= 1
        self._payloads[slot] = None
        return self._push_free(slot)

    cdef int _after_removals(self) except -1:
        # give memory back after bursts: every structure is shrunk once it is 3/4 empty
        cdef Py_ssize_t map_cap = self._map_mask + 1
        cdef Py_ssize_t cap = self._cap
        cdef Py_ssize_t nslots = len(self._payloads)
        if self._live == 0:
            self._size = 0  # whatever is left in the heap is dead
        elif (self._size - self._live) * 2 > self._size:
            # pops take live timers and leave cancelled ones deeper down: compact here too,
            # not only on cancel, so dead entries never outnumber live ones
            self._compact()
        if nslots > 1024 and self._nfree * 4 > nslots * 3:
            self._compact_slots()
        while cap > 4096 and self._size < cap >> 2:
            cap >>= 1
        if cap != self._cap:
            self._heap_resize(cap)
        if map_cap > 64 and self._live * 8 < map_cap:
            self._map_rehash(_map_size_for(self._live))
        return 0

    cdef int _compact_slots(self) except -1:
        # renumber the live payloads 0..live-1 (the map is the only holder of slot numbers)
        cdef list old = self._payloads
        cdef list new = []
        cdef Py_ssize_t i
        for i in range(self._map_mask + 1):
            if self._map[i].key > 0:
                new.append(old[self._map[i].slot])
                self._map[i].slot = len(new) - 1
        self._payloads = new
        self._nfree = 0
        free(self._free)
        self._free = NULL
        self._free_cap = 0
        return 0

    # ---- heap

    cdef int _heap_resize(self, Py_ssize_t cap) except -1:
        cdef void* block = malloc((cap + _HEAP_PAD) * sizeof(_Timer) + 64)
        if block == NULL:
            raise MemoryError()
        cdef uintptr_t aligned = (<uintptr_t>block + 63) & ~(<uintptr_t>63)
        cdef _Timer* heap = (<_Timer*>aligned) + _HEAP_PAD
        if self._size:
            memcpy(heap, self._heap, self._size * sizeof(_Timer))
        free(self._block)
        self._block = block
        self._heap = heap
        self._cap = cap
        return 0

    cdef inline void _sift_up(self, Py_ssize_t pos, _Timer item) noexcept nogil:
        cdef _Timer* heap = self._heap
        cdef Py_ssize_t parent
        while pos > 0:
            parent = (pos - 1) >> 2
            if _timer_lt(&item, &heap[parent]):
                heap[pos] = heap[parent]
                pos = parent
            else:
                break
        heap[pos] = item

    cdef inline void _sift_down(self, Py_ssize_t pos, Py_ssize_t start) noexcept nogil:
        # bottom-up sift (as CPython's heapq does it): walk the hole at pos down to a leaf
        # along the smallest children, then bubble the displaced item back up, not above start
        cdef _Timer* heap = self._heap
        cdef Py_ssize_t size = self._size
        cdef _Timer item = heap[pos]
        cdef Py_ssize_t child, best, last, parent
        while True:
            child = 4 * pos + 1
            if child >= size:
                break
            best = child
            last = child + 4 if child + 4 <= size else size
            child += 1
            while child < last:
                if _timer_lt(&heap[child], &heap[best]):
                    best = child
                child += 1
            heap[pos] = heap[best]
            pos = best
        while pos > start:
            parent = (pos - 1) >> 2
            if _timer_lt(&item, &heap[parent]):
                heap[pos] = heap[parent]
                pos = parent
            else:
                break
        heap[pos] = item

    cdef inline void _pop_root(self) noexcept nogil:
        self._size -= 1
        if self._size > 0:
            self._heap[0] = self._heap[self._size]
            self._sift_down(0, 0)

    cdef void _compact(self) noexcept nogil:
        cdef Py_ssize_t i, j = 0
        for i in range(self._size):
            if self._map_find(self._heap[i].handle) >= 0:
                self._heap[j] = self._heap[i]
                j += 1
        self._size = j
        i = (j - 2) >> 2
        while i >= 0:
            self._sift_down(i, i)
            i -= 1

    # ---- the interface

    def schedule(self, due_ms, payload):
        cdef int64_t due = _i64(due_ms, "due_ms")
        cdef int64_t h = self._next
        cdef _Timer item
        if self._size == self._cap:
            self._heap_resize(self._cap * 2)
        self._map_reserve_one()
        self._map_put(h, self._store(payload))
        self._live += 1
        self._next = h + 1
        item.due = due
        item.handle = h
        self._size += 1
        self._sift_up(self._size - 1, item)
        return h

    def cancel(self, handle):
        cdef int overflow = 0
        cdef int64_t h
        cdef Py_ssize_t bucket
        if not PyLong_CheckExact(handle):
            handle = _int(handle, "handle")
        h = PyLong_AsLongLongAndOverflow(handle, &overflow)
        if not overflow and h > 0:
            bucket = self._map_find(h)
            if bucket >= 0:
                self._release(bucket)
                if (self._size - self._live) * 2 > self._size:
                    self._compact()
                self._after_removals()
                return
        if 1 <= handle < self._next:
            raise ValueError(f"timer {handle} was already cancelled or fired")
        raise ValueError(f"unknown timer handle {handle}")

    cdef inline object _take(self, const _Timer* top, Py_ssize_t bucket):
        # top is live (found at bucket) and already off the heap: hand out (due, handle,
        # payload). The payload reference moves from the payload list into the tuple, so the
        # payload object itself is never touched (no refcount traffic, no cache miss).
        cdef Py_ssize_t slot = self._map[bucket].slot
        cdef PyObject* lst = <PyObject*>self._payloads
        cdef PyObject* tup = _PyTuple_New(3)
        if tup == NULL:
            raise MemoryError()
        cdef PyObject* due = _PyLong_FromLongLong(top.due)
        cdef PyObject* handle = _PyLong_FromLongLong(top.handle)
        if due == NULL or handle == NULL:
            _Py_XDECREF(due)
            _Py_XDECREF(handle)
            _Py_DECREF(tup)
            raise MemoryError()
        _PyTuple_SET_ITEM(tup, 0, due)
        _PyTuple_SET_ITEM(tup, 1, handle)
        _PyTuple_SET_ITEM(tup, 2, _PyList_GET_ITEM(lst, slot))
        _Py_INCREF(_Py_None)
        _PyList_SET_ITEM(lst, slot, _Py_None)
        self._map[bucket].key = -1
        self._live -= 1
        self._push_free(slot)
        result = <object>tup  # takes a new reference ...
        _Py_DECREF(tup)  # ... so drop the one PyTuple_New gave us
        return result

    def pop_next(self, limit_ms):
        return self._pop_next(_i64(limit_ms, "limit_ms"))

    cdef object _pop_next(self, int64_t limit):
        # pop_next for callers in this module (TimerLoop): no argument conversion
        cdef _Timer top
        cdef Py_ssize_t bucket
        while self._size > 0:
            top = self._heap[0]
            if top.due > limit:
                return None
            self._pop_root()
            bucket = self._map_find(top.handle)
            if bucket >= 0:
                entry = self._take(&top, bucket)
                self._after_removals()
                return entry
        return None

    def pop_due(self, limit_ms):
        cdef int64_t limit = _i64(limit_ms, "limit_ms")
        cdef _Timer top
        cdef Py_ssize_t bucket
        cdef list out = []
        while self._size > 0:
            top = self._heap[0]
            if top.due > limit:
                break
            self._pop_root()
            if self._size > 0:
                # the next top's map bucket is a likely cache miss: start loading it now
                _prefetch(&self._map[<Py_ssize_t>(<uint64_t>self._heap[0].handle
                                                  & <uint64_t>self._map_mask)])
            bucket = self._map_find(top.handle)
            if bucket >= 0:
                out.append(self._take(&top, bucket))
        self._after_removals()
        return out

    def peek_due(self):
        cdef int64_t due
        if self._peek(&due):
            return due
        return None

    cdef bint _peek(self, int64_t* due) noexcept:
        # peek_due for callers in this module: False when no timer is live
        while self._size > 0:
            if self._map_find(self._heap[0].handle) >= 0:
                due[0] = self._heap[0].due
                return True
            self._pop_root()
        return False

    def __len__(self):
        return self._live

    def __contains__(self, handle):
        cdef int overflow = 0
        cdef int64_t h
        if not PyLong_Check(handle) or isinstance(handle, bool):
            return False
        h = PyLong_AsLongLongAndOverflow(handle, &overflow)
        return not overflow and h > 0 and self._map_find(h) >= 0

    def _storage_size(self):
        """Entries physically held, live and lazily-deleted (for memory-bound tests)."""
        return self._size

    def __repr__(self):
        return f"TimerHeap(live={self._live})"


# --------------------------------------------------------------------------- memo table


cdef class MemoTable:
    """A run's step id -> recorded outcome table, plus the per-replay step id counters.

    ``get(full_id, default=None, /)`` is a dict lookup (``default`` positional-only, as in
    ``dict.get``). A table holds as few objects the garbage collector must visit as it can
    (it lives as long as its run): the counters are plain ints, and the full ids a replay hands
    out again (``id:1``, ``id:2``...) are kept, to reuse the strings, only for reused ids.

    Complexity: next_id, get, set, ``in``, pop and len are O(1) (hash lookups); items is O(n);
    reset_counter is O(number of distinct base ids).
    """

    cdef dict _data
    cdef dict _counters  # base step id -> uses in this replay minus one
    cdef dict _names  # base step id -> [id, id:1, id:2, ...] made so far (None until reused)

    def __cinit__(self):
        self._data = {}
        self._counters = {}
        self._names = None

    def get(self, full_id, default=None, /):
        cdef PyObject* p = _PyDict_GetItem(self._data, full_id)  # borrowed
        if p == NULL:
            if not PyUnicode_Check(full_id):
                hash(full_id)  # an unhashable id raises TypeError, as dict.get does
            return default
        return <object>p

    def next_id(self, step_id, /):
        return self._next_id(step_id)

    cdef object _next_id(self, object step_id):
        # A base id used again gets the first suffix ``:n`` not yet handed out in this
        # replay (every id handed out is a key of the counters), so an explicit id such as
        # "a:1" never aliases the automatic id of a second "a" (which then becomes "a:2").
        # Deterministic: the ids depend only on the order of the step calls.
        cdef PyObject* p = _PyDict_GetItem(self._counters, step_id)  # borrowed
        cdef Py_ssize_t n
        cdef list names
        if p == NULL:
            if not PyUnicode_Check(step_id):
                raise TypeError(f"step_id must be a str, got {type(step_id).__name__}")
            self._counters[step_id] = 0
            return step_id
        n = <object>p
        if self._names is None:
            self._names = {}
        p = _PyDict_GetItem(self._names, step_id)
        if p == NULL:
            names = [step_id]
            self._names[step_id] = names
        else:
            names = <list>p
        while True:
            n += 1
            if n < len(names):
                name = names[n]
            else:  # n == len(names): each suffix tried is kept, in order
                name = f"{step_id}:{n}"
                names.append(name)
            if _PyDict_GetItem(self._counters, name) == NULL:
                break
        self._counters[step_id] = n
        self._counters[name] = 0
        return name

    def reset_counter(self):
        self._counters.clear()

    def __contains__(self, full_id):
        return full_id in self._data

    def set(self, full_id, outcome):
        self._set(full_id, outcome)

    cdef int _set(self, object full_id, object outcome) except -1:
        if not PyUnicode_Check(full_id):
            raise TypeError(f"full_id must be a str, got {type(full_id).__name__}")
        cdef dict data = self._data
        if full_id in data:
            raise ValueError(f"step {full_id!r} is already recorded")
        data[full_id] = outcome
        return 0

    def pop(self, full_id, default=_MISSING):
        if default is _MISSING:
            return self._data.pop(full_id)
        return self._data.pop(full_id, default)

    def items(self):
        return list(self._data.items())

    def __len__(self):
        return len(self._data)

    def __repr__(self):
        return f"MemoTable(recorded={len(self._data)})"


# --------------------------------------------------------------------------- ready queue

ctypedef struct _Ready:
    int64_t prio
    int64_t seq
    Py_ssize_t slot


cdef inline bint _ready_lt(const _Ready* a, const _Ready* b) noexcept nogil:
    # "a comes out first": higher priority, then lower sequence number
    return a.prio > b.prio or (a.prio == b.prio and a.seq < b.seq)


cdef class ReadyQueue:
    """Highest priority first, FIFO among equal priorities.

    A C array binary heap of (priority, sequence, slot); the items themselves sit in a Python
    list at their slot (so the garbage collector sees them), slots being recycled and the
    arrays shrunk once they are 3/4 empty.

    Complexity: push and pop O(log n) amortised; peek, len and bool O(1).
    """

    cdef _Ready* _heap
    cdef Py_ssize_t _size
    cdef Py_ssize_t _cap
    cdef int64_t _seq
    cdef list _slots
    cdef Py_ssize_t* _free
    cdef Py_ssize_t _nfree
    cdef Py_ssize_t _free_cap

    def __cinit__(self):
        self._heap = NULL
        self._free = NULL
        self._size = 0
        self._cap = 0
        self._seq = 0
        self._nfree = 0
        self._free_cap = 0
        self._slots = []

    def __dealloc__(self):
        free(self._heap)
        free(self._free)

    cdef int _resize(self, Py_ssize_t cap) except -1:
        cdef _Ready* p = <_Ready*>realloc(self._heap, cap * sizeof(_Ready))
        if p == NULL:
            raise MemoryError()
        self._heap = p
        self._cap = cap
        return 0

    cdef int _push_free(self, Py_ssize_t slot) except -1:
        cdef Py_ssize_t cap
        cdef Py_ssize_t* fr
        if self._nfree == self._free_cap:
            cap = self._free_cap * 2 if self._free_cap else 16
            fr = <Py_ssize_t*>realloc(self._free, cap * sizeof(Py_ssize_t))
            if fr == NULL:
                raise MemoryError()
            self._free = fr
            self._free_cap = cap
        self._free[self._nfree] = slot
        self._nfree += 1
        return 0

    cdef int _after_pop(self) except -1:
        # give memory back after bursts: every structure is shrunk once it is 3/4 empty
        cdef Py_ssize_t nslots = len(self._slots)
        cdef Py_ssize_t i, cap = self._cap
        cdef list slots
        if nslots > 64 and (self._size == 0 or (nslots > 1024 and self._nfree * 4 > nslots * 3)):
            slots = []
            for i in range(self._size):
                slots.append(self._slots[self._heap[i].slot])
                self._heap[i].slot = i
            self._slots = slots
            self._nfree = 0
            if self._free_cap > 1024:
                free(self._free)
                self._free = NULL
                self._free_cap = 0
        while cap > 1024 and self._size < cap >> 2:
            cap >>= 1
        if cap != self._cap:
            self._resize(cap)
        return 0

    def push(self, item, priority=0):
        cdef int64_t prio = _i64(priority, "priority")
        cdef Py_ssize_t slot, pos, parent
        cdef _Ready entry
        cdef _Ready* heap
        if self._size == self._cap:
            self._resize(self._cap * 2 if self._cap else 16)
        if self._nfree > 0:
            self._nfree -= 1
            slot = self._free[self._nfree]
            self._slots[slot] = item
        else:
            slot = len(self._slots)
            self._slots.append(item)
        entry.prio = prio
        entry.seq = self._seq
        entry.slot = slot
        self._seq += 1
        heap = self._heap
        pos = self._size
        self._size += 1
        while pos > 0:
            parent = (pos - 1) >> 1
            if _ready_lt(&entry, &heap[parent]):
                heap[pos] = heap[parent]
                pos = parent
            else:
                break
        heap[pos] = entry

    def pop(self):
        if self._size == 0:
            raise IndexError("pop from an empty ReadyQueue")
        cdef _Ready* heap = self._heap
        cdef Py_ssize_t slot = heap[0].slot
        cdef Py_ssize_t size, pos, child, parent
        cdef _Ready last
        item = self._slots[slot]
        self._slots[slot] = None
        self._push_free(slot)
        self._size -= 1
        size = self._size
        last = heap[size]
        pos = 0
        child = 1
        while child < size:
            if child + 1 < size and _ready_lt(&heap[child + 1], &heap[child]):
                child += 1
            heap[pos] = heap[child]
            pos = child
            child = 2 * pos + 1
        while pos > 0:
            parent = (pos - 1) >> 1
            if _ready_lt(&last, &heap[parent]):
                heap[pos] = heap[parent]
                pos = parent
            else:
                break
        if size > 0:
            heap[pos] = last
        self._after_pop()
        return item

    def peek(self):
        if self._size == 0:
            raise IndexError("peek at an empty ReadyQueue")
        return self._slots[self._heap[0].slot]

    def __len__(self):
        return self._size

    def __bool__(self):
        return self._size > 0

    def _storage_size(self):
        """Item slots physically held (for memory-bound tests)."""
        return len(self._slots)

    def __repr__(self):
        return f"ReadyQueue(len={self._size})"


# --------------------------------------------------------------------------- GCRA

cdef int64_t _FAST_BOUND = (<int64_t>1) << 62


cdef class GCRA:
    """Generic cell rate algorithm per key, in exact integer arithmetic.

    Times are scaled by ``limit`` so the emission interval T = period_ms / limit is the integer
    ``period_ms``: tat_s = tat_ms * limit, now_s = now_ms * limit, T_s = period_ms. A request
    at ``now_ms`` is admitted iff ``tat_s <= now_s + tolerance * T_s`` (an unseen key has
    tat = -infinity); admitting sets ``tat_s = max(tat_s, now_s) + T_s``.

    The arithmetic is done in C int64 whenever no intermediate can exceed 2**62, and with
    Python ints otherwise (same answers).

    Keys are kept in the order they were last admitted (an admission moves its key to the
    end), and a key's tat is at most its last admission plus (tolerance + 1) * T, so the keys
    whose state is equivalent to none (tat_s <= now_s) gather at the front: :meth:`prune`
    drops them from there, O(1) per key dropped.

    Complexity: acquire, peek, get_state, set_state O(1); prune O(keys dropped + 1);
    forget_before O(number of keys).
    """

    cdef readonly object limit
    cdef readonly object period_ms
    cdef readonly object tolerance
    cdef object _tol_t_obj
    cdef bint _fast
    cdef int64_t _l
    cdef int64_t _t
    cdef int64_t _tol_t
    cdef int64_t _now_max
    cdef object _tat  # an OrderedDict: see prune

    def __init__(self, limit, period_ms, tolerance):
        limit = _int(limit, "limit")
        period_ms = _int(period_ms, "period_ms")
        tolerance = _int(tolerance, "tolerance")
        if limit < 1:
            raise ValueError(f"limit must be >= 1, got {limit}")
        if period_ms < 1:
            raise ValueError(f"period_ms must be >= 1, got {period_ms}")
        if tolerance < 0:
            raise ValueError(f"tolerance must be >= 0, got {tolerance}")
        self.limit = limit
        self.period_ms = period_ms
        self.tolerance = tolerance
        self._tol_t_obj = tolerance * period_ms
        self._tat = OrderedDict()
        bound = 1 << 60
        self._fast = limit <= bound and period_ms <= bound and self._tol_t_obj <= bound
        if self._fast:
            self._l = limit
            self._t = period_ms
            self._tol_t = self._tol_t_obj
            self._now_max = (_FAST_BOUND - self._tol_t - self._t) // self._l

    cdef inline bint _fast_tat(self, object t_obj, int64_t* out):
        cdef int overflow = 0
        cdef int64_t t = PyLong_AsLongLongAndOverflow(t_obj, &overflow)
        if overflow or t > _FAST_BOUND or t < -_FAST_BOUND:
            return False
        out[0] = t
        return True

    def acquire(self, key, now_ms):
        cdef int64_t now = _now(now_ms)
        cdef int64_t now_s, t
        tat = self._tat
        t_obj = tat.get(key)
        if self._fast and now <= self._now_max:
            now_s = now * self._l
            if t_obj is None:
                tat[key] = now_s + self._t
                return -1
            if self._fast_tat(t_obj, &t):
                if t <= now_s:
                    tat[key] = now_s + self._t
                    tat.move_to_end(key)  # kept in last-admitted order (see prune)
                    return -1
                if t <= now_s + self._tol_t:
                    tat[key] = t + self._t
                    tat.move_to_end(key)
                    return -1
                return (t - self._tol_t + self._l - 1) // self._l
        # slow path: unbounded Python ints
        now_s_obj = now * self.limit
        if t_obj is None or t_obj <= now_s_obj:
            tat[key] = now_s_obj + self.period_ms
            if t_obj is not None:
                tat.move_to_end(key)
            return -1
        if t_obj <= now_s_obj + self._tol_t_obj:
            tat[key] = t_obj + self.period_ms
            tat.move_to_end(key)
            return -1
        return -((self._tol_t_obj - t_obj) // self.limit)

    def peek(self, key, now_ms):
        cdef int64_t now = _now(now_ms)
        cdef int64_t t
        t_obj = self._tat.get(key)
        if t_obj is None:
            return -1
        if self._fast and now <= self._now_max and self._fast_tat(t_obj, &t):
            if t <= now * self._l + self._tol_t:
                return -1
            return (t - self._tol_t + self._l - 1) // self._l
        if t_obj <= now * self.limit + self._tol_t_obj:
            return -1
        return -((self._tol_t_obj - t_obj) // self.limit)

    def get_state(self, key):
        return self._tat.get(key)

    def set_state(self, key, tat_s):
        tat_s = _int(tat_s, "tat_s")
        self._tat[key] = tat_s
        self._tat.move_to_end(key)  # like an admission

    def prune(self, now_ms, max_keys=-1):
        """Drop, from the front (least recently admitted first), the keys whose state admits
        exactly like no state at ``now_ms`` (tat <= now), stopping at the first key whose tat
        is still ahead or after ``max_keys`` drops (-1: no bound). Returns the dropped keys."""
        now_s = _now(now_ms) * self.limit
        max_keys = _int(max_keys, "max_keys")
        tat = self._tat
        cdef list dropped = []
        # An OrderedDict: its front is O(1) to reach however many keys left it (a plain
        # dict would rescan the holes its deletions leave).
        while tat and len(dropped) != max_keys:
            key = next(iter(tat))
            if tat[key] > now_s:
                break
            del tat[key]
            dropped.append(key)
        return dropped

    def forget_before(self, now_ms):
        now_s = _now(now_ms) * self.limit
        tat = self._tat
        for key in [k for k, t in tat.items() if t <= now_s]:
            del tat[key]

    def __len__(self):
        return len(self._tat)

    def __repr__(self):
        return (
            f"GCRA(limit={self.limit}, period_ms={self.period_ms}, "
            f"tolerance={self.tolerance}, keys={len(self._tat)})"
        )


# --------------------------------------------------------------------------- keyed counter


cdef class KeyedCounter:
    """Counts held slots per key (concurrency limits). Keys at zero are dropped.

    Complexity: try_acquire, release, count and len are O(1).
    """

    cdef dict _counts

    def __cinit__(self):
        self._counts = {}

    def try_acquire(self, key, limit):
        cdef int overflow = 0
        cdef int64_t lim, c
        if not PyLong_CheckExact(limit):
            limit = _int(limit, "limit")
        lim = PyLong_AsLongLongAndOverflow(limit, &overflow)
        if overflow > 0:
            lim = INT64_MAX
        elif overflow < 0 or lim < 1:
            raise ValueError(f"limit must be >= 1, got {limit}")
        cdef dict counts = self._counts
        c_obj = counts.get(key)
        c = 0 if c_obj is None else <int64_t>c_obj
        if c < lim:
            counts[key] = c + 1
            return True
        return False

    def release(self, key):
        cdef dict counts = self._counts
        c_obj = counts.get(key)
        if c_obj is None:
            raise ValueError(f"release without acquire for key {key!r}")
        cdef int64_t c = c_obj
        if c == 1:
            del counts[key]
        else:
            counts[key] = c - 1

    def count(self, key):
        return self._counts.get(key, 0)

    def __len__(self):
        return len(self._counts)

    def __repr__(self):
        return f"KeyedCounter(keys={len(self._counts)})"


# --------------------------------------------------------------------------- seeded random

cdef uint64_t _GAMMA = 0x9E3779B97F4A7C15ULL
cdef uint64_t _MIX1 = 0xBF58476D1CE4E5B9ULL
cdef uint64_t _MIX2 = 0x94D049BB133111EBULL
cdef const char* _CROCKFORD = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ"
cdef const char* _HEXDIGITS = b"0123456789abcdef"


cdef class SeededRandom:
    """splitmix64; deterministic and identical in the compiled and pure kernels.

    ``randbelow(n)`` (1 <= n <= 2**64): draw r = next_u64() until r >= 2**64 mod n, return
    r mod n (unbiased rejection; the first draw is accepted with probability > 1/2).
    ``ulid(ms)``: 48-bit ms then 80 random bits = (low 16 bits of a first draw) followed by
    a second full draw, in 26 Crockford base-32 characters.
    ``hex(nbytes)``: ceil(nbytes / 8) draws, each written as 16 lowercase hex digits
    (big-endian), concatenated and cut to 2 * nbytes characters.

    Complexity: O(1) per draw; hex O(nbytes).
    """

    cdef uint64_t _state

    def __init__(self, seed):
        self._state = PyLong_AsUnsignedLongLong(_int(seed, "seed") & _MASK64)

    def get_state(self):
        return self._state

    def set_state(self, state):
        state = _int(state, "state")
        if not 0 <= state <= _MASK64:
            raise ValueError(f"state must be in [0, 2**64), got {state}")
        self._state = PyLong_AsUnsignedLongLong(state)

    cdef inline uint64_t _next(self) noexcept:
        cdef uint64_t z
        self._state += _GAMMA
        z = self._state
        z = (z ^ (z >> 30)) * _MIX1
        z = (z ^ (z >> 27)) * _MIX2
        return z ^ (z >> 31)

    cdef uint64_t _below(self, uint64_t n) noexcept:
        # n >= 1; threshold = 2**64 mod n
        cdef uint64_t threshold = (<uint64_t>0 - n) % n
        cdef uint64_t r
        while True:
            r = self._next()
            if r >= threshold:
                return r % n

    def next_u64(self):
        return self._next()

    def randbelow(self, n):
        n = _int(n, "n")
        if n < 1:
            raise ValueError(f"n must be >= 1, got {n}")
        if n > _U64:
            raise ValueError(f"n must be <= 2**64, got {n}")
        if n == _U64:
            return self._next()
        return self._below(PyLong_AsUnsignedLongLong(n))

    def randrange(self, lo, hi):
        lo = _int(lo, "lo")
        hi = _int(hi, "hi")
        if hi <= lo:
            raise ValueError(f"empty range: lo={lo} must be < hi={hi}")
        width = hi - lo
        if width > _U64:
            raise ValueError(f"range too wide: hi - lo must be <= 2**64, got {width}")
        if width == _U64:
            return lo + self._next()
        return lo + self._below(PyLong_AsUnsignedLongLong(width))

    def ulid(self, ms):
        ms = _int(ms, "ms")
        if not 0 <= ms < (1 << 48):
            raise ValueError(f"ms must be in [0, 2**48), got {ms}")
        cdef uint64_t t = PyLong_AsUnsignedLongLong(ms)
        cdef uint64_t hi16 = self._next() & 0xFFFF
        cdef uint64_t lo64 = self._next()
        cdef uint64_t top40 = (hi16 << 24) | (lo64 >> 40)
        cdef uint64_t bot40 = lo64 & ((<uint64_t>1 << 40) - 1)
        cdef char buf[26]
        cdef int i
        for i in range(10):
            buf[i] = _CROCKFORD[(t >> (45 - 5 * i)) & 31]
        for i in range(8):
            buf[10 + i] = _CROCKFORD[(top40 >> (35 - 5 * i)) & 31]
            buf[18 + i] = _CROCKFORD[(bot40 >> (35 - 5 * i)) & 31]
        return PyUnicode_DecodeASCII(buf, 26, NULL)

    def hex(self, nbytes):
        nbytes = _int(nbytes, "nbytes")
        if nbytes < 0:
            raise ValueError(f"nbytes must be >= 0, got {nbytes}")
        cdef Py_ssize_t n = nbytes
        cdef Py_ssize_t draws = (n + 7) // 8
        cdef Py_ssize_t i, j
        cdef uint64_t r
        if n == 0:
            return ""
        cdef char* buf = <char*>malloc(draws * 16)
        if buf == NULL:
            raise MemoryError()
        try:
            for i in range(draws):
                r = self._next()
                for j in range(16):
                    buf[i * 16 + j] = _HEXDIGITS[(r >> (60 - 4 * j)) & 15]
            return PyUnicode_DecodeASCII(buf, 2 * n, NULL)
        finally:
            free(buf)

    def __repr__(self):
        return "SeededRandom(...)"


cdef class Journal:
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

    cdef public type record_type
    cdef public object save_entry
    cdef public object save_memo
    cdef public object trace
    cdef public object listener
    cdef public dict entry_lists

    def __init__(self, type record_type, save_entry, save_memo):
        self.record_type = record_type
        self.save_entry = save_entry
        self.save_memo = save_memo
        self.trace = None
        self.listener = None
        self.entry_lists = None

    cdef inline object _log(self, object history, object at_ms, object subject, object group,
                            object kind, object item, object detail):
        cdef tuple fields = (at_ms, subject, group, kind, item, detail)
        entry = tuple.__new__(self.record_type, fields)
        PyObject_GC_UnTrack(entry)
        if self.trace is not None:
            (<list?>self.trace).append(entry)
        if self.listener is not None:
            self.listener(entry)
        if history is not None:
            (<list?>history).append(entry)
            if self.entry_lists is not None:
                target = self.entry_lists.get(subject)
                if type(target) is list:
                    (<list>target).append(entry)
                    return entry
            self.save_entry(subject, entry)
        return entry

    def log(self, history, at_ms, subject, group, kind, item=None, detail=None):
        """One entry: to the trace, the listener and, with a ``history`` list, to it and to
        the store's ``save_entry(subject, entry)``."""
        return self._log(history, at_ms, subject, group, kind, item, detail)

    def memoize(self, MemoTable memos, list history, at_ms, subject, group, kind, item,
                memo, detail=None):
        """Record ``memo`` under ``item`` (``memos.set`` and the store's ``save_memo``), then
        :meth:`log` the entry ``kind`` for it."""
        return self._memoize(memos, history, at_ms, subject, group, kind, item, memo, detail)

    cdef object _memoize(self, MemoTable memos, list history, object at_ms, object subject,
                         object group, object kind, object item, object memo, object detail):
        memos._set(item, memo)
        self.save_memo(subject, item, memo)
        return self._log(history, at_ms, subject, group, kind, item, detail)


DONE = "done"
RAISED = "raised"
PARKED = "parked"


@cython.final
cdef class Drive:
    """Awaitable that runs ``coro`` until it returns, raises or yields ``park``: the await
    gives ``(DONE, value)``, ``(RAISED, exception)`` or ``(PARKED, None)``. Whatever else
    ``coro`` yields (an asyncio future: real I/O) goes up to the awaiting task, and what the
    task sends or throws back goes down into ``coro``, so a driven coroutine keeps its place
    whether it parks or awaits. Complexity: O(1) per value passed through.

    Compiled, the awaitable is its own iterator (``send``/``throw``/``close`` in C): no
    generator frame between the task and the coroutine.
    """

    cdef object _coro
    cdef object _send
    cdef object _park
    cdef bint _done

    def __init__(self, coro, park):
        self._coro = coro
        self._send = coro.send
        self._park = park
        self._done = False

    def __await__(self):
        return self

    def __iter__(self):
        return self

    def __next__(self):
        return self._resume(None, None)

    def send(self, value):
        return self._resume(value, None)

    def throw(self, typ, val=None, tb=None):
        if isinstance(typ, BaseException):
            exc = typ
        elif isinstance(val, BaseException):
            exc = val
        elif val is None:
            exc = typ()
        else:
            exc = typ(val)
        return self._resume(None, exc)

    def close(self):
        # as a generator's close(): GeneratorExit goes down into the coroutine
        if self._done:
            return
        try:
            self._resume(None, GeneratorExit())
        except StopIteration:
            pass

    cdef object _resume(self, object value, object exc):
        if self._done:
            raise StopIteration
        try:
            if exc is not None:
                y = self._coro.throw(exc)
            else:
                y = self._send(value)
        except StopIteration as stop:
            self._done = True
            raise StopIteration((DONE, stop.value))
        except BaseException as err:
            self._done = True
            raise StopIteration((RAISED, err))
        if y is self._park:
            self._done = True
            raise StopIteration((PARKED, None))
        return y


# --- steps (kstep)
# A step that nothing but the engine's own bookkeeping hears of takes this short path: one
# call begins it, looks up its memo and enters its body; one more records its success.
# Anything unusual is answered with a signal, and the caller's own (slower) code goes on.


@cython.final
cdef class _Signal:
    """An answer of :class:`StepBook` that is not a value; compared by identity."""

    cdef str _name

    def __init__(self, str name):
        self._name = name

    def __repr__(self):
        return self._name


SLOW = _Signal("SLOW")
BEGUN = _Signal("BEGUN")
BODY = _Signal("BODY")
cdef object _SLOW = SLOW
cdef object _BEGUN = BEGUN
cdef object _BODY = BODY


cdef inline bint _json_scalar(object value):
    # what a step's output check passes through untouched (a float may be NaN)
    cdef type t = type(value)
    return value is None or t is str or t is int or t is bool


@cython.final
cdef class StepRules:
    """What the :class:`StepBook` s of one engine share.

    ``op``: the op code a recorded success carries (``memo = (op, True, value)``) and that a
    memo must carry to be handed back; ``kind``: the journal entry kind of a recorded success;
    ``journal``: the :class:`Journal` that records it; ``now_ms()``: the clock; ``check(full_id,
    value)``: the output check for a value that is not None/str/int/bool (it returns the value
    to record, or raises); ``copy(value)``: what the handler gets of a recorded value that is
    not None/str/int/bool/float; ``current``: a ``contextvars.ContextVar`` set to the book whose
    step body starts; ``commit()``: called after each record (None: nothing to call).
    """

    cdef readonly str op
    cdef readonly str kind
    cdef readonly Journal journal
    cdef readonly object now_ms
    cdef readonly object check
    cdef readonly object copy
    cdef readonly object current
    cdef readonly object commit

    def __init__(self, op, kind, journal, now_ms, check, copy, current, commit=None):
        if not isinstance(op, str):
            raise TypeError(f"op must be a str, got {type(op).__name__}")
        if not isinstance(kind, str):
            raise TypeError(f"kind must be a str, got {type(kind).__name__}")
        if not isinstance(journal, Journal):
            raise TypeError(f"journal must be a Journal, got {type(journal).__name__}")
        for name, fn in (("now_ms", now_ms), ("check", check), ("copy", copy)):
            if not callable(fn):
                raise TypeError(f"{name} must be callable, got {type(fn).__name__}")
        if not PyContextVar_CheckExact(current):
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

    def __repr__(self):
        return f"StepRules(op={self.op!r}, kind={self.kind!r})"


cdef inline object _handed_back(StepRules rules, object value):
    # a recorded value as the handler gets it: scalars as they are, anything else a copy
    cdef type t = type(value)
    if value is None or t is str or t is int or t is bool or t is float:
        return value
    return rules.copy(value)


cdef class StepBook:
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

    cdef public object engine
    cdef public object run
    cdef public object ctx
    cdef public object rules
    cdef public object in_body
    cdef public object step_name
    cdef public object busy_ms
    cdef public bint fast
    cdef public bint memo_phase
    cdef public object generation
    cdef public object full_id

    def __cinit__(self, *args, **kwargs):
        self.step_name = ""
        self.busy_ms = 0

    cdef StepRules _rules(self):
        if type(self.rules) is not StepRules:
            raise TypeError(f"rules must be a StepRules, got {type(self.rules).__name__}")
        return <StepRules>self.rules

    def open_step(self, step_id):
        """Begin step ``step_id`` on the short path; see the class docstring."""
        cdef StepRules rules
        cdef MemoTable memos
        cdef PyObject* found
        if not self.fast or self.memo_phase or self.in_body is not None:
            return _SLOW
        if not PyUnicode_CheckExact(step_id) or len(<str>step_id) == 0:
            return _SLOW  # the caller's own code reports it
        rules = self._rules()
        if self.generation != self.engine.generation:
            return _SLOW
        run = self.run
        if run.cancel_requested:
            return _SLOW
        self.step_name = step_id
        memos = run.memos
        full_id = memos._next_id(step_id)
        self.full_id = full_id
        found = _PyDict_GetItem(memos._data, full_id)  # borrowed
        if found != NULL:
            memo = <object>found
            if memo[0] == rules.op and memo[1]:
                return _handed_back(rules, memo[2])
            return _BEGUN
        if run.pending:
            return _BEGUN
        self.ctx.attempt = run.attempt
        self.in_body = full_id
        self.busy_ms = 0
        if _context_value(rules.current) is not self:  # (a set makes a new context mapping)
            PyContextVar_Set(rules.current, self)
        return _BODY

    def checked(self, full_id, value):
        """``value`` as step ``full_id`` records it: ``rules.check`` unless it is a JSON
        scalar (None, str, int, bool)."""
        if _json_scalar(value):
            return value
        return self._rules().check(full_id, value)

    def record(self, full_id, value):
        """Step ``full_id``'s body (entered by ``open_step``) returned ``value`` (already
        checked): leave the body, record the success and return what the handler gets, or
        :data:`SLOW` (the body declared ``busy_ms``: nothing recorded, the caller's code goes
        on)."""
        cdef StepRules rules = self._rules()
        self.in_body = None
        if self.busy_ms:
            return _SLOW
        run = self.run
        pending = run.pending
        if pending:
            pending.pop(full_id, None)
        run.attempt = 0
        rules.journal._memoize(run.memos, run.history, rules.now_ms(), run.id, run.fn_id,
                               rules.kind, full_id, (rules.op, True, value), None)
        if rules.commit is not None:
            rules.commit()
        return _handed_back(rules, value)


# --- timers (ksleep)


@cython.final
cdef class TimerLoop:
    """The due-timer loop over one timer heap, and the check that lets a lone timed wait end
    without parking.

    ``horizon_ms`` is how far the drive in progress may move ``clock`` (None: no such drive,
    as with a wall clock or a worker); ``budget`` how many timer instants it may still take.
    ``started``, ``detail_key``, ``done`` and ``memo`` are what :meth:`skip` records: the
    entry kind a wait starts with, the key of its end in that entry's detail, the entry kind
    it ends with, and the memo it leaves. Complexity: :meth:`fire_due` O(k log n) for k
    timers plus their callbacks; :meth:`skip` O(1) amortised.
    """

    cdef public object clock
    cdef TimerHeap _timers  # never None (its C methods are called directly)
    cdef public object ready
    cdef Journal _journal  # never None, likewise
    cdef public object started
    cdef public object detail_key
    cdef public object done
    cdef public object memo
    cdef public Py_ssize_t budget
    cdef int64_t _horizon
    cdef bint _has_horizon

    def __init__(self, clock, TimerHeap timers not None, ready, Journal journal not None,
                 started, detail_key, done, memo):
        self.clock = clock
        self._timers = timers
        self.ready = ready
        self._journal = journal
        self.started = started
        self.detail_key = detail_key
        self.done = done
        self.memo = memo
        self._has_horizon = False
        self._horizon = 0
        self.budget = 0

    @property
    def timers(self):
        return self._timers

    @timers.setter
    def timers(self, TimerHeap value not None):
        self._timers = value

    @property
    def journal(self):
        return self._journal

    @journal.setter
    def journal(self, Journal value not None):
        self._journal = value

    @property
    def horizon_ms(self):
        return self._horizon if self._has_horizon else None

    @horizon_ms.setter
    def horizon_ms(self, value):
        if value is None:
            self._has_horizon = False
            return
        self._horizon = _i64(value, "horizon_ms")
        self._has_horizon = True

    def fire_due(self, now_ms, fire):
        """Pop every timer due at or before ``now_ms`` in (due, handle) order and call
        ``fire(handle, payload)`` for each (one ``fire`` schedules that is due by then fires
        in this call too); returns how many fired."""
        cdef int64_t limit = _i64(now_ms, "limit_ms")
        cdef Py_ssize_t fired = 0
        cdef tuple item
        while True:
            popped = self._timers._pop_next(limit)
            if popped is None:
                return fired
            item = <tuple>popped
            fired += 1
            fire(item[1], item[2])

    def due_step(self, target_ms, fire_due):
        """One step of a drive up to ``target_ms``: True at once if something is ready; else
        move the clock to the next timer due by ``target_ms`` (never backwards) and call
        ``fire_due(now_ms)``, True; False when no timer is due by then."""
        cdef int64_t target = _i64(target_ms, "target_ms")
        cdef int64_t due
        if self.ready:
            return True
        if not self._timers._peek(&due) or due > target:
            return False
        # The clock is moved and read through its methods: it may keep more than a number
        # (the compiled VirtualClock may share one int per instant).
        clock = self.clock
        if due > clock.now_ms():
            clock.advance_to(due)
        fire_due(clock.now_ms())
        return True

    def skip(self, list history, MemoTable memos, subject, group, item, ms):
        """A wait of ``ms`` that nothing else could interleave with ends at once: when a
        drive may move the clock to its end (``horizon_ms``, with ``budget`` left), nothing
        is ready, no listener hears the journal and no timer is due at or before its end,
        record what a parked wait would (the ``started`` entry now with ``{detail_key:
        end}``, the clock moved to the end, ``memo`` under ``item`` with the ``done`` entry
        then), take one from ``budget`` and return True; otherwise do nothing, False."""
        cdef int64_t now, end, due
        cdef int64_t wait = _i64(ms, "ms")
        if wait < 0:
            raise ValueError(f"ms must be >= 0, got {wait}")
        if not self._has_horizon or self.budget <= 0 or self.ready or \
                self._journal.listener is not None:
            return False
        clock = self.clock  # moved and read through its methods (see due_step)
        at = clock.now_ms()
        now = _i64(at, "now_ms")
        if now >= 0 and wait > INT64_MAX - now:
            return False  # its end is past any horizon
        end = now + wait
        if end > self._horizon:
            return False
        if self._timers._peek(&due) and due <= end:
            return False
        self.budget -= 1
        journal = self._journal
        until = end
        journal._log(history, at, subject, group, self.started, item, {self.detail_key: until})
        clock.advance_to(until)
        journal._memoize(memos, history, clock.now_ms(), subject, group, self.done, item,
                         self.memo, None)
        return True


def plain_records(records):
    """``records`` (tuples, or tuple subclasses such as journal entries) as one tuple of plain
    tuples, which is what ``marshal`` takes; in the compiled core the copies are not tracked
    by the garbage collector (as with :func:`untracked_record`, their fields never lead back
    to them), so copying a long history sets off no collection. O(n)."""
    cdef list items = list(records)
    cdef Py_ssize_t i
    for i in range(len(items)):
        rec = items[i]
        if not isinstance(rec, tuple):
            raise TypeError(f"records[{i}] must be a tuple, got {type(rec).__name__}")
        if type(rec) is not tuple:
            rec = tuple(rec)
            PyObject_GC_UnTrack(rec)
            items[i] = rec
    return tuple(items)


def iso_utc(ms):
    """``ms_to_datetime(ms).isoformat()`` (``2025-01-01T00:00:00+00:00``, with ``.ffffff``
    when there are milliseconds), from integers; ValueError outside years 1 to 9999. O(1)."""
    cdef int64_t t = _i64(ms, "ms")
    cdef int64_t secs = t // 1000  # (cdivision: floor by hand below)
    if secs * 1000 > t:
        secs -= 1
    cdef int64_t millis = t - secs * 1000
    cdef int64_t days = secs // 86400
    if days * 86400 > secs:
        days -= 1
    cdef int64_t sod = secs - days * 86400
    if not 1 <= days + 719163 <= 3652059:
        raise ValueError(f"ms {t} is outside the years 1 to 9999")
    # days since 1970-01-01 -> (year, month, day), proleptic Gregorian (Hinnant's algorithm)
    cdef int64_t z = days + 719468
    cdef int64_t era = (z if z >= 0 else z - 146096) // 146097
    cdef int64_t doe = z - era * 146097
    cdef int64_t yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    cdef int64_t doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    cdef int64_t mp = (5 * doy + 2) // 153
    cdef int64_t day = doy - (153 * mp + 2) // 5 + 1
    cdef int64_t month = mp + 3 if mp < 10 else mp - 9
    cdef int64_t year = yoe + era * 400 + (1 if month <= 2 else 0)
    cdef char buf[48]
    cdef int n
    if millis:
        n = snprintf(buf, sizeof(buf), "%04d-%02d-%02dT%02d:%02d:%02d.%06d+00:00",
                     <int>year, <int>month, <int>day, <int>(sod // 3600),
                     <int>(sod // 60 % 60), <int>(sod % 60), <int>(millis * 1000))
    else:
        n = snprintf(buf, sizeof(buf), "%04d-%02d-%02dT%02d:%02d:%02d+00:00",
                     <int>year, <int>month, <int>day, <int>(sod // 3600),
                     <int>(sod // 60 % 60), <int>(sod % 60))
    return PyUnicode_DecodeASCII(buf, n, NULL)
