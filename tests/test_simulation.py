"""The Simulation: a virtual clock, reproducibility from the seed (and across kernels), years
of virtual time, the coroutine cap (replay path == live path), crashes with recovery, and
run_until_idle's bound."""

from __future__ import annotations

import collections
import contextlib
import datetime
import os
import signal
import subprocess
import sys

import pytest
from helpers import MIN, SEC, ev

import inngest_do as inngest
from inngest_do.testing import DEFAULT_START, Simulation, SimulationError

START = DEFAULT_START
UTC = datetime.timezone.utc
HOUR = 60 * MIN
DAY = 24 * HOUR


class Hung(BaseException):
    """Raised by :func:`deadline` (a BaseException, so no engine ``except`` swallows it)."""


@contextlib.contextmanager
def deadline(seconds: float):
    """Fail instead of hanging: interrupt the block after ``seconds`` of wall time."""

    def on_alarm(signum, frame):
        raise Hung(f"still running after {seconds} s")

    old = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


# --------------------------------------------------------------------- a scenario using everything


def build_app(calls: collections.Counter | None = None) -> inngest.Inngest:
    """An app exercising retries (jitter), sleeps, waits, sends, invokes, parallel, cron,
    failures and on_failure. ``calls`` counts step-body executions by step id."""
    calls = calls if calls is not None else collections.Counter()
    client = inngest.Inngest(app_id="shop")

    def body(name: str, fail_times: int = 0, value: object = None):
        calls[name] += 1
        if calls[name] <= fail_times:
            raise RuntimeError(f"{name} failed #{calls[name]}")
        return value if value is not None else name

    @client.create_function(fn_id="enrich", trigger=inngest.TriggerEvent(event="never"))
    async def enrich(ctx: inngest.Context):
        await ctx.step.sleep("think", 3 * SEC)
        return {"score": ctx.event.data["n"] * 3}

    async def on_failure(ctx: inngest.Context):
        return ctx.event.data["error"]["message"]

    @client.create_function(fn_id="order", trigger=inngest.TriggerEvent(event="order/*"),
                            retries=3, on_failure=on_failure)
    async def order(ctx: inngest.Context):
        n = ctx.event.data["n"]
        user = await ctx.step.run(f"fetch-{n}", body, f"fetch-{n}", n % 3, {"u": n})
        await ctx.step.sleep("cool-off", (n % 4 + 1) * MIN)
        scored = await ctx.step.invoke("enrich", function=enrich, data={"n": n})
        a, _ = await ctx.group.parallel((
            lambda: ctx.step.run(f"left-{n}", body, f"left-{n}", 1),
            lambda: ctx.step.sleep("pause", 30 * SEC)))
        got = await ctx.step.wait_for_event(
            "paid", event="pay", timeout=HOUR, if_exp="async.data.n == event.data.n")
        await ctx.step.send_event("notify", ev("shop/notified", n=n))
        if n % 5 == 4:
            await ctx.step.run(f"doomed-{n}", body, f"doomed-{n}", 99)
        return {"user": user, "scored": scored, "left": a, "paid": got is not None}

    @client.create_function(fn_id="notified", trigger=inngest.TriggerEvent(event="shop/*"))
    def notified(ctx: inngest.ContextSync):
        return ctx.step.run(f"ack-{ctx.event.data['n']}", lambda: ctx.event.data["n"])

    @client.create_function(fn_id="report", trigger=inngest.TriggerCron(cron="*/20 * * * *"))
    async def report(ctx: inngest.Context):
        return ctx.event.data["scheduledAt"]

    return client


def drive(sim: Simulation, n_orders: int = 6) -> None:
    sim.send([ev("order/created", n=i) for i in range(n_orders)])
    sim.advance(7 * MIN)
    sim.send([ev("pay", n=i) for i in range(0, n_orders, 2)])
    sim.advance(2 * HOUR)
    sim.run_until_idle()


def outcome(sim: Simulation) -> tuple:
    runs = [(r.id, r.fn_id, str(r.status), r.output, r.error and r.error.message)
            for r in sim.runs()]
    return sim.trace, runs


def scenario(seed: int = 0, cap: int = 10_000) -> tuple:
    """The whole observable outcome of the scenario: (trace, runs)."""
    sim = Simulation(build_app(), seed=seed, coroutine_cap=cap)
    drive(sim)
    return outcome(sim)


# ------------------------------------------------------------------------------- reproducibility


def test_same_seed_same_code_identical_trace_ids_and_outputs():
    first = scenario(seed=7)
    second = scenario(seed=7)
    assert first == second
    trace, runs = first
    assert len(trace) > 100
    statuses = collections.Counter(r[2] for r in runs)
    assert statuses["Completed"] > 10 and statuses["Failed"] == 1


def test_different_seeds_give_different_ids_and_jitter():
    trace_a, runs_a = scenario(seed=1)
    trace_b, runs_b = scenario(seed=2)
    assert {r[0] for r in runs_a}.isdisjoint({r[0] for r in runs_b})
    retry_times = [[e.at_ms for e in t if e.kind == "step.failed"] for t in (trace_a, trace_b)]
    assert retry_times[0] and retry_times[0] != retry_times[1]
    # the same things happened (at other times, to runs with other ids)
    assert sorted(repr(r[1:]) for r in runs_a) == sorted(repr(r[1:]) for r in runs_b)


def test_trace_is_in_time_order():
    trace, _ = scenario()
    at = [e.at_ms for e in trace]
    assert at == sorted(at)


_CROSS_KERNEL = """
import sys
sys.path.insert(0, {tests!r})
import inngest_do, test_simulation
trace, runs = test_simulation.scenario(seed=3)
print(inngest_do._core_impl)
print(repr((trace, runs)))
"""


def test_compiled_and_pure_kernels_give_the_same_trace():
    try:
        import inngest_do._core  # noqa: F401
    except ImportError:
        pytest.skip("compiled kernel not built")
    code = _CROSS_KERNEL.format(tests=os.path.dirname(__file__))
    out = {}
    for pure in ("0", "1"):
        env = {**os.environ, "INNGEST_DO_PURE_PYTHON": pure,
               "PYTHONPATH": os.pathsep.join([os.path.dirname(os.path.dirname(__file__)),
                                              os.environ.get("PYTHONPATH", "")])}
        proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                              text=True, timeout=120, check=False)
        assert proc.returncode == 0, proc.stderr
        impl, result = proc.stdout.split("\n", 1)
        out[impl] = result
    assert set(out) == {"compiled", "pure"}
    assert out["compiled"] == out["pure"]


# ---------------------------------------------------------------------------------- the clock


def test_now_is_aware_and_virtual():
    client = inngest.Inngest(app_id="clock")
    sim = Simulation(client)
    assert sim.now == START and sim.now.tzinfo is not None
    sim.advance(datetime.timedelta(days=1, milliseconds=5))
    assert sim.now == START + datetime.timedelta(days=1, milliseconds=5)
    naive = Simulation(inngest.Inngest(app_id="n"), start=datetime.datetime(2030, 6, 1, 12))
    assert naive.now == datetime.datetime(2030, 6, 1, 12, tzinfo=UTC)
    paris = datetime.timezone(datetime.timedelta(hours=2))
    other = Simulation(inngest.Inngest(app_id="p"),
                       start=datetime.datetime(2030, 6, 1, 14, tzinfo=paris))
    assert other.now == datetime.datetime(2030, 6, 1, 12, tzinfo=UTC)


def test_step_bodies_see_virtual_time(client):
    @client.create_function(fn_id="f", trigger=inngest.TriggerEvent(event="go"))
    async def f(ctx: inngest.Context):
        t0 = await ctx.step.run("t0", lambda: sim.now.isoformat())
        await ctx.step.sleep("s", datetime.timedelta(days=30))
        t1 = await ctx.step.run("t1", lambda: sim.now.isoformat())
        return [t0, t1]

    sim = Simulation(client, start=datetime.datetime(2031, 1, 1, tzinfo=UTC))
    sim.send(ev())
    sim.run_until_idle()
    assert sim.runs()[0].output == ["2031-01-01T00:00:00+00:00", "2031-01-31T00:00:00+00:00"]


def test_advance_zero_and_invalid_advances(client):
    @client.create_function(fn_id="f", trigger=inngest.TriggerEvent(event="go"))
    async def f(ctx: inngest.Context):
        await ctx.step.sleep("s", 1)
        return "ok"

    sim = Simulation(client)
    sim.advance(0)
    assert sim.now == START
    sim.send(ev())
    sim.advance(0)
    assert sim.runs()[0].status == "Sleeping"
    sim.advance(1)
    assert sim.runs()[0].status == "Completed"
    with pytest.raises(ValueError):
        sim.advance(-1)
    with pytest.raises(ValueError):
        sim.advance_to(START)
    with pytest.raises(TypeError):
        sim.advance("1h")
    with pytest.raises(TypeError):
        Simulation(client, seed="1")


def test_advance_runs_timers_in_time_order(client):
    order: list = []

    @client.create_function(fn_id="f", trigger=inngest.TriggerEvent(event="go"))
    async def f(ctx: inngest.Context):
        await ctx.step.sleep("s", ctx.event.data["ms"])
        await ctx.step.run("note", lambda: order.append((ctx.event.data["ms"], sim.now_ms)))

    sim = Simulation(client)
    sim.send([ev(ms=m) for m in (500, 100, 300, 100, 200)])
    sim.advance(1_000)
    start = sim.now_ms - 1_000
    assert order == [(m, start + m) for m in (100, 100, 200, 300, 500)]
    assert sim.now_ms == start + 1_000


def test_advance_to_an_absolute_time(client):
    @client.create_function(fn_id="f", trigger=inngest.TriggerEvent(event="go"))
    async def f(ctx: inngest.Context):
        await ctx.step.sleep_until("s", datetime.datetime(2025, 2, 1, tzinfo=UTC))

    sim = Simulation(client)
    sim.send(ev())
    sim.advance_to(datetime.datetime(2025, 2, 1, tzinfo=UTC))
    assert sim.runs()[0].status == "Completed"
    assert sim.now == datetime.datetime(2025, 2, 1, tzinfo=UTC)


# -------------------------------------------------------------------------------- idleness bound


def test_run_until_idle_stops_a_function_that_retriggers_itself_with_a_sleep(client):
    @client.create_function(fn_id="loop", trigger=inngest.TriggerEvent(event="tick"))
    async def loop(ctx: inngest.Context):
        await ctx.step.sleep("s", SEC)
        await ctx.step.send_event("again", ev("tick"))

    sim = Simulation(client, seed=42, max_iterations=50)
    sim.send(ev("tick"))
    with deadline(20), pytest.raises(SimulationError, match="seed=42"):
        sim.run_until_idle()
    with pytest.raises(SimulationError, match="10 iterations"):
        sim.run_until_idle(max_iterations=10)


def test_a_function_that_retriggers_itself_at_once_is_bounded(client):
    @client.create_function(fn_id="loop", trigger=inngest.TriggerEvent(event="tick"))
    async def loop(ctx: inngest.Context):
        await ctx.step.send_event("again", ev("tick"))

    sim = Simulation(client, max_iterations=1_000)
    with deadline(3), pytest.raises(SimulationError, match="seed="):
        sim.send(ev("tick"))
        sim.run_until_idle()


def test_run_until_idle_returns_with_only_cron_left(client):
    @client.create_function(fn_id="c", trigger=inngest.TriggerCron(cron="* * * * *"))
    async def c(ctx: inngest.Context):
        return 1

    @client.create_function(fn_id="f", trigger=inngest.TriggerEvent(event="go"))
    async def f(ctx: inngest.Context):
        await ctx.step.sleep("s", 150 * SEC)

    sim = Simulation(client)
    sim.send(ev())
    sim.run_until_idle()
    assert sim.now == START + datetime.timedelta(seconds=150)
    assert len(sim.runs(c)) == 2  # the ticks at 1 and 2 minutes fired on the way


# ---------------------------------------------------------------------------- years of time


def test_a_sleep_of_three_years(client):
    @client.create_function(fn_id="f", trigger=inngest.TriggerEvent(event="go"))
    async def f(ctx: inngest.Context):
        await ctx.step.sleep("long", datetime.timedelta(days=3 * 365, milliseconds=1))
        return await ctx.step.run("t", lambda: sim.now.isoformat())

    sim = Simulation(client)
    sim.send(ev())
    with deadline(10):
        sim.advance(datetime.timedelta(days=3 * 365))
        assert sim.runs()[0].status == "Sleeping"
        sim.advance(1)
    due = START + datetime.timedelta(days=3 * 365, milliseconds=1)
    assert sim.runs()[0].output == due.isoformat()


def test_sleeps_past_the_float_clock_limit_are_exact(client):
    # 2**24 s (about 194 days) is where asyncio-style float clocks stop resolving 1e-9 s
    step_ms = 2**24 * SEC + 1

    @client.create_function(fn_id="f", trigger=inngest.TriggerEvent(event="go"))
    async def f(ctx: inngest.Context):
        for i in range(5):
            await ctx.step.sleep("hop", step_ms)
        return "ok"

    sim = Simulation(client)
    sim.send(ev())
    with deadline(10):
        sim.run_until_idle()
    run = sim.runs()[0]
    done = [e.at_ms for e in run.history if e.kind == "sleep.completed"]
    start = int(START.timestamp()) * SEC
    assert done == [start + (i + 1) * step_ms for i in range(5)]


def test_daily_cron_for_400_days(client):
    @client.create_function(fn_id="daily", trigger=inngest.TriggerCron(cron="0 0 * * *"))
    async def daily(ctx: inngest.Context):
        await ctx.step.sleep("half-day", 12 * HOUR)
        return ctx.event.data["scheduledAt"]

    sim = Simulation(client)
    with deadline(30):
        sim.advance(datetime.timedelta(days=400))
    runs = sim.runs(daily)
    assert len(runs) == 400
    expected = [START + datetime.timedelta(days=d) for d in range(1, 401)]
    assert [r.created_at for r in runs] == expected
    assert [datetime.datetime.fromisoformat(r.output) for r in runs[:-1]] == expected[:-1]
    assert runs[-1].status == "Sleeping"
    assert sim.now == START + datetime.timedelta(days=400)


# --------------------------------------------------------------------------- the coroutine cap


def many_sleepers(cap: int | None, n: int = 40) -> tuple:
    calls: collections.Counter = collections.Counter()
    client = inngest.Inngest(app_id="cap")

    @client.create_function(fn_id="f", trigger=inngest.TriggerEvent(event="go"))
    async def f(ctx: inngest.Context):
        n = ctx.event.data["n"]
        total = 0
        for i in range(4):
            total += await ctx.step.run(f"w{i}", lambda i=i: calls.update([(n, i)]) or n * i)
            await ctx.step.sleep(f"s{i}", (n * 7919 % 13 + 1) * SEC)
        got = await ctx.step.wait_for_event("w", event="done", timeout=MIN,
                                            if_exp="async.data.n == event.data.n")
        return {"total": total, "got": got is not None}

    kw = {} if cap is None else {"coroutine_cap": cap}
    sim = Simulation(client, seed=5, **kw)
    sim.send([ev(n=i) for i in range(n)])
    sim.advance(20 * SEC)
    sim.send([ev("done", n=i) for i in range(0, n, 3)])
    sim.run_until_idle()
    assert set(calls.values()) == {1}  # every step body ran exactly once
    return outcome(sim)


def test_coroutine_cap_does_not_change_outputs_or_trace():
    default = many_sleepers(None)
    assert many_sleepers(1) == default
    assert many_sleepers(0) == default
    assert many_sleepers(7) == default
    assert all(r[2] == "Completed" for r in default[1])


def test_scenario_is_the_same_with_every_resume_replayed():
    assert scenario(seed=11, cap=0) == scenario(seed=11)


# -------------------------------------------------------------------------------------- crashes


def drive_with_crash(calls: collections.Counter, crash_at_ms: int | None) -> tuple:
    """``drive`` (orders at 0, payments at 7 min, 2 h more, then idle), with a crash and
    recovery at ``crash_at_ms`` after the start; returns (runs, body calls before the crash)."""
    sim = Simulation(build_app(calls), seed=9)
    before: dict = {}

    def go_to(ms: int) -> None:
        if crash_at_ms is not None and not before and sim.now_ms - start < crash_at_ms <= ms:
            sim.advance(crash_at_ms - (sim.now_ms - start))
            before.update(calls)
            sim.crash()
        sim.advance(ms - (sim.now_ms - start))

    start = sim.now_ms
    sim.send([ev("order/created", n=i) for i in range(6)])
    go_to(7 * MIN)
    sim.send([ev("pay", n=i) for i in range(0, 6, 2)])
    go_to(7 * MIN + 2 * HOUR)
    sim.run_until_idle()
    runs = sorted(repr((r.fn_id, str(r.status), r.output, r.error and r.error.message))
                  for r in sim.runs())
    return runs, before


@pytest.mark.parametrize("crash_at_ms", [1, 30 * SEC, 2 * MIN, 6 * MIN, 7 * MIN + 1,
                                         7 * MIN + 5 * SEC, 20 * MIN, 90 * MIN])
def test_crash_and_recover_gives_the_same_outcome(crash_at_ms):
    base_calls: collections.Counter = collections.Counter()
    base_runs, _ = drive_with_crash(base_calls, None)
    calls: collections.Counter = collections.Counter()
    runs, before = drive_with_crash(calls, crash_at_ms)
    assert before, "the crash happened"
    assert runs == base_runs
    # a crash lands between slices here, never inside a step body: every body ran exactly
    # as often as without a crash, so none recorded before the crash ran again
    assert calls == base_calls


def test_crash_keeps_history_and_never_reruns_recorded_steps(client):
    calls: collections.Counter = collections.Counter()

    def body(name: str) -> str:
        calls[name] += 1
        return name

    @client.create_function(fn_id="f", trigger=inngest.TriggerEvent(event="go"))
    async def f(ctx: inngest.Context):
        a = await ctx.step.run("a", body, "a")
        await ctx.step.sleep("s", MIN)
        b = await ctx.step.run("b", body, "b")
        got = await ctx.step.wait_for_event("w", event="ok", timeout=HOUR)
        c = await ctx.step.run("c", body, "c")
        return [a, b, c, got.data]

    sim = Simulation(client)
    [run_id] = [r.id for r in (sim.send(ev()) and sim.runs())]
    sim.crash()  # sleeping
    sim.advance(MIN)
    assert sim.get_run(run_id).status == "Waiting"
    sim.crash()  # waiting
    sim.send(ev("ok", v=1))
    run = sim.get_run(run_id)
    assert run.status == "Completed"
    assert run.output == ["a", "b", "c", {"v": 1}]
    assert calls == {"a": 1, "b": 1, "c": 1}
    assert run.steps == ["a", "s", "b", "w", "c"]
    assert [e.kind for e in run.history][:2] == ["run.queued", "run.started"]


def test_crash_with_a_retry_pending(client):
    calls: collections.Counter = collections.Counter()

    def flaky():
        calls["flaky"] += 1
        if calls["flaky"] < 3:
            raise RuntimeError("again")
        return "ok"

    @client.create_function(fn_id="f", trigger=inngest.TriggerEvent(event="go"))
    async def f(ctx: inngest.Context):
        return await ctx.step.run("flaky", flaky)

    sim = Simulation(client)
    sim.send(ev())
    sim.crash()
    sim.advance(50 * SEC)
    sim.crash()
    sim.run_until_idle()
    run = sim.runs()[0]
    assert run.output == "ok" and calls["flaky"] == 3


def test_sync_handler_survives_a_crash(client):
    calls: collections.Counter = collections.Counter()

    @client.create_function(fn_id="f", trigger=inngest.TriggerEvent(event="go"))
    def f(ctx: inngest.ContextSync):
        a = ctx.step.run("a", lambda: calls.update(["a"]) or 1)
        ctx.step.sleep("s", DAY)
        b = ctx.step.run("b", lambda: calls.update(["b"]) or 2)
        return a + b

    sim = Simulation(client)
    sim.send(ev())
    sim.advance(HOUR)
    sim.crash()
    sim.advance(DAY)
    assert sim.runs()[0].output == 3
    assert calls == {"a": 1, "b": 1}
