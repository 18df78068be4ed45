"""The examples a newcomer starts from run and print what the README promises."""

from __future__ import annotations

import pathlib
import runpy

import pytest
from serve_helpers import wait_until

EXAMPLES = pathlib.Path(__file__).resolve().parent.parent / "examples"


def test_quickstart(capsys: pytest.CaptureFixture[str]) -> None:
    runpy.run_path(str(EXAMPLES / "quickstart.py"), run_name="__main__")
    out = capsys.readouterr().out
    assert out.splitlines()[0] == "Completed {'user': {'id': 7}, 'approved': True}"


def test_flow_control(capsys: pytest.CaptureFixture[str]) -> None:
    runpy.run_path(str(EXAMPLES / "flow_control.py"), run_name="__main__")
    out = capsys.readouterr().out
    assert out.count("digest for") == 2  # user 1 is rate-limited after its first run
    assert "-> 3" in out  # the debounce ran once, with the last edit
    assert "started after 0:20:00  -> v4.mp4" in out  # two at a time, ten minutes each


def test_fastapi_app_is_the_sdks_pattern_and_runs() -> None:
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    source = (EXAMPLES / "fastapi_app.py").read_text()
    assert "import inngest_do as inngest  # was: import inngest\n" in source
    assert "inngest.fast_api.serve(app, inngest_client, [process_order])" in source
    module = runpy.run_path(str(EXAMPLES / "fastapi_app.py"))
    client = module["inngest_client"]
    with TestClient(module["app"]) as http:
        assert http.post("/orders", json={"order_id": 1, "amount": 30}).status_code == 200
        res = http.post("/api/inngest", json={"name": "shop/order.created",
                                              "data": {"order_id": 2, "amount": 5}})
        assert res.status_code == 200
        wait_until(lambda: [r.status for r in client.runs()] == ["Completed"] * 2)
        assert http.get("/api/inngest").json()["functions"][0]["id"] == "shop-process-order"
    assert sorted(r.output["charged"] for r in client.runs()) == [5, 30]
    assert [e.name for e in client.events("shop/order.charged")] == ["shop/order.charged"] * 2


def test_flask_app_is_the_sdks_pattern_and_runs() -> None:
    pytest.importorskip("flask")
    from inngest_do._serve import BackgroundWorker

    source = (EXAMPLES / "flask_app.py").read_text()
    assert "import inngest_do.flask  # was: import inngest.flask\n" in source
    module = runpy.run_path(str(EXAMPLES / "flask_app.py"))
    client = module["inngest_client"]
    http = module["app"].test_client()
    try:
        assert http.post("/signup", json={"email": "ada@example.com"}).status_code == 200
        wait_until(lambda: [r.status for r in client.runs()] == ["Completed"])
        assert client.runs()[0].output == "tips mail to ada@example.com"
    finally:
        BackgroundWorker.for_client(client).stop(30)
