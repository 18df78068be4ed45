"""experimental.realtime: publish to in-process subscribers, once per step even when runs
replay, across threads and loops, and as Server-Sent Events."""

from __future__ import annotations

import asyncio
import datetime
import json
import threading
import typing

import pytest
from helpers import ev, only_run

import inngest_do as inngest
from inngest_do.experimental import realtime
from inngest_do.realtime_hub import hub_for
from inngest_do.testing import DEFAULT_START, Simulation


def arun(coro: typing.Coroutine) -> typing.Any:
    return asyncio.run(asyncio.wait_for(coro, 30))


def _triples(sub: realtime.Subscription) -> list[tuple[str, str, object]]:
    return [(m.channel, m.topic, m.data) for m in sub.drain()]


def test_publish_reaches_subscribers_of_the_channel_and_topic(
        client: inngest.Inngest) -> None:
    every = client.subscribe("user:1")
    progress = client.subscribe("user:1", ["progress"])
    other = client.subscribe("user:2")
    realtime.publish_sync(client, "user:1", "progress", {"pct": 10})
    arun(realtime.publish(client, "user:1", "tokens", {"text": "Hel"}))
    assert _triples(every) == [("user:1", "progress", {"pct": 10}),
                               ("user:1", "tokens", {"text": "Hel"})]
    assert _triples(progress) == [("user:1", "progress", {"pct": 10})]
    assert other.drain() == []


def test_data_is_copied_and_must_be_json(client: inngest.Inngest) -> None:
    sub = client.subscribe("c")
    data = {"items": [1]}
    realtime.publish_sync(client, "c", "t", data)
    data["items"].append(2)  # the publisher's later change does not reach the subscriber
    assert sub.drain()[0].data == {"items": [1]}
    with pytest.raises(TypeError, match="data: not JSON-serializable"):
        realtime.publish_sync(client, "c", "t", {"x": object()})
    with pytest.raises(TypeError, match="channel"):
        realtime.publish_sync(client, "", "t", {})
    with pytest.raises(TypeError, match="topic"):
        realtime.publish_sync(client, "c", 3, {})  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="topics"):
        client.subscribe("c", "progress")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="max_buffer"):
        client.subscribe("c", max_buffer=0)


def test_a_slow_reader_keeps_only_the_newest(client: inngest.Inngest) -> None:
    sub = client.subscribe("c", max_buffer=3)
    for i in range(5):
        realtime.publish_sync(client, "c", "t", {"i": i})
    assert [m.data["i"] for m in sub.drain()] == [2, 3, 4] and sub.dropped == 2


def test_async_reader_on_another_thread_and_close(client: inngest.Inngest) -> None:
    sub = client.subscribe("c", ["t"])

    def publisher() -> None:
        for i in range(3):
            realtime.publish_sync(client, "c", "t", {"i": i})
        sub.close()

    async def read() -> list[int]:
        thread = threading.Thread(target=publisher)
        thread.start()
        got = [m.data["i"] async for m in sub]  # ends when closed, after the buffered ones
        thread.join(timeout=10)
        return got

    assert arun(read()) == [0, 1, 2]
    assert hub_for(client).subscribers("c") == 0
    realtime.publish_sync(client, "c", "t", {})  # nobody listens: fine
    assert sub.drain() == []


@pytest.mark.parametrize("sync", [False, True], ids=["async", "sync"])
def test_published_once_per_step_even_when_the_run_replays(
        client: inngest.Inngest, tmp_path: typing.Any, sync: bool) -> None:
    client = inngest.Inngest(app_id="rt", store=str(tmp_path / "rt.db"))
    if sync:
        @client.create_function(fn_id="f", trigger=inngest.TriggerEvent(event="go"))
        def fn_sync(ctx: inngest.ContextSync) -> str:
            realtime.publish_sync(client, "run", "status", {"at": "start"})
            ctx.step.run("work", lambda: realtime.publish_sync(
                client, "run", "status", {"at": "in-step"}))
            ctx.step.sleep("nap", datetime.timedelta(minutes=1))
            realtime.publish_sync(client, "run", "status", {"at": "after-nap"})
            ctx.step.sleep("nap2", datetime.timedelta(minutes=1))
            return "done"
    else:
        @client.create_function(fn_id="f", trigger=inngest.TriggerEvent(event="go"))
        async def fn(ctx: inngest.Context) -> str:
            await realtime.publish(client, "run", "status", {"at": "start"})

            async def work() -> None:
                await realtime.publish(client, "run", "status", {"at": "in-step"})

            await ctx.step.run("work", work)
            await ctx.step.sleep("nap", datetime.timedelta(minutes=1))
            await realtime.publish(client, "run", "status", {"at": "after-nap"})
            await ctx.step.sleep("nap2", datetime.timedelta(minutes=1))
            return "done"

    sub = client.subscribe("run")
    sim = Simulation(client)
    sim.send(ev())
    sim.wake_all()  # spurious wake-ups: replays of a sync handler, nothing new for async
    sim.advance(datetime.timedelta(minutes=1))
    sim.crash()  # the handler replays from the store (an async one too)
    sim.wake_all()
    sim.advance(datetime.timedelta(minutes=1))
    assert only_run(sim).output == "done"
    msgs = sub.drain()
    assert [m.data["at"] for m in msgs] == ["start", "in-step", "after-nap"]
    run = only_run(sim)
    assert {(m.run_id, m.fn_id) for m in msgs} == {(run.id, run.fn_id)}
    # message times are the engine's (virtual) clock
    assert [m.created_at for m in msgs] == [DEFAULT_START, DEFAULT_START,
                                            DEFAULT_START + datetime.timedelta(minutes=1)]


def test_a_failed_step_attempt_publishes_again(client: inngest.Inngest) -> None:
    # A step body runs at least once: each attempt that runs publishes.
    @client.create_function(fn_id="f", trigger=inngest.TriggerEvent(event="go"), retries=1)
    async def fn(ctx: inngest.Context) -> None:
        def body() -> None:
            realtime.publish_sync(client, "c", "t", {"attempt": ctx.attempt})
            if ctx.attempt == 0:
                raise RuntimeError("flaky")

        await ctx.step.run("s", body)

    sub = client.subscribe("c")
    sim = Simulation(client)
    sim.send(ev())
    sim.run_until_idle()
    assert [m.data for m in sub.drain()] == [{"attempt": 0}, {"attempt": 1}]


def test_subscription_token_shape(client: inngest.Inngest) -> None:
    token = arun(realtime.get_subscription_token(client, "c", ["a", "b"]))
    assert token == {"channel": "c", "topics": ["a", "b"], "key": ""}
    with pytest.raises(TypeError, match="topics"):
        realtime.get_subscription_token_sync(client, "c", "a")  # type: ignore[arg-type]


# -- Server-Sent Events -----------------------------------------------------------------------
def _event(chunk: bytes) -> dict:
    lines = chunk.decode().split("\n")
    assert chunk.endswith(b"\n\n") and lines[0].startswith("id: ")
    assert lines[1].startswith("data: ")
    return json.loads(lines[1][len("data: "):])


def test_sse_stream_frames_messages(client: inngest.Inngest) -> None:
    async def main() -> list[bytes]:
        stream = realtime.sse_stream(client, "user:1", "progress,done")
        chunks = [await stream.__anext__()]  # subscribed once the first chunk is out
        realtime.publish_sync(client, "user:1", "ignored", {})
        realtime.publish_sync(client, "user:1", "progress", {"pct": 50, "note": "a\nb"})
        realtime.publish_sync(client, "user:1", "done", {"ok": True})
        chunks.append(await stream.__anext__())
        chunks.append(await stream.__anext__())
        await stream.aclose()
        return chunks

    first, progress, done = arun(main())
    assert first == b": connected\n\n"
    body = _event(progress)
    assert progress.startswith(b"id: 1\n")
    assert body["channel"] == "user:1" and body["topic"] == "progress"
    assert body["data"] == {"pct": 50, "note": "a\nb"} and body["kind"] == "data"
    assert body["runId"] is None and body["createdAt"].endswith("Z")
    assert done.startswith(b"id: 2\n") and _event(done)["data"] == {"ok": True}
    assert hub_for(client).subscribers("user:1") == 0  # closing the stream unsubscribed


def test_sse_keepalive_while_idle(client: inngest.Inngest) -> None:
    async def main() -> list[bytes]:
        stream = realtime.sse_stream(client, "c", None, keepalive_s=0.01)
        got = [await stream.__anext__(), await stream.__anext__()]
        realtime.publish_sync(client, "c", "any", {"n": 1})
        while True:  # keepalives until the message (buffered, so it comes next)
            chunk = await stream.__anext__()
            if not chunk.startswith(b":"):
                got.append(chunk)
                break
        await stream.aclose()
        return got

    connected, keepalive, message = arun(main())
    assert (connected, keepalive) == (b": connected\n\n", b": keepalive\n\n")
    assert _event(message)["data"] == {"n": 1}


def test_worker_publishes_to_an_async_subscriber() -> None:
    client = inngest.Inngest(app_id="w")

    @client.create_function(fn_id="f", trigger=inngest.TriggerEvent(event="go"))
    def fn(ctx: inngest.ContextSync) -> None:  # a sync handler: runs on a worker thread
        for i in range(3):
            ctx.step.run(f"s{i}", lambda i=i: realtime.publish_sync(client, "w", "t", {"i": i}))

    async def main() -> list[int]:
        sub = client.subscribe("w")
        async with inngest.Worker(client):
            await client.send(ev())
            got = []
            async for msg in sub:
                got.append(msg.data["i"])
                if len(got) == 3:
                    break
            sub.close()
            return got

    assert arun(main()) == [0, 1, 2]
