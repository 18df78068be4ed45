"""Every opcode of the SDK protocol, driven by the official SDK (from PyPI) against our server."""

from __future__ import annotations

import datetime
import json

import inngest

from .conftest import finished, run_ids, start_sdk_app, wait_for


def test_sleep_a_virtual_day(vdev, serve_app):
    def fns(client):
        @client.create_function(fn_id="nap", trigger=inngest.TriggerEvent(event="t/nap"))
        async def nap(ctx: inngest.Context) -> str:
            before = await ctx.step.run("before", lambda: "x")
            await ctx.step.sleep("zzz", datetime.timedelta(days=1))
            return before + "y"
        return [nap]

    client, _ = start_sdk_app(vdev, serve_app, "sleepy", fns)
    [event_id] = client.send_sync(inngest.Event(name="t/nap"))
    [run_id] = run_ids(vdev, event_id)
    vdev.wait_idle()
    assert vdev.views.run(run_id)["state"] == "Sleeping"
    started = vdev.now
    vdev.advance("23h")
    vdev.wait_idle()
    assert vdev.views.run(run_id)["state"] == "Sleeping"
    vdev.advance(datetime.timedelta(hours=1, seconds=1))
    run = finished(vdev, run_id)
    assert run["status"] == "COMPLETED" and run["output"] == "xy"
    assert vdev.now - started == datetime.timedelta(days=1, seconds=1)
    assert [s["name"] for s in run["steps"]] == ["before", "zzz"]


def test_wait_for_event_with_if_and_timeout(vdev, serve_app):
    def fns(client):
        @client.create_function(fn_id="waiter", trigger=inngest.TriggerEvent(event="t/order"))
        async def waiter(ctx: inngest.Context) -> object:
            got = await ctx.step.wait_for_event(
                "approval", event="t/approved", if_exp="async.data.id == event.data.id",
                timeout=datetime.timedelta(hours=1))
            return None if got is None else got.data
        return [waiter]

    client, _ = start_sdk_app(vdev, serve_app, "waits", fns)
    [first] = client.send_sync(inngest.Event(name="t/order", data={"id": 1}))
    [second] = client.send_sync(inngest.Event(name="t/order", data={"id": 2}))
    [run1], [run2] = run_ids(vdev, first), run_ids(vdev, second)
    vdev.wait_idle()
    client.send_sync(inngest.Event(name="t/approved", data={"id": 3}))  # matches neither
    client.send_sync(inngest.Event(name="t/approved", data={"id": 1, "ok": True}))
    assert finished(vdev, run1)["output"] == {"id": 1, "ok": True}
    assert vdev.views.run(run2)["state"] == "Waiting"
    vdev.advance("1h")
    run = finished(vdev, run2)
    assert run["status"] == "COMPLETED" and run["output"] is None


def test_invoke_across_apps(dev, serve_app):
    def callee_fns(client):
        @client.create_function(fn_id="double", trigger=inngest.TriggerEvent(event="t/never"))
        def double(ctx: inngest.ContextSync) -> int:
            return ctx.event.data["n"] * 2
        return [double]

    def caller_fns(client):
        @client.create_function(fn_id="caller", trigger=inngest.TriggerEvent(event="t/call"))
        async def caller(ctx: inngest.Context) -> object:
            return await ctx.step.invoke_by_id("inv", app_id="callee", function_id="double",
                                               data={"n": 21})
        return [caller]

    start_sdk_app(dev, serve_app, "callee", callee_fns)
    client, _ = start_sdk_app(dev, serve_app, "caller", caller_fns)
    [event_id] = client.send_sync(inngest.Event(name="t/call"))
    [run_id] = run_ids(dev, event_id)
    assert finished(dev, run_id)["output"] == 42
    child = [r for r in dev.views.runs(fn_id="callee-double")]
    assert len(child) == 1 and child[0]["output"] == 42


def test_parallel_steps_and_race(dev, serve_app):
    def fns(client):
        @client.create_function(fn_id="par", trigger=inngest.TriggerEvent(event="t/par"))
        async def par(ctx: inngest.Context) -> object:
            out = await ctx.group.parallel((
                lambda: ctx.step.run("a", lambda: 1),
                lambda: ctx.step.run("b", lambda: 2),
                lambda: ctx.step.run("c", lambda: 3)))
            after = await ctx.step.run("after", lambda: sum(out))
            return [list(out), after]
        return [par]

    client, _ = start_sdk_app(dev, serve_app, "para", fns)
    [event_id] = client.send_sync(inngest.Event(name="t/par"))
    run = finished(dev, run_ids(dev, event_id)[0])
    assert run["output"] == [[1, 2, 3], 6]
    assert sorted(s["name"] for s in run["steps"]) == ["a", "after", "b", "c"]


def test_send_event_step_triggers_another_function(dev, serve_app):
    def fns(client):
        @client.create_function(fn_id="sender", trigger=inngest.TriggerEvent(event="t/send"))
        async def sender(ctx: inngest.Context) -> object:
            return await ctx.step.send_event("out", inngest.Event(name="t/sent", data={"k": 1}))

        @client.create_function(fn_id="receiver", trigger=inngest.TriggerEvent(event="t/sent"))
        def receiver(ctx: inngest.ContextSync) -> object:
            return ctx.event.data

        return [sender, receiver]

    client, _ = start_sdk_app(dev, serve_app, "sends", fns)
    [event_id] = client.send_sync(inngest.Event(name="t/send"))
    run = finished(dev, run_ids(dev, event_id)[0])
    [sent_id] = run["output"]
    assert finished(dev, run_ids(dev, sent_id)[0])["output"] == {"k": 1}


def test_step_retries_then_succeeds_on_virtual_clock(vdev, serve_app):
    attempts = []

    def fns(client):
        @client.create_function(fn_id="flaky", trigger=inngest.TriggerEvent(event="t/flaky"),
                                retries=3)
        async def flaky(ctx: inngest.Context) -> int:
            def body() -> int:
                attempts.append(ctx.attempt)
                if len(attempts) < 3:
                    raise ValueError(f"boom {len(attempts)}")
                return len(attempts)
            return await ctx.step.run("flaky-step", body)
        return [flaky]

    client, _ = start_sdk_app(vdev, serve_app, "retry", fns)
    [event_id] = client.send_sync(inngest.Event(name="t/flaky"))
    [run_id] = run_ids(vdev, event_id)
    vdev.wait_idle()
    assert attempts == [0]
    vdev.advance("1m")  # first backoff: 15 s + up to 30 s jitter
    vdev.wait_idle()
    assert attempts == [0, 1]
    vdev.advance("2m")
    run = finished(vdev, run_id)
    assert run["status"] == "COMPLETED" and run["output"] == 3 and attempts == [0, 1, 2]
    failures = [h for h in run["history"] if h["kind"] == "step.failed"]
    assert [f["detail"]["error"] for f in failures] == ["boom 1", "boom 2"]


def test_non_retriable_error_fails_at_once(dev, serve_app):
    def fns(client):
        @client.create_function(fn_id="nope", trigger=inngest.TriggerEvent(event="t/nope"))
        def nope(ctx: inngest.ContextSync) -> None:
            raise inngest.NonRetriableError("no way")
        return [nope]

    client, _ = start_sdk_app(dev, serve_app, "nonretry", fns)
    [event_id] = client.send_sync(inngest.Event(name="t/nope"))
    run = finished(dev, run_ids(dev, event_id)[0])
    assert run["status"] == "FAILED" and run["attempts"] == 1
    assert run["error"]["code"] == "non_retriable_error" and run["error"]["message"] == "no way"


def test_step_failed_for_good_raises_in_the_function(vdev, serve_app):
    def fns(client):
        @client.create_function(fn_id="catch", trigger=inngest.TriggerEvent(event="t/catch"),
                                retries=0)
        async def catch(ctx: inngest.Context) -> str:
            def bad() -> None:
                raise KeyError("missing")
            try:
                await ctx.step.run("bad", bad)
            except inngest.StepError as err:
                return f"caught {err.name}"
            return "not raised"
        return [catch]

    client, _ = start_sdk_app(vdev, serve_app, "stepfail", fns)
    [event_id] = client.send_sync(inngest.Event(name="t/catch"))
    run = finished(vdev, run_ids(vdev, event_id)[0])
    assert run["output"] == "caught KeyError"
    out = vdev.views.step_output(run["steps"][0]["output_id"])
    assert out["error"]["name"] == "KeyError"


def test_cancel_on_event(vdev, serve_app):
    def fns(client):
        @client.create_function(
            fn_id="cancellable", trigger=inngest.TriggerEvent(event="t/start"),
            cancel=[inngest.Cancel(event="t/stop", if_exp="async.data.id == event.data.id")])
        async def cancellable(ctx: inngest.Context) -> None:
            await ctx.step.sleep("long", datetime.timedelta(hours=5))
        return [cancellable]

    client, _ = start_sdk_app(vdev, serve_app, "cancels", fns)
    [event_id] = client.send_sync(inngest.Event(name="t/start", data={"id": 9}))
    [run_id] = run_ids(vdev, event_id)
    vdev.wait_idle()
    client.send_sync(inngest.Event(name="t/stop", data={"id": 9}))
    assert finished(vdev, run_id)["status"] == "CANCELLED"


def test_on_failure_handler_runs(dev, serve_app):
    def fns(client):
        async def failed(ctx: inngest.Context) -> object:
            return ctx.event.data["error"]["message"]

        @client.create_function(fn_id="fails", trigger=inngest.TriggerEvent(event="t/fail"),
                                retries=0, on_failure=failed)
        async def fails(ctx: inngest.Context) -> None:
            raise RuntimeError("kaput")
        return [fails]

    client, _ = start_sdk_app(dev, serve_app, "failing", fns)
    [event_id] = client.send_sync(inngest.Event(name="t/fail"))
    assert finished(dev, run_ids(dev, event_id)[0])["status"] == "FAILED"
    [handler] = wait_for(lambda: dev.views.runs(fn_id="failing-fails-failure"))
    assert finished(dev, handler["run_id"])["output"] == "kaput"


def test_cron_tick_on_virtual_clock(serve_app):
    from inngest_do.devserver import DevServer

    start = datetime.datetime(2030, 1, 1, 0, 30, tzinfo=datetime.timezone.utc)
    with DevServer(virtual_clock=True, seed=3, start=start) as server:
        def fns(client):
            @client.create_function(fn_id="hourly", trigger=inngest.TriggerCron(cron="0 * * * *"))
            def hourly(ctx: inngest.ContextSync) -> str:
                return ctx.event.name
            return [hourly]

        start_sdk_app(server, serve_app, "crons", fns)
        server.advance("29m")
        server.wait_idle()
        assert server.views.runs(fn_id="crons-hourly") == []
        server.advance("3h")
        server.wait_idle()
        runs = server.views.runs(fn_id="crons-hourly")
        assert [r["status"] for r in runs] == ["COMPLETED"] * 3
        assert runs[0]["output"] == "inngest/scheduled.timer"


def test_same_seed_same_run_ids(serve_app):
    from inngest_do.devserver import DevServer

    start = datetime.datetime(2030, 1, 1, tzinfo=datetime.timezone.utc)
    seen = []
    for _ in range(2):
        with DevServer(virtual_clock=True, seed=11, start=start) as server:
            def fns(client):
                @client.create_function(fn_id="echo", trigger=inngest.TriggerEvent(event="t/e"))
                def echo(ctx: inngest.ContextSync) -> object:
                    return ctx.event.data
                return [echo]

            client, app = start_sdk_app(server, serve_app, "seeded", fns)
            ids = [client.send_sync(inngest.Event(name="t/e", data={"i": i}, ts=1))[0]
                   for i in range(3)]
            runs = [finished(server, run_ids(server, e)[0]) for e in ids]
            seen.append([(r["run_id"], json.dumps(r["output"])) for r in runs])
            app.stop()
    assert seen[0] == seen[1]
