"""``inngest_do.tornado.serve``: over a real loopback socket (a Tornado server on its own
thread and loop), the worker starts with the app's first request, served functions run, the
routes answer as the core does, and streaming bodies are sent chunk by chunk."""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import typing

import pytest
from serve_helpers import completed, shop, wait_until

import inngest_do as inngest
from inngest_do import signing
from inngest_do._serve import BackgroundWorker, Response

tornado_web = pytest.importorskip("tornado.web")
httpx = pytest.importorskip("httpx")
import inngest_do.tornado  # after the skips: Tornado is optional


@contextlib.contextmanager
def running(app: typing.Any) -> typing.Iterator[httpx.Client]:
    """``app`` listening on a free loopback port, on its own thread and loop."""
    ready = threading.Event()
    state: dict[str, typing.Any] = {}

    async def main() -> None:
        server = app.listen(0, address="127.0.0.1")
        state["port"] = next(iter(server._sockets.values())).getsockname()[1]
        state["stop"] = stop = asyncio.Event()
        state["loop"] = asyncio.get_running_loop()
        ready.set()
        await stop.wait()
        server.stop()

    thread = threading.Thread(target=asyncio.run, args=(main(),), daemon=True)
    thread.start()
    assert ready.wait(15)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{state['port']}", timeout=10) as http:
            yield http
    finally:
        state["loop"].call_soon_threadsafe(state["stop"].set)
        thread.join(30)


class Ping(tornado_web.RequestHandler):
    def get(self) -> None:
        self.write("pong")


def test_served_functions_run_and_the_worker_starts_with_the_first_request(
        clients: list[inngest.Inngest]) -> None:
    client, functions = shop(clients)
    app = tornado_web.Application([(r"/ping", Ping)])
    inngest_do.tornado.serve(app, client, functions)
    runner = BackgroundWorker.for_client(client)
    assert not runner.running
    with running(app) as http:
        assert http.get("/ping").text == "pong"
        assert runner.running
        res = http.post("/api/inngest", json={"name": "shop/n", "data": {"n": 2}})
        assert res.status_code == 200 and len(res.json()["ids"]) == 1
        wait_until(completed(client, 2))
        doc = http.get("/api/inngest").json()
        assert doc["framework"] == "tornado" and doc["function_count"] == 2
    assert sorted(r.output for r in client.runs()) == [4, 6]
    runner.stop(30)
    assert client.engine.on_work is None


def test_routes_answer_as_the_core_does(clients: list[inngest.Inngest]) -> None:
    key = "signkey-test-" + "0f" * 32
    client, functions = shop(clients, signing_key=key, event_key="ek")
    app = tornado_web.Application(xsrf_cookies=True)
    inngest_do.tornado.serve(app, client, functions, serve_path="/inngest")
    body = json.dumps({"name": "shop/n", "data": {"n": 1}}).encode()
    with running(app) as http:
        assert http.post("/inngest", content=body).status_code == 401
        signed = http.post("/inngest", content=body,
                           headers={"X-Inngest-Signature": signing.sign_request(body, key)})
        assert signed.status_code == 200
        assert http.post("/e/ek", content=b"{").status_code == 400
        assert http.post("/e/nope", content=body).status_code == 401
        assert http.post("/e/ek", content=b"x" * (3 * 1024 * 1024 + 1)).status_code == 413
        assert http.get("/e/ek").status_code == 405
        assert http.get("/inngest").json()["has_event_key"] is True
    assert len(client.events()) == 1


def test_a_streaming_body_is_streamed() -> None:
    async def chunks() -> typing.AsyncIterator[bytes]:
        for i in range(3):
            yield f"{i};".encode()

    class Stream(tornado_web.RequestHandler):
        async def get(self) -> None:
            await inngest_do.tornado.write(
                self, Response(200, chunks(), {"content-type": "text/plain"}))

    with running(tornado_web.Application([(r"/s", Stream)])) as http:
        res = http.get("/s")
        assert res.text == "0;1;2;" and res.headers.get("transfer-encoding") == "chunked"


def test_serve_checks_the_app() -> None:
    with pytest.raises(TypeError, match="app: expected a tornado.web.Application"):
        inngest_do.tornado.serve(object(), inngest.Inngest(app_id="x"), [])  # type: ignore
