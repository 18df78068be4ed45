"""Drive a client on a virtual clock from plain synchronous tests.

>>> sim = Simulation(client, seed=1)
>>> sim.send(inngest.Event(name="order/created", data={"id": 1}))
>>> sim.advance(datetime.timedelta(hours=24))
>>> [r.status for r in sim.runs()]

Time moves only when the test says so: :meth:`Simulation.send` runs whatever becomes ready
at the current instant; :meth:`Simulation.advance` fires every timer due up to ``now +
duration`` in time order (ties first-in first-out); :meth:`Simulation.run_until_idle` goes on
until nothing but cron schedules is left. Under one seed the trace is identical on every run
and under both kernels.
"""

from __future__ import annotations

import datetime
import typing
import weakref

from .durations import to_ms
from .engine import Engine
from .event import Event
from .execution import current_execution
from .kernel import VirtualClock, datetime_to_ms, ms_to_datetime
from .runs import EventRecord, Run, RunStatus, TraceEntry
from .step_ai import AIResponse, Responder, set_stubs
from .storage import Store, open_store

if typing.TYPE_CHECKING:
    from .client import Inngest
    from .function import Function

#: where virtual time starts unless told otherwise
DEFAULT_START = datetime.datetime(2025, 1, 1, tzinfo=datetime.timezone.utc)

# Weak, so simulations of finished tests are not kept alive by this registry.
_active: weakref.WeakSet[Simulation] = weakref.WeakSet()


#: The latest virtual time: the last millisecond a ``datetime`` can hold (9999-12-31). Run
#: and event ids encode their time in 48 bits, which reach further, so every id still works.
MAX_MS: typing.Final[int] = datetime_to_ms(
    datetime.datetime.max.replace(tzinfo=datetime.timezone.utc))


class SimulationError(RuntimeError):
    """The simulation could not do what was asked; the message carries the seed."""


class Simulation:
    """A client's engine on a virtual clock, with a seed that reproduces everything."""

    #: the engine class a simulation runs (``experimental.mocked`` swaps in a stubbing one)
    engine_class: typing.ClassVar[type[Engine]] = Engine

    def __init__(
        self,
        client: Inngest,
        seed: int = 0,
        start: datetime.datetime = DEFAULT_START,
        *,
        store: Store | str | None = None,
        coroutine_cap: int = 10_000,
        max_iterations: int = 1_000_000,
        functions: list[Function[typing.Any]] | None = None,
    ) -> None:
        if not isinstance(seed, int) or isinstance(seed, bool):
            raise TypeError(f"seed: expected an int, got {seed!r}")
        if not isinstance(start, datetime.datetime):
            raise TypeError(f"start: expected a datetime, got {start!r}")
        if max_iterations < 1:
            raise ValueError("max_iterations: must be at least 1")
        self.client = client
        self.seed = seed
        self.start = start if start.tzinfo else start.replace(tzinfo=datetime.timezone.utc)
        self.max_iterations = max_iterations
        self._coroutine_cap = coroutine_cap
        # None: every function created on the client (also later ones), as a Worker does
        self._functions = None if functions is None else _function_list(functions)
        self._store = client.new_store() if store is None else open_store(store)
        self.clock = VirtualClock(datetime_to_ms(self.start))
        self._ai_stubs: list[tuple[str | None, str | None, Responder]] = []
        self.engine = self._new_engine()
        _active.add(self)

    def _new_engine(self) -> Engine:
        engine = self.engine_class(self.client, clock=self.clock, store=self._store, seed=self.seed,
                        coroutine_cap=self._coroutine_cap, functions=self._functions)
        engine.auto_drain = True
        engine.driver.drain_limit = self.max_iterations
        engine.driver.busy_error = self._busy
        self.client._engine = engine
        set_stubs(engine, self._ai_stubs)  # stubs outlive crash(): they are the test's
        engine.sync_functions()  # registers the client's functions and their cron timers
        return engine

    def _busy(self, count: int) -> SimulationError:
        return SimulationError(
            f"still busy after {count} executions at {self.now.isoformat()} without the clock "
            f"moving (seed={self.seed}): does a function trigger itself? Raise max_iterations "
            "if this is intended")

    def __repr__(self) -> str:
        return f"<Simulation seed={self.seed} now={self.now.isoformat()}>"

    # time -----------------------------------------------------------------------------------
    @property
    def now(self) -> datetime.datetime:
        """The virtual time, timezone-aware (UTC)."""
        return ms_to_datetime(self.clock.now_ms())

    @property
    def now_ms(self) -> int:
        return self.clock.now_ms()

    def advance(self, duration: int | datetime.timedelta) -> None:
        """Run everything that becomes due in the next ``duration`` (ms or timedelta), in
        time order, and stop at ``now + duration``."""
        ms = to_ms(duration, what="duration", min_ms=0)
        target = self.clock.now_ms() + ms
        if target > MAX_MS:
            raise ValueError(
                f"duration: {duration!r} would move the clock from {self.now.isoformat()} "
                f"past {ms_to_datetime(MAX_MS).isoformat()}, the latest time a Simulation "
                "can reach")
        self.engine.run_until(target)

    def advance_to(self, when: datetime.datetime) -> None:
        """Like :meth:`advance`, up to an absolute time (not in the past)."""
        target = datetime_to_ms(when)
        if target < self.clock.now_ms():
            raise ValueError(f"when: {when.isoformat()} is before now ({self.now.isoformat()})")
        if target > MAX_MS:  # only reachable through a datetime with an odd offset
            raise ValueError(f"when: {when.isoformat()} is past the latest time a Simulation "
                             f"can reach ({ms_to_datetime(MAX_MS).isoformat()})")
        self.engine.run_until(target)

    def run_until_idle(self, max_iterations: int | None = None) -> None:
        """Run until no work remains but cron schedules, jumping the clock from timer to timer.

        Raises :class:`SimulationError` after ``max_iterations`` timer firings (default: the
        simulation's) rather than looping forever, e.g. on a function that keeps sending
        the event that triggers it.
        """
        limit = self.max_iterations if max_iterations is None else max_iterations
        if self.engine.run_until_idle(limit):
            return
        raise SimulationError(
            f"run_until_idle: still busy after {limit} iterations at {self.now.isoformat()} "
            f"(seed={self.seed}); raise max_iterations or advance() by a fixed duration"
        )

    # events and runs ------------------------------------------------------------------------
    def send(self, events: Event | list[Event], *, duplicate: bool = False) -> list[str]:
        """Deliver events (through client middleware) and run what is ready now.

        ``duplicate=True`` delivers each event twice, as an at-least-once bus may: an event
        with an ``id`` is then deduplicated; one without starts its runs twice."""
        ids = self.client.send_sync(events)
        if duplicate:
            evs = [events] if isinstance(events, Event) else list(events)
            ids += self.client.send_sync([e.model_copy() for e in evs])
        self.engine.run_until(self.clock.now_ms())
        return ids

    def runs(self, fn_or_id: Function[typing.Any] | str | None = None,
             status: RunStatus | str | None = None) -> list[Run]:
        """Runs in creation order, optionally of one function and/or in one status."""
        return self.client.runs(fn_or_id, status)

    def get_run(self, run_id: str) -> Run:
        return self.client.get_run(run_id)

    def events(self, name: str | None = None) -> list[EventRecord]:
        """Accepted events with what each did for each function (see Inngest.events)."""
        return self.client.events(name)

    @property
    def trace(self) -> list[TraceEntry]:
        """Everything that happened, in order: comparable across simulations."""
        return list(self.engine.trace)

    # faults ---------------------------------------------------------------------------------
    def fail_step(self, step_id: str, times: int = 1, *,
                  fn: Function[typing.Any] | str | None = None,
                  error: Exception | None = None) -> None:
        """Make the next ``times`` attempts of step ``step_id`` (of ``fn``, or of any
        function) fail with ``error`` before the step body runs; retries follow as usual."""
        if not isinstance(step_id, str) or not step_id:
            raise TypeError("step_id: expected a non-empty str")
        if not isinstance(times, int) or times < 1:
            raise ValueError(f"times: must be an int >= 1, got {times!r}")
        fn_id = None if fn is None else self.client._resolve_fn_id(fn)
        err = error if error is not None else RuntimeError(f"injected failure of {step_id!r}")
        self.engine.faults[(fn_id, step_id)] = [times, err]

    def stub_ai(self, response: Responder, *, step_id: str | None = None,
                fn: Function[typing.Any] | str | None = None) -> None:
        """Answer model calls (``ctx.step.ai.infer``) without any server.

        ``response`` is the provider's JSON (a dict), an :class:`AIResponse` (a status such
        as 429 with headers such as ``Retry-After``, mapped exactly as a real answer), or a
        callable of the request body (after the adapter's ``on_call``) returning either, or
        raising to fail the attempt. ``step_id`` (the id as written, or with its ``:n``
        suffix) and ``fn`` narrow it; the most recent matching stub answers.
        """
        if not (callable(response) or isinstance(response, (dict, AIResponse))):
            raise TypeError(
                f"response: expected a dict, an AIResponse or a callable, got {response!r}")
        if step_id is not None and (not isinstance(step_id, str) or not step_id):
            raise TypeError(f"step_id: expected a non-empty str or None, got {step_id!r}")
        fn_id = None if fn is None else self.client._resolve_fn_id(fn)
        self._ai_stubs.insert(0, (fn_id, step_id, response))

    def wake_all(self) -> int:
        """Spurious wake-ups: resume every parked run as a redelivered queue item would.

        Each re-checks its memos and parks again unless its wait is over; nothing may run
        twice. Returns how many runs were woken."""
        engine = self.engine
        woken = 0
        for run in list(engine.runs.values()):
            if not run.status.is_final and not run.queued and run.started_ms is not None:
                engine.flow.request_slice(run)
                woken += 1
        engine.drain()
        return woken

    def crash(self) -> None:
        """Drop every in-memory structure and recover from the store, as after a restart.
        :attr:`trace` goes on across the crash (the record of what happened is the test's,
        not the process's)."""
        old = self.engine
        for ex in list(old.live.values()):
            old._close(ex)
        self.engine = self._new_engine()
        self.engine.trace[:0] = old.trace


def _function_list(functions: object) -> list[Function[typing.Any]]:
    if not isinstance(functions, (list, tuple)):
        raise TypeError(f"functions: expected a list of Functions, got {type(functions).__name__}")
    return list(functions)


def busy(duration: int | datetime.timedelta) -> None:
    """Declare, from inside a step body, that the step takes ``duration`` of virtual time.

    The step's result is recorded ``duration`` later and the run keeps its concurrency slots
    until then, so concurrency limits can be observed in a simulation.
    """
    ms = to_ms(duration, what="duration", min_ms=0)
    ex = current_execution()
    if ex is None:
        raise RuntimeError("busy(): call it from inside a step body (ctx.step.run)")
    ex.busy_ms += ms


def active_simulations() -> list[Simulation]:
    """Simulations still alive in this process (the pytest plugin reports their seeds)."""
    return sorted(_active, key=id)


def forget_simulations() -> None:
    _active.clear()
