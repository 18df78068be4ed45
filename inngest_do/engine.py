"""The engine: runs, steps, retries, suspensions and triggers on a clock.

It owns the working state (the kernel's timer heap and ready queue, the wait index, live
coroutines) and writes every change through to a :class:`~inngest_do.storage.Store`. It knows
nothing about how time moves: a :class:`~inngest_do.testing.Simulation` moves a virtual clock
and calls :meth:`Engine.run_until`; a :class:`~inngest_do.worker.Worker` follows the wall.

Work moves through it like this: :meth:`Engine.accept` stores an event, resolves waits and
cancellations it matches, and (after flow control) creates runs; a run ready to execute goes
into the ready queue; :meth:`Engine.drain` executes slices -- a slice drives the handler until
it returns, raises or parks; a parked run waits on a timer, an event or another run, which
puts it back into the ready queue.

The engine coordinates; its collaborators are handed the pieces of state and the operations
they use (none imports this module): :class:`~inngest_do.flow.FlowControl` (admission,
slots, cancellation, flow timers), :class:`~inngest_do.event_table.EventTable` (events in
memory and their outcomes), :class:`~inngest_do.driver.Driver` (draining and moving virtual
time from synchronous code), :mod:`~inngest_do.recovery` (working state back from a store)
and :mod:`~inngest_do.queries` (runs and events read back).

Complexity: a step costs O(1) kernel work plus its store writes; resuming a live coroutine is
O(1); a replay costs O(steps recorded), each an O(1) memo look-up.
"""

from __future__ import annotations

import asyncio
import collections
import functools
import json
import os
import threading
import typing

from . import errors, limits, queries
from .context import Context, ContextSync, LazyContext, LazyContextSync, ReplayQuietLogger
from .cron import CRON_EVENT as _CRON_EVENT
from .cron import CronTicker
from .driver import Driver, resolve
from .event import Event
from .event_table import EventTable
from .execution import (
    DONE,
    MISSING,
    NO_LOCK,
    OP_INVOKE,
    OP_SLEEP,
    OP_WAIT,
    PARK,
    PARKED,
    RAISED,
    CancelRun,
    Execution,
    SkipStep,
    SyncPark,
    encode_output,
    enter_handler,
    exit_handler,
    fresh_copy,
    passes_through,
    step_output,
    step_rules,
)
from .expressions import Expression, ExpressionError
from .flow import FlowControl
from .kernel import Drive, Journal, ReadyQueue, SeededRandom, TimerHeap, TimerLoop
from .middleware import OPCODES, StepMemos, TransformOutputResult, TransformOutputStepInfo
from .recovery import cron_cursors, restore
from .runs import EventRecord, Pending, RunState, RunStatus, TraceEntry
from .runs import Wait as _Wait
from .serializer import serialize
from .step import Group, GroupSync, Step, StepSync
from .storage.base import Store, StoreError
from .triggers import CronSchedule, EventRouter

if typing.TYPE_CHECKING:
    from .client import Inngest
    from .function import Function
    from .storage import RecoveredState


#: delay before retry after failed attempt a (0-based), before jitter
BACKOFF_MS = (15_000, 30_000, 60_000, 120_000, 300_000, 600_000, 1_200_000, 2_400_000,
              3_600_000, 7_200_000)
JITTER_MS = 30_000
FUNCTION_RETRY = ""  # pending key of a retry of code outside any step

FAILED_EVENT = "inngest/function.failed"
CANCELLED_EVENT = "inngest/function.cancelled"
INVOKED_EVENT = "inngest/function.invoked"
CRON_EVENT = _CRON_EVENT  # re-exported: the name of a cron tick's event
#: pruning by age runs at most this often (engine time)
PRUNE_EVERY_MS = 3_600_000
#: the outcome of an event whose trigger, cancel or wait expression failed to evaluate
EXPRESSION_ERROR = "expression_error"
#: a slice's middleware when none applies: shared, not a fresh list kept by every parked run
_NO_MIDDLEWARE: tuple = ()


class Engine:
    """Executes one client's functions on ``clock``, keeping records in ``store``."""

    def __init__(self, client: Inngest, *, clock: typing.Any, store: Store,
                 seed: int | None = None, coroutine_cap: int = 10_000,
                 functions: typing.Iterable[Function[typing.Any]] | None = None) -> None:
        self.client = client
        self.clock = clock
        #: the clock's time in ms (its own method: read several times per step)
        self.now_ms: typing.Callable[[], int] = clock.now_ms
        self.store = store
        # Unseeded engines (the wall-clock ones) draw a seed, so two processes never
        # generate the same id sequence.
        self.limits = bool(getattr(client, "inngest_limits", False))
        self.seed = seed if seed is not None else int.from_bytes(os.urandom(8), "little")
        self.rng = SeededRandom(self.seed)
        # restored from the store: "fn_id:idx" -> the next tick not yet fired
        self.cron_cursors: dict[str, int] = {}
        self.timers = TimerHeap()
        self.ready = ReadyQueue()
        self.runs: dict[str, RunState] = {}
        self._run_seq = 0
        self.event_table = self._event_table()
        self.trace: list[TraceEntry] = []
        # A long-running wall-clock engine keeps no global trace (each run keeps its own
        # history); a Simulation turns it on.
        self.keep_trace = bool(getattr(clock, "is_virtual", False))
        # Where trace entries go (the kernel builds and hands them out): this trace, a
        # listener, each run's history and the store.
        self.journal = Journal(TraceEntry, store.append_history, store.save_memo)
        self.journal.trace = self.trace if self.keep_trace else None
        # A store that keeps active runs' entries in lists lets the journal append to them
        # directly (see MemoryStore.entry_lists).
        entry_lists = getattr(store, "entry_lists", None)
        if entry_lists is not None:
            self.journal.entry_lists = entry_lists()
        self.live: collections.OrderedDict[str, Execution] = collections.OrderedDict()
        self.coroutine_cap = coroutine_cap
        self.waits: dict[str, dict[tuple[str, str], _Wait]] = {}
        self.executing: set[str] = set()
        self.flow = self._flow_control()
        self.lock = threading.RLock()
        self.auto_drain = False  # a Simulation runs what is due after every top-level send
        # The due-timer loop, and what lets a lone sleep end in its own slice during a
        # virtual-time drive (see sleep_fast): what it records is what parking would.
        self.timer_loop = TimerLoop(clock, self.timers, self.ready, self.journal,
                                    "sleep.started", "until_ms", "sleep.completed",
                                    (OP_SLEEP, True, None))
        # Runs what is ready and moves virtual time for synchronous callers (rebuild hands
        # it the new queue and heap). A Simulation bounds its drains (driver.drain_limit,
        # driver.busy_error).
        self.driver = Driver(
            clock=clock, ready=self.ready, timers=self.timers, pop_ready=self._pop_ready,
            run_slice=self.slice, fire_due=self.fire_due, has_work=self.has_work,
            sync_functions=self.sync_functions, clock_moved=lambda: self.flow.sweep(),
            timer_loop=self.timer_loop)
        #: virtual clocks: run everything due up to a time, then move the clock there (the
        #: driver's own method: a Simulation calls it on every send)
        self.run_until: typing.Callable[[int], None] = self.driver.run_until
        self.on_work: typing.Callable[[], None] | None = None  # a Worker's wake-up call
        # How a Worker runs sync handlers off its loop: awaitable runner(fn, *args), e.g.
        # loop.run_in_executor on a bounded pool. None: on the calling thread.
        self.sync_runner: typing.Callable[..., typing.Awaitable[typing.Any]] | None = None
        # (fn id or None, step id) -> [attempts left to fail, error]: Simulation.fail_step
        self.faults: dict[tuple[str | None, str], list] = {}
        self._router = EventRouter()
        self._known_fns: dict[str, Function[typing.Any]] = {}
        # fn id -> the client that serves it (its middleware and logger apply)
        self._fn_clients: dict[str, Inngest] = {}
        # None: serve every function created on the client, also ones created later; a
        # list: exactly those (plus what serve() adds).
        self._serve_all = functions is None
        self._taken = 0  # how many of the client's created functions serve-all has taken
        self._cron_timers: set[int] = set()
        # Cron triggers: handed what they need (looked up anew on each call, since a rebuild
        # replaces the timers, the event table, the function table and the RNG).
        self.crons = CronTicker(
            schedule=lambda due, payload: self.timers.schedule(due, payload),
            save_cursor=self.store.save_meta, draw=lambda: self.rng.next_u64(),
            now_ms=self.now_ms, function=lambda fn_id: self._known_fns.get(fn_id),
            # saved once, with its outcome, by store_event (as an accepted event is)
            record_event=lambda payload: self.event_table.record(payload, save=False),
            store_event=lambda event_id: self.event_table.save(event_id),
            admit=lambda fn, event_id, payload: self.flow.admit(fn, event_id, payload))
        # Bumped when a failed commit makes the engine rebuild itself from the store: work
        # begun before (an Execution, a slice) is then abandoned.
        self.generation = 0
        # Finished runs and settled events leave memory once the store has them committed.
        self._ended: list[str] = []
        self._store_failure: StoreError | None = None  # the last commit that failed
        #: share commits (and their fsyncs) between slices: a Worker on a FULL store
        self.group_commit = False
        self._group: asyncio.Future | None = None
        self.retention_ms: int | None = getattr(client, "retention_ms", None)
        if self.keep_trace and not getattr(client, "retention_given", True):
            self.retention_ms = None  # a Simulation keeps everything unless told otherwise
        self._next_prune_ms: int | None = None
        self._log_store = _store_logger()
        # A store that keeps every write at once (the memory store) needs no commit per step.
        self._commit_needed = type(store).commit is not Store.commit
        if self._commit_needed or self.retention_ms is not None:
            # a commit per park, or pruning as time moves, would show a skipped gap
            self.driver.skip_sleeps = False
        self.store.open()
        self._recover()
        if functions is not None:
            self.serve(functions)

    @property
    def trace_listener(self) -> typing.Callable[[TraceEntry], None] | None:
        """Called with every new trace entry (a Worker's way to report progress)."""
        return self.journal.listener

    @trace_listener.setter
    def trace_listener(self, listener: typing.Callable[[TraceEntry], None] | None) -> None:
        self.journal.listener = listener

    # functions ------------------------------------------------------------------------------
    def sync_functions(self) -> None:
        """Serve every function created on the client since the last call, when serving all
        of them (no list was given). Called on every send; a Worker calls it at start."""
        if not self._serve_all:
            return
        created = self.client._created
        if len(created) == self._taken:
            return
        fresh, self._taken = created[self._taken:], len(created)
        self.serve(fresh)

    def serve(self, functions: typing.Iterable[Function[typing.Any]],
              client: Inngest | None = None) -> None:
        """Make ``functions`` (and their ``on_failure`` handlers) live: their triggers, cron
        schedules and flow control. ``client`` serves them (default: the engine's); a
        function created on another client makes that client send into this engine.

        Raises ``ValueError`` naming the id when two different functions share one id.
        O(functions).
        """
        from .function import Function

        serving = client or self.client
        fns: list[Function[typing.Any]] = []
        for i, fn in enumerate(functions):
            if not isinstance(fn, Function):
                raise TypeError(f"functions[{i}]: expected a Function (from "
                                f"client.create_function), got {type(fn).__name__}")
            fns.append(fn)
            if fn.on_failure_fn is not None:
                fns.append(fn.on_failure_fn)
        seen: dict[str, Function[typing.Any]] = {}
        for fn in fns:
            other = seen.get(fn.id) or self._known_fns.get(fn.id)
            if other is not None and other is not fn:
                raise ValueError(f"functions: two different functions with id '{fn.id}' are "
                                 "served; a function id must be unique within its app")
            seen[fn.id] = fn
        added = False
        for fn in fns:
            if fn.id in self._known_fns:
                continue
            added = True
            self._known_fns[fn.id] = fn
            self._fn_clients[fn.id] = serving
            owner = fn.client
            if owner is not None and owner is not self.client and owner._engine is not self:
                owner._engine = self
            for trig in fn.event_triggers:
                self._router.add(trig.pattern, (fn, trig))
            for idx, cron in enumerate(fn.cron_triggers):
                # A tick recorded before a restart fires late rather than never (the rest
                # follow in order): the cursor moves only when a tick fires.
                cursor = self.cron_cursors.pop(f"{fn.id}:{idx}", None)
                self._arm_cron(fn, idx, cron,
                               cron.next_after(self.now_ms()) if cursor is None else cursor)
            self.flow.register(fn)
        if added:
            # The cron cursors are durable from here, so ticks missed while down fire on
            # restart.
            self.store.commit()

    def served_ids(self) -> list[str]:
        """Ids of the functions this engine runs."""
        return list(self._known_fns)

    def client_of(self, fn: Function[typing.Any]) -> Inngest:
        """The client serving ``fn`` (whose middleware and logger apply to its runs)."""
        return self._fn_clients.get(fn.id, self.client)

    # commits -------------------------------------------------------------------------------
    def commit(self) -> None:
        """Commit the store. If that fails, the store is what its last successful commit
        left: rebuild the working state from it (as a restart would), so that nothing the
        failed commit carried stays applied in memory, and re-raise the StoreError. Then
        let finished runs and settled events go from memory (the store has them)."""
        # Per-key flow state that can no longer matter leaves memory, and the store with
        # this commit (O(functions) + O(1) per key forgotten; no call while nothing is keyed).
        if self.flow.keyed:
            self.flow.sweep()
        try:
            self.store.commit()
        except StoreError as err:
            self.rebuild()
            self._store_failure = err
            raise
        if self._ended:
            runs = self.runs
            for run_id in self._ended:
                run = runs.get(run_id)
                if run is not None and run.status.is_final:
                    del runs[run_id]
            self._ended.clear()
        if self.event_table.settled:  # checked here: a call per commit counts
            self.event_table.forget_settled()
        if self.retention_ms is not None:
            now = self.now_ms()
            if self._next_prune_ms is None or now >= self._next_prune_ms:
                self._next_prune_ms = now + min(PRUNE_EVERY_MS, max(self.retention_ms // 10,
                                                                    1000))
                try:
                    if self.store.prune(now - self.retention_ms) >= 5000:
                        self._next_prune_ms = now  # a backlog: the next batch next commit
                except StoreError as err:  # housekeeping: tried again later
                    self._log_store.warning("inngest_do: %s", err)

    async def commit_async(self) -> None:
        """:meth:`commit` from a slice. With :attr:`group_commit` (a Worker on a store that
        fsyncs every commit), every slice that asks in the same turn of the event loop
        waits for one commit, and so one fsync, made once they all have asked."""
        if not self.group_commit:
            self.commit()
            return
        group = self._group
        if group is None:
            loop = asyncio.get_running_loop()
            group = self._group = loop.create_future()
            loop.call_soon(self._commit_group, group)
        await group

    def _commit_group(self, group: asyncio.Future) -> None:
        self._group = None
        try:
            with self.lock:
                self.commit()
        except StoreError as err:
            group.set_exception(err)
        else:
            group.set_result(None)

    def rebuild(self) -> None:
        """Drop the working state and recover it from the store (what a restart does)."""
        self.generation += 1
        served = [(fn, self._fn_clients.get(fn_id)) for fn_id, fn in self._known_fns.items()]
        for ex in list(self.live.values()):
            self._close(ex)
        self.timers = TimerHeap()
        self.ready = ReadyQueue()
        self.driver.attach(self.ready, self.timers)
        self.runs = {}
        self.event_table = self._event_table()
        self.live = collections.OrderedDict()
        self.waits = {}
        self.executing = set()
        self.cron_cursors = {}
        self.flow = self._flow_control()
        self._router = EventRouter()
        self._known_fns = {}
        self._fn_clients = {}
        self._cron_timers = set()
        self._ended = []
        self.store.open()  # an open store starts over from its last commit
        self._recover()
        try:
            for fn, client in served:  # the same functions, armed afresh
                self.serve([fn], client)
        except StoreError as err:  # the cursors go with a later commit
            self._log_store.warning("inngest_do: %s", err)
        self._work_arrived()

    def _flow_control(self) -> FlowControl:
        """Flow control over this engine's current working state (made anew on rebuild)."""
        return FlowControl(
            now_ms=self.now_ms, timers=self.timers, store=self.store, runs=self.runs,
            outcomes=self.event_table, executing=self.executing, enqueue=self.enqueue,
            create_run=self.create_run, cancel_run=self.cancel_run,
            note=self.record_run_note)

    def _event_table(self) -> EventTable:
        """The events in memory (made anew on rebuild); ids from the seeded source."""
        return EventTable(store=self.store, now_ms=self.now_ms, rng=self.rng)

    @property
    def events(self) -> dict[str, dict]:
        """Event id -> record, for the events still in memory (see event_table.py)."""
        return self.event_table.records

    def function(self, fn_id: str) -> Function[typing.Any]:
        self.sync_functions()
        fn = self._known_fns.get(fn_id)
        if fn is None:
            raise errors.FunctionNotFoundError(f"no function with id '{fn_id}'")
        return fn

    # events ---------------------------------------------------------------------------------
    def accept(self, events: list[Event], *, origin: str | None = None) -> list[str]:
        """Store ``events`` and deliver them; returns their ids. O(matching work)."""
        with self.lock:
            self.sync_functions()
            # loops, not comprehensions (each is a call of its own; usually one event)
            payloads = []
            for ev in events:
                payloads.append(ev.to_payload())
            if self.limits:
                for p in payloads:
                    limits.check_event_size(len(json.dumps(p)), p["name"])
            ids = []
            for p in payloads:
                ids.append(self._accept_one(p, origin))
            self.commit()
        self._work_arrived()
        return ids

    def _accept_one(self, payload: dict, origin: str | None) -> str:
        # saved once, with what it did, at the end (all of it is one commit)
        event_id = self.event_table.record(payload, save=False)
        # _log inlined on the hot path (a call less per entry): an event is in no history
        self.journal.log(None, self.now_ms(), origin or "", "", "event.received", None,
                         payload["name"])
        self._deliver(event_id, payload)
        self.event_table.save(event_id)
        return event_id

    def _deliver(self, event_id: str, payload: dict) -> None:
        name = payload["name"]
        waits = self.waits.get(name)
        if waits:
            for key, wait in list(waits.items()):
                if wait.expr is None:
                    self._resolve_wait(key, wait, payload)
                    continue
                try:
                    hit = wait.expr.matches({"event": wait.run.events[0], "async": payload})
                except ExpressionError as err:  # no match, but the event says why
                    self.event_table.record_outcome(event_id, wait.run.fn_id,
                                                    EXPRESSION_ERROR, wait.run.id, str(err))
                    continue
                if hit:
                    self._resolve_wait(key, wait, payload)
        if self.flow.cancel_index:  # cancellations (no call when no function has any)
            self.flow.on_event(payload, event_id)
        started: set[str] = set()
        failed: dict[str, str] = {}  # fn id -> why its trigger expression could not decide
        for fn, trig in self._router.match(name):
            # several triggers of one function may match one event: it starts one run
            if fn.id in started:
                continue
            if trig.expression is not None:
                try:
                    hit = trig.expression.matches({"event": payload})
                except ExpressionError as err:
                    failed.setdefault(fn.id, str(err))
                    continue
                if not hit:
                    continue
            started.add(fn.id)
            self.flow.admit(fn, event_id, payload)
        for fn_id, why in failed.items():
            if fn_id not in started:  # an event that matches a trigger never vanishes
                self.event_table.record_outcome(event_id, fn_id, EXPRESSION_ERROR, None, why)

    def record_run_note(self, run: RunState, kind: str, detail: typing.Any = None) -> None:
        """Flow control notes something about ``run`` in its history."""
        self._log(self.now_ms(), run.id, run.fn_id, kind, None, detail)

    # runs -----------------------------------------------------------------------------------
    def create_run(self, fn: Function[typing.Any], events: list[dict], *,
                   invoker: tuple[str, str] | None = None, status: RunStatus = RunStatus.QUEUED,
                   reason: str | None = None, lock: str | None = None) -> RunState:
        now = self.now_ms()
        self._run_seq += 1
        # positional, the rest set only when not the default: a call by keywords to the
        # dataclass's 23-field __init__ costs twice as much (once for every run)
        run = RunState(self.rng.ulid(now), fn.id, events, now)
        run.seq = self._run_seq
        if status is not RunStatus.QUEUED:
            run.status = status
        if invoker is not None:
            run.invoker = invoker
        if reason is not None:
            run.reason = reason
        self.runs[run.id] = run
        self.journal.log(run.history, now, run.id, fn.id, "run.queued"  # _log inlined
                         if status is RunStatus.QUEUED else "run.skipped", None, reason)
        if status is RunStatus.QUEUED:
            self.flow.on_run_created(run, fn, lock)
        else:
            run.ended_ms = now
            self._ended.append(run.id)
        self.store.save_run(run_record(run))  # (_save, inlined: once for every run)
        return run

    def enqueue(self, run: RunState) -> None:
        """Put ``run`` in the ready queue (flow control has admitted it)."""
        if run.queued or run.status.is_final:
            return
        run.queued = True
        # Older runs first, shifted by their priority seconds (as Inngest scores its queue).
        self.ready.push(run.id, run.priority * 1000 - run.created_ms)

    def wake(self, run: RunState) -> None:
        """A parked run has something to do: pass it to flow control to be enqueued."""
        if run.status.is_final:
            return
        self.flow.request_slice(run)

    def _pop_ready(self) -> RunState | None:
        run = self.runs.get(self.ready.pop())
        if run is None:
            return None
        run.queued = False
        return None if run.status.is_final else run

    # driving (see driver.py) ---------------------------------------------------------------
    def drain(self) -> int:
        """Execute ready slices until none is left; returns how many ran."""
        return self.driver.drain()

    async def drain_async(self) -> int:
        """:meth:`drain` from inside an event loop."""
        return await self.driver.drain_async()

    async def slice(self, run: RunState) -> None:
        """Drive ``run``'s handler until it returns, raises or parks."""
        # a served function is looked up directly (function() first serves new ones)
        fn = self._known_fns.get(run.fn_id) or self.function(run.fn_id)
        now = self.now_ms()
        generation = self.generation
        self.executing.add(run.id)
        requeue = False
        try:
            ex = self.live.pop(run.id, None)
            fresh = ex is None or ex.coro is None
            if ex is None:
                ex = Execution(self, run, fn)
            serving = self._fn_clients.get(fn.id, self.client)
            if serving.execution == "requests":
                ex.requests = True
                ex.target = _next_target(run, now)
            if run.started_ms is None:
                run.started_ms = now
                owner = self.runs.get(run.id)  # _log inlined (the run whose id it is)
                self.journal.log(None if owner is None else owner.history, now, run.id,
                                 run.fn_id, "run.started")
            if run.status is not RunStatus.RUNNING:
                run.status = RunStatus.RUNNING
                if self._commit_needed:  # readers of the store see it running
                    self._save(run)
                    await self.commit_async()
            self.flow.on_slice_start(run)
            mws = (serving._middleware + fn.middleware) if (
                serving._middleware or fn.middleware) else None
            ex.middleware = [mw(serving, None) for mw in mws] if mws else _NO_MIDDLEWARE
            ex.fast = not (mws or ex.requests or self.faults or self.limits
                           or self.group_commit or run.keys.get("concurrency")
                           or fn.finish_timeout_ms is not None
                           or (not ex.is_async and self.sync_runner is not None))
            ex.ctx.attempt = run.attempt
            if fresh:
                run.memos.reset_counter()
                ex.publishes = 0
            memo_phase = ex.memo_phase = len(run.memos) > 0
            ex.memos_seen = 0
            if ex.middleware:
                await ex.call_hooks_async("transform_input", ex.ctx, fn,
                                          StepMemos(_memo_lists(run)))
                await ex.call_hooks_async("before_memoization" if memo_phase
                                          else "before_execution")
            if not fresh and memo_phase:
                # A live coroutine resumes at new code: middleware hears what a replay
                # would have told it once its memos ran out.
                ex.memo_phase = False
                if ex.middleware:
                    await self.new_code_reached(ex)
            if ex.is_async:
                if fresh:
                    ex.coro = fn.handler(ex.ctx)
                handler_token = enter_handler(ex)
                try:
                    outcome, value = await Drive(ex.coro, PARK)
                finally:
                    exit_handler(handler_token)
            elif self.sync_runner is not None:
                outcome, value = await self.sync_runner(self._call_sync_threaded, fn, ex)
            else:
                outcome, value = self._call_sync(fn, ex)
            if self.generation != generation:
                # A commit failed under this slice and the engine was rebuilt from the
                # store: the run goes on from there; nothing of this slice may be kept.
                raise self._store_failure or StoreError(
                    f"store {self.store.location}: a commit failed while run {run.id} "
                    "executed; it goes on from its last commit")
            if ex.requests and outcome == RAISED:
                if isinstance(value, SyncPark):  # an async handler's request ended
                    outcome, value = PARKED, None
                elif isinstance(value, SkipStep):
                    # As the SDK reports it: a targeted request met another new step.
                    value = errors.StepUnexpectedError(
                        f'found step "{value.step_id}" when targeting a different step')
            if ex.memo_phase:  # the handler ended right after its last memo
                ex.memo_phase = False
                await self.new_code_reached(ex)
            if ex.middleware and not ex.hooks_ended:
                await ex.call_hooks_async("after_execution", reverse=True)
            if outcome == PARKED:  # (nothing to await on this path)
                self._finish_parked(ex)
            else:
                await self._finish_slice(ex, outcome, value)
            if ex.requests and outcome == PARKED:
                requeue = self._request_ended(ex)
            if ex.middleware:
                await ex.call_hooks_async("before_response")
        finally:
            self.executing.discard(run.id)
            if self.generation == generation:
                self.flow.on_slice_end(run)
                if requeue:  # the next request goes at once (after the slots went back)
                    self.wake(run)
                if self.group_commit:
                    await self.commit_async()
                else:
                    self.commit()

    def _request_ended(self, ex: Execution) -> bool:
        """``execution="requests"``: a request ended without finishing the run. Queue the
        steps it planned to be targeted, one request each (``ParallelMode.RACE``: before the
        older ones, after a discovery request that follows each targeted step); True if the
        next request should go at once, False if a timer or event wakes the run."""
        run = ex.run
        ex.coro = None
        if run.status.is_final:
            return False
        keys = run.keys
        queue = [t for t in keys.get("targets", ()) if t not in run.memos]
        new = [t for t in ex.planned if t not in queue and t not in run.memos]
        race = bool(keys.get("race"))
        queue = new + queue if race else queue + new
        if race and ex.target is not None and ex.target in run.memos:
            keys["discover"] = True
        if queue:
            keys["targets"] = queue
        else:
            keys.pop("targets", None)
            if not keys.get("discover"):
                keys.pop("race", None)
        self._save(run)
        if keys.get("discover"):
            return True
        if queue:  # a planned step with a retry not yet due waits for its timer
            return any(_ready_target(run, t, self.now_ms()) for t in queue)
        # A discovery request follows a recorded step, unless the run waits on something
        # (as Inngest's server waits for every step of a parallel group in WAIT mode).
        return ex.progressed and not run.pending

    def _call_sync_threaded(self, fn: Function[typing.Any],
                            ex: Execution) -> tuple[str, typing.Any]:
        """A sync handler on a Worker's thread. Its code runs without the engine lock (two
        handlers blocking on each other, or on the loop, must not deadlock); each step call
        into the engine's bookkeeping takes the lock for just that call (``ex.guard``)."""
        ex.guard = self.lock
        try:
            return self._call_sync(fn, ex)
        finally:
            ex.guard = NO_LOCK

    def _call_sync(self, fn: Function[typing.Any], ex: Execution) -> tuple[str, typing.Any]:
        handler_token = enter_handler(ex)  # set here: a worker thread has its own context
        try:
            return (DONE, fn.handler(ex.ctx))
        except SyncPark:
            return (PARKED, None)
        except BaseException as err:  # noqa: BLE001 - classified by _finish_slice
            return ("raised", err)
        finally:
            exit_handler(handler_token)

    async def new_code_reached(self, ex: Execution) -> None:
        """The replay ran out of memos: middleware hears it once."""
        if ex.middleware:
            await ex.call_hooks_async("after_memoization", reverse=True)
            await ex.call_hooks_async("before_execution")

    def new_code_reached_sync(self, ex: Execution) -> None:
        if ex.middleware:
            ex.call_hooks_sync("after_memoization", reverse=True)
            ex.call_hooks_sync("before_execution")

    def _finish_parked(self, ex: Execution) -> None:
        run = ex.run
        if ex.requests:
            ex.coro = None  # nothing is kept: the next request replays from the start
        if run.cancel_requested:
            self._finalize_cancel(run, run.reason or "cancelled")
            return
        self._keep_live(ex)
        run.status = self._parked_status(run)
        self._save(run)

    async def _finish_slice(self, ex: Execution, outcome: str, value: typing.Any) -> None:
        run = ex.run
        if outcome == PARKED:
            self._finish_parked(ex)
            return
        ex.coro = None
        if run.cancel_requested:
            # A Cancel matched while code outside any step ran: as on Inngest's server, the
            # run ends Cancelled and whatever the handler returned or raised is discarded.
            self._finalize_cancel(run, run.reason or "cancelled")
            return
        if outcome == DONE:
            if ex.fn.output_type is not None:
                # As in the SDK, the serializer runs as part of the handler's attempt (before
                # middleware sees the output): its failing is the function's error, retried.
                try:
                    value = serialize(self.client_of(ex.fn), value, ex.fn.output_type)
                except Exception as err:  # noqa: BLE001 - classified as the handler's error
                    self._function_failed(run, err)
                    return
            try:
                if ex.middleware:
                    res = TransformOutputResult(error=None, output=value, step=None)
                    await ex.call_hooks_async("transform_output", res, reverse=True)
                    value = _transformed(res)
                output = encode_output(value, f"function '{run.fn_id}'")
            except errors.OutputUnserializableError:
                # The SDK's error and message for a function's output JSON can't hold.
                self.fail_run(run, errors.describe_error(errors.OutputUnserializableError(
                    "returned unserializable data", is_retriable=False)))
                return
            except Exception as err:  # noqa: BLE001 - a failing middleware fails the run
                self.fail_run(run, errors.describe_error(err))
                return
            self.complete_run(run, output)
            return
        err = value
        if isinstance(err, CancelRun):
            self._finalize_cancel(run, run.reason or "cancelled")
            return
        if not isinstance(err, Exception) and passes_through(err):
            raise err  # the Worker is cancelling this slice: it runs again later
        # SystemExit, KeyboardInterrupt... raised by the handler fail this attempt like any
        # error: one run must not stop the worker (again on every restart).
        self._function_failed(run, err)

    def _keep_live(self, ex: Execution) -> None:
        if ex.coro is None:
            return
        self.live[ex.run.id] = ex
        while len(self.live) > self.coroutine_cap:
            _, old = self.live.popitem(last=False)
            self._close(old)

    def _close(self, ex: Execution) -> None:
        if ex.coro is not None:
            coro, ex.coro = ex.coro, None
            try:
                coro.close()
            except BaseException:  # noqa: BLE001, S110 - a handler's finally may raise; ignore
                pass

    @staticmethod
    def _parked_status(run: RunState) -> RunStatus:
        status = RunStatus.RUNNING
        for pending in run.pending.values():
            kind = pending.kind
            if kind == "wait" or kind == "invoke":
                return RunStatus.WAITING
            if kind == "sleep":
                status = RunStatus.SLEEPING
        return status

    def complete_run(self, run: RunState, output: typing.Any) -> None:
        now = self.now_ms()
        run.status = RunStatus.COMPLETED
        run.output = output
        run.ended_ms = now
        owner = self.runs.get(run.id)  # _log inlined (the run whose id it is)
        self.journal.log(None if owner is None else owner.history, now, run.id, run.fn_id,
                         "run.completed")
        self._end(run)
        if run.invoker is not None:
            self._invoke_finished(run, [OP_INVOKE, True, output])

    def fail_run(self, run: RunState, error: dict) -> None:
        now = self.now_ms()
        run.status = RunStatus.FAILED
        run.error = error
        run.ended_ms = now
        self._log(now, run.id, run.fn_id, "run.failed", None,
                  f"{error.get('name')}: {error.get('message')}")
        self._end(run)
        if run.invoker is not None:
            self._invoke_finished(run, [OP_INVOKE, False, error])
        fn = self._known_fns.get(run.fn_id)
        if fn is not None and not fn.is_failure_handler:
            self._accept_one({"name": FAILED_EVENT, "data": {
                "error": _failure_error(error), "function_id": run.fn_id, "run_id": run.id,
                "event": run.events[0] if run.events else None}, "id": "", "ts": 0}, run.id)

    def cancel_run(self, run: RunState, reason: str) -> None:
        """Cancel ``run`` now if it is parked or queued, else at its next step boundary."""
        if run.status.is_final:
            return
        run.cancel_requested = True
        run.reason = reason
        # A step still in flight (a busy step in a simulation) finishes first; its result
        # is then dropped and the run cancelled.
        in_flight = any(p.kind == "hold" for p in run.pending.values())
        if run.id not in self.executing and not in_flight:
            self._finalize_cancel(run, reason)

    def _finalize_cancel(self, run: RunState, reason: str) -> None:
        now = self.now_ms()
        ex = self.live.pop(run.id, None)
        if ex is not None:
            self._close(ex)
        run.status = RunStatus.CANCELLED
        run.reason = reason
        run.ended_ms = now
        self._log(now, run.id, run.fn_id, "run.cancelled", None, reason)
        self._end(run)
        if run.invoker is not None:
            self._invoke_finished(run, [OP_INVOKE, False, {
                "name": "RunCancelledError", "message": f"invoked run {run.id} was cancelled",
                "stack": None}])
        self._accept_one({"name": CANCELLED_EVENT, "data": {
            "function_id": run.fn_id, "run_id": run.id, "reason": reason,
            "event": run.events[0] if run.events else None}, "id": "", "ts": 0}, run.id)

    def _end(self, run: RunState) -> None:
        if run.pending:
            for key, pending in list(run.pending.items()):
                self._drop_pending(run, key, pending)
        ex = self.live.pop(run.id, None)
        if ex is not None:
            self._close(ex)
        self.flow.on_run_end(run)
        self.store.save_run(run_record(run))  # (_save, inlined: once for every run)
        self._ended.append(run.id)

    def _drop_pending(self, run: RunState, key: str, pending: Pending) -> None:
        run.pending.pop(key, None)
        if pending.timer is not None and pending.timer in self.timers:
            self.timers.cancel(pending.timer)
        if pending.kind == "wait":
            waits = self.waits.get(pending.data["event"])
            if waits is not None:
                waits.pop((run.id, key), None)

    # retries --------------------------------------------------------------------------------
    def retry_delay(self, failed_attempt: int, err: BaseException) -> int:
        """Delay after failed attempt ``failed_attempt`` (0-based), in ms."""
        if isinstance(err, errors.RetryAfterError):
            return err.delay_ms(self.now_ms())
        return BACKOFF_MS[min(failed_attempt, 9)] + self.rng.randbelow(JITTER_MS + 1)

    def _function_failed(self, run: RunState, err: BaseException) -> None:
        fn = self.function(run.fn_id)
        attempt = run.attempt + 1
        if not errors.is_retriable(err) or attempt > fn.retries:
            self.fail_run(run, errors.describe_error(err))
            return
        now = self.now_ms()
        due = now + self.retry_delay(attempt - 1, err)
        run.attempt = attempt
        run.attempts += 1
        handle = self.timers.schedule(due, ("retry", run.id, FUNCTION_RETRY))
        run.pending[FUNCTION_RETRY] = Pending("retry", due, handle, attempt)
        run.status = RunStatus.RUNNING
        self._log(now, run.id, run.fn_id, "run.retrying", None,
                  {"attempt": attempt, "error": errors.describe_error(err)["message"],
                   "type": type(err).__name__, "at_ms": due})
        self._save(run)

    def step_failed(self, ex: Execution, full_id: str, err: BaseException,
                    op: str = "run") -> bool:
        run = ex.run
        now = self.now_ms()
        pending = run.pending.get(full_id)
        attempt = (pending.data if pending is not None and pending.kind == "retry"
                   else run.attempt) + 1
        if pending is not None and pending.timer is not None and pending.timer in self.timers:
            self.timers.cancel(pending.timer)
        described = errors.describe_error(err)
        if not errors.is_retriable(err) or attempt > ex.fn.retries:
            run.pending.pop(full_id, None)
            self._memoize(run, full_id, [op, False, described], "step.errored",
                          f"{described['name']}: {described['message']}", now)
            self.commit()
            return False
        due = now + self.retry_delay(attempt - 1, err)
        handle = self.timers.schedule(due, ("retry", run.id, full_id))
        run.pending[full_id] = Pending("retry", due, handle, attempt)
        run.attempt = attempt
        run.attempts += 1
        self._log(now, run.id, run.fn_id, "step.failed", full_id,
                  {"attempt": attempt, "error": described["message"],
                   "type": described["name"], "retry_at_ms": due})
        self._save(run)
        return True

    def inject_fault(self, ex: Execution, full_id: str) -> None:
        """Raise an injected failure for this attempt of ``full_id``, if one is armed."""
        for key in ((ex.run.fn_id, full_id), (None, full_id)):
            fault = self.faults.get(key)
            if fault is not None and fault[0] > 0:
                fault[0] -= 1
                raise fault[1]

    def prepare_output(self, ex: Execution, full_id: str, op: str, out: typing.Any) -> typing.Any:
        if ex.middleware:
            # the request that ran the step ends here (see middleware.py)
            ex.call_hooks_sync("after_execution", reverse=True)
            ex.hooks_ended = ex.requests
            res = TransformOutputResult(error=None, output=out, step=TransformOutputStepInfo(
                id=full_id, op=OPCODES.get(op, op)))  # type: ignore[arg-type]
            ex.call_hooks_sync("transform_output", res, reverse=True)
            out = _transformed(res)
        with ex.guard:  # the hooks ran unlocked; the size accounting touches run.keys
            return self._checked_output(ex, full_id, out)

    async def prepare_output_async(self, ex: Execution, full_id: str, op: str,
                                   out: typing.Any) -> typing.Any:
        if ex.middleware:
            await ex.call_hooks_async("after_execution", reverse=True)
            ex.hooks_ended = ex.requests
            res = TransformOutputResult(error=None, output=out, step=TransformOutputStepInfo(
                id=full_id, op=OPCODES.get(op, op)))  # type: ignore[arg-type]
            await ex.call_hooks_async("transform_output", res, reverse=True)
            out = _transformed(res)
        return self._checked_output(ex, full_id, out)

    def _new_request_hooks(self, ex: Execution) -> list[tuple[str, tuple, bool]]:
        # A recorded step ends a request against Inngest's server and the handler's going on
        # is the next one: fresh middleware instances hear it begin (see middleware.py).
        serving = self.client_of(ex.fn)
        ex.middleware = [mw(serving, None) for mw in serving._middleware + ex.fn.middleware]
        steps = StepMemos(_memo_lists(ex.run))
        return [("transform_input", (ex.ctx, ex.fn, steps), False),
                ("before_memoization", (), False), ("after_memoization", (), True),
                ("before_execution", (), False)]

    def step_request_ended(self, ex: Execution) -> None:
        ex.request_ended()  # execution="requests": the request ends here
        if ex.middleware:
            ex.call_hooks_sync("before_response")
            for name, args, rev in self._new_request_hooks(ex):
                ex.call_hooks_sync(name, *args, reverse=rev)

    async def step_request_ended_async(self, ex: Execution) -> None:
        ex.request_ended()
        if ex.middleware:
            await ex.call_hooks_async("before_response")
            for name, args, rev in self._new_request_hooks(ex):
                await ex.call_hooks_async(name, *args, reverse=rev)

    def _checked_output(self, ex: Execution, full_id: str, out: typing.Any) -> typing.Any:
        if self.limits:
            size = len(json.dumps(out, allow_nan=False, default=str))
            limits.check_output_size(size, ex.run.keys.get("state_bytes", 0),
                                     f"step '{full_id}'")
            ex.run.keys["state_bytes"] = ex.run.keys.get("state_bytes", 0) + size
        return step_output(full_id, out)

    def step_succeeded(self, ex: Execution, full_id: str, op: str, value: typing.Any, *,
                       defer: bool = False) -> typing.Any:
        run = ex.run
        run.pending.pop(full_id, None)
        if ex.busy_ms:
            # The step takes virtual time: its result is recorded when that time is up,
            # and the run keeps its concurrency slots until then.
            due = self.now_ms() + ex.busy_ms
            ex.busy_ms = 0
            handle = self.timers.schedule(due, ("hold", run.id, full_id))
            run.pending[full_id] = Pending("hold", due, handle, [op, True, value])
            self._log(self.now_ms(), run.id, run.fn_id, "step.busy", full_id, {"until_ms": due})
            return MISSING
        # A tuple: with a JSON scalar value the garbage collector stops visiting it (one is
        # kept per step for the run's life); memos are only ever indexed, never changed.
        self._memoize(run, full_id, (op, True, value), "step.completed")
        # Recorded before the handler continues (deferred: the caller awaits commit_async()
        # itself). A store whose writes need no commit gets its housekeeping at the end of
        # the slice instead.
        if not defer and self._commit_needed:
            self.commit()
        return fresh_copy(value)

    @functools.cached_property
    def step_rules(self) -> typing.Any:
        """The kernel's rules for step.run's short path (Execution.open_step/record): what it
        records and where, as :meth:`step_succeeded` would (a commit only where the store
        needs one)."""
        return step_rules(self.journal, self.now_ms,
                          (lambda: self.commit()) if self._commit_needed else None)

    def _memoize(self, run: RunState, full_id: str, memo: typing.Sequence[typing.Any],
                 kind: str, detail: typing.Any = None, at_ms: int | None = None) -> None:
        """Record ``memo`` for step ``full_id`` of ``run`` with the history entry ``kind``
        that says so (one journal call: memo table, store, history, trace)."""
        # No commit here: callers commit at the end of what they are doing (a step, an
        # accepted event with all its deliveries, a batch of timers), so each is atomic.
        run.attempt = 0
        self.journal.memoize(run.memos, run.history, self.now_ms() if at_ms is None else at_ms,
                             run.id, run.fn_id, kind, full_id, memo, detail)

    # suspensions ----------------------------------------------------------------------------
    def park_sleep(self, ex: Execution, full_id: str, ms: int, relative: bool) -> None:
        run = ex.run
        if full_id in run.pending:
            return
        now = self.now_ms()
        due = max(now + ms if relative else ms, now)
        if self.limits:
            limits.check_duration(due - now, f"sleep '{full_id}'")
        handle = self.timers.schedule(due, ("sleep", run.id, full_id))
        run.pending[full_id] = Pending("sleep", due, handle)
        self._log(now, run.id, run.fn_id, "sleep.started", full_id, {"until_ms": due})

    def sleep_fast(self, ex: Execution, full_id: str, ms: int) -> bool:
        """``step.sleep`` on the short path: parks as :meth:`park_sleep` does and returns
        False, or, when nothing could happen before the sleep ends, ends it in this slice
        and returns True (the handler goes straight on).

        Nothing can happen meanwhile when a virtual-time drive may move the clock to its
        end, nothing else is ready or executing, no timer is due by then, no listener hears
        the journal, no branch of a parallel group waits to run, parking would close no
        coroutine and nothing is left to commit (``TimerLoop.skip`` checks the clock, the heap, the queue and the listener).
        Then what the parked path records is recorded in the same order: ``sleep.started``,
        the clock moved to its end, the memo with ``sleep.completed``; the run's record is
        saved when the slice ends, as it is after every slice."""
        run = ex.run
        # (coroutine_cap: parking would close a coroutine, this one or another run's, and
        # that handler would then replay its code outside steps: parking is what shows)
        if (not ex.parallel and len(self.executing) == 1 and not self._ended
                and len(self.live) < self.coroutine_cap
                and not self.event_table.settled and full_id not in run.pending
                and self.timer_loop.skip(run.history, run.memos, run.id, run.fn_id, full_id,
                                         ms)):
            # what the slice that would have resumed the handler sets (see slice)
            run.attempt = ex.ctx.attempt = 0
            ex.memos_seen = 0
            return True
        self.park_sleep(ex, full_id, ms, True)
        return False

    def park_wait(self, ex: Execution, full_id: str, event: str, if_exp: str | None,
                  timeout_ms: int) -> None:
        run = ex.run
        if full_id in run.pending:
            return
        if not isinstance(event, str) or not event:
            raise TypeError("wait_for_event: event must be a non-empty event name")
        expr = Expression.compile(if_exp, what="wait_for_event.if_exp") if if_exp else None
        if self.limits:
            limits.check_duration(timeout_ms, f"wait_for_event '{full_id}' timeout")
        now = self.now_ms()
        due = now + timeout_ms
        handle = self.timers.schedule(due, ("wait", run.id, full_id))
        run.pending[full_id] = Pending("wait", due, handle, {"event": event, "if": if_exp})
        self.waits.setdefault(event, {})[(run.id, full_id)] = _Wait(run, full_id, expr)
        self._log(now, run.id, run.fn_id, "wait.started", full_id, {"event": event})

    def _resolve_wait(self, key: tuple[str, str], wait: _Wait, payload: dict) -> None:
        run = wait.run
        pending = run.pending.get(wait.step)
        if pending is not None:
            self._drop_pending(run, wait.step, pending)
        else:
            self.waits.get(payload["name"], {}).pop(key, None)
        self._memoize(run, wait.step, [OP_WAIT, True, payload], "wait.completed",
                      payload["id"])
        self._save(run)
        self.wake(run)

    def park_invoke(self, ex: Execution, full_id: str, app_id: str | None, function_id: str,
                    data: typing.Mapping[str, object] | None, timeout_ms: int | None) -> None:
        run = ex.run
        if full_id in run.pending:
            return
        now = self.now_ms()
        target_id = f"{app_id or self.client_of(ex.fn).app_id}-{function_id}"
        self.sync_functions()
        target = self._known_fns.get(target_id)
        if target is None:
            self._memoize(run, full_id, [OP_INVOKE, False, {
                "name": "FunctionNotFoundError",
                "message": f"invoke: no function with id '{target_id}'", "stack": None}],
                "invoke.failed", "function not found", now)
            self.flow.request_slice(run, after_slice=True)
            return
        payload = {"name": INVOKED_EVENT, "data": dict(data or {}), "id": self.rng.ulid(now),
                   "ts": now}
        encode_output(payload["data"], f"invoke '{full_id}' data")
        handle = None
        due = None
        if timeout_ms is not None:
            due = now + timeout_ms
            handle = self.timers.schedule(due, ("invoke", run.id, full_id))
        child = self.create_run(target, [payload], invoker=(run.id, full_id))
        run.pending[full_id] = Pending("invoke", due, handle, {"run": child.id})
        self._log(now, run.id, run.fn_id, "invoke.started", full_id, child.id)

    def _invoke_finished(self, child: RunState, memo: list) -> None:
        caller_id, step_id = child.invoker  # type: ignore[misc]
        caller = self.runs.get(caller_id)
        if caller is None or caller.status.is_final:
            return
        pending = caller.pending.get(step_id)
        if pending is None or pending.kind != "invoke" or pending.data["run"] != child.id:
            return
        self._drop_pending(caller, step_id, pending)
        self._memoize(caller, step_id, memo,
                      "invoke.completed" if memo[1] else "invoke.failed", child.id)
        self._save(caller)
        self.wake(caller)

    # timers ---------------------------------------------------------------------------------
    def next_due(self) -> int | None:
        """When the next timer fires (ms), or None."""
        return self.timers.peek_due()

    def fire_due(self, now_ms: int) -> int:
        """Fire every timer due at or before ``now_ms``, in (due, FIFO) order."""
        with self.lock:
            fired = self.timer_loop.fire_due(now_ms, self._fire)  # the loop is the kernel's
            if fired:
                self.commit()
        return fired

    def _fire(self, handle: int, payload: tuple) -> None:
        kind = payload[0]
        if kind == "cron":
            self._cron_timers.discard(handle)
            self._fire_cron(payload)
            return
        if kind not in ("sleep", "wait", "retry", "invoke", "hold"):
            self.flow.fire(payload)
            return
        run = self.runs.get(payload[1])
        if run is None or run.status.is_final:
            return
        step_id = payload[2]
        pending = run.pending.get(step_id)
        if pending is None or pending.timer != handle:
            return
        now = self.now_ms()
        if kind == "retry":
            pending.timer = None
            if step_id == FUNCTION_RETRY:
                run.pending.pop(step_id, None)
            self._log(now, run.id, run.fn_id, "retry.due", step_id or None)
        else:
            self._drop_pending(run, step_id, pending)
            if kind == "hold":
                self.flow.step_landed(run)
            if kind == "hold" and run.cancel_requested:
                self._finalize_cancel(run, run.reason or "cancelled")
                return
            if kind == "hold":
                self._memoize(run, step_id, pending.data, "step.completed", None, now)
            elif kind == "sleep":  # the memo is a tuple: see step_succeeded
                self._memoize(run, step_id, (OP_SLEEP, True, None), "sleep.completed", None,
                              now)
            elif kind == "wait":
                self._memoize(run, step_id, [OP_WAIT, True, None], "wait.timed_out", None, now)
            else:
                # The SDK's error for an invoke that timed out (the handler sees a StepError)
                self._memoize(run, step_id, [OP_INVOKE, False, {
                    "code": errors.ErrorCode.STEP_ERRORED.value,
                    "name": "InngestInvokeTimeoutError",
                    "message": "Timed out waiting for invoked function to complete",
                    "stack": None}], "invoke.timed_out", None, now)
        self._save(run)
        self.wake(run)

    # cron -----------------------------------------------------------------------------------
    def _arm_cron(self, fn: Function[typing.Any], idx: int, cron: CronSchedule,
                  tick: int) -> None:
        """Schedule the tick at ``tick`` (plus seeded jitter) and record it as the cursor."""
        self._cron_timers.add(self.crons.arm(fn, idx, cron, tick))

    def _fire_cron(self, payload: tuple) -> None:
        nxt = self.crons.fire(payload)
        if nxt is not None:
            self._arm_cron(*nxt)  # through the method: a subclass tracks what it arms

    def run_until_idle(self, max_iterations: int) -> bool:
        """Virtual clocks: run from timer to timer until only cron schedules remain; False if
        ``max_iterations`` timer instants were not enough."""
        return self.driver.run_until_idle(max_iterations)

    def has_work(self) -> bool:
        """True while anything but cron schedules remains to be done."""
        if self.ready:
            return True
        return len(self.timers) > len(self._cron_timers)

    def resolve(self, awaitable: typing.Awaitable[typing.Any]) -> typing.Any:
        """Run a fresh ``awaitable`` to completion from synchronous code (see
        :func:`~inngest_do.driver.resolve`)."""
        return resolve(awaitable)

    def _work_arrived(self) -> None:
        if self.auto_drain:
            if not self.executing:  # a send from inside a step runs after that slice
                self.run_until(self.now_ms())
        elif self.on_work is not None:
            self.on_work()

    # contexts -------------------------------------------------------------------------------
    def make_context(self, ex: Execution) -> Context | ContextSync:
        # Its event models, logger and group are made when first read (most handlers never
        # read some of them): see context.LazyContext, which calls the two below.
        run = ex.run
        if ex.is_async:
            return LazyContext.made(run.attempt, run.id, Step(ex), ex)
        return LazyContextSync.made(run.attempt, run.id, StepSync(ex), ex)

    def make_group(self, ex: Execution) -> Group | GroupSync:
        """``ctx.group`` of ``ex``'s handler (made on first read)."""
        return Group(ex) if ex.is_async else GroupSync(ex)

    def make_logger(self, ex: Execution) -> ReplayQuietLogger:
        """``ctx.logger`` of ``ex``'s handler (made on first read)."""
        return ReplayQuietLogger(self.client_of(ex.fn), ex)

    def finish_timed_out(self, run: RunState) -> bool:
        return self.flow.finish_timed_out(run)

    def body_may_start(self, run: RunState) -> bool:
        """May a step body of ``run`` start now (flow control's concurrency units)?"""
        return self.flow.before_body(run)

    # records --------------------------------------------------------------------------------
    def _log(self, at_ms: int, run_id: str, fn_id: str, kind: str, step: str | None = None,
             detail: typing.Any = None) -> None:
        # Built in the kernel (a NamedTuple's own __new__ is a Python-level call) and not
        # tracked by the garbage collector: entries are kept for every run and point at
        # nothing that could lead back to them.
        run = self.runs.get(run_id) if fn_id else None
        self.journal.log(None if run is None else run.history, at_ms, run_id, fn_id, kind,
                         step, detail)

    def _save(self, run: RunState) -> None:
        self.store.save_run(run_record(run))

    # queries (see queries.py) -------------------------------------------------------------
    def event_records(self, name: str | None = None) -> list[tuple[str, dict]]:
        """(internal id, {"payload", "received_ms", "outcomes"}) of events in arrival order."""
        return queries.event_records(self.store, self.lock, self.events, name)

    def query_events(self, name: str | None = None) -> list[EventRecord]:
        """Events in arrival order, with their outcomes."""
        return queries.query_events(self.store, self.lock, self.events, name)

    def query_runs(self, fn_id: str | None = None,
                   status: RunStatus | str | None = None) -> list[RunState]:
        """Runs in creation order (finished ones from the store, active ones from memory)."""
        return queries.query_runs(self.store, self.lock, self.runs, fn_id, status)

    def get_run(self, run_id: str) -> RunState | None:
        """One run by id (an active one from memory, a finished one from the store)."""
        return queries.get_run(self.store, self.lock, self.runs, run_id)

    # recovery -------------------------------------------------------------------------------
    def reseed(self, salt: int) -> None:
        """Move the random source to a stream that depends on ``salt`` (after recovery). In
        place (a generator's state is its seed): the event table draws from it too."""
        self.rng.set_state((self.seed * 0x9E3779B97F4A7C15 + salt + 1) % (1 << 64))

    def _recover(self) -> None:
        """Rebuild working state from the store (a new store gives back nothing)."""
        self._restore(self.store.recover())

    def _restore(self, state: RecoveredState) -> None:
        if not state.runs and not state.events and not state.meta:
            return
        self.cron_cursors.update(cron_cursors(state.meta))
        restore(state, runs=self.runs, events=self.events, timers=self.timers,
                waits=self.waits, flow=self.flow, reseed=self.reseed)


def _transformed(res: TransformOutputResult) -> typing.Any:
    if res.error is not None:
        raise res.error
    return res.output


def _store_logger() -> typing.Any:
    import logging

    return logging.getLogger("inngest_do")


def _next_target(run: RunState, now_ms: int) -> str | None:
    """The planned step the next request targets (``execution="requests"``); None for a
    discovery request. A planned step whose retry is not yet due lets the others go first,
    as the server runs each planned step on its own."""
    if run.keys.pop("discover", False):
        return None
    waiting = None
    for target in run.keys.get("targets", ()):
        if target in run.memos:
            continue
        if _ready_target(run, target, now_ms):
            return target
        waiting = waiting or target
    return waiting


def _ready_target(run: RunState, target: str, now_ms: int) -> bool:
    pending = run.pending.get(target)
    return pending is None or (pending.kind == "retry" and pending.due_ms <= now_ms)


def _failure_error(error: dict) -> dict:
    """``data.error`` of an ``inngest/function.failed`` event, with the keys Inngest's server
    gives it: its "error" is what the server saw when the SDK's request failed (a 500)."""
    return {"error": "invalid status code: 500", "message": error.get("message", ""),
            "name": error.get("name", "Error"), "stack": error.get("stack")}


def _memo_lists(run: RunState) -> dict[str, list]:
    """The run's memos as middleware sees them: ``[op, ok, value]`` lists (the engine keeps
    some as tuples), copies, so a hook cannot change what was recorded."""
    return {full_id: list(memo) for full_id, memo in run.memos.items()}


def run_record(run: RunState) -> dict:
    """The JSON-friendly record a store keeps for ``run`` (memos and history apart)."""
    return {
        "id": run.id, "fn_id": run.fn_id, "events": run.events, "created_ms": run.created_ms,
        # _value_: the enum's ``value`` is a property, a Python-level call (3 saves a slice)
        "status": run.status._value_, "started_ms": run.started_ms, "ended_ms": run.ended_ms,
        "output": run.output, "error": run.error, "attempt": run.attempt,
        "attempts": run.attempts, "priority": run.priority,
        "invoker": list(run.invoker) if run.invoker else None,
        "cancel_requested": run.cancel_requested, "reason": run.reason, "keys": run.keys,
        # (a comprehension is a call of its own: most saves have nothing pending)
        "pending": {k: [p.kind, p.due_ms, p.data] for k, p in run.pending.items()}
        if run.pending else {},
    }


__all__ = ["MISSING", "Engine", "run_record"]
