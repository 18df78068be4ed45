"""Middleware with the Inngest SDK's hooks.

A middleware class is instantiated once per execution slice (the SDK does it once per
request: the same thing) as ``cls(client, raw_request)``, with ``raw_request=None`` here.
"Before" hooks run in registration order (client middleware, then the function's); "after"
hooks (``after_execution``, ``after_send_events``, ``transform_output``,
``after_memoization``) run in reverse.
"""

from __future__ import annotations

import dataclasses
import typing

if typing.TYPE_CHECKING:
    from .client import Inngest, SendEventsResult
    from .context import Context, ContextSync
    from .event import Event
    from .function import Function


@dataclasses.dataclass
class TransformOutputStepInfo:
    """The step whose output is being transformed (changes to it are discarded)."""

    id: str
    op: str
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


class StepMemos:
    """The memoized steps a handler is about to replay (``transform_input``'s ``steps``)."""

    def __init__(self, memos: dict[str, object]) -> None:
        self._memos = memos

    @property
    def size(self) -> int:
        return len(self._memos)

    def values(self) -> typing.Iterator[object]:
        return iter(self._memos.values())


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
