"""Remote execution: a synced function's handler drives the app over Inngest's HTTP protocol.

The handler is an ordinary async engine handler. Each round it POSTs to the app (``?fnId=``)
with the run's events and memos (in the SDK's shape, keyed by the SDK's hashed step ids) and
turns the answer into engine steps, so the engine's memos, retries, timers, waits, invokes,
concurrency and cancellation apply unchanged:

- 200: the function's output -- the run completes with it;
- 206 ``StepRun``/``StepError``/``StepFailed``: a step the SDK already ran: ``ctx.step.run``
  whose first attempt is that result (later attempts POST ``?stepId=`` to run it again);
- 206 ``StepPlanned``: ``ctx.step.run`` whose body POSTs ``?stepId=``; several planned ops
  run as ``ctx.group.parallel`` (race mode when the SDK asks for it);
- ``Sleep`` -> ``ctx.step.sleep_until``; ``WaitForEvent`` -> ``ctx.step.wait_for_event``;
  ``InvokeFunction`` -> ``ctx.step.invoke_by_id``; ``AIGateway`` -> a step whose body makes
  the model request;
- 4xx/5xx: the function raised: a retriable error, or a non-retriable one when the app sends
  ``X-Inngest-No-Retry: true`` (``Retry-After`` sets the delay).

An app that answers garbage, times out, or sends an unknown opcode or a bad signature gives
the run an error saying so (retried as any error is); the server itself is unaffected.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import datetime
import functools
import http.client
import json
import logging
import threading
import typing
import urllib.parse

from .. import errors
from ..config import ParallelMode
from ..durations import parse_duration_str
from ..execution import CancelRun, SyncPark
from . import signing

if typing.TYPE_CHECKING:
    from ..context import Context
    from ..execution import Execution
    from ..runs import RunState
    from .registry import Registry, RemoteFunction

__all__ = ["RemoteError", "RemoteExecutor"]

log = logging.getLogger("inngest_do.devserver")

SDK_HEADERS = {
    "content-type": "application/json",
    "user-agent": "inngest-do-dev",
    "x-inngest-req-version": "1",
}


#: a call request larger than this (bytes) is sent trimmed, with ``use_api`` set
USE_API_BYTES = 2 * 1024 * 1024


class RemoteError(errors.ReportedError):
    """An error the app reported (or that calling it raised), with the app's own name,
    message and stack; ``body`` is what the app sent, kept as the run's output."""

    def __init__(self, message: str, *, name: str = "Error", stack: str | None = None,
                 retriable: bool = True, body: dict | None = None) -> None:
        super().__init__(message, name, stack)
        self.is_retriable = retriable
        self.body = body if body is not None else {
            "name": name, "message": message, "stack": stack}
        #: fields added to the run's error record (and so to inngest/function.failed)
        self.extra_details: dict[str, str] = {}
        #: the error body of a 4xx/5xx answer: a failed run's output, as Inngest shows it
        self.app_body: dict | None = None


class RemoteRetryAfter(errors.RetryAfterError):
    """The app asked for a retry at a given time (``Retry-After``)."""

    def __init__(self, source: RemoteError, retry_after: datetime.datetime | int) -> None:
        super().__init__(source.message, retry_after)
        self.source = source

    @property
    def message(self) -> str:
        return self.source.message

    @property
    def name(self) -> str:
        return self.source.name

    @property
    def stack(self) -> str | None:
        return self.source.stack


class _FunctionLevel(SyncPark):
    """A targeted step call answered with a function-level error (the SDK bubbles
    ``NonRetriableError``/``RetryAfterError`` out of steps): unwinds the step without
    recording it, so the run itself fails or retries.

    A :class:`SyncPark` only so that ``step.run`` lets it through as it does the engine's
    own unwinding signals (any other exception from a step body is a failed attempt of the
    step); :meth:`RemoteExecutor.run` always catches it before the engine sees it."""

    def __init__(self, error: Exception) -> None:
        super().__init__(str(error))
        self.error = error


class Answer(typing.NamedTuple):
    status: int
    headers: dict[str, str]
    body: bytes


def _parse_time(value: str) -> datetime.datetime | None:
    try:
        when = datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return when if when.tzinfo else when.replace(tzinfo=datetime.timezone.utc)


def _sdk_error(op: str, err: typing.Any) -> dict:
    """A memoized error in the SDK's shape (the engine's own timeout error is named as
    Inngest names it)."""
    if not isinstance(err, dict):
        return {"name": "Error", "message": str(err), "stack": None}
    if op == "invoke" and err.get("name") == "InvokeTimeoutError":
        return {"name": "InngestInvokeTimeoutError",
                "message": "Timed out waiting for invoked function to complete",
                "stack": None}
    return {"name": err.get("name") or "Error", "message": err.get("message") or "",
            "stack": err.get("stack") or None}


def sdk_steps(memos: typing.Iterable[tuple[str, typing.Any]]) -> dict[str, typing.Any]:
    """A run's memo table as the ``steps`` of a call request."""
    out: dict[str, typing.Any] = {}
    for full_id, memo in memos:
        op, ok, value = memo
        out[full_id] = {"data": value} if ok else {"error": _sdk_error(op, value)}
    return out


class RemoteExecutor:
    """Runs synced functions over HTTP (see the module docstring)."""

    def __init__(self, *, signing_key: str | None = None, timeout: float = 60.0,
                 server_kind: str = "dev", max_threads: int = 32) -> None:
        self.signing_key = signing_key
        self.timeout = timeout
        self.server_kind = server_kind
        self.registry: Registry | None = None
        self._pool = concurrent.futures.ThreadPoolExecutor(
            max_threads, thread_name_prefix="inngest_do-dev-http")
        self._lock = threading.Lock()
        # The only per-run state kept here: requests in flight, so a cancel can drop them.
        # A step's display name and the error body an app answered with are kept with the
        # run (``run.keys``, saved with it), so they cost nothing once it is forgotten and
        # survive a restart.
        #: run id -> the futures of its requests to apps now in flight
        self.in_flight: dict[str, set[asyncio.Future[typing.Any]]] = {}

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    def cancel_in_flight(self, run: RunState) -> None:
        """``run`` was cancelled: abandon its requests in flight (any thread), so the run
        is cancelled now rather than when the app answers (whose answer is dropped)."""
        with self._lock:
            futures = list(self.in_flight.get(run.id, ()))
        for fut in futures:
            fut.get_loop().call_soon_threadsafe(fut.cancel)

    def handler_for(self, fn_id: str) -> typing.Callable[[Context], typing.Awaitable[typing.Any]]:
        async def remote_handler(ctx: Context) -> typing.Any:
            return await self.run(fn_id, ctx)

        remote_handler.__qualname__ = remote_handler.__name__ = f"remote:{fn_id}"
        return remote_handler

    # the call loop ---------------------------------------------------------------------------
    async def run(self, fn_id: str, ctx: Context) -> typing.Any:
        assert self.registry is not None
        fn = self.registry.get(fn_id)
        if fn is None:
            raise errors.NonRetriableError(f"function '{fn_id}' is not synced")
        ex: Execution = ctx.step._ex
        run = ex.run
        # Inngest's executor lets the SDK run the step after a parallel group at once (the
        # SDK's own tests count on it), so discovery calls never disable immediate execution.
        disable_immediate = False
        # the answer to a discovery a RACE group already made after its last step landed
        known: tuple[typing.Any] | list[dict] | Exception | None = None
        while True:
            # Hashed ids are unique per run; the engine's reuse suffixes must not apply.
            run.memos.reset_counter()
            if known is not None:
                result, known = known, None
            else:
                answer = await self.call(fn, ex, step_id=None,
                                         disable_immediate=disable_immediate)
                result = self._classify(fn, run.id, answer, step_id=None)
            if isinstance(result, Exception):
                _note_error(run, result)
                raise result
            if not isinstance(result, list):
                return result[0]
            ops = result
            try:
                if len(ops) == 1 and not _is_race(ops[0]):
                    await self._op(fn, ctx, ops[0], disable_immediate)
                elif any(_is_race(op) for op in ops) and all(_is_step(op) for op in ops):
                    known = await self._race(fn, ctx, ops, disable_immediate)
                else:
                    mode = ParallelMode.RACE if any(_is_race(op) for op in ops) \
                        else ParallelMode.WAIT
                    children = tuple(functools.partial(self._child, fn, ctx, op)
                                     for op in ops)
                    await ctx.group.parallel(children, mode)
            except _FunctionLevel as signal:
                _note_error(run, signal.error)
                raise signal.error from None
            except errors.StepError:
                pass  # recorded; the app raises it inside the function on the next call

    async def _race(self, fn: RemoteFunction, ctx: Context, ops: list[dict],
                    disable_immediate: bool) -> tuple[typing.Any] | list[dict] | Exception:
        """A RACE group of step ops, run as Inngest runs it: each planned step is requested
        at once (the requests run together on the thread pool); whenever one lands it is
        recorded and the app is asked again, and the steps it plans that this group has not
        started yet (a branch's next step) are requested at once, without waiting for the
        other branches' steps in flight. Ends when nothing is in flight; returns the answer
        to the last discovery, which came after the last step landed (so the caller needs
        no discovery of its own).

        The engine's ``group.parallel`` cannot do this: its driver runs one branch at a
        time while that branch awaits I/O, so a slow branch's request would hold up the
        fast branch's next step. Here the steps are recorded one at a time as they land,
        through ``ctx.step.run`` (memos, retries and cancellation as for any step)."""
        ex: Execution = ctx.step._ex
        run = ex.run
        started: set[str] = set()
        in_flight: dict[asyncio.Future[typing.Any], dict] = {}
        landed: list[dict] = []
        result: tuple[typing.Any] | list[dict] | Exception = ops
        try:
            while True:
                for op in result if isinstance(result, list) else ():
                    sid = op["id"]
                    if sid in started or not _is_step(op):
                        continue  # in flight or recorded already; other ops: the caller's
                    started.add(sid)
                    if op.get("op") == "StepPlanned":
                        in_flight[asyncio.ensure_future(self.call(
                            fn, ex, step_id=sid, disable_immediate=True))] = op
                    else:
                        landed.append(op)  # the SDK ran it already
                if not landed:
                    if not in_flight:
                        return result
                    done, _ = await asyncio.wait(in_flight,
                                                 return_when=asyncio.FIRST_COMPLETED)
                    # in the order they were started, so that recording order is stable
                    for fut in [f for f in in_flight if f in done]:
                        landed.append({**in_flight.pop(fut), "_answer": fut})
                # one step at a time, each followed by a discovery, as Inngest does
                op = landed.pop(0)
                run.memos.reset_counter()
                try:
                    await self._op(fn, ctx, op, True)
                except errors.StepError:
                    pass  # recorded; the app raises it inside the function
                run.memos.reset_counter()
                answer = await self.call(fn, ex, step_id=None,
                                         disable_immediate=disable_immediate)
                result = self._classify(fn, run.id, answer, step_id=None)
                if not isinstance(result, list):
                    # The function's output or error; should steps of the group still be
                    # in flight (the app finished without them), the run ends with that
                    # answer and theirs are dropped, as Inngest does.
                    return result
        finally:
            for fut in in_flight:
                if fut.done() and not fut.cancelled():
                    fut.exception()  # dropped with the run's answer; not worth a warning
                fut.cancel()

    async def _child(self, fn: RemoteFunction, ctx: Context, op: dict) -> None:
        try:
            await self._op(fn, ctx, op, True)
        except errors.StepError:
            pass

    async def _op(self, fn: RemoteFunction, ctx: Context, op: dict, planned: bool) -> None:
        sid = op["id"]
        name = op.get("displayName") or op.get("name") or sid
        names = ctx.step._ex.run.keys.setdefault("step_names", {})
        if names.get(sid) != name:
            names[sid] = str(name)
        opcode = op.get("op")
        opts = op.get("opts") or {}
        if opcode in ("StepRun", "StepError", "StepFailed"):
            await ctx.step.run(sid, self._step_body(fn, ctx, sid, first=op))
        elif opcode == "StepPlanned":
            await ctx.step.run(sid, self._step_body(fn, ctx, sid, first=None,
                                                    answer=op.get("_answer")))
        elif opcode == "Sleep":
            until = _parse_time(str(op.get("name") or ""))
            if until is None:
                duration = opts.get("duration") or op.get("name")
                try:
                    ms = parse_duration_str(str(duration), what=f"Sleep step '{name}'")
                except ValueError as err:
                    raise _FunctionLevel(errors.NonRetriableError(
                        f"app sent a Sleep op without a valid time: {err}")) from None
                await ctx.step.sleep(sid, ms)
            else:
                await ctx.step.sleep_until(sid, until)
        elif opcode == "WaitForEvent":
            event = opts.get("event") or op.get("name")
            try:
                ms = parse_duration_str(str(opts.get("timeout")), what="WaitForEvent timeout")
            except ValueError as err:
                raise _FunctionLevel(errors.NonRetriableError(
                    f"app sent a WaitForEvent op without a valid timeout: {err}")) from None
            await ctx.step.wait_for_event(sid, event=str(event), if_exp=opts.get("if") or None,
                                          timeout=ms)
        elif opcode == "InvokeFunction":
            target = str(opts.get("function_id") or "")
            payload = opts.get("payload") or {}
            timeout = opts.get("timeout")
            app_id, _, local = target.partition("-")
            ms = None
            if timeout:
                try:
                    ms = parse_duration_str(str(timeout), what="InvokeFunction timeout")
                except ValueError as err:
                    raise _FunctionLevel(errors.NonRetriableError(str(err))) from None
            await ctx.step.invoke_by_id(sid, app_id=app_id, function_id=local,
                                        data=payload.get("data") or {}, timeout=ms)
        elif opcode == "AIGateway":
            await ctx.step.run(sid, functools.partial(self._ai_request, opts))
        else:
            raise _FunctionLevel(errors.NonRetriableError(
                f"app '{fn.app.id}' answered with unknown opcode {opcode!r} for step "
                f"'{name}' of function '{fn.id}'"))

    def _step_body(self, fn: RemoteFunction, ctx: Context, sid: str, first: dict | None,
                   answer: asyncio.Future[Answer | Exception] | None = None,
                   ) -> typing.Callable[[], typing.Awaitable[typing.Any]]:
        """The step's body: its first attempt is ``first`` (a result the SDK sent) or
        ``answer`` (a request already made); later attempts POST ``?stepId=``."""
        pending = [first] if first is not None else []
        requested = [answer] if answer is not None else []
        ex: Execution = ctx.step._ex

        async def body() -> typing.Any:
            if pending:
                return self._step_result(fn, pending.pop(), headers={})
            if requested:
                answer = requested.pop().result()
            else:
                answer = await self.call(fn, ex, step_id=sid, disable_immediate=True)
            result = self._classify(fn, ex.run.id, answer, step_id=sid)
            if isinstance(result, Exception):
                raise _FunctionLevel(result)
            if not isinstance(result, list):
                raise RemoteError(f"app '{fn.app.id}' finished function '{fn.id}' when asked "
                                  f"to run step {sid}", name="StepUnexpectedError")
            for op in result:
                if op.get("id") == sid:
                    return self._step_result(fn, op, answer.headers)
            raise RemoteError(f"app '{fn.app.id}' did not run step {sid} of '{fn.id}' when "
                              f"asked to (answered {[op.get('op') for op in result]})",
                              name="StepUnexpectedError")

        return body

    @staticmethod
    def _step_result(fn: RemoteFunction, op: dict, headers: dict[str, str]) -> typing.Any:
        opcode = op.get("op")
        if opcode == "StepRun":
            return op.get("data")
        if opcode in ("StepError", "StepFailed"):
            err = op.get("error") or {}
            if not isinstance(err, dict):
                err = {"message": str(err)}
            final = opcode == "StepFailed" or headers.get("x-inngest-no-retry") == "true" \
                or err.get("code") == "step_nested"
            raise RemoteError(str(err.get("message") or ""), name=str(err.get("name") or "Error"),
                              stack=err.get("stack"), retriable=not final, body=err)
        raise RemoteError(f"app answered {opcode!r} where a step result was expected",
                          name="StepUnexpectedError")

    async def _ai_request(self, opts: dict) -> typing.Any:
        url = opts.get("url")
        if not isinstance(url, str):
            raise errors.NonRetriableError("AIGateway op without a url")
        headers = {"Content-Type": "application/json"}
        for key, value in (opts.get("headers") or {}).items():
            headers[_canonical_header(str(key))] = str(value)
        if opts.get("auth_key"):
            # Anthropic takes its key in X-Api-Key; OpenAI-style APIs a bearer token.
            if opts.get("format") == "anthropic":
                headers.setdefault("X-Api-Key", str(opts["auth_key"]))
                headers.setdefault("Anthropic-Version", "2023-06-01")
            else:
                headers.setdefault("Authorization", f"Bearer {opts['auth_key']}")
        body = json.dumps(opts.get("body") or {}).encode()
        loop = asyncio.get_running_loop()
        answer = await loop.run_in_executor(self._pool, _http_post, url, body, headers,
                                            self.timeout)
        if answer.status >= 400:
            raise RemoteError(f"AI request to {url} failed with status {answer.status}: "
                              f"{answer.body[:200]!r}")
        try:
            return json.loads(answer.body)
        except ValueError:
            raise RemoteError(f"AI request to {url} answered non-JSON") from None

    # one HTTP call ---------------------------------------------------------------------------
    def request_body(self, fn: RemoteFunction, ex: Execution, *,
                     disable_immediate: bool) -> dict:
        run = ex.run
        steps = sdk_steps(run.memos.items())
        events = run.events
        return {
            "event": events[0] if events else {},
            "events": events,
            "steps": steps,
            "ctx": {
                "run_id": run.id,
                "attempt": ex.ctx.attempt,
                "max_attempts": fn.retries + 1,
                "fn_id": fn.id,
                "disable_immediate_execution": disable_immediate,
                "use_api": False,
                "stack": {"stack": list(steps), "current": len(steps)},
            },
            "use_api": False,
            "version": 1,
        }

    async def call(self, fn: RemoteFunction, ex: Execution, *, step_id: str | None,
                   disable_immediate: bool) -> Answer | Exception:
        payload = self.request_body(fn, ex, disable_immediate=disable_immediate)
        body = json.dumps(payload, allow_nan=False).encode()
        if len(body) > USE_API_BYTES:
            # Too big for many frameworks' request limits (Django's is 2.5 MB): as Inngest
            # does, send a trimmed request and let the SDK fetch events and memos from
            # GET /v0/runs/{id}/batch and /actions.
            payload.update(events=[], steps={}, use_api=True)
            payload["ctx"]["use_api"] = True
            if len(json.dumps(payload["event"])) > USE_API_BYTES // 2:
                payload["event"] = {"name": payload["event"].get("name", ""), "data": {}}
            body = json.dumps(payload, allow_nan=False).encode()
        query = urllib.parse.urlencode({"fnId": fn.id, "stepId": step_id or "step"})
        url = fn.url + ("&" if "?" in fn.url else "?") + query
        headers = {**SDK_HEADERS, "x-inngest-server-kind": self.server_kind}
        if self.signing_key:
            headers["x-inngest-signature"] = signing.sign(body, self.signing_key)
        loop = asyncio.get_running_loop()
        run = ex.run
        if run.cancel_requested:
            raise CancelRun()
        fut = loop.run_in_executor(self._pool, _http_post, url, body, headers, self.timeout)
        with self._lock:
            self.in_flight.setdefault(run.id, set()).add(fut)
        try:
            answer = await fut
            if run.cancel_requested:
                # Cancelled while the app worked: its answer is dropped, as Inngest does.
                raise CancelRun()
            return answer
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if run.cancel_requested and not (task is not None and task.cancelling()):
                # cancel_in_flight abandoned the request: the run is cancelled now.
                raise CancelRun() from None
            raise
        except TimeoutError:
            return RemoteError(f"app '{fn.app.id}' did not answer within {self.timeout:g} s "
                               f"({url})", name="AppTimeoutError")
        except OSError as err:
            return RemoteError(f"could not reach app '{fn.app.id}' at {url}: {err}",
                               name="AppUnreachableError")
        finally:
            with self._lock:
                futures = self.in_flight.get(run.id)
                if futures is not None:
                    futures.discard(fut)
                    if not futures:
                        del self.in_flight[run.id]

    def _classify(self, fn: RemoteFunction, run_id: str, answer: Answer | Exception,
                  step_id: str | None) -> tuple[typing.Any] | list[dict] | Exception:
        """An answer -> ``(output,)``, a list of ops, or the error to raise."""
        if isinstance(answer, Exception):
            log.error("inngest-do dev: run %s: %s", run_id, answer)
            return answer
        status, headers, raw = answer
        where = f"app '{fn.app.id}' (function '{fn.id}', run {run_id})"
        if self.signing_key and status < 500:
            problem = signing.verify(raw, headers.get("x-inngest-signature"), self.signing_key)
            if problem:
                err = RemoteError(f"{where}: response signature rejected: {problem}",
                                  name="SigVerificationFailedError")
                log.error("inngest-do dev: %s", err)
                return err
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            err = RemoteError(f"{where} answered status {status} with a body that is not "
                              f"JSON: {raw[:200]!r}", name="BodyInvalidError")
            log.error("inngest-do dev: %s", err)
            return err
        if status == 201 and isinstance(body, dict) and "status" in body and "body" in body:
            # a streamed answer: the real one is inside
            inner = body.get("body")
            headers = {**headers, **{k.lower(): str(v) for k, v in
                                     (body.get("headers") or {}).items()}}
            return self._classify(fn, run_id, Answer(int(body["status"]), headers,
                                                     (inner or "").encode()), step_id)
        if status == 200:
            return (body,)
        if status == 206:
            if not isinstance(body, list) or not all(
                    isinstance(op, dict) and isinstance(op.get("id"), str) for op in body):
                err = RemoteError(f"{where} answered 206 without a list of ops: "
                                  f"{raw[:200]!r}", name="BodyInvalidError")
                log.error("inngest-do dev: %s", err)
                return err
            if not body:
                return RemoteError(f"{where} answered 206 with no ops",
                                   name="BodyInvalidError")
            return body
        if status >= 400:
            info = body if isinstance(body, dict) else {"message": str(body)}
            no_retry = headers.get("x-inngest-no-retry") == "true"
            err = RemoteError(str(info.get("message") or f"status {status}"),
                              name=str(info.get("name") or "Error"), stack=info.get("stack"),
                              retriable=not no_retry, body=info)
            # as Inngest words it in the inngest/function.failed event
            err.extra_details["error"] = f"invalid status code: {status}"
            err.app_body = info
            retry_at = headers.get("retry-after")
            if retry_at and not no_retry:
                when = _parse_time(retry_at)
                if when is None and retry_at.isdigit():
                    return RemoteRetryAfter(err, int(retry_at) * 1000)
                if when is not None:
                    return RemoteRetryAfter(err, when)
            return err
        err = RemoteError(f"{where} answered unexpected status {status}: {raw[:200]!r}",
                          name="BodyInvalidError")
        log.error("inngest-do dev: %s", err)
        return err


def _note_error(run: RunState, err: BaseException) -> None:
    """Keep the error body the app answered with (a failed run's output) with the run, or
    forget an older one when this attempt failed otherwise."""
    source = getattr(err, "source", err)
    body = getattr(source, "app_body", None)
    if body is not None:
        run.keys["app_error"] = body
    else:
        run.keys.pop("app_error", None)


def _canonical_header(name: str) -> str:
    """``x-my-header`` -> ``X-My-Header`` (as Inngest's Go gateway sends header names)."""
    return "-".join(part[:1].upper() + part[1:].lower() for part in name.split("-"))


def _is_step(op: dict) -> bool:
    """A ``step.run`` op: planned, or already run by the SDK."""
    return op.get("op") in ("StepPlanned", "StepRun", "StepError", "StepFailed")


def _is_race(op: dict) -> bool:
    return (op.get("opts") or {}).get("parallelMode") == "race"


def _http_post(url: str, body: bytes, headers: dict[str, str], timeout: float) -> Answer:
    """POST ``body`` to ``url`` (blocking; runs on the executor's threads)."""
    parts = urllib.parse.urlsplit(url)
    conn_cls = http.client.HTTPSConnection if parts.scheme == "https" else \
        http.client.HTTPConnection
    conn = conn_cls(parts.hostname or "127.0.0.1", parts.port, timeout=timeout)
    try:
        path = parts.path or "/"
        if parts.query:
            path += "?" + parts.query
        conn.request("POST", path, body=body, headers=headers)
        res = conn.getresponse()
        data = res.read()
        return Answer(res.status, {k.lower(): v for k, v in res.getheaders()}, data)
    finally:
        conn.close()
