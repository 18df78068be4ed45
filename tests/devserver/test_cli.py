"""``inngest-do dev`` from the command line, and ``runs``/``show`` on its store."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import httpx
import inngest

from inngest_do import cli

from .conftest import SDKApp, sdk_client, wait_for


def test_bad_arguments_exit_2(capsys):
    assert cli.main(["dev", "--port", "70000"]) == 2
    assert "--port" in capsys.readouterr().err
    assert cli.main(["dev", "-u", "ftp://x"]) == 2


def test_dev_command_syncs_runs_and_keeps_a_store(tmp_path):
    store = tmp_path / "dev.db"

    class _Origin:  # the SDK client needs the server's URL before it starts
        url = ""

    proc = subprocess.Popen(
        [sys.executable, "-m", "inngest_do", "dev", "--port", "0", "--store", str(store),
         "--seed", "5"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"})
    app = None
    try:
        assert proc.stdout is not None
        line = ""
        while "serving on" not in line:
            line = proc.stdout.readline()
            assert line, "inngest-do dev exited early"
        _Origin.url = line.rsplit(" ", 1)[1].strip()
        client = sdk_client(_Origin, "cliapp")  # type: ignore[arg-type]

        @client.create_function(fn_id="echo", trigger=inngest.TriggerEvent(event="c/e"))
        def echo(ctx: inngest.ContextSync) -> object:
            return ctx.event.data

        app = SDKApp(client, [echo]).start()
        res = httpx.post(f"{_Origin.url}/v0/apps/sync", json={"url": app.url})
        assert res.status_code == 200 and res.json()["functions"] == ["cliapp-echo"]
        client.send_sync(inngest.Event(name="c/e", data={"v": 1}))
        runs = wait_for(lambda: [r for r in httpx.get(f"{_Origin.url}/v1/runs").json()["data"]
                                 if r["status"] == "COMPLETED"])
        assert runs[0]["output"] == {"v": 1}
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)
        if app is not None:
            app.stop()
    out = subprocess.run([sys.executable, "-m", "inngest_do", "runs", "--store", str(store)],
                         check=False, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and "cliapp-echo" in out.stdout and "Completed" in out.stdout
