"""What code written for the Inngest SDK observes: error names, messages and codes, cancels
that land outside steps, the replay-quiet logger, events' SDK helpers."""

from __future__ import annotations

import datetime
import logging

import pytest

import inngest_do as inngest
from inngest_do import errors
from inngest_do.testing import Simulation
from tests.helpers import ev, only_run


def _error_of(sim: Simulation, run: inngest.Run) -> dict:
    # the run's error exactly as recorded (what a server would show as the run's output)
    return sim.engine.get_run(run.id).error  # finished runs are read from the store


class _Recorder(logging.Logger):
    def __init__(self) -> None:
        super().__init__("recorder")
        self.lines: list[object] = []

    def info(self, msg: object, *args: object, **kwargs: object) -> None:  # type: ignore[override]
        self.lines.append(msg)


# ------------------------------------------------------------------------------ error codes
def test_error_classes_carry_the_sdk_codes() -> None:
    assert inngest.NonRetriableError("x").code == "non_retriable_error"
    assert inngest.StepError("m", "ValueError", None).code == "step_errored"
    assert inngest.RetryAfterError("x", 1000).code == "retry_after_error"
    assert errors.CodedError(errors.ErrorCode.STEP_NESTED, "m").code is errors.ErrorCode.STEP_NESTED


@pytest.mark.parametrize("sync", [False, True])
def test_non_retriable_error_in_a_step_fails_the_run_with_its_code(client, sync) -> None:
    attempts: list[int] = []

    def body() -> None:
        raise inngest.NonRetriableError("stop here")

    if sync:
        @client.create_function(fn_id="f", trigger=inngest.TriggerEvent(event="go"), retries=3)
        def f(ctx: inngest.ContextSync) -> None:
            attempts.append(ctx.attempt)
            ctx.step.run("s", body)
    else:
        @client.create_function(fn_id="f", trigger=inngest.TriggerEvent(event="go"), retries=3)
        async def f(ctx: inngest.Context) -> None:
            attempts.append(ctx.attempt)
            await ctx.step.run("s", body)

    sim = Simulation(client)
    sim.send(ev())
    sim.run_until_idle()
    run = only_run(sim)
    assert run.status == "Failed" and attempts == [0]
    err = _error_of(sim, run)
    assert (err["code"], err["name"], err["message"]) == (
        "non_retriable_error", "NonRetriableError", "stop here")
    assert "Traceback" in err["stack"]
    assert run.steps == []  # went up to the function: the step holds no error


def test_a_new_error_raised_over_a_step_error_is_unknown(client) -> None:
    class Mine(Exception):
        pass

    @client.create_function(fn_id="f", trigger=inngest.TriggerEvent(event="go"), retries=0)
    async def f(ctx: inngest.Context) -> None:
        try:
            await ctx.step.run("s", lambda: 1 / 0)
        except inngest.StepError as err:
            assert err.code == "step_errored" and err.name == "ZeroDivisionError"
            raise Mine("replaced") from None

    sim = Simulation(client)
    sim.send(ev())
    err = _error_of(sim, only_run(sim))
    assert (err["code"], err["name"], err["message"]) == ("unknown", "Mine", "replaced")


def test_invoke_timeout_is_the_sdks_step_error(client) -> None:
    seen: list[inngest.StepError] = []

    @client.create_function(fn_id="child", trigger=inngest.TriggerEvent(event="never"))
    async def child(ctx: inngest.Context) -> None:
        await ctx.step.sleep("long", datetime.timedelta(hours=1))

    @client.create_function(fn_id="parent", trigger=inngest.TriggerEvent(event="go"), retries=0)
    async def parent(ctx: inngest.Context) -> None:
        try:
            await ctx.step.invoke("call", function=child, timeout=datetime.timedelta(seconds=1))
        except inngest.StepError as err:
            seen.append(err)
            raise

    sim = Simulation(client)
    sim.send(ev())
    sim.advance(datetime.timedelta(seconds=2))
    assert seen[0].name == "InngestInvokeTimeoutError"
    assert seen[0].message == "Timed out waiting for invoked function to complete"
    run = only_run(sim, parent)
    assert _error_of(sim, run) == {
        "code": "step_errored", "name": "InngestInvokeTimeoutError",
        "message": "Timed out waiting for invoked function to complete", "stack": None}


@pytest.mark.parametrize("sync", [False, True])
def test_unserializable_step_output_fails_the_run_at_once(client, sync) -> None:
    calls: list[int] = []

    def body() -> object:
        calls.append(1)
        return object()

    if sync:
        @client.create_function(fn_id="f", trigger=inngest.TriggerEvent(event="go"), retries=2)
        def f(ctx: inngest.ContextSync) -> None:
            ctx.step.run("step_1", body)
    else:
        @client.create_function(fn_id="f", trigger=inngest.TriggerEvent(event="go"), retries=2)
        async def f(ctx: inngest.Context) -> None:
            await ctx.step.run("step_1", body)

    sim = Simulation(client)
    sim.send(ev())
    sim.run_until_idle()
    assert calls == [1]
    assert _error_of(sim, only_run(sim)) == {
        "code": "output_unserializable", "name": "OutputUnserializableError",
        "message": '"step_1" returned unserializable data'}


def test_nested_step_is_the_outer_steps_error(client) -> None:
    @client.create_function(fn_id="f", trigger=inngest.TriggerEvent(event="go"), retries=5)
    async def f(ctx: inngest.Context) -> None:
        async def outer() -> None:
            await ctx.step.run("inner", lambda: 1)

        await ctx.step.run("outer", outer)

    sim = Simulation(client)
    sim.send(ev())
    sim.run_until_idle()
    err = _error_of(sim, only_run(sim))
    assert (err["code"], err["name"], err["message"]) == (
        "step_errored", "CodedError", "Nested steps are not supported.")


def test_on_failure_event_error_has_the_servers_keys(client) -> None:
    got: list[inngest.Event] = []

    def on_failure(ctx: inngest.ContextSync) -> None:
        got.append(ctx.event)

    @client.create_function(fn_id="f", trigger=inngest.TriggerEvent(event="go"), retries=0,
                            on_failure=on_failure)
    def f(ctx: inngest.ContextSync) -> None:
        raise KeyError("k")

    sim = Simulation(client)
    sim.send(ev(x=1))
    error = got[0].data["error"]
    assert set(error) == {"error", "message", "name", "stack"}
    assert error["name"] == "KeyError" and error["error"] == "invalid status code: 500"
    original = inngest.Event.from_raw(got[0].data["event"])
    assert isinstance(original, inngest.Event) and original.data == {"x": 1}


# ------------------------------------------------------------------------------- cancel
def test_cancel_outside_any_step_discards_the_return_value(client) -> None:
    @client.create_function(fn_id="f", trigger=inngest.TriggerEvent(event="go"),
                            cancel=[inngest.Cancel(event="stop")])
    async def f(ctx: inngest.Context) -> str:
        await ctx.step.run("first", lambda: 1)
        # code outside any step: the cancel arrives while it runs
        client.send_sync(inngest.Event(name="stop"))
        return "finished"

    sim = Simulation(client)
    sim.send(ev())
    run = only_run(sim, f)
    assert run.status == "Cancelled" and run.output is None


# ------------------------------------------------------------------------------- logger
@pytest.mark.parametrize("sync", [False, True])
def test_logger_is_quiet_while_a_replay_reruns_code(client, sync) -> None:
    rec = _Recorder()
    failed = []

    if sync:
        @client.create_function(fn_id="f", trigger=inngest.TriggerEvent(event="go"), retries=1)
        def f(ctx: inngest.ContextSync) -> None:
            ctx.logger.info("start")
            ctx.step.run("a", lambda: 1)
            ctx.logger.info("after a")
            if not failed:
                failed.append(1)
                raise inngest.RetryAfterError("again", 1000)
            ctx.step.run("b", lambda: 2)
            ctx.logger.info("end")
    else:
        @client.create_function(fn_id="f", trigger=inngest.TriggerEvent(event="go"), retries=1)
        async def f(ctx: inngest.Context) -> None:
            ctx.logger.info("start")
            await ctx.step.run("a", lambda: 1)
            ctx.logger.info("after a")
            if not failed:
                failed.append(1)
                raise inngest.RetryAfterError("again", 1000)
            await ctx.step.run("b", lambda: 2)
            ctx.logger.info("end")

    client.set_logger(rec)
    sim = Simulation(client)
    sim.send(ev())
    sim.run_until_idle()
    assert only_run(sim).status == "Completed"
    # "start" ran again in the retry's replay: not logged twice; "after a" is new code both times
    assert rec.lines == ["start", "after a", "after a", "end"]


def test_set_logger_and_add_middleware_check_their_argument(client) -> None:
    with pytest.raises(TypeError, match="logger"):
        client.set_logger("not a logger")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="middleware"):
        client.add_middleware(42)  # type: ignore[arg-type]


def test_add_middleware_applies_to_later_runs(client) -> None:
    seen: list[str] = []

    class Mw(inngest.MiddlewareSync):
        def before_execution(self) -> None:
            seen.append("before_execution")

    @client.create_function(fn_id="f", trigger=inngest.TriggerEvent(event="go"))
    def f(ctx: inngest.ContextSync) -> None:
        pass

    client.add_middleware(Mw)
    sim = Simulation(client)
    sim.send(ev())
    assert seen == ["before_execution"]


# ------------------------------------------------------------------------------- events
def test_event_from_raw_returns_rather_than_raises() -> None:
    good = inngest.Event.from_raw({"name": "a", "data": {"k": 1}, "id": "x", "ts": 5})
    assert isinstance(good, inngest.Event) and good.ts == 5
    assert isinstance(inngest.Event.from_raw({"data": {}}), Exception)
    assert good.to_dict() == {"name": "a", "data": {"k": 1}, "id": "x", "ts": 5}


# --------------------------------------------------------------------------- middleware
def test_transform_output_sees_every_step_with_the_sdks_opcode(client) -> None:
    from inngest_do.middleware import Opcode

    seen: list[tuple[str | None, object]] = []

    class Mw(inngest.MiddlewareSync):
        def transform_output(self, result: inngest.TransformOutputResult) -> None:
            seen.append((None, result.output) if result.step is None
                        else (result.step.id, result.step.op))

    @client.create_function(fn_id="f", trigger=inngest.TriggerEvent(event="go"),
                            middleware=[Mw])
    async def f(ctx: inngest.Context) -> str:
        await ctx.step.run("a", lambda: 1)
        await ctx.step.send_event("s", inngest.Event(name="elsewhere"))
        return "out"

    sim = Simulation(client)
    sim.send(ev())
    assert seen == [("a", Opcode.STEP_RUN), ("s", Opcode.STEP_RUN), (None, "out")]


def test_each_step_starts_a_new_request_with_new_instances(client) -> None:
    made: list[int] = []

    class Mw(inngest.MiddlewareSync):
        def __init__(self, client: inngest.Inngest, raw_request: object) -> None:
            super().__init__(client, raw_request)
            made.append(1)

    @client.create_function(fn_id="f", trigger=inngest.TriggerEvent(event="go"),
                            middleware=[Mw])
    def f(ctx: inngest.ContextSync) -> None:
        ctx.step.run("a", lambda: 1)
        ctx.step.run("b", lambda: 2)

    sim = Simulation(client)
    sim.send(ev())
    assert len(made) == 3  # the first request, then one after each of the two steps
