"""experimental.mocked: one run of a function to its end, stubs answering its steps."""

from __future__ import annotations

import datetime
import time
import typing

import pytest

import inngest_do as inngest
from inngest_do.experimental import mocked
from inngest_do.experimental.ai import openai

app = inngest.Inngest(app_id="shop")
mock_client = mocked.Inngest(app_id="unit")
EV = inngest.Event(name="order/created", data={"n": 2})


def fn_of(handler: typing.Callable[..., typing.Any], **opts: typing.Any) -> inngest.Function:
    return app.create_function(fn_id="f", trigger=inngest.TriggerEvent(event="order/created"),
                               **opts)(handler)


def test_output_is_what_the_handler_returned_not_a_json_copy() -> None:
    fn = fn_of(lambda ctx: (ctx.event.data["n"], ctx.step.run("a", lambda: [1])))
    res = mocked.trigger(fn, EV, mock_client)
    assert res.status is mocked.Status.COMPLETED
    assert res.output == (2, [1]) and res.error is None


def test_a_stub_replaces_every_occurrence_of_a_step_id_and_its_body_never_runs() -> None:
    ran: list[int] = []

    def handler(ctx: inngest.ContextSync) -> list[object]:
        return [ctx.step.run("a", lambda: ran.append(1)) for _ in range(3)]

    res = mocked.trigger(fn_of(handler), EV, mock_client, step_stubs={"a": {"x": 1}})
    assert res.output == [{"x": 1}] * 3 and ran == []


def test_sleeps_and_retry_backoffs_take_no_real_time() -> None:
    calls = 0

    async def handler(ctx: inngest.Context) -> str:
        nonlocal calls
        await ctx.step.sleep("nap", datetime.timedelta(days=300))

        def flaky() -> str:
            nonlocal calls
            calls += 1
            if calls < 4:
                raise ValueError("not yet")
            return "done"

        return await ctx.step.run("flaky", flaky)

    started = time.monotonic()
    res = mocked.trigger(fn_of(handler), EV, mock_client)
    assert res.output == "done" and calls == 4
    assert time.monotonic() - started < 5  # bounded: virtual time, not 300 days


def test_wait_for_event_answers_with_the_stubbed_event_or_times_out() -> None:
    def handler(ctx: inngest.ContextSync) -> object:
        got = ctx.step.wait_for_event("approval", event="order/approved",
                                      timeout=datetime.timedelta(hours=1))
        return None if got is None else (got.name, got.data)

    fn = fn_of(handler)
    stub = inngest.Event(name="order/approved", data={"ok": True})
    assert mocked.trigger(fn, EV, mock_client, step_stubs={"approval": stub}).output == (
        "order/approved", {"ok": True})
    res = mocked.trigger(fn, EV, mock_client, step_stubs={"approval": mocked.Timeout})
    assert res.status is mocked.Status.COMPLETED and res.output is None


@pytest.mark.parametrize("kind", ["wait", "invoke", "ai"])
def test_steps_that_need_the_outside_world_must_be_stubbed(kind: str) -> None:
    async def handler(ctx: inngest.Context) -> object:
        if kind == "wait":
            got = await ctx.step.wait_for_event("x", event="e", timeout=1000)
            return None if got is None else got.data
        if kind == "invoke":
            return await ctx.step.invoke_by_id("x", app_id="other", function_id="g")
        return await ctx.step.ai.infer(
            "x", adapter=openai.Adapter(auth_key="k", model="m"), body={"messages": []})

    fn = fn_of(handler)
    with pytest.raises(mocked.UnstubbedStepError, match="step x is not stubbed"):
        mocked.trigger(fn, EV, mock_client)
    stub: object = {"answer": 42}
    if kind == "wait":
        stub = inngest.Event(name="e", data=stub)
    res = mocked.trigger(fn, EV, mock_client, step_stubs={"x": stub})
    assert res.output == {"answer": 42}


def test_sent_events_go_nowhere_and_get_the_mock_id() -> None:
    other = inngest.Inngest(app_id="real")
    before = other._engine

    def handler(ctx: inngest.ContextSync) -> object:
        step_ids = ctx.step.send_event("s", [inngest.Event(name="x"), inngest.Event(name="y")])
        return step_ids, other.send_sync(inngest.Event(name="z"))

    fn = other.create_function(fn_id="g", trigger=inngest.TriggerEvent(event="e"))(handler)
    res = mocked.trigger(fn, EV, mock_client)
    assert res.output == ([mocked.client.MOCK_EVENT_ID] * 2, [mocked.client.MOCK_EVENT_ID])
    assert other._engine is before  # the function's own client is given back untouched
    assert mock_client.send_sync([inngest.Event(name="a")]) == [mocked.client.MOCK_EVENT_ID]


def test_a_step_out_of_attempts_fails_the_run_with_the_steps_own_exception() -> None:
    class Boom(Exception):
        pass

    def handler(ctx: inngest.ContextSync) -> None:
        ctx.step.run("a", lambda: (_ for _ in ()).throw(Boom("oh no")))

    res = mocked.trigger(fn_of(handler, retries=1), EV, mock_client)
    assert res.status is mocked.Status.FAILED and res.output is None
    assert isinstance(res.error, Boom) and str(res.error) == "oh no"


def test_a_handler_error_is_retried_then_reported() -> None:
    calls = 0

    def handler(ctx: inngest.ContextSync) -> None:
        nonlocal calls
        calls += 1
        raise KeyError("missing")

    res = mocked.trigger(fn_of(handler, retries=2), EV, mock_client)
    assert res.status is mocked.Status.FAILED and isinstance(res.error, KeyError)
    assert calls == 3


def test_parallel_returns_every_branch_in_order() -> None:
    async def handler(ctx: inngest.Context) -> tuple[str, ...]:
        async def one(v: str) -> str:
            return v

        return await ctx.group.parallel((lambda: ctx.step.run("a", one, "a"),
                                         lambda: ctx.step.run("b", one, "b")))

    res = mocked.trigger(fn_of(handler), EV, mock_client, step_stubs={"b": "B"})
    assert res.output == ("a", "B")


def test_a_batch_of_events() -> None:
    fn = fn_of(lambda ctx: [e.data["i"] for e in ctx.events])
    evs = [inngest.Event(name="order/created", data={"i": i}) for i in range(3)]
    assert mocked.trigger(fn, evs, mock_client).output == [0, 1, 2]


def test_bad_arguments_are_named() -> None:
    fn = fn_of(lambda ctx: None)
    with pytest.raises(ValueError, match="event: must provide at least 1 event"):
        mocked.trigger(fn, [], mock_client)
    with pytest.raises(TypeError, match="fn:"):
        mocked.trigger(lambda ctx: None, EV, mock_client)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="step_stubs:"):
        mocked.trigger(fn, EV, mock_client, step_stubs=["a"])  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"step_stubs\['a'\]: a wait_for_event stub"):
        mocked.trigger(fn_of(lambda ctx: ctx.step.wait_for_event("a", event="e", timeout=1)),
                       EV, mock_client, step_stubs={"a": 5})
    with pytest.raises(TypeError, match=r"step_stubs\['a'\]: output is not JSON"):
        mocked.trigger(fn_of(lambda ctx: ctx.step.run("a", lambda: 1)), EV, mock_client,
                       step_stubs={"a": object()})


def test_the_mock_clients_middleware_applies() -> None:
    seen: list[str] = []

    class Spy(inngest.MiddlewareSync):
        def before_execution(self) -> None:
            seen.append("before")

    client = mocked.Inngest(app_id="unit", middleware=[Spy])
    assert mocked.trigger(fn_of(lambda ctx: 1), EV, client).output == 1
    assert seen
