"""Flow-control options synced from an official-SDK app apply to its runs."""

from __future__ import annotations

import datetime
import threading

import inngest

from .conftest import finished, run_ids, start_sdk_app, wait_for


def _runs(server, fn_id):
    return server.views.runs(fn_id=fn_id)


def test_rate_limit_idempotency_and_debounce(vdev, serve_app):
    def fns(client):
        @client.create_function(fn_id="limited", trigger=inngest.TriggerEvent(event="t/rl"),
                                rate_limit=inngest.RateLimit(limit=1,
                                                             period=datetime.timedelta(hours=1)))
        def limited(ctx: inngest.ContextSync) -> int:
            return ctx.event.data["i"]

        @client.create_function(fn_id="idem", trigger=inngest.TriggerEvent(event="t/idem"),
                                idempotency="event.data.key")
        def idem(ctx: inngest.ContextSync) -> int:
            return ctx.event.data["i"]

        @client.create_function(fn_id="deb", trigger=inngest.TriggerEvent(event="t/deb"),
                                debounce=inngest.Debounce(period=datetime.timedelta(seconds=10)))
        def deb(ctx: inngest.ContextSync) -> int:
            return ctx.event.data["i"]
        return [limited, idem, deb]

    client, _ = start_sdk_app(vdev, serve_app, "flow", fns)
    client.send_sync([inngest.Event(name="t/rl", data={"i": i}) for i in range(3)])
    client.send_sync([inngest.Event(name="t/idem", data={"i": i, "key": "same"})
                      for i in range(3)])
    client.send_sync([inngest.Event(name="t/deb", data={"i": i}) for i in range(3)])
    vdev.wait_idle()
    assert [r["output"] for r in _runs(vdev, "flow-limited")] == [0]
    assert [r["output"] for r in _runs(vdev, "flow-idem")] == [0]
    assert _runs(vdev, "flow-deb") == []
    vdev.advance("11s")
    vdev.wait_idle()
    assert [r["output"] for r in _runs(vdev, "flow-deb")] == [2]
    outcomes = [o["outcome"] for e in vdev.views.events(name="t/rl") for o in e["outcomes"]]
    assert outcomes == ["started", "rate_limited", "rate_limited"]


def test_batch_events(vdev, serve_app):
    def fns(client):
        @client.create_function(fn_id="batched", trigger=inngest.TriggerEvent(event="t/b"),
                                batch_events=inngest.Batch(
                                    max_size=3, timeout=datetime.timedelta(seconds=5)))
        def batched(ctx: inngest.ContextSync) -> list:
            return [e.data["i"] for e in ctx.events]
        return [batched]

    client, _ = start_sdk_app(vdev, serve_app, "batch", fns)
    client.send_sync([inngest.Event(name="t/b", data={"i": i}) for i in range(4)])
    vdev.wait_idle()
    vdev.advance("5s")
    vdev.wait_idle()
    assert sorted(r["output"] for r in _runs(vdev, "batch-batched")) == [[0, 1, 2], [3]]


def test_concurrency_limit_one_at_a_time(dev, serve_app):
    active, peak = [0], [0]
    lock = threading.Lock()
    release = threading.Event()

    def fns(client):
        @client.create_function(fn_id="serial", trigger=inngest.TriggerEvent(event="t/c"),
                                concurrency=[inngest.Concurrency(limit=1)])
        def serial(ctx: inngest.ContextSync) -> int:
            def body() -> int:
                with lock:
                    active[0] += 1
                    peak[0] = max(peak[0], active[0])
                release.wait(5)
                with lock:
                    active[0] -= 1
                return ctx.event.data["i"]
            return ctx.step.run("work", body)
        return [serial]

    client, _ = start_sdk_app(dev, serve_app, "conc", fns)
    ids = client.send_sync([inngest.Event(name="t/c", data={"i": i}) for i in range(3)])
    wait_for(lambda: active[0] == 1)
    release.set()
    runs = [finished(dev, run_ids(dev, e)[0]) for e in ids]
    assert [r["output"] for r in runs] == [0, 1, 2] and peak[0] == 1


def test_singleton_skip_and_throttle(vdev, serve_app):
    def fns(client):
        @client.create_function(fn_id="single", trigger=inngest.TriggerEvent(event="t/s"),
                                singleton=inngest.Singleton(mode="skip"))
        async def single(ctx: inngest.Context) -> None:
            await ctx.step.sleep("hold", datetime.timedelta(minutes=1))

        @client.create_function(fn_id="thr", trigger=inngest.TriggerEvent(event="t/t"),
                                throttle=inngest.Throttle(limit=1,
                                                          period=datetime.timedelta(minutes=1)))
        def thr(ctx: inngest.ContextSync) -> int:
            return ctx.event.data["i"]
        return [single, thr]

    client, _ = start_sdk_app(vdev, serve_app, "single", fns)
    client.send_sync(inngest.Event(name="t/s"))
    vdev.wait_idle()
    client.send_sync(inngest.Event(name="t/s"))
    client.send_sync([inngest.Event(name="t/t", data={"i": i}) for i in range(4)])
    vdev.wait_idle()
    assert sorted(r["status"] for r in _runs(vdev, "single-single")) == ["RUNNING", "SKIPPED"]
    done = [r["output"] for r in _runs(vdev, "single-thr") if r["status"] == "COMPLETED"]
    assert 1 <= len(done) < 4  # the rest wait their turn; none is dropped
    vdev.advance("5m")
    vdev.wait_idle()
    assert [r["output"] for r in _runs(vdev, "single-thr")] == [0, 1, 2, 3]
