"""Signed mode: requests to apps are signed, app responses' signatures checked, and the SDK's
bearer token required on the API."""

from __future__ import annotations

import httpx
import inngest

from inngest_do.devserver import DevServer, signing

from .conftest import finished, run_ids

KEY = "signkey-test-" + "ab" * 32


def test_signed_app_syncs_in_band_and_runs(serve_app):
    with DevServer(signing_key=KEY) as server:
        client = inngest.Inngest(app_id="signed", signing_key=KEY, event_key="ek",
                                 is_production=True, api_base_url=server.url,
                                 event_api_base_url=server.url)

        @client.create_function(fn_id="hello", trigger=inngest.TriggerEvent(event="s/hi"))
        async def hello(ctx: inngest.Context) -> str:
            name = await ctx.step.run("name", lambda: "Ada")
            return f"hi {name}"

        app = serve_app(client, [hello])
        assert server.sync_app(app.url).id == "signed"
        [event_id] = client.send_sync(inngest.Event(name="s/hi"))
        assert finished(server, run_ids(server, event_id)[0])["output"] == "hi Ada"


def test_app_with_another_key_is_refused(serve_app):
    with DevServer(signing_key=KEY) as server:
        client = inngest.Inngest(app_id="wrong", signing_key="signkey-test-" + "cd" * 32,
                                 event_key="ek", is_production=True, api_base_url=server.url,
                                 event_api_base_url=server.url)

        @client.create_function(fn_id="f", trigger=inngest.TriggerEvent(event="s/x"))
        def f(ctx: inngest.ContextSync) -> None:
            pass

        app = serve_app(client, [f])
        try:
            server.sync_app(app.url)
        except ValueError as err:
            assert "refused the sync (status 401)" in str(err)
        else:
            raise AssertionError("a sync signed with another key was accepted")
        assert server.registry.apps == {}


def test_api_requires_the_bearer():
    with DevServer(signing_key=KEY) as server:
        body = {"appname": "x", "url": "http://127.0.0.1:9/", "functions": []}
        assert httpx.post(f"{server.url}/fn/register", json=body).status_code == 401
        ok = httpx.post(f"{server.url}/fn/register", json=body,
                        headers={"authorization": signing.bearer(KEY)})
        assert ok.status_code == 200
        assert httpx.get(f"{server.url}/v0/runs/nope/actions").status_code == 401


def test_sign_and_verify_round_trip():
    header = signing.sign(b'{"b": 1, "a": [1, 2]}', KEY, now_s=1000)
    assert signing.verify(b'{"a":[1,2],"b":1}', header, KEY, canonical=True, now_s=1000) is None
    assert "does not match" in signing.verify(b'{"a":[1,3]}', header, KEY, canonical=True,
                                              now_s=1000)
    assert "too old" in signing.verify(b"{}", header, KEY, now_s=10_000)
    assert "malformed" in signing.verify(b"{}", "garbage", KEY)
    assert "missing" in signing.verify(b"{}", None, KEY)
