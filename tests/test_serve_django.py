"""``inngest_do.django.serve``: the URL pattern it returns answers the serve path and the event
API (also under an ``include()`` prefix), the worker starts with the project's first request,
served functions run, bodies over Django's upload limit (but under 3 MiB) are taken."""

from __future__ import annotations

import json
import types
import typing

import pytest
from serve_helpers import completed, wait_until

import inngest_do as inngest
from inngest_do import signing
from inngest_do._serve import BackgroundWorker, Response

django = pytest.importorskip("django")
from django.conf import settings

if not settings.configured:
    settings.configure(DEBUG=False, ALLOWED_HOSTS=["testserver", "127.0.0.1"],
                       ROOT_URLCONF=types.ModuleType("no_urls"),
                       MIDDLEWARE=["django.middleware.csrf.CsrfViewMiddleware"],
                       SECRET_KEY="test-only", USE_TZ=True)
    django.setup()

import django.test
import django.urls

import inngest_do.django


def shop(made: list[inngest.Inngest], **kwargs: typing.Any
         ) -> tuple[inngest.Inngest, list[inngest.Function]]:
    client = inngest.Inngest(app_id="shop", **kwargs)
    made.append(client)

    @client.create_function(fn_id="double", trigger=inngest.TriggerEvent(event="shop/n"))
    async def double(ctx: inngest.Context) -> int:
        return await ctx.step.run("x2", lambda: ctx.event.data["n"] * 2)

    @client.create_function(fn_id="size", trigger=inngest.TriggerEvent(event="shop/big"))
    def size(ctx: inngest.ContextSync) -> int:
        return len(ctx.event.data["blob"])

    return client, [double, size]


def urls(*patterns: typing.Any) -> typing.Any:
    conf = types.ModuleType("urls")  # a module, as Django expects (hashable)
    conf.urlpatterns = list(patterns)  # type: ignore[attr-defined]
    return django.test.override_settings(ROOT_URLCONF=conf)


def test_served_functions_run_and_the_worker_starts_with_the_first_request(
        clients: list[inngest.Inngest]) -> None:
    client, functions = shop(clients)
    pattern = inngest_do.django.serve(client, functions)
    assert isinstance(pattern, django.urls.URLPattern)
    runner = BackgroundWorker.for_client(client)
    assert not runner.running
    with urls(pattern):
        tc = django.test.Client()
        doc = tc.get("/api/inngest").json()
        assert runner.running
        assert doc["framework"] == "django" and doc["function_count"] == 2
        res = tc.post("/api/inngest", data={"name": "shop/n", "data": {"n": 21}},
                      content_type="application/json")
        assert res.status_code == 200 and res.json()["status"] == 200
        wait_until(completed(client, 1))
        # bigger than Django's 2.5 MB DATA_UPLOAD_MAX_MEMORY_SIZE, smaller than 3 MiB
        blob = "b" * (2_900_000)
        res = tc.post("/e/key", data=json.dumps({"name": "shop/big", "data": {"blob": blob}}),
                      content_type="application/json")
        assert res.status_code == 200, res.content[:200]
        wait_until(completed(client, 2))
        too_big = tc.post("/e/key", data=b"x" * (3 * 1024 * 1024 + 1),
                          content_type="application/json")
        assert too_big.status_code == 413
    assert sorted(r.output for r in client.runs()) == [42, 2_900_000]
    runner.stop(30)
    assert not runner.running


def test_under_an_include_prefix_with_keys(clients: list[inngest.Inngest]) -> None:
    key = "signkey-test-" + "0f" * 32
    client, functions = shop(clients, signing_key=key, event_key="ek")
    pattern = inngest_do.django.serve(client, functions, serve_path="/hooks/inngest")
    with urls(django.urls.path("svc/", django.urls.include([pattern]))):
        tc = django.test.Client()
        body = json.dumps({"name": "shop/n", "data": {"n": 1}}).encode()
        unsigned = tc.post("/svc/hooks/inngest", data=body, content_type="application/json")
        assert unsigned.status_code == 401
        signed = tc.post("/svc/hooks/inngest", data=body, content_type="application/json",
                         headers={"X-Inngest-Signature": signing.sign_request(body, key)})
        assert signed.status_code == 200
        assert tc.post("/svc/e/nope", data=body,
                       content_type="application/json").status_code == 401
        assert tc.post("/svc/e/ek", data=b"[", content_type="application/json").status_code == 400
        assert tc.put("/svc/hooks/inngest").status_code == 401
        assert tc.get("/svc/hooks/inngest").json()["mode"] == "cloud"
        assert tc.get("/hooks/inngest").status_code == 404


def test_a_streaming_body_is_streamed() -> None:
    async def chunks() -> typing.AsyncIterator[bytes]:
        for i in range(3):
            yield f"{i};".encode()

    res = inngest_do.django.to_django(Response(200, chunks(), {"content-type": "text/plain"}))
    assert b"".join(typing.cast(typing.Iterable[bytes], res)) == b"0;1;2;"
