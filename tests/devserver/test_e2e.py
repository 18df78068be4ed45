"""End to end: an official-SDK app syncs, receives an event and runs to completion."""

from __future__ import annotations

import json

import httpx

from .conftest import inngest, sdk_client, wait_for


def gql(server, query, **variables):
    res = httpx.post(f"{server.url}/v0/gql", json={"query": query, "variables": variables})
    assert res.status_code == 200, res.text
    body = res.json()
    assert "errors" not in body, body
    return body["data"]


RUN_QUERY = """query($id: String!) { run(runID: $id) { status output
  trace { childrenSpans { name outputID } } } runTrigger(runID: $id) { payloads } }"""


def run_ids_of(server, event_id):
    data = gql(server, "query($id: ID!) { event(query: {eventId: $id}) { functionRuns { id } } }",
               id=event_id)
    return [r["id"] for r in (data["event"] or {}).get("functionRuns") or []]


def test_two_steps_complete(dev, serve_app):
    client = sdk_client(dev, "e2e")
    calls = []

    @client.create_function(fn_id="two", trigger=inngest.TriggerEvent(event="e2e/go"), retries=0)
    async def two(ctx: inngest.Context) -> dict:
        a = await ctx.step.run("a", lambda: calls.append("a") or {"x": 1})
        b = await ctx.step.run("b", lambda: calls.append("b") or [a["x"], 2])
        return {"a": a, "b": b, "n": ctx.event.data["n"]}

    app = serve_app(client, [two])
    synced = dev.sync_app(app.url)
    assert synced.id == "e2e" and list(synced.functions) == ["e2e-two"]
    [event_id] = client.send_sync(inngest.Event(name="e2e/go", data={"n": 5}))
    [run_id] = wait_for(lambda: run_ids_of(dev, event_id))
    run = wait_for(lambda: (gql(dev, RUN_QUERY, id=run_id)["run"] or {}).get("status")
                   == "COMPLETED" and gql(dev, RUN_QUERY, id=run_id))
    assert json.loads(run["run"]["output"]) == {"a": {"x": 1}, "b": [1, 2], "n": 5}
    assert calls == ["a", "b"]
    assert json.loads(run["runTrigger"]["payloads"][0])["data"] == {"n": 5}
    spans = run["run"]["trace"]["childrenSpans"]
    assert [s["name"] for s in spans] == ["a", "b"]
    out = gql(dev, "query($o: String!) { runTraceSpanOutputByID(outputID: $o) { data error "
                   "{ message } } }", o=spans[1]["outputID"])
    assert json.loads(out["runTraceSpanOutputByID"]["data"]) == [1, 2]


def test_the_dev_server_is_importable_from_the_package_root() -> None:
    import inngest_do
    from inngest_do.devserver import DevServer

    assert inngest_do.DevServer is DevServer
