"""A lone ``step.sleep`` ends inside its own slice during a Simulation's virtual-time drive.

It must be invisible except for speed: every workload here runs twice, with the shortcut on
and off (``engine.driver.skip_sleeps``), and everything observable must be equal — the trace,
every run as queried, the store's records, the clock, the errors raised. Each workload also
checks that the shortcut was taken (or, where something could observe the gap, that it was
not) by counting the sleeps that parked.
"""

from __future__ import annotations

import datetime
import typing

import pytest
from helpers import MIN, SEC, ev
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_engine_properties import Harness, engine_outcome, scenarios

import inngest_do as inngest
from inngest_do.engine import Engine
from inngest_do.testing import Simulation, SimulationError

Scenario = typing.Callable[[Simulation], object]


def _observe(sim: Simulation) -> dict:
    runs = sim.runs()
    return {
        "trace": sim.trace,
        "now": sim.now_ms,
        "runs": [(r.id, r.status, r.output, r.error, r.attempts, r.started_at, r.ended_at,
                  r.history) for r in runs],
        "store": sim.engine.store.load_runs(),
        "pending": {run.id: {k: (p.kind, p.due_ms) for k, p in run.pending.items()}
                    for run in sim.engine.runs.values()},
    }


def _run(make: typing.Callable[[], inngest.Inngest], scenario: Scenario, skip: bool,
         **sim_kw: typing.Any) -> tuple[dict, object, int]:
    sim = Simulation(make(), seed=7, **sim_kw)
    engine = sim.engine
    if not skip:
        engine.driver.skip_sleeps = False
    parked = [0]
    park_sleep = engine.park_sleep

    def counting(*args: typing.Any) -> None:
        parked[0] += 1
        park_sleep(*args)

    engine.park_sleep = counting  # type: ignore[method-assign]
    try:
        result: object = scenario(sim)
    except SimulationError as err:
        result = ("raised", str(err))
    return _observe(sim), result, parked[0]


def both(make: typing.Callable[[], inngest.Inngest], scenario: Scenario,
         **sim_kw: typing.Any) -> tuple[int, int]:
    """Run ``scenario`` with the shortcut on and off, assert everything observable is
    equal, and return how many sleeps parked with it on and off."""
    on, result_on, parked_on = _run(make, scenario, True, **sim_kw)
    off, result_off, parked_off = _run(make, scenario, False, **sim_kw)
    assert result_on == result_off
    for key in on:
        assert on[key] == off[key], key
    return parked_on, parked_off


def _sleeper(n: int, ms: int = SEC, fn_id: str = "sleeper",
             event: str = "go") -> typing.Callable[[], inngest.Inngest]:
    def make() -> inngest.Inngest:
        client = inngest.Inngest(app_id="skip")

        @client.create_function(fn_id=fn_id, trigger=inngest.TriggerEvent(event=event))
        async def sleeper(ctx: inngest.Context) -> list:
            seen = []
            for i in range(n):
                await ctx.step.sleep("z", ms)
                seen.append(await ctx.step.run(f"at-{i}", lambda: ctx.attempt))
            return seen

        return client
    return make


def test_a_loop_of_sleeps_ends_in_one_slice_with_the_same_trace() -> None:
    def scenario(sim: Simulation) -> object:
        sim.send(ev())
        sim.run_until_idle()
        return sim.runs()[0].output

    parked_on, parked_off = both(_sleeper(50), scenario)
    assert parked_off == 50 and parked_on == 1  # the first parks: send drives to "now" only


def test_sleep_until_ends_in_its_slice_too() -> None:
    def make() -> inngest.Inngest:
        client = inngest.Inngest(app_id="skip")

        @client.create_function(fn_id="until", trigger=inngest.TriggerEvent(event="go"))
        async def until(ctx: inngest.Context) -> list:
            start = datetime.datetime(2025, 1, 1, tzinfo=datetime.timezone.utc)
            out = []
            for i, minutes in enumerate((5, 3, 60, 60, 90)):  # 3: already past
                await ctx.step.sleep_until(f"u{i}", start + datetime.timedelta(minutes=minutes))
                out.append(await ctx.step.run(f"r{i}", lambda i=i: i))
            return out

        return client

    def scenario(sim: Simulation) -> object:
        sim.send(ev())
        sim.advance(30 * MIN)
        sim.run_until_idle()
        return sim.runs()[0].output

    parked_on, parked_off = both(make, scenario)
    assert parked_on < parked_off


def test_advance_never_moves_past_its_target() -> None:
    def scenario(sim: Simulation) -> object:
        sim.send(ev())
        seen = []
        for step in (3_500, 0, 499, 1, 10_000, 60_000):
            sim.advance(step)
            run = sim.runs()[0]
            seen.append((sim.now_ms, run.status, len(run.history)))
        return seen

    parked_on, parked_off = both(_sleeper(20), scenario)
    assert parked_on < parked_off == 20


def test_runs_interleaving_sleeps_keep_their_order() -> None:
    def make() -> inngest.Inngest:
        client = inngest.Inngest(app_id="skip")
        for fn_id, ms in (("fast", 700), ("slow", 1_900)):
            @client.create_function(fn_id=fn_id, trigger=inngest.TriggerEvent(event="go"))
            async def fn(ctx: inngest.Context, ms: int = ms) -> int:
                for _ in range(6):
                    await ctx.step.sleep("z", ms)
                return ms
        return client

    def scenario(sim: Simulation) -> object:
        sim.send(ev())
        sim.advance(2 * SEC)
        sim.send(ev())  # two more runs, half-way through
        sim.run_until_idle()
        return [r.output for r in sim.runs()]

    parked_on, parked_off = both(make, scenario)
    assert parked_on < parked_off  # the last slow sleeps are alone


def test_retries_attempts_and_failures_around_sleeps() -> None:
    def make() -> inngest.Inngest:
        client = inngest.Inngest(app_id="skip")
        calls = {"n": 0}

        @client.create_function(fn_id="flaky", trigger=inngest.TriggerEvent(event="go"),
                                retries=3)
        async def flaky(ctx: inngest.Context) -> list:
            out = [ctx.attempt]
            await ctx.step.sleep("a", SEC)
            out.append(ctx.attempt)

            def body() -> int:
                calls["n"] += 1
                if calls["n"] < 3:
                    raise RuntimeError("not yet")
                return calls["n"]

            out.append(await ctx.step.run("b", body))
            await ctx.step.sleep("c", 5 * MIN)
            out.append(ctx.attempt)
            if ctx.attempt == 0 and len(out) == 4 and calls["n"] == 3:
                calls["n"] += 1
                raise ValueError("the function fails once after its sleeps")
            await ctx.step.sleep("d", 0)
            out.append(ctx.attempt)
            return out

        return client

    def scenario(sim: Simulation) -> object:
        sim.send(ev())
        sim.run_until_idle()
        return sim.runs()[0].output

    parked_on, parked_off = both(make, scenario)
    assert parked_on < parked_off


def test_parallel_branches_that_sleep_always_park() -> None:
    def make() -> inngest.Inngest:
        client = inngest.Inngest(app_id="skip")
        for mode in (inngest.ParallelMode.WAIT, inngest.ParallelMode.RACE):
            @client.create_function(fn_id=f"par-{mode.value}",
                                    trigger=inngest.TriggerEvent(event=f"go-{mode.value}"))
            async def par(ctx: inngest.Context, mode: inngest.ParallelMode = mode) -> tuple:
                async def branch(name: str, ms: int) -> str:
                    await ctx.step.sleep(f"{name}-1", ms)
                    await ctx.step.run(f"{name}-r", lambda: name)
                    await ctx.step.sleep(f"{name}-2", ms)
                    return name

                await ctx.step.sleep("before", SEC)
                out = await ctx.group.parallel(
                    (lambda: branch("a", 3 * SEC), lambda: branch("b", SEC)),
                    parallel_mode=mode)
                await ctx.step.sleep("after", SEC)
                return out
        return client

    def scenario(sim: Simulation) -> object:
        sim.send([ev("go-wait"), ev("go-race")])
        sim.run_until_idle()
        return [r.output for r in sim.runs()]

    parked_on, parked_off = both(make, scenario)
    assert parked_off - parked_on <= 2  # at most "after" of the last run, never a branch


def test_waits_events_and_cron_stop_the_shortcut_where_they_are_due() -> None:
    def make() -> inngest.Inngest:
        client = _sleeper(30, ms=20 * SEC)()

        @client.create_function(fn_id="waiter", trigger=inngest.TriggerEvent(event="w"))
        async def waiter(ctx: inngest.Context) -> object:
            got = await ctx.step.wait_for_event("e", event="reply",
                                                timeout=datetime.timedelta(minutes=3))
            return None if got is None else got.data

        @client.create_function(fn_id="tick", trigger=inngest.TriggerCron(cron="*/2 * * * *"))
        async def tick(ctx: inngest.Context) -> str:
            return "tick"

        return client

    def scenario(sim: Simulation) -> object:
        sim.send([ev(), ev("w"), ev("w")])
        sim.advance(90 * SEC)
        sim.send(ev("reply", n=1))
        sim.advance(20 * MIN)
        return [r.output for r in sim.runs()]

    parked_on, parked_off = both(make, scenario)
    assert parked_on < parked_off


def test_flow_control_invoke_and_cancel_around_sleeps() -> None:
    def make() -> inngest.Inngest:
        client = inngest.Inngest(app_id="skip")

        @client.create_function(fn_id="child", trigger=inngest.TriggerEvent(event="child"))
        async def child(ctx: inngest.Context) -> int:
            for _ in range(4):
                await ctx.step.sleep("c", MIN)
            return ctx.event.data["n"] * 2

        @client.create_function(fn_id="parent", trigger=inngest.TriggerEvent(event="go"),
                                throttle=inngest.Throttle(limit=1, period=10 * MIN),
                                priority=inngest.Priority(run="event.data.n * 10"),
                                cancel=[inngest.Cancel(event="stop",
                                                       if_exp="event.data.n == async.data.n")])
        async def parent(ctx: inngest.Context) -> object:
            await ctx.step.sleep("a", 30 * SEC)
            got = await ctx.step.invoke("i", function=child, data={"n": ctx.event.data["n"]},
                                        timeout=datetime.timedelta(minutes=30) if
                                        ctx.event.data["n"] % 2 else None)
            for _ in range(5):
                await ctx.step.sleep("b", 7 * MIN)
            return got

        return client

    def scenario(sim: Simulation) -> object:
        sim.send([ev(n=1), ev(n=2), ev(n=3)])
        sim.advance(25 * MIN)
        sim.send(ev("stop", n=3))
        sim.run_until_idle()
        return [(r.fn_id, r.status, r.output) for r in sim.runs()]

    parked_on, parked_off = both(make, scenario)
    assert parked_on < parked_off


def test_a_crash_between_advances_recovers_the_same() -> None:
    def scenario(sim: Simulation) -> object:
        sim.send(ev())
        sim.advance(7_500)
        sim.crash()
        sim.run_until_idle()
        return sim.runs()[0].output

    parked_on, parked_off = both(_sleeper(12), scenario)
    assert parked_on < parked_off


def test_run_until_idle_counts_a_skipped_sleep_as_an_iteration() -> None:
    def scenario(sim: Simulation) -> object:
        sim.send(ev())
        out = []
        for limit in (5, 1, 0, -3, 4, 1 << 70):
            try:
                sim.run_until_idle(max_iterations=limit)
                out.append(("idle", sim.now_ms))
            except SimulationError as err:
                out.append((str(err), sim.now_ms, sim.runs()[0].status))
        return out

    both(_sleeper(20), scenario)


def test_a_function_retriggering_itself_through_a_sleep_is_bounded_the_same() -> None:
    def make() -> inngest.Inngest:
        client = inngest.Inngest(app_id="skip")

        @client.create_function(fn_id="loop", trigger=inngest.TriggerEvent(event="tick"))
        async def loop(ctx: inngest.Context) -> None:
            await ctx.step.sleep("s", SEC)
            await ctx.step.send_event("again", ev("tick"))

        return client

    def scenario(sim: Simulation) -> object:
        sim.send(ev("tick"))
        with pytest.raises(SimulationError) as first:
            sim.run_until_idle()
        with pytest.raises(SimulationError) as second:
            sim.run_until_idle(max_iterations=10)
        return str(first.value), str(second.value)

    both(make, scenario, max_iterations=50)


def test_a_trace_listener_sees_every_sleep_park() -> None:
    def scenario(sim: Simulation) -> object:
        heard: list = []

        def listener(entry: inngest.TraceEntry) -> None:
            run = sim.engine.runs.get(entry.run_id)
            heard.append((sim.now_ms, entry.kind, run and run.status))

        sim.engine.trace_listener = listener
        sim.send(ev())
        sim.run_until_idle()
        return heard

    parked_on, parked_off = both(_sleeper(10), scenario)
    assert parked_on == parked_off == 10


def test_a_sync_handler_replays_as_before() -> None:
    def make() -> inngest.Inngest:
        client = inngest.Inngest(app_id="skip")

        @client.create_function(fn_id="sync", trigger=inngest.TriggerEvent(event="go"))
        def sync(ctx: inngest.ContextSync) -> int:
            for _ in range(5):
                ctx.step.sleep("z", SEC)
            return 5

        return client

    def scenario(sim: Simulation) -> object:
        sim.send(ev())
        sim.run_until_idle()
        return sim.runs()[0].output

    parked_on, parked_off = both(make, scenario)
    assert parked_on == parked_off  # (sync sleeps never take the shortcut)


@pytest.mark.parametrize("cap", [0, 1, 2])
def test_a_coroutine_cap_that_parking_would_reach_keeps_the_replays(cap: int) -> None:
    def make() -> inngest.Inngest:
        client = inngest.Inngest(app_id="skip")
        entered: list = []

        @client.create_function(fn_id="counted", trigger=inngest.TriggerEvent(event="go"))
        async def counted(ctx: inngest.Context) -> int:
            entered.append(ctx.run_id)  # code outside steps: it runs again on each replay
            for _ in range(4):
                await ctx.step.sleep("z", SEC)
            return len(entered)

        return client

    def scenario(sim: Simulation) -> object:
        sim.send(ev())
        sim.advance(1500)
        sim.send(ev())  # a second live coroutine
        sim.run_until_idle()
        return [r.output for r in sim.runs()]

    parked_on, parked_off = both(make, scenario, coroutine_cap=cap)
    # cap 0: every park closes the coroutine; 1: only once the other run has finished
    assert (parked_on < parked_off) == (cap > 0)


def test_a_plain_drain_and_a_committing_store_never_skip(tmp_path) -> None:
    sim = Simulation(_sleeper(3)(), seed=1)
    sim.send(ev())
    assert sim.engine.timer_loop.horizon_ms is None  # outside a drive
    sim.wake_all()  # a plain drain: the run re-checks and parks again
    assert sim.runs()[0].status == "Sleeping"
    stored = Simulation(_sleeper(3)(), seed=1, store=str(tmp_path / "s.db"))
    assert not stored.engine.driver.skip_sleeps  # each park is a commit a reader can see
    stored.send(ev())
    stored.run_until_idle()
    assert stored.runs()[0].status == "Completed"


def test_a_workers_engine_never_skips() -> None:
    from inngest_do.engine import Engine
    from inngest_do.kernel import RealClock
    from inngest_do.storage.memory import MemoryStore

    engine = Engine(_sleeper(1)(), clock=RealClock(), store=MemoryStore())
    assert not engine.driver.skip_sleeps
    assert engine.timer_loop.horizon_ms is None


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenario=scenarios(), seed=st.integers(0, 2**32), data=st.data())
def test_random_workloads_are_the_same_with_and_without_the_shortcut(scenario, seed, data):
    """The property tests' random functions (runs, sleeps, waits, sends, failures, retries)
    and event timings, with a crash at a random point or none: equal outcomes and traces."""
    fns, triggers, externals = scenario
    crash_after = data.draw(st.none() | st.integers(1, max(1, len(triggers) + len(externals))))
    on = engine_outcome(Harness(fns).drive(triggers, externals, seed=seed, cap=10_000,
                                           crash_after=crash_after))
    new_engine = Simulation._new_engine

    def without_shortcut(sim: Simulation) -> Engine:
        engine = new_engine(sim)
        engine.driver.skip_sleeps = False
        return engine

    Simulation._new_engine = without_shortcut  # type: ignore[method-assign]
    try:
        off = engine_outcome(Harness(fns).drive(triggers, externals, seed=seed, cap=10_000,
                                                crash_after=crash_after))
    finally:
        Simulation._new_engine = new_engine  # type: ignore[method-assign]
    assert on == off
