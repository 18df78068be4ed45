"""Reference models of flow control, written from SPEC.md section 3 (not from the engine).

Each model is plain Python over a *stream*: a list of ``(time_ms, event)`` pairs sorted by
time, where ``time_ms`` counts from the start of the simulation and ``event`` is a dict
``{"name": str, "data": {"seq": int, ...}, "id": str (optional)}``. ``data["seq"]`` names
the event uniquely; a run is identified by the ``seq`` numbers of its events.

A model returns an :class:`Expected`: the runs (which events each holds, its status and the
times the model can tell) and, per event, its outcome for the function.

Conventions shared with the harness (``harness.drive``), which are how a test drives a
``Simulation``: events are sent one at a time, in stream order, each after ``advance_to`` its
time. ``advance`` fires every timer due up to and including its target, so at equal times a
flow-control deadline (a debounce or batch timeout, a throttled run's turn, a step or sleep
ending) is processed *before* an event that arrives at that instant; and each event is fully
handled (its run started if it may) before the next one is sent.

Keys: ``key`` names a field of ``event.data`` (the function's key expression is then
``event.data.<key>``); ``None`` means no key (one shared bucket).
"""

from __future__ import annotations

import collections
import dataclasses
import math
import typing
from collections.abc import Callable, Sequence
from fractions import Fraction

SECOND_MS = 1000
HOUR_MS = 3_600_000
DAY_MS = 86_400_000
YEAR_MS = 365 * DAY_MS
PRIORITY_CLAMP_S = 600

Event = dict[str, typing.Any]
Stream = Sequence[tuple[int, Event]]

_NO_KEY = "<no key>"


@dataclasses.dataclass(frozen=True)
class ExpectedRun:
    """One run as a model predicts it; ``None`` in a time field means "not predicted"."""

    events: tuple[int, ...]
    status: str = "Completed"
    created_ms: int | None = None
    started_ms: int | None = None
    ended_ms: int | None = None
    steps: int | None = None  # step bodies that ran (timeouts model)


@dataclasses.dataclass(frozen=True)
class Outcome:
    """What an event did for the function: ``kind`` as ``sim.events()`` reports it, and the
    events of the run it refers to (``None`` when it refers to no run)."""

    kind: str
    run: tuple[int, ...] | None


@dataclasses.dataclass
class Expected:
    runs: list[ExpectedRun]
    outcomes: dict[int, Outcome]

    def run_of(self, seq: int) -> ExpectedRun | None:
        for run in self.runs:
            if seq in run.events:
                return run
        return None


def seq(event: Event) -> int:
    return int(event["data"]["seq"])


def key_of(event: Event, key: str | None) -> typing.Any:
    """The value of ``event.data.<key>`` (the shared bucket when there is no key)."""
    return _NO_KEY if key is None else event["data"][key]


def clamp_priority(value: object) -> int:
    """``priority.run`` gives whole seconds; a non-int gives 0; clamped to -600..600."""
    if not isinstance(value, int) or isinstance(value, bool):
        return 0
    return max(-PRIORITY_CLAMP_S, min(PRIORITY_CLAMP_S, value))


# ------------------------------------------------------------------------------------- GCRA


class GCRA:
    """Generic cell rate algorithm per key, in exact arithmetic.

    Emission interval ``T = period / limit``; an action at ``now`` is allowed when
    ``tat <= now + tolerance`` (a key never seen has ``tat = now``), and taking it sets
    ``tat = max(tat, now) + T``. ``tolerance`` is given in emission intervals.
    """

    def __init__(self, period_ms: int, limit: int, tolerance_intervals: int) -> None:
        self.interval = Fraction(period_ms, limit)
        self.tolerance = tolerance_intervals * self.interval
        self.tat: dict[typing.Any, Fraction] = {}

    def allows(self, key: typing.Any, now: int) -> bool:
        return self.tat.get(key, Fraction(now)) <= now + self.tolerance

    def take(self, key: typing.Any, now: int) -> None:
        self.tat[key] = max(self.tat.get(key, Fraction(now)), Fraction(now)) + self.interval

    def earliest(self, key: typing.Any) -> int:
        """The first integer millisecond at which ``key`` is allowed again."""
        tat = self.tat.get(key)
        return 0 if tat is None else math.ceil(tat - self.tolerance)


# -------------------------------------------------------------------------------- rate limit


def rate_limit_model(stream: Stream, *, limit: int, period_ms: int,
                     key: str | None = None) -> Expected:
    """GCRA per key with the hidden burst floor(limit/10); an event over it starts no run.

    A key whose value is the boolean ``false`` is not limited.
    """
    gcra = GCRA(period_ms, limit, limit // 10)
    runs: list[ExpectedRun] = []
    outcomes: dict[int, Outcome] = {}
    for t, ev in stream:
        k = key_of(ev, key)
        if k is False or gcra.allows(k, t):
            if k is not False:
                gcra.take(k, t)
            runs.append(ExpectedRun((seq(ev),), created_ms=t, started_ms=t))
            outcomes[seq(ev)] = Outcome("started", (seq(ev),))
        else:
            outcomes[seq(ev)] = Outcome("rate_limited", None)
    return Expected(runs, outcomes)


def idempotency_model(stream: Stream, *, key: str) -> Expected:
    """A rate limit of 1 per 24 h on the key: one run per key value per 24 h from the first
    accepted event (GCRA with T = 24 h and no burst)."""
    gcra = GCRA(DAY_MS, 1, 0)
    runs: list[ExpectedRun] = []
    outcomes: dict[int, Outcome] = {}
    for t, ev in stream:
        k = key_of(ev, key)
        if gcra.allows(k, t):
            gcra.take(k, t)
            runs.append(ExpectedRun((seq(ev),), created_ms=t, started_ms=t))
            outcomes[seq(ev)] = Outcome("started", (seq(ev),))
        else:
            outcomes[seq(ev)] = Outcome("idempotent", None)
    return Expected(runs, outcomes)


def event_id_model(stream: Stream, *, seen: str = "any") -> Expected:
    """Per function, an event whose non-empty ``id`` was seen in the last 24 h starts no run.

    "Seen" is ambiguous for a chain of duplicates: ``seen="any"`` counts every delivery of
    the id (deduplicated ones too), ``seen="accepted"`` only the one that started a run. The
    window is ``now - seen_at < 24 h`` (at exactly 24 h the id is no longer fresh, as with
    idempotency's GCRA).
    """
    last_seen: dict[str, int] = {}
    runs: list[ExpectedRun] = []
    outcomes: dict[int, Outcome] = {}
    for t, ev in stream:
        eid = ev.get("id") or ""
        if eid and eid in last_seen and t - last_seen[eid] < DAY_MS:
            outcomes[seq(ev)] = Outcome("deduplicated", None)
            if seen == "any":
                last_seen[eid] = t
            continue
        if eid:
            last_seen[eid] = t
        runs.append(ExpectedRun((seq(ev),), created_ms=t, started_ms=t))
        outcomes[seq(ev)] = Outcome("started", (seq(ev),))
    return Expected(runs, outcomes)


# ---------------------------------------------------------------------------------- throttle


def throttle_model(stream: Stream, *, limit: int, period_ms: int, burst: int = 1,
                   key: str | None = None) -> Expected:
    """GCRA on run starts with tolerance (limit+burst-1)*T; runs over it wait FIFO per key
    and start as soon as the limiter allows; none is dropped."""
    gcra = GCRA(period_ms, limit, limit + burst - 1)
    queues: dict[typing.Any, collections.deque[tuple[int, int]]] = collections.defaultdict(
        collections.deque)
    last_start: dict[typing.Any, int] = {}
    runs: list[ExpectedRun] = []
    outcomes: dict[int, Outcome] = {}

    def start(k: typing.Any, s: int, created: int, at: int) -> None:
        gcra.take(k, at)
        last_start[k] = at
        runs.append(ExpectedRun((s,), created_ms=created, started_ms=at))

    def release(until: float) -> None:
        for k, queue in queues.items():
            while queue:
                created, s = queue[0]
                at = max(created, last_start.get(k, created), gcra.earliest(k))
                if at > until:
                    break
                queue.popleft()
                start(k, s, created, at)

    for t, ev in stream:
        release(t)
        k = key_of(ev, key)
        if not queues[k] and gcra.allows(k, t):
            start(k, seq(ev), t, t)
            outcomes[seq(ev)] = Outcome("started", (seq(ev),))
        else:
            queues[k].append((t, seq(ev)))
            outcomes[seq(ev)] = Outcome("throttled", (seq(ev),))
    release(math.inf)
    return Expected(runs, outcomes)


# ---------------------------------------------------------------------------------- debounce


def debounce_model(stream: Stream, *, period_ms: int, key: str | None = None,
                   timeout_ms: int | None = None) -> Expected:
    """Per key, a run starts ``period`` after the last event (capped at ``timeout`` after the
    first), with the last event alone; an event after that run started begins a new one."""
    pending: dict[typing.Any, dict[str, typing.Any]] = {}
    runs: list[ExpectedRun] = []
    outcomes: dict[int, Outcome] = {}

    def fire(until: float) -> None:
        for k in [k for k, p in pending.items() if p["due"] <= until]:
            p = pending.pop(k)
            run = (p["last"],)
            runs.append(ExpectedRun(run, started_ms=p["due"]))
            for member in p["members"]:
                outcomes[member] = Outcome("debounced", run)

    for t, ev in stream:
        fire(t)
        k = key_of(ev, key)
        p = pending.get(k)
        if p is None:
            p = pending[k] = {"first": t, "members": []}
        p["last"] = seq(ev)
        p["members"].append(seq(ev))
        due = t + period_ms
        if timeout_ms is not None:
            due = min(due, p["first"] + timeout_ms)
        p["due"] = due
    fire(math.inf)
    return Expected(runs, outcomes)


def quiet_periods(times: Sequence[int], period_ms: int) -> list[list[int]]:
    """Indexes of ``times`` (sorted) grouped into bursts whose gaps are below ``period``."""
    groups: list[list[int]] = []
    for i, t in enumerate(times):
        if groups and t - times[groups[-1][-1]] < period_ms:
            groups[-1].append(i)
        else:
            groups.append([i])
    return groups


# ------------------------------------------------------------------------------------- batch


def batch_model(stream: Stream, *, max_size: int, timeout_ms: int, key: str | None = None,
                if_field: str | None = None) -> Expected:
    """Per key, a batch opens with its first event; its run starts when it holds
    ``max_size`` events or ``timeout`` after its first event, with the events in arrival
    order. An event whose ``if_exp`` (here: ``event.data.<if_field> == true``) is false runs
    alone at once."""
    open_: dict[typing.Any, dict[str, typing.Any]] = {}
    runs: list[ExpectedRun] = []
    outcomes: dict[int, Outcome] = {}

    def close(k: typing.Any, at: int) -> None:
        batch = open_.pop(k)
        run = tuple(batch["seqs"])
        runs.append(ExpectedRun(run, started_ms=at))
        for s in run:
            outcomes[s] = Outcome("batched", run)

    def fire(until: float) -> None:
        for k in [k for k, b in open_.items() if b["first"] + timeout_ms <= until]:
            close(k, open_[k]["first"] + timeout_ms)

    for t, ev in stream:
        fire(t)
        if if_field is not None and ev["data"][if_field] is not True:
            runs.append(ExpectedRun((seq(ev),), started_ms=t))
            outcomes[seq(ev)] = Outcome("started", (seq(ev),))
            continue
        k = key_of(ev, key)
        batch = open_.setdefault(k, {"first": t, "seqs": []})
        batch["seqs"].append(seq(ev))
        if len(batch["seqs"]) == max_size:
            close(k, t)
    fire(math.inf)
    return Expected(runs, outcomes)


# ------------------------------------------------------------------------------- concurrency


@dataclasses.dataclass
class _Work:
    seq: int
    order: int
    created: int
    score: int
    duration: int
    slots: list[tuple[typing.Any, int]]  # (slot id, limit)
    started: int | None = None


def concurrency_model(
    stream: Stream,
    *,
    slots: Callable[[Event], list[tuple[typing.Any, int]]],
    duration: Callable[[Event], int],
    priority: Callable[[Event], object] | None = None,
    simultaneous: str = "together",
) -> Expected:
    """Runs of one step taking ``duration(event)`` ms, each needing a slot in every
    ``(slot id, limit)`` of ``slots(event)`` for that time.

    Waiting work starts when every slot it needs is free, smallest ``created_ms -
    priority*1000`` first, FIFO among equals (priority clamped to +-600 s). The code after
    the step takes no virtual time, so whether the run re-queues for it changes no start
    time. ``simultaneous`` says how steps ending at the same instant free their slots:
    ``"together"`` (all, then schedule) or ``"one_by_one"`` (schedule after each, in start
    order); the spec does not say, and the tests accept either.
    """
    used: collections.Counter[typing.Any] = collections.Counter()
    waiting: list[_Work] = []
    running: list[tuple[int, int, _Work]] = []  # (end, start order, work)
    runs: list[ExpectedRun] = []
    outcomes: dict[int, Outcome] = {}
    started = 0

    def fits(w: _Work) -> bool:
        return all(used[slot] < limit for slot, limit in w.slots)

    def schedule(now: int) -> None:
        nonlocal started
        while True:
            candidates = [w for w in waiting if fits(w)]
            if not candidates:
                return
            w = min(candidates, key=lambda w: (w.score, w.order))
            waiting.remove(w)
            w.started = now
            for slot, _ in w.slots:
                used[slot] += 1
            started += 1
            running.append((now + w.duration, started, w))
            running.sort(key=lambda item: (item[0], item[1]))

    def finish(until: float) -> None:
        while running and running[0][0] <= until:
            end = running[0][0]
            while running and running[0][0] == end:
                _, _, w = running.pop(0)
                for slot, _ in w.slots:
                    used[slot] -= 1
                runs.append(ExpectedRun((w.seq,), created_ms=w.created, started_ms=w.started,
                                        ended_ms=end))
                if simultaneous == "one_by_one":
                    schedule(end)
            schedule(end)

    for order, (t, ev) in enumerate(stream):
        finish(t)
        prio = clamp_priority(priority(ev)) if priority is not None else 0
        waiting.append(_Work(seq(ev), order, t, t - prio * SECOND_MS, duration(ev), slots(ev)))
        outcomes[seq(ev)] = Outcome("started", (seq(ev),))
        schedule(t)
    finish(math.inf)
    return Expected(runs, outcomes)


# ------------------------------------------------------------------------------------ cancel


def cancel_model(stream: Stream, *, trigger: str, cancel_event: str,
                 timeout_ms: int | None = None, match: str | None = None) -> Expected:
    """Runs (of events named ``trigger``) sleep ``data["ms"]`` and complete. An event named
    ``cancel_event`` cancels, at once, every live run created before it (in send order) and
    at most ``timeout`` (default one year) before it, whose ``data.<match>`` equals the
    cancel event's (``if_exp: event.data.<match> == async.data.<match>``)."""
    timeout = YEAR_MS if timeout_ms is None else timeout_ms
    live: list[dict[str, typing.Any]] = []
    runs: list[ExpectedRun] = []
    outcomes: dict[int, Outcome] = {}
    for t, ev in stream:
        if ev["name"] == trigger:
            live.append({"seq": seq(ev), "created": t, "end": t + ev["data"]["ms"],
                         "data": ev["data"]})
            outcomes[seq(ev)] = Outcome("started", (seq(ev),))
            continue
        if ev["name"] != cancel_event:
            continue
        for run in list(live):
            alive = run["end"] > t  # at the same instant the sleep ends first
            within = t - run["created"] <= timeout
            matches = match is None or run["data"][match] == ev["data"][match]
            if alive and within and matches:
                live.remove(run)
                runs.append(ExpectedRun((run["seq"],), "Cancelled", created_ms=run["created"],
                                        started_ms=run["created"], ended_ms=t))
    for run in live:
        runs.append(ExpectedRun((run["seq"],), created_ms=run["created"],
                                started_ms=run["created"], ended_ms=run["end"]))
    return Expected(runs, outcomes)


# ---------------------------------------------------------------------------------- timeouts


def timeouts_model(stream: Stream, *, start_ms: int | None = None,
                   finish_ms: int | None = None, limit: int | None = None) -> Expected:
    """Runs of ``data["steps"]`` steps of ``data["ms"]`` each, under ``Concurrency(limit)``
    (FIFO; ``None``: no limit).

    ``start``: a run not started within ``start`` of its creation is cancelled then, and
    never starts. ``finish``: checked between steps; the step in flight when the deadline
    passes finishes (holding its slot) and the run is cancelled at its end, running no
    further step. A run whose last step ends after the deadline is cancelled too. Times are
    chosen by the tests so that no deadline coincides with a step's end.
    """
    waiting: collections.deque[dict[str, typing.Any]] = collections.deque()
    running: list[dict[str, typing.Any]] = []
    runs: list[ExpectedRun] = []
    outcomes: dict[int, Outcome] = {}

    def plan(run: dict[str, typing.Any], now: int) -> None:
        n, d = run["steps"], run["ms"]
        k = n
        if finish_ms is not None and n * d > finish_ms:
            k = finish_ms // d + 1  # the first step that ends past the deadline
        cancelled = finish_ms is not None and k * d > finish_ms
        run.update(started=now, end=now + k * d, done=k,
                   status="Cancelled" if cancelled else "Completed")
        running.append(run)

    def schedule(now: int) -> None:
        while waiting and (limit is None or len(running) < limit):
            plan(waiting.popleft(), now)

    def advance(until: float) -> None:
        while True:
            ends = [r["end"] for r in running]
            expiries = ([r["created"] + start_ms for r in waiting]
                        if start_ms is not None else [])
            nxt = min(ends + expiries, default=math.inf)
            if nxt == math.inf or nxt > until:
                return
            for r in [r for r in running if r["end"] == nxt]:
                running.remove(r)
                runs.append(ExpectedRun((r["seq"],), r["status"], created_ms=r["created"],
                                        started_ms=r["started"], ended_ms=r["end"],
                                        steps=r["done"]))
            if start_ms is not None:
                for r in [r for r in waiting if r["created"] + start_ms == nxt]:
                    waiting.remove(r)
                    runs.append(ExpectedRun((r["seq"],), "Cancelled", created_ms=r["created"],
                                            ended_ms=nxt, steps=0))
            schedule(nxt)

    for t, ev in stream:
        advance(t)
        waiting.append({"seq": seq(ev), "created": t, "steps": ev["data"]["steps"],
                        "ms": ev["data"]["ms"]})
        outcomes[seq(ev)] = Outcome("started", (seq(ev),))
        schedule(t)
    advance(math.inf)
    return Expected(runs, outcomes)


# --------------------------------------------------------------------------------- singleton


def singleton_model(stream: Stream, *, mode: str, key: str | None = None) -> Expected:
    """Runs sleep ``data["ms"]``. Per key, a run holds the lock from being queued until it
    ends. ``skip``: an event while the lock is held gives a Skipped run; ``cancel``: the live
    run is cancelled at that instant and the new one starts."""
    live: dict[typing.Any, dict[str, typing.Any]] = {}
    runs: list[ExpectedRun] = []
    outcomes: dict[int, Outcome] = {}

    def new_run(k: typing.Any, s: int, t: int, ms: int) -> None:
        live[k] = {"seq": s, "created": t, "end": t + ms}
        outcomes[s] = Outcome("started", (s,))

    for t, ev in stream:
        k = key_of(ev, key)
        holder = live.get(k)
        if holder is not None and holder["end"] <= t:  # ended first (same instant too)
            runs.append(ExpectedRun((holder["seq"],), created_ms=holder["created"],
                                    started_ms=holder["created"], ended_ms=holder["end"]))
            del live[k]
            holder = None
        if holder is None:
            new_run(k, seq(ev), t, ev["data"]["ms"])
        elif mode == "skip":
            runs.append(ExpectedRun((seq(ev),), "Skipped", created_ms=t, ended_ms=t))
            outcomes[seq(ev)] = Outcome("skipped", (seq(ev),))
        else:
            runs.append(ExpectedRun((holder["seq"],), "Cancelled",
                                    created_ms=holder["created"],
                                    started_ms=holder["created"], ended_ms=t))
            new_run(k, seq(ev), t, ev["data"]["ms"])
    for holder in live.values():
        runs.append(ExpectedRun((holder["seq"],), created_ms=holder["created"],
                                started_ms=holder["created"], ended_ms=holder["end"]))
    return Expected(runs, outcomes)
