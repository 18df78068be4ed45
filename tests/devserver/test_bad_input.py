"""Bad input: a clear error in the log and the run's history, runs retried or failed as
Inngest would, and the server keeps serving."""

from __future__ import annotations

import http.server
import json
import logging
import threading
import time
import typing

import httpx
import pytest

import inngest_do
from inngest_do.devserver import DevServer

from .conftest import finished, run_ids


class FakeApp:
    """An app that answers call requests with whatever ``respond`` returns."""

    def __init__(self, respond: typing.Callable[[dict, dict], tuple[int, dict, bytes]]) -> None:
        outer = self
        self.calls: list[dict] = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["content-length"])))
                outer.calls.append(body)
                status, headers, raw = respond(body, dict(self.headers))
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("content-length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/api/inngest"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def register(server: DevServer, url: str, fn: str = "f", retries: int = 0,
             **extra: object) -> httpx.Response:
    config = {"id": f"fake-{fn}", "name": fn, "triggers": [{"event": f"fake/{fn}"}],
              "steps": {"step": {"id": "step", "name": "step",
                                 "retries": {"attempts": retries},
                                 "runtime": {"type": "http",
                                             "url": f"{url}?fnId=fake-{fn}&stepId=step"}}},
              **extra}
    return httpx.post(f"{server.url}/fn/register", json={
        "appname": "fake", "url": url, "framework": "test", "sdk": "py:test", "v": "0.1",
        "deployType": "ping", "functions": [config]})


@pytest.fixture
def fake() -> typing.Iterator[typing.Callable[..., FakeApp]]:
    apps: list[FakeApp] = []

    def make(respond: typing.Callable[[dict, dict], tuple[int, dict, bytes]]) -> FakeApp:
        apps.append(FakeApp(respond))
        return apps[-1]

    yield make
    for app in apps:
        app.close()


def send(server: DevServer, name: str) -> str:
    res = httpx.post(f"{server.url}/e/key", json={"name": name})
    assert res.status_code == 200, res.text
    return res.json()["ids"][0]


def alive(server: DevServer) -> bool:
    return httpx.post(f"{server.url}/v0/connect/start").status_code == 200


@pytest.mark.parametrize("body, message", [
    (b"{not json", "not valid JSON"),
    (b"[]", "empty"),
    (b'[{"name": "ok"}, {"data": {}}]', "events[1].name"),
    (b'{"name": "x", "data": [1]}', "event.data: expected an object"),
    (b'{"name": "x", "ts": "yesterday"}', "event.ts"),
])
def test_malformed_events_are_refused_whole(dev, body, message):
    res = httpx.post(f"{dev.url}/e/key", content=body)
    assert res.status_code == 400 and message in res.json()["error"]
    assert dev.views.events() == []  # nothing partly accepted
    assert alive(dev)


def test_events_single_and_array(dev):
    one = httpx.post(f"{dev.url}/e/key", json={"name": "a", "data": {"x": 1}}).json()
    many = httpx.post(f"{dev.url}/e/key", json=[{"name": "b"}, {"name": "c"}]).json()
    assert one["status"] == 200 and len(one["ids"]) == 1 and len(many["ids"]) == 2
    assert [e["name"] for e in dev.views.events()] == ["a", "b", "c"]
    assert httpx.get(f"{dev.url}/v1/events/{one['ids'][0]}").json()["data"]["data"] == {"x": 1}


@pytest.mark.parametrize("extra, message", [
    ({"concurrency": [{"limit": 0}]}, "concurrency"),
    ({"rateLimit": {"limit": 1, "period": "soon"}}, "rateLimit.period"),
    ({"somethingNew": True}, "unsupported config field(s) somethingNew"),
    ({"triggers": [{"event": "x", "expression": "event.data.("}]}, "expression"),
])
def test_unsupported_sync_is_refused_and_nothing_applied(dev, extra, message, caplog):
    with caplog.at_level(logging.ERROR, logger="inngest_do.devserver"):
        res = register(dev, "http://127.0.0.1:9/api", **extra)
    assert res.status_code == 400 and message in res.json()["error"]
    assert "fake-f" in res.json()["error"]
    assert any(message in r.getMessage() for r in caplog.records)
    assert dev.registry.apps == {} and alive(dev)


def test_garbage_answer_is_retried_then_fails(fake):
    app = fake(lambda body, headers: (200, {}, b"<html>oops</html>"))
    with DevServer(virtual_clock=True, seed=1) as server:
        assert register(server, app.url, retries=1).status_code == 200
        run_id = run_ids(server, send(server, "fake/f"))[0]
        server.wait_idle()
        server.advance("1m")  # the retry after the first failure
        run = finished(server, run_id)
        assert run["status"] == "FAILED" and run["attempts"] == 2 and len(app.calls) == 2
        assert "not JSON" in run["error"]["message"]
        assert any(h["kind"] == "run.retrying" and "not JSON" in h["detail"]["error"]
                   for h in run["history"])
        assert alive(server)


def test_unknown_opcode_fails_the_run(fake):
    op = [{"id": "abc", "op": "Teleport", "displayName": "beam"}]
    app = fake(lambda body, headers: (206, {}, json.dumps(op).encode()))
    with DevServer() as server:
        register(server, app.url, retries=3)
        run = finished(server, run_ids(server, send(server, "fake/f"))[0])
        assert run["status"] == "FAILED" and run["attempts"] == 1
        assert "unknown opcode 'Teleport'" in run["error"]["message"]


def test_app_timeout_is_an_error(fake):
    def slow(body: dict, headers: dict) -> tuple[int, dict, bytes]:
        time.sleep(1.0)
        return 200, {}, b"1"

    app = fake(slow)
    with DevServer(request_timeout=0.2) as server:
        register(server, app.url)
        run = finished(server, run_ids(server, send(server, "fake/f"))[0])
        assert run["status"] == "FAILED" and "did not answer within 0.2 s" in \
            run["error"]["message"]


def test_unreachable_app(dev):
    register(dev, "http://127.0.0.1:9/api")
    run = finished(dev, run_ids(dev, send(dev, "fake/f"))[0])
    assert run["status"] == "FAILED" and "could not reach app 'fake'" in run["error"]["message"]


def test_function_error_with_no_retry_header(fake):
    app = fake(lambda body, headers: (400, {"x-inngest-no-retry": "true"}, json.dumps(
        {"name": "Bad", "message": "nope", "code": "non_retriable_error"}).encode()))
    with DevServer() as server:
        register(server, app.url, retries=5)
        run = finished(server, run_ids(server, send(server, "fake/f"))[0])
        assert run["status"] == "FAILED" and run["attempts"] == 1
        assert run["error"] == {"name": "Bad", "message": "nope", "code": "non_retriable_error"}


def test_request_shape(fake):
    app = fake(lambda body, headers: (200, {}, b'"ok"'))
    with DevServer() as server:
        register(server, app.url)
        httpx.post(f"{server.url}/e/key", json={"name": "fake/f", "data": {"n": 1}})
        [run] = [finished(server, r) for r in run_ids(server, server.views.events()[0]["id"])]
        assert run["output"] == "ok"
    [call] = app.calls
    assert call["event"]["data"] == {"n": 1} and call["steps"] == {}
    assert call["ctx"]["run_id"] == run["run_id"] and call["ctx"]["attempt"] == 0
    assert call["ctx"]["stack"] == {"stack": [], "current": 0}


def test_graphql_errors_are_reported(dev):
    res = httpx.post(f"{dev.url}/v0/gql", json={"query": "{ nope }"})
    assert res.status_code == 200 and "nope" in res.json()["errors"][0]["message"]
    assert httpx.post(f"{dev.url}/v0/gql", content=b"{").status_code == 400


def test_sim_routes_refuse_on_real_clock_and_bad_input(dev):
    assert httpx.post(f"{dev.url}/v0/sim/advance", json={"ms": 5}).status_code == 409
    with DevServer(virtual_clock=True) as server:
        assert httpx.post(f"{server.url}/v0/sim/advance",
                          json={"duration": "forever"}).status_code == 400
        before = server.now
        res = httpx.post(f"{server.url}/v0/sim/advance", json={"duration": "1h"}).json()
        assert res["ms"] - int(before.timestamp() * 1000) == 3_600_000


def test_local_functions_are_not_affected():
    # the dev server has its own engine: a local client's engine is untouched
    client = inngest_do.Inngest(app_id="local")
    with DevServer():
        assert client._engine is None
