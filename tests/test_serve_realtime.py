"""Realtime under serve(): what a run publishes reaches an SSE client of the serve path, over a
real loopback socket. Waits are bounded."""

from __future__ import annotations

import json

import pytest
from serve_helpers import uvicorn_server

import inngest_do as inngest
from inngest_do._serve import Request, ServeHandler
from inngest_do.experimental import realtime

fastapi = pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")
httpx = pytest.importorskip("httpx")
import inngest_do.fast_api


def _app() -> tuple[inngest.Inngest, list[inngest.Function]]:
    client = inngest.Inngest(app_id="rt")

    @client.create_function(fn_id="progress", trigger=inngest.TriggerEvent(event="rt/go"))
    async def progress(ctx: inngest.Context) -> None:
        async def say() -> None:
            await realtime.publish(client, f"job-{ctx.event.data['job']}", "status",
                                   {"step": "working"})

        await ctx.step.run("say", say)

    return client, [progress]


def test_published_messages_stream_as_server_sent_events() -> None:
    client, functions = _app()
    app = fastapi.FastAPI()
    inngest_do.fast_api.serve(app, client, functions)
    with uvicorn_server(app) as (base, _server):
        with httpx.Client(base_url=base, timeout=10) as http, http.stream(
                "GET", "/api/inngest/realtime", params={"channel": "job-7",
                                                          "topics": "status"}) as sse:
            assert sse.status_code == 200
            assert sse.headers["content-type"].startswith("text/event-stream")
            lines = sse.iter_lines()
            assert next(lines) == ": connected"  # subscribed before the event is sent
            http.post("/e/key", json={"name": "rt/go", "data": {"job": 7}})
            data = None
            for line in lines:  # bounded by the client's 10 s read timeout
                if line.startswith("data: "):
                    data = json.loads(line[len("data: "):])
                    break
        assert data is not None
        assert data["channel"] == "job-7" and data["topic"] == "status"
        assert data["data"] == {"step": "working"}


@pytest.mark.parametrize("query,status", [({}, 400), ({"channel": ""}, 400)])
def test_a_stream_needs_a_channel(query: dict, status: int) -> None:
    client, functions = _app()
    handler = ServeHandler(client, functions, framework="test")
    res = handler.handle(Request("GET", "/api/inngest/realtime", {}, query=query))
    assert res.status == status and b"channel" in res.body


def test_a_stream_needs_a_signature_when_the_client_has_a_signing_key() -> None:
    client = inngest.Inngest(app_id="rt", signing_key="signkey-test-abcd")
    handler = ServeHandler(client, [], framework="test")
    res = handler.handle(Request("GET", "/api/inngest/realtime", {}, query={"channel": "c"}))
    assert res.status == 401


def test_only_get_streams() -> None:
    client, functions = _app()
    handler = ServeHandler(client, functions, framework="test")
    res = handler.handle(Request("POST", "/api/inngest/realtime", {}, query={"channel": "c"}))
    assert res.status == 405
