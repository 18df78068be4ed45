"""Flow control: which events start runs, when runs may start, and which runs end early.

The engine asks this module at each decision point:

- :meth:`FlowControl.admit` -- an event matched a function's trigger: deduplicate, batch,
  rate-limit, apply idempotency, debounce or singleton, and maybe create a run;
- :meth:`FlowControl.request_slice` -- a run has work to do: it passes the throttle (first
  start only) and takes its concurrency slots, or waits in a FIFO (priority first) queue;
- :meth:`FlowControl.on_event` -- an event may cancel runs;
- :meth:`FlowControl.on_slice_end` / :meth:`FlowControl.on_run_end` -- slots and locks are
  given back and waiting work moves on;
- :meth:`FlowControl.fire` -- a flow-control timer (debounce, batch, throttle, timeouts) is due.

The limiters, counters and queues are the kernel's (:class:`~inngest_do.kernel.GCRA`,
:class:`~inngest_do.kernel.KeyedCounter`, :class:`~inngest_do.kernel.ReadyQueue`; the
concurrency units and their waiting runs are :class:`~inngest_do.slots.ConcurrencySlots`),
so each decision is O(1) or O(log n) in the number of waiting runs. Every event that matched a
function gets an outcome (started, rate_limited, deduplicated, idempotent, debounced,
batched, skipped, throttled): nothing accepted is dropped silently.

Per-key state lives only while it can still change a decision, so memory follows the active
work, not every key ever seen: counters at zero, empty queues, closed piles and released
locks are deleted when they get there; a limiter key (rate limit, throttle, idempotency) and
a remembered event id are dropped, with their stored copy, once they are equivalent to
none (a few on each decision that touches their limiter, and all of them in
:meth:`FlowControl.sweep`, which runs with every commit and every advance of a Simulation's
clock). Dropping such a key
changes no answer, so traces are the same whether or when it happens.
"""

from __future__ import annotations

import collections
import dataclasses
import typing

from .expressions import Expression, ExpressionError
from .kernel import GCRA
from .runs import RunStatus
from .slots import ConcurrencySlots

if typing.TYPE_CHECKING:
    from .function import Function
    from .runs import RunState
    from .storage import Store

DAY_MS = 86_400_000
YEAR_MS = 366 * DAY_MS
PRIORITY_LIMIT_S = 600
#: keys a decision forgets, at most, from the limiter it touched: more than the one it may
#: add, so expired keys cannot pile up between sweeps (amortised O(1) per decision)
PRUNE_PER_TOUCH = 2


class Timers(typing.Protocol):
    """The engine's timer heap, as flow control uses it."""

    def schedule(self, due_ms: int, payload: tuple) -> int: ...

    def cancel(self, handle: int) -> None: ...

    def __contains__(self, handle: object) -> bool: ...


class CreateRun(typing.Protocol):
    def __call__(self, fn: Function[typing.Any], events: list[dict], *,
                 status: RunStatus = ..., reason: str | None = None,
                 lock: str | None = None) -> RunState: ...


class Outcomes(typing.Protocol):
    """The engine's event table, as flow control uses it: what each event did for each
    function (see event_table.py)."""

    #: event id -> {"payload", "received_ms", "outcomes", "user_id"}
    records: dict[str, dict]

    def record_outcome(self, event_id: str, fn_id: str, outcome: str,
                       run_id: str | None = None, error: str | None = None) -> None: ...

    def set_outcome(self, event_id: str, fn_id: str, outcome: str, run_id: str) -> None: ...

    def set_outcome_run(self, event_id: str, fn_id: str, run_id: str) -> None: ...


def _compile(source: str | None, what: str) -> Expression | None:
    return None if source is None else Expression.compile(source, what=what)


@dataclasses.dataclass
class _Pile:
    """An open debounce or batch: events waiting for their run."""

    key: str
    events: list[dict]
    event_ids: list[str]
    first_ms: int
    timer: int | None = None


class _FnFlow:
    """One function's compiled flow-control configuration and state."""

    def __init__(self, fn: Function[typing.Any]) -> None:
        opts = fn.options
        self.fn = fn
        self.concurrency = [
            (spec, _compile(spec.key, f"concurrency[{i}].key"))
            for i, spec in enumerate(opts.concurrency)
        ]
        self.rate = opts.rate_limit
        self.rate_key = _compile(self.rate.key if self.rate else None, "rate_limit.key")
        self.rate_gcra = (GCRA(self.rate.limit, self.rate.period_ms, self.rate.limit // 10)
                          if self.rate else None)
        self.throttle = opts.throttle
        self.throttle_key = _compile(self.throttle.key if self.throttle else None,
                                     "throttle.key")
        self.throttle_gcra = (GCRA(self.throttle.limit, self.throttle.period_ms,
                                   self.throttle.limit + self.throttle.burst - 1)
                              if self.throttle else None)
        self.throttle_queues: dict[str, collections.deque[str]] = {}
        self.throttle_timers: dict[str, int] = {}
        self.debounce = opts.debounce
        self.debounce_key = _compile(self.debounce.key if self.debounce else None,
                                     "debounce.key")
        self.debounces: dict[str, _Pile] = {}
        self.batch = opts.batch
        self.batch_key = _compile(self.batch.key if self.batch else None, "batch_events.key")
        self.batch_if = _compile(self.batch.if_exp if self.batch else None,
                                 "batch_events.if_exp")
        self.batches: dict[str, _Pile] = {}
        self.idempotency = _compile(opts.idempotency, "idempotency")
        self.idem_gcra = GCRA(1, DAY_MS, 0) if opts.idempotency else None
        self.priority = _compile(opts.priority.run if opts.priority else None, "priority.run")
        self.cancel = [(spec, _compile(spec.if_exp, f"cancel[{i}].if_exp"))
                       for i, spec in enumerate(opts.cancel)]
        self.timeouts = opts.timeouts
        self.singleton = opts.singleton
        self.singleton_key = _compile(self.singleton.key if self.singleton else None,
                                      "singleton.key")
        self.locks: dict[str, str] = {}  # singleton key -> run id
        # event id -> first seen (ms), in first-seen order: expired ids leave from the front
        # (an OrderedDict reaches its front in O(1) after any number of deletions)
        self.seen_ids: collections.OrderedDict[str, int] = collections.OrderedDict()
        self.live: dict[str, RunState] = {}  # non-final runs (for cancel and singleton)
        self.tracks_live = bool(self.cancel or self.singleton)
        #: (store namespace prefix, limiter) for each per-key limiter of this function
        self.gcras: list[tuple[str, typing.Any]] = [
            (name, gcra) for name, gcra in (("rate", self.rate_gcra),
                                            ("throttle", self.throttle_gcra),
                                            ("idem", self.idem_gcra)) if gcra is not None]
        #: no flow control at all: an event's run is created and queued at once, and the
        #: steps admission would take to decide that are skipped (see admit)
        # (is not None: a limiter or an expression may be falsy, e.g. a GCRA holding no keys)
        self.plain = not self.concurrency and not self.cancel and all(
            option is None for option in (
                self.rate, self.throttle, self.debounce, self.batch, opts.idempotency,
                self.idem_gcra, self.priority, opts.priority, self.timeouts, self.singleton))


def _key(expr: Expression | None, payload: dict) -> str | None:
    """A key's value for an event; None when there is no key expression."""
    if expr is None:
        return ""
    return expr.evaluate_key({"event": payload})


class FlowControl:
    """Per-engine flow-control state for every function. See the module docstring."""

    def __init__(self, *, now_ms: typing.Callable[[], int], timers: Timers, store: Store,
                 runs: typing.Mapping[str, RunState], outcomes: Outcomes,
                 executing: typing.Container[str], enqueue: typing.Callable[[RunState], None],
                 create_run: CreateRun, cancel_run: typing.Callable[[RunState, str], None],
                 note: typing.Callable[[RunState, str, typing.Any], None]) -> None:
        """Flow control over the engine's state, handed in piece by piece (it reads the
        run table, the events' ids and which runs are executing; it owns nothing else):

        - ``now_ms``: the engine's clock; ``timers``: its timer heap (flow-control timers
          come back through :meth:`fire`); ``store``: where limiter keys, seen event ids
          and debounce/batch piles are kept (``save_flow``);
        - ``runs``: run id -> run (the run table); ``outcomes``: the event table (what
          each event did for each function, and the id its sender gave it);
          ``executing``: ids of runs with a slice running;
        - what flow control decides, done by the engine: ``enqueue`` a run for a slice,
          ``create_run``, ``cancel_run``, ``note`` (a line in a run's history).
        """
        self._now_ms = now_ms
        self._timers = timers
        self._store = store
        self._runs = runs
        self._event_records = outcomes.records  # read directly: once per admitted event
        self._executing = executing
        self._enqueue = enqueue
        self._create_run = create_run
        self._cancel_run = cancel_run
        self._record_outcome = outcomes.record_outcome
        self._set_outcome = outcomes.set_outcome
        self._set_outcome_run = outcomes.set_outcome_run
        self._note = note
        self.fns: dict[str, _FnFlow] = {}
        self.cancel_index: dict[str, list[_FnFlow]] = {}
        self.slots = ConcurrencySlots(runs=runs, enqueue=enqueue)
        self._units = self.slots.units  # run id -> units held: most runs hold none
        self.throttled_events: dict[str, list[str]] = {}  # run id -> events it waits as
        self._restored: dict[str, dict[str, typing.Any]] = {}
        #: False while no function has a per-key limiter and no event id was ever seen:
        #: :meth:`sweep` has nothing to forget, and the engine skips calling it per commit
        self.keyed = False

    # set-up ---------------------------------------------------------------------------------
    def register(self, fn: Function[typing.Any]) -> None:
        flow = _FnFlow(fn)
        self.fns[fn.id] = flow
        for spec, _ in flow.cancel:
            self.cancel_index.setdefault(spec.event, []).append(flow)
        self._restore_fn(flow)
        if flow.gcras or flow.seen_ids:
            self.keyed = True

    def restore(self, state: dict[str, dict[str, typing.Any]]) -> None:
        """Take back flow-control state a store kept (applied as functions register)."""
        self._restored = state

    def _restore_fn(self, flow: _FnFlow) -> None:
        fn_id = flow.fn.id
        for name, gcra in flow.gcras:
            # in tat order: the limiter's front then holds the first to expire (see sweep)
            restored = self._restored.get(f"{name}:{fn_id}", {})
            for key, tat in sorted(restored.items(), key=lambda item: item[1]):
                gcra.set_state(key, tat)
        restored_ids = self._restored.get(f"ids:{fn_id}", {})
        flow.seen_ids.update(sorted(restored_ids.items(), key=lambda item: item[1]))
        for name, piles in (("debounce", flow.debounces), ("batch", flow.batches)):
            for key, rec in self._restored.get(f"{name}:{fn_id}", {}).items():
                pile = _Pile(key, rec["events"], rec["event_ids"], rec["first_ms"])
                piles[key] = pile
                pile.timer = self._timers.schedule(rec["due_ms"], (name, fn_id, key))
        for run in self._runs.values():
            if run.fn_id == fn_id and not run.status.is_final:
                self._track(flow, run)

    def _track(self, flow: _FnFlow, run: RunState) -> None:
        if flow.tracks_live:
            flow.live[run.id] = run
        lock = run.keys.get("singleton")
        if lock is not None:
            flow.locks[lock] = run.id

    # admission ------------------------------------------------------------------------------
    def admit(self, fn: Function[typing.Any], event_id: str, payload: dict) -> None:
        """An event matched ``fn``'s trigger: start a run, or say why not."""
        flow = self.fns[fn.id]
        now = self._now_ms()
        user_id = self._event_records[event_id].get("user_id")
        if user_id:
            seen = flow.seen_ids
            first = seen.get(user_id)
            if first is not None and now - first < DAY_MS:
                self._record_outcome(event_id, fn.id, "deduplicated")
                return
            # Kept in first-seen order, so ids older than a day are dropped from the front:
            # a long-running engine does not remember every id it ever saw. O(1) amortised.
            seen.pop(user_id, None)
            seen[user_id] = now
            self.keyed = True
            self._store.save_flow(f"ids:{fn.id}", user_id, now)
            self._forget_ids(flow, now, PRUNE_PER_TOUCH)
        if flow.plain:
            # what _start comes to for such a function (no lock, nothing held back)
            run = self._create_run(fn, [payload])
            self._record_outcome(event_id, fn.id, "started", run.id)
            return
        if flow.batch is not None:
            self._batch(flow, event_id, payload, now)
            return
        if flow.rate_gcra is not None:
            key = _key(flow.rate_key, payload)
            if key is not None and key != "false":
                if flow.rate_gcra.acquire(key, now) != -1:
                    self._record_outcome(event_id, fn.id, "rate_limited")
                    return
                self._save_gcra("rate", flow, flow.rate_gcra, key)
                self._forget_keys("rate", flow, flow.rate_gcra, now, PRUNE_PER_TOUCH)
        if flow.idem_gcra is not None:
            key = _key(flow.idempotency, payload)
            if key is not None:
                if flow.idem_gcra.acquire(key, now) != -1:
                    # SPEC: idempotency is a rate limit of 1 per 24 h; duplicates show as such
                    self._record_outcome(event_id, fn.id, "rate_limited")
                    return
                self._save_gcra("idem", flow, flow.idem_gcra, key)
                self._forget_keys("idem", flow, flow.idem_gcra, now, PRUNE_PER_TOUCH)
        if flow.debounce is not None:
            self._debounce(flow, event_id, payload, now)
            return
        self._start(flow, [event_id], [payload])

    def _save_gcra(self, name: str, flow: _FnFlow, gcra: typing.Any, key: str) -> None:
        self._store.save_flow(f"{name}:{flow.fn.id}", key, gcra.get_state(key))

    # forgetting keys ------------------------------------------------------------------------
    def _forget_keys(self, name: str, flow: _FnFlow, gcra: typing.Any, now: int,
                     budget: int) -> None:
        """Drop up to ``budget`` (-1: all) limiter keys that admit like fresh ones, in memory
        and in the store."""
        dropped = gcra.prune(now, budget)
        if dropped:
            save = self._store.save_flow
            namespace = f"{name}:{flow.fn.id}"
            for key in dropped:
                save(namespace, key, None)

    def _forget_ids(self, flow: _FnFlow, now: int, budget: int) -> None:
        """Drop up to ``budget`` (-1: all) event ids seen a day or more ago."""
        seen = flow.seen_ids
        namespace = f"ids:{flow.fn.id}"
        while seen and budget:
            old_id = next(iter(seen))
            if now - seen[old_id] < DAY_MS:
                break
            del seen[old_id]
            self._store.save_flow(namespace, old_id, None)
            budget -= 1

    def sweep(self, now_ms: int | None = None) -> None:
        """Forget every limiter key and event id that can no longer change a decision. The
        engine calls it before each commit (so the store forgets them in the same
        transaction) and when a Simulation's clock moves: O(number of functions) plus O(1)
        per key forgotten, each key being forgotten once."""
        now = self._now_ms() if now_ms is None else now_ms
        for flow in self.fns.values():
            for name, gcra in flow.gcras:
                self._forget_keys(name, flow, gcra, now, -1)
            if flow.seen_ids:
                self._forget_ids(flow, now, -1)

    def key_counts(self) -> dict[str, int]:
        """How many keys each per-key table holds, summed over functions (for tests and
        diagnostics: with no work in flight and every period past, all are zero)."""
        fns = self.fns.values()
        return {
            "rate": sum(len(f.rate_gcra) for f in fns if f.rate_gcra is not None),
            "throttle": sum(len(f.throttle_gcra) for f in fns if f.throttle_gcra is not None),
            "idempotency": sum(len(f.idem_gcra) for f in fns if f.idem_gcra is not None),
            "event_ids": sum(len(f.seen_ids) for f in fns),
            "throttle_queues": sum(len(f.throttle_queues) for f in fns),
            "throttle_timers": sum(len(f.throttle_timers) for f in fns),
            "debounces": sum(len(f.debounces) for f in fns),
            "batches": sum(len(f.batches) for f in fns),
            "singleton_locks": sum(len(f.locks) for f in fns),
            "live_runs": sum(len(f.live) for f in fns),
            "concurrency_slots": len(self.slots.counts),
            "concurrency_units": len(self.slots.units),
            "concurrency_waiters": len(self.slots.waiters),
            "concurrency_waiting": len(self.slots.waiting),
            "throttled_events": len(self.throttled_events),
        }

    def key_count(self) -> int:
        """The total of :meth:`key_counts`."""
        return sum(self.key_counts().values())

    def _start(self, flow: _FnFlow, event_ids: list[str], events: list[dict]) -> None:
        """Create a run for ``events`` (singleton permitting)."""
        fn = flow.fn
        lock = None
        if flow.singleton is not None:
            lock = _key(flow.singleton_key, events[0])
            holder_id = flow.locks.get(lock) if lock is not None else None
            holder = self._runs.get(holder_id) if holder_id else None
            if holder is not None and not holder.status.is_final:
                if flow.singleton.mode == "skip":
                    run = self._create_run(fn, events, status=RunStatus.SKIPPED,
                                            reason=f"singleton: run {holder.id} holds the lock")
                    for eid in event_ids:
                        self._record_outcome(eid, fn.id, "skipped", run.id)
                    return
                self._cancel_run(holder, "singleton: replaced by a newer run")
        run = self._create_run(fn, events, lock=lock)
        # A run held back by the throttle says so until it starts (see _pass_throttle).
        held = flow.throttle_gcra is not None and not run.keys.get("throttled")
        for eid in event_ids:
            self._record_outcome(eid, fn.id, "throttled" if held else "started", run.id)
        if held:
            self.throttled_events[run.id] = event_ids

    def on_run_created(self, run: RunState, fn: Function[typing.Any],
                       lock: str | None = None) -> None:
        flow = self.fns[fn.id]
        if flow.plain and lock is None:
            # nothing to note, track or hold back: what request_slice comes to for such a
            # function (a new run holds no concurrency keys)
            self._enqueue(run)
            return
        if lock is not None:
            run.keys["singleton"] = lock
        if flow.priority is not None:
            run.priority = _priority(flow.priority, run.events[0])
        if flow.concurrency:
            run.keys["concurrency"] = [
                _slot(flow, spec, _key(expr, run.events[0])) for spec, expr in flow.concurrency
            ]
        self._track(flow, run)
        if flow.timeouts is not None and flow.timeouts.start_ms is not None:
            self._timers.schedule(run.created_ms + flow.timeouts.start_ms,
                                 ("timeout.start", run.id))
        self.request_slice(run)

    # debounce and batch ---------------------------------------------------------------------
    def _debounce(self, flow: _FnFlow, event_id: str, payload: dict, now: int) -> None:
        spec = flow.debounce
        assert spec is not None
        key = _key(flow.debounce_key, payload)
        if key is None:
            key = ""
        pile = flow.debounces.get(key)
        if pile is None:
            pile = _Pile(key, [], [], now)
            flow.debounces[key] = pile
        pile.events = [payload]
        pile.event_ids.append(event_id)
        due = now + spec.period_ms
        if spec.timeout_ms is not None:
            due = min(due, pile.first_ms + spec.timeout_ms)
        if pile.timer is not None:
            self._timers.cancel(pile.timer)
        pile.timer = self._timers.schedule(due, ("debounce", flow.fn.id, key))
        self._record_outcome(event_id, flow.fn.id, "debounced")
        self._save_pile("debounce", flow, pile, due)

    def _batch(self, flow: _FnFlow, event_id: str, payload: dict, now: int) -> None:
        spec = flow.batch
        assert spec is not None
        if flow.batch_if is not None and not flow.batch_if.evaluate_bool({"event": payload}):
            self._start(flow, [event_id], [payload])
            return
        key = _key(flow.batch_key, payload)
        if key is None:
            key = ""
        pile = flow.batches.get(key)
        if pile is None:
            pile = _Pile(key, [], [], now)
            flow.batches[key] = pile
            pile.timer = self._timers.schedule(now + spec.timeout_ms, ("batch", flow.fn.id, key))
        pile.events.append(payload)
        pile.event_ids.append(event_id)
        self._record_outcome(event_id, flow.fn.id, "batched")
        if len(pile.events) >= spec.max_size:
            self._close_pile("batch", flow, flow.batches, key)
        else:
            self._save_pile("batch", flow, pile, pile.first_ms + spec.timeout_ms)

    def _save_pile(self, name: str, flow: _FnFlow, pile: _Pile, due_ms: int) -> None:
        self._store.save_flow(f"{name}:{flow.fn.id}", pile.key, {
            "events": pile.events, "event_ids": pile.event_ids, "first_ms": pile.first_ms,
            "due_ms": due_ms})

    def _close_pile(self, name: str, flow: _FnFlow, piles: dict[str, _Pile], key: str) -> None:
        pile = piles.pop(key)
        if pile.timer is not None and pile.timer in self._timers:
            self._timers.cancel(pile.timer)
        self._store.save_flow(f"{name}:{flow.fn.id}", key, None)
        run = self._create_run(flow.fn, pile.events)
        for eid in pile.event_ids:
            self._set_outcome_run(eid, flow.fn.id, run.id)

    # starting and slots ---------------------------------------------------------------------
    def request_slice(self, run: RunState, *, after_slice: bool = False) -> None:
        """``run`` has work: enqueue it once the throttle and its concurrency slots allow."""
        if run.status.is_final:
            return
        flow = self.fns.get(run.fn_id)
        if flow is None:
            self._enqueue(run)
            return
        if flow.throttle_gcra is not None and not run.keys.get("throttled"):
            self._throttle(flow, run)
            return
        self._take_slots(flow, run)

    def _throttle(self, flow: _FnFlow, run: RunState) -> None:
        key = _key(flow.throttle_key, run.events[0])
        if key is None:
            key = ""
        queue = flow.throttle_queues.get(key)
        if queue:
            queue.append(run.id)
            return
        now = self._now_ms()
        gcra = flow.throttle_gcra
        assert gcra is not None
        at = gcra.acquire(key, now)
        if at == -1:
            self._pass_throttle(flow, run, gcra, key)
            self._forget_keys("throttle", flow, gcra, now, PRUNE_PER_TOUCH)
            return
        flow.throttle_queues.setdefault(key, collections.deque()).append(run.id)
        flow.throttle_timers[key] = self._timers.schedule(at, ("throttle", flow.fn.id, key))
        self._note(run, "throttled", {"until_ms": at})

    def _pass_throttle(self, flow: _FnFlow, run: RunState, gcra: typing.Any, key: str) -> None:
        self._save_gcra("throttle", flow, gcra, key)
        run.keys["throttled"] = True
        for eid in self.throttled_events.pop(run.id, ()):
            self._set_outcome(eid, flow.fn.id, "started", run.id)
        self._take_slots(flow, run)

    def _throttle_fire(self, flow: _FnFlow, key: str) -> None:
        queue = flow.throttle_queues.get(key)
        flow.throttle_timers.pop(key, None)
        gcra = flow.throttle_gcra
        assert gcra is not None
        now = self._now_ms()
        while queue:
            run = self._runs.get(queue[0])
            if run is None or run.status.is_final:
                queue.popleft()
                continue
            at = gcra.acquire(key, now)
            if at != -1:
                flow.throttle_timers[key] = self._timers.schedule(at, ("throttle", flow.fn.id,
                                                                      key))
                return
            queue.popleft()
            self._pass_throttle(flow, run, gcra, key)
        flow.throttle_queues.pop(key, None)
        self._forget_keys("throttle", flow, gcra, now, PRUNE_PER_TOUCH)

    # Concurrency (see slots.py): the cheap checks stay here, so a run with no concurrency
    # limit costs no call into the slots.

    def _take_slots(self, flow: _FnFlow, run: RunState) -> None:
        """Enqueue ``run`` for a slice once it holds a unit for it (or queue it)."""
        if not run.keys.get("concurrency") or self.slots.take(run):
            self._enqueue(run)

    def before_body(self, run: RunState) -> bool:
        """May a step body of ``run`` start now? Each step in flight holds a unit of its
        own; a further body needs another unit, or waits (the engine parks the step)."""
        if not run.keys.get("concurrency"):
            return True
        return self.slots.take(run)

    def step_landed(self, run: RunState) -> None:
        """A step that was in flight ended: its unit goes back, and the run competes for its
        next step with the waiting runs, in queue order."""
        slots = run.keys.get("concurrency")
        if slots:
            self.slots.step_landed(run, slots)

    def on_slice_start(self, run: RunState) -> None:
        """A slice of ``run`` begins executing."""
        flow = self.fns.get(run.fn_id)
        if (flow is not None and flow.timeouts is not None
                and flow.timeouts.finish_ms is not None and "finish_timer" not in run.keys
                and run.started_ms is not None):
            run.keys["finish_timer"] = True
            self._timers.schedule(run.started_ms + flow.timeouts.finish_ms,
                                 ("timeout.finish", run.id))

    def on_slice_end(self, run: RunState) -> None:
        """A slice ended: keep a unit per step still in flight, give back the rest."""
        if run.id in self._units:
            self.slots.slice_ended(run)

    def on_run_end(self, run: RunState) -> None:
        """``run`` reached a final status: locks and slots go back."""
        flow = self.fns.get(run.fn_id)
        if flow is not None:
            flow.live.pop(run.id, None)
            lock = run.keys.get("singleton")
            if lock is not None and flow.locks.get(lock) == run.id:
                del flow.locks[lock]
        if self.slots.waiting:  # (most runs never wait for a slot: no call)
            self.slots.unwait(run.id)
        # a run that ends while the throttle holds it back (cancelled, timed out) is no
        # longer waited for: the list of its events goes too
        self.throttled_events.pop(run.id, None)
        if run.id not in self._executing and run.id in self._units:
            self.slots.release_all(run)

    # re-syncs ------------------------------------------------------------------------------
    def replace(self, fn: Function[typing.Any]) -> None:
        """Follow ``fn``'s config from now on in place of the function with its id (the dev
        server's re-sync): state that outlives one config (seen event ids, singleton locks,
        live runs, piles and throttle queues while the new config still has them) carries
        over; piles and throttled runs the new config no longer holds go on at once."""
        old = self.fns.get(fn.id)
        new = _FnFlow(fn)
        self.fns[fn.id] = new
        if new.gcras:  # (ids carried over from the old config made it keyed already)
            self.keyed = True
        for spec, _ in new.cancel:
            self.cancel_index.setdefault(spec.event, []).append(new)
        if old is None:
            return
        for event, flows in list(self.cancel_index.items()):
            if old in flows:
                flows.remove(old)
                if not flows:
                    del self.cancel_index[event]
        new.seen_ids = old.seen_ids
        new.locks = old.locks
        live = (old.live.values() if old.tracks_live else
                [r for r in self._runs.values() if r.fn_id == fn.id and not r.status.is_final])
        for run in list(live):
            self._track(new, run)
        # Piles keep collecting under the new config if it still debounces/batches, else
        # they start their runs now (their events were accepted; none is dropped).
        for name, has in (("debounce", new.debounce is not None),
                          ("batch", new.batch is not None)):
            old_piles = old.debounces if name == "debounce" else old.batches
            new_piles = new.debounces if name == "debounce" else new.batches
            if has:
                new_piles.update(old_piles)
            else:
                for key in list(old_piles):
                    self._close_pile(name, new, old_piles, key)
        # Runs held by the throttle: still queued under a new throttle, else released.
        if new.throttle_gcra is not None:
            new.throttle_queues = old.throttle_queues
            new.throttle_timers = old.throttle_timers
        else:
            for key, handle in old.throttle_timers.items():
                if handle in self._timers:
                    self._timers.cancel(handle)
            for queue in old.throttle_queues.values():
                for run_id in queue:
                    run = self._runs.get(run_id)
                    if run is not None and not run.status.is_final:
                        run.keys["throttled"] = True
                        self._take_slots(new, run)

    # cancellation ---------------------------------------------------------------------------
    def on_event(self, payload: dict, event_id: str | None = None) -> None:
        """Cancel the live runs whose ``cancel`` options match ``payload`` (``event_id``:
        where a cancel expression that fails to evaluate records its outcome)."""
        flows = self.cancel_index.get(payload["name"])
        if not flows:
            return
        now = self._now_ms()
        for flow in flows:
            for spec, expr in flow.cancel:
                if spec.event != payload["name"]:
                    continue
                timeout = spec.timeout_ms if spec.timeout_ms is not None else YEAR_MS
                for run in list(flow.live.values()):
                    if run.status.is_final or now - run.created_ms > timeout:
                        continue
                    if expr is not None:
                        try:
                            hit = expr.matches({"event": run.events[0], "async": payload})
                        except ExpressionError as err:
                            if event_id is not None:
                                self._record_outcome(event_id, run.fn_id,
                                                           "expression_error", run.id,
                                                           str(err))
                            continue
                        if not hit:
                            continue
                    self._cancel_run(run, f"cancelled by event {payload['name']}")

    def finish_timed_out(self, run: RunState) -> bool:
        flow = self.fns.get(run.fn_id)
        if flow is None or flow.timeouts is None or flow.timeouts.finish_ms is None:
            return False
        if run.started_ms is None:
            return False
        if self._now_ms() >= run.started_ms + flow.timeouts.finish_ms:
            run.reason = "timeouts.finish"
            return True
        return False

    # timers ---------------------------------------------------------------------------------
    def fire(self, payload: tuple) -> None:
        kind = payload[0]
        if kind in ("debounce", "batch"):
            flow = self.fns.get(payload[1])
            if flow is None:
                return
            piles = flow.debounces if kind == "debounce" else flow.batches
            if payload[2] in piles:
                piles[payload[2]].timer = None
                self._close_pile(kind, flow, piles, payload[2])
        elif kind == "throttle":
            flow = self.fns.get(payload[1])
            if flow is not None:
                self._throttle_fire(flow, payload[2])
        elif kind == "timeout.start":
            run = self._runs.get(payload[1])
            if run is not None and run.started_ms is None and not run.status.is_final:
                self._cancel_run(run, "timeouts.start")
        elif kind == "timeout.finish":
            run = self._runs.get(payload[1])
            if run is not None and not run.status.is_final:
                self._cancel_run(run, "timeouts.finish")


def _slot(flow: _FnFlow, spec: typing.Any, key: str | None) -> tuple[tuple[str, str, str], int]:
    """(slot key, limit): the counter a run takes a count on for one concurrency limit."""
    value = "" if key is None else key
    if spec.scope == "fn":
        return (("fn", flow.fn.id, value), spec.limit)
    # env/account slots are shared by every function whose key gives the same value
    return ((spec.scope, "", value), spec.limit)


def _priority(expr: Expression, payload: dict) -> int:
    try:
        value = expr.evaluate({"event": payload})
    except ValueError:
        return 0
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # JSON numbers may arrive as doubles, as in Inngest
    if isinstance(value, bool) or not isinstance(value, int):
        return 0
    return max(-PRIORITY_LIMIT_S, min(PRIORITY_LIMIT_S, value))
