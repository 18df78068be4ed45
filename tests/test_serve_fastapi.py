"""``inngest_do.fast_api.serve``: the worker lives in the app's lifespan (composed with the
app's own), served functions run when events arrive over HTTP, unserved ones do not, and the
whole path works over a real loopback socket with uvicorn. Waits are bounded polls."""

from __future__ import annotations

import contextlib
import typing

import pytest
from serve_helpers import completed, shop, uvicorn_server, wait_until

from inngest_do._serve import Response

fastapi = pytest.importorskip("fastapi")
testclient = pytest.importorskip("fastapi.testclient")
import inngest_do.fast_api


def test_served_functions_run_when_events_arrive_over_http() -> None:
    client, functions = shop()
    app = fastapi.FastAPI()
    inngest_do.fast_api.serve(app, client, functions)
    assert client._served == functions
    with testclient.TestClient(app) as tc:
        res = tc.post("/api/inngest", json={"name": "shop/n", "data": {"n": 7}})
        assert res.status_code == 200
        wait_until(completed(client, 2))
        outputs = {r.fn_id: r.output for r in client.runs()}
    assert outputs == {"shop-double": 14, "shop-triple": 21}


def test_the_worker_starts_and_stops_inside_the_apps_own_lifespan() -> None:
    client, functions = shop()
    seen: list[str] = []

    @contextlib.asynccontextmanager
    async def lifespan(app: typing.Any) -> typing.AsyncIterator[dict]:
        seen.append("startup")
        yield {"db": "connected"}
        # the worker has stopped before the app tears down what step bodies may use
        seen.append("worker stopped" if client.engine.on_work is None else "worker running")

    app = fastapi.FastAPI(lifespan=lifespan)
    inngest_do.fast_api.serve(app, client, functions)

    @app.get("/state")
    async def state(request: fastapi.Request) -> dict:
        return {"db": request.state.db, "worker": client.engine.on_work is not None}

    with testclient.TestClient(app) as tc:
        assert tc.get("/state").json() == {"db": "connected", "worker": True}
        tc.post("/api/inngest", json={"name": "shop/n", "data": {"n": 1}})
        wait_until(completed(client, 2))
    assert seen == ["startup", "worker stopped"]
    # a second start of the app resumes with a new worker on the same engine
    with testclient.TestClient(app) as tc:
        tc.post("/api/inngest", json={"name": "shop/n", "data": {"n": 2}})
        wait_until(completed(client, 4))


def test_events_accepted_before_startup_run_once_the_app_starts() -> None:
    client, functions = shop()
    app = fastapi.FastAPI()
    inngest_do.fast_api.serve(app, client, functions)
    testclient.TestClient(app).post("/e/k", json={"name": "shop/n", "data": {"n": 5}})
    assert [r.status for r in client.runs()] == ["Queued", "Queued"]
    with testclient.TestClient(app):
        wait_until(completed(client, 2))


def test_user_routes_keep_working_and_a_catch_all_does_not_shadow_serve() -> None:
    client, functions = shop()
    app = fastapi.FastAPI()

    @app.get("/{anything:path}")
    async def catch_all(anything: str) -> dict:
        return {"caught": anything}

    inngest_do.fast_api.serve(app, client, functions)
    tc = testclient.TestClient(app)
    assert tc.get("/hello").json() == {"caught": "hello"}
    assert tc.get("/api/inngest").json()["function_count"] == 2


def test_a_streaming_body_is_streamed() -> None:
    import starlette.applications
    import starlette.routing

    async def chunks() -> typing.AsyncIterator[bytes]:
        for i in range(3):
            yield f"data: {i}\n\n".encode()

    async def endpoint(request: typing.Any) -> typing.Any:
        return inngest_do.fast_api.to_starlette(
            Response(200, chunks(), {"content-type": "text/event-stream"}))

    app = starlette.applications.Starlette(routes=[starlette.routing.Route("/s", endpoint)])
    with testclient.TestClient(app).stream("GET", "/s") as res:
        assert res.headers["content-type"].startswith("text/event-stream")
        assert list(res.iter_lines()) == ["data: 0", "", "data: 1", "", "data: 2", ""]


def test_starlette_apps_are_served_too() -> None:
    import starlette.applications

    client, functions = shop()
    app = starlette.applications.Starlette()
    inngest_do.fast_api.serve(app, client, functions)
    with testclient.TestClient(app) as tc:
        tc.post("/api/inngest", json={"name": "shop/n", "data": {"n": 3}})
        wait_until(completed(client, 2))


def test_over_a_real_socket_with_uvicorn() -> None:
    pytest.importorskip("uvicorn")
    httpx = pytest.importorskip("httpx")
    client, functions = shop()
    app = fastapi.FastAPI()
    inngest_do.fast_api.serve(app, client, functions)
    with uvicorn_server(app) as (base, _server), httpx.Client(base_url=base, timeout=10) as http:
        res = http.post("/e/any", json=[{"name": "shop/n", "data": {"n": 10}}])
        assert res.status_code == 200 and len(res.json()["ids"]) == 1
        wait_until(completed(client, 2))
        assert http.get("/api/inngest").json()["functions"][0]["id"] == "shop-double"
        assert http.post("/api/inngest", content=b"[").status_code == 400
    assert client.engine.on_work is None  # the worker stopped with the server
    assert sorted(r.output for r in client.runs()) == [20, 30]


def test_two_apps_serving_one_client_share_one_worker() -> None:
    client, functions = shop()
    first, second = fastapi.FastAPI(), fastapi.FastAPI()
    inngest_do.fast_api.serve(first, client, functions)
    inngest_do.fast_api.serve(second, client, functions)
    with testclient.TestClient(first), testclient.TestClient(second) as tc:
        on_work = client.engine.on_work
        assert on_work is not None
        tc.post("/api/inngest", json={"name": "shop/n", "data": {"n": 1}})
        wait_until(completed(client, 2))
        assert client.engine.on_work is on_work  # the second app did not replace it


def test_subroutes_of_the_serve_path_may_stream() -> None:
    from inngest_do._serve import Request, ServeHandler

    client, functions = shop()
    handler = ServeHandler(client, functions, framework="test")

    async def events() -> typing.AsyncIterator[bytes]:
        yield b"data: 1\n\n"

    handler.subroutes["realtime"] = lambda req: Response(
        200, events(), {"content-type": "text/event-stream"})
    res = handler.handle(Request("GET", "/api/inngest/realtime", {}))
    assert res.status == 200 and res.streaming
    assert handler.handle(Request("GET", "/api/inngest/other", {})).status == 404
