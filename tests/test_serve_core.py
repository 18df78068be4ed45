"""The HTTP core every ``serve()`` adapter shares, through FastAPI's test client: what the
introspection document shows (and hides), signatures as Inngest makes them (accepted, refused,
expired, fallback key), the event API and its key, and bad requests that accept nothing."""

from __future__ import annotations

import hashlib
import json
import time
import typing

import pytest

import inngest_do as inngest
from inngest_do import signing

fastapi = pytest.importorskip("fastapi")
testclient = pytest.importorskip("fastapi.testclient")
import inngest_do.fast_api

KEY = "signkey-prod-" + "ab12" * 16
FALLBACK = "signkey-prod-" + "cd34" * 16


def make_app(client: inngest.Inngest,
             functions: list[inngest.Function] | None = None,
             **kwargs: typing.Any) -> typing.Any:
    if functions is None:
        @client.create_function(fn_id="hello", trigger=inngest.TriggerEvent(event="app/hello"))
        async def hello(ctx: inngest.Context) -> str:
            return "hi"

        functions = [hello]
    app = fastapi.FastAPI()
    inngest_do.fast_api.serve(app, client, functions, **kwargs)
    return app


def http(app: typing.Any) -> typing.Any:
    # No `with`: no lifespan, so no worker; events are accepted and wait in the engine.
    return testclient.TestClient(app)


def signed_post(tc: typing.Any, path: str, payload: object, key: str = KEY,
                stamp: int | None = None) -> typing.Any:
    body = json.dumps(payload).encode()
    return tc.post(path, content=body, headers={
        "content-type": "application/json",
        "x-inngest-signature": signing.sign_request(body, key, stamp)})


# introspection -------------------------------------------------------------------------------
def test_introspection_in_dev_mode_lists_functions_with_their_triggers() -> None:
    client = inngest.Inngest(app_id="shop")

    @client.create_function(fn_id="a", name="A!", trigger=[
        inngest.TriggerEvent(event="shop/a", expression="event.data.x > 1"),
        inngest.TriggerCron(cron="0 * * * *")], on_failure=lambda ctx: None)
    async def a(ctx: inngest.Context) -> None:
        return None

    doc = http(make_app(client, [a])).get("/api/inngest").json()
    assert doc["mode"] == "dev"
    assert doc["schema_version"] == "2024-05-24"
    assert doc["function_count"] == 1
    assert doc["has_signing_key"] is False and doc["has_event_key"] is False
    assert doc["app_id"] == "shop" and doc["framework"] == "fast_api"
    assert doc["serve_path"] == "/api/inngest"
    assert doc["functions"][0] == {
        "id": "shop-a", "name": "A!",
        "triggers": [{"event": "shop/a", "expression": "event.data.x > 1"},
                     {"cron": "0 * * * *"}]}
    assert doc["functions"][1]["id"] == "shop-a-failure"  # its on_failure handler


def test_introspection_hides_functions_from_unsigned_requests_when_keyed() -> None:
    client = inngest.Inngest(app_id="shop", signing_key=KEY, event_key="ek")
    tc = http(make_app(client))
    doc = tc.get("/api/inngest").json()
    assert doc == {"schema_version": "2024-05-24", "function_count": 1, "has_event_key": True,
                   "has_signing_key": True, "has_signing_key_fallback": False, "mode": "cloud"}
    stamp = str(int(time.time()))
    sig = signing.sign_request(b"", KEY, int(stamp))
    doc = tc.get("/api/inngest", headers={"x-inngest-signature": sig}).json()
    assert doc["authentication_succeeded"] is True
    assert [f["id"] for f in doc["functions"]] == ["shop-hello"]
    # hashes, never the keys (the SDK's hash: SHA-256 of the hex key's bytes)
    assert doc["signing_key_hash"] == hashlib.sha256(bytes.fromhex("ab12" * 16)).hexdigest()
    assert doc["event_key_hash"] == hashlib.sha256(b"ek").hexdigest()
    assert KEY not in json.dumps(doc)


def test_custom_serve_path_and_env_serve_path(monkeypatch: pytest.MonkeyPatch) -> None:
    client = inngest.Inngest(app_id="shop")
    tc = http(make_app(client, serve_path="/hooks/inngest/"))
    assert tc.get("/hooks/inngest").json()["serve_path"] == "/hooks/inngest"
    assert tc.get("/api/inngest").status_code == 404
    monkeypatch.setenv("INNGEST_SERVE_PATH", "/from-env")
    tc = http(make_app(inngest.Inngest(app_id="other")))
    assert tc.get("/from-env").status_code == 200


# signatures --------------------------------------------------------------------------------
def test_signed_post_is_accepted_and_bad_signatures_are_401() -> None:
    client = inngest.Inngest(app_id="shop", signing_key=KEY)
    tc = http(make_app(client))
    event = {"name": "app/hello", "data": {"n": 1}}
    assert signed_post(tc, "/api/inngest", event).status_code == 200
    unsigned = tc.post("/api/inngest", json=event)
    assert unsigned.status_code == 401
    assert unsigned.json()["code"] == "sig_verification_failed"
    assert signed_post(tc, "/api/inngest", event, key=FALLBACK).status_code == 401
    expired = signed_post(tc, "/api/inngest", event, stamp=int(time.time()) - 301)
    assert expired.status_code == 401 and "expired" in expired.json()["error"]
    body = json.dumps(event).encode()
    tampered = tc.post("/api/inngest", content=body + b" ", headers={
        "x-inngest-signature": signing.sign_request(body, KEY)})
    assert tampered.status_code == 401
    assert tc.put("/api/inngest").status_code == 401
    assert len(client.events()) == 1  # only the signed one


def test_the_fallback_signing_key_is_accepted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INNGEST_SIGNING_KEY_FALLBACK", FALLBACK)
    client = inngest.Inngest(app_id="shop", signing_key=KEY)
    tc = http(make_app(client))
    res = signed_post(tc, "/api/inngest", {"name": "app/hello"}, key=FALLBACK)
    assert res.status_code == 200
    assert tc.get("/api/inngest").json()["has_signing_key_fallback"] is True


def test_signatures_made_by_the_official_sdk_are_accepted() -> None:
    net = pytest.importorskip("inngest._internal.net")
    client = inngest.Inngest(app_id="shop", signing_key=KEY)
    tc = http(make_app(client))
    body = json.dumps({"name": "app/hello", "data": {"b": 1, "a": [1, 2]}}, indent=2).encode()
    res = tc.post("/api/inngest", content=body,
                  headers={"x-inngest-signature": net.sign_request(body, KEY)})
    assert res.status_code == 200, res.text


def test_signing_helpers() -> None:
    assert signing.remove_signing_key_prefix("signkey-branch-abc") == "abc"
    assert signing.remove_signing_key_prefix("abc") == "abc"
    header = signing.sign_request(b'{"a":1}', KEY, 1_700_000_000)
    assert header.startswith("t=1700000000&s=")
    assert signing.verify_signature(b'{"a":1}', header, [KEY], now_s=1_700_000_100) == KEY
    with pytest.raises(signing.SignatureError, match="expired"):
        signing.verify_signature(b'{"a":1}', header, [KEY], now_s=1_700_000_301)
    with pytest.raises(signing.SignatureError, match="malformed"):
        signing.verify_signature(b"", "s=abc", [KEY])
    with pytest.raises(signing.SignatureError, match="missing"):
        signing.verify_signature(b"", None, [KEY])
    with pytest.raises(ValueError, match="signing_key"):
        signing.sign_request(b"", "")


# the event API -----------------------------------------------------------------------------
def test_event_api_checks_the_event_key() -> None:
    client = inngest.Inngest(app_id="shop", event_key="secret-key")
    tc = http(make_app(client))
    ok = tc.post("/e/secret-key", json=[{"name": "app/hello"}, {"name": "app/other"}])
    assert ok.status_code == 200
    assert ok.json()["status"] == 200 and len(ok.json()["ids"]) == 2
    wrong = tc.post("/e/nope", json={"name": "app/hello"})
    assert wrong.status_code == 401
    assert len(client.events()) == 2


def test_event_api_without_an_event_key_takes_any_key() -> None:
    client = inngest.Inngest(app_id="shop")
    tc = http(make_app(client))
    res = tc.post("/e/whatever", json={"name": "app/hello", "data": {"x": 1}, "id": "dedupe-1",
                                       "ts": 1_700_000_000_000})
    assert res.status_code == 200
    [record] = client.events()
    assert record.name == "app/hello"


def test_event_api_is_not_guarded_by_the_signing_key() -> None:
    # Other services send events with an event key, as to Inngest; they do not sign.
    client = inngest.Inngest(app_id="shop", signing_key=KEY, event_key="ek")
    assert http(make_app(client)).post("/e/ek", json={"name": "app/hello"}).status_code == 200


# bad requests ------------------------------------------------------------------------------
@pytest.mark.parametrize(("body", "fragment"), [
    (b"{not json", "malformed JSON"),
    (b'{"data": {}}', "event.name"),
    (b'[{"name": "app/hello"}, {"name": ""}]', "events[1].name"),
    (b'[{"name": "app/hello"}, 3]', "events[1]: expected a JSON object"),
    (b'{"name": "app/hello", "data": [1]}', "data"),
    (b'{"name": "app/hello", "ts": "yesterday"}', "ts"),
])
def test_bad_events_are_400_and_nothing_is_accepted(body: bytes, fragment: str) -> None:
    client = inngest.Inngest(app_id="shop")
    tc = http(make_app(client))
    for path in ("/api/inngest", "/e/key"):
        res = tc.post(path, content=body, headers={"content-type": "application/json"})
        assert res.status_code == 400, res.text
        assert fragment in res.json()["error"]
        assert res.json()["status"] == 400
    assert client.events() == []


def test_a_body_over_3_mib_is_413() -> None:
    client = inngest.Inngest(app_id="shop")
    tc = http(make_app(client))
    big = json.dumps({"name": "app/hello", "data": {"x": "a" * (3 * 1024 * 1024)}})
    res = tc.post("/api/inngest", content=big.encode())
    assert res.status_code == 413 and "3 MiB" in res.json()["error"]
    assert client.events() == []


def test_put_answers_like_a_sync_and_other_methods_are_405() -> None:
    client = inngest.Inngest(app_id="shop")
    tc = http(make_app(client))
    res = tc.put("/api/inngest")
    assert res.status_code == 200 and res.json()["ok"] is True
    assert tc.get("/e/key").status_code == 405
    assert tc.get("/api/inngest/nothing-here").status_code == 404


def test_serve_checks_its_arguments() -> None:
    client = inngest.Inngest(app_id="shop")

    @client.create_function(fn_id="dup", trigger=inngest.TriggerEvent(event="a"))
    async def one(ctx: inngest.Context) -> None:
        return None

    @client.create_function(fn_id="dup", trigger=inngest.TriggerEvent(event="b"))
    async def two(ctx: inngest.Context) -> None:
        return None

    app = fastapi.FastAPI()
    with pytest.raises(ValueError, match="'shop-dup'"):
        inngest_do.fast_api.serve(app, client, [one, two])
    with pytest.raises(TypeError, match=r"functions\[0\]"):
        inngest_do.fast_api.serve(app, client, [lambda: None])  # type: ignore[list-item]
    with pytest.raises(TypeError, match="functions"):
        inngest_do.fast_api.serve(app, client, one)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="app"):
        inngest_do.fast_api.serve(object(), client, [one])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="serve_path"):
        inngest_do.fast_api.serve(app, client, [one], serve_path="/")
