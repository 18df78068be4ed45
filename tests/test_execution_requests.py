"""execution="requests": Inngest's request model as an opt-in mode. Each slice is one
request that replays the handler from the start; it runs at most one new step, a parallel
group's discovery request plans every branch's next step and later requests target each one."""

from __future__ import annotations

import logging

import pytest

import inngest_do as inngest
from inngest_do.testing import Simulation
from tests.helpers import ev, only_run


@pytest.fixture
def rclient() -> inngest.Inngest:
    return inngest.Inngest(app_id="req-app", execution="requests")


class _Lines(logging.Logger):
    def __init__(self) -> None:
        super().__init__("lines")
        self.lines: list[object] = []

    def info(self, msg: object, *args: object, **kwargs: object) -> None:  # type: ignore[override]
        self.lines.append(msg)


def _define_sequential(client: inngest.Inngest, sync: bool, calls: list[int]) -> None:
    if sync:
        @client.create_function(fn_id="f", trigger=inngest.TriggerEvent(event="go"))
        def f(ctx: inngest.ContextSync) -> int:
            calls.append(1)
            one = ctx.step.run("one", lambda: 1)
            two = ctx.step.run("two", lambda: 2)
            return one + two
    else:
        @client.create_function(fn_id="f", trigger=inngest.TriggerEvent(event="go"))
        async def f(ctx: inngest.Context) -> int:
            calls.append(1)
            one = await ctx.step.run("one", lambda: 1)
            two = await ctx.step.run("two", lambda: 2)
            return one + two


@pytest.mark.parametrize("sync", [True, False])
def test_the_handler_is_called_once_per_request(rclient, sync) -> None:
    calls: list[int] = []
    _define_sequential(rclient, sync, calls)
    sim = Simulation(rclient)
    sim.send(ev())
    sim.run_until_idle()
    run = only_run(sim)
    assert run.status == "Completed" and run.output == 3
    # a request per new step, and a last one that returns
    assert len(calls) == 3


def test_the_default_mode_keeps_an_async_coroutine(client) -> None:
    calls: list[int] = []
    _define_sequential(client, False, calls)
    sim = Simulation(client)
    sim.send(ev())
    sim.run_until_idle()
    assert only_run(sim).output == 3
    assert len(calls) == 1


def test_the_mode_comes_from_the_environment(monkeypatch) -> None:
    monkeypatch.setenv("INNGEST_DO_EXECUTION", "requests")
    assert inngest.Inngest(app_id="a").execution == "requests"
    monkeypatch.delenv("INNGEST_DO_EXECUTION")
    assert inngest.Inngest(app_id="a").execution == "coroutines"


def test_an_unknown_mode_is_refused_naming_the_argument(monkeypatch) -> None:
    with pytest.raises(ValueError, match="execution: expected one of"):
        inngest.Inngest(app_id="a", execution="threads")
    monkeypatch.setenv("INNGEST_DO_EXECUTION", "fast")
    with pytest.raises(ValueError, match="INNGEST_DO_EXECUTION"):
        inngest.Inngest(app_id="a")


def _define_two_branches(client: inngest.Inngest, sync: bool, mode: inngest.ParallelMode,
                         calls: list[int], order: list[str]) -> None:
    def mark(name: str) -> str:
        order.append(name)
        return name

    if sync:
        @client.create_function(fn_id="g", trigger=inngest.TriggerEvent(event="go"))
        def g(ctx: inngest.ContextSync) -> list:
            calls.append(1)

            def left() -> str:
                ctx.step.run("l1", mark, "l1")
                return ctx.step.run("l2", mark, "l2")

            def right() -> str:
                ctx.step.run("r1", mark, "r1")
                return ctx.step.run("r2", mark, "r2")

            return list(ctx.group.parallel((left, right), parallel_mode=mode))
    else:
        @client.create_function(fn_id="g", trigger=inngest.TriggerEvent(event="go"))
        async def g(ctx: inngest.Context) -> list:
            calls.append(1)

            async def left() -> str:
                await ctx.step.run("l1", mark, "l1")
                return await ctx.step.run("l2", mark, "l2")

            async def right() -> str:
                await ctx.step.run("r1", mark, "r1")
                return await ctx.step.run("r2", mark, "r2")

            return list(await ctx.group.parallel((left, right), parallel_mode=mode))


@pytest.mark.parametrize("sync", [True, False])
def test_wait_plans_a_round_then_targets_each_planned_step(rclient, sync) -> None:
    calls: list[int] = []
    order: list[str] = []
    _define_two_branches(rclient, sync, inngest.ParallelMode.WAIT, calls, order)
    sim = Simulation(rclient)
    sim.send(ev())
    sim.run_until_idle()
    run = only_run(sim)
    assert run.output == ["l2", "r2"]
    assert order == ["l1", "r1", "l2", "r2"]
    # plan (l1, r1), l1, r1, plan (l2, r2), l2, r2, the request that returns
    assert len(calls) == 7


@pytest.mark.parametrize("sync", [True, False])
def test_race_plans_a_branch_next_step_after_each_targeted_one(rclient, sync) -> None:
    calls: list[int] = []
    order: list[str] = []
    _define_two_branches(rclient, sync, inngest.ParallelMode.RACE, calls, order)
    sim = Simulation(rclient)
    sim.send(ev())
    sim.run_until_idle()
    assert only_run(sim).output == ["l2", "r2"]
    # a discovery request after every targeted step: the left branch's next step is
    # planned before the right branch's first one, already queued, is reached
    assert order == ["l1", "l2", "r1", "r2"]
    assert len(calls) == 9


@pytest.mark.parametrize("sync", [True, False])
def test_a_different_new_step_in_a_targeted_request_fails_the_run(rclient, sync) -> None:
    ran: list[str] = []
    if sync:
        @rclient.create_function(fn_id="h", trigger=inngest.TriggerEvent(event="go"), retries=0)
        def h(ctx: inngest.ContextSync) -> None:
            if ctx.step._target_hashed_id is not None:
                ctx.step.run("surprise", lambda: ran.append("surprise"))
            ctx.group.parallel((lambda: ctx.step.run("p", lambda: ran.append("p")),
                                lambda: ctx.step.run("q", lambda: ran.append("q"))))
    else:
        @rclient.create_function(fn_id="h", trigger=inngest.TriggerEvent(event="go"), retries=0)
        async def h(ctx: inngest.Context) -> None:
            if ctx.step._target_hashed_id is not None:
                await ctx.step.run("surprise", lambda: ran.append("surprise"))
            await ctx.group.parallel((lambda: ctx.step.run("p", lambda: ran.append("p")),
                                      lambda: ctx.step.run("q", lambda: ran.append("q"))))

    sim = Simulation(rclient)
    sim.send(ev())
    sim.run_until_idle()
    run = only_run(sim)
    assert run.status == "Failed"
    assert sim.engine.get_run(run.id).error == {
        "code": "step_unexpected", "name": "StepUnexpectedError", "stack": None,
        "message": 'found step "surprise" when targeting a different step'}
    assert ran == []


@pytest.mark.parametrize("sync", [True, False])
def test_the_logger_speaks_once_per_new_code(rclient, sync) -> None:
    rec = _Lines()
    if sync:
        @rclient.create_function(fn_id="l", trigger=inngest.TriggerEvent(event="go"))
        def lf(ctx: inngest.ContextSync) -> None:
            ctx.logger.info("start")
            ctx.step.run("a", lambda: ctx.logger.info("in a"))
            ctx.logger.info("between")
            ctx.step.run("b", lambda: None)
            ctx.logger.info("end")
    else:
        @rclient.create_function(fn_id="l", trigger=inngest.TriggerEvent(event="go"))
        async def lf(ctx: inngest.Context) -> None:
            ctx.logger.info("start")
            await ctx.step.run("a", lambda: ctx.logger.info("in a"))
            ctx.logger.info("between")
            await ctx.step.run("b", lambda: None)
            ctx.logger.info("end")

    rclient.set_logger(rec)
    sim = Simulation(rclient)
    sim.send(ev())
    sim.run_until_idle()
    assert only_run(sim).status == "Completed"
    assert rec.lines == ["start", "in a", "between", "end"]


@pytest.mark.parametrize("sync", [True, False])
def test_a_step_retry_is_a_new_request_targeting_nothing_else(rclient, sync) -> None:
    calls: list[int] = []
    attempts: list[int] = []

    def flaky() -> str:
        attempts.append(1)
        if len(attempts) == 1:
            raise ValueError("once")
        return "ok"

    if sync:
        @rclient.create_function(fn_id="r", trigger=inngest.TriggerEvent(event="go"), retries=2)
        def r(ctx: inngest.ContextSync) -> str:
            calls.append(1)
            return ctx.step.run("flaky", flaky)
    else:
        @rclient.create_function(fn_id="r", trigger=inngest.TriggerEvent(event="go"), retries=2)
        async def r(ctx: inngest.Context) -> str:
            calls.append(1)
            return await ctx.step.run("flaky", flaky)

    sim = Simulation(rclient)
    sim.send(ev())
    sim.run_until_idle()
    assert only_run(sim).output == "ok"
    # the failed attempt, the retry, the request that returns
    assert len(attempts) == 2 and len(calls) == 3


@pytest.mark.parametrize("sync", [True, False])
def test_sleep_and_parallel_sleeps_in_requests(rclient, sync) -> None:
    calls: list[int] = []
    if sync:
        @rclient.create_function(fn_id="s", trigger=inngest.TriggerEvent(event="go"))
        def s(ctx: inngest.ContextSync) -> str:
            calls.append(1)
            ctx.group.parallel((lambda: ctx.step.sleep("x", 1000),
                                lambda: ctx.step.sleep("y", 2000)))
            return ctx.step.run("after", lambda: "done")
    else:
        @rclient.create_function(fn_id="s", trigger=inngest.TriggerEvent(event="go"))
        async def s(ctx: inngest.Context) -> str:
            calls.append(1)
            await ctx.group.parallel((lambda: ctx.step.sleep("x", 1000),
                                      lambda: ctx.step.sleep("y", 2000)))
            return await ctx.step.run("after", lambda: "done")

    sim = Simulation(rclient)
    sim.send(ev())
    sim.run_until_idle()
    sim.advance(3000)
    sim.run_until_idle()
    assert only_run(sim).output == "done"
    # both sleeps start in the first request, each wake-up is a request, then "after" runs
    # and a last request returns
    assert len(calls) == 4


def test_a_planned_step_waiting_for_its_retry_lets_the_others_run(rclient) -> None:
    done: list[str] = []
    tries: list[int] = []

    def flaky() -> str:
        tries.append(1)
        if len(tries) == 1:
            raise RuntimeError("not yet")
        done.append("flaky")
        return "flaky"

    def steady() -> str:
        done.append("steady")
        return "steady"

    @rclient.create_function(fn_id="p", trigger=inngest.TriggerEvent(event="go"), retries=1)
    async def p(ctx: inngest.Context) -> list:
        return list(await ctx.group.parallel((lambda: ctx.step.run("flaky", flaky),
                                              lambda: ctx.step.run("steady", steady))))

    sim = Simulation(rclient)
    sim.send(ev())
    sim.run_until_idle()
    # the steady step ran before the flaky one's retry was due
    assert done == ["steady", "flaky"]
    assert only_run(sim).output == ["flaky", "steady"]
