"""Acceptance: issues 8, 10 and 11 walked through as an Inngest SDK user would, with public
names only (the SDK's import paths with ``inngest`` replaced by ``inngest_do``).

Where a name exists in the official SDK (installed as ``inngest`` for the test extra), its
signature is compared with ours by ``inspect.signature``, so a renamed kwarg or a missing export
shows up here. Time is virtual (``Simulation``); HTTP goes through the frameworks' test clients.
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
import importlib
import inspect
import json
import time
import typing

import pytest

import inngest_do as inngest
from inngest_do import errors as inngest_errors
from inngest_do.testing import Simulation

sdk = pytest.importorskip("inngest")


# --------------------------------------------------------------------------- names & signatures
#: module pairs whose public callables must match the SDK's
MODULES = [
    ("inngest", "inngest_do"),
    ("inngest.fast_api", "inngest_do.fast_api"),
    ("inngest.flask", "inngest_do.flask"),
    ("inngest.django", "inngest_do.django"),
    ("inngest.tornado", "inngest_do.tornado"),
    ("inngest.experimental", "inngest_do.experimental"),
    ("inngest.experimental.mocked", "inngest_do.experimental.mocked"),
    ("inngest.experimental.ai", "inngest_do.experimental.ai"),
    ("inngest.experimental.ai.openai", "inngest_do.experimental.ai.openai"),
    ("inngest.experimental.ai.anthropic", "inngest_do.experimental.ai.anthropic"),
    ("inngest.experimental.ai.gemini", "inngest_do.experimental.ai.gemini"),
    ("inngest.experimental.ai.grok", "inngest_do.experimental.ai.grok"),
    ("inngest.experimental.ai.deepseek", "inngest_do.experimental.ai.deepseek"),
    ("inngest.experimental.realtime", "inngest_do.experimental.realtime"),
    ("inngest.experimental.dev_server", "inngest_do.experimental.dev_server"),
]

#: callables whose signatures differ on purpose (README "Where we differ" or internal
#: constructors no user calls): pydantic models (the SDK's show ``*args``), Function's and
#: Step's constructors, the client's extra options, Singleton's default mode, output_type's
#: "not given" default, Context's extra ids, TriggerCron's jitter
SIGNATURE_EXEMPT = {
    "Batch", "Cancel", "Concurrency", "Debounce", "Event", "Priority", "RateLimit",
    "SendEventsResult", "Singleton", "Throttle", "Timeouts", "TriggerCron", "TriggerEvent",
    "Function", "Step", "StepSync", "Inngest", "Context", "ContextSync",
}


def _params(fn: typing.Callable[..., typing.Any]) -> list[tuple[str, str, bool]]:
    sig = inspect.signature(fn)
    return [(p.name, p.kind.name, p.default is inspect.Parameter.empty)
            for p in sig.parameters.values()]


def _public_callables(mod: typing.Any) -> list[str]:
    return [n for n in dir(mod) if not n.startswith("_") and callable(getattr(mod, n))
            and not inspect.ismodule(getattr(mod, n))]


@pytest.mark.parametrize(("ref_name", "our_name"), MODULES)
def test_every_sdk_name_imports_from_the_same_path_with_the_same_signature(
        ref_name: str, our_name: str) -> None:
    ref = importlib.import_module(ref_name)
    ours = importlib.import_module(our_name)
    for name in _public_callables(ref):
        assert hasattr(ours, name), f"{our_name}.{name} is missing"
        if name in SIGNATURE_EXEMPT or name in {"Inngest"}:
            continue
        ref_obj, our_obj = getattr(ref, name), getattr(ours, name)
        if inspect.isclass(ref_obj) and issubclass(ref_obj, Exception) or inspect.isfunction(ref_obj):
            assert _params(ref_obj) == _params(our_obj), f"{our_name}.{name}"


@pytest.mark.parametrize("method", [
    "run", "sleep", "sleep_until", "wait_for_event", "send_event", "invoke", "invoke_by_id"])
@pytest.mark.parametrize("cls", ["Step", "StepSync"])
def test_step_methods_take_the_sdks_arguments(cls: str, method: str) -> None:
    ref = _params(getattr(getattr(sdk, cls), method))
    ours = _params(getattr(getattr(inngest, cls), method))
    # output_type's default differs (documented), its name and kind do not
    assert [p[:2] for p in ref] == [p[:2] for p in ours]


def test_group_parallel_takes_the_sdks_arguments() -> None:
    from inngest._internal.step_lib import group as sdk_group
    assert _params(inngest.Group.parallel) == _params(sdk_group.Group.parallel)
    assert _params(inngest.GroupSync.parallel) == _params(sdk_group.GroupSync.parallel)


def test_client_methods_and_key_properties_match() -> None:
    for method in ("create_function", "send", "send_sync", "set_logger", "add_middleware"):
        ref = {p[0] for p in _params(getattr(sdk.Inngest, method))}
        ours = {p[0] for p in _params(getattr(inngest.Inngest, method))}
        assert ref <= ours, method
    client = inngest.Inngest(app_id="a", signing_key="signkey-prod-abc", event_key="ek",
                             env="branch-1", app_version="1.2")
    assert (client.app_id, client.signing_key, client.event_key, client.env,
            client.app_version) == ("a", "signkey-prod-abc", "ek", "branch-1", "1.2")
    assert inngest.Streaming.FORCE.value == "force"
    assert [m.value for m in inngest.Streaming] == [m.value for m in sdk.Streaming]


def test_error_classes_carry_the_sdks_codes_and_messages() -> None:
    for ours, ref in ((inngest.NonRetriableError("no"), sdk.NonRetriableError("no")),
                      (inngest.RetryAfterError("later", 1000), sdk.RetryAfterError("later", 1000)),
                      (inngest.StepError(message="m", name="N", stack=None),
                       sdk.StepError(message="m", name="N", stack=None))):
        assert ours.code.value == ref.code.value
        assert ours.code.name == ref.code.name
        assert str(ours) == str(ref)
    err = inngest.StepError(message="m", name="ValueError", stack="tb")
    assert (err.message, err.name, err.stack) == ("m", "ValueError", "tb")


def test_step_error_public_api_matches_the_sdks() -> None:
    """StepError sits on a shared base with the dev server's RemoteError; its SDK-facing
    surface (constructor, accessors, code, retriability, base classes) must not move."""
    from inngest._internal import errors as sdk_errors

    assert _params(inngest.StepError) == _params(sdk.StepError)
    ours = inngest.StepError("m", "KeyError", "tb")
    ref = sdk.StepError("m", "KeyError", "tb")
    for attr in ("message", "name", "stack", "is_retriable", "include_stack"):
        assert getattr(ours, attr) == getattr(ref, attr), attr
    assert ours.code.value == ref.code.value
    assert issubclass(inngest.StepError, inngest_errors.Error) and issubclass(
        sdk.StepError, sdk_errors.Error)
    assert isinstance(ours, Exception) and not isinstance(ours, inngest.NonRetriableError)
    public = {n for n in dir(sdk.StepError) if not n.startswith("_")}
    assert public <= {n for n in dir(inngest.StepError) if not n.startswith("_")}


def test_event_round_trips_and_small_api_items() -> None:
    raw = {"name": "shop/order", "data": {"n": 1}, "id": "ev-1", "ts": 1700000000000}
    ev = inngest.Event.from_raw(raw)
    assert isinstance(ev, inngest.Event) and ev.to_dict() == sdk.Event.from_raw(raw).to_dict()
    bad = inngest.Event.from_raw({"data": {}})
    assert isinstance(bad, Exception)  # as the SDK: the error is returned, not raised
    assert inngest.SendEventsResult().ids == [] and inngest.SendEventsResult().error is None
    memos = inngest.StepMemos.from_raw({hashlib.sha1(b"a").hexdigest(): {"data": 1}})
    assert memos.pop(hashed_id=hashlib.sha1(b"a").hexdigest()).data == 1


# ------------------------------------------------------------------------------- registration
def _shop() -> tuple[inngest.Inngest, inngest.Function[typing.Any]]:
    client = inngest.Inngest(app_id="shop")

    @client.create_function(fn_id="double", trigger=inngest.TriggerEvent(event="shop/n"))
    async def double(ctx: inngest.Context) -> int:
        return await ctx.step.run("x2", lambda: ctx.event.data["n"] * 2)

    return client, double


def test_create_function_builds_a_function_and_serving_decides_what_runs() -> None:
    client = inngest.Inngest(app_id="app")
    made = []
    for body in (1, 2):
        @client.create_function(fn_id="same", trigger=inngest.TriggerEvent(event="e"))
        def fn(ctx: inngest.ContextSync, body: int = body) -> int:
            return body
        made.append(fn)
    assert all(isinstance(f, inngest.Function) for f in made)
    assert made[0].get_id() == "app-same"
    sim = Simulation(client, functions=[made[1]])
    sim.send(inngest.Event(name="e"))
    assert [r.output for r in sim.runs()] == [2]
    with pytest.raises(ValueError, match="same"):
        Simulation(client, functions=made)


# ----------------------------------------------------------------------------- serve() over HTTP
def _sign(body: bytes, key: str) -> str:
    # as Inngest signs: the key without its "signkey-<env>-" prefix, t=<unix>&s=<hex>
    bare = key.split("-", 2)[2] if key.startswith("signkey-") else key
    ts = str(int(time.time()))
    mac = hmac.new(bare.encode(), body, hashlib.sha256)
    mac.update(ts.encode())
    return f"t={ts}&s={mac.hexdigest()}"


def test_fastapi_serve_is_the_event_api_and_the_introspection_endpoint() -> None:
    fastapi = pytest.importorskip("fastapi")
    testclient = pytest.importorskip("fastapi.testclient")
    import inngest_do.fast_api

    client, double = _shop()
    app = fastapi.FastAPI()
    inngest_do.fast_api.serve(app, client, [double], streaming=inngest.Streaming.DISABLE)
    with testclient.TestClient(app) as tc:
        doc = tc.get("/api/inngest").json()
        assert doc["function_count"] == 1 and doc["mode"] == "dev"
        res = tc.post("/api/inngest", json=[{"name": "shop/n", "data": {"n": 2}},
                                            {"name": "shop/n", "data": {"n": 3}}])
        assert res.status_code == 200
        body = res.json()
        assert body["status"] == 200 and len(body["ids"]) == 2
        res = tc.post("/e/any-key", json={"name": "shop/n", "data": {"n": 4}})
        assert res.status_code == 200 and len(res.json()["ids"]) == 1
        # bad input: a JSON error and nothing accepted
        assert tc.post("/api/inngest", content=b"{nope").status_code == 400
        assert tc.post("/api/inngest", json=[{"name": "shop/n"}, {"data": {}}]).status_code == 400
        assert tc.post("/e/k", content=b"[" + b" " * (3 * 1024 * 1024) + b"]").status_code == 413
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and sum(
                r.status == "Completed" for r in client.runs()) < 3:
            time.sleep(0.01)
    assert sorted(r.output for r in client.runs()) == [4, 6, 8]


def test_serve_checks_the_signing_key_and_the_event_key() -> None:
    fastapi = pytest.importorskip("fastapi")
    testclient = pytest.importorskip("fastapi.testclient")
    from inngest._internal import net  # the official SDK's signer, as a server would sign

    import inngest_do.fast_api

    key = "signkey-prod-" + "ab" * 32
    client = inngest.Inngest(app_id="shop", signing_key=key, event_key="right")
    fn = client.create_function(fn_id="f", trigger=inngest.TriggerEvent(event="e"))(
        lambda ctx: None)
    app = fastapi.FastAPI()
    inngest_do.fast_api.serve(app, client, [fn])
    with testclient.TestClient(app) as tc:
        body = json.dumps({"name": "e", "data": {"a": 1}}, indent=2).encode()
        assert tc.post("/api/inngest", content=body).status_code == 401
        assert tc.post("/api/inngest", content=body,
                       headers={"X-Inngest-Signature": "t=1&s=00"}).status_code == 401
        for sig in (_sign(body, key), net.sign_request(body, key)):
            assert isinstance(sig, str)
            res = tc.post("/api/inngest", content=body, headers={"X-Inngest-Signature": sig})
            assert res.status_code == 200, res.text
        old = _sign(body, key).split("&")[1]
        stale = f"t={int(time.time()) - 400}&{old}"
        assert tc.post("/api/inngest", content=body,
                       headers={"X-Inngest-Signature": stale}).status_code == 401
        assert tc.post("/e/wrong", content=body).status_code == 401
        assert tc.post("/e/right", content=body).status_code == 200


def test_flask_serve_takes_events() -> None:
    flask = pytest.importorskip("flask")
    import inngest_do.flask

    client, double = _shop()
    app = flask.Flask("acceptance")
    inngest_do.flask.serve(app, client, [double])
    with app.test_client() as tc:
        assert tc.get("/api/inngest").get_json()["function_count"] == 1
        res = tc.post("/api/inngest", json={"name": "shop/n", "data": {"n": 5}})
        assert res.status_code == 200 and res.get_json()["status"] == 200
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and not any(
                r.status == "Completed" for r in client.runs()):
            time.sleep(0.01)
    assert [r.output for r in client.runs()] == [10]


def test_django_serve_returns_a_url_pattern_and_tornado_serve_mounts() -> None:
    pytest.importorskip("django")
    import django.urls

    import inngest_do.django
    client, double = _shop()
    pattern = inngest_do.django.serve(client, [double])
    assert isinstance(pattern, (django.urls.URLPattern, django.urls.URLResolver))
    tornado_web = pytest.importorskip("tornado.web")
    import inngest_do.tornado
    app = tornado_web.Application()
    client2, double2 = _shop()
    assert inngest_do.tornado.serve(app, client2, [double2]) is None


# ------------------------------------------------------------------------ observable behaviour
def test_cancel_outside_a_step_ends_the_run_cancelled() -> None:
    client = inngest.Inngest(app_id="a")

    @client.create_function(fn_id="f", trigger=inngest.TriggerEvent(event="go"),
                            cancel=[inngest.Cancel(event="stop")])
    async def f(ctx: inngest.Context) -> str:
        await ctx.step.sleep("nap", datetime.timedelta(minutes=1))
        return "done"

    sim = Simulation(client)
    sim.send(inngest.Event(name="go"))
    sim.send(inngest.Event(name="stop"))
    sim.advance(datetime.timedelta(minutes=2))
    run = sim.runs()[0]
    assert run.status == "Cancelled" and run.output is None


@pytest.mark.parametrize("sync", [False, True])
def test_parallel_wait_runs_in_rounds_and_returns_every_result(sync: bool) -> None:
    client = inngest.Inngest(app_id="a", execution="requests")
    order: list[str] = []

    def step(name: str) -> str:
        order.append(name)
        return name

    if sync:
        @client.create_function(fn_id="p", trigger=inngest.TriggerEvent(event="go"))
        def p(ctx: inngest.ContextSync) -> typing.Any:
            def branch(b: str) -> typing.Callable[[], list[str]]:
                return lambda: [ctx.step.run(f"{b}.1", step, f"{b}.1"),
                                ctx.step.run(f"{b}.2", step, f"{b}.2")]
            return ctx.group.parallel((branch("a"), branch("b")))
    else:
        @client.create_function(fn_id="p", trigger=inngest.TriggerEvent(event="go"))
        async def p(ctx: inngest.Context) -> typing.Any:
            def branch(b: str) -> typing.Callable[[], typing.Awaitable[list[str]]]:
                async def go() -> list[str]:
                    return [await ctx.step.run(f"{b}.1", step, f"{b}.1"),
                            await ctx.step.run(f"{b}.2", step, f"{b}.2")]
                return go
            return await ctx.group.parallel((branch("a"), branch("b")))

    sim = Simulation(client)
    sim.send(inngest.Event(name="go"))
    run = sim.runs()[0]
    assert run.status == "Completed", run.error
    assert run.output == [["a.1", "a.2"], ["b.1", "b.2"]]
    assert order == ["a.1", "b.1", "a.2", "b.2"]


def test_parallel_race_returns_every_branch_in_order() -> None:
    client = inngest.Inngest(app_id="a")

    @client.create_function(fn_id="p", trigger=inngest.TriggerEvent(event="go"))
    async def p(ctx: inngest.Context) -> typing.Any:
        return await ctx.group.parallel(
            (lambda: ctx.step.run("a", lambda: 1), lambda: ctx.step.run("b", lambda: 2)),
            parallel_mode=inngest.ParallelMode.RACE)

    sim = Simulation(client)
    sim.send(inngest.Event(name="go"))
    assert sim.runs()[0].output in ([1, 2], (1, 2))


def test_sdk_error_shapes_in_runs() -> None:
    client = inngest.Inngest(app_id="a")
    failures: list[dict[str, typing.Any]] = []

    @client.create_function(fn_id="child", trigger=inngest.TriggerEvent(event="never"))
    async def child(ctx: inngest.Context) -> None:
        await ctx.step.sleep("long", datetime.timedelta(days=1))

    @client.create_function(fn_id="caller", trigger=inngest.TriggerEvent(event="invoke"),
                            retries=0)
    async def caller(ctx: inngest.Context) -> str:
        try:
            await ctx.step.invoke("call", function=child, timeout=datetime.timedelta(seconds=5))
        except inngest.StepError as err:
            return f"{err.name}|{err.message}|{err.code.value}"
        return "no timeout"

    @client.create_function(fn_id="nested", trigger=inngest.TriggerEvent(event="nest"),
                            retries=0)
    async def nested(ctx: inngest.Context) -> None:
        async def outer() -> None:
            await ctx.step.run("inner", lambda: None)
        await ctx.step.run("outer", outer)

    def on_failure(ctx: inngest.ContextSync) -> None:
        failures.append(ctx.event.data)

    @client.create_function(fn_id="bad", trigger=inngest.TriggerEvent(event="bad"),
                            retries=0, on_failure=on_failure)
    def bad(ctx: inngest.ContextSync) -> None:
        ctx.step.run("step_1", lambda: object())

    @client.create_function(fn_id="nr", trigger=inngest.TriggerEvent(event="nr"), retries=3)
    def nr(ctx: inngest.ContextSync) -> None:
        raise inngest.NonRetriableError("stop now")

    sim = Simulation(client)
    for name in ("invoke", "nest", "bad", "nr"):
        sim.send(inngest.Event(name=name))
    sim.advance(datetime.timedelta(minutes=1))
    runs = {r.fn_id: r for r in sim.runs()}
    assert runs["a-caller"].output == (
        "InngestInvokeTimeoutError|Timed out waiting for invoked function to complete"
        "|step_errored")
    assert runs["a-nested"].status == "Failed"
    assert "Nested steps are not supported." in runs["a-nested"].error.message
    assert runs["a-bad"].status == "Failed"
    assert '"step_1" returned unserializable data' in runs["a-bad"].error.message
    assert runs["a-nr"].status == "Failed" and runs["a-nr"].attempts == 1
    assert len(failures) == 1
    assert {"error", "function_id", "run_id", "event"} <= set(failures[0])
    assert {"message", "name"} <= set(failures[0]["error"])


def test_logger_and_middleware_hooks() -> None:
    import logging
    client = inngest.Inngest(app_id="a")
    records: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record.getMessage())

    logger = logging.getLogger("acceptance.qa")
    logger.addHandler(Collect())
    logger.setLevel(logging.INFO)
    client.set_logger(logger)
    ops: list[str] = []

    class Spy(inngest.MiddlewareSync):
        def transform_output(self, result: typing.Any) -> None:
            if result.step is not None:
                ops.append(result.step.op.value)

    client.add_middleware(Spy)

    @client.create_function(fn_id="f", trigger=inngest.TriggerEvent(event="go"))
    def f(ctx: inngest.ContextSync) -> None:
        ctx.logger.info("start")
        ctx.step.run("a", lambda: 1)
        ctx.step.send_event("s", inngest.Event(name="other"))
        ctx.logger.info("end")

    sim = Simulation(client)
    sim.send(inngest.Event(name="go"))
    assert sim.runs()[0].status == "Completed"
    assert records == ["start", "end"]  # silent while a replay re-runs code it already ran
    # send_event is a StepRun in the SDK too
    assert ops == [sdk_opcode("StepRun"), sdk_opcode("StepRun")]


def sdk_opcode(value: str) -> str:
    from inngest._internal.server_lib import Opcode
    return Opcode(value).value


def test_get_config_of_a_function() -> None:
    _client, double = _shop()
    cfg = double.get_config("http://app.test/api/inngest")
    assert cfg.main.id == "shop-double"
    assert double.get_id() == "shop-double"


# ---------------------------------------------------------------------------- experimental
def test_experimental_mocked_runs_sdk_style_unit_tests() -> None:
    from inngest_do.experimental import mocked

    app = inngest.Inngest(app_id="unit")

    @app.create_function(fn_id="f", trigger=inngest.TriggerEvent(event="go"))
    def f(ctx: inngest.ContextSync) -> dict[str, typing.Any]:
        user = ctx.step.run("fetch", lambda: {"real": True})
        ctx.step.sleep("nap", datetime.timedelta(days=1))
        approval = ctx.step.wait_for_event("approve", event="ok",
                                           timeout=datetime.timedelta(hours=1))
        return {"user": user, "approved": approval is not None}

    res = mocked.trigger(f, inngest.Event(name="go"), mocked.Inngest(app_id="test"),
                         step_stubs={"fetch": {"stub": 1}, "approve": mocked.Timeout})
    assert res.status is mocked.Status.COMPLETED
    assert res.output == {"user": {"stub": 1}, "approved": False}
    assert [m.value for m in mocked.Status] == [m.value for m in sdk.experimental.mocked.Status]


def test_experimental_step_decorator_and_context() -> None:
    from inngest_do import experimental
    assert callable(experimental.step)
    assert callable(experimental.get_step_context) and callable(experimental.set_step_context)


def test_ai_infer_with_sdk_adapters_and_a_custom_base_adapter() -> None:
    from inngest_do.experimental import ai

    for mod in (ai.openai, ai.anthropic, ai.gemini, ai.grok, ai.deepseek):
        adapter = mod.Adapter(auth_key="sk-secret", model="m")
        assert adapter.auth_key() == "sk-secret" and adapter.url_infer().startswith("https://")
        assert isinstance(adapter.headers(), dict) and isinstance(adapter.format(), str)
        with pytest.raises(TypeError):
            mod.Adapter("sk", "m")  # type: ignore[misc]  # keyword-only, as in the SDK

    class Mine(ai.BaseAdapter):
        def auth_key(self) -> str:
            return "k"

        def format(self) -> str:
            return "openai-chat"

        def headers(self) -> dict[str, str]:
            return {}

        def on_call(self, body: dict[str, object]) -> None:
            body["model"] = "mine"

        def url_infer(self) -> str:
            return "http://127.0.0.1:9/chat"

    client = inngest.Inngest(app_id="agent")
    seen: list[typing.Any] = []

    @client.create_function(fn_id="ask", trigger=inngest.TriggerEvent(event="ask"))
    async def ask(ctx: inngest.Context) -> typing.Any:
        a = await ctx.step.ai.infer("plan", adapter=ai.openai.Adapter(auth_key="sk-x",
                                                                      model="gpt-4o"),
                                    body={"messages": [{"role": "user", "content": "hi"}]})
        b = await ctx.step.ai.infer("mine", adapter=Mine(), body={"messages": []})
        return [a, b]

    def answer(body: dict[str, typing.Any]) -> dict[str, typing.Any]:
        seen.append(body)
        return {"choices": [{"message": {"content": body["model"]}}]}

    sim = Simulation(client)
    sim.stub_ai(answer)
    sim.send(inngest.Event(name="ask"))
    run = sim.runs()[0]
    assert run.status == "Completed", run.error
    assert [o["choices"][0]["message"]["content"] for o in run.output] == ["gpt-4o", "mine"]
    sim.crash()
    sim.run_until_idle()
    assert len(seen) == 2  # recorded: never asked again
    assert "sk-x" not in json.dumps([repr(e) for e in sim.trace])


def test_sync_ai_infer_and_realtime_publish_once() -> None:
    from inngest_do.experimental import ai, realtime

    client = inngest.Inngest(app_id="agent")
    sub = client.subscribe("user:1", ["progress"])

    @client.create_function(fn_id="ask", trigger=inngest.TriggerEvent(event="ask"))
    def ask(ctx: inngest.ContextSync) -> typing.Any:
        out = ctx.step.ai.infer("plan", adapter=ai.anthropic.Adapter(auth_key="k", model="c"),
                                body={"messages": []})
        ctx.step.run("tell", lambda: realtime.publish_sync(client, "user:1", "progress",
                                                           {"pct": 50}))
        ctx.step.sleep("nap", datetime.timedelta(seconds=1))
        return out

    sim = Simulation(client)
    sim.stub_ai({"content": [{"type": "text", "text": "ok"}]})
    sim.send(inngest.Event(name="ask"))
    sim.advance(datetime.timedelta(seconds=2))
    assert sim.runs()[0].status == "Completed"
    # published from a step: once, though the sync handler replayed after the sleep
    assert [(m.topic, m.data) for m in sub.drain()] == [("progress", {"pct": 50})]
    with pytest.raises(TypeError, match="client: expected an inngest_do.Inngest"):
        realtime.publish_sync(None, "user:1", "progress", {})  # type: ignore[arg-type]
    # publish signatures as the SDK's
    assert [p[0] for p in _params(realtime.publish)] == [
        p[0] for p in _params(sdk.experimental.realtime.publish)]


# ------------------------------------------------------------------------------ dev server
def test_dev_server_context_manager_answers_the_sdk_probes() -> None:
    httpx = pytest.importorskip("httpx")
    with inngest.DevServer(virtual_clock=True, seed=1) as server:
        assert server.url.startswith("http://127.0.0.1:")
        with httpx.Client(base_url=server.url, timeout=10) as http:
            assert http.post("/v0/connect/start").status_code == 200
            res = http.post("/e/key", json=[{"name": "a"}, {"name": "b"}])
            assert res.status_code == 200 and len(res.json()["ids"]) == 2
            assert http.post("/e/key", content=b"{").status_code == 400
            assert http.post("/e/key", json=[{"name": "a"}, {"x": 1}]).status_code == 400
            assert http.post("/v0/sim/advance", json={"duration": "1d"}).status_code == 200


def test_experimental_dev_server_handle_as_the_sdks_test_harness_uses_it(
        monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    httpx = pytest.importorskip("httpx")
    from inngest_do.experimental import dev_server

    with socket.socket() as s:  # a free port, handed over as DEV_SERVER_PORT
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("DEV_SERVER_PORT", str(port))
    handle = type(dev_server.server)()
    assert handle.port == port and handle.origin.endswith(f":{port}")
    handle.start()
    try:
        with pytest.raises(RuntimeError, match="already running"):
            handle.start()
        res = httpx.post(f"http://127.0.0.1:{port}/v0/connect/start", timeout=10)
        assert res.status_code == 200
    finally:
        handle.stop()
    with pytest.raises(RuntimeError, match="not running"):
        handle.stop()
    monkeypatch.setenv("DEV_SERVER_ENABLED", "0")
    off = type(dev_server.server)()
    off.start()
    off.stop()  # disabled: both do nothing, as the SDK's
    assert off.running is None
    monkeypatch.setenv("DEV_SERVER_PORT", "nope")
    with pytest.raises(ValueError, match="DEV_SERVER_PORT"):
        type(dev_server.server)()


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_one_unit_test_gives_the_same_result_under_the_sdks_mocked_and_ours() -> None:
    import inngest.experimental.mocked as sdk_mocked

    from inngest_do.experimental import mocked

    def build(lib: typing.Any) -> typing.Any:
        client = lib.Inngest(app_id="u", is_production=False)

        @client.create_function(fn_id="f", trigger=lib.TriggerEvent(event="go"), retries=0)
        def f(ctx: typing.Any) -> typing.Any:
            a = ctx.step.run("a", lambda x: x + 1, 1)
            ctx.step.sleep("s", datetime.timedelta(hours=1))
            i = ctx.step.invoke("i", function=f, data={})
            w = ctx.step.wait_for_event("w", event="x", timeout=datetime.timedelta(seconds=1))
            p = ctx.group.parallel((lambda: ctx.step.run("p1", lambda: 1),
                                    lambda: ctx.step.run("p2", lambda: 2)))
            if ctx.event.data.get("fail"):
                raise lib.NonRetriableError("no")
            return {"a": a, "i": i, "w": w.data if w else None, "p": list(p)}
        return f

    outcomes = []
    for lib, mock in ((sdk, sdk_mocked), (inngest, mocked)):
        fn = build(lib)
        for data in ({}, {"fail": True}):
            res = mock.trigger(fn, lib.Event(name="go", data=data), mock.Inngest(app_id="t"),
                               step_stubs={"i": {"inv": 1},
                                           "w": lib.Event(name="x", data={"k": 1})})
            outcomes.append((res.status.value, res.output, type(res.error).__name__,
                             str(res.error) if res.error else None))
    assert outcomes[:2] == outcomes[2:]
    assert outcomes[2][1] == {"a": 2, "i": {"inv": 1}, "w": {"k": 1}, "p": [1, 2]}


def test_env_is_read_from_the_environment_when_not_given(monkeypatch) -> None:
    monkeypatch.setenv("INNGEST_ENV", "preview-1")
    assert inngest.Inngest(app_id="a").env == "preview-1"
    assert inngest.Inngest(app_id="a", env="prod").env == "prod"
