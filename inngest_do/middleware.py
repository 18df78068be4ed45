"""Middleware with the Inngest SDK's hooks.

A middleware class is instantiated once per request, as ``cls(client, raw_request)`` with
``raw_request=None`` here. Against Inngest's server a request ends after each step, so here
a request is each time the handler resumes: at the start of a slice, and after each step a
handler records and goes on from (``after_execution``, ``transform_output`` of the step,
``before_response``, then a new instance's ``transform_input``, ``before_memoization``,
``after_memoization``, ``before_execution``).
"Before" hooks run in registration order (client middleware, then the function's); "after"
hooks (``after_execution``, ``after_send_events``, ``transform_output``,
``after_memoization``) run in reverse.
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import typing

import pydantic

if typing.TYPE_CHECKING:
    from .client import Inngest
    from .context import Context, ContextSync
    from .event import Event, SendEventsResult
    from .function import Function


class Opcode(enum.Enum):
    """The SDK's step opcodes (``inngest._internal.server_lib.Opcode``), as
    :attr:`TransformOutputStepInfo.op` reports them."""

    AI_GATEWAY = "AIGateway"
    INVOKE = "InvokeFunction"
    PLANNED = "StepPlanned"
    SLEEP = "Sleep"
    STEP_RUN = "StepRun"
    STEP_ERROR = "StepError"
    WAIT_FOR_EVENT = "WaitForEvent"
    STEP_FAILED = "StepFailed"


#: our step kinds -> the SDK's opcode (send_event is a step.run in the SDK)
OPCODES: dict[str, Opcode] = {"run": Opcode.STEP_RUN, "send": Opcode.STEP_RUN,
                              "sleep": Opcode.SLEEP, "wait": Opcode.WAIT_FOR_EVENT,
                              "invoke": Opcode.INVOKE, "ai": Opcode.AI_GATEWAY}


@dataclasses.dataclass
class TransformOutputStepInfo:
    """The step whose output is being transformed (changes to it are discarded)."""

    id: str
    op: Opcode
    opts: dict[str, object] | None = None


@dataclasses.dataclass
class TransformOutputResult:
    """A function's or step's output on its way to being recorded; set ``output`` or
    ``error`` to change what is recorded."""

    error: Exception | None
    output: object
    step: TransformOutputStepInfo | None

    def has_output(self) -> bool:
        return self.error is None


class MemoizedError(pydantic.BaseModel):
    """A step's recorded failure, as ``Output.error`` holds it."""

    message: str
    name: str
    stack: str | None = None


class Output(pydantic.BaseModel):
    """One memoized step: its ``data``, or its ``error``."""

    # Extra fields are refused so that a user's dict is never mistaken for a wrapper.
    model_config = pydantic.ConfigDict(extra="forbid")

    data: object = None
    error: MemoizedError | None = None


class EmptySentinel:
    """What :meth:`StepMemos.pop` returns for an id it does not hold (as in the SDK)."""


empty_sentinel = EmptySentinel()


def _as_output(memo: object) -> Output:
    if isinstance(memo, Output):
        return memo
    if isinstance(memo, list) and len(memo) == 3:  # the engine's [op, ok, value]
        if memo[1]:
            return Output(data=memo[2])
        err = memo[2] if isinstance(memo[2], dict) else {}
        return Output(error=MemoizedError(message=str(err.get("message", "")),
                                          name=str(err.get("name", "Error")),
                                          stack=err.get("stack")))
    return Output(data=memo)


class StepMemos:
    """The memoized steps a handler is about to replay (``transform_input``'s ``steps``),
    keyed by step id (``"a"``, ``"a:1"``); :meth:`pop` also takes the SDK's hashed ids
    (SHA-1 of the step id)."""

    def __init__(self, memos: dict[str, typing.Any]) -> None:
        # Values are converted to Output when read, so building one per request stays cheap.
        self._memos = memos

    @property
    def size(self) -> int:
        return len(self._memos)

    def values(self) -> typing.Iterator[Output]:
        return (_as_output(m) for m in self._memos.values())

    def pop(self, hashed_id: str) -> Output | EmptySentinel:
        """Remove and return the memo of ``hashed_id``: the SDK's hashed step id (a SHA-1 hex
        digest) or, since our memos are keyed by step id, the plain step id. The parameter keeps
        the SDK's name so ``pop(hashed_id=...)`` works."""
        key = hashed_id
        if key not in self._memos:
            key = next((k for k in self._memos
                        if hashlib.sha1(k.encode()).hexdigest() == hashed_id), "")
            if not key:
                return empty_sentinel
        memo = self._memos[key]
        # a new dict: the caller's mapping (the run's memo table copy) is not changed
        self._memos = {k: v for k, v in self._memos.items() if k != key}
        return _as_output(memo)

    @classmethod
    def from_raw(cls, raw: dict[str, object]) -> StepMemos:
        """Memos from the wire shape: ``{"data": ...}``/``{"error": ...}`` wrappers, or bare
        values (a wait's event is not wrapped)."""
        if not isinstance(raw, dict):
            raise TypeError(f"raw: expected a dict of step id to memo, got {type(raw).__name__}")
        memos: dict[str, typing.Any] = {}
        for key, value in raw.items():
            try:
                memos[key] = Output.model_validate(value)
            except pydantic.ValidationError:
                memos[key] = Output(data=value)
        return cls(memos)


class Middleware:
    """Async middleware; override the hooks you need."""

    def __init__(self, client: Inngest, raw_request: object) -> None:
        self.client = client
        self.raw_request = raw_request

    async def before_memoization(self) -> None:
        """Before memoized steps are replayed (only when there are some)."""

    async def after_memoization(self) -> None:
        """After the last memoized step was replayed."""

    async def before_execution(self) -> None:
        """Before new (not memoized) code runs; once per slice."""

    async def after_execution(self) -> None:
        """After the handler returned, raised or parked; once per slice."""

    async def transform_input(self, ctx: Context | ContextSync, function: Function[typing.Any],
                              steps: StepMemos) -> None:
        """Before the handler is called; may change ``ctx``."""

    async def transform_output(self, result: TransformOutputResult) -> None:
        """After a step or the function produced output; may change it."""

    async def before_response(self) -> None:
        """At the end of a slice, after the output was set."""

    async def before_send_events(self, events: list[Event]) -> None:
        """Before events are sent (client.send or step.send_event)."""

    async def after_send_events(self, result: SendEventsResult) -> None:
        """After events were sent."""


class MiddlewareSync:
    """Sync middleware; override the hooks you need."""

    def __init__(self, client: Inngest, raw_request: object) -> None:
        self.client = client
        self.raw_request = raw_request

    def before_memoization(self) -> None:
        """Before memoized steps are replayed (only when there are some)."""

    def after_memoization(self) -> None:
        """After the last memoized step was replayed."""

    def before_execution(self) -> None:
        """Before new (not memoized) code runs; once per slice."""

    def after_execution(self) -> None:
        """After the handler returned, raised or parked; once per slice."""

    def transform_input(self, ctx: Context | ContextSync, function: Function[typing.Any],
                        steps: StepMemos) -> None:
        """Before the handler is called; may change ``ctx``."""

    def transform_output(self, result: TransformOutputResult) -> None:
        """After a step or the function produced output; may change it."""

    def before_response(self) -> None:
        """At the end of a slice, after the output was set."""

    def before_send_events(self, events: list[Event]) -> None:
        """Before events are sent (client.send or step.send_event)."""

    def after_send_events(self, result: SendEventsResult) -> None:
        """After events were sent."""


UninitializedMiddleware = typing.Callable[["Inngest", object], "Middleware | MiddlewareSync"]
