"""One run's execution: the bridge between a handler's steps and the engine.

An :class:`Execution` lives as long as the run's handler does: for an async handler, across
every slice in which its coroutine is resumed; for a sync handler (or after an eviction or a
restart), it is rebuilt and the handler replays against the run's memo table. Steps ask it
every question (memoized? retry due? nested?) and it forwards decisions that touch timers,
waits and stores to the engine.

The driver protocol: a parked step yields :data:`PARK` (async) or raises :class:`SyncPark`
(sync). The kernel's :class:`~inngest_do.kernel.Drive` runs a coroutine until it parks or ends, forwarding any other
awaitable (a step body's real I/O) to whoever awaits the drive: asyncio in a worker, a
private loop in a simulation.
"""

from __future__ import annotations

import asyncio
import contextvars
import inspect
import json
import typing

from . import errors, kernel, limits
from .event import Event, SendEventsResult

if typing.TYPE_CHECKING:
    from .context import Context, ContextSync
    from .function import Function
    from .runs import RunState

MISSING: typing.Any = type("Missing", (), {"__repr__": lambda self: "MISSING"})()

OP_RUN = "run"
OP_SLEEP = "sleep"
OP_WAIT = "wait"
OP_SEND = "send"
OP_INVOKE = "invoke"

# what Drive (the kernel's slice driver) reports
DONE, RAISED, PARKED = kernel.DONE, kernel.RAISED, kernel.PARKED


class _Park:
    """Awaiting it yields itself to the driver: the coroutine stops right here."""

    __slots__ = ()

    def __await__(self) -> typing.Generator[typing.Any, None, None]:
        yield self

    def __repr__(self) -> str:
        return "PARK"


PARK = _Park()


class _Round(_Park):
    """Yielded by a branch of a ``ParallelMode.WAIT`` group after each new step it ran: the
    group moves on to the next branch, so the branches' steps run in rounds (a.1, b.1, a.2,
    b.2), as Inngest plans them."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "ROUND"


ROUND = _Round()


class SyncPark(BaseException):
    """A sync handler parks: unwind it; it replays from its memos when resumed.

    A BaseException so that a user's ``except Exception:`` never swallows it.
    """


class SkipStep(BaseException):
    """``execution="requests"``: a request targets one planned step and the handler reached
    a different new one. A parallel group skips that branch; anywhere else the run fails with
    the SDK's ``StepUnexpectedError``."""

    def __init__(self, step_id: str) -> None:
        super().__init__(step_id)
        self.step_id = step_id


class NestedStep(BaseException):
    """A step was started inside another step's body."""

    def __init__(self, step_id: str) -> None:
        super().__init__(step_id)
        self.step_id = step_id


_CURRENT: contextvars.ContextVar[Execution | None] = contextvars.ContextVar(
    "inngest_do_execution", default=None)


def current_execution() -> Execution | None:
    """The execution whose step body is running in this context, if any."""
    ex = _CURRENT.get()
    return ex if ex is not None and ex.in_body is not None else None


# The execution whose handler runs in this context (set for the length of a slice), so code
# called from a handler can tell a replay of code that already ran (``memo_phase``).
_HANDLER: contextvars.ContextVar[Execution | None] = contextvars.ContextVar(
    "inngest_do_handler", default=None)


def handler_execution() -> Execution | None:
    """The execution whose handler (or a step body in it) is running in this context."""
    return _HANDLER.get()


def enter_handler(ex: Execution) -> contextvars.Token:
    return _HANDLER.set(ex)


def exit_handler(token: contextvars.Token) -> None:
    _HANDLER.reset(token)


class CancelRun(BaseException):
    """Unwinds a handler whose run was cancelled (or timed out) at a step boundary."""


class Abandoned(BaseException):
    """Unwinds a handler whose engine state was rebuilt from the store (a commit failed):
    nothing it does after that may reach the store. A BaseException so that a user's
    ``except Exception:`` never swallows it."""


def passes_through(err: BaseException) -> bool:
    """True for the exceptions that are not the user's code failing, so they must unwind
    past the step or handler: the engine's own (park, nested step, cancelled run) and a real
    cancellation of the task driving the slice (a Worker stopping). Everything else a step
    body or handler raises -- ``SystemExit``, ``KeyboardInterrupt``, a ``CancelledError`` of
    its own making, ``GeneratorExit`` -- is a failed attempt, so no run can stop the worker.
    """
    if isinstance(err, (SyncPark, NestedStep, CancelRun, SkipStep, Abandoned)):
        return True
    if isinstance(err, asyncio.CancelledError):
        try:
            task = asyncio.current_task()
        except RuntimeError:  # no loop in this thread: a sync body raised it itself
            return False
        # cancelling() counts cancel() requests on the task; a body raising CancelledError
        # by hand (or awaiting a future someone else cancelled) leaves it at 0.
        return task is not None and task.cancelling() > 0
    return False


class _NoLock:
    """Stands in for the engine lock where the caller already holds it (or needs none)."""

    __slots__ = ()

    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


NO_LOCK = _NoLock()


_SCALARS = (str, int, bool)  # what encode_output passes through (a float may be NaN)


def encode_output(value: typing.Any, what: str) -> typing.Any:
    """The JSON round trip of ``value``: what the handler sees, live or replayed.

    Raises :class:`~inngest_do.errors.OutputUnserializableError` naming ``what``.
    """
    if value is None or type(value) in (str, int, bool):
        return value
    try:
        return json.loads(json.dumps(value, allow_nan=False))
    except (TypeError, ValueError) as err:
        raise errors.OutputUnserializableError(
            f"{what}: output is not JSON-serializable ({err})"
        ) from None


def step_output(full_id: str, value: typing.Any) -> typing.Any:
    """A step's output as recorded: :func:`encode_output`, returning a scalar before the
    label it would format for an error (the common case, once per step)."""
    if value is None or type(value) in _SCALARS:
        return value
    return encode_output(value, f"step '{full_id}'")


def fresh_copy(value: typing.Any) -> typing.Any:
    """A copy of a recorded (JSON) value the handler may mutate without touching the memo;
    scalars are returned as they are."""
    if value is None or type(value) in (str, int, bool, float):
        return value
    return json.loads(json.dumps(value))


class ExecutionHost(typing.Protocol):
    """What an :class:`Execution` (and the step tools driving it) asks of the engine that
    runs it: the engine's bookkeeping operations and four switches, nothing of its tables.
    The :class:`~inngest_do.engine.Engine` is the one implementation."""

    generation: int  # bumped when the engine rebuilds from its store (work begun is dropped)
    step_rules: typing.Any  # the kernel's StepRules for step.run's short path (step_rules())
    limits: bool  # Inngest's size/count limits apply
    faults: dict  # injected step failures (Simulation.fail_step)
    group_commit: bool  # steps share commits (a Worker on a store that fsyncs)

    def now_ms(self) -> int: ...
    def client_of(self, fn: Function[typing.Any]) -> typing.Any: ...
    def make_context(self, ex: Execution) -> Context | ContextSync: ...
    def make_group(self, ex: Execution) -> typing.Any: ...
    def make_logger(self, ex: Execution) -> typing.Any: ...
    def finish_timed_out(self, run: RunState) -> bool: ...
    def body_may_start(self, run: RunState) -> bool: ...
    def inject_fault(self, ex: Execution, full_id: str) -> None: ...
    def prepare_output(self, ex: Execution, full_id: str, op: str, out: typing.Any) -> typing.Any: ...
    async def prepare_output_async(self, ex: Execution, full_id: str, op: str,
                                   out: typing.Any) -> typing.Any: ...
    def step_succeeded(self, ex: Execution, full_id: str, op: str, value: typing.Any, *,
                       defer: bool = False) -> typing.Any: ...
    def step_failed(self, ex: Execution, full_id: str, err: BaseException,
                    op: str = ...) -> bool: ...
    def step_request_ended(self, ex: Execution) -> None: ...
    async def step_request_ended_async(self, ex: Execution) -> None: ...
    async def commit_async(self) -> None: ...
    def new_code_reached_sync(self, ex: Execution) -> None: ...
    async def new_code_reached(self, ex: Execution) -> None: ...
    def park_sleep(self, ex: Execution, full_id: str, ms: int, relative: bool) -> None: ...
    def sleep_fast(self, ex: Execution, full_id: str, ms: int) -> bool: ...
    def park_wait(self, ex: Execution, full_id: str, event: str, if_exp: str | None,
                  timeout_ms: int) -> None: ...
    def park_invoke(self, ex: Execution, full_id: str, app_id: str | None, function_id: str,
                    data: typing.Mapping[str, object] | None,
                    timeout_ms: int | None) -> None: ...
    def accept(self, events: list[Event], *, origin: str | None = None) -> list[str]: ...
    def resolve(self, awaitable: typing.Awaitable[typing.Any]) -> typing.Any: ...


def step_rules(journal: typing.Any, now_ms: typing.Callable[[], int],
               commit: typing.Callable[[], None] | None) -> typing.Any:
    """The kernel's rules for the short path of ``step.run`` (:meth:`Execution.open_step`):
    what it records (a ``run`` memo, a ``step.completed`` entry in ``journal``), its output
    check and copy, and ``commit`` to call after each recorded step (None: none needed)."""
    return kernel.StepRules(OP_RUN, "step.completed", journal, now_ms, step_output, fresh_copy,
                            _CURRENT, commit)


class Execution(kernel.StepBook):
    """The live state of one run's handler; see the module docstring.

    Its step bookkeeping (``engine``, ``run``, ``ctx``, ``in_body``, ``step_name``,
    ``busy_ms``, ``fast``, ``memo_phase``, ``generation``, ``rules``) lives in the kernel's
    :class:`~inngest_do.kernel.StepBook` base, whose ``open_step``/``checked``/``record``
    are ``step.run``'s short path (see step.py).
    """

    __slots__ = (
        "coro",
        "fn",
        "guard",
        "hooks_ended",
        "is_async",
        "memos_seen",
        "middleware",
        "parallel",
        "planned",
        "progressed",
        "publishes",
        "requests",
        "rounds",
        "target",
    )

    def __init__(self, engine: ExecutionHost, run: RunState,
                 fn: Function[typing.Any]) -> None:
        self.engine = engine
        self.run = run
        self.rules = engine.step_rules
        self.fn = fn
        self.coro: typing.Coroutine | None = None
        self.in_body: str | None = None
        self.middleware: list[typing.Any] = []
        self.memo_phase = False  # replaying memos, before new code runs
        self.memos_seen = 0  # memos this replay has handed back (it ends at the last one)
        self.rounds = 0  # depth of ParallelMode.WAIT groups the handler is inside
        # realtime publishes made by handler code (outside step bodies) in this pass: a
        # replaying pass skips the first run.keys["published"] of them (experimental.realtime)
        self.publishes = 0
        self.is_async = fn.is_handler_async
        self.busy_ms = 0  # virtual time the step body in progress declared (Simulation.busy)
        self.generation = engine.generation  # a rebuild from the store abandons this
        # The engine lock when the handler runs on a Worker's thread without it (sync
        # handlers): every call into the engine's bookkeeping takes it, user code never holds
        # it. NO_LOCK where the driver already holds the lock (async slices, simulations).
        self.guard: typing.Any = NO_LOCK
        # execution="requests" (see engine.Engine.slice): each slice is one request, as
        # against Inngest's server. ``target`` is the planned step this request runs (None: a
        # discovery request), ``planned`` the parallel steps this request planned,
        # ``progressed`` whether it recorded a step or planned some (the run is requeued).
        self.requests = False
        self.target: str | None = None
        self.planned: list[str] = []
        self.progressed = False
        self.parallel = 0  # depth of parallel groups the handler is inside
        self.hooks_ended = False  # after_execution already heard this request end
        self.step_name = ""  # the user's id of the step being started (error messages)
        # Set per slice by the engine: no middleware, fault, limit, request model or
        # step-level flow control applies, so steps take their short path (step.py).
        self.fast = False
        self.ctx = engine.make_context(self)

    # step boundaries -----------------------------------------------------------------------
    def begin_step(self, step_id: str, op: str) -> str:
        if self.in_body is not None:
            raise NestedStep(step_id)
        if self.generation != self.engine.generation:
            raise Abandoned()
        self.step_name = step_id
        run = self.run
        if self.fast:  # no lock to take, no step limit, no finish timeout (see slice)
            if run.cancel_requested:
                raise CancelRun()
            return run.memos.next_id(step_id)
        with self.guard:
            if run.cancel_requested or self.engine.finish_timed_out(run):
                raise CancelRun()
            full_id = run.memos.next_id(step_id)
            if self.engine.limits and full_id not in run.memos:
                limits.check_step_count(len(run.memos), full_id)
        return full_id

    def lookup(self, full_id: str, op: str) -> typing.Any:
        with self.guard:
            memo = self.run.memos.get(full_id, MISSING)
        if memo is MISSING:
            if self.requests:
                self._new_step(full_id, op)
            return MISSING
        if memo[0] != op:
            raise errors.NonDeterminismError(
                f"step '{full_id}' was recorded as a {memo[0]} step but the code now runs it "
                f"as a {op} step; the function changed under a run in flight"
            )
        return memo

    def recorded(self, full_id: str, op: str) -> typing.Any:
        """:meth:`lookup` for the short path (no lock, no request model, no replay hooks)."""
        memo = self.run.memos.get(full_id, MISSING)
        if memo is not MISSING and memo[0] != op:
            return self.lookup(full_id, op)  # raises NonDeterminismError
        return memo

    async def lookup_async(self, full_id: str, op: str) -> typing.Any:
        """:meth:`lookup`, telling middleware when a replay runs out of memos."""
        memo = self.lookup(full_id, op)
        if self.memo_phase and self._replay_done(memo):
            self.memo_phase = False
            await self.engine.new_code_reached(self)
        return memo

    def _new_step(self, full_id: str, op: str) -> None:
        """``execution="requests"``: the handler reached a step with no memo. As the SDK
        decides: a request targeting another step skips it; a discovery request inside a
        parallel group plans it (a run or send step is queued to be targeted; a sleep, wait
        or invoke parks as it would alone) and goes on with the next branch."""
        if self.target is not None and full_id != self.target:
            raise SkipStep(self.step_name)
        if self.parallel and self.target is None and op in (OP_RUN, OP_SEND):
            if full_id not in self.planned:
                self.planned.append(full_id)
            self.progressed = True
            raise SyncPark()

    async def park(self) -> None:
        """Suspend here: an async handler keeps its place (PARK); with
        ``execution="requests"`` the request ends and the next one replays."""
        if self.requests:
            raise SyncPark()
        await PARK

    def request_ended(self) -> None:
        """A step was recorded: with ``execution="requests"`` the request ends here."""
        if self.requests:
            self.progressed = True
            raise SyncPark()

    def _replay_done(self, memo: typing.Any) -> bool:
        # As in the SDK, new code starts right after the last recorded step is handed back
        # (not at the next step), so logs and middleware between the two count as new.
        if memo is MISSING:
            return True
        self.memos_seen += 1
        return self.memos_seen >= len(self.run.memos)

    def lookup_sync(self, full_id: str, op: str) -> typing.Any:
        """:meth:`lookup`, telling middleware when a replay runs out of memos."""
        memo = self.lookup(full_id, op)
        if self.memo_phase and self._replay_done(memo):
            self.memo_phase = False
            self.engine.new_code_reached_sync(self)
        return memo

    def unwrap(self, full_id: str, memo: list) -> typing.Any:
        if memo[1]:
            return fresh_copy(memo[2])
        err = memo[2]
        raise errors.StepError(err.get("message", ""), err.get("name", "Error"), err.get("stack"))

    def unwrap_event(self, full_id: str, memo: list) -> Event | None:
        payload = self.unwrap(full_id, memo)
        return None if payload is None else Event.from_payload(payload)

    def nested_error(self) -> errors.CodedError:
        """What a step whose body started another step fails with (the SDK's error)."""
        return errors.CodedError(errors.ErrorCode.STEP_NESTED, "Nested steps are not supported.",
                                 is_retriable=False)

    def unserializable_error(self, step_id: str) -> errors.OutputUnserializableError:
        """A step returned what JSON can't hold: the run fails at once, as in the SDK."""
        return errors.OutputUnserializableError(
            f'"{step_id}" returned unserializable data', step_id=step_id, is_retriable=False)

    # step bodies ---------------------------------------------------------------------------
    def retry_not_due(self, full_id: str) -> bool:
        """True if the step must not run its body now: a retry not yet due, its previous
        execution still in flight, or no concurrency slot for it (it then waits for one)."""
        with self.guard:
            pending = self.run.pending.get(full_id)
            if pending is not None:
                if pending.kind == "hold":
                    return True
                if pending.kind == "retry" and pending.due_ms > self.engine.now_ms():
                    return True
            return not self.engine.body_may_start(self.run)

    def enter_body(self, full_id: str) -> str | None:
        run = self.run
        if not run.pending:
            self.ctx.attempt = run.attempt
        else:
            with self.guard:
                pending = run.pending.get(full_id)
                self.ctx.attempt = pending.data if pending is not None and \
                    pending.kind == "retry" else run.attempt
        token = self.in_body
        self.in_body = full_id
        self.busy_ms = 0
        _CURRENT.set(self)
        return token

    def exit_body(self, token: str | None) -> None:
        self.in_body = token

    def step_failed(self, full_id: str, err: BaseException, op: str = OP_RUN) -> bool:
        """Record a failed attempt; True if a retry is scheduled (park), False if the
        step's error is now memoized."""
        with self.guard:
            retrying = self.engine.step_failed(self, full_id, err, op)
        if self.requests:
            # the request reports the failure and ends; a recorded error lets the next
            # request go on (a retry waits for its timer)
            self.progressed = self.progressed or not retrying
            raise SyncPark()
        return retrying

    def prepare_output(self, full_id: str, op: str, out: typing.Any) -> typing.Any:
        """Middleware's ``transform_output`` then the JSON round trip; raising here is a
        failed attempt of the step."""
        return self.engine.prepare_output(self, full_id, op, out)

    async def prepare_output_async(self, full_id: str, op: str, out: typing.Any) -> typing.Any:
        """:meth:`prepare_output` for async handlers (middleware hooks may await I/O)."""
        return await self.engine.prepare_output_async(self, full_id, op, out)

    def run_step_returned(self, full_id: str, out: typing.Any, entered: bool,
                          token: str | None) -> typing.Any:
        """A ``step.run`` body on the short path returned ``out`` (checked): record it and
        return what the handler gets, or MISSING (a busy step, recorded later). ``entered``:
        the kernel entered the body (``open_step``) and records it, unless the body declared
        busy time; else the body was entered with ``token``."""
        if entered:
            result = self.record(full_id, out)
            if result is not kernel.SLOW:
                return result
        else:
            self.in_body = token
        return self.engine.step_succeeded(self, full_id, OP_RUN, out)

    def step_succeeded(self, full_id: str, op: str, out: typing.Any,
                       defer: bool = False) -> typing.Any:
        """Record the step. ``defer``: an async handler with group commit awaits
        ``engine.commit_async()`` itself, sharing the commit with other runs."""
        with self.guard:
            return self.engine.step_succeeded(self, full_id, op, out, defer=defer)

    def resolve_sync(self, awaitable: typing.Awaitable[typing.Any]) -> typing.Any:
        return self.engine.resolve(awaitable)

    # suspensions ---------------------------------------------------------------------------
    def park_sleep(self, full_id: str, ms: int, *, relative: bool) -> None:
        with self.guard:
            self.engine.park_sleep(self, full_id, ms, relative)

    def park_wait(self, full_id: str, event: str, if_exp: str | None, timeout_ms: int) -> None:
        with self.guard:
            self.engine.park_wait(self, full_id, event, if_exp, timeout_ms)

    def park_invoke(self, full_id: str, app_id: str | None, function_id: str,
                    data: typing.Mapping[str, object] | None, timeout_ms: int | None) -> None:
        with self.guard:
            self.engine.park_invoke(self, full_id, app_id, function_id, data, timeout_ms)

    def send_events(self, events: list[Event]) -> list[str]:
        return self.engine.accept(events, origin=self.run.id)

    # middleware ----------------------------------------------------------------------------
    def call_hooks_sync(self, name: str, *args: typing.Any, reverse: bool = False) -> None:
        mws = reversed(self.middleware) if reverse else self.middleware
        for mw in mws:
            out = getattr(mw, name)(*args)
            if inspect.isawaitable(out):
                self.engine.resolve(out)

    async def call_hooks_async(self, name: str, *args: typing.Any,
                               reverse: bool = False) -> None:
        mws = reversed(self.middleware) if reverse else self.middleware
        for mw in mws:
            out = getattr(mw, name)(*args)
            if inspect.isawaitable(out):
                await out

    def after_send_sync(self, ids: list[str]) -> None:
        self.call_hooks_sync("after_send_events", SendEventsResult(ids=ids), reverse=True)

    async def after_send_async(self, ids: list[str]) -> None:
        await self.call_hooks_async("after_send_events", SendEventsResult(ids=ids), reverse=True)
