"""``ctx.step.ai``: model calls made by the engine, as durable steps.

``await ctx.step.ai.infer(step_id, adapter=..., body=...)`` is a ``step.run`` whose body is
one HTTP POST to ``adapter.url_infer()``: the provider's JSON answer is the step's recorded
result, so a replay, a resumed coroutine or a restart gets it back without calling the model
again, and the step's retries, fault injection, concurrency slots and history are those of
any other step.

How outcomes map onto attempts:

* 2xx with a JSON body: the result.
* 429, 5xx, connection errors, timeouts: a failed attempt (the function's ``retries``); a
  ``Retry-After`` (or OpenAI's ``retry-after-ms``) header sets the delay as a
  :class:`~inngest_do.errors.RetryAfterError` would.
* any other status: :class:`~inngest_do.errors.NonRetriableError` with the status and the
  provider's error body.

The key never leaves the request: it is not in the step's arguments' reprs, the recorded
result, the error messages (each is scrubbed of it, and URLs are shown without their query),
or the URL httpx logs (Gemini's key travels as a header, not as ``?key=``).

In a :class:`~inngest_do.testing.Simulation`, ``sim.stub_ai(...)`` answers requests without
any server; otherwise the request goes to the adapter's URL as on the wall clock.
"""

from __future__ import annotations

import asyncio
import dataclasses
import email.utils
import json
import typing
import urllib.parse
import weakref

from . import errors
from .experimental.ai.base import FORMAT_ANTHROPIC, FORMAT_GEMINI

if typing.TYPE_CHECKING:
    import httpx

    from .engine import Engine
    from .execution import Execution
    from .experimental.ai.base import BaseAdapter
    from .step import Step, StepSync

#: seconds one model call may take, and its connection: models may think for minutes
TIMEOUT_S = 600.0
CONNECT_TIMEOUT_S = 30.0
#: how much of a provider's error body goes into an error message
ERROR_BODY_CHARS = 2_000
#: keys shorter than this are not scrubbed out of results (they would match innocent text)
MIN_SCRUB_CHARS = 8
_ANTHROPIC_VERSION = "2023-06-01"
_REDACTED = "[redacted]"


@dataclasses.dataclass(frozen=True)
class AIResponse:
    """A provider's answer, as a Simulation's :meth:`~inngest_do.testing.Simulation.stub_ai`
    may give it: ``status``, a JSON ``body`` and ``headers`` (e.g. ``Retry-After``)."""

    status: int = 200
    body: typing.Any = None
    headers: typing.Mapping[str, str] = dataclasses.field(default_factory=dict)


class AIInferError(errors.Error):
    """A model call that failed in a way worth retrying (connection, timeout, 429, 5xx)."""


class _Request:
    """One prepared call. Its repr hides everything: it travels through step machinery."""

    __slots__ = ("body", "headers", "key", "step_id", "url")

    def __init__(self, step_id: str, url: str, headers: dict[str, str], body: dict,
                 key: str) -> None:
        self.step_id = step_id
        self.url = url
        self.headers = headers
        self.body = body
        self.key = key

    def __repr__(self) -> str:
        return f"<ai request {self.step_id!r} to {_public_url(self.url)}>"


def _prepare(step_id: str, adapter: BaseAdapter, body: dict[str, typing.Any]) -> _Request:
    """Check the arguments and build the request (``on_call`` runs here, as in the SDK)."""
    for name in ("auth_key", "format", "headers", "on_call", "url_infer"):
        if not callable(getattr(adapter, name, None)):
            raise TypeError(
                f"adapter: expected an inngest_do.experimental.ai adapter (a BaseAdapter), "
                f"got {type(adapter).__name__} without {name}()")
    if not isinstance(body, dict):
        raise TypeError(f"body: expected a dict, got {type(body).__name__}")
    adapter.on_call(body)
    try:
        payload = json.loads(json.dumps(body, allow_nan=False))
    except (TypeError, ValueError) as err:
        raise TypeError(f"body: not JSON-serializable ({err})") from None
    key = adapter.auth_key()
    fmt = adapter.format()
    url = adapter.url_infer()
    extra = adapter.headers()
    if not isinstance(key, str):
        raise TypeError("adapter.auth_key(): expected a str")
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise ValueError(f"adapter.url_infer(): expected an http(s) URL, got {_public_url(url)!r}")
    if not isinstance(extra, dict):
        raise TypeError("adapter.headers(): expected a dict of str to str")
    headers = {"content-type": "application/json", "accept": "application/json"}
    if fmt == FORMAT_GEMINI:
        # The SDK's Gemini adapter puts the key in the query string; a URL gets logged
        # (httpx logs every request line), so the key moves into Google's header instead.
        url = _without_query_key(url)
        if key:
            headers["x-goog-api-key"] = key
    elif fmt == FORMAT_ANTHROPIC:
        if key:
            headers["x-api-key"] = key
        headers["anthropic-version"] = _ANTHROPIC_VERSION
    elif key:
        headers["authorization"] = f"Bearer {key}"
    for name, value in extra.items():
        if not isinstance(name, str) or not isinstance(value, str):
            raise TypeError("adapter.headers(): expected a dict of str to str")
        headers[name.lower()] = value
    return _Request(step_id, url, headers, payload, key)


def _without_query_key(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    query = [(k, v) for k, v in urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
             if k != "key"]
    return urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(query)))


def _public_url(url: object) -> str:
    """``url`` without query or fragment: what error messages may show."""
    if not isinstance(url, str):
        return repr(url)
    parts = urllib.parse.urlsplit(url)
    return urllib.parse.urlunsplit((parts.scheme, parts.netloc.rpartition("@")[2],
                                    parts.path, "", ""))


def _scrub(text: str, key: str) -> str:
    return text.replace(key, _REDACTED) if key else text


def _scrub_value(value: typing.Any, key: str) -> typing.Any:
    """``value`` with every occurrence of a (long enough) key replaced, via its JSON text."""
    if len(key) < MIN_SCRUB_CHARS:
        return value
    text = json.dumps(value)
    needle = json.dumps(key)[1:-1]  # the key as it appears inside a JSON string
    if needle not in text:
        return value
    return json.loads(text.replace(needle, _REDACTED))


# -- HTTP -----------------------------------------------------------------------------------
# One pooled client per event loop: connections belong to the loop that opened them. A
# Simulation's private loop, a Worker's loop and a worker thread's loop each get their own.
_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, httpx.AsyncClient] = (
    weakref.WeakKeyDictionary())  # the annotation is a string: httpx loads lazily


def _client() -> httpx.AsyncClient:
    import httpx  # imported on the first model call: most programs never make one

    loop = asyncio.get_running_loop()
    client = _clients.get(loop)
    if client is None or client.is_closed:
        client = httpx.AsyncClient(timeout=httpx.Timeout(TIMEOUT_S, connect=CONNECT_TIMEOUT_S),
                                   follow_redirects=False)
        _clients[loop] = client
    return client


def _wire_headers(headers: dict[str, str]) -> dict[str, str]:
    """Header names as Inngest's gateway (Go's net/http) sends them: ``X-Api-Key``,
    ``Content-Type``. Names are case-insensitive in HTTP, but a provider (or a test double)
    that reads them raw sees what it would see behind Inngest."""
    return {"-".join(part[:1].upper() + part[1:].lower() for part in name.split("-")): value
            for name, value in headers.items()}


async def _post(req: _Request) -> AIResponse:
    import httpx

    try:
        res = await _client().post(req.url, headers=_wire_headers(req.headers),
                                   content=json.dumps(req.body).encode())
        raw = res.content
    except httpx.TimeoutException as err:
        raise AIInferError(_scrub(
            f"step.ai.infer: {_public_url(req.url)} timed out ({type(err).__name__})",
            req.key)) from None
    except httpx.HTTPError as err:
        raise AIInferError(_scrub(
            f"step.ai.infer: cannot reach {_public_url(req.url)}: "
            f"{type(err).__name__}: {err}", req.key)) from None
    body: typing.Any
    try:
        body = json.loads(raw) if raw else None
    except ValueError:
        body = raw.decode("utf-8", "replace")
    return AIResponse(res.status_code, body, dict(res.headers))


# -- outcome mapping ------------------------------------------------------------------------
def _outcome(req: _Request, res: AIResponse) -> typing.Any:
    """The step's result, or the error this response means."""
    if not isinstance(res, AIResponse):
        raise TypeError(f"step.ai.infer: a stub must give a dict or an AIResponse, got {res!r}")
    status = res.status
    if 200 <= status < 300:
        if isinstance(res.body, str):
            raise AIInferError(_scrub(
                f"step.ai.infer: {_public_url(req.url)} answered HTTP {status} with a body "
                f"that is not JSON: {res.body[:ERROR_BODY_CHARS]}", req.key))
        return _scrub_value(res.body, req.key)
    text = res.body if isinstance(res.body, str) else json.dumps(res.body)
    message = _scrub(f"step.ai.infer: {_public_url(req.url)} answered HTTP {status}: "
                     f"{text[:ERROR_BODY_CHARS]}", req.key)
    if status == 429 or status >= 500:
        delay = _retry_after_ms(res.headers)
        if delay is not None:
            raise errors.RetryAfterError(message, delay)
        raise AIInferError(message)
    err = errors.NonRetriableError(message)
    err.step_level = True  # type: ignore[attr-defined] - fails the step (a StepError), not the run
    raise err


def _retry_after_ms(headers: typing.Mapping[str, str]) -> int | None:
    """The delay a 429/5xx asks for: ``retry-after-ms`` (OpenAI), else ``Retry-After`` in
    seconds or as an HTTP date (measured from the response's own ``Date`` when it has one,
    so the provider's clock is compared with itself)."""
    lower = {k.lower(): v for k, v in headers.items()}
    raw_ms = lower.get("retry-after-ms")
    if raw_ms is not None:
        try:
            return max(0, round(float(raw_ms)))
        except ValueError:
            pass
    raw = lower.get("retry-after")
    if raw is None:
        return None
    raw = raw.strip()
    try:
        return max(0, round(float(raw) * 1000))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    try:
        now = email.utils.parsedate_to_datetime(lower["date"])
    except (KeyError, TypeError, ValueError):
        import datetime

        now = datetime.datetime.now(datetime.timezone.utc)
    if when.tzinfo is None or now.tzinfo is None:
        return None
    return max(0, round((when - now).total_seconds() * 1000))


# -- stubs (Simulation.stub_ai) ---------------------------------------------------------------
#: what a stub answers with: the JSON, an AIResponse, or a callable of the request body
Responder = typing.Mapping[str, typing.Any] | AIResponse | typing.Callable[[dict], typing.Any]

# engine -> [(fn_id or None, step_id or None, responder)], newest first
_stubs: weakref.WeakKeyDictionary[Engine, list[tuple[str | None, str | None, Responder]]] = (
    weakref.WeakKeyDictionary())


def set_stubs(engine: Engine, stubs: list[tuple[str | None, str | None, Responder]]) -> None:
    """Answer ``engine``'s model calls from ``stubs`` (a Simulation keeps the list)."""
    _stubs[engine] = stubs


def _stub_for(ex: Execution, req: _Request) -> Responder | None:
    stubs = _stubs.get(ex.engine)
    if not stubs:
        return None
    for fn_id, step_id, responder in stubs:
        if fn_id is not None and fn_id != ex.run.fn_id:
            continue
        if step_id is not None and step_id not in (req.step_id, ex.in_body):
            continue
        return responder
    return None


async def _answer(responder: Responder, req: _Request) -> AIResponse:
    out: typing.Any = responder
    if callable(responder) and not isinstance(responder, AIResponse):
        out = responder(json.loads(json.dumps(req.body)))
        if asyncio.iscoroutine(out):
            out = await out
    if isinstance(out, AIResponse):
        return out
    if isinstance(out, BaseException):
        raise out
    return AIResponse(200, json.loads(json.dumps(out)), {})


def _body(ex: Execution) -> typing.Callable[[_Request], typing.Awaitable[typing.Any]]:
    async def call_model(req: _Request) -> typing.Any:
        responder = _stub_for(ex, req)
        res = await (_answer(responder, req) if responder is not None else _post(req))
        return _outcome(req, res)

    return call_model


class AI:
    """``ctx.step.ai`` of an async handler."""

    def __init__(self, step: Step) -> None:
        self._step = step

    async def infer(
        self,
        step_id: str,
        *,
        adapter: BaseAdapter,
        body: dict[str, typing.Any],
    ) -> dict[str, object]:
        """POST ``body`` (after ``adapter.on_call``) to the adapter's model, as a step.

        Returns the provider's JSON response; it is recorded, so the model is called once
        per successful step however often the run replays. Errors: see the module docstring.
        """
        req = _prepare(step_id, adapter, body)
        return await self._step.run(step_id, _body(self._step._ex), req)


class AISync:
    """``ctx.step.ai`` of a sync handler."""

    def __init__(self, step: StepSync) -> None:
        self._step = step

    def infer(
        self,
        step_id: str,
        *,
        adapter: BaseAdapter,
        body: dict[str, typing.Any],
    ) -> dict[str, object]:
        """POST ``body`` to the adapter's model, as a step (see :meth:`AI.infer`)."""
        req = _prepare(step_id, adapter, body)
        # The step resolves the coroutine on a loop of its own (the engine's resolve).
        return self._step.run(step_id, _body(self._step._ex), req)
