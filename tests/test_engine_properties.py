"""Property tests: random functions (run/sleep/wait/send steps, random failures and retries)
and random event timings, checked against the reference model in ``reference_interpreter``.

For every run the engine must agree with the model on status, output, error, end time (when
exact), the recorded step ids, and how many times each step body ran (so a completed step
never runs again). The trace must be reproducible from the seed, and identical when every
resume replays the handler (coroutine_cap=0 or 1) instead of resuming a live coroutine.
"""

from __future__ import annotations

import collections
import datetime
import itertools

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from reference_interpreter import (
    SEC,
    External,
    FunctionSpec,
    Outcome,
    RaiseOp,
    RunOp,
    SendOp,
    SleepOp,
    Trigger,
    WaitOp,
    event_time,
    normalize_ops,
    predict,
)

import inngest_do as inngest
from inngest_do.testing import Simulation

#: jitter bound and backoff of plain (non-exact) failures, to check their timing
BACKOFF_S = [15, 30, 60, 120, 300, 600, 1_200, 2_400, 3_600, 7_200]
JITTER_MS = 30 * SEC
EXTERNAL_NAMES = ("ext/a", "ext/b")
STEP_NAMES = ("a", "b", "c")

# ---------------------------------------------------------------------------------- generation


@st.composite
def function_specs(draw: st.DrawFn, index: int) -> FunctionSpec:
    retries = draw(st.sampled_from([None, 0, 1, 2, 3]))
    attempts = 5 if retries is None else retries + 1
    exact = draw(st.booleans())
    names = st.sampled_from(STEP_NAMES)
    delay = st.sampled_from([0, 500, SEC, 5 * SEC, 90 * SEC, 3_600 * SEC, 30 * 3_600 * SEC])
    run = st.builds(
        RunOp, name=names,
        failures=st.integers(0, attempts + 1),
        non_retriable=st.sampled_from([False] * 9 + [True]),
        catch=st.booleans(),
        retry_after_ms=delay,
    ).map(lambda op: op if not (op.non_retriable and op.catch) else
          RunOp(op.name, op.failures, True, False, op.retry_after_ms))
    sleep = st.builds(SleepOp, name=names, seconds=st.integers(0, 120))
    wait = st.builds(WaitOp, name=names, event=st.sampled_from(EXTERNAL_NAMES),
                     timeout_s=st.integers(1, 300), match_k=st.booleans())
    send = st.builds(SendOp, name=names)
    raise_ = st.builds(RaiseOp, failures=st.integers(1, attempts), retry_after_ms=delay)
    kinds = [run, run, sleep, send, raise_] + ([wait, wait] if exact else [])
    ops = draw(st.lists(st.one_of(kinds), min_size=2, max_size=8))
    return FunctionSpec(fn_id=f"fn{index}", ops=normalize_ops(ops, attempts), retries=retries,
                        exact=exact, sync=draw(st.booleans()))


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[list[FunctionSpec], list[Trigger], list[External]]:
    n_fns = draw(st.integers(1, 3))
    fns = [draw(function_specs(i)) for i in range(n_fns)]
    triggers = draw(st.lists(st.builds(Trigger, fn=st.integers(0, n_fns - 1),
                                       at_s=st.integers(0, 300), k=st.integers(0, 2)),
                             min_size=1, max_size=6))
    n_ext = draw(st.integers(0, 10))
    externals = [External(name=draw(st.sampled_from(EXTERNAL_NAMES)),
                          at_ms=event_time(draw(st.integers(0, 400)), j),
                          k=draw(st.integers(0, 2)), j=j) for j in range(n_ext)]
    return fns, triggers, externals


# ------------------------------------------------------------------------ the engine side


class Harness:
    """Builds the generated functions on a client and counts what their bodies do."""

    def __init__(self, fns: list[FunctionSpec]) -> None:
        self.client = inngest.Inngest(app_id="prop")
        self.body_calls: collections.Counter = collections.Counter()  # (run_id, pos)
        self.raise_calls: collections.Counter = collections.Counter()  # (run_id, pos)
        self.attempt_times: dict[tuple[str, int], list[int]] = collections.defaultdict(list)
        self.sim: Simulation | None = None
        self.functions = [self._build(spec) for spec in fns]

        @self.client.create_function(fn_id="sink", trigger=inngest.TriggerEvent(event="sink/x"))
        def sink(ctx: inngest.ContextSync) -> None:
            return None

        self.sink = sink

    def _error(self, spec: FunctionSpec, message: str, retry_after_ms: int) -> Exception:
        if spec.exact:
            return inngest.RetryAfterError(message, retry_after_ms)
        return RuntimeError(message)

    def _body(self, spec: FunctionSpec, run_id: str, pos: int, op: RunOp) -> str:
        key = (run_id, pos)
        self.body_calls[key] += 1
        self.attempt_times[key].append(self.sim.now_ms)
        n = self.body_calls[key]
        if op.non_retriable:
            raise inngest.NonRetriableError(f"{op.name}#nr")
        if n <= op.failures:
            raise self._error(spec, f"{op.name}#{n}", op.retry_after_ms)
        return f"{op.name}-ok"

    def _raise_between(self, spec: FunctionSpec, run_id: str, pos: int, op: RaiseOp) -> None:
        key = (run_id, pos)
        if self.raise_calls[key] < op.failures:
            self.raise_calls[key] += 1
            raise self._error(spec, f"raise@{pos}#{self.raise_calls[key]}", op.retry_after_ms)

    def _build(self, spec: FunctionSpec) -> inngest.Function:
        trigger = inngest.TriggerEvent(event=f"trig/{spec.fn_id}")
        harness = self

        def wait_args(op: WaitOp) -> dict:
            return {"event": op.event, "timeout": datetime.timedelta(seconds=op.timeout_s),
                    "if_exp": "async.data.k == event.data.k" if op.match_k else None}

        if spec.sync:
            def handler(ctx: inngest.ContextSync) -> list:
                out: list = []
                for pos, op in enumerate(spec.ops):
                    if isinstance(op, RaiseOp):
                        harness._raise_between(spec, ctx.run_id, pos, op)
                    elif isinstance(op, RunOp):
                        try:
                            out.append(ctx.step.run(op.name, harness._body, spec, ctx.run_id,
                                                    pos, op))
                        except inngest.StepError as err:
                            if not op.catch:
                                raise
                            out.append(f"caught:{err.message}")
                    elif isinstance(op, SleepOp):
                        out.append(ctx.step.sleep(op.name, op.seconds * SEC))
                    elif isinstance(op, WaitOp):
                        got = ctx.step.wait_for_event(op.name, **wait_args(op))
                        out.append(None if got is None else got.data["j"])
                    else:
                        out.append(len(ctx.step.send_event(op.name, inngest.Event(
                            name="sink/x", data={"from": ctx.run_id, "pos": pos}))))
                return out
        else:
            async def handler(ctx: inngest.Context) -> list:
                out: list = []
                for pos, op in enumerate(spec.ops):
                    if isinstance(op, RaiseOp):
                        harness._raise_between(spec, ctx.run_id, pos, op)
                    elif isinstance(op, RunOp):
                        try:
                            out.append(await ctx.step.run(op.name, harness._body, spec,
                                                          ctx.run_id, pos, op))
                        except inngest.StepError as err:
                            if not op.catch:
                                raise
                            out.append(f"caught:{err.message}")
                    elif isinstance(op, SleepOp):
                        out.append(await ctx.step.sleep(op.name, op.seconds * SEC))
                    elif isinstance(op, WaitOp):
                        got = await ctx.step.wait_for_event(op.name, **wait_args(op))
                        out.append(None if got is None else got.data["j"])
                    else:
                        out.append(len(await ctx.step.send_event(op.name, inngest.Event(
                            name="sink/x", data={"from": ctx.run_id, "pos": pos}))))
                return out

        return self.client.create_function(fn_id=spec.fn_id, trigger=trigger,
                                           retries=spec.retries)(handler)

    def drive(self, triggers: list[Trigger], externals: list[External], *, seed: int,
              cap: int, crash_after: int | None = None) -> Simulation:
        """Send the triggers and external events at their times, then run until idle; with
        ``crash_after``, crash and recover right after that many sends."""
        sim = self.sim = Simulation(self.client, seed=seed, coroutine_cap=cap)
        start = sim.now_ms
        actions = sorted(
            [(tr.at_s * SEC, 0, i, inngest.Event(name=f"trig/fn{tr.fn}", data={"k": tr.k}))
             for i, tr in enumerate(triggers)]
            + [(e.at_ms, 1, e.j, inngest.Event(name=e.name, data={"k": e.k, "j": e.j}))
               for e in externals],
            key=lambda a: a[:3])
        for i, (at, _, _, ev) in enumerate(actions):
            sim.advance(start + at - sim.now_ms)
            sim.send(ev)
            if crash_after is not None and i + 1 == crash_after:
                sim.crash()
        sim.run_until_idle()
        return sim


def engine_outcome(sim: Simulation) -> tuple:
    runs = [(r.id, r.fn_id, str(r.status), r.output, r.error and (r.error.type, r.error.message),
             r.ended_at) for r in sim.runs()]
    return sim.trace, runs


# --------------------------------------------------------------------------------- the checks


def check_against_model(fns: list[FunctionSpec], triggers: list[Trigger],
                        externals: list[External], seed: int,
                        crash_after: int | None = None) -> tuple:
    harness = Harness(fns)
    sim = harness.drive(triggers, externals, seed=seed, cap=10_000, crash_after=crash_after)
    expected = predict(fns, triggers, externals)
    # runs of each function in creation order == its triggers in time order
    order = sorted(range(len(triggers)), key=lambda i: (triggers[i].at_s, i))
    by_fn: dict[int, list[int]] = collections.defaultdict(list)
    for i in order:
        by_fn[triggers[i].fn].append(i)
    total_sends = 0
    for f_index, fn in enumerate(harness.functions):
        runs = sim.runs(fn)
        assert len(runs) == len(by_fn[f_index])
        spec = fns[f_index]
        for run, t_index in zip(runs, by_fn[f_index]):
            exp: Outcome = expected[t_index]
            where = f"{spec} trigger={triggers[t_index]} run={run.id}"
            assert str(run.status) == exp.status, where
            assert run.output == exp.output, where
            if exp.error_type is None:
                assert run.error is None, where
            else:
                assert (run.error.type, run.error.message) == (exp.error_type,
                                                                exp.error_message), where
            if exp.end_ms is not None:
                assert run.ended_at == sim.start + datetime.timedelta(
                    milliseconds=exp.end_ms), where
            assert run.steps == exp.steps, where
            for pos, op in enumerate(spec.ops):
                if isinstance(op, RunOp):
                    assert harness.body_calls[(run.id, pos)] == exp.body_calls.get(pos, 0), \
                        (where, pos)
                    if not spec.exact:
                        check_backoff(harness.attempt_times[(run.id, pos)])
            total_sends += exp.sends
    assert len(sim.runs(harness.sink)) == total_sends
    return engine_outcome(sim)


def check_backoff(times: list[int]) -> None:
    for a, (t0, t1) in enumerate(itertools.pairwise(times)):
        base = BACKOFF_S[min(a, 9)] * SEC
        assert base <= t1 - t0 <= base + JITTER_MS, (a, t1 - t0)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenario=scenarios(), seed=st.integers(0, 2**32))
def test_engine_agrees_with_the_reference_model(scenario, seed):
    fns, triggers, externals = scenario
    first = check_against_model(fns, triggers, externals, seed)
    for _, _, status, output, _, _ in first[1]:
        event(f"run {status}")
        if output and any(isinstance(v, int) and v != 1 for v in output):
            event("a wait got an event")
        if output and None in output:
            event("a sleep or a timed-out wait")
        if output and any(isinstance(v, str) and v.startswith("caught:") for v in output):
            event("a StepError was caught")
    # reproducible: the same code and seed give the same trace, ids and outputs
    again = engine_outcome(Harness(fns).drive(triggers, externals, seed=seed, cap=10_000))
    assert again == first


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenario=scenarios(), seed=st.integers(0, 2**32), cap=st.sampled_from([0, 1]))
def test_replaying_every_resume_gives_the_same_trace(scenario, seed, cap):
    fns, triggers, externals = scenario
    live = engine_outcome(Harness(fns).drive(triggers, externals, seed=seed, cap=10_000))
    harness = Harness(fns)
    replayed = engine_outcome(harness.drive(triggers, externals, seed=seed, cap=cap))
    assert replayed == live
    expected = predict(fns, triggers, externals)
    # bodies ran exactly as often as the model says, replays notwithstanding
    assert sum(harness.body_calls.values()) == sum(sum(o.body_calls.values())
                                                   for o in expected)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenario=scenarios(), seed=st.integers(0, 2**32), data=st.data())
def test_a_crash_between_sends_changes_nothing_the_model_predicts(scenario, seed, data):
    """Crash and recover from the store after a random number of sends: every run still
    ends as the model says, and no step body runs more often than without the crash."""
    fns, triggers, externals = scenario
    crash_after = data.draw(st.integers(1, len(triggers) + len(externals)), label="crash_after")
    check_against_model(fns, triggers, externals, seed, crash_after=crash_after)
