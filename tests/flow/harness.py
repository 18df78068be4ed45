"""Driving a Simulation with a model's stream, and reading back what the models predict.

Only the public API is used: ``create_function``, ``Simulation.send/advance/run_until_idle/
runs/events/now``, ``inngest_do.testing.busy`` (imported lazily, when a step runs).
"""

from __future__ import annotations

import datetime
import difflib
import re
import typing
from collections.abc import Iterable, Sequence

import pytest
from hypothesis import HealthCheck, settings

import inngest_do as inngest
from inngest_do.testing import Simulation

from .models import Expected, ExpectedRun, Stream

MS = datetime.timedelta(milliseconds=1)

#: Hypothesis settings for every stream test: ~50 examples, no deadline (a stream may span
#: days of virtual time), and the example's blob printed so a failure replays exactly.
FLOW = settings(
    max_examples=50,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                           HealthCheck.filter_too_much],
)

#: Outcomes an event may have for a function, as ``sim.events()`` reports them.
OUTCOME_KINDS = frozenset({"started", "rate_limited", "deduplicated", "idempotent", "debounced",
                           "batched", "skipped", "throttled"})
#: Outcomes that name the run they went into.
OUTCOMES_WITH_RUN = frozenset({"started", "debounced", "batched", "skipped", "throttled"})


def new_client(app_id: str = "flow") -> inngest.Inngest:
    return inngest.Inngest(app_id=app_id)


def ev(seq: int, name: str = "flow/ev", *, id: str | None = None,
       **data: typing.Any) -> dict[str, typing.Any]:
    """A stream event: ``data`` holds ``seq`` (the event's name in assertions) and ``data``."""
    event: dict[str, typing.Any] = {"name": name, "data": {"seq": seq, **data}}
    if id is not None:
        event["id"] = id
    return event


def to_event(event: dict[str, typing.Any]) -> inngest.Event:
    if event.get("id"):
        return inngest.Event(name=event["name"], data=event["data"], id=event["id"])
    return inngest.Event(name=event["name"], data=event["data"])


def rel_ms(sim: Simulation, when: datetime.datetime | None) -> int | None:
    """``when`` in ms from the simulation's start (None stays None)."""
    return None if when is None else (when - sim.start) // MS


def now_ms(sim: Simulation) -> int:
    return (sim.now - sim.start) // MS


def advance_to_ms(sim: Simulation, t: int) -> None:
    """Move virtual time to ``t`` ms after the start (timers due up to ``t`` fire)."""
    sim.advance(t - now_ms(sim))


def drive(sim: Simulation, stream: Stream, *, idle: bool = True) -> None:
    """Send each event at its time, one at a time, then run until idle."""
    for t, event in stream:
        advance_to_ms(sim, t)
        sim.send(to_event(event))
    if idle:
        sim.run_until_idle()


# ----------------------------------------------------------------------------- observations


def observed(sim: Simulation, fn: inngest.Function[typing.Any],
             steps: dict[int, int] | None = None, *, skipped: bool = True
             ) -> list[ExpectedRun]:
    """The function's runs in the models' terms (events by ``seq``, times from the start);
    ``skipped=False`` leaves out runs recorded as Skipped."""
    out = []
    for run in sim.runs(fn):
        if not skipped and run.status == "Skipped":
            continue
        seqs = tuple(int(e.data["seq"]) for e in run.events)
        out.append(ExpectedRun(
            seqs,
            str(run.status),
            created_ms=rel_ms(sim, run.created_at),
            started_ms=rel_ms(sim, run.started_at),
            ended_ms=rel_ms(sim, run.ended_at),
            steps=None if steps is None else steps.get(seqs[0], 0) if seqs else 0,
        ))
    return out


def _project(runs: Iterable[ExpectedRun], fields: Sequence[str]) -> list[tuple]:
    return sorted(((r.events,) + tuple(getattr(r, f) for f in fields) for r in runs),
                  key=repr)


def assert_runs(sim: Simulation, fn: inngest.Function[typing.Any],
                expected: Expected | Sequence[Expected], fields: Sequence[str], *,
                steps: dict[int, int] | None = None, skipped: bool = True,
                note: str = "") -> None:
    """The function's runs equal the model's (any of them, when several readings of the
    spec are allowed) on ``fields``; the failure shows the seed and a diff.
    ``skipped=False``: runs the engine recorded as Skipped are not compared (for options
    whose rejected events start no run, where a Skipped record is allowed)."""
    options = [expected] if isinstance(expected, Expected) else list(expected)
    got = _project(observed(sim, fn, steps, skipped=skipped), fields)
    wants = [_project(e.runs, fields) for e in options]
    if got in wants:
        return
    header = f"(events, {', '.join(fields)})"
    diff = "\n".join(difflib.unified_diff(
        [repr(x) for x in wants[0]], [repr(x) for x in got], "model", "engine", lineterm="",
        n=2))
    raise AssertionError(
        f"runs of {fn.id} differ from the model, seed={sim.seed} {note}\n"
        f"rows are {header}\n{diff}")


def _outcome_fields(outcome: typing.Any) -> tuple[str, str, str | None]:
    """``(fn_id, outcome, run_id)`` from an EventOutcome (or a plain 3-tuple)."""
    if hasattr(outcome, "outcome"):
        return outcome.fn_id, outcome.outcome, outcome.run_id
    fn_id, kind, run_id = outcome
    return fn_id, kind, run_id


def outcomes_for(sim: Simulation, fn: inngest.Function[typing.Any]
                 ) -> dict[int, list[tuple[str, str | None]]]:
    """``seq`` -> the outcomes ``sim.events()`` records for ``fn`` (its id or local id)."""
    ids = {fn.id, fn.local_id}
    out: dict[int, list[tuple[str, str | None]]] = {}
    for record in sim.events():
        data = record.data or {}
        if "seq" not in data:
            continue
        for outcome in record.outcomes:
            fn_id, kind, run_id = _outcome_fields(outcome)
            if fn_id in ids:
                out.setdefault(int(data["seq"]), []).append((kind, run_id))
    return out


def assert_outcomes(sim: Simulation, fn: inngest.Function[typing.Any], expected: Expected,
                    *, also: dict[str, set[str]] | None = None) -> None:
    """Every event the model saw has exactly one outcome for ``fn``, of the model's kind (or
    one of ``also[kind]``), naming the run the model puts it in."""
    also = also or {}
    got = outcomes_for(sim, fn)
    runs_by_id = {r.id: tuple(int(e.data["seq"]) for e in r.events) for r in sim.runs(fn)}
    problems = []
    for s, want in sorted(expected.outcomes.items()):
        recorded = got.get(s, [])
        if len(recorded) != 1:
            problems.append(f"event {s}: expected one outcome ({want.kind}), got {recorded}")
            continue
        kind, run_id = recorded[0]
        if kind not in OUTCOME_KINDS:
            problems.append(f"event {s}: unknown outcome {kind!r}")
        if kind != want.kind and kind not in also.get(want.kind, set()):
            problems.append(f"event {s}: outcome {kind!r}, model says {want.kind!r}")
        if kind in OUTCOMES_WITH_RUN and run_id is None:
            problems.append(f"event {s}: outcome {kind!r} names no run")
        if want.run is not None:
            if run_id not in runs_by_id:
                problems.append(f"event {s}: outcome {kind!r} names run {run_id!r}, "
                                "which does not exist")
            elif runs_by_id[run_id] != want.run:
                problems.append(f"event {s}: outcome {kind!r} names the run of events "
                                f"{runs_by_id[run_id]}, model says {want.run}")
    extra = sorted(set(got) - set(expected.outcomes))
    if extra:
        problems.append(f"outcomes for events the function should not see: {extra}")
    if problems:
        raise AssertionError(f"event outcomes of {fn.id}, seed={sim.seed}:\n  "
                             + "\n  ".join(problems[:20]))


# ------------------------------------------------------------------------------ busy steps


class Busy:
    """Step bodies that take virtual time (``inngest_do.testing.busy``) and remember when
    they ran: ``intervals`` holds ``(label, start_ms, end_ms)`` per body executed."""

    def __init__(self) -> None:
        self.sim: Simulation | None = None
        self.intervals: list[tuple[typing.Any, int, int]] = []
        self.bodies: dict[typing.Any, int] = {}

    def attach(self, sim: Simulation) -> Simulation:
        self.sim = sim
        return sim

    def body(self, label: typing.Any, ms: int) -> typing.Callable[[], int]:
        """A step body that takes ``ms`` of virtual time, labelled ``label``."""

        def work() -> int:
            from inngest_do.testing import busy

            assert self.sim is not None, "Busy.attach(sim) first"
            start = now_ms(self.sim)
            self.intervals.append((label, start, start + ms))
            self.bodies[label] = self.bodies.get(label, 0) + 1
            busy(ms)
            return ms

        return work

    def max_overlap(self, group: typing.Callable[[typing.Any], typing.Any] = lambda x: x
                    ) -> dict[typing.Any, int]:
        """Per group of labels, the most bodies executing at one instant ([start, end))."""
        points: dict[typing.Any, list[tuple[int, int]]] = {}
        for label, start, end in self.intervals:
            if end > start:
                pts = points.setdefault(group(label), [])
                pts += [(start, 1), (end, -1)]
        peak = {}
        for g, pts in points.items():
            level = top = 0
            for _, delta in sorted(pts):  # at equal times, ends (-1) come first
                level += delta
                top = max(top, level)
            peak[g] = top
        return peak


# ------------------------------------------------------------------------------- functions

TRIGGER = "flow/ev"


def simple_fn(client: inngest.Inngest, fn_id: str = "f", event: str = TRIGGER,
              **options: typing.Any) -> inngest.Function[typing.Any]:
    """A function that returns the ``seq`` of its events at once."""

    @client.create_function(fn_id=fn_id, trigger=inngest.TriggerEvent(event=event), **options)
    async def fn(ctx: inngest.Context) -> list[int]:
        return [e.data["seq"] for e in ctx.events]

    return fn


def sleepy_fn(client: inngest.Inngest, fn_id: str = "f", event: str = TRIGGER,
              **options: typing.Any) -> inngest.Function[typing.Any]:
    """A function that sleeps ``event.data.ms`` then returns its event's ``seq``."""

    @client.create_function(fn_id=fn_id, trigger=inngest.TriggerEvent(event=event), **options)
    async def fn(ctx: inngest.Context) -> int:
        await ctx.step.sleep("nap", ctx.event.data["ms"])
        return ctx.event.data["seq"]

    return fn


def busy_fn(client: inngest.Inngest, recorder: Busy, fn_id: str = "f", event: str = TRIGGER,
            label: typing.Callable[[inngest.Event], typing.Any] = lambda e: e.data["seq"],
            **options: typing.Any) -> inngest.Function[typing.Any]:
    """A function running ``event.data.steps`` (default 1) steps of ``event.data.ms`` each,
    every step body taking that virtual time (labelled ``label(event)`` in ``recorder``)."""

    @client.create_function(fn_id=fn_id, trigger=inngest.TriggerEvent(event=event), **options)
    async def fn(ctx: inngest.Context) -> int:
        for _ in range(ctx.event.data.get("steps", 1)):
            await ctx.step.run("work", recorder.body(label(ctx.event), ctx.event.data["ms"]))
        return ctx.event.data["seq"]

    return fn


def rejects(options: typing.Callable[[], dict[str, typing.Any]], match: str) -> None:
    """Creating a function with ``options()`` raises ValueError/TypeError matching ``match``
    (the options are built inside, so errors from the option classes count too)."""
    client = new_client()
    with pytest.raises((ValueError, TypeError), match=re.escape(match)):
        simple_fn(client, **options())
