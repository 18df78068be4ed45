"""``inngest_do.flask.serve``: the worker starts on a background thread with the app's first
request, served functions run, the routes answer as the core does, streaming bodies stream,
and the whole path works over a real loopback socket (Werkzeug's threaded server)."""

from __future__ import annotations

import json
import os
import threading
import typing

import pytest
from serve_helpers import completed, shop, wait_until

import inngest_do as inngest
from inngest_do import signing
from inngest_do._serve import BackgroundWorker, Response

flask = pytest.importorskip("flask")
import inngest_do.flask  # after the skip: Flask is optional


def test_served_functions_run_and_the_worker_starts_with_the_first_request(
        clients: list[inngest.Inngest]) -> None:
    client, functions = shop(clients)
    app = flask.Flask(__name__)
    inngest_do.flask.serve(app, client, functions)

    @app.get("/ping")
    def ping() -> str:
        return "pong"

    runner = BackgroundWorker.for_client(client)
    assert not runner.running  # serve() alone opens nothing
    tc = app.test_client()
    assert tc.get("/ping").text == "pong"
    assert runner.running
    res = tc.post("/api/inngest", json=[{"name": "shop/n", "data": {"n": 4}}])
    assert res.status_code == 200 and res.json["status"] == 200
    wait_until(completed(client, 2))
    assert sorted(r.output for r in client.runs()) == [8, 12]
    doc = tc.get("/api/inngest").json
    assert doc["framework"] == "flask" and doc["function_count"] == 2
    runner.stop(30)
    assert not runner.running and client.engine.on_work is None


def test_routes_answer_as_the_core_does(clients: list[inngest.Inngest]) -> None:
    key = "signkey-test-" + "0f" * 32
    client, functions = shop(clients, signing_key=key, event_key="ek")
    app = flask.Flask(__name__)
    inngest_do.flask.serve(app, client, functions, serve_path="/inngest")
    tc = app.test_client()
    body = json.dumps({"name": "shop/n", "data": {"n": 1}}).encode()
    assert tc.post("/inngest", data=body).status_code == 401
    signed = tc.post("/inngest", data=body,
                     headers={"X-Inngest-Signature": signing.sign_request(body, key)})
    assert signed.status_code == 200
    assert tc.post("/e/ek", data=b"{oops").status_code == 400
    assert tc.post("/e/wrong", data=body).status_code == 401
    assert tc.post("/e/ek", data=b'[{"name": "shop/n"}, {"nme": "x"}]').status_code == 400
    assert tc.get("/inngest").json == {
        "schema_version": "2024-05-24", "function_count": 2, "has_event_key": True,
        "has_signing_key": True, "has_signing_key_fallback": False, "mode": "cloud"}
    assert len(client.events()) == 1


def test_a_streaming_body_is_streamed() -> None:
    async def chunks() -> typing.AsyncIterator[bytes]:
        for i in range(3):
            yield f"{i};".encode()

    app = flask.Flask(__name__)

    @app.get("/s")
    def stream() -> flask.Response:
        return inngest_do.flask.to_flask(Response(200, chunks(), {"content-type": "text/plain"}))

    res = app.test_client().get("/s")
    assert res.is_streamed and res.text == "0;1;2;"


def test_over_a_real_socket(clients: list[inngest.Inngest]) -> None:
    httpx = pytest.importorskip("httpx")
    from werkzeug.serving import make_server

    client, functions = shop(clients)
    app = flask.Flask(__name__)
    inngest_do.flask.serve(app, client, functions)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{server.server_port}", timeout=10) as http:
            res = http.post("/e/key", json={"name": "shop/n", "data": {"n": 5}})
            assert res.status_code == 200
            wait_until(completed(client, 2))
            assert http.get("/api/inngest").json()["app_id"] == "shop"
    finally:
        server.shutdown()
        thread.join(30)
    assert sorted(r.output for r in client.runs()) == [10, 15]


def test_serve_checks_the_app() -> None:
    client = inngest.Inngest(app_id="x")
    with pytest.raises(TypeError, match="app: expected a flask.Flask"):
        inngest_do.flask.serve(object(), client, [])  # type: ignore[arg-type]


def test_the_worker_stops_gracefully_at_interpreter_exit(tmp_path: typing.Any) -> None:
    import pathlib
    import subprocess
    import sys

    root = pathlib.Path(__file__).resolve().parent.parent
    script = tmp_path / "app.py"
    script.write_text(
        "import atexit, runpy, time\n"
        "seen = []\n"
        # registered first, so it runs last: after the worker's own exit hook
        "atexit.register(lambda: print('stopped:', seen[0].engine.on_work is None))\n"
        f"m = runpy.run_path({str(root / 'examples' / 'flask_app.py')!r})\n"
        "client = m['inngest_client']; seen.append(client)\n"
        "m['app'].test_client().post('/signup', json={'email': 'a@b'})\n"
        "deadline = time.monotonic() + 30\n"
        "while not [r for r in client.runs() if r.status == 'Completed']:\n"
        "    assert time.monotonic() < deadline\n"
        "    time.sleep(0.01)\n"
        "print('completed')\n")
    out = subprocess.run([sys.executable, str(script)], check=False, cwd=root,
                         capture_output=True,
                         text=True, timeout=60, env={**os.environ,
                                                     "PYTHONPATH": str(root)})
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["completed", "stopped:", "True"]
