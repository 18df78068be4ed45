"""The client: ``inngest_do.Inngest``, the SDK's entry point with the engine inside."""

from __future__ import annotations

import datetime
import inspect
import logging
import os
import typing

from .config import (
    Batch,
    Cancel,
    Concurrency,
    Debounce,
    Priority,
    RateLimit,
    Singleton,
    Throttle,
    Timeouts,
    TriggerCron,
    TriggerEvent,
    normalize_function_options,
)
from .durations import to_ms
from .event import Event, SendEventsResult
from .function import Function
from .runs import EventRecord, Run, RunStatus
from .serializer import Serializer, check_serializer, deserialize, serialize
from .storage import Store, open_store

if typing.TYPE_CHECKING:
    from .engine import Engine
    from .middleware import UninitializedMiddleware
    from .realtime_hub import Subscription

T = typing.TypeVar("T")


#: how long finished runs are kept by default
DEFAULT_RETENTION = datetime.timedelta(days=7)


class Inngest:
    """An app: its functions and the embedded engine that runs them.

    Server-only options (``is_production``, base URLs, ...) are accepted and ignored so that
    code written for ``inngest`` constructs unchanged. ``signing_key`` and ``event_key`` (or
    ``INNGEST_SIGNING_KEY``, ``INNGEST_SIGNING_KEY_FALLBACK``, ``INNGEST_EVENT_KEY``) guard
    the routes ``serve()`` mounts.
    What we add: ``store`` -- None (memory), a SQLite file path, or a Store object;
    ``seed`` -- the random source of a wall-clock engine (a Simulation takes its own);
    ``inngest_limits`` -- enforce the Inngest server's limits so code headed for Inngest
    fails here first; ``retention`` -- how long finished runs, their history and settled
    events are kept (a timedelta or ms; default 7 days, except in a Simulation, which keeps
    everything unless given one; None keeps everything).
    """

    def __init__(
        self,
        *,
        app_id: str,
        api_base_url: str | None = None,
        app_version: str | None = None,
        env: str | None = None,
        event_api_base_url: str | None = None,
        event_key: str | None = None,
        is_production: bool | None = None,
        logger: logging.Logger | logging.LoggerAdapter[logging.Logger] | None = None,
        middleware: list[UninitializedMiddleware] | None = None,
        request_timeout: int | datetime.timedelta | None = None,
        serializer: Serializer | None = None,
        signing_key: str | None = None,
        store: Store | str | os.PathLike[str] | None = None,
        seed: int | None = None,
        inngest_limits: bool = False,
        retention: int | datetime.timedelta | None = DEFAULT_RETENTION,
        execution: str | None = None,
    ) -> None:
        if not isinstance(app_id, str) or not app_id:
            raise ValueError("app_id: must be a non-empty string")
        if middleware is not None and not isinstance(middleware, list):
            raise TypeError("middleware: expected a list of middleware classes")
        self.app_id = app_id
        self.app_version = app_version
        self.env = env if env is not None else os.environ.get("INNGEST_ENV") or None
        self.is_production = bool(is_production)
        # Read by serve(): requests to serve_path must be signed with the key (or its
        # fallback) and the event API checks the event key. Env vars as in the SDK.
        self.signing_key = signing_key or os.getenv("INNGEST_SIGNING_KEY") or None
        self.signing_key_fallback = os.getenv("INNGEST_SIGNING_KEY_FALLBACK") or None
        self.event_key = event_key or os.getenv("INNGEST_EVENT_KEY") or None
        self.logger = logger or logging.getLogger("inngest_do")
        #: turns outputs of functions and steps given an ``output_type`` into JSON and back
        #: (see serializer.py); None records outputs as they are
        self.serializer: Serializer | None = check_serializer(serializer)
        self._middleware: list[UninitializedMiddleware] = list(middleware or [])
        self._store_spec = store
        self._seed = seed
        #: enforce the Inngest server's limits (steps, sizes, durations): see limits.py
        self.inngest_limits = inngest_limits
        #: finished runs (with history) and settled events older than this are pruned (a
        #: Simulation keeps everything unless ``retention`` was given: tests look back)
        self.retention_given = retention is not DEFAULT_RETENTION
        self.retention_ms: int | None = None if retention is None else to_ms(
            retention, what="retention", min_ms=1)
        #: how handlers execute: "coroutines" (default: a suspended async handler keeps its
        #: coroutine, code outside steps runs once) or "requests" (Inngest's request model:
        #: each resumption replays the handler from the start and runs at most one new step;
        #: parallel groups plan their steps and later requests target each one)
        self.execution = _execution_mode(execution)
        # Every function created on this client, in order; ids may repeat until served.
        self._created: list[Function[typing.Any]] = []
        #: what ``serve()`` last served for this client (the CLI's ``run`` serves the same)
        self._served: list[Function[typing.Any]] | None = None
        self._engine: Engine | None = None

    # logging and middleware (as in the SDK) ---------------------------------------------------
    def set_logger(self, logger: logging.Logger | logging.LoggerAdapter[logging.Logger]) -> None:
        """Log through ``logger`` from now on (``ctx.logger`` of runs in flight too)."""
        if not isinstance(logger, (logging.Logger, logging.LoggerAdapter)):
            raise TypeError(f"logger: expected a logging.Logger or LoggerAdapter, got "
                            f"{type(logger).__name__}")
        self.logger = logger

    def add_middleware(self, middleware: UninitializedMiddleware) -> None:
        """Add a middleware class (or factory) after those given at construction."""
        if not callable(middleware):
            raise TypeError(f"middleware: expected a middleware class, got "
                            f"{type(middleware).__name__}")
        self._middleware.append(middleware)

    def _serialize(self, obj: object, typ: object) -> object:
        """``obj`` through the serializer (unchanged without one or without ``typ``)."""
        return serialize(self, obj, typ)

    def _deserialize(self, obj: object, typ: object) -> object:
        """A recorded value back into ``typ`` (unchanged without a serializer or ``typ``)."""
        return deserialize(self, obj, typ)

    # functions ------------------------------------------------------------------------------
    def create_function(
        self,
        *,
        fn_id: str,
        trigger: TriggerEvent | TriggerCron | list[TriggerEvent | TriggerCron],
        batch_events: Batch | None = None,
        cancel: list[Cancel] | None = None,
        concurrency: list[Concurrency] | None = None,
        debounce: Debounce | None = None,
        idempotency: str | None = None,
        middleware: list[UninitializedMiddleware] | None = None,
        name: str | None = None,
        on_failure: typing.Callable[..., typing.Any] | None = None,
        output_type: object = None,
        priority: Priority | None = None,
        rate_limit: RateLimit | None = None,
        retries: int | None = None,
        throttle: Throttle | None = None,
        timeouts: Timeouts | None = None,
        singleton: Singleton | None = None,
    ) -> typing.Callable[[typing.Callable[..., typing.Any]], Function[typing.Any]]:
        """Decorator that turns a handler into a :class:`Function` of this app.

        As in the SDK, this only builds the function: what runs is what is served
        (``serve(app, client, functions)``, ``Worker(client, functions=...)``,
        ``Simulation(client, functions=...)``; without a list, every function created here).
        """
        opts = normalize_function_options(
            fn_id, trigger=trigger, retries=retries, concurrency=concurrency,
            rate_limit=rate_limit, throttle=throttle, debounce=debounce,
            batch_events=batch_events, cancel=cancel, priority=priority, timeouts=timeouts,
            idempotency=idempotency, singleton=singleton,
        )
        if middleware is not None and not isinstance(middleware, list):
            raise TypeError("middleware: expected a list of middleware classes")
        if on_failure is not None and not callable(on_failure):
            raise TypeError("on_failure: expected a function")

        def decorator(handler: typing.Callable[..., typing.Any]) -> Function[typing.Any]:
            fn: Function[typing.Any] = Function(
                app_id=self.app_id, opts=opts, handler=handler, name=name,
                middleware=middleware, output_type=output_type, client=self,
            )
            if on_failure is not None:
                failure_opts = normalize_function_options(
                    f"{opts.fn_id}-failure",
                    trigger=TriggerEvent(event="inngest/function.failed",
                                         expression=f"event.data.function_id == '{fn.id}'"),
                    retries=opts.retries,
                )
                failure_fn: Function[typing.Any] = Function(
                    app_id=self.app_id, opts=failure_opts, handler=on_failure,
                    name=f"{fn.name} (failure)", middleware=middleware, is_failure_handler=True,
                    client=self,
                    # As in the SDK: with a serializer, what on_failure returns is dumped
                    # as it is (nothing reads it back into a type).
                    output_type=object,
                )
                fn.on_failure_fn = failure_fn
                fn.on_failure_fn_id = failure_fn.id
            self._created.append(fn)
            return fn

        return decorator

    @property
    def functions(self) -> list[Function[typing.Any]]:
        """Every function created on this client, in creation order (served or not)."""
        return list(self._created)

    # the engine -----------------------------------------------------------------------------
    @property
    def engine(self) -> Engine:
        """The engine running this app's functions (created on first use, on the wall clock,
        unless a Simulation or Worker installed one)."""
        if self._engine is None:
            from .engine import Engine
            from .kernel import RealClock

            self._engine = Engine(self, clock=RealClock(), store=self.new_store(),
                                  seed=self._seed, functions=self._served)
        return self._engine

    def new_store(self) -> Store:
        """A store as configured by ``store=`` (a fresh memory store if none was given)."""
        spec = self._store_spec
        if isinstance(spec, Store):
            return spec
        return open_store(None if spec is None else os.fspath(spec))

    # events ---------------------------------------------------------------------------------
    async def send(self, events: Event | list[Event], *,
                   skip_middleware: bool = False) -> list[str]:
        """Deliver events to the engine; they are stored before this returns."""
        evs = _as_events(events)
        mws = [] if skip_middleware else [m(self, None) for m in self._middleware]
        for mw in mws:
            out = mw.before_send_events(evs)
            if inspect.isawaitable(out):
                await out
        ids = self.engine.accept(evs)
        for mw in reversed(mws):
            out = mw.after_send_events(SendEventsResult(ids=ids))
            if inspect.isawaitable(out):
                await out
        return ids

    def send_sync(self, events: Event | list[Event], *,
                  skip_middleware: bool = False) -> list[str]:
        """Deliver events to the engine; they are stored before this returns."""
        evs = _as_events(events)
        engine = self.engine
        mws = [] if skip_middleware else [m(self, None) for m in self._middleware]
        for mw in mws:
            out = mw.before_send_events(evs)
            if inspect.isawaitable(out):
                engine.resolve(out)
        ids = engine.accept(evs)
        for mw in reversed(mws):
            out = mw.after_send_events(SendEventsResult(ids=ids))
            if inspect.isawaitable(out):
                engine.resolve(out)
        return ids

    # queries --------------------------------------------------------------------------------
    def runs(self, fn_or_id: Function[typing.Any] | str | None = None,
             status: RunStatus | str | None = None) -> list[Run]:
        """Runs in creation order, optionally of one function and/or in one status."""
        fn_id = self._resolve_fn_id(fn_or_id)
        if status is not None:
            status = _status(status)
        return [r.snapshot() for r in self.engine.query_runs(fn_id, status)]

    def events(self, name: str | None = None) -> list[EventRecord]:
        """Accepted events (optionally of one name) in arrival order, each with what it did
        for every function it matched: started a run, or why not."""
        return self.engine.query_events(name)

    def get_run(self, run_id: str) -> Run:
        """One run by id; ``KeyError`` naming the id if there is none."""
        run = self.engine.get_run(run_id)
        if run is None:
            raise KeyError(f"no run with id {run_id!r}")
        return run.snapshot()

    # realtime -------------------------------------------------------------------------------
    def subscribe(self, channel: str, topics: list[str] | None = None, *,
                  max_buffer: int = 1_000) -> Subscription:
        """Messages published (``experimental.realtime.publish``) to ``channel`` from now on,
        of ``topics`` (None: every topic): an async iterator (``async for msg in sub``) with
        ``drain()`` for synchronous code and ``close()``. At most ``max_buffer`` unread
        messages are kept; older ones are dropped and counted in ``sub.dropped``."""
        from .realtime_hub import hub_for

        return hub_for(self).subscribe(channel, topics, max_buffer=max_buffer)

    def _resolve_fn_id(self, fn_or_id: Function[typing.Any] | str | None) -> str | None:
        if fn_or_id is None:
            return None
        if isinstance(fn_or_id, Function):
            return fn_or_id.id
        if isinstance(fn_or_id, str):
            known = {fn.id for fn in self._created}
            if self._engine is not None:
                known.update(self._engine.served_ids())
            if fn_or_id in known:
                return fn_or_id
            full = f"{self.app_id}-{fn_or_id}"
            if full in known:
                return full
            raise ValueError(f"fn_or_id: no function with id {fn_or_id!r} in app "
                             f"{self.app_id!r}")
        raise TypeError(f"fn_or_id: expected a Function or a function id, got {fn_or_id!r}")


def _status(status: RunStatus | str) -> RunStatus:
    try:
        return RunStatus(status)
    except ValueError:
        names = ", ".join(s.value for s in RunStatus)
        raise ValueError(f"status: expected one of {names}, got {status!r}") from None


def _as_events(events: Event | list[Event]) -> list[Event]:
    if isinstance(events, Event):
        return [events]
    if isinstance(events, (list, tuple)):
        for i, e in enumerate(events):
            if not isinstance(e, Event):
                raise TypeError(f"events[{i}]: expected an Event, got {type(e).__name__}")
        return list(events)
    raise TypeError(f"events: expected an Event or a list of Events, got {type(events).__name__}")


EXECUTION_MODES = ("coroutines", "requests")


def _execution_mode(value: str | None) -> str:
    if value is None:
        value = os.getenv("INNGEST_DO_EXECUTION") or "coroutines"
        what = "INNGEST_DO_EXECUTION"
    else:
        what = "execution"
    if value not in EXECUTION_MODES:
        raise ValueError(f"{what}: expected one of {', '.join(map(repr, EXECUTION_MODES))}, "
                         f"got {value!r}")
    return value
