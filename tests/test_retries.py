"""Retries as the Inngest server does them: per-step attempt counters, the backoff schedule
with seeded jitter, errors outside steps, NonRetriableError, RetryAfterError, StepError in the
handler, and on_failure."""

from __future__ import annotations

import collections
import datetime
import itertools

import pytest
from helpers import MIN, SEC, ev, only_run

import inngest_do as inngest
from inngest_do.testing import DEFAULT_START, Simulation

START = DEFAULT_START
HOUR = 60 * MIN
#: delay after failed attempt a (0-based), before a jitter of 0..30 s (SPEC section 2)
BACKOFF = [15 * SEC, 30 * SEC, MIN, 2 * MIN, 5 * MIN, 10 * MIN, 20 * MIN, 40 * MIN, HOUR,
           2 * HOUR]
JITTER = 30 * SEC


def ms(a: datetime.datetime, b: datetime.datetime) -> int:
    delta = b - a
    return delta.days * 86_400_000 + delta.seconds * 1000 + delta.microseconds // 1000


def flaky(log: list, failures: int, result: object = "ok", exc: type = ValueError):
    """A step body failing its first ``failures`` calls; logs (virtual time) per call."""

    def body():
        log.append(sim_now())
        if len(log) <= failures:
            raise exc(f"boom {len(log)}")
        return result

    return body


_current: list[Simulation] = []


def simulate(client: inngest.Inngest, **kw: object) -> Simulation:
    """A Simulation whose virtual time ``sim_now()`` gives to step bodies defined above it."""
    _current[:] = [Simulation(client, **kw)]
    return _current[0]


def sim_now() -> datetime.datetime:
    return _current[0].now


# -------------------------------------------------------------------------------- attempt counts


@pytest.mark.parametrize("retries,expected", [(None, 5), (0, 1), (1, 2), (7, 8)])
def test_a_failing_step_runs_retries_plus_one_times(client, retries, expected):
    log: list = []

    @client.create_function(fn_id="f", trigger=inngest.TriggerEvent(event="go"), retries=retries)
    async def f(ctx: inngest.Context):
        return await ctx.step.run("always-fails", flaky(log, 10**9))

    sim = simulate(client)
    sim.send(ev())
    sim.run_until_idle()
    run = only_run(sim)
    assert len(log) == expected
    assert run.status == "Failed"
    assert run.error.type == "ValueError"
    assert run.error.message == f"boom {expected}"


def test_a_step_that_recovers_completes_the_run(client):
    log: list = []

    @client.create_function(fn_id="f", trigger=inngest.TriggerEvent(event="go"))
    async def f(ctx: inngest.Context):
        return await ctx.step.run("flaky", flaky(log, 4, result={"v": 1}))

    sim = simulate(client)
    sim.send(ev())
    assert only_run(sim).status == "Running"  # waiting for its retry
    sim.run_until_idle()
    run = only_run(sim)
    assert run.status == "Completed" and run.output == {"v": 1}
    assert len(log) == 5


def test_retries_above_twenty_are_rejected(client):
    with pytest.raises(ValueError, match="retries"):
        @client.create_function(fn_id="f", trigger=inngest.TriggerEvent(event="go"), retries=21)
        async def f(ctx: inngest.Context):
            return None


def test_run_attempts_counts_the_attempts_made(client):
    log: list = []

    @client.create_function(fn_id="exhausts", trigger=inngest.TriggerEvent(event="a"))
    async def exhausts(ctx: inngest.Context):
        return await ctx.step.run("s", flaky(log, 10**9))

    @client.create_function(fn_id="at-once", trigger=inngest.TriggerEvent(event="b"))
    async def at_once(ctx: inngest.Context):
        raise inngest.NonRetriableError("no")

    @client.create_function(fn_id="ok", trigger=inngest.TriggerEvent(event="c"))
    async def ok(ctx: inngest.Context):
        return 1

    @client.create_function(fn_id="outside", trigger=inngest.TriggerEvent(event="d"))
    async def outside(ctx: inngest.Context):
        raise ValueError("x")

    sim = simulate(client)
    sim.send([ev("a"), ev("b"), ev("c"), ev("d")])
    sim.run_until_idle()
    assert only_run(sim, ok).attempts == 1
    assert only_run(sim, outside).attempts == 5
    assert only_run(sim, at_once).attempts == 1
    assert only_run(sim, exhausts).attempts == 5


# ---------------------------------------------------------------------------- backoff schedule


def test_step_backoff_schedule_with_jitter(client):
    log: list = []

    @client.create_function(fn_id="f", trigger=inngest.TriggerEvent(event="go"), retries=20)
    async def f(ctx: inngest.Context):
        return await ctx.step.run("always-fails", flaky(log, 10**9))

    sim = simulate(client)
    sim.send(ev())
    sim.run_until_idle()
    assert len(log) == 21
    assert log[0] == START
    delays = [ms(a, b) for a, b in itertools.pairwise(log)]
    for a, delay in enumerate(delays):
        base = BACKOFF[min(a, 9)]
        assert base <= delay <= base + JITTER, (a, delay)
    jitters = [d - BACKOFF[min(a, 9)] for a, d in enumerate(delays)]
    assert len(set(jitters)) > 10  # drawn, not constant
    assert only_run(sim).ended_at == log[-1]


def test_backoff_times_show_in_the_history(client):
    log: list = []

    @client.create_function(fn_id="f", trigger=inngest.TriggerEvent(event="go"), retries=2)
    async def f(ctx: inngest.Context):
        return await ctx.step.run("s", flaky(log, 10**9))

    sim = simulate(client)
    sim.send(ev())
    sim.run_until_idle()
    run = only_run(sim)
    failed = [e for e in run.history if e.kind == "step.failed" and e.step == "s"]
    assert [e.at for e in failed] == log[:2]
    errored = [e for e in run.history if e.kind == "step.errored" and e.step == "s"]
    assert [e.at for e in errored] == [log[2]]


def test_attempt_counter_is_per_step_and_restarts_after_a_success(client):
    attempts: dict[str, list[int]] = collections.defaultdict(list)
    fails = {"a": 2, "b": 4, "c": 0}

    def body(name: str, ctx: inngest.Context):
        attempts[name].append(ctx.attempt)
        if len(attempts[name]) <= fails[name]:
            raise RuntimeError(name)
        return name

    @client.create_function(fn_id="f", trigger=inngest.TriggerEvent(event="go"))
    async def f(ctx: inngest.Context):
        # each step may use all of its 5 attempts: b's 4 failures come after a's 2
        out = [await ctx.step.run(n, body, n, ctx) for n in ("a", "b", "c")]
        return out

    sim = simulate(client)
    sim.send(ev())
    sim.run_until_idle()
    run = only_run(sim)
    assert run.status == "Completed" and run.output == ["a", "b", "c"]
    assert attempts == {"a": [0, 1, 2], "b": [0, 1, 2, 3, 4], "c": [0]}


def test_attempt_backoff_restarts_for_the_next_step(client):
    log_a: list = []
    log_b: list = []

    @client.create_function(fn_id="f", trigger=inngest.TriggerEvent(event="go"))
    async def f(ctx: inngest.Context):
        await ctx.step.run("a", flaky(log_a, 3))
        await ctx.step.run("b", flaky(log_b, 1))

    sim = simulate(client)
    sim.send(ev())
    sim.run_until_idle()
    # b's first retry waits the first backoff (15 s + jitter), not a's fourth
    assert BACKOFF[0] <= ms(log_b[0], log_b[1]) <= BACKOFF[0] + JITTER


def test_sync_handler_retries(client):
    log: list = []
    seen: list[int] = []

    def body(ctx: inngest.ContextSync):
        seen.append(ctx.attempt)
        return flaky(log, 2)()

    @client.create_function(fn_id="f", trigger=inngest.TriggerEvent(event="go"), retries=3)
    def f(ctx: inngest.ContextSync):
        return ctx.step.run("s", body, ctx)

    sim = simulate(client)
    sim.send(ev())
    sim.run_until_idle()
    assert only_run(sim).output == "ok"
    assert seen == [0, 1, 2]
    for a in range(2):
        assert BACKOFF[a] <= ms(log[a], log[a + 1]) <= BACKOFF[a] + JITTER


# --------------------------------------------------------------------------- errors outside steps


def test_error_outside_steps_retries_then_fails_the_run(client):
    calls = collections.Counter()
    tail: list = []

    @client.create_function(fn_id="f", trigger=inngest.TriggerEvent(event="go"))
    async def f(ctx: inngest.Context):
        await ctx.step.run("a", lambda: calls.update(["a"]))
        tail.append((sim.now, ctx.attempt))
        raise KeyError("missing")

    sim = simulate(client)
    sim.send(ev())
    sim.run_until_idle()
    run = only_run(sim)
    assert run.status == "Failed"
    assert run.error.type == "KeyError"
    assert "missing" in run.error.message
    assert calls["a"] == 1  # memoized; only the code after it re-ran
    assert [a for _, a in tail] == [0, 1, 2, 3, 4]
    for a in range(4):
        assert BACKOFF[a] <= ms(tail[a][0], tail[a + 1][0]) <= BACKOFF[a] + JITTER
    assert run.ended_at == tail[-1][0]


def test_error_outside_steps_that_stops_happening_completes(client):
    tries: list = []

    @client.create_function(fn_id="f", trigger=inngest.TriggerEvent(event="go"), retries=2)
    async def f(ctx: inngest.Context):
        tries.append(ctx.attempt)
        if len(tries) < 3:
            raise RuntimeError("transient")
        return "fine"

    sim = simulate(client)
    sim.send(ev())
    sim.run_until_idle()
    assert only_run(sim).output == "fine"
    assert tries == [0, 1, 2]


def test_error_outside_steps_gets_a_fresh_budget_after_each_step(client):
    failed_before: set[str] = set()

    @client.create_function(fn_id="f", trigger=inngest.TriggerEvent(event="go"), retries=1)
    async def f(ctx: inngest.Context):
        # fails once before each step: with retries=1 that is within budget every time
        for name in ("a", "b", "c"):
            if name not in failed_before:
                failed_before.add(name)
                raise RuntimeError(f"before {name}")
            await ctx.step.run(name, lambda: None)
        return "done"

    sim = simulate(client, coroutine_cap=0)
    sim.send(ev())
    sim.run_until_idle()
    run = only_run(sim)
    assert run.status == "Completed"
    assert failed_before == {"a", "b", "c"}


def test_error_outside_steps_exhausts_when_failing_twice_between_steps(client):
    fails: collections.Counter = collections.Counter()

    @client.create_function(fn_id="f", trigger=inngest.TriggerEvent(event="go"), retries=1)
    async def f(ctx: inngest.Context):
        await ctx.step.run("a", lambda: None)
        if fails["after-a"] < 2:
            fails["after-a"] += 1
            raise RuntimeError("after a")
        return "done"

    sim = simulate(client)
    sim.send(ev())
    sim.run_until_idle()
    run = only_run(sim)
    assert run.status == "Failed" and run.error.message == "after a"


# ------------------------------------------------------------------------------ NonRetriableError


def test_non_retriable_error_in_a_step_fails_the_run_at_once(client):
    calls = collections.Counter()

    def body():
        calls["s"] += 1
        raise inngest.NonRetriableError("card declined")

    @client.create_function(fn_id="f", trigger=inngest.TriggerEvent(event="go"))
    async def f(ctx: inngest.Context):
        await ctx.step.run("charge", body)

    sim = simulate(client)
    sim.send(ev())
    run = only_run(sim)
    assert run.status == "Failed"
    assert calls["s"] == 1
    assert run.error.type == "NonRetriableError"
    assert run.error.message == "card declined"
    assert run.ended_at == START


def test_non_retriable_error_outside_steps_fails_at_once(client):
    calls = collections.Counter()

    @client.create_function(fn_id="f", trigger=inngest.TriggerEvent(event="go"))
    async def f(ctx: inngest.Context):
        calls["handler"] += 1
        raise inngest.NonRetriableError("bad input")

    sim = simulate(client)
    sim.send(ev())
    sim.run_until_idle()
    run = only_run(sim)
    assert (run.status, run.error.type, run.error.message) == ("Failed", "NonRetriableError",
                                                               "bad input")
    assert calls["handler"] == 1


# ------------------------------------------------------------------------------- RetryAfterError


@pytest.mark.parametrize("retry_after,delay", [
    (7_000, 7_000),
    (datetime.timedelta(minutes=3), 3 * MIN),
    (datetime.timedelta(milliseconds=1), SEC),             # clamped up to 1 s
    (0, SEC),
    (datetime.timedelta(days=3), 24 * HOUR),              # clamped down to 24 h
], ids=["ms", "timedelta", "below-1s", "zero", "above-24h"])
def test_retry_after_error_sets_exactly_the_delay(client, retry_after, delay):
    log: list = []

    def body():
        log.append(sim_now())
        if len(log) == 1:
            raise inngest.RetryAfterError("slow down", retry_after)
        return "ok"

    @client.create_function(fn_id="f", trigger=inngest.TriggerEvent(event="go"))
    async def f(ctx: inngest.Context):
        return await ctx.step.run("s", body)

    sim = simulate(client)
    sim.send(ev())
    sim.run_until_idle()
    assert only_run(sim).output == "ok"
    assert ms(log[0], log[1]) == delay


@pytest.mark.parametrize("offset,delay", [
    (datetime.timedelta(minutes=42), 42 * MIN),
    (datetime.timedelta(minutes=-5), SEC),                 # in the past: 1 s
    (datetime.timedelta(days=2), 24 * HOUR),
], ids=["future", "past", "beyond-24h"])
def test_retry_after_error_with_a_datetime(client, offset, delay):
    log: list = []

    def body():
        log.append(sim_now())
        if len(log) == 1:
            raise inngest.RetryAfterError("later", sim_now() + offset)
        return "ok"

    @client.create_function(fn_id="f", trigger=inngest.TriggerEvent(event="go"))
    async def f(ctx: inngest.Context):
        return await ctx.step.run("s", body)

    sim = simulate(client)
    sim.send(ev())
    sim.run_until_idle()
    assert ms(log[0], log[1]) == delay


def test_retry_after_error_counts_as_an_attempt(client):
    log: list = []

    def body():
        log.append(sim_now())
        raise inngest.RetryAfterError("again", 2_000)

    @client.create_function(fn_id="f", trigger=inngest.TriggerEvent(event="go"), retries=2)
    async def f(ctx: inngest.Context):
        return await ctx.step.run("s", body)

    sim = simulate(client)
    sim.send(ev())
    sim.run_until_idle()
    run = only_run(sim)
    assert run.status == "Failed" and run.error.type == "RetryAfterError"
    assert [ms(START, t) for t in log] == [0, 2_000, 4_000]


def test_retry_after_error_outside_steps(client):
    log: list = []

    @client.create_function(fn_id="f", trigger=inngest.TriggerEvent(event="go"))
    async def f(ctx: inngest.Context):
        log.append(sim.now)
        if len(log) == 1:
            raise inngest.RetryAfterError("wait", datetime.timedelta(seconds=90))
        return "ok"

    sim = simulate(client)
    sim.send(ev())
    sim.run_until_idle()
    assert only_run(sim).output == "ok"
    assert ms(log[0], log[1]) == 90 * SEC


# ------------------------------------------------------------------------------------- StepError


def test_handler_can_catch_step_error_and_go_on(client):
    log: list = []

    @client.create_function(fn_id="f", trigger=inngest.TriggerEvent(event="go"), retries=1)
    async def f(ctx: inngest.Context):
        try:
            await ctx.step.run("fragile", flaky(log, 10**9, exc=ZeroDivisionError))
        except inngest.StepError as err:
            caught = {"name": err.name, "message": err.message, "has_stack": bool(err.stack)}
        else:
            caught = None
        after = await ctx.step.run("after", lambda: "went on")
        return {"caught": caught, "after": after}

    sim = simulate(client, coroutine_cap=0)
    sim.send(ev())
    sim.run_until_idle()
    run = only_run(sim)
    assert run.status == "Completed"
    assert run.output == {"caught": {"name": "ZeroDivisionError", "message": "boom 2",
                                     "has_stack": True}, "after": "went on"}
    assert len(log) == 2


def test_step_error_is_memoized_on_replay(client):
    log: list = []
    seen: list = []

    @client.create_function(fn_id="f", trigger=inngest.TriggerEvent(event="go"), retries=0)
    def f(ctx: inngest.ContextSync):  # sync: replays from the start on every resume
        try:
            ctx.step.run("fragile", flaky(log, 10**9))
        except inngest.StepError as err:
            seen.append(err.message)
        ctx.step.sleep("nap", MIN)
        return "done"

    sim = simulate(client)
    sim.send(ev())
    sim.run_until_idle()
    assert only_run(sim).output == "done"
    assert len(log) == 1
    assert seen == ["boom 1", "boom 1"]


def test_step_error_is_an_exception_not_retried_itself(client):
    handler_calls = collections.Counter()
    log: list = []

    @client.create_function(fn_id="f", trigger=inngest.TriggerEvent(event="go"), retries=1)
    async def f(ctx: inngest.Context):
        handler_calls["n"] += 1
        await ctx.step.run("fails", flaky(log, 10**9))

    sim = simulate(client, coroutine_cap=0)
    sim.send(ev())
    sim.run_until_idle()
    run = only_run(sim)
    assert run.status == "Failed"
    # 2 attempts of the step; the uncaught StepError then fails the run with no more retries
    assert handler_calls["n"] == 2
    assert run.error.type == "ValueError" and run.error.message == "boom 2"


# ------------------------------------------------------------------------------------ on_failure


def test_on_failure_runs_with_the_failure_event(client):
    failures: list = []

    async def on_failure(ctx: inngest.Context):
        failures.append(ctx.event)
        return "handled"

    @client.create_function(fn_id="charge", trigger=inngest.TriggerEvent(event="go"),
                            retries=1, on_failure=on_failure)
    async def charge(ctx: inngest.Context):
        await ctx.step.run("s", flaky([], 10**9, exc=TimeoutError))

    sim = simulate(client)
    sim.send(ev(order=9))
    sim.run_until_idle()
    run = only_run(sim, charge)
    assert run.status == "Failed"
    assert len(failures) == 1
    event = failures[0]
    assert event.name == "inngest/function.failed"
    data = event.data
    assert data["function_id"] == charge.id
    assert data["run_id"] == run.id
    assert data["event"]["name"] == "go" and data["event"]["data"] == {"order": 9}
    assert data["error"]["name"] == "TimeoutError"
    assert data["error"]["message"] == "boom 2"
    assert isinstance(data["error"]["stack"], str)
    handled = [r for r in sim.runs() if r.fn_id != charge.id]
    assert [r.output for r in handled] == ["handled"]


def test_on_failure_sync_handler_and_not_called_on_success(client):
    failures: list = []

    def on_failure(ctx: inngest.ContextSync):
        failures.append(ctx.event.data["run_id"])

    @client.create_function(fn_id="f", trigger=inngest.TriggerEvent(event="go"), retries=0,
                            on_failure=on_failure)
    def f(ctx: inngest.ContextSync):
        if ctx.event.data["fail"]:
            raise RuntimeError("nope")
        return "ok"

    sim = simulate(client)
    sim.send([ev(fail=False), ev(fail=True)])
    sim.run_until_idle()
    ok, failed = sim.runs(f)
    assert (ok.status, failed.status) == ("Completed", "Failed")
    assert failures == [failed.id]


def test_on_failure_only_for_its_own_function(client):
    failures: list = []

    async def on_failure(ctx: inngest.Context):
        failures.append(ctx.event.data["function_id"])

    @client.create_function(fn_id="watched", trigger=inngest.TriggerEvent(event="go"),
                            retries=0, on_failure=on_failure)
    async def watched(ctx: inngest.Context):
        raise RuntimeError("x")

    @client.create_function(fn_id="other", trigger=inngest.TriggerEvent(event="go"), retries=0)
    async def other(ctx: inngest.Context):
        raise RuntimeError("y")

    sim = simulate(client)
    sim.send(ev())
    sim.run_until_idle()
    assert failures == [watched.id]


def test_a_failing_on_failure_handler_does_not_loop(client):
    calls = collections.Counter()

    async def on_failure(ctx: inngest.Context):
        calls["on_failure"] += 1
        raise RuntimeError("handler broke too")

    @client.create_function(fn_id="f", trigger=inngest.TriggerEvent(event="go"), retries=0,
                            on_failure=on_failure)
    async def f(ctx: inngest.Context):
        raise RuntimeError("x")

    sim = simulate(client)
    sim.send(ev())
    sim.run_until_idle()
    assert calls["on_failure"] == 1  # retries=0 is inherited; no failure of the failure handler
    assert [r.status for r in sim.runs()] == ["Failed", "Failed"]


def test_failed_event_can_trigger_other_functions(client):
    @client.create_function(fn_id="f", trigger=inngest.TriggerEvent(event="go"), retries=0)
    async def f(ctx: inngest.Context):
        raise RuntimeError("x")

    @client.create_function(fn_id="watcher",
                            trigger=inngest.TriggerEvent(event="inngest/function.failed"))
    async def watcher(ctx: inngest.Context):
        return ctx.event.data["function_id"]

    sim = simulate(client)
    sim.send(ev())
    assert [r.output for r in sim.runs(watcher)] == [f.id]
