"""``mocked.trigger``: one run of a function, to its end, on a virtual clock."""

from __future__ import annotations

import collections.abc
import copy
import dataclasses
import functools
import typing

from ... import errors
from ...client import Inngest as _Inngest
from ...engine import Engine
from ...event import Event
from ...execution import (
    MISSING,
    OP_INVOKE,
    OP_RUN,
    OP_SEND,
    OP_SLEEP,
    OP_WAIT,
    CancelRun,
    Execution,
    encode_output,
    passes_through,
)
from ...function import Function
from ...runs import RunStatus
from ...serializer import serialize
from ...step import Step, StepSync, _typed
from ...testing import Simulation
from .client import MOCK_EVENT_ID
from .consts import Status, Timeout
from .errors import UnstubbedStepError

T = typing.TypeVar("T")


@dataclasses.dataclass
class _Result:
    """How the run ended: ``output`` is what the handler returned (not a JSON copy), and
    ``error`` the exception that failed the run (a step's own exception when a step that
    ran out of attempts failed it)."""

    error: Exception | None
    output: object
    status: Status


def trigger(
    fn: Function[typing.Any],
    event: Event | list[Event],
    client: _Inngest,
    *,
    step_stubs: dict[str, object] | None = None,
) -> _Result:
    """Run ``fn`` once for ``event`` (or a batch of events) and return how it ended.

    Args:
        fn: The function (from ``create_function`` on any client).
        event: The triggering event, or a non-empty list of them (``ctx.events``).
        client: The client whose middleware and logger the run uses (``mocked.Inngest``).
        step_stubs: Step id (as written) -> what the step returns instead of running;
            every occurrence of the id gets it. A wait's stub is an ``Event`` (or
            :data:`Timeout`); other stubs are JSON values.

    Raises:
        UnstubbedStepError: a ``wait_for_event``, ``invoke`` or ``step.ai.infer`` had no stub.
    """
    if not isinstance(fn, Function):
        raise TypeError(f"fn: expected a Function (from create_function), got {fn!r}")
    events = _events(event)
    if not isinstance(client, _Inngest):
        raise TypeError(f"client: expected an Inngest client (mocked.Inngest), got {client!r}")
    stubs = _stubs(step_stubs)

    box = _Box()
    mock_fn = copy.copy(fn)
    mock_fn.handler = _capturing(fn.handler, box, fn.is_handler_async)
    mock_fn.on_failure_fn = None  # a failure handler is another function: not run here
    owner = fn.client
    saved = (client._engine, owner._engine if owner is not None else None)
    sim = _MockSimulation(client, functions=[])
    engine = typing.cast(_MockEngine, sim.engine)
    engine.stubs = stubs
    try:
        if owner is not None:
            # The handler's own client sends into this run's engine too: nothing leaks
            # into a real engine from a unit test.
            owner._engine = engine
        engine.register_only(mock_fn, client)
        run = engine.create_run(mock_fn, [e.to_payload() for e in events])
        sim.run_until_idle()
        state = run  # the live object (finished runs leave engine.runs)
    finally:
        client._engine = saved[0]
        if owner is not None:
            owner._engine = saved[1]
    if engine.stub_error is not None:
        raise engine.stub_error
    if engine.unstubbed is not None:
        raise UnstubbedStepError(engine.unstubbed)
    if state.status is RunStatus.COMPLETED:
        # As the SDK's: with a serializer and output_type, the output as it is recorded.
        output = serialize(client, box.output, mock_fn.output_type)
        return _Result(error=None, output=output, status=Status.COMPLETED)
    if state.status is RunStatus.FAILED:
        return _Result(error=engine.original_error(box.error, state.error), output=None,
                       status=Status.FAILED)
    if state.status is RunStatus.CANCELLED:  # e.g. its timeouts.finish passed
        return _Result(error=Exception(f"the run was cancelled: {state.reason}"), output=None,
                       status=Status.FAILED)
    raise RuntimeError(f"mocked.trigger: the run of {fn.id!r} did not finish "
                       f"(status {state.status.value})")


def _events(event: object) -> list[Event]:
    if isinstance(event, Event):
        return [event]
    if isinstance(event, list):
        if not event:
            raise ValueError("event: must provide at least 1 event")
        for i, ev in enumerate(event):
            if not isinstance(ev, Event):
                raise TypeError(f"event[{i}]: expected an Event, got {type(ev).__name__}")
        return list(event)
    raise TypeError(f"event: expected an Event or a list of Events, got {type(event).__name__}")


def _stubs(step_stubs: object) -> dict[str, object]:
    if step_stubs is None:
        return {}
    if not isinstance(step_stubs, collections.abc.Mapping):
        raise TypeError(f"step_stubs: expected a dict of step id to value, got "
                        f"{type(step_stubs).__name__}")
    for key in step_stubs:
        if not isinstance(key, str) or not key:
            raise TypeError(f"step_stubs: keys must be non-empty step ids, got {key!r}")
    return dict(step_stubs)


class _Box:
    """What the handler's last call returned or raised."""

    __slots__ = ("error", "output")

    def __init__(self) -> None:
        self.output: object = None
        self.error: BaseException | None = None


def _capturing(handler: typing.Callable[..., typing.Any], box: _Box,
               is_async: bool) -> typing.Callable[..., typing.Any]:
    # The run records a JSON copy of the output; the SDK's mocked returns the object itself
    # (a tuple stays a tuple), so the handler's own return value is kept aside.
    if is_async:
        @functools.wraps(handler)
        async def run_async(ctx: typing.Any) -> typing.Any:
            try:
                box.output = await handler(ctx)
            except BaseException as err:
                if not passes_through(err):
                    box.error = err
                raise
            return box.output

        return run_async

    @functools.wraps(handler)
    def run_sync(ctx: typing.Any) -> typing.Any:
        try:
            box.output = handler(ctx)
        except BaseException as err:
            if not passes_through(err):
                box.error = err
            raise
        return box.output

    return run_sync


class _Unstubbed(CancelRun):
    """Ends the run at a step that needed a stub; ``trigger`` raises UnstubbedStepError."""


class _MockEngine(Engine):
    """An engine whose steps consult ``stubs`` first and whose sends deliver nothing."""

    stubs: dict[str, object]
    unstubbed: str | None = None
    stub_error: TypeError | None = None

    def register_only(self, fn: Function[typing.Any], client: _Inngest) -> None:
        """Make ``fn`` runnable with ``client``'s middleware, without its triggers (no
        event or cron starts another run) and without its on_failure function."""
        self._known_fns[fn.id] = fn
        self._fn_clients[fn.id] = client
        self.flow.register(fn)

    def accept(self, events: list[Event], *, origin: str | None = None) -> list[str]:
        return [MOCK_EVENT_ID for _ in events]

    def make_context(self, ex: Execution) -> typing.Any:
        ctx = super().make_context(ex)
        ctx.step = _StubStep(ex, self) if ex.is_async else _StubStepSync(ex, self)
        return ctx

    def step_failed(self, ex: Execution, full_id: str, err: BaseException,
                    op: str = OP_RUN) -> bool:
        retrying = super().step_failed(ex, full_id, err, op)
        if not retrying:
            self._final_step_errors.append(err)
        return retrying

    @functools.cached_property
    def _final_step_errors(self) -> list[BaseException]:
        return []

    def original_error(self, raised: BaseException | None, described: dict | None) -> Exception:
        """The exception to report for a failed run: a StepError the handler let through
        becomes the step's own exception (as the SDK's mocked reports it)."""
        if isinstance(raised, errors.StepError):
            for err in reversed(self._final_step_errors):
                if (isinstance(err, Exception) and type(err).__name__ == raised.name
                        and str(err) == raised.message):
                    return err
        if isinstance(raised, Exception):
            return raised
        info = described or {}
        return Exception(str(info.get("message", "the run failed")))

    def stub_memo(self, ex: Execution, step_id: str, full_id: str, op: str) -> list:
        """Record step ``full_id``'s stub as its memo (as if the step had completed)."""
        stub = self.stubs[step_id]
        value: object = None
        if op == OP_WAIT:
            if isinstance(stub, Event):
                value = stub.to_payload()
            elif stub is not Timeout and stub is not None:
                self.bad_stub(TypeError(
                    f"step_stubs[{step_id!r}]: a wait_for_event stub must be an Event or "
                    f"mocked.Timeout, got {type(stub).__name__}"))
        elif stub is not Timeout:
            try:
                value = encode_output(stub, f"step_stubs[{step_id!r}]")
            except errors.OutputUnserializableError as err:
                self.bad_stub(TypeError(str(err)))
        memo = [op, True, value]
        self._memoize(ex.run, full_id, memo, "step.stubbed")
        self.store.commit()
        return memo

    def bad_stub(self, err: TypeError) -> typing.NoReturn:
        """A stub that can't answer its step: ``trigger`` raises ``err`` (not the run)."""
        self.stub_error = err
        raise _Unstubbed()

    def must_stub(self, step_id: str) -> typing.NoReturn:
        self.unstubbed = step_id
        raise _Unstubbed()


def _answer(ex: Execution, engine: _MockEngine, step_id: str, full_id: str, op: str,
            memo: typing.Any) -> typing.Any:
    if memo is MISSING:
        memo = engine.stub_memo(ex, step_id, full_id, op)
    if op == OP_WAIT:
        return ex.unwrap_event(full_id, memo)
    return ex.unwrap(full_id, memo)


class _StubStep(Step):
    """``ctx.step`` of an async handler in a mocked run: stubbed ids answer at once."""

    def __init__(self, execution: Execution, engine: _MockEngine) -> None:
        super().__init__(execution)
        self._engine = engine

    async def _stubbed(self, step_id: str, op: str) -> typing.Any:
        ex = self._ex
        full_id = ex.begin_step(step_id, op)
        memo = await ex.lookup_async(full_id, op)
        return _answer(ex, self._engine, step_id, full_id, op, memo)

    @functools.cached_property
    def ai(self) -> typing.Any:  # type: ignore[override]
        return _StubAI(self)

    async def run(self, step_id: str, handler: typing.Callable[..., typing.Any],
                  *handler_args: typing.Any, output_type: object = None) -> typing.Any:
        if step_id in self._engine.stubs:  # a stub is a memo: read back into output_type
            return _typed(self._ex, await self._stubbed(step_id, OP_RUN), output_type)
        return await super().run(step_id, handler, *handler_args, output_type=output_type)

    async def sleep(self, step_id: str, duration: typing.Any) -> None:
        if step_id in self._engine.stubs:
            await self._stubbed(step_id, OP_SLEEP)
            return
        await super().sleep(step_id, duration)

    async def sleep_until(self, step_id: str, until: typing.Any) -> None:
        if step_id in self._engine.stubs:
            await self._stubbed(step_id, OP_SLEEP)
            return
        await super().sleep_until(step_id, until)

    async def wait_for_event(self, step_id: str, *, event: str, if_exp: str | None = None,
                             timeout: typing.Any) -> Event | None:
        if step_id in self._engine.stubs:
            return typing.cast("Event | None", await self._stubbed(step_id, OP_WAIT))
        self._engine.must_stub(step_id)

    async def send_event(self, step_id: str, events: Event | list[Event]) -> list[str]:
        if step_id in self._engine.stubs:
            return typing.cast("list[str]", await self._stubbed(step_id, OP_SEND))
        return await super().send_event(step_id, events)

    async def invoke_by_id(self, step_id: str, *, app_id: str | None = None,
                           function_id: str, data: typing.Any = None, timeout: typing.Any = None,
                           v: str | None = None) -> typing.Any:
        if step_id in self._engine.stubs:
            return await self._stubbed(step_id, OP_INVOKE)
        self._engine.must_stub(step_id)


class _StubStepSync(StepSync):
    """``ctx.step`` of a sync handler in a mocked run (see :class:`_StubStep`)."""

    def __init__(self, execution: Execution, engine: _MockEngine) -> None:
        super().__init__(execution)
        self._engine = engine

    def _stubbed(self, step_id: str, op: str) -> typing.Any:
        ex = self._ex
        full_id = ex.begin_step(step_id, op)
        memo = ex.lookup_sync(full_id, op)
        return _answer(ex, self._engine, step_id, full_id, op, memo)

    @functools.cached_property
    def ai(self) -> typing.Any:  # type: ignore[override]
        return _StubAISync(self)

    def run(self, step_id: str, handler: typing.Callable[..., typing.Any],
            *handler_args: typing.Any, output_type: object = None) -> typing.Any:
        if step_id in self._engine.stubs:  # a stub is a memo: read back into output_type
            return _typed(self._ex, self._stubbed(step_id, OP_RUN), output_type)
        return super().run(step_id, handler, *handler_args, output_type=output_type)

    def sleep(self, step_id: str, duration: typing.Any) -> None:
        if step_id in self._engine.stubs:
            self._stubbed(step_id, OP_SLEEP)
            return
        super().sleep(step_id, duration)

    def sleep_until(self, step_id: str, until: typing.Any) -> None:
        if step_id in self._engine.stubs:
            self._stubbed(step_id, OP_SLEEP)
            return
        super().sleep_until(step_id, until)

    def wait_for_event(self, step_id: str, *, event: str, if_exp: str | None = None,
                       timeout: typing.Any) -> Event | None:
        if step_id in self._engine.stubs:
            return typing.cast("Event | None", self._stubbed(step_id, OP_WAIT))
        self._engine.must_stub(step_id)

    def send_event(self, step_id: str, events: Event | list[Event]) -> list[str]:
        if step_id in self._engine.stubs:
            return typing.cast("list[str]", self._stubbed(step_id, OP_SEND))
        return super().send_event(step_id, events)

    def invoke_by_id(self, step_id: str, *, app_id: str | None = None,
                     function_id: str, data: typing.Any = None, timeout: typing.Any = None,
                     v: str | None = None) -> typing.Any:
        if step_id in self._engine.stubs:
            return self._stubbed(step_id, OP_INVOKE)
        self._engine.must_stub(step_id)


class _StubAI:
    """``ctx.step.ai`` in a mocked run: a model call is answered by its stub only."""

    def __init__(self, step: _StubStep) -> None:
        self._step = step

    async def infer(self, step_id: str, *, adapter: typing.Any,
                    body: dict[str, typing.Any]) -> typing.Any:
        if step_id in self._step._engine.stubs:
            return await self._step._stubbed(step_id, OP_RUN)
        self._step._engine.must_stub(step_id)


class _StubAISync:
    """``ctx.step.ai`` of a sync handler in a mocked run."""

    def __init__(self, step: _StubStepSync) -> None:
        self._step = step

    def infer(self, step_id: str, *, adapter: typing.Any,
              body: dict[str, typing.Any]) -> typing.Any:
        if step_id in self._step._engine.stubs:
            return self._step._stubbed(step_id, OP_RUN)
        self._step._engine.must_stub(step_id)


class _MockSimulation(Simulation):
    """A Simulation running :class:`_MockEngine`."""

    engine_class = _MockEngine
