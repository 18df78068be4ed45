"""What the SDK's function cases import, provided on top of inngest_do.

The cases are written for the real SDK and its test helpers (``test_core``), which talk to an
Inngest dev server over GraphQL. Here there is no server: ``import inngest`` is inngest_do, and
the helpers answer from the served engine's own run records. :func:`install` puts every shim in
``sys.modules``; nothing here is the SDK's code.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import enum
import http.server
import inspect
import json
import os
import random
import socketserver
import string
import sys
import threading
import types
import typing

import inngest_do


def _module(name: str, **attrs: typing.Any) -> types.ModuleType:
    mod = types.ModuleType(name)
    mod.__dict__.update(attrs)
    sys.modules[name] = mod
    return mod


class HarnessError(Exception):
    """What the stand-in server API raises (the real helpers raise plain exceptions)."""


class Framework(enum.Enum):
    """The SDK's framework names (the cases build event names from them)."""

    CONNECT = "connect"
    DIGITAL_OCEAN = "digitalocean"
    DJANGO = "django"
    FAST_API = "fast_api"
    FLASK = "flask"
    TORNADO = "tornado"


# -- test_core -----------------------------------------------------------------------------
class BaseState:
    run_id: str | None = None

    async def wait_for_run_id(
        self, *, timeout: datetime.timedelta = datetime.timedelta(seconds=5)
    ) -> str:
        def check() -> None:
            assert self.run_id is not None

        await wait_for(check, timeout=timeout)
        assert self.run_id is not None
        return self.run_id


async def wait_for(assertion: typing.Callable[[], typing.Any], *,
                   timeout: datetime.timedelta = datetime.timedelta(seconds=5)) -> None:
    """Retry ``assertion`` until it stops raising or ``timeout`` passes (then re-raise)."""
    deadline = datetime.datetime.now() + timeout
    while True:
        try:
            out = assertion()
            if inspect.isawaitable(out):
                await out
            return
        except Exception:
            if datetime.datetime.now() > deadline:
                raise
        await asyncio.sleep(0.05)


async def wait_for_len(get_value: typing.Callable[[], typing.Sequence[object]], length: int, *,
                       timeout: datetime.timedelta = datetime.timedelta(seconds=5)) -> None:
    def check() -> None:
        assert len(get_value()) == length

    await wait_for(check, timeout=timeout)


async def wait_for_truthy(get_value: typing.Callable[[], object], *,
                          timeout: datetime.timedelta = datetime.timedelta(seconds=5)) -> None:
    def check() -> None:
        assert bool(get_value())

    await wait_for(check, timeout=timeout)


def create_test_name(file: str) -> str:
    return os.path.basename(file).replace(".py", "").removeprefix("test_")


def worker_suffix(value: str) -> str:
    return value


def random_suffix(value: str) -> str:
    return value + "-" + "".join(random.choices(string.ascii_letters + string.digits, k=16))


def get_nested(obj: typing.Any, path: str) -> typing.Any:
    for part in path.split("."):
        obj = obj[int(part)] if isinstance(obj, list) else obj[part]
    return obj


class RunStatus(enum.Enum):
    CANCELLED = "CANCELLED"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    RUNNING = "RUNNING"


_ENDED = {RunStatus.CANCELLED, RunStatus.COMPLETED, RunStatus.FAILED}
_STATUS = {"Completed": RunStatus.COMPLETED, "Failed": RunStatus.FAILED,
           "Cancelled": RunStatus.CANCELLED, "Skipped": RunStatus.CANCELLED}


@dataclasses.dataclass
class RunView:
    """What the dev server's GraphQL answers about a run."""

    event: inngest_do.Event
    id: str
    output: str | None
    status: RunStatus


class ApiClient:
    """The test helpers' "server API", answered from the engine that serves the cases."""

    engine: typing.Any = None  # set by the runner once the worker is up

    def _run(self, run_id: str) -> typing.Any:
        # An active run from memory without the engine lock (a dict read is atomic); a
        # finished one has left memory and is read from the store.
        run = self.engine.runs.get(run_id)
        return run if run is not None else self.engine.get_run(run_id)

    def _view(self, run_id: str) -> RunView | None:
        state = self._run(run_id)
        if state is None:
            return None
        status = _STATUS.get(str(state.status), RunStatus.RUNNING)
        output: str | None = None
        if status is RunStatus.COMPLETED:
            output = json.dumps(state.output)
        elif status is RunStatus.FAILED and state.error is not None:
            output = json.dumps(state.error)
        event = inngest_do.Event.from_payload(state.events[0]) if state.events else None
        return RunView(event=event, id=run_id, output=output, status=status)  # type: ignore[arg-type]

    async def wait_for_run_status(self, run_id: str, expected_status: RunStatus, *,
                                  timeout: int = 20) -> RunView:
        deadline = datetime.datetime.now() + datetime.timedelta(seconds=timeout)
        actual: RunStatus | None = None
        while True:
            view = self._view(run_id)
            if view is not None:
                actual = view.status
                if actual is expected_status:
                    return view
                if actual in _ENDED:
                    raise HarnessError(f"run ended with a different status: {actual.value}")
            if datetime.datetime.now() > deadline:
                raise HarnessError(f"timed out waiting for run {run_id} status: actual status is "
                                f"{None if actual is None else actual.value}")
            await asyncio.sleep(0.05)

    async def get_step_output(self, *, run_id: str, step_id: str,
                              index: int | None = None) -> str:
        state = self._run(run_id)
        if state is None:
            raise HarnessError(f"run {run_id} not found")
        full_id = step_id if not index else f"{step_id}:{index}"
        memo = state.memos.get(full_id)
        if memo is None:
            raise HarnessError(f'step "{step_id}" index={index} not found in history')
        _op, ok, value = memo[0], memo[1], memo[2]
        return json.dumps({"data": value} if ok else {"data": None, "error": value})

    async def get_run_ids_from_event_id(self, event_id: str, *, run_count: int,
                                        timeout: int = 5) -> list[str]:
        deadline = datetime.datetime.now() + datetime.timedelta(seconds=timeout)
        while True:
            ids = [o.run_id for rec in self.engine.query_events() if rec.id == event_id
                   for o in rec.outcomes if o.run_id]
            if len(ids) == run_count:
                return ids
            if datetime.datetime.now() > deadline:
                raise HarnessError("timed out waiting for run ids")
            await asyncio.sleep(0.05)


api = ApiClient()


# -- test_core.http_proxy: a loopback HTTP server whose answers the case decides ---------------
@dataclasses.dataclass
class Response:
    body: bytes | None
    headers: dict[str, str]
    status_code: int


class Proxy:
    def __init__(self, on_request: typing.Callable[..., Response]) -> None:
        handler_cb = on_request

        class _Handler(http.server.BaseHTTPRequestHandler):
            def _handle(self, method: str) -> None:
                length = self.headers.get("Content-Length")
                body = self.rfile.read(int(length)) if length else None
                headers: dict[str, list[str]] = {}
                for k, v in self.headers.items():
                    headers.setdefault(k, []).append(v)
                res = handler_cb(body=body, headers=headers, method=method, path=self.path)
                self.send_response(int(res.status_code))
                for k, v in res.headers.items():
                    self.send_header(k, v)
                self.end_headers()
                if res.body is not None:
                    self.wfile.write(res.body)

            def do_GET(self) -> None:
                self._handle("GET")

            def do_POST(self) -> None:
                self._handle("POST")

            def do_PUT(self) -> None:
                self._handle("PUT")

            def log_message(self, *args: typing.Any) -> None:
                pass

        self._server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self.host = "127.0.0.1"
        self.origin = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def start(self) -> Proxy:
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def install() -> None:
    """Make ``inngest``, ``inngest._internal`` and ``test_core`` importable as the cases expect."""
    sys.modules["inngest"] = inngest_do
    for sub in ("experimental", "fast_api", "flask", "django", "tornado"):
        try:
            mod = __import__(f"inngest_do.{sub}", fromlist=["_"])
        except ImportError:
            continue
        here = os.path.dirname(os.path.abspath(inngest_do.__file__))
        if not os.path.abspath(mod.__file__ or "").startswith(here):
            # an editable install may map a submodule this checkout lacks to another one
            del sys.modules[f"inngest_do.{sub}"]
            continue
        sys.modules[f"inngest.{sub}"] = mod
        for name in list(sys.modules):
            if name.startswith(f"inngest_do.{sub}."):
                sys.modules["inngest." + name[len("inngest_do."):]] = sys.modules[name]
    from inngest_do import errors, middleware

    server_lib = _module("inngest._internal.server_lib", Framework=Framework,
                         Opcode=middleware.Opcode, ErrorCode=errors.ErrorCode)
    middleware_lib = _module("inngest._internal.middleware_lib",
                             TransformOutputStepInfo=middleware.TransformOutputStepInfo)
    internal = _module("inngest._internal", server_lib=server_lib,
                       middleware_lib=middleware_lib, errors=errors)
    inngest_do._internal = internal  # type: ignore[attr-defined]
    # The middleware case checks the raw request's type per framework; stand-ins where the
    # framework is not installed.
    pb2 = _module("inngest.connect._internal.connect_pb2",
                  GatewayExecutorRequestData=type("GatewayExecutorRequestData", (), {}))
    _module("inngest.connect._internal", connect_pb2=pb2)
    _module("inngest.connect")
    for name, attr in (("django.core.handlers.wsgi", "WSGIRequest"),
                       ("tornado.httputil", "HTTPServerRequest"),
                       ("werkzeug.local", "LocalProxy"), ("fastapi", "Request")):
        try:
            __import__(name)
        except ImportError:
            parts = name.split(".")
            for i in range(1, len(parts)):
                sys.modules.setdefault(".".join(parts[:i]), types.ModuleType(".".join(parts[:i])))
            _module(name, **{attr: type(attr, (), {})})
            for i in range(1, len(parts)):
                setattr(sys.modules[".".join(parts[:i])], parts[i], sys.modules[".".join(parts[:i + 1])])

    base = _module("test_core.base", BaseState=BaseState, wait_for=wait_for,
                   wait_for_len=wait_for_len, wait_for_truthy=wait_for_truthy,
                   create_test_name=create_test_name, register=lambda *a, **k: None)
    helper = _module("test_core.helper", RunStatus=RunStatus, client=api)
    http_proxy = _module("test_core.http_proxy", Proxy=Proxy, Response=Response)
    _module("test_core", BaseState=BaseState, RunStatus=RunStatus, client=api,
            get_nested=get_nested, random_suffix=random_suffix, wait_for=wait_for,
            wait_for_len=wait_for_len, wait_for_truthy=wait_for_truthy,
            worker_suffix=worker_suffix, base=base, helper=helper, http_proxy=http_proxy)
