"""The server: Inngest's dev-server HTTP surface over inngest_do's engine.

Two threads besides the caller's: the engine's (an asyncio loop running a
:class:`~inngest_do.worker.Worker` on the real or a virtual clock) and the HTTP server's
(stdlib ``ThreadingHTTPServer``, one thread per request). Requests touch the engine only
through its lock (``accept``, queries); runs execute on the engine's loop, where each remote
call to an app runs on a small thread pool so runs overlap.

Routes:

==========================  ==========================================================
``POST /fn/register``       out-of-band sync from an SDK
``POST /e/{event_key}``     the event API (one event or an array)
``POST /v0/gql``            GraphQL (see ``gql.py``)
``POST /v0/connect/start``  readiness probe (answers 200)
``POST /v0/apps/sync``      ``{"url": ...}``: sync the app served there (as ``-u`` does)
``GET /v0/runs/{id}/batch`` the SDK's API: a run's events (``use_api``)
``GET /v0/runs/{id}/actions``  the SDK's API: a run's memoized steps
``GET /v1/runs[?function_id=&status=]``, ``GET /v1/runs/{id}``  runs as JSON
``GET /v1/events[?name=]``, ``GET /v1/events/{id}``, ``GET /v1/events/{id}/runs``
``GET /v1/apps``            synced apps and their function ids
``POST /v0/sim/advance``    virtual clock: ``{"ms": N}`` or ``{"duration": "1d"}``
``GET /v0/sim/now``         the engine's time
==========================  ==========================================================
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import http.server
import json
import logging
import signal
import socket
import socketserver
import threading
import typing
import urllib.parse

from ..client import Inngest
from ..durations import parse_duration_str
from ..kernel import RealClock, VirtualClock, datetime_to_ms, ms_to_datetime
from ..worker import Worker
from . import clock as clock_control
from . import signing
from .dev_engine import DevEngine
from .events import EventBodyError, parse_events
from .gql import GraphQL
from .registry import App, Registry, RemoteFunction, SyncError, SyncPlan
from .remote import RemoteExecutor, _http_post
from .rest import Views

if typing.TYPE_CHECKING:
    from typing_extensions import Self

    from ..storage import Store

__all__ = ["DevServer"]

log = logging.getLogger("inngest_do.devserver")

DEV_APP_ID = "inngest-do-dev"
#: store meta key prefix under which each app's last accepted sync is kept
APP_META = "devserver:app:"
MAX_BODY = 16 * 1024 * 1024  # bytes: a larger request is refused (413)


class _EngineWorker(Worker):
    """A Worker whose engine runs the dev server's clock (real or virtual) and seed, and
    serves only synced functions."""

    def __init__(self, client: Inngest, *, clock: typing.Any, seed: int | None,
                 store: Store | str | None, **kwargs: typing.Any) -> None:
        super().__init__(client, functions=[], **kwargs)
        self._clock = clock
        self._seed = seed
        self._dev_store = store

    def _install_engine(self) -> DevEngine:
        from ..storage import open_store

        if self.client._engine is not None:
            return self.client._engine
        store = self.client.new_store() if self._dev_store is None else open_store(
            self._dev_store)
        engine = DevEngine(self.client, clock=self._clock, store=store, seed=self._seed,
                           functions=[])
        self.client._engine = engine
        return engine


class DevServer:
    """An Inngest server for apps on the official SDK, in this process.

    >>> with DevServer(virtual_clock=True, seed=1) as server:
    ...     os.environ["INNGEST_BASE_URL"] = server.url
    ...     server.sync_app("http://127.0.0.1:8000/api/inngest")
    ...     server.advance(datetime.timedelta(days=1))

    Args:
        host, port: where to listen (port 0: a free port, see :attr:`url`).
        store: None (memory), a SQLite file path, or a Store.
        virtual_clock: time moves only through :meth:`advance` / ``POST /v0/sim/advance``.
        start: where a virtual clock starts (default: now, so SDK-side sleeps computed from
            the wall clock land where expected).
        seed: the engine's random source (run ids, jitter); seeded, the same inputs give the
            same run ids and order.
        signing_key: sign requests to apps and check their responses' signatures (and the
            SDK's bearer token on ``/fn/register`` and the run API); None: dev mode.
        event_key: if set, ``POST /e/{key}`` must use it.
        app_urls: apps to sync at start.
        request_timeout: seconds an app has to answer one call.
        idle_timeout: seconds :meth:`advance` waits for work to settle at each instant.
    """

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0,
                 store: Store | str | None = None, virtual_clock: bool = False,
                 start: datetime.datetime | None = None, seed: int | None = None,
                 signing_key: str | None = None, event_key: str | None = None,
                 app_urls: typing.Sequence[str] = (), request_timeout: float = 60.0,
                 idle_timeout: float = 60.0) -> None:
        if not isinstance(port, int) or not 0 <= port <= 65535:
            raise ValueError(f"port: expected 0..65535, got {port!r}")
        if request_timeout <= 0:
            raise ValueError("request_timeout: must be positive")
        for i, url in enumerate(app_urls):
            if not isinstance(url, str) or not url.startswith(("http://", "https://")):
                raise ValueError(f"app_urls[{i}]: expected an http(s) URL, got {url!r}")
        self.host, self.port = host, port
        self.virtual = virtual_clock
        self.signing_key = signing_key
        self.event_key = event_key
        self.app_urls = list(app_urls)
        self.idle_timeout = idle_timeout
        if virtual_clock:
            when = start or datetime.datetime.now(datetime.timezone.utc)
            if when.tzinfo is None:
                when = when.replace(tzinfo=datetime.timezone.utc)
            self.clock = VirtualClock(datetime_to_ms(when))
        else:
            if start is not None:
                raise ValueError("start: only a virtual clock can start elsewhere than now")
            self.clock = RealClock()
        self.client = Inngest(app_id=DEV_APP_ID, store=store, seed=seed)
        self.executor = RemoteExecutor(signing_key=signing_key, timeout=request_timeout,
                                       server_kind="cloud" if signing_key else "dev")
        self.registry = Registry(self.executor)
        self.executor.registry = self.registry
        self.worker = _EngineWorker(self.client, clock=self.clock, seed=seed, store=store)
        self._views: Views | None = None
        self._gql: GraphQL | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._engine_thread: threading.Thread | None = None
        self._http: _HTTPServer | None = None
        self._http_thread: threading.Thread | None = None
        self._stop: asyncio.Event | None = None
        self._clock_lock = threading.Lock()

    # life cycle -----------------------------------------------------------------------------
    @property
    def url(self) -> str:
        """The server's origin, e.g. ``http://127.0.0.1:8288``."""
        return f"http://{self.host}:{self.port}"

    @property
    def engine(self) -> DevEngine:
        return typing.cast(DevEngine, self.worker.engine)

    def start(self) -> Self:
        """Start the engine and the HTTP server, then sync ``app_urls``. Returns self."""
        if self._engine_thread is not None:
            raise RuntimeError("DevServer: already started")
        # Listen first: a sync (or event) that arrives while the engine recovers its store
        # waits in the socket's backlog and is served once the engine is up, instead of
        # being refused.
        self._http = _HTTPServer((self.host, self.port), _Handler)
        self._http.dev = self
        self.port = self._http.server_address[1]
        started = threading.Event()
        failure: list[BaseException] = []

        async def main() -> None:
            self._loop = asyncio.get_running_loop()
            self._stop = asyncio.Event()
            try:
                await self.worker.start()
            except BaseException as err:  # noqa: BLE001 - re-raised in start()'s caller
                failure.append(err)
                started.set()
                return
            started.set()
            try:
                await self._stop.wait()
            finally:
                await self.worker.stop()

        self._engine_thread = threading.Thread(target=lambda: asyncio.run(main()),
                                               name="inngest_do-dev-engine", daemon=True)
        self._engine_thread.start()
        started.wait()
        if failure:
            self._engine_thread.join()
            self._engine_thread = None
            self._http.server_close()
            self._http = None
            raise failure[0]
        self.engine.on_cancel = self.executor.cancel_in_flight
        self._views = Views(self.engine, self.executor)
        self._gql = GraphQL(self._views)
        self._restore_apps()
        self._http_thread = threading.Thread(target=self._http.serve_forever,
                                             name="inngest_do-dev-http", daemon=True)
        self._http_thread.start()
        log.info("inngest-do dev: listening on %s (%s clock)", self.url,
                 "virtual" if self.virtual else "real")
        for url in self.app_urls:
            try:
                self.sync_app(url)
            except SyncError as err:
                log.error("inngest-do dev: sync of %s failed: %s", url, err)
        return self

    def stop(self) -> None:
        """Stop serving HTTP, let runs in flight finish (bounded), close the store."""
        if self._http is not None:
            if self._http_thread is not None:
                self._http.shutdown()
            self._http.server_close()
            self._http.close_connections()
            self._http = None
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        if self._engine_thread is not None:
            self._engine_thread.join(timeout=60)
            self._engine_thread = None
        self.executor.close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def serve_forever(self) -> None:
        """Block until SIGINT or SIGTERM (the ``inngest-do dev`` command), then stop cleanly.

        From the main thread the two signals are handled here whatever the process inherited:
        a server started in the background by a shell without job control has SIGINT ignored,
        and SIGTERM would otherwise end it without stopping the engine."""
        if self._engine_thread is None:
            self.start()
        stop = threading.Event()
        previous: dict[int, typing.Any] = {}
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                previous[sig] = signal.signal(sig, lambda *_: stop.set())
        try:
            assert self._engine_thread is not None
            while self._engine_thread.is_alive() and not stop.wait(0.5):
                pass
        except KeyboardInterrupt:
            pass
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            self.stop()

    # apps -----------------------------------------------------------------------------------
    def register(self, body: object, *, url: str | None = None) -> dict:
        """Apply a sync request body; ``{"ok": True, "modified": bool}``. ``SyncError``
        (nothing applied) when the body or a function config is not acceptable.

        New functions are served, ones whose config changed are replaced (runs that start
        from now on follow the new config), ones the app no longer declares stop being
        triggered, and runs parked waiting for these functions (after a restart) go on."""
        app, fns = self.registry.parse(body, url=url)
        engine = self.engine
        with engine.lock:
            plan = self._apply(app, fns)
            woken = engine.set_live(plan.ids)
            # Kept so that after a restart from the store the app's functions are served
            # (their runs parked) until it syncs again.
            engine.store.save_meta(APP_META + app.id, {"body": body, "url": url})
            engine.store.commit()
        log.info("inngest-do dev: synced app '%s' at %s (%d functions%s%s%s%s)", app.id,
                 app.url, len(fns), ", changed" if plan.modified else "",
                 f", {len(plan.changed)} reconfigured" if plan.changed else "",
                 f", removed {', '.join(plan.removed)}" if plan.removed else "",
                 f", {woken} parked runs resumed" if woken else "")
        self.worker._on_work()
        return {"ok": True, "modified": plan.modified}

    def _apply(self, app: App, fns: list[RemoteFunction]) -> SyncPlan:
        """Record a parsed sync and serve it (engine lock held)."""
        engine = self.engine
        plan = self.registry.apply(app, fns)
        engine.serve(plan.new)
        for fn in plan.changed:
            engine.replace_function(fn)
        for fn_id in plan.removed:
            engine.unserve(fn_id)
        return plan

    def _restore_apps(self) -> None:
        """Serve the functions of every app synced before a restart (from the store), not
        live: their runs (recovered or new) wait until the app syncs again."""
        engine = self.engine
        with engine.lock:
            for key, value in sorted(engine.recovered_meta.items()):
                if not key.startswith(APP_META) or not isinstance(value, dict):
                    continue
                try:
                    app, fns = self.registry.parse(value.get("body"), url=value.get("url"))
                    self._apply(app, fns)
                except (SyncError, ValueError) as err:
                    log.error("inngest-do dev: the stored sync of app '%s' is not usable "
                              "(%s); its runs wait until it syncs again", key[len(APP_META):],
                              err)
                    continue
                log.info("inngest-do dev: serving app '%s' from the store (%d functions) "
                         "until it syncs again", app.id, len(fns))

    def sync_app(self, url: str) -> App:
        """Sync the app served at ``url`` (a PUT, as Inngest's dev server does): in-band
        when the SDK answers with its config, else the SDK posts it to ``/fn/register``."""
        body = json.dumps({"url": url}).encode()
        headers = {"content-type": "application/json",
                   "x-inngest-server-kind": "cloud" if self.signing_key else "dev"}
        if self.signing_key:
            # In-band sync needs a signed request; an SDK in dev mode refuses it.
            headers["x-inngest-sync-kind"] = "in_band"
            headers["x-inngest-signature"] = signing.sign(body, self.signing_key)
        try:
            answer = _http_put(url, body, headers, self.executor.timeout)
        except OSError as err:
            raise SyncError(f"could not reach the app at {url}: {err}") from None
        try:
            payload = json.loads(answer.body) if answer.body else {}
        except ValueError:
            raise SyncError(f"app at {url} answered the sync with status {answer.status} "
                            f"and a body that is not JSON") from None
        if answer.status != 200:
            message = payload.get("message") if isinstance(payload, dict) else None
            raise SyncError(f"app at {url} refused the sync (status {answer.status}): "
                            f"{message or answer.body[:200]!r}")
        if answer.headers.get("x-inngest-sync-kind") == "in_band":
            if self.signing_key:
                problem = signing.verify(answer.body, answer.headers.get("x-inngest-signature"),
                                         self.signing_key)
                if problem:
                    raise SyncError(f"app at {url}: sync response rejected: {problem}")
            self.register(payload, url=payload.get("url") or url)
        # out of band: the SDK has already posted its config to /fn/register
        for app in list(self.registry.apps.values()):
            if app.url == url or url in {f.url for f in app.functions.values()}:
                return app
        apps = list(self.registry.apps.values())
        if not apps:
            raise SyncError(f"app at {url} answered the sync but never registered")
        return apps[-1]

    # events and time ------------------------------------------------------------------------
    def send(self, events: list[typing.Any]) -> list[str]:
        """Accept events (``inngest_do.Event`` objects); their ids."""
        return self.engine.accept(events)

    @property
    def now(self) -> datetime.datetime:
        return ms_to_datetime(self.clock.now_ms())

    def advance(self, duration: int | datetime.timedelta | str) -> datetime.datetime:
        """Virtual clock: run everything due in the next ``duration`` (ms, timedelta or a
        string such as ``"1d"``), in time order; returns the new time."""
        if not self.virtual:
            raise RuntimeError("advance: the server runs on the real clock (start it with "
                               "virtual_clock=True / --virtual-clock)")
        if isinstance(duration, str):
            ms = parse_duration_str(duration, what="duration")
        elif isinstance(duration, datetime.timedelta):
            ms = int(duration.total_seconds() * 1000)
        elif isinstance(duration, int) and not isinstance(duration, bool):
            ms = duration
        else:
            raise TypeError(f"duration: expected ms, a timedelta or a string such as '1h', got "
                            f"{duration!r}")
        if ms < 0:
            raise ValueError(f"duration: must not be negative, got {duration!r}")
        with self._clock_lock:
            clock_control.advance(self.engine, self.worker, self.clock.now_ms() + ms,
                                  self.idle_timeout)
        return self.now

    def wait_idle(self, timeout: float | None = None) -> None:
        """Block until no run executes or is ready and nothing is due now."""
        clock_control.wait_idle(self.engine, self.worker,
                                self.idle_timeout if timeout is None else timeout)

    # queries --------------------------------------------------------------------------------
    @property
    def views(self) -> Views:
        if self._views is None:
            raise RuntimeError("DevServer: not started")
        return self._views

    def graphql(self, body: object) -> dict:
        if self._gql is None:
            raise RuntimeError("DevServer: not started")
        return self._gql.execute(body)

    # HTTP -----------------------------------------------------------------------------------
    def handle(self, method: str, path: str, query: dict[str, str], headers: dict[str, str],
               body: bytes) -> tuple[int, typing.Any, dict[str, str]]:
        """Route one request: ``(status, JSON body, extra headers)``."""
        parts = [p for p in path.split("/") if p]
        if method == "POST" and parts == ["v0", "connect", "start"]:
            return 200, {"ok": True}, {}
        if method == "POST" and parts == ["fn", "register"]:
            return self._http_register(headers, body)
        if method == "POST" and len(parts) == 2 and parts[0] == "e":
            return self._http_events(parts[1], body)
        if method == "POST" and len(parts) == 1 and parts[0] == "e":
            return 401, {"error": "event key missing: POST /e/{event_key}", "status": 401}, {}
        if parts == ["v0", "gql"] or parts == ["v0", "gql", ""]:
            if method != "POST":
                return 405, {"errors": [{"message": "POST a GraphQL query"}]}, {}
            parsed, err = _json(body)
            if err:
                return 400, {"data": None, "errors": [{"message": err}]}, {}
            return 200, self.graphql(parsed), {}
        if method == "POST" and parts == ["v0", "apps", "sync"]:
            parsed, err = _json(body)
            url = parsed.get("url") if isinstance(parsed, dict) else None
            if err or not isinstance(url, str):
                return 400, {"error": err or "body: expected {\"url\": \"http://...\"}"}, {}
            try:
                app = self.sync_app(url)
            except SyncError as sync_err:
                return 400, {"error": str(sync_err)}, {}
            return 200, {"ok": True, "app_id": app.id,
                         "functions": sorted(app.functions)}, {}
        if parts[:2] == ["v0", "sim"]:
            return self._http_sim(method, parts[2:], body)
        if method == "GET" and len(parts) == 4 and parts[:2] == ["v0", "runs"]:
            denied = self._check_bearer(headers)
            if denied:
                return denied
            data = (self.views.batch(parts[2]) if parts[3] == "batch" else
                    self.views.actions(parts[2]) if parts[3] == "actions" else None)
            if data is None:
                return 404, {"error": f"no run with id {parts[2]!r}"}, {}
            return 200, data, {}
        if method == "GET" and parts[:1] == ["v1"]:
            return self._http_read(parts[1:], query)
        if method == "GET" and not parts:
            return 200, {"name": "inngest-do dev", "url": self.url,
                         "clock": "virtual" if self.virtual else "real",
                         "now": self.now.isoformat(),
                         "apps": sorted(self.registry.apps)}, {}
        return 404, {"error": f"no route for {method} {path}"}, {}

    def _check_bearer(self, headers: dict[str, str]) -> tuple[int, dict, dict] | None:
        if not self.signing_key:
            return None
        if headers.get("authorization") != signing.bearer(self.signing_key):
            log.error("inngest-do dev: refused a request without the signing key's bearer")
            return 401, {"error": "authorization: missing or wrong signing key bearer"}, {}
        return None

    def _http_register(self, headers: dict[str, str], body: bytes) -> tuple[int, dict, dict]:
        denied = self._check_bearer(headers)
        if denied:
            return denied
        parsed, err = _json(body)
        if err:
            log.error("inngest-do dev: sync refused: %s", err)
            return 400, {"error": err}, {}
        try:
            return 200, self.register(parsed), {}
        except SyncError as sync_err:
            log.error("inngest-do dev: sync refused: %s", sync_err)
            return 400, {"error": str(sync_err)}, {}

    def _http_events(self, key: str, body: bytes) -> tuple[int, dict, dict]:
        if self.event_key is not None and key != self.event_key:
            return 401, {"error": "event key not recognized", "status": 401}, {}
        try:
            events = parse_events(body)
        except EventBodyError as err:
            log.error("inngest-do dev: event refused: %s", err)
            return 400, {"error": str(err), "status": 400}, {}
        ids = self.engine.accept(events)
        return 200, {"ids": ids, "status": 200}, {}

    def _http_sim(self, method: str, rest: list[str], body: bytes) -> tuple[int, dict, dict]:
        if method == "GET" and rest == ["now"]:
            return 200, {"now": self.now.isoformat(), "ms": self.clock.now_ms(),
                         "virtual": self.virtual}, {}
        if method == "POST" and rest == ["advance"]:
            parsed, err = _json(body)
            if err or not isinstance(parsed, dict):
                return 400, {"error": err or "body: expected {\"ms\": N} or "
                                             "{\"duration\": \"1h\"}"}, {}
            amount = parsed.get("ms", parsed.get("duration"))
            try:
                now = self.advance(amount)
            except (TypeError, ValueError) as bad:
                return 400, {"error": str(bad)}, {}
            except RuntimeError as refused:
                return 409, {"error": str(refused)}, {}
            return 200, {"now": now.isoformat(), "ms": self.clock.now_ms()}, {}
        return 404, {"error": "no such clock route"}, {}

    def _http_read(self, parts: list[str], query: dict[str, str]) -> tuple[int, typing.Any, dict]:
        views = self.views
        try:
            limit = int(query.get("limit", "100"))
        except ValueError:
            return 400, {"error": f"limit: expected an integer, got {query['limit']!r}"}, {}
        if parts == ["runs"]:
            return 200, {"data": views.runs(fn_id=query.get("function_id"),
                                            status=query.get("status"), limit=limit)}, {}
        if len(parts) == 2 and parts[0] == "runs":
            run = views.run(parts[1])
            if run is None:
                return 404, {"error": f"no run with id {parts[1]!r}"}, {}
            return 200, {"data": run}, {}
        if parts == ["events"]:
            return 200, {"data": views.events(name=query.get("name"), limit=limit)}, {}
        if len(parts) in (2, 3) and parts[0] == "events":
            ev = views.event(parts[1])
            if ev is None:
                return 404, {"error": f"no event with id {parts[1]!r}"}, {}
            if len(parts) == 2:
                return 200, {"data": ev}, {}
            if parts[2] == "runs":
                return 200, {"data": [views.run(r) for r in views.event_run_ids(parts[1])]}, {}
        if parts == ["apps"]:
            return 200, {"data": [{"id": a.id, "url": a.url, "framework": a.framework,
                                   "sdk": a.sdk, "functions": sorted(a.functions)}
                                  for a in self.registry.apps.values()]}, {}
        return 404, {"error": f"no route for GET /v1/{'/'.join(parts)}"}, {}

    def functions(self) -> list[RemoteFunction]:
        """Every synced function."""
        return list(self.registry.functions.values())


def _json(body: bytes) -> tuple[typing.Any, str | None]:
    try:
        return json.loads(body) if body.strip() else None, None
    except ValueError as err:
        return None, f"body: not valid JSON ({err})"


def _http_put(url: str, body: bytes, headers: dict[str, str], timeout: float) -> typing.Any:
    import http.client

    from .remote import Answer

    parts = urllib.parse.urlsplit(url)
    conn_cls = http.client.HTTPSConnection if parts.scheme == "https" else \
        http.client.HTTPConnection
    conn = conn_cls(parts.hostname or "127.0.0.1", parts.port, timeout=timeout)
    try:
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        conn.request("PUT", path, body=body, headers=headers)
        res = conn.getresponse()
        return Answer(res.status, {k.lower(): v for k, v in res.getheaders()}, res.read())
    finally:
        conn.close()


_ = _http_post  # re-exported for callers that POST to apps


class _HTTPServer(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    dev: DevServer

    def __init__(self, *args: typing.Any, **kwargs: typing.Any) -> None:
        super().__init__(*args, **kwargs)
        self._conn_lock = threading.Lock()
        self._connections: set[socket.socket] = set()

    def process_request(self, request: typing.Any, client_address: typing.Any) -> None:
        with self._conn_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: typing.Any) -> None:
        with self._conn_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        """End every kept-alive connection: a client's pooled connection must not reach a
        stopped server (whose store is closed) after another took over the port."""
        with self._conn_lock:
            connections = list(self._connections)
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)


class _Handler(http.server.BaseHTTPRequestHandler):
    server: _HTTPServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: typing.Any) -> None:
        log.debug("inngest-do dev: " + format, *args)

    def _serve(self, method: str) -> None:
        parsed = urllib.parse.urlsplit(self.path)
        query = dict(urllib.parse.parse_qsl(parsed.query))
        headers = {k.lower(): v for k, v in self.headers.items()}
        try:
            length = int(headers.get("content-length") or 0)
        except ValueError:
            length = -1
        if length < 0 or length > MAX_BODY:
            self._reply(413 if length > MAX_BODY else 400,
                        {"error": "content-length: missing, malformed or too large"}, {})
            return
        body = self.rfile.read(length) if length else b""
        try:
            status, payload, extra = self.server.dev.handle(method, parsed.path, query,
                                                            headers, body)
        except Exception as err:
            log.exception("inngest-do dev: error serving %s %s", method, self.path)
            status, payload, extra = 500, {"error": f"{type(err).__name__}: {err}"}, {}
        self._reply(status, payload, extra)

    def _reply(self, status: int, payload: typing.Any, extra: dict[str, str]) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        for key, value in extra.items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def do_PUT(self) -> None:
        self._serve("PUT")
