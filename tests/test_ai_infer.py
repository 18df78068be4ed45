"""step.ai.infer over real loopback HTTP: each adapter's request, recorded results, error
mapping, and the key kept out of everything the engine writes."""

from __future__ import annotations

import datetime
import logging
import pathlib
import threading

import pytest
from fake_provider import DEFAULT_REPLY, FakeProvider, Recorded
from helpers import SEC, ev, only_run

import inngest_do as inngest
from inngest_do import step_ai
from inngest_do.experimental import ai
from inngest_do.testing import AIResponse, Simulation

KEY = "sk-test-SECRET-0123456789"


@pytest.fixture
def provider() -> FakeProvider:
    with FakeProvider() as p:
        yield p


def _infer_fn(client: inngest.Inngest, adapter: ai.BaseAdapter, body: dict, *,
              sync: bool = False, retries: int = 0) -> inngest.Function:
    if sync:
        @client.create_function(fn_id="infer", trigger=inngest.TriggerEvent(event="go"),
                                retries=retries)
        def fn_sync(ctx: inngest.ContextSync) -> object:
            return ctx.step.ai.infer("ask", adapter=adapter, body=dict(body))

        return fn_sync

    @client.create_function(fn_id="infer", trigger=inngest.TriggerEvent(event="go"),
                            retries=retries)
    async def fn(ctx: inngest.Context) -> object:
        return await ctx.step.ai.infer("ask", adapter=adapter, body=dict(body))

    return fn


# -- each adapter's request ------------------------------------------------------------------
@pytest.mark.parametrize("sync", [False, True], ids=["async", "sync"])
@pytest.mark.parametrize(("module", "path"), [
    (ai.openai, "/v1/chat/completions"),
    (ai.grok, "/v1/chat/completions"),
    (ai.deepseek, "/v1/chat/completions"),
])
def test_openai_format_adapters(client: inngest.Inngest, provider: FakeProvider,
                                module: object, path: str, sync: bool) -> None:
    adapter = module.Adapter(auth_key=KEY, model="m-1", base_url=provider.origin + "/v1/",
                             headers={"x-my-header": "mine"})
    _infer_fn(client, adapter, {"messages": [{"role": "user", "content": "hi"}]}, sync=sync)
    sim = Simulation(client)
    sim.send(ev())
    run = only_run(sim)
    assert run.status == "Completed" and run.output == DEFAULT_REPLY
    [req] = provider.requests
    assert (req.method, req.path, req.query) == ("POST", path, {})
    assert req.headers["authorization"] == f"Bearer {KEY}"
    assert req.headers["x-my-header"] == "mine"
    assert req.headers["content-type"] == "application/json"
    assert req.body == {"messages": [{"role": "user", "content": "hi"}], "model": "m-1"}


def test_anthropic_adapter(client: inngest.Inngest, provider: FakeProvider) -> None:
    # The SDK's own ai_infer case: custom headers, model filled in by on_call.
    adapter = ai.anthropic.Adapter(auth_key=KEY, base_url=f"{provider.origin}/v1",
                                   headers={"x-my-header": "my-value"},
                                   model="claude-3-5-sonnet-latest")
    provider.reply = {"id": "msg_1", "type": "message", "content": [{"type": "text",
                                                                     "text": "Hi there!"}]}
    _infer_fn(client, adapter, {"messages": [{"role": "user", "content": "Say hi"}],
                                "max_tokens": 100})
    sim = Simulation(client)
    sim.send(ev())
    assert only_run(sim).output == provider.reply
    [req] = provider.requests
    assert req.path == "/v1/messages"
    assert req.headers["x-api-key"] == KEY and "authorization" not in req.headers
    assert req.headers["x-my-header"] == "my-value"
    # custom headers replaced the adapter's default; the engine still sends a version
    assert req.headers["anthropic-version"] == "2023-06-01"
    assert req.body == {"messages": [{"role": "user", "content": "Say hi"}],
                        "max_tokens": 100, "model": "claude-3-5-sonnet-latest"}


def test_anthropic_default_headers() -> None:
    adapter = ai.anthropic.Adapter(auth_key=KEY, model="c")
    assert adapter.headers() == {"anthropic-version": "2023-06-01"}
    assert adapter.url_infer() == "https://api.anthropic.com/v1/messages"
    assert adapter.format() == "anthropic"


def test_gemini_key_travels_as_a_header(client: inngest.Inngest, provider: FakeProvider,
                                        caplog: pytest.LogCaptureFixture) -> None:
    adapter = ai.gemini.Adapter(auth_key=KEY, model="gemini-2.0-flash",
                                base_url=provider.origin + "/v1beta/")
    # As in the SDK, the adapter's URL carries the key ...
    assert adapter.url_infer().endswith(f"/models/gemini-2.0-flash:generateContent?key={KEY}")
    _infer_fn(client, adapter, {"contents": [{"parts": [{"text": "hi"}]}]})
    sim = Simulation(client)
    with caplog.at_level(logging.DEBUG):
        sim.send(ev())
    assert only_run(sim).status == "Completed"
    [req] = provider.requests
    # ... but the engine sends it as Google's header, so no logged URL holds it.
    assert req.path == "/v1beta/models/gemini-2.0-flash:generateContent"
    assert req.query == {}
    assert req.headers["x-goog-api-key"] == KEY and "authorization" not in req.headers
    assert req.body["model"] == "gemini-2.0-flash"
    assert "generateContent" in caplog.text  # httpx logged the request line
    assert KEY not in caplog.text


class _Custom:
    """A user's own adapter for some compatible provider (the protocol, no base class)."""

    def __init__(self, url: str) -> None:
        self.url = url

    def auth_key(self) -> str:
        return ""

    def format(self) -> str:
        return "openai-chat"

    def headers(self) -> dict[str, str]:
        return {"api-key": "azure-style"}

    def on_call(self, body: dict[str, object]) -> None:
        body["stream"] = False

    def url_infer(self) -> str:
        return self.url + "/deployments/x/chat/completions?api-version=2024-06-01"


def test_custom_adapter(client: inngest.Inngest, provider: FakeProvider) -> None:
    adapter = _Custom(provider.origin)
    assert isinstance(adapter, ai.BaseAdapter)
    _infer_fn(client, adapter, {"messages": []})
    sim = Simulation(client)
    sim.send(ev())
    assert only_run(sim).status == "Completed"
    [req] = provider.requests
    assert req.query == {"api-version": ["2024-06-01"]}
    assert req.headers["api-key"] == "azure-style" and "authorization" not in req.headers
    assert req.body == {"messages": [], "stream": False}


# -- recorded results --------------------------------------------------------------------------
@pytest.mark.parametrize("sync", [False, True], ids=["async", "sync"])
def test_replay_and_restart_never_call_again(tmp_path: pathlib.Path, provider: FakeProvider,
                                             sync: bool) -> None:
    client = inngest.Inngest(app_id="app", store=str(tmp_path / "ai.db"))
    adapter = ai.openai.Adapter(auth_key=KEY, model="m", base_url=provider.origin)
    seen: list[object] = []
    if sync:
        @client.create_function(fn_id="f", trigger=inngest.TriggerEvent(event="go"))
        def fn_sync(ctx: inngest.ContextSync) -> object:
            out = ctx.step.ai.infer("ask", adapter=adapter, body={"messages": []})
            ctx.step.sleep("nap", datetime.timedelta(hours=1))
            seen.append(out)
            return out
    else:
        @client.create_function(fn_id="f", trigger=inngest.TriggerEvent(event="go"))
        async def fn(ctx: inngest.Context) -> object:
            out = await ctx.step.ai.infer("ask", adapter=adapter, body={"messages": []})
            await ctx.step.sleep("nap", datetime.timedelta(hours=1))
            seen.append(out)
            return out

    sim = Simulation(client)
    sim.send(ev())
    assert len(provider.requests) == 1
    sim.crash()  # the process dies while the run sleeps
    sim.advance(datetime.timedelta(hours=1))
    run = only_run(sim)
    assert run.status == "Completed" and run.output == DEFAULT_REPLY
    assert seen == [DEFAULT_REPLY]
    assert len(provider.requests) == 1  # the recorded answer came back from the file
    assert "ask" in run.steps


# -- errors -----------------------------------------------------------------------------------
def _scripted(*answers: tuple[int, object, dict[str, str]]) -> FakeProvider:
    queue = list(answers)
    return FakeProvider(lambda rec: queue.pop(0) if queue else (200, DEFAULT_REPLY, {}))


def test_429_retries_after_its_retry_after(client: inngest.Inngest) -> None:
    with _scripted((429, {"error": {"message": "slow down"}}, {"Retry-After": "7"})) as p:
        adapter = ai.openai.Adapter(auth_key=KEY, model="m", base_url=p.origin)
        _infer_fn(client, adapter, {"messages": []}, retries=2)
        sim = Simulation(client)
        sim.send(ev())
        run = only_run(sim)
        assert run.status == "Running" and len(p.requests) == 1
        [failed] = [e for e in run.history if e.kind == "step.failed"]
        assert failed.detail["retry_at_ms"] == sim.now_ms + 7 * SEC  # no backoff, no jitter
        assert "HTTP 429" in failed.detail["error"] and "slow down" in failed.detail["error"]
        sim.advance(7 * SEC - 1)
        assert len(p.requests) == 1
        sim.advance(1)
        assert len(p.requests) == 2
        assert only_run(sim).status == "Completed"


def test_retry_after_ms_and_http_dates() -> None:
    assert step_ai._retry_after_ms({"retry-after-ms": "1500", "Retry-After": "9"}) == 1500
    assert step_ai._retry_after_ms({"Retry-After": "2.5"}) == 2500
    # an HTTP date is measured from the response's own Date header
    assert step_ai._retry_after_ms({"Retry-After": "Wed, 21 Oct 2015 07:28:30 GMT",
                                    "Date": "Wed, 21 Oct 2015 07:28:00 GMT"}) == 30_000
    assert step_ai._retry_after_ms({"Retry-After": "soon"}) is None
    assert step_ai._retry_after_ms({}) is None


@pytest.mark.parametrize("status", [500, 502, 503, 529])
def test_5xx_is_a_failed_attempt_with_backoff(client: inngest.Inngest, status: int) -> None:
    with _scripted((status, {"error": "overloaded"}, {})) as p:
        adapter = ai.anthropic.Adapter(auth_key=KEY, model="c", base_url=p.origin)
        _infer_fn(client, adapter, {"messages": []}, retries=1)
        sim = Simulation(client)
        sim.send(ev())
        [failed] = [e for e in only_run(sim).history if e.kind == "step.failed"]
        assert f"HTTP {status}" in failed.detail["error"]
        assert 15 * SEC <= failed.detail["retry_at_ms"] - sim.now_ms <= 45 * SEC
        sim.run_until_idle()
        assert only_run(sim).status == "Completed" and len(p.requests) == 2


def test_4xx_fails_at_once_with_status_and_body(client: inngest.Inngest) -> None:
    body = {"error": {"message": "Incorrect API key provided: " + KEY, "type": "auth"}}
    caught: list[inngest.StepError] = []
    with _scripted((401, body, {})) as p:
        adapter = ai.openai.Adapter(auth_key=KEY, model="m", base_url=p.origin)

        @client.create_function(fn_id="f", trigger=inngest.TriggerEvent(event="go"),
                                retries=5)
        async def fn(ctx: inngest.Context) -> str:
            try:
                await ctx.step.ai.infer("ask", adapter=adapter, body={"messages": []})
            except inngest.StepError as err:
                caught.append(err)
                raise
            return "unreachable"

        sim = Simulation(client)
        sim.send(ev())
    run = only_run(sim)
    assert run.status == "Failed" and len(p.requests) == 1
    [err] = caught
    assert err.name == "NonRetriableError"
    assert "HTTP 401" in err.message and "Incorrect API key provided" in err.message
    assert f"{p.origin}/chat/completions" in err.message
    assert KEY not in err.message and "[redacted]" in err.message
    assert KEY not in repr(run) and KEY not in repr(sim.trace)


def test_connection_error_is_retried(client: inngest.Inngest) -> None:
    with FakeProvider() as p:
        dead = p.origin  # nothing listens there once the provider stops
    adapter = ai.openai.Adapter(auth_key=KEY, model="m", base_url=dead)
    _infer_fn(client, adapter, {"messages": []}, retries=1)
    sim = Simulation(client)
    sim.send(ev())
    [failed] = [e for e in only_run(sim).history if e.kind == "step.failed"]
    assert "cannot reach" in failed.detail["error"] and "ConnectError" in failed.detail["error"]
    sim.run_until_idle()
    run = only_run(sim)
    assert run.status == "Failed" and "ConnectError" in run.error.message


def test_timeout_is_retried(client: inngest.Inngest, monkeypatch: pytest.MonkeyPatch) -> None:
    release = threading.Event()

    def stall(rec: Recorded) -> tuple[int, object, dict[str, str]]:
        release.wait(timeout=10)  # bounded: the client gives up long before
        return 200, DEFAULT_REPLY, {}

    monkeypatch.setattr(step_ai, "TIMEOUT_S", 0.2)
    step_ai._clients.clear()
    try:
        with FakeProvider(stall) as p:
            adapter = ai.openai.Adapter(auth_key=KEY, model="m", base_url=p.origin)
            _infer_fn(client, adapter, {"messages": []}, retries=1)
            sim = Simulation(client)
            sim.send(ev())
            release.set()
            [failed] = [e for e in only_run(sim).history if e.kind == "step.failed"]
            assert "timed out" in failed.detail["error"]
    finally:
        step_ai._clients.clear()


def test_non_json_success_is_a_failed_attempt(client: inngest.Inngest) -> None:
    with _scripted((200, "<html>gateway</html>", {})) as p:
        adapter = ai.openai.Adapter(auth_key=KEY, model="m", base_url=p.origin)
        _infer_fn(client, adapter, {"messages": []}, retries=1)
        sim = Simulation(client)
        sim.send(ev())
        [failed] = [e for e in only_run(sim).history if e.kind == "step.failed"]
        assert "not JSON" in failed.detail["error"]
        sim.run_until_idle()
        assert only_run(sim).status == "Completed"


# -- the key stays out of everything ----------------------------------------------------------
def test_key_is_nowhere_in_the_store_file(tmp_path: pathlib.Path,
                                          caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "keys.db"
    client = inngest.Inngest(app_id="app", store=str(path))
    answers = [(500, {"error": "echo " + KEY}, {}), (200, {"echo": KEY, "ok": True}, {})]
    with FakeProvider(lambda rec: answers.pop(0)) as p:
        adapters = [ai.openai.Adapter(auth_key=KEY, model="m", base_url=p.origin),
                    ai.gemini.Adapter(auth_key=KEY, model="g", base_url=p.origin)]

        @client.create_function(fn_id="f", trigger=inngest.TriggerEvent(event="go"))
        async def fn(ctx: inngest.Context) -> object:
            out = await ctx.step.ai.infer("a", adapter=adapters[0], body={"messages": []})
            try:
                await ctx.step.ai.infer("b", adapter=adapters[1], body={"contents": []})
            except inngest.StepError as err:
                return {"first": out, "second": err.message}
            return out

        with caplog.at_level(logging.DEBUG):
            sim = Simulation(client)
            sim.send(ev())
            sim.run_until_idle()
            run = only_run(sim)
            assert run.status == "Completed"
            assert run.output["first"] == {"echo": "[redacted]", "ok": True}
    sim.engine.store.close()
    for f in tmp_path.iterdir():
        assert KEY.encode() not in f.read_bytes(), f.name
    assert KEY not in repr(sim.trace) and KEY not in repr(run)
    assert KEY not in caplog.text
    assert KEY not in repr(adapters)


# -- stubs and bad input ----------------------------------------------------------------------
def test_stub_ai_needs_no_server(client: inngest.Inngest) -> None:
    adapter = ai.openai.Adapter(auth_key=KEY, model="m")  # the real URL: never contacted
    bodies: list[dict] = []

    @client.create_function(fn_id="f", trigger=inngest.TriggerEvent(event="go"), retries=1)
    async def fn(ctx: inngest.Context) -> list:
        a = await ctx.step.ai.infer("plan", adapter=adapter, body={"messages": ["x"]})
        b = await ctx.step.ai.infer("answer", adapter=adapter, body={"messages": ["y"]})
        return [a, b]

    sim = Simulation(client)
    sim.stub_ai({"fixed": True})
    sim.stub_ai(lambda body: bodies.append(body) or {"echo": body["messages"]},
                step_id="answer")
    sim.send(ev())
    assert only_run(sim).output == [{"fixed": True}, {"echo": ["y"]}]
    assert bodies == [{"messages": ["y"], "model": "m"}]


def test_stub_ai_status_maps_like_a_real_answer(client: inngest.Inngest) -> None:
    adapter = ai.openai.Adapter(auth_key=KEY, model="m")
    answers = [AIResponse(429, {"error": "rate"}, {"retry-after": "3"}), {"ok": 1}]
    _infer_fn(client, adapter, {"messages": []}, retries=3)
    sim = Simulation(client)
    sim.stub_ai(lambda body: answers.pop(0))
    sim.send(ev())
    [failed] = [e for e in only_run(sim).history if e.kind == "step.failed"]
    assert failed.detail["retry_at_ms"] == sim.now_ms + 3 * SEC
    sim.advance(3 * SEC)
    assert only_run(sim).output == {"ok": 1}
    sim2 = Simulation(client)
    sim2.stub_ai(AIResponse(400, {"error": "bad model"}))
    sim2.send(ev())
    assert "bad model" in only_run(sim2).error.message


def test_stub_survives_a_crash_and_fail_step_applies(tmp_path: pathlib.Path) -> None:
    client = inngest.Inngest(app_id="app", store=str(tmp_path / "s.db"))
    adapter = ai.openai.Adapter(auth_key=KEY, model="m")
    calls: list[int] = []
    _infer_fn(client, adapter, {"messages": []}, retries=2)
    sim = Simulation(client)
    sim.stub_ai(lambda body: calls.append(1) or {"n": len(calls)})
    sim.fail_step("ask")
    sim.send(ev())
    assert calls == []  # the injected failure came first
    sim.crash()
    sim.run_until_idle()
    assert only_run(sim).output == {"n": 1}


def test_bad_arguments(client: inngest.Inngest) -> None:
    errors: list[str] = []
    adapter = ai.openai.Adapter(auth_key=KEY, model="m")

    @client.create_function(fn_id="f", trigger=inngest.TriggerEvent(event="go"), retries=0)
    async def fn(ctx: inngest.Context) -> None:
        for kwargs in ({"adapter": object(), "body": {}}, {"adapter": adapter, "body": []},
                       {"adapter": adapter, "body": {"x": object()}}):
            try:
                await ctx.step.ai.infer("x", **kwargs)
            except TypeError as err:
                errors.append(str(err))

    Simulation(client).send(ev())
    assert errors[0].startswith("adapter: expected")
    assert errors[1] == "body: expected a dict, got list"
    assert errors[2].startswith("body: not JSON-serializable")
    with pytest.raises(TypeError, match="model"):
        ai.openai.Adapter(auth_key=KEY, model="")
    with pytest.raises(TypeError, match="auth_key") as info:
        ai.openai.Adapter(auth_key=123, model="m")  # type: ignore[arg-type]
    assert "123" not in str(info.value)
    sim = Simulation(client)
    with pytest.raises(TypeError, match="response"):
        sim.stub_ai(42)  # type: ignore[arg-type]


# -- the wall clock ---------------------------------------------------------------------------
def test_worker_makes_the_call_on_the_wall_clock(provider: FakeProvider) -> None:
    import asyncio
    import time

    client = inngest.Inngest(app_id="w")
    adapter = ai.openai.Adapter(auth_key=KEY, model="m", base_url=provider.origin)

    @client.create_function(fn_id="a", trigger=inngest.TriggerEvent(event="go"))
    async def fn_async(ctx: inngest.Context) -> object:
        return await ctx.step.ai.infer("ask", adapter=adapter, body={"messages": []})

    @client.create_function(fn_id="s", trigger=inngest.TriggerEvent(event="go"))
    def fn_sync(ctx: inngest.ContextSync) -> object:  # runs on a worker thread
        return ctx.step.ai.infer("ask", adapter=adapter, body={"messages": []})

    async def main() -> list[inngest.Run]:
        async with inngest.Worker(client):
            await client.send(ev())
            deadline = time.monotonic() + 20
            while not (len(client.runs()) == 2
                       and all(r.status.is_final for r in client.runs())):
                assert time.monotonic() < deadline, client.runs()
                await asyncio.sleep(0.01)
            return client.runs()

    runs = asyncio.run(asyncio.wait_for(main(), 30))
    assert [(r.status, r.output) for r in runs] == [("Completed", DEFAULT_REPLY)] * 2
    assert len(provider.requests) == 2


def test_infer_inside_a_step_body_is_a_nested_step(client: inngest.Inngest) -> None:
    adapter = ai.openai.Adapter(auth_key=KEY, model="m")

    @client.create_function(fn_id="f", trigger=inngest.TriggerEvent(event="go"), retries=0)
    async def fn(ctx: inngest.Context) -> object:
        async def body() -> object:
            return await ctx.step.ai.infer("inner", adapter=adapter, body={})

        return await ctx.step.run("outer", body)

    sim = Simulation(client)
    sim.stub_ai({"never": "used"})
    sim.send(ev())
    run = only_run(sim)
    assert run.status == "Failed" and "Nested steps are not supported" in run.error.message
