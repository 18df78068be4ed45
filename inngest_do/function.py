"""A function created with ``client.create_function``: its handler and its options."""

from __future__ import annotations

import functools
import inspect
import typing

from .config import CronTriggerSpec, EventTriggerSpec, FunctionOptions
from .expressions import Expression
from .triggers import CronSchedule, EventPattern

if typing.TYPE_CHECKING:
    from .client import Inngest
    from .function_config import Config
    from .middleware import UninitializedMiddleware

T = typing.TypeVar("T")


class EventTrigger(typing.NamedTuple):
    """A compiled event trigger: name pattern and optional CEL filter."""

    pattern: EventPattern
    expression: Expression | None


def _expressions(opts: FunctionOptions) -> typing.Iterator[tuple[str, str]]:
    """(label, source) of every CEL expression in a function's options."""
    for i, c in enumerate(opts.concurrency):
        if c.key:
            yield f"concurrency[{i}].key", c.key
    for name, spec in (("rate_limit", opts.rate_limit), ("throttle", opts.throttle),
                       ("debounce", opts.debounce), ("batch_events", opts.batch),
                       ("singleton", opts.singleton)):
        if spec is not None and spec.key:
            yield f"{name}.key", spec.key
    if opts.batch is not None and opts.batch.if_exp:
        yield "batch_events.if_exp", opts.batch.if_exp
    for i, c in enumerate(opts.cancel):
        if c.if_exp:
            yield f"cancel[{i}].if_exp", c.if_exp
    if opts.priority is not None:
        yield "priority.run", opts.priority.run
    if opts.idempotency:
        yield "idempotency", opts.idempotency


class Function(typing.Generic[T]):
    """A durable function: ``id`` is ``f"{app_id}-{fn_id}"``, ``local_id`` is ``fn_id``."""

    def __init__(
        self,
        *,
        app_id: str,
        opts: FunctionOptions,
        handler: typing.Callable[..., typing.Any],
        name: str | None,
        middleware: list[UninitializedMiddleware] | None,
        output_type: object = None,
        is_failure_handler: bool = False,
        client: Inngest | None = None,
    ) -> None:
        if not callable(handler):
            raise TypeError(f"handler: expected a function, got {handler!r}")
        self._opts = opts
        self._app_id = app_id
        #: the client that created this function (its ``send`` reaches the serving engine)
        self.client = client
        self.handler = handler
        self._name = name or opts.fn_id
        self.middleware = list(middleware or [])
        self.output_type = output_type
        self.is_failure_handler = is_failure_handler
        self.retries = opts.retries
        self.on_failure_fn_id: str | None = None
        #: the function that runs when this one fails for good (served along with it)
        self.on_failure_fn: Function[typing.Any] | None = None
        self.event_triggers: list[EventTrigger] = []
        self.cron_triggers: list[CronSchedule] = []
        for i, trig in enumerate(opts.triggers):
            if isinstance(trig, EventTriggerSpec):
                expr = None
                if trig.expression:
                    expr = Expression.compile(trig.expression, what=f"trigger[{i}].expression")
                self.event_triggers.append(EventTrigger(EventPattern(trig.event), expr))
            elif isinstance(trig, CronTriggerSpec):
                self.cron_triggers.append(CronSchedule(trig.cron, trig.jitter_ms))
        # Every expression compiles now, so a bad one is a ValueError at creation (and the
        # engine's later compiles hit the cache).
        for what, source in _expressions(opts):
            Expression.compile(source, what=what)

    @functools.cached_property
    def id(self) -> str:
        # cached: read several times per run by the engine
        return f"{self._app_id}-{self._opts.fn_id}"

    @property
    def local_id(self) -> str:
        return self._opts.fn_id

    @property
    def name(self) -> str:
        return self._name

    @functools.cached_property
    def is_handler_async(self) -> bool:
        return inspect.iscoroutinefunction(self.handler)

    @functools.cached_property
    def finish_timeout_ms(self) -> int | None:
        """``timeouts.finish`` in ms, or None."""
        timeouts = self._opts.timeouts
        return None if timeouts is None else timeouts.finish_ms

    @property
    def options(self) -> FunctionOptions:
        return self._opts

    def get_id(self) -> str:
        """The fully qualified id (``f"{app_id}-{fn_id}"``), as the SDK's ``get_id``."""
        return self.id

    def get_config(self, app_url: str) -> Config:
        """The function's registration document as the SDK builds it for Inngest's server
        (``.main`` and ``.on_failure``), its root step's URL under ``app_url``."""
        from .function_config import Config, failure_config, function_config

        if not isinstance(app_url, str):
            raise TypeError(f"app_url: expected a str, got {type(app_url).__name__}")
        main = function_config(self.id, self.name, self._opts, app_url)
        on_failure = None
        if self.on_failure_fn_id is not None:
            on_failure = failure_config(self.on_failure_fn_id, self.name, self.id, app_url)
        return Config(main=main, on_failure=on_failure)

    def __repr__(self) -> str:
        return f"<Function {self.id}>"
