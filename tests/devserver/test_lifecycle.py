"""A long-lived ``inngest-do dev``: restarts from ``--store`` (runs wait for their app to
sync again), re-syncs that change or drop functions, bounded per-run state, and a cancel
that lands while a request to the app is in flight. Official SDK apps on loopback."""

from __future__ import annotations

import datetime
import threading
import urllib.request

import inngest

from inngest_do.devserver import DevServer
from inngest_do.devserver.dev_engine import DevEngine

from .conftest import finished, free_port, run_ids, sdk_client, start_sdk_app


def _napper(counts: dict[str, int]):
    def fns(client):
        @client.create_function(fn_id="nap", trigger=inngest.TriggerEvent(event="t/nap"))
        async def nap(ctx: inngest.Context) -> str:
            def before() -> str:
                counts["before"] = counts.get("before", 0) + 1
                return "x"
            first = await ctx.step.run("before", before)
            await ctx.step.sleep("zzz", datetime.timedelta(hours=1))
            return first + str(ctx.event.data.get("i"))
        return [nap]
    return fns


def _history(server: DevServer, run_id: str) -> list[str]:
    return [h["kind"] for h in server.views.run(run_id)["history"]]


def test_runs_wait_after_a_restart_until_their_app_syncs(tmp_path, serve_app):
    store = str(tmp_path / "dev.db")
    port = free_port()  # the app's client keeps pointing at the same origin
    counts: dict[str, int] = {}
    with DevServer(port=port, store=store, virtual_clock=True, seed=1) as first:
        client, app = start_sdk_app(first, serve_app, "sleepy", _napper(counts))
        [event_id] = client.send_sync(inngest.Event(name="t/nap", data={"i": 1}))
        [sleeper] = run_ids(first, event_id)
        first.wait_idle()
        assert first.views.run(sleeper)["state"] == "Sleeping"

    with DevServer(port=port, store=store, virtual_clock=True, seed=1) as second:
        # The app has not synced with this server: its stored config still routes events,
        # and every run waits instead of failing with "function not found".
        [event_id] = client.send_sync(inngest.Event(name="t/nap", data={"i": 2}))
        [newcomer] = run_ids(second, event_id)
        second.advance(datetime.timedelta(hours=1, seconds=5))
        second.wait_idle()
        for run_id in (sleeper, newcomer):
            run = second.views.run(run_id)
            assert run["status"] in ("QUEUED", "RUNNING"), run
            assert "run.parked" in _history(second, run_id)
        # step names were saved with the run
        assert [s["name"] for s in second.views.run(sleeper)["steps"]] == ["before", "zzz"]

        second.sync_app(app.url)
        assert finished(second, sleeper)["output"] == "x1"
        second.wait_idle()
        second.advance(datetime.timedelta(hours=1, seconds=5))
        assert finished(second, newcomer)["output"] == "x2"
    assert counts["before"] == 2  # the first run's step ran once, before the restart
    assert "run.unparked" in [h["kind"] for h in second.views.run(sleeper)["history"]]


def test_app_urls_sync_at_start_resumes_parked_runs(tmp_path, serve_app):
    store = str(tmp_path / "dev.db")
    port = free_port()
    counts: dict[str, int] = {}
    with DevServer(port=port, store=store, virtual_clock=True) as first:
        client, app = start_sdk_app(first, serve_app, "urls", _napper(counts))
        ids = client.send_sync([inngest.Event(name="t/nap", data={"i": i}) for i in range(3)])
        runs = [run_ids(first, e)[0] for e in ids]
        first.wait_idle()
    with DevServer(port=port, store=store, virtual_clock=True, app_urls=[app.url]) as second:
        assert second.engine.live_ids == {"urls-nap"}
        second.advance(datetime.timedelta(hours=1, seconds=5))
        assert [finished(second, r)["output"] for r in runs] == ["x0", "x1", "x2"]
    assert counts["before"] == 3


def test_a_sync_arriving_while_the_server_starts_is_served(tmp_path, serve_app, monkeypatch):
    store = str(tmp_path / "dev.db")
    port = free_port()
    counts: dict[str, int] = {}
    with DevServer(port=port, store=store, virtual_clock=True) as first:
        client, app = start_sdk_app(first, serve_app, "early", _napper(counts))
        [event_id] = client.send_sync(inngest.Event(name="t/nap", data={"i": 7}))
        [run_id] = run_ids(first, event_id)
        first.wait_idle()

    entered, gate = threading.Event(), threading.Event()
    recover = DevEngine._recover

    def slow_recover(self: DevEngine) -> None:
        entered.set()
        gate.wait(20)
        recover(self)

    monkeypatch.setattr(DevEngine, "_recover", slow_recover)
    second = DevServer(port=port, store=store, virtual_clock=True)
    starter = threading.Thread(target=second.start)
    starter.start()
    try:
        assert entered.wait(20)
        # The app syncs (the SDK's PUT posts its config to our /fn/register) while the
        # engine is still recovering: the request waits on the listening socket.
        answers: list[int] = []

        def sync() -> None:
            request = urllib.request.Request(app.url, method="PUT")
            with urllib.request.urlopen(request, timeout=30) as res:
                answers.append(res.status)

        syncer = threading.Thread(target=sync)
        syncer.start()
        gate.set()
        starter.join(30)
        syncer.join(30)
        assert answers == [200]
        assert second.engine.live_ids == {"early-nap"}
        second.advance(datetime.timedelta(hours=1, seconds=5))
        assert finished(second, run_id)["output"] == "x7"
    finally:
        gate.set()
        starter.join(30)
        second.stop()


def test_executor_keeps_no_state_for_ended_runs(dev, serve_app):
    def fns(client):
        @client.create_function(fn_id="two", trigger=inngest.TriggerEvent(event="t/two"),
                                retries=0)
        async def two(ctx: inngest.Context) -> int:
            a = await ctx.step.run("a", lambda: ctx.event.data["i"])
            b = await ctx.step.run("b", lambda: a * 2)
            if b == 6:
                raise ValueError("three")
            return b
        return [two]

    client, _ = start_sdk_app(dev, serve_app, "many", fns)
    ids = client.send_sync([inngest.Event(name="t/two", data={"i": i}) for i in range(40)])
    runs = [finished(dev, run_ids(dev, e)[0]) for e in ids]
    dev.wait_idle()
    assert sorted(r["output"] for r in runs if r["status"] == "COMPLETED") == sorted(
        2 * i for i in range(40) if i != 3)
    [failed] = [r for r in runs if r["status"] == "FAILED"]
    assert failed["error"]["message"] == "three"  # the app's error body, kept with the run
    assert dev.executor.in_flight == {}
    assert not [name for name, value in vars(dev.executor).items()
                if isinstance(value, dict) and value]
    assert all([s["name"] for s in r["steps"]] == ["a", "b"] for r in runs)


def _v1(client):
    @client.create_function(fn_id="main", trigger=inngest.TriggerEvent(event="t/a"))
    def main(ctx: inngest.ContextSync) -> str:
        return "v1"

    @client.create_function(fn_id="gone", trigger=inngest.TriggerEvent(event="t/gone"))
    def gone(ctx: inngest.ContextSync) -> str:
        return "gone"

    @client.create_function(fn_id="tick", trigger=inngest.TriggerCron(cron="0 * * * *"))
    def tick(ctx: inngest.ContextSync) -> str:
        return "tick"
    return [main, gone, tick]


def _v2(client):
    @client.create_function(fn_id="main", trigger=inngest.TriggerEvent(event="t/b"),
                            debounce=inngest.Debounce(period=datetime.timedelta(seconds=10)))
    def main(ctx: inngest.ContextSync) -> str:
        return "v2:" + str(ctx.event.data["i"])
    return [main]


def test_a_resync_applies_the_new_config_and_drops_removed_functions(serve_app):
    start = datetime.datetime(2030, 1, 1, 0, 30, tzinfo=datetime.timezone.utc)
    with DevServer(virtual_clock=True, seed=5, start=start) as server:
        client, old_app = start_sdk_app(server, serve_app, "cfg", _v1)
        [e1] = client.send_sync(inngest.Event(name="t/a"))
        assert finished(server, run_ids(server, e1)[0])["output"] == "v1"

        old_app.stop()
        new_client = sdk_client(server, "cfg")
        new_app = serve_app(new_client, _v2(new_client))
        server.sync_app(new_app.url)

        new_client.send_sync([inngest.Event(name="t/a"), inngest.Event(name="t/gone")])
        new_client.send_sync([inngest.Event(name="t/b", data={"i": i}) for i in range(3)])
        server.wait_idle()
        assert [r["output"] for r in server.views.runs(fn_id="cfg-main")] == ["v1"]
        assert server.views.runs(fn_id="cfg-gone") == []
        server.advance("2h")  # past the debounce and two would-be cron ticks
        server.wait_idle()
        assert [r["output"] for r in server.views.runs(fn_id="cfg-main")] == ["v1", "v2:2"]
        assert server.views.runs(fn_id="cfg-tick") == []
        [app] = server.registry.apps.values()
        assert sorted(app.functions) == ["cfg-main"]


def test_cancel_takes_effect_while_the_app_is_working(dev, serve_app):
    entered, release, done = threading.Event(), threading.Event(), threading.Event()

    def fns(client):
        @client.create_function(fn_id="busy", trigger=inngest.TriggerEvent(event="t/go"),
                                cancel=[inngest.Cancel(event="t/stop")])
        def busy(ctx: inngest.ContextSync) -> str:
            def work() -> str:
                entered.set()
                release.wait(20)
                done.set()
                return "worked"
            return ctx.step.run("work", work)
        return [busy]

    client, _ = start_sdk_app(dev, serve_app, "inflight", fns)
    [event_id] = client.send_sync(inngest.Event(name="t/go"))
    [run_id] = run_ids(dev, event_id)
    assert entered.wait(20)
    try:
        client.send_sync(inngest.Event(name="t/stop"))
        # cancelled while the app still holds the request
        run = finished(dev, run_id, timeout=10)
        assert run["status"] == "CANCELLED" and not done.is_set()
        assert dev.executor.in_flight == {}
    finally:
        release.set()
    assert done.wait(20)
    dev.wait_idle()
    run = dev.views.run(run_id)
    assert run["status"] == "CANCELLED" and run["steps"] == []  # the late answer is dropped


def test_a_resync_keeps_what_was_collected_under_the_old_config(serve_app):
    def v1(client):
        @client.create_function(fn_id="deb", trigger=inngest.TriggerEvent(event="t/d"),
                                debounce=inngest.Debounce(period=datetime.timedelta(minutes=1)))
        def deb(ctx: inngest.ContextSync) -> str:
            return "v1"

        @client.create_function(fn_id="bat", trigger=inngest.TriggerEvent(event="t/b"),
                                batch_events=inngest.Batch(
                                    max_size=10, timeout=datetime.timedelta(minutes=1)))
        def bat(ctx: inngest.ContextSync) -> list:
            return ["v1", len(ctx.events)]
        return [deb, bat]

    def v2(client):
        # no debounce any more; the batch is kept with a shorter timeout
        @client.create_function(fn_id="deb", trigger=inngest.TriggerEvent(event="t/d"))
        def deb(ctx: inngest.ContextSync) -> object:
            return ["v2", ctx.event.data["i"]]

        @client.create_function(fn_id="bat", trigger=inngest.TriggerEvent(event="t/b"),
                                batch_events=inngest.Batch(
                                    max_size=3, timeout=datetime.timedelta(seconds=5)))
        def bat(ctx: inngest.ContextSync) -> list:
            return ["v2", len(ctx.events)]
        return [deb, bat]

    with DevServer(virtual_clock=True, seed=2) as server:
        client, old_app = start_sdk_app(server, serve_app, "piles", v1)
        client.send_sync([inngest.Event(name="t/d", data={"i": i}) for i in range(2)])
        client.send_sync([inngest.Event(name="t/b", data={"i": i}) for i in range(2)])
        server.wait_idle()
        assert server.views.runs() == []
        old_app.stop()
        new_client = sdk_client(server, "piles")
        server.sync_app(serve_app(new_client, v2(new_client)).url)
        server.wait_idle()
        # the debounced event starts its run at the sync (under the new config)
        [deb] = server.views.runs(fn_id="piles-deb")
        assert finished(server, deb["run_id"])["output"] == ["v2", 1]
        # the batch goes on collecting: one more event fills it to the new max size
        new_client.send_sync(inngest.Event(name="t/b", data={"i": 2}))
        server.wait_idle()
        [bat] = server.views.runs(fn_id="piles-bat")
        assert finished(server, bat["run_id"])["output"] == ["v2", 3]
