"""The HTTP side of ``serve()``, framework-neutral: a :class:`Request` in, a :class:`Response` out.

Every adapter (``inngest_do.fast_api``, ``flask``, ``django``, ``tornado``) is a thin file that
turns its framework's request into a :class:`Request`, calls :meth:`ServeHandler.handle`, and
turns the :class:`Response` back; a response body may be an async iterator of bytes (a
stream), which every adapter can send.

What is served, in place of the Inngest server that the SDK talks to:

- ``serve_path`` (default ``/api/inngest``): ``GET`` answers an introspection document like the
  SDK's; ``POST`` accepts events in the Inngest event API's body (one event or an array) and
  answers ``{"ids": [...], "status": 200}``; ``PUT`` answers as a successful sync. With a
  signing key, ``POST`` and ``PUT`` need a valid ``X-Inngest-Signature`` (401 otherwise), and
  ``GET`` shows the functions only to signed requests.
- ``/e/{event_key}``: the Inngest event API itself, so services using any Inngest SDK (with
  this app as their event API base URL) send events here; with an event key it must match.

The worker that runs the functions starts and stops with the app: see :func:`asgi_lifespan`
(FastAPI, Starlette) and :class:`BackgroundWorker` (Flask, Django, Tornado).
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import dataclasses
import hmac
import json
import logging
import os
import threading
import typing
import urllib.parse

import pydantic

from . import signing
from .config import Streaming
from .event import Event
from .function import Function

if typing.TYPE_CHECKING:
    from .client import Inngest
    from .worker import Worker

__all__ = [
    "DEFAULT_SERVE_PATH",
    "MAX_BODY_BYTES",
    "BackgroundWorker",
    "Request",
    "Response",
    "ServeHandler",
    "asgi_lifespan",
    "prepare",
]

_log = logging.getLogger("inngest_do.serve")

DEFAULT_SERVE_PATH = "/api/inngest"
#: Inngest's limit on an event API request body
MAX_BODY_BYTES = 3 * 1024 * 1024
#: the introspection document's schema, as the SDK's
SCHEMA_VERSION = "2024-05-24"

Body: typing.TypeAlias = "bytes | typing.AsyncIterator[bytes]"


@dataclasses.dataclass
class Request:
    """An HTTP request as the core sees it.

    ``headers`` keys are lower-case; ``url`` is the full request URL (its origin is reported
    by introspection as the app's event API origin).
    """

    method: str
    path: str
    headers: dict[str, str]
    body: bytes = b""
    query: dict[str, str] = dataclasses.field(default_factory=dict)
    url: str = ""


@dataclasses.dataclass
class Response:
    """An HTTP response: ``body`` is bytes, or an async iterator of bytes to stream."""

    status: int
    body: Body = b""
    headers: dict[str, str] = dataclasses.field(default_factory=dict)

    @classmethod
    def json(cls, status: int, value: object,
             headers: dict[str, str] | None = None) -> Response:
        return cls(status, json.dumps(value).encode("utf-8"),
                   {"content-type": "application/json", **(headers or {})})

    @classmethod
    def error(cls, status: int, code: str, message: str) -> Response:
        # The event API's error shape ({"error", "status"}) with the SDK's error code.
        return cls.json(status, {"error": message, "status": status, "code": code})

    @property
    def streaming(self) -> bool:
        return not isinstance(self.body, (bytes, bytearray))


class HTTPError(Exception):
    """A request refused with ``status`` (and nothing accepted)."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def resolve_serve_path(serve_path: str | None) -> str:
    """``serve_path``, else ``$INNGEST_SERVE_PATH``, else ``/api/inngest``, as ``/a/b``."""
    if serve_path is not None and not isinstance(serve_path, str):
        raise TypeError(f"serve_path: expected a str, got {type(serve_path).__name__}")
    path = serve_path or os.getenv("INNGEST_SERVE_PATH") or DEFAULT_SERVE_PATH
    path = "/" + path.strip("/")
    if path == "/" or any(c in path for c in "?#{}<> "):
        raise ValueError(f"serve_path: expected a URL path such as '/api/inngest', got "
                         f"{serve_path!r}")
    return path


def prepare(client: Inngest, functions: list[Function[typing.Any]]) -> list[Function[typing.Any]]:
    """Check ``functions`` and record them as what ``client`` serves (the CLI's ``run`` and the
    worker serve the same list). Raises ``ValueError`` naming an id served twice."""
    from .client import Inngest

    if not isinstance(client, Inngest):
        raise TypeError(f"client: expected an inngest_do.Inngest, got {type(client).__name__}")
    if not isinstance(functions, (list, tuple)):
        raise TypeError(f"functions: expected a list of Functions, got "
                        f"{type(functions).__name__}")
    fns: list[Function[typing.Any]] = []
    seen: dict[str, Function[typing.Any]] = {}
    for i, fn in enumerate(functions):
        if not isinstance(fn, Function):
            raise TypeError(f"functions[{i}]: expected a Function (from "
                            f"client.create_function), got {type(fn).__name__}")
        for f in (fn, fn.on_failure_fn):
            if f is None:
                continue
            other = seen.get(f.id)
            if other is not None and other is not f:
                raise ValueError(f"functions: two different functions with id '{f.id}' are "
                                 "served; a function id must be unique within its app")
            seen[f.id] = f
        fns.append(fn)
    # Several serve() calls for one client (e.g. two apps) add up.
    served = list(client._served or [])
    served.extend(fn for fn in fns if fn not in served)
    client._served = served
    engine = client._engine
    if engine is not None and not engine.clock.is_virtual:
        engine.serve(fns)  # a wall-clock engine made before serve(): it runs these too
    return fns


# the core ----------------------------------------------------------------------------------
class ServeHandler:
    """Answers the requests ``serve()`` mounts, for one client and its served functions."""

    def __init__(self, client: Inngest, functions: list[Function[typing.Any]], *,
                 framework: str, serve_path: str | None = None, serve_origin: str | None = None,
                 public_path: str | None = None, streaming: object = None) -> None:
        for name, value in (("serve_origin", serve_origin), ("public_path", public_path)):
            if value is not None and not isinstance(value, str):
                raise TypeError(f"{name}: expected a str, got {type(value).__name__}")
        if streaming is not None and not isinstance(streaming, Streaming):
            raise TypeError(f"streaming: expected inngest_do.Streaming or None, got "
                            f"{type(streaming).__name__}")
        self.serve_path = resolve_serve_path(serve_path)
        self.client = client
        self.functions = prepare(client, functions)
        self.framework = framework
        self.serve_origin = serve_origin or os.getenv("INNGEST_SERVE_ORIGIN") or None
        self.public_path = public_path
        # Accepted for the SDK's signature: nothing here waits on a long execution request,
        # so there is nothing to keep alive.
        self.streaming = streaming
        #: handlers of ``{serve_path}/{name}`` (e.g. a realtime stream); each answers its
        #: own authentication, and may return a streaming :class:`Response`
        self.subroutes: dict[str, typing.Callable[[Request], Response]] = {
            "realtime": self._realtime}

    # routing -------------------------------------------------------------------------------
    def routes(self) -> list[str]:
        """The paths an adapter must send here (framework-neutral forms)."""
        return [self.serve_path, self.serve_path + "/{rest}", "/e/{event_key}"]

    def handle(self, req: Request) -> Response:
        """Answer one request; never raises (an unexpected error is a JSON 500)."""
        try:
            return self._route(req)
        except HTTPError as err:
            return Response.error(err.status, err.code, err.message)
        except Exception as err:  # noqa: BLE001 - a bug must answer JSON, not crash the app
            _log.exception("inngest_do: error answering %s %s", req.method, req.path)
            return Response.error(500, "unknown", f"internal error: {type(err).__name__}")

    def _route(self, req: Request) -> Response:
        path = "/" + req.path.strip("/")
        method = req.method.upper()
        if path == self.serve_path:
            if method == "GET":
                return self._introspect(req)
            if method == "POST":
                self._authenticate(req)
                return self._accept(req.body)
            if method == "PUT":
                self._authenticate(req)
                return self._sync(req)
            return _method_not_allowed("GET, POST, PUT")
        if path.startswith(self.serve_path + "/"):
            sub = self.subroutes.get(path[len(self.serve_path) + 1:])
            if sub is not None:
                return sub(req)
        if path.startswith("/e/") and path.count("/") == 2:
            if method != "POST":
                return _method_not_allowed("POST")
            key = urllib.parse.unquote(path[3:])
            self._check_event_key(key)
            return self._accept(req.body)
        return Response.error(404, "not_found", f"no route for {path}")

    # security ------------------------------------------------------------------------------
    @property
    def signing_keys(self) -> list[str]:
        keys = [self.client.signing_key, self.client.signing_key_fallback]
        return [k for k in keys if k]

    def _signed_by(self, req: Request) -> str | None:
        """The key that signed ``req``; None if unsigned, wrongly signed or no key is set."""
        keys = self.signing_keys
        if not keys:
            return None
        try:
            return signing.verify_signature(req.body, req.headers.get("x-inngest-signature"),
                                            keys)
        except signing.SignatureError:
            return None

    def _authenticate(self, req: Request) -> None:
        keys = self.signing_keys
        if not keys:
            return  # no signing key: dev mode, as the SDK with INNGEST_DEV
        try:
            signing.verify_signature(req.body, req.headers.get("x-inngest-signature"), keys)
        except signing.SignatureError as err:
            raise HTTPError(401, "sig_verification_failed", str(err)) from None

    def _check_event_key(self, key: str) -> None:
        expected = self.client.event_key
        if expected is None:
            return  # no event key: any key is taken, as the Inngest dev server does
        if not hmac.compare_digest(key.encode("utf-8"), expected.encode("utf-8")):
            raise HTTPError(401, "event_key_invalid", "event key not found")

    # the routes ----------------------------------------------------------------------------
    def _realtime(self, req: Request) -> Response:
        """``GET {serve_path}/realtime?channel=C&topics=a,b``: what is published on the channel
        (those topics; all when none are named) as Server-Sent Events, until the client leaves."""
        if req.method != "GET":
            return _method_not_allowed("GET")
        self._authenticate(req)
        from .experimental import realtime

        channel = req.query.get("channel", "")
        try:
            realtime.check_name(channel, "channel")
            topics = realtime.parse_topics(req.query.get("topics"))
        except (TypeError, ValueError) as err:
            raise HTTPError(400, "bad_request", str(err)) from None
        return Response(200, realtime.sse_stream(self.client, channel, topics), {
            "content-type": "text/event-stream", "cache-control": "no-cache",
            "x-accel-buffering": "no"})

    def _introspect(self, req: Request) -> Response:
        client = self.client
        keys_set = bool(self.signing_keys)
        doc: dict[str, typing.Any] = {
            "schema_version": SCHEMA_VERSION,
            "function_count": len(self.functions),
            "has_event_key": client.event_key is not None,
            "has_signing_key": client.signing_key is not None,
            "has_signing_key_fallback": client.signing_key_fallback is not None,
            "mode": "cloud" if keys_set else "dev",
        }
        signed = self._signed_by(req)
        if keys_set and signed is None:
            return Response.json(200, doc)  # nothing privileged for unsigned requests
        origin = _origin(req.url)
        from . import __version__

        doc.update({
            "api_origin": origin,
            "app_id": client.app_id,
            "authentication_succeeded": signed is not None,
            "capabilities": {"in_band_sync": "v1", "trust_probe": "v1"},
            "env": client.env,
            "event_api_origin": origin,
            "event_key_hash": (signing.hash_event_key(client.event_key)
                               if client.event_key else None),
            "framework": self.framework,
            "sdk_language": "py",
            "sdk_version": __version__,
            "serve_origin": self.serve_origin,
            "serve_path": self.public_path or self.serve_path,
            "signing_key_fallback_hash": (signing.hash_signing_key(client.signing_key_fallback)
                                          if client.signing_key_fallback else None),
            "signing_key_hash": (signing.hash_signing_key(client.signing_key)
                                 if client.signing_key else None),
            "functions": [_function_doc(fn) for fn in self._all_functions()],
        })
        return Response.json(200, doc)

    def _all_functions(self) -> list[Function[typing.Any]]:
        out: list[Function[typing.Any]] = []
        for fn in self.functions:
            out.append(fn)
            if fn.on_failure_fn is not None:
                out.append(fn.on_failure_fn)
        return out

    def _sync(self, req: Request) -> Response:
        # Nothing to register with: the functions are live in this process already.
        return Response.json(200, {"ok": True, "modified": False,
                                   "function_count": len(self.functions)},
                             {"x-inngest-sync-kind": "out_of_band"})

    def _accept(self, body: bytes) -> Response:
        events = parse_events(body)
        try:
            ids = self.client.engine.accept(events) if events else []
        except ValueError as err:  # refused before any event was recorded
            raise HTTPError(400, "body_invalid", str(err)) from None
        return Response.json(200, {"ids": ids, "status": 200})


def _method_not_allowed(allowed: str) -> Response:
    res = Response.error(405, "method_not_allowed", f"method not allowed (allowed: {allowed})")
    res.headers["allow"] = allowed
    return res


def _origin(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else ""


def _function_doc(fn: Function[typing.Any]) -> dict[str, typing.Any]:
    from .config import CronTriggerSpec

    triggers: list[dict[str, str]] = []
    for trig in fn.options.triggers:
        if isinstance(trig, CronTriggerSpec):
            triggers.append({"cron": trig.cron})
        else:
            triggers.append({"event": trig.event})
            if trig.expression:
                triggers[-1]["expression"] = trig.expression
    return {"id": fn.id, "name": fn.name, "triggers": triggers}


def parse_events(body: bytes) -> list[Event]:
    """The events of an event API body (one JSON object or an array of them).

    Raises :class:`HTTPError`: 413 over 3 MiB, 400 for malformed JSON or any invalid event
    (so a request's events are taken all or none).
    """
    if len(body) > MAX_BODY_BYTES:
        raise HTTPError(413, "body_too_large",
                        f"request body is {len(body)} bytes; the limit is {MAX_BODY_BYTES} "
                        "(3 MiB)")
    try:
        value = json.loads(body)
    except (ValueError, UnicodeDecodeError) as err:
        raise HTTPError(400, "body_invalid", f"body: malformed JSON ({err})") from None
    many = isinstance(value, list)
    items = value if many else [value]
    events = []
    for i, item in enumerate(items):
        where = f"events[{i}]" if many else "event"
        if not isinstance(item, dict):
            raise HTTPError(400, "body_invalid",
                            f"{where}: expected a JSON object, got {type(item).__name__}")
        name = item.get("name")
        if not isinstance(name, str) or not name:
            raise HTTPError(400, "body_invalid", f"{where}.name: every event needs a "
                            "non-empty string name")
        ts = item.get("ts") or 0
        if isinstance(ts, float) and ts.is_integer():
            ts = int(ts)
        fields = {"name": name, "data": item.get("data"), "id": item.get("id") or "", "ts": ts}
        try:
            events.append(Event(**fields))
        except (pydantic.ValidationError, ValueError, TypeError) as err:
            raise HTTPError(400, "body_invalid", f"{where}: {_first_error(err)}") from None
    return events


def _first_error(err: Exception) -> str:
    if isinstance(err, pydantic.ValidationError):
        first = err.errors()[0]
        loc = ".".join(str(p) for p in first.get("loc", ()))
        return f"{loc}: {first.get('msg')}" if loc else str(first.get("msg"))
    return str(err)


# streaming for sync frameworks ---------------------------------------------------------------
def iterate_sync(body: typing.AsyncIterator[bytes]) -> typing.Iterator[bytes]:
    """Drain an async byte stream from a sync (WSGI) server thread, on a private loop."""
    loop = asyncio.new_event_loop()
    try:
        while True:
            try:
                yield loop.run_until_complete(body.__anext__())
            except StopAsyncIteration:
                return
    finally:
        with contextlib.suppress(Exception):
            aclose = getattr(body, "aclose", None)
            if aclose is not None:
                loop.run_until_complete(aclose())
        loop.close()


# the worker's life with the app -----------------------------------------------------------
def new_worker(client: Inngest) -> Worker:
    from .worker import Worker

    return Worker(client, functions=client._served)


def asgi_lifespan(
    previous: typing.Callable[[typing.Any], typing.AsyncContextManager[typing.Any]],
    client: Inngest,
) -> typing.Callable[[typing.Any], typing.AsyncContextManager[typing.Any]]:
    """An ASGI lifespan: the app's own (``previous``), with the client's worker running inside
    it (started after the app's startup, stopped gracefully before its shutdown, so step
    bodies may use what the app set up)."""

    @contextlib.asynccontextmanager
    async def lifespan(app: typing.Any) -> typing.AsyncIterator[typing.Any]:
        async with previous(app) as state:
            engine = client._engine
            if engine is not None and engine.on_work is not None:
                # Another app (or a second serve() of this one) already runs this client's
                # worker in this process: one worker per engine.
                yield state
                return
            async with new_worker(client):
                yield state

    return lifespan


class BackgroundWorker:
    """A client's :class:`~inngest_do.Worker` on its own thread and event loop, for servers
    whose app has no async lifespan (Flask, Django, Tornado).

    :meth:`ensure_started` starts it (once; adapters call it on the app's first request, so a
    reloader's parent process, which serves none, never opens the store); it stops at
    interpreter exit, or on :meth:`stop`. Request threads deliver events under the engine's
    lock, and the worker hears of them at once.
    """

    _by_client: typing.ClassVar[dict[int, BackgroundWorker]] = {}
    _registry_lock = threading.Lock()

    def __init__(self, client: Inngest, *, start_timeout: float = 30.0) -> None:
        self.client = client
        self.start_timeout = start_timeout
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._worker: Worker | None = None
        self._pid = 0
        self._atexit = False

    @classmethod
    def for_client(cls, client: Inngest) -> BackgroundWorker:
        """The one background worker of ``client`` (several apps serving it share it)."""
        with cls._registry_lock:
            runner = cls._by_client.get(id(client))
            if runner is None or runner.client is not client:
                runner = cls._by_client[id(client)] = cls(client)
            return runner

    @property
    def running(self) -> bool:
        return (self._thread is not None and self._thread.is_alive()
                and self._pid == os.getpid())

    @property
    def worker(self) -> Worker | None:
        return self._worker

    def ensure_started(self) -> None:
        """Start the worker unless it runs; raise what stopped it from starting."""
        if self.running:
            return
        with self._lock:
            if self.running:
                return
            # The engine is made here, on the caller's thread, before the worker's thread
            # looks for it: request threads and the worker then share one engine.
            self.client.engine  # noqa: B018
            self._ready.clear()
            self._error = None
            self._pid = os.getpid()
            thread = threading.Thread(target=self._main, name="inngest_do-worker", daemon=True)
            self._thread = thread
            thread.start()
            if not self._ready.wait(self.start_timeout):
                raise RuntimeError("inngest_do: the worker did not start within "
                                   f"{self.start_timeout} s")
            if self._error is not None:
                error, self._error = self._error, None
                thread.join()
                self._thread = None
                raise error
            if not self._atexit:
                atexit.register(self.stop)
                self._atexit = True

    def stop(self, timeout: float | None = None) -> None:
        """Stop the worker gracefully (slices in flight finish, up to its ``stop_timeout``);
        waits for it up to ``timeout`` seconds (default: forever)."""
        thread, loop, stop = self._thread, self._loop, self._stop
        if thread is None or loop is None or stop is None or not thread.is_alive():
            return
        with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
            loop.call_soon_threadsafe(stop.set)
        thread.join(timeout)

    def _main(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._run())
        finally:
            loop.close()

    async def _run(self) -> None:
        worker = new_worker(self.client)
        self._stop = asyncio.Event()
        try:
            await worker.start()
        except BaseException as err:  # noqa: BLE001 - handed to the starting thread
            self._error = err
            self._ready.set()
            return
        self._worker = worker
        self._ready.set()
        try:
            stopped = asyncio.ensure_future(self._stop.wait())
            main = typing.cast("asyncio.Task[None]", worker._main)
            await asyncio.wait([stopped, main], return_when=asyncio.FIRST_COMPLETED)
            stopped.cancel()
        finally:
            await worker.stop()
