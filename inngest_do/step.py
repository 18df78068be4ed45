"""The step tools a handler gets as ``ctx.step`` and ``ctx.group``.

:class:`Step` (async handlers) and :class:`StepSync` (sync handlers) have the Inngest SDK's
methods and arguments. They hold no state of their own: every decision (is this step
memoized, is a retry due, where does a sleep end) belongs to the run's
:class:`~inngest_do.execution.Execution`; these classes only run step bodies and park.

Parking: an async handler parks by awaiting :data:`PARK`, which yields a sentinel straight
to the engine's driver, so the coroutine keeps its place (no task or thread waits). When the
engine resumes it, the step looks at its memo again. A sync handler cannot keep its place, so
it raises :class:`SyncPark` and is replayed from the start against its memos next time.
"""

from __future__ import annotations

import datetime
import functools
import inspect
import typing

from . import errors
from .config import ParallelMode
from .durations import to_ms, until_ms
from .event import Event
from .execution import (
    MISSING,
    OP_INVOKE,
    OP_RUN,
    OP_SEND,
    OP_SLEEP,
    OP_WAIT,
    PARK,
    ROUND,
    Execution,
    NestedStep,
    SkipStep,
    SyncPark,
    passes_through,
)
from .kernel import BEGUN, BODY, SLOW
from .serializer import deserialize, serialize

if typing.TYPE_CHECKING:
    from .function import Function
    from .step_ai import AI, AISync

T = typing.TypeVar("T")

# Step outputs that are never awaitable: the common case skips inspect.isawaitable's call.
_PLAIN = frozenset((type(None), int, str, bool, float, dict, list, tuple))
# Step outputs recorded as they are (the output check passes them through): no check call.
_SCALAR = frozenset((type(None), int, str, bool))


def _step_id(step_id: object) -> str:
    if not isinstance(step_id, str) or not step_id:
        raise TypeError(f"step_id: expected a non-empty str, got {step_id!r}")
    return step_id


def _events_list(events: Event | list[Event]) -> list[Event]:
    if isinstance(events, Event):
        return [events]
    if isinstance(events, (list, tuple)) and all(isinstance(e, Event) for e in events):
        return list(events)
    raise TypeError("events: expected an Event or a list of Events")


def _wait_timeout(timeout: int | datetime.timedelta) -> int:
    return to_ms(timeout, what="wait_for_event.timeout", min_ms=0)


def _invoke_timeout(timeout: int | datetime.timedelta | None) -> int | None:
    if timeout is None:
        return None
    return to_ms(timeout, what="invoke.timeout", min_ms=1)


class Step:
    """Step methods for async handlers (``ctx.step``)."""

    def __init__(self, execution: Execution) -> None:
        self._ex = execution

    @property
    def _target_hashed_id(self) -> str | None:
        # The SDK's attribute, read by code that tells a targeted request apart: the step
        # this request runs with execution="requests" (ids are not hashed here), else None.
        return self._ex.target

    @functools.cached_property
    def ai(self) -> AI:
        """Model calls as steps (``ctx.step.ai.infer``); imported on first use (httpx)."""
        from .step_ai import AI

        return AI(self)

    async def run(
        self,
        step_id: str,
        handler: typing.Callable[..., typing.Awaitable[T] | T],
        *handler_args: typing.Any,
        output_type: object = None,
    ) -> T:
        """Run ``handler(*handler_args)`` once, retrying it on error; its result is memoized."""
        ex = self._ex
        # The kernel's short path (ex.fast: nothing but the engine's own bookkeeping hears of
        # this step; see Execution.open_step): one call begins the step and answers its memo,
        # or enters its body (BODY). The decisions are the code's below, which goes on from
        # where the kernel stopped (BEGUN) or does it all (SLOW).
        got = SLOW if output_type is not None else ex.open_step(step_id)
        if got is SLOW:
            full_id = ex.begin_step(_step_id(step_id), OP_RUN)
        elif got is BODY or got is BEGUN:
            full_id = ex.full_id
        else:
            return got  # the recorded output
        while True:
            if got is BODY:  # entered by the kernel (not nested: no token to restore)
                got = None
                fast = entered = True
                token = None
            else:
                entered = False
                # ex.fast: as above, the short path: the same decisions, fewer calls.
                fast = ex.fast and output_type is None and not ex.memo_phase
                if fast:
                    memo = ex.recorded(full_id, OP_RUN)
                else:
                    memo = await ex.lookup_async(full_id, OP_RUN)
                if memo is not MISSING:
                    return _typed(ex, ex.unwrap(full_id, memo), output_type)
                if (not fast or ex.run.pending) and ex.retry_not_due(full_id):
                    await ex.park()
                    continue
                token = ex.enter_body(full_id)
            try:
                if fast:
                    out = handler(*handler_args)
                    if type(out) not in _SCALAR:
                        if type(out) not in _PLAIN and inspect.isawaitable(out):
                            out = await out
                        out = ex.checked(full_id, out)
                else:
                    if ex.engine.faults:
                        ex.engine.inject_fault(ex, full_id)
                    out = handler(*handler_args)
                    if inspect.isawaitable(out):
                        out = await out
                    if output_type is not None:  # a serializer failing is a failed attempt
                        out = serialize(ex.engine.client_of(ex.fn), out, output_type)
                    out = await ex.prepare_output_async(full_id, OP_RUN, out)
            except NestedStep:
                # As in the SDK, the outer step fails for good with "Nested steps are not
                # supported." and the handler sees it as a StepError.
                ex.exit_body(token)
                ex.step_failed(full_id, ex.nested_error())
                continue
            except errors.OutputUnserializableError:
                ex.exit_body(token)
                raise ex.unserializable_error(step_id) from None
            except errors.NonRetriableError as err:
                # As in the SDK, it goes up to the function, which fails at once (the step is
                # not recorded). (The SDK does the same with RetryAfterError; here that one
                # stays a retry of the step, after its delay.) step.ai's own errors stay
                # the step's.
                ex.exit_body(token)
                if not getattr(err, "step_level", False):
                    raise
                ex.step_failed(full_id, err)
                continue
            except BaseException as err:  # any exception: a failed attempt of the step
                ex.exit_body(token)
                if passes_through(err):  # a Worker cancelling the slice
                    raise
                if ex.step_failed(full_id, err):
                    await ex.park()
                continue
            if fast:
                result = ex.run_step_returned(full_id, out, entered, token)
                if result is MISSING:  # a busy step: its result is recorded later
                    await ex.park()
                    continue
                if ex.rounds:
                    await ROUND
                return result
            ex.in_body = token
            group = ex.engine.group_commit  # a commit shared with other runs, awaited
            result = ex.step_succeeded(full_id, OP_RUN, out, group)
            if group:
                await ex.engine.commit_async()  # recorded before the handler continues
            if result is MISSING:  # a busy step: its result is recorded later
                await ex.park()
                continue
            await ex.engine.step_request_ended_async(ex)
            if ex.rounds:
                await ROUND
            return _typed(ex, result, output_type)

    async def sleep(self, step_id: str, duration: int | datetime.timedelta) -> None:
        """Sleep for ``duration`` (ms or timedelta) on a durable timer."""
        ms = to_ms(duration, what="sleep.duration", min_ms=0)
        ex = self._ex
        full_id = ex.begin_step(_step_id(step_id), OP_SLEEP)
        while True:
            if ex.fast and not ex.memo_phase:  # the short path, as in run()
                if ex.recorded(full_id, OP_SLEEP) is not MISSING:
                    return
                if ex.engine.sleep_fast(ex, full_id, ms):
                    return  # it ended in this slice: nothing could happen meanwhile
                await PARK
                continue
            if (await ex.lookup_async(full_id, OP_SLEEP)) is not MISSING:
                return
            ex.park_sleep(full_id, ms, relative=True)
            await ex.park()

    async def sleep_until(self, step_id: str, until: datetime.datetime) -> None:
        """Sleep until ``until`` (naive datetimes are UTC)."""
        if not isinstance(until, datetime.datetime):
            raise TypeError(f"until: expected a datetime, got {type(until).__name__}")
        ex = self._ex
        full_id = ex.begin_step(_step_id(step_id), OP_SLEEP)
        while (await ex.lookup_async(full_id, OP_SLEEP)) is MISSING:
            if ex.fast and not ex.memo_phase:  # as sleep(): it may end in this slice
                engine = ex.engine
                if engine.sleep_fast(ex, full_id, max(until_ms(until) - engine.now_ms(), 0)):
                    return
                await PARK
                continue
            ex.park_sleep(full_id, until_ms(until), relative=False)
            await ex.park()

    async def wait_for_event(
        self,
        step_id: str,
        *,
        event: str,
        if_exp: str | None = None,
        timeout: int | datetime.timedelta,
    ) -> Event | None:
        """The first matching event after the wait starts, or None at the timeout."""
        ms = _wait_timeout(timeout)
        ex = self._ex
        full_id = ex.begin_step(_step_id(step_id), OP_WAIT)
        while True:
            memo = await ex.lookup_async(full_id, OP_WAIT)
            if memo is not MISSING:
                return ex.unwrap_event(full_id, memo)
            ex.park_wait(full_id, event, if_exp, ms)
            await ex.park()

    async def send_event(self, step_id: str, events: Event | list[Event]) -> list[str]:
        """Send events, once: on replay the recorded ids come back and nothing is resent."""
        evs = _events_list(events)
        ex = self._ex
        full_id = ex.begin_step(_step_id(step_id), OP_SEND)
        while True:
            memo = await ex.lookup_async(full_id, OP_SEND)
            if memo is not MISSING:
                return ex.unwrap(full_id, memo)
            await ex.call_hooks_async("before_send_events", evs)
            try:
                ids = ex.send_events(evs)
            except Exception as err:  # noqa: BLE001 - a failed attempt of the user's step
                if ex.step_failed(full_id, err, OP_SEND):
                    await ex.park()
                continue
            await ex.after_send_async(ids)
            ids = await ex.prepare_output_async(full_id, OP_SEND, ids)
            group = ex.engine.group_commit  # a commit shared with other runs, awaited
            result = ex.step_succeeded(full_id, OP_SEND, ids, group)
            if group:
                await ex.engine.commit_async()
            await ex.engine.step_request_ended_async(ex)
            if ex.rounds:
                await ROUND
            return result

    async def invoke(
        self,
        step_id: str,
        *,
        function: Function[typing.Any],
        data: typing.Mapping[str, object] | None = None,
        timeout: int | datetime.timedelta | None = None,
        v: str | None = None,
    ) -> typing.Any:
        """Run another function of this app with ``data`` and return its output (read
        back into the function's ``output_type`` by the client's serializer)."""
        out = await self.invoke_by_id(
            step_id, function_id=_local_id(function), data=data, timeout=timeout, v=v
        )
        return _typed(self._ex, out, getattr(function, "output_type", None))

    async def invoke_by_id(
        self,
        step_id: str,
        *,
        app_id: str | None = None,
        function_id: str,
        data: typing.Mapping[str, object] | None = None,
        timeout: int | datetime.timedelta | None = None,
        v: str | None = None,
    ) -> typing.Any:
        """Run the function ``function_id`` with ``data`` and return its output."""
        ms = _invoke_timeout(timeout)
        ex = self._ex
        full_id = ex.begin_step(_step_id(step_id), OP_INVOKE)
        while True:
            memo = await ex.lookup_async(full_id, OP_INVOKE)
            if memo is not MISSING:
                return ex.unwrap(full_id, memo)
            ex.park_invoke(full_id, app_id, function_id, data, ms)
            await ex.park()


class StepSync:
    """Step methods for sync handlers (``ctx.step`` of a ``ContextSync``)."""

    def __init__(self, execution: Execution) -> None:
        self._ex = execution

    @property
    def _target_hashed_id(self) -> str | None:
        # The SDK's attribute, read by code that tells a targeted request apart: the step
        # this request runs with execution="requests" (ids are not hashed here), else None.
        return self._ex.target

    @functools.cached_property
    def ai(self) -> AISync:
        """Model calls as steps (``ctx.step.ai.infer``); imported on first use (httpx)."""
        from .step_ai import AISync

        return AISync(self)

    def run(
        self,
        step_id: str,
        handler: typing.Callable[..., T],
        *handler_args: typing.Any,
        output_type: object = None,
    ) -> T:
        """Run ``handler(*handler_args)`` once, retrying it on error; its result is memoized."""
        ex = self._ex
        got = SLOW if output_type is not None else ex.open_step(step_id)  # see Step.run
        if got is BODY:  # entered by the kernel (not nested: no token to restore)
            full_id = ex.full_id
            fast = entered = True
            token = None
        else:
            if got is SLOW:
                full_id = ex.begin_step(_step_id(step_id), OP_RUN)
            elif got is BEGUN:
                full_id = ex.full_id
            else:
                return got  # the recorded output
            entered = False
            fast = ex.fast and output_type is None and not ex.memo_phase  # see Step.run
            memo = ex.recorded(full_id, OP_RUN) if fast else ex.lookup_sync(full_id, OP_RUN)
            if memo is not MISSING:
                return _typed(ex, ex.unwrap(full_id, memo), output_type)
            if (not fast or ex.run.pending) and ex.retry_not_due(full_id):
                raise SyncPark()
            token = ex.enter_body(full_id)
        try:
            if fast:
                out = handler(*handler_args)
                if type(out) not in _SCALAR:
                    if type(out) not in _PLAIN and inspect.isawaitable(out):
                        out = ex.resolve_sync(out)
                    out = ex.checked(full_id, out)
            else:
                if ex.engine.faults:
                    ex.engine.inject_fault(ex, full_id)
                out = handler(*handler_args)
                if inspect.isawaitable(out):
                    out = ex.resolve_sync(out)
                if output_type is not None:  # a serializer failing is a failed attempt
                    out = serialize(ex.engine.client_of(ex.fn), out, output_type)
                out = ex.prepare_output(full_id, OP_RUN, out)
        except NestedStep:
            # As in the SDK, the outer step fails for good (see Step.run).
            ex.exit_body(token)
            ex.step_failed(full_id, ex.nested_error())
            return ex.unwrap(full_id, ex.lookup_sync(full_id, OP_RUN))
        except errors.OutputUnserializableError:
            ex.exit_body(token)
            raise ex.unserializable_error(step_id) from None
        except errors.NonRetriableError as err:
            ex.exit_body(token)  # to the function, as in the SDK (see Step.run)
            if not getattr(err, "step_level", False):
                raise
            ex.step_failed(full_id, err)
            return ex.unwrap(full_id, ex.lookup_sync(full_id, OP_RUN))
        except BaseException as err:  # any exception: a failed attempt of the step
            ex.exit_body(token)
            if passes_through(err):
                raise
            if ex.step_failed(full_id, err):
                raise SyncPark() from None
            return ex.unwrap(full_id, ex.lookup_sync(full_id, OP_RUN))
        if fast:
            result = ex.run_step_returned(full_id, out, entered, token)
            if result is MISSING:  # a busy step: its result is recorded later
                raise SyncPark()
            return result
        ex.in_body = token
        result = ex.step_succeeded(full_id, OP_RUN, out)
        if result is MISSING:  # a busy step: its result is recorded later
            raise SyncPark()
        ex.engine.step_request_ended(ex)
        return _typed(ex, result, output_type)

    def sleep(self, step_id: str, duration: int | datetime.timedelta) -> None:
        """Sleep for ``duration`` (ms or timedelta) on a durable timer."""
        ms = to_ms(duration, what="sleep.duration", min_ms=0)
        ex = self._ex
        full_id = ex.begin_step(_step_id(step_id), OP_SLEEP)
        if ex.lookup_sync(full_id, OP_SLEEP) is MISSING:
            ex.park_sleep(full_id, ms, relative=True)
            raise SyncPark()

    def sleep_until(self, step_id: str, until: datetime.datetime) -> None:
        """Sleep until ``until`` (naive datetimes are UTC)."""
        if not isinstance(until, datetime.datetime):
            raise TypeError(f"until: expected a datetime, got {type(until).__name__}")
        ex = self._ex
        full_id = ex.begin_step(_step_id(step_id), OP_SLEEP)
        if ex.lookup_sync(full_id, OP_SLEEP) is MISSING:
            ex.park_sleep(full_id, until_ms(until), relative=False)
            raise SyncPark()

    def wait_for_event(
        self,
        step_id: str,
        *,
        event: str,
        if_exp: str | None = None,
        timeout: int | datetime.timedelta,
    ) -> Event | None:
        """The first matching event after the wait starts, or None at the timeout."""
        ms = _wait_timeout(timeout)
        ex = self._ex
        full_id = ex.begin_step(_step_id(step_id), OP_WAIT)
        memo = ex.lookup_sync(full_id, OP_WAIT)
        if memo is not MISSING:
            return ex.unwrap_event(full_id, memo)
        ex.park_wait(full_id, event, if_exp, ms)
        raise SyncPark()

    def send_event(self, step_id: str, events: Event | list[Event]) -> list[str]:
        """Send events, once: on replay the recorded ids come back and nothing is resent."""
        evs = _events_list(events)
        ex = self._ex
        full_id = ex.begin_step(_step_id(step_id), OP_SEND)
        memo = ex.lookup_sync(full_id, OP_SEND)
        if memo is not MISSING:
            return ex.unwrap(full_id, memo)
        ex.call_hooks_sync("before_send_events", evs)
        try:
            ids = ex.send_events(evs)
        except Exception as err:  # noqa: BLE001 - a failed attempt of the user's step
            if ex.step_failed(full_id, err, OP_SEND):
                raise SyncPark() from None
            return ex.unwrap(full_id, ex.lookup_sync(full_id, OP_SEND))
        ex.after_send_sync(ids)
        ids = ex.prepare_output(full_id, OP_SEND, ids)
        result = ex.step_succeeded(full_id, OP_SEND, ids)
        ex.engine.step_request_ended(ex)
        return result

    def invoke(
        self,
        step_id: str,
        *,
        function: Function[typing.Any],
        data: typing.Mapping[str, object] | None = None,
        timeout: int | datetime.timedelta | None = None,
        v: str | None = None,
    ) -> typing.Any:
        """Run another function of this app with ``data`` and return its output (read
        back into the function's ``output_type`` by the client's serializer)."""
        out = self.invoke_by_id(
            step_id, function_id=_local_id(function), data=data, timeout=timeout, v=v
        )
        return _typed(self._ex, out, getattr(function, "output_type", None))

    def invoke_by_id(
        self,
        step_id: str,
        *,
        app_id: str | None = None,
        function_id: str,
        data: typing.Mapping[str, object] | None = None,
        timeout: int | datetime.timedelta | None = None,
        v: str | None = None,
    ) -> typing.Any:
        """Run the function ``function_id`` with ``data`` and return its output."""
        ms = _invoke_timeout(timeout)
        ex = self._ex
        full_id = ex.begin_step(_step_id(step_id), OP_INVOKE)
        memo = ex.lookup_sync(full_id, OP_INVOKE)
        if memo is not MISSING:
            return ex.unwrap(full_id, memo)
        ex.park_invoke(full_id, app_id, function_id, data, ms)
        raise SyncPark()


def _typed(ex: Execution, value: typing.Any, output_type: object) -> typing.Any:
    """A recorded output as the handler gets it: with an ``output_type``, the serving
    client's serializer reads it back (the same on the live path and on replay, since the
    value handed back live is the recorded one too)."""
    if output_type is None:
        return value
    return deserialize(ex.engine.client_of(ex.fn), value, output_type)


def _local_id(function: object) -> str:
    local_id = getattr(function, "local_id", None)
    if not isinstance(local_id, str):
        raise TypeError(f"function: expected an inngest_do Function, got {function!r}")
    return local_id


class Group:
    """``ctx.group`` for async handlers."""

    def __init__(self, execution: Execution) -> None:
        self._ex = execution

    async def parallel(
        self,
        callables: tuple[typing.Callable[[], typing.Awaitable[T]], ...],
        parallel_mode: ParallelMode = ParallelMode.WAIT,
    ) -> tuple[T, ...]:
        """Run the step callables concurrently; their results in order.

        Each callable gets its own coroutine; when one parks (a sleep, a wait, a retry delay)
        the others go on. ``ParallelMode.WAIT`` runs the branches' steps in rounds (each
        branch's next step, then the next round: a.1, b.1, a.2, b.2); ``ParallelMode.RACE``
        lets each branch go on to its next step without waiting for the others. Both return
        every branch's result, in order.
        """
        if not isinstance(parallel_mode, ParallelMode):
            raise TypeError("parallel_mode: expected a ParallelMode")
        for i, cb in enumerate(callables):
            if not callable(cb):
                raise TypeError(f"callables[{i}]: expected a callable, got {cb!r}")
        if self._ex.requests:
            return await _parallel_requests(self._ex, callables, parallel_mode)
        children = [_child(cb) for cb in callables]
        wait = parallel_mode is ParallelMode.WAIT
        ex = self._ex
        ex.parallel += 1  # a branch's sleep parks: the other branches run meanwhile
        if wait:
            ex.rounds += 1
        try:
            return await _Parallel(children)
        finally:
            ex.parallel -= 1
            if wait:
                ex.rounds -= 1


async def _parallel_requests(ex: Execution, callables: tuple[typing.Callable[[], typing.Any], ...],
                             mode: ParallelMode) -> tuple:
    """``execution="requests"``: the SDK's group. Each branch runs until its first new step,
    which it plans (a discovery request) or runs (the request's target) or skips (another
    step is targeted); if any branch did one of those the request ends there."""
    results: list[typing.Any] = []
    ended = False
    ex.parallel += 1
    try:
        for cb in callables:
            try:
                results.append(await cb())
            except SyncPark:
                ended = True
            except SkipStep:
                pass
    finally:
        ex.parallel -= 1
    if ended:
        _note_mode(ex, mode)
        raise SyncPark()
    return tuple(results)


def _note_mode(ex: Execution, mode: ParallelMode) -> None:
    # RACE: after each targeted step a discovery request plans the branch's next step
    if mode is ParallelMode.RACE:
        ex.run.keys["race"] = True


async def _child(cb: typing.Callable[[], typing.Awaitable[T]]) -> T:
    return await cb()


class _Parallel:
    """Drives child coroutines in turn, parking upward only when all of them park."""

    def __init__(self, children: list[typing.Coroutine]) -> None:
        self._children = children

    def __await__(self) -> typing.Generator[typing.Any, typing.Any, tuple]:
        children = self._children
        results: list[typing.Any] = [MISSING] * len(children)
        live = list(range(len(children)))
        parked: list[int] = []
        try:
            while live:
                still: list[int] = []
                for i in live:
                    coro = children[i]
                    send: typing.Any = None
                    exc: BaseException | None = None
                    while True:
                        try:
                            y = coro.throw(exc) if exc is not None else coro.send(send)
                        except StopIteration as stop:
                            results[i] = stop.value
                            break
                        if y is ROUND:
                            # a new step done: the next branch's turn (see _Round)
                            still.append(i)
                            break
                        if y is PARK:
                            still.append(i)
                            parked.append(i)
                            break
                        # a foreign awaitable (real I/O in a step body): pass it up
                        exc = None
                        try:
                            send = yield y
                        except BaseException as e:  # noqa: BLE001 - forwarded into the child
                            exc, send = e, None
                live = still
                if live and len(parked) == len(live):
                    yield PARK  # every branch waits: the run parks
                parked.clear()
            return tuple(results)
        finally:
            for coro in children:
                coro.close()


class GroupSync:
    """``ctx.group`` for sync handlers: callables run in order, parking ones are set aside."""

    def __init__(self, execution: Execution) -> None:
        self._ex = execution

    def parallel(
        self,
        callables: tuple[typing.Callable[[], T], ...],
        parallel_mode: ParallelMode = ParallelMode.WAIT,
    ) -> tuple[T, ...]:
        """Run the step callables; their results in order (see :meth:`Group.parallel`)."""
        if not isinstance(parallel_mode, ParallelMode):
            raise TypeError("parallel_mode: expected a ParallelMode")
        for i, cb in enumerate(callables):
            if not callable(cb):
                raise TypeError(f"callables[{i}]: expected a callable, got {cb!r}")
        if self._ex.requests:
            return _parallel_requests_sync(self._ex, callables, parallel_mode)
        results = []
        parked = False
        for cb in callables:
            try:
                value = cb()
            except SyncPark:
                parked = True
                continue
            results.append(value)
        if parked:
            raise SyncPark()
        return tuple(results)


def _parallel_requests_sync(ex: Execution, callables: tuple[typing.Callable[[], typing.Any], ...],
                            mode: ParallelMode) -> tuple:
    """:func:`_parallel_requests` for sync handlers."""
    results: list[typing.Any] = []
    ended = False
    ex.parallel += 1
    try:
        for cb in callables:
            try:
                results.append(cb())
            except SyncPark:
                ended = True
            except SkipStep:
                pass
    finally:
        ex.parallel -= 1
    if ended:
        _note_mode(ex, mode)
        raise SyncPark()
    return tuple(results)
