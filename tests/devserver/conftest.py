"""Fixtures: a DevServer on a free loopback port and official-SDK apps served by uvicorn."""

from __future__ import annotations

import socket
import threading
import time
import typing

import pytest

pytest.importorskip("inngest")
fastapi = pytest.importorskip("fastapi")
uvicorn = pytest.importorskip("uvicorn")

import inngest
import inngest.fast_api

from inngest_do.devserver import DevServer


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class SDKApp:
    """A FastAPI app serving official-SDK functions on a loopback port (uvicorn thread)."""

    def __init__(self, client: typing.Any, functions: list[typing.Any]) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/api/inngest"
        app = fastapi.FastAPI()
        inngest.fast_api.serve(app, client, functions)
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning",
                                lifespan="off")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def start(self) -> SDKApp:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def sdk_client(server: DevServer, app_id: str, **kwargs: typing.Any) -> typing.Any:
    kwargs.setdefault("is_production", False)
    return inngest.Inngest(app_id=app_id, api_base_url=server.url,
                           event_api_base_url=server.url, **kwargs)


@pytest.fixture
def dev() -> typing.Iterator[DevServer]:
    with DevServer() as server:
        yield server


@pytest.fixture
def vdev() -> typing.Iterator[DevServer]:
    with DevServer(virtual_clock=True, seed=7) as server:
        yield server


@pytest.fixture
def serve_app() -> typing.Iterator[typing.Callable[..., SDKApp]]:
    apps: list[SDKApp] = []

    def start(client: typing.Any, functions: list[typing.Any]) -> SDKApp:
        app = SDKApp(client, functions).start()
        apps.append(app)
        return app

    yield start
    for app in apps:
        app.stop()


def wait_for(predicate: typing.Callable[[], typing.Any], timeout: float = 20.0) -> typing.Any:
    """Poll ``predicate`` until truthy (bounded); its value."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        time.sleep(0.02)


def run_ids(server: DevServer, event_id: str, count: int = 1) -> list[str]:
    """The runs ``event_id`` started (waits until there are ``count``)."""
    return wait_for(lambda: len(server.views.event_run_ids(event_id)) >= count
                    and server.views.event_run_ids(event_id))


def finished(server: DevServer, run_id: str, timeout: float = 20.0) -> dict:
    """The run's JSON once it has ended."""
    return wait_for(lambda: (server.views.run(run_id) or {}).get("status") in
                    ("COMPLETED", "FAILED", "CANCELLED", "SKIPPED") and server.views.run(run_id),
                    timeout)


def start_sdk_app(server: DevServer, serve_app: typing.Callable[..., SDKApp], app_id: str,
                  functions: typing.Callable[[typing.Any], list[typing.Any]],
                  **client_kwargs: typing.Any) -> tuple[typing.Any, SDKApp]:
    """Create an SDK client, its functions, serve them and sync the app."""
    client = sdk_client(server, app_id, **client_kwargs)
    app = serve_app(client, functions(client))
    server.sync_app(app.url)
    return client, app
