"""Kernel benchmarks: compiled core vs its pure-Python twin vs plain stdlib code doing the same job.

Run:  pytest bench/test_kernel_bench.py --benchmark-only --benchmark-group-by=group
Each group holds the same job done three ways, so the ratios can be read off one table
(bench/README.md, "Kernel", records them).
"""

from __future__ import annotations

import heapq
import random

import pytest

from inngest_do import kernel

PURE = kernel.load(pure=True)
try:
    COMPILED = kernel.load(pure=False)
except ImportError:
    COMPILED = None

IMPLS = ["compiled", "pure"]
I64_MAX = 2**63 - 1


def _core(name: str):
    if name == "pure":
        return PURE
    if COMPILED is None:
        pytest.skip("compiled kernel inngest_do._core is not built")
    return COMPILED


# ------------------------------------------------------------------ timer heap: 1,000,000 timers

N_TIMERS = 1_000_000
_rng = random.Random(20240601)
DUES = [_rng.randrange(0, 366 * 86_400_000) for _ in range(N_TIMERS)]
CANCEL = _rng.sample(range(N_TIMERS), N_TIMERS // 10)
LIVE = N_TIMERS - len(CANCEL)


def _timer_job(timer_heap_cls):
    timers = timer_heap_cls()
    schedule = timers.schedule
    handles = [schedule(due, i) for i, due in enumerate(DUES)]
    cancel = timers.cancel
    for i in CANCEL:
        cancel(handles[i])
    return timers.pop_due(I64_MAX)


def _heapq_timer_job():
    heap: list = []
    push = heapq.heappush
    handles = []
    append_handle = handles.append
    for i, due in enumerate(DUES):
        handle = i + 1
        push(heap, (due, handle, i))
        append_handle(handle)
    cancelled = set()
    for i in CANCEL:
        cancelled.add(handles[i])
    pop = heapq.heappop
    out = []
    append = out.append
    while heap:
        entry = pop(heap)
        if entry[1] not in cancelled:
            append(entry)
    return out


@pytest.mark.benchmark(group="timer-heap: schedule 1M, cancel 10%, pop all")
@pytest.mark.parametrize("impl", IMPLS)
def test_timer_heap_million(benchmark, impl):
    cls = _core(impl).TimerHeap
    out = benchmark.pedantic(_timer_job, args=(cls,), rounds=3, iterations=1, warmup_rounds=0)
    assert len(out) == LIVE
    assert out[0][0] == min(out)[0]


@pytest.mark.benchmark(group="timer-heap: schedule 1M, cancel 10%, pop all")
def test_timer_heap_million_heapq(benchmark):
    out = benchmark.pedantic(_heapq_timer_job, rounds=3, iterations=1, warmup_rounds=0)
    assert len(out) == LIVE


# ------------------------------------------------------------------ timer heap: engine-style loop

N_LOOP = 100_000


def _timer_loop_job(timer_heap_cls):
    # what an engine tick does: keep ~1,000 timers pending, pop what is due one at a time
    timers = timer_heap_cls()
    schedule = timers.schedule
    pop_next = timers.pop_next
    now = 0
    fired = 0
    for i in range(1_000):
        schedule(DUES[i] % 10_000, i)
    for i in range(N_LOOP):
        now += 10
        while pop_next(now) is not None:
            fired += 1
            schedule(now + DUES[i] % 10_000, i)
    return fired


def _heapq_timer_loop_job():
    heap: list = []
    push = heapq.heappush
    pop = heapq.heappop
    cancelled: set = set()
    handle = 0
    now = 0
    fired = 0
    for i in range(1_000):
        handle += 1
        push(heap, (DUES[i] % 10_000, handle, i))
    for i in range(N_LOOP):
        now += 10
        while heap and heap[0][0] <= now:
            entry = pop(heap)
            if entry[1] in cancelled:
                continue
            fired += 1
            handle += 1
            push(heap, (now + DUES[i] % 10_000, handle, i))
    return fired


@pytest.mark.benchmark(group="timer-heap: engine loop, 1k pending, pop_next")
@pytest.mark.parametrize("impl", IMPLS)
def test_timer_heap_loop(benchmark, impl):
    cls = _core(impl).TimerHeap
    assert benchmark(_timer_loop_job, cls) == _heapq_timer_loop_job()


@pytest.mark.benchmark(group="timer-heap: engine loop, 1k pending, pop_next")
def test_timer_heap_loop_heapq(benchmark):
    assert benchmark(_heapq_timer_loop_job) > 0


# ------------------------------------------------------------------ memo table

STEP_IDS = [f"step-{i}" for i in range(1_000)]
LOOKUP_ROUNDS = 100


def _memo_get_job(memo):
    get = memo.get
    found = 0
    for _ in range(LOOKUP_ROUNDS):
        for step_id in STEP_IDS:
            if get(step_id) is not None:
                found += 1
    return found


def _filled(table_cls):
    memo = table_cls()
    for i, step_id in enumerate(STEP_IDS):
        memo.set(step_id, {"result": i})
    return memo


@pytest.mark.benchmark(group="memo: 1k recorded steps, 100k get")
@pytest.mark.parametrize("impl", IMPLS)
def test_memo_get(benchmark, impl):
    memo = _filled(_core(impl).MemoTable)
    assert benchmark(_memo_get_job, memo) == len(STEP_IDS) * LOOKUP_ROUNDS


@pytest.mark.benchmark(group="memo: 1k recorded steps, 100k get")
def test_memo_get_dict(benchmark):
    memo = {step_id: {"result": i} for i, step_id in enumerate(STEP_IDS)}
    assert benchmark(_memo_get_job, memo) == len(STEP_IDS) * LOOKUP_ROUNDS


# a replay of a run with 1,000 steps in a loop of 10 distinct ids: reset the counters, then for
# each step derive its full id (id, id:1, ...) and look up its memo
REPLAY_BASES = [f"fetch-{i % 10}" for i in range(1_000)]
REPLAYS = 100


def _memo_replay_job(memo):
    next_id = memo.next_id
    get = memo.get
    reset = memo.reset_counter
    found = 0
    for _ in range(REPLAYS):
        reset()
        for base in REPLAY_BASES:
            if get(next_id(base)) is not None:
                found += 1
    return found


def _dict_replay_job(state):
    data, counters = state
    get = data.get
    found = 0
    for _ in range(REPLAYS):
        counters.clear()
        for base in REPLAY_BASES:
            n = counters.get(base)
            if n is None:
                counters[base] = 0
                full = base
            else:
                n += 1
                counters[base] = n
                full = f"{base}:{n}"
            if get(full) is not None:
                found += 1
    return found


def _recorded_replay_ids():
    memo = PURE.MemoTable()
    return [memo.next_id(base) for base in REPLAY_BASES]


@pytest.mark.benchmark(group="memo: replay 1k steps (next_id + get) x100")
@pytest.mark.parametrize("impl", IMPLS)
def test_memo_replay(benchmark, impl):
    memo = _core(impl).MemoTable()
    for i, full_id in enumerate(_recorded_replay_ids()):
        memo.set(full_id, i)
    assert benchmark(_memo_replay_job, memo) == len(REPLAY_BASES) * REPLAYS


@pytest.mark.benchmark(group="memo: replay 1k steps (next_id + get) x100")
def test_memo_replay_dict(benchmark):
    data = {full_id: i for i, full_id in enumerate(_recorded_replay_ids())}
    assert benchmark(_dict_replay_job, (data, {})) == len(REPLAY_BASES) * REPLAYS


# ------------------------------------------------------------------ ready queue

N_READY = 100_000
PRIORITIES = [_rng.randrange(-600, 601) for _ in range(N_READY)]


def _ready_job(queue_cls):
    q = queue_cls()
    push = q.push
    for i, prio in enumerate(PRIORITIES):
        push(i, prio)
    pop = q.pop
    return [pop() for _ in range(N_READY)]


def _heapq_ready_job():
    heap: list = []
    push = heapq.heappush
    for i, prio in enumerate(PRIORITIES):
        push(heap, (-prio, i, i))
    pop = heapq.heappop
    return [pop(heap)[2] for _ in range(N_READY)]


@pytest.mark.benchmark(group="ready-queue: push 100k, pop 100k")
@pytest.mark.parametrize("impl", IMPLS)
def test_ready_queue(benchmark, impl):
    cls = _core(impl).ReadyQueue
    assert benchmark(_ready_job, cls) == _heapq_ready_job()


@pytest.mark.benchmark(group="ready-queue: push 100k, pop 100k")
def test_ready_queue_heapq(benchmark):
    assert len(benchmark(_heapq_ready_job)) == N_READY


# ------------------------------------------------------------------ GCRA

N_GCRA = 100_000
GCRA_KEYS = [f"account-{i}" for i in range(100)]
GCRA_CALLS = [(GCRA_KEYS[_rng.randrange(100)], i // 10) for i in range(N_GCRA)]


def _gcra_job(gcra):
    acquire = gcra.acquire
    admitted = 0
    for key, now in GCRA_CALLS:
        if acquire(key, now) == -1:
            admitted += 1
    return admitted


def _inline_gcra_job(params):
    # the same arithmetic written straight into the loop, no validation
    limit, period, tol_t = params
    tat: dict = {}
    get = tat.get
    admitted = 0
    for key, now in GCRA_CALLS:
        now_s = now * limit
        t = get(key)
        if t is None or t <= now_s:
            tat[key] = now_s + period
            admitted += 1
        elif t <= now_s + tol_t:
            tat[key] = t + period
            admitted += 1
    return admitted


@pytest.mark.benchmark(group="gcra: 100k acquire over 100 keys")
@pytest.mark.parametrize("impl", IMPLS)
def test_gcra_acquire(benchmark, impl):
    def run():
        return _gcra_job(_core(impl).GCRA(10, 1_000, 1))

    assert benchmark(run) == _inline_gcra_job((10, 1_000, 1 * 1_000))


@pytest.mark.benchmark(group="gcra: 100k acquire over 100 keys")
def test_gcra_acquire_inline(benchmark):
    assert benchmark(_inline_gcra_job, (10, 1_000, 1 * 1_000)) > 0
