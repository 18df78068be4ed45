"""Every matching event gets an outcome (an expression that fails to evaluate says so), JSON
numbers mix as in Inngest, and the smaller fitness items of issue 9."""

from __future__ import annotations

import datetime

import pytest

import inngest_do as inngest
from inngest_do.testing import Simulation
from tests.helpers import SEC, ev, only_run


def _outcomes(sim: Simulation, name: str) -> list[tuple]:
    return [(o.fn_id, o.outcome, o.run_id, o.error)
            for rec in sim.events(name) for o in rec.outcomes]


def test_ints_and_doubles_mix_in_a_trigger_expression_as_in_inngest() -> None:
    client = inngest.Inngest(app_id="x")

    @client.create_function(fn_id="dear", trigger=inngest.TriggerEvent(
        event="buy", expression="event.data.price * 1.1 > 10"))
    def dear(ctx: inngest.ContextSync) -> float:
        return ctx.event.data["price"]

    sim = Simulation(client, seed=1)
    sim.send([ev("buy", price=20), ev("buy", price=20.5), ev("buy", price=5)])
    assert sorted(r.output for r in sim.runs()) == [20, 20.5]
    assert [o[1] for o in _outcomes(sim, "buy")] == ["started", "started"]


def test_a_trigger_expression_that_errors_records_an_outcome_with_the_error() -> None:
    client = inngest.Inngest(app_id="x")

    @client.create_function(fn_id="ratio", trigger=inngest.TriggerEvent(
        event="r", expression="10 / event.data.n > 1"))
    def ratio(ctx: inngest.ContextSync) -> int:
        return ctx.event.data["n"]

    @client.create_function(fn_id="two", trigger=[
        inngest.TriggerEvent(event="r", expression="event.data.missing == 1"),
        inngest.TriggerEvent(event="r")])
    def two(ctx: inngest.ContextSync) -> str:
        return "ok"

    sim = Simulation(client, seed=1)
    sim.send([ev("r", n=0), ev("r", n=2)])
    first, second = sim.events("r")
    by_fn = {o.fn_id: o for o in first.outcomes}
    assert by_fn["x-ratio"].outcome == "expression_error"
    assert by_fn["x-ratio"].run_id is None
    assert "trigger[0].expression" in by_fn["x-ratio"].error
    assert "division by zero" in by_fn["x-ratio"].error
    # another trigger of the same function matched: the run started, no error outcome
    assert by_fn["x-two"].outcome == "started" and by_fn["x-two"].error is None
    assert {o.fn_id: o.outcome for o in second.outcomes} == {"x-ratio": "started",
                                                             "x-two": "started"}


def test_cancel_and_wait_expressions_that_error_record_outcomes_naming_the_run() -> None:
    client = inngest.Inngest(app_id="x")

    @client.create_function(fn_id="order", trigger=inngest.TriggerEvent(event="order"),
                            cancel=[inngest.Cancel(event="stop",
                                                   if_exp="async.data.id == event.data.id")])
    def order(ctx: inngest.ContextSync) -> object:
        got = ctx.step.wait_for_event("approval", event="approve",
                                      if_exp="async.data.id * 1.5 == event.data.id * 1.5",
                                      timeout=datetime.timedelta(hours=1))
        return None if got is None else got.data["id"]

    sim = Simulation(client, seed=1)
    sim.send(ev("order", id=7))
    run = only_run(sim)
    sim.send(ev("stop"))  # no id: the cancel condition cannot be evaluated
    sim.send(ev("approve", ref=7))  # no id: the wait condition cannot be evaluated
    assert sim.get_run(run.id).status == "Waiting"
    (stop,) = _outcomes(sim, "stop")
    assert stop[:3] == ("x-order", "expression_error", run.id)
    assert "cancel[0].if_exp" in stop[3]
    (approve,) = _outcomes(sim, "approve")
    assert approve[:3] == ("x-order", "expression_error", run.id)
    assert "wait_for_event.if_exp" in approve[3]
    sim.send(ev("approve", id=7))  # ints mixed with doubles: matches
    assert sim.get_run(run.id).status == "Completed"
    assert sim.get_run(run.id).output == 7


def test_throttle_with_burst_zero_starts_limit_at_once_then_one_per_interval() -> None:
    client = inngest.Inngest(app_id="x")

    @client.create_function(fn_id="t", trigger=inngest.TriggerEvent(event="t"),
                            throttle=inngest.Throttle(limit=2, period=datetime.timedelta(
                                minutes=1), burst=0))
    def t(ctx: inngest.ContextSync) -> int:
        return ctx.event.data["i"]

    sim = Simulation(client, seed=1)
    sim.send([ev("t", i=i) for i in range(5)])

    def started() -> list[int]:
        return sorted(r.output for r in sim.runs() if r.status == "Completed")

    assert started() == [0, 1]  # limit at once, not limit + 1
    sim.advance(30 * SEC - 1)
    assert started() == [0, 1]
    sim.advance(1)  # then one per period / limit
    assert started() == [0, 1, 2]
    sim.advance(30 * SEC)
    assert started() == [0, 1, 2, 3]


def test_step_ids_never_alias_an_explicit_suffixed_id() -> None:
    from inngest_do.kernel import MemoTable

    memos = MemoTable()
    handed = [memos.next_id(s) for s in ["a", "a:1", "a", "a", "a:1"]]
    assert handed == ["a", "a:1", "a:2", "a:3", "a:1:1"]
    memos.reset_counter()  # a replay hands out the same ids in the same order
    assert [memos.next_id(s) for s in ["a", "a:1", "a", "a", "a:1"]] == handed
    memos = MemoTable()
    assert [memos.next_id(s) for s in ["a", "a", "a:1"]] == ["a", "a:1", "a:1:1"]


def test_an_explicit_id_a_1_does_not_skip_the_body_of_the_second_a() -> None:
    client = inngest.Inngest(app_id="x")
    ran: list[str] = []

    def body(name: str) -> str:
        ran.append(name)
        return name

    @client.create_function(fn_id="ids", trigger=inngest.TriggerEvent(event="ids"))
    def ids(ctx: inngest.ContextSync) -> list[str]:
        out = [ctx.step.run("a", body, "first a"), ctx.step.run("a:1", body, "explicit a:1")]
        ctx.step.sleep("nap", datetime.timedelta(seconds=1))  # replayed after the sleep
        out.append(ctx.step.run("a", body, "second a"))
        return out

    sim = Simulation(client, seed=1)
    sim.send(ev("ids"))
    sim.advance(SEC)
    run = only_run(sim)
    assert run.output == ["first a", "explicit a:1", "second a"]
    assert ran == ["first a", "explicit a:1", "second a"]  # each body once, none skipped
    assert [e.step for e in run.history if e.kind == "step.completed"] == ["a", "a:1", "a:2"]


def test_advance_past_the_latest_time_is_refused_and_later_sends_work() -> None:
    client = inngest.Inngest(app_id="x")

    @client.create_function(fn_id="f", trigger=inngest.TriggerEvent(event="go"))
    def f(ctx: inngest.ContextSync) -> str:
        ctx.step.sleep("nap", datetime.timedelta(hours=1))
        return "ok"

    sim = Simulation(client, seed=1)
    before = sim.now
    with pytest.raises(ValueError, match=r"duration: .* past 9999-12-31"):
        sim.advance(datetime.timedelta.max)
    with pytest.raises(ValueError, match=r"duration: .* past 9999-12-31"):
        sim.advance(2**62)
    assert sim.now == before
    sim.send(ev("go"))
    sim.advance(datetime.timedelta(hours=1))
    assert only_run(sim).status == "Completed"
    sim.advance_to(datetime.datetime(9999, 12, 31, tzinfo=datetime.timezone.utc))
    sim.send(ev("go"))  # the far future still works
    assert len(sim.runs()) == 2


def test_crash_keeps_the_trace() -> None:
    client = inngest.Inngest(app_id="x")

    @client.create_function(fn_id="f", trigger=inngest.TriggerEvent(event="go"))
    def f(ctx: inngest.ContextSync) -> str:
        ctx.step.run("a", lambda: "a")
        ctx.step.sleep("nap", datetime.timedelta(hours=1))
        return "ok"

    sim = Simulation(client, seed=1)
    sim.send(ev("go"))
    before = sim.trace
    assert [e.kind for e in before][-1] == "sleep.started"
    sim.crash()
    assert sim.trace[:len(before)] == before
    sim.advance(datetime.timedelta(hours=1))
    assert sim.trace[:len(before)] == before
    assert sim.trace[-1].kind == "run.completed"
