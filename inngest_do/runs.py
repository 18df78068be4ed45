"""Run records as users see them, and the trace every run leaves behind.

A :class:`RunState` is the engine's mutable record of one run; :class:`Run` is the frozen
snapshot handed to users by ``client.runs()``/``client.get_run()``/``Simulation.runs()``.
:class:`TraceEntry` is one line of the engine's ordered log; a run's history is the trace
entries that name it.
"""

from __future__ import annotations

import dataclasses
import datetime
import enum
import typing

from .event import Event
from .kernel import MemoTable, ms_to_datetime

if typing.TYPE_CHECKING:
    from .expressions import Expression


class RunStatus(str, enum.Enum):
    """The life cycle of a run. A ``str`` enum, so ``run.status == "Completed"`` holds."""

    QUEUED = "Queued"
    RUNNING = "Running"
    SLEEPING = "Sleeping"
    WAITING = "Waiting"
    COMPLETED = "Completed"
    FAILED = "Failed"
    CANCELLED = "Cancelled"
    SKIPPED = "Skipped"

    #: True for a status a run never leaves (read several times per run: a plain attribute
    #: of each member, set below, rather than a property call)
    is_final: bool

    def __str__(self) -> str:
        return self.value


_FINAL = frozenset({RunStatus.COMPLETED, RunStatus.FAILED, RunStatus.CANCELLED, RunStatus.SKIPPED})
for _status in RunStatus:
    object.__setattr__(_status, "is_final", _status in _FINAL)
del _status


class TraceEntry(typing.NamedTuple):
    """One thing that happened, at a (virtual or real) millisecond.

    Tuples compare field by field, so two traces are equal exactly when the same things
    happened at the same times to the same runs.
    """

    at_ms: int
    run_id: str
    fn_id: str
    kind: str
    step: str | None = None
    detail: typing.Any = None

    @property
    def at(self) -> datetime.datetime:
        return ms_to_datetime(self.at_ms)


@dataclasses.dataclass(frozen=True)
class RunError:
    """Why a run failed: the error's type name, message and stack text."""

    type: str
    message: str
    stack: str | None = None

    @property
    def name(self) -> str:
        return self.type

    def __str__(self) -> str:
        return f"{self.type}: {self.message}"


@dataclasses.dataclass(slots=True)
class Pending:
    """Something a parked run waits for, keyed by the step id it belongs to (slotted: one
    is kept for every parked run)."""

    kind: str  # "sleep", "wait", "invoke", "retry", "hold"
    due_ms: int | None
    timer: int | None = None  # kernel timer handle
    data: typing.Any = None


@dataclasses.dataclass(eq=False, slots=True)
class RunState:
    """The engine's mutable record of one run (what a store persists).

    Slotted: one is kept per run for the engine's life, so its size counts (no per-instance
    dict) and so does a misspelt attribute (an AttributeError, not a silent new field).
    """

    id: str
    fn_id: str
    events: list[dict]
    created_ms: int
    status: RunStatus = RunStatus.QUEUED
    started_ms: int | None = None
    ended_ms: int | None = None
    output: typing.Any = None
    error: dict | None = None
    attempt: int = 0  # failed attempts since the last recorded step
    attempts: int = 0  # failed attempts in all (a snapshot adds the current one)
    retry_at: int | None = None
    retry_step: str | None = None
    priority: int = 0  # seconds this run jumps ahead in queues
    invoker: tuple[str, str] | None = None  # (run id, step id) waiting for our output
    cancel_requested: bool = False
    reason: str | None = None  # why it was skipped/cancelled
    keys: dict = dataclasses.field(default_factory=dict)  # evaluated flow-control keys
    pending: dict[str, Pending] = dataclasses.field(default_factory=dict)
    memos: MemoTable = dataclasses.field(default_factory=MemoTable)
    history: list[TraceEntry] = dataclasses.field(default_factory=list)
    queued: bool = False  # in the ready queue now
    seq: int = 0  # creation order within the engine (ties in queues)

    def snapshot(self) -> Run:
        err = None
        if self.error is not None:
            err = RunError(self.error.get("name", "Error"), self.error.get("message", ""),
                           self.error.get("stack"))
        events = [Event.from_payload(e) for e in self.events]
        return Run(
            id=self.id,
            fn_id=self.fn_id,
            status=self.status,
            output=self.output,
            error=err,
            event=events[0] if events else None,
            events=events,
            attempts=self.attempts + (0 if self.started_ms is None else 1),
            created_at=ms_to_datetime(self.created_ms),
            started_at=None if self.started_ms is None else ms_to_datetime(self.started_ms),
            ended_at=None if self.ended_ms is None else ms_to_datetime(self.ended_ms),
            history=tuple(self.history),
            reason=self.reason,
        )


class Wait(typing.NamedTuple):
    """A run parked on ``step.wait_for_event``: what an arriving event is matched against."""

    run: RunState
    step: str
    expr: Expression | None  # the compiled ``if_exp``; None matches every event of the name


#: event name -> (run id, step id) -> the wait (the engine's wait index)
WaitIndex = dict[str, dict[tuple[str, str], Wait]]


@dataclasses.dataclass(frozen=True)
class Run:
    """A snapshot of one run, as users query it."""

    id: str
    fn_id: str
    status: RunStatus
    output: typing.Any
    error: RunError | None
    event: Event | None
    events: list[Event]
    attempts: int
    created_at: datetime.datetime
    started_at: datetime.datetime | None
    ended_at: datetime.datetime | None
    history: tuple[TraceEntry, ...]
    reason: str | None = None

    @property
    def steps(self) -> list[str]:
        """Ids of the steps this run recorded, in order."""
        return [e.step for e in self.history if e.kind in _STEP_DONE and e.step is not None]


@dataclasses.dataclass(frozen=True)
class EventOutcome:
    """What one event did for one function: ``outcome`` is "started", "rate_limited",
    "deduplicated", "debounced", "batched", "skipped" or "throttled" (an idempotency
    duplicate is "rate_limited", as the spec has it), or "expression_error" when a trigger,
    cancel or wait expression could not be evaluated over it (``error`` says why);
    ``run_id`` is the run it started, joined or was skipped as (None if none; for a cancel
    or wait expression, the run whose condition failed)."""

    fn_id: str
    outcome: str
    run_id: str | None
    error: str | None = None


@dataclasses.dataclass(frozen=True)
class EventRecord:
    """An accepted event and what became of it, function by function."""

    id: str
    name: str
    data: dict
    received_at: datetime.datetime
    outcomes: tuple[EventOutcome, ...]

    @property
    def event(self) -> Event:
        return Event(name=self.name, data=self.data)


_STEP_DONE = frozenset({"step.completed", "step.errored", "sleep.completed", "wait.completed",
                        "wait.timed_out", "invoke.completed", "invoke.failed"})
