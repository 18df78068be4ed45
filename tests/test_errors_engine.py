"""Errors as the engine reports them: run.error for user errors, changed code under a run in
flight, bad step arguments, bad queries, and invalid function definitions."""

from __future__ import annotations

import collections

import pytest
from helpers import ev, only_run

import inngest_do as inngest
from inngest_do.testing import Simulation

MIN = 60_000


class PaymentDeclined(Exception):
    pass


# ------------------------------------------------------------------------------- run.error


def test_run_error_names_the_user_error_type_and_message(client):
    def charge():
        raise PaymentDeclined("card 4242 declined")

    @client.create_function(fn_id="f", trigger=inngest.TriggerEvent(event="go"), retries=0)
    async def f(ctx: inngest.Context):
        await ctx.step.run("charge", charge)

    sim = Simulation(client)
    sim.send(ev())
    run = only_run(sim)
    assert run.status == "Failed"
    assert run.error.type == "PaymentDeclined"
    assert run.error.name == "PaymentDeclined"
    assert run.error.message == "card 4242 declined"
    assert "charge" in (run.error.stack or "")  # the body's frame is in the stack
    assert run.output is None
    assert str(run.error) == "PaymentDeclined: card 4242 declined"


def test_completed_run_has_no_error(client):
    @client.create_function(fn_id="f", trigger=inngest.TriggerEvent(event="go"))
    async def f(ctx: inngest.Context):
        return 1

    sim = Simulation(client)
    sim.send(ev())
    run = only_run(sim)
    assert run.error is None and run.output == 1


def test_failed_runs_query_by_status(client):
    @client.create_function(fn_id="f", trigger=inngest.TriggerEvent(event="go"), retries=0)
    async def f(ctx: inngest.Context):
        if ctx.event.data["bad"]:
            raise ValueError("bad")
        return "good"

    sim = Simulation(client)
    sim.send([ev(bad=False), ev(bad=True), ev(bad=False)])
    assert [r.output for r in sim.runs(status="Completed")] == ["good", "good"]
    assert [r.error.message for r in sim.runs(f, status=inngest.RunStatus.FAILED)] == ["bad"]
    assert sim.get_run(sim.runs(status="Failed")[0].id).status == "Failed"
    assert client.runs("f") == sim.runs(f)


def test_unknown_run_id_and_bad_queries(client):
    @client.create_function(fn_id="f", trigger=inngest.TriggerEvent(event="go"))
    async def f(ctx: inngest.Context):
        return 1

    sim = Simulation(client)
    with pytest.raises(KeyError, match="nope"):
        sim.get_run("nope")
    with pytest.raises(ValueError, match="status"):
        sim.runs(status="Finished")
    with pytest.raises(ValueError, match="missing-fn"):
        sim.runs("missing-fn")


# --------------------------------------------------------------------- changed code (replay)


def test_a_memo_that_no_longer_fits_fails_the_run_naming_the_step(client):
    version = {"v": 1}
    calls = collections.Counter()

    @client.create_function(fn_id="f", trigger=inngest.TriggerEvent(event="go"))
    def f(ctx: inngest.ContextSync):  # sync: the handler replays on each resume
        if version["v"] == 1:
            ctx.step.run("prepare", lambda: calls.update(["prepare"]))
        else:
            ctx.step.sleep("prepare", MIN)  # same id, another kind of step
        ctx.step.sleep("wait", MIN)
        return "done"

    sim = Simulation(client)
    sim.send(ev())
    assert only_run(sim).status == "Sleeping"
    version["v"] = 2  # deploy changed code while the run is in flight
    sim.run_until_idle()
    run = only_run(sim)
    assert run.status == "Failed"
    assert "'prepare'" in run.error.message
    assert calls["prepare"] == 1
    assert not [e for e in run.history if e.kind == "run.retrying"]  # non-retriable


# ------------------------------------------------------------------------- bad step arguments


@pytest.mark.parametrize("call", [
    lambda ctx: ctx.step.run("", lambda: 1),
    lambda ctx: ctx.step.sleep("s", "ten minutes"),
    lambda ctx: ctx.step.sleep_until("s", 12345),
    lambda ctx: ctx.step.wait_for_event("w", event="", timeout=MIN),
    lambda ctx: ctx.step.send_event("e", {"name": "not-an-Event"}),
], ids=["empty-id", "sleep-str", "sleep-until-int", "wait-empty-event", "send-dict"])
def test_bad_step_arguments_fail_the_run_with_a_clear_error(client, call):
    @client.create_function(fn_id="f", trigger=inngest.TriggerEvent(event="go"), retries=0)
    def f(ctx: inngest.ContextSync):
        call(ctx)
        return "unreachable"

    sim = Simulation(client)
    sim.send(ev())
    run = only_run(sim)
    assert run.status == "Failed"
    assert run.error.type == "TypeError"


# ------------------------------------------------------------------------ invalid definitions


def test_duplicate_function_ids_are_fine_until_both_are_served(client):
    # As in the SDK: create_function only builds; serving both is the error.
    @client.create_function(fn_id="f", trigger=inngest.TriggerEvent(event="go"))
    async def f(ctx: inngest.Context):
        return 1

    @client.create_function(fn_id="f", trigger=inngest.TriggerEvent(event="other"))
    async def g(ctx: inngest.Context):
        return 2

    Simulation(client, functions=[f])  # one of them: fine
    with pytest.raises(ValueError, match="'test-app-f'"):
        Simulation(client, functions=[f, g])
    with pytest.raises(ValueError, match="'test-app-f'"):
        Simulation(client)  # no list: every function created on the client


def test_invalid_trigger_expression_is_a_value_error_at_creation(client):
    with pytest.raises(ValueError):
        @client.create_function(fn_id="f",
                                trigger=inngest.TriggerEvent(event="go", expression="event.("))
        async def f(ctx: inngest.Context):
            return 1


@pytest.mark.parametrize("name", ["*", "app*", "app/*/x", "app/**"])
def test_misplaced_wildcard_is_rejected(client, name):
    with pytest.raises(ValueError, match="wildcard"):
        @client.create_function(fn_id="f", trigger=inngest.TriggerEvent(event=name))
        async def f(ctx: inngest.Context):
            return 1


def test_invalid_cron_is_rejected(client):
    with pytest.raises(ValueError):
        @client.create_function(fn_id="f", trigger=inngest.TriggerCron(cron="not a cron"))
        async def f(ctx: inngest.Context):
            return 1


def test_error_classes_are_exceptions_with_sdk_attributes():
    err = inngest.StepError("msg", "ValueError", "trace")
    assert isinstance(err, Exception)
    assert (err.message, err.name, err.stack) == ("msg", "ValueError", "trace")
    assert inngest.NonRetriableError("x", quiet=True).quiet is True
    assert inngest.RetryAfterError("x", 5_000).retry_after == 5_000
