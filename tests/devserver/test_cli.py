"""``inngest-do dev`` from the command line, and ``runs``/``show`` on its store."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import httpx
import inngest
import pytest

from inngest_do import cli

from .conftest import SDKApp, sdk_client, wait_for


def test_bad_arguments_exit_2(capsys):
    assert cli.main(["dev", "--port", "70000"]) == 2
    assert "--port" in capsys.readouterr().err
    assert cli.main(["dev", "-u", "ftp://x"]) == 2


def _start_dev(store: object, **popen: object) -> tuple[subprocess.Popen, str]:
    """``inngest-do dev`` on a free port with a SQLite store; the process and its URL."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "inngest_do", "dev", "--port", "0", "--store", str(store),
         "--seed", "5"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"}, **popen)  # type: ignore[call-overload]
    assert proc.stdout is not None
    line = ""
    while "serving on" not in line:
        line = proc.stdout.readline()
        if not line:
            proc.kill()
            raise AssertionError("inngest-do dev exited early")
    return proc, line.rsplit(" ", 1)[1].strip()


def _ignore_sigint() -> None:
    # as a shell without job control starts a background command
    signal.signal(signal.SIGINT, signal.SIG_IGN)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_dev_command_stops_cleanly_on_sigint_and_sigterm(tmp_path, sig):
    # Even with SIGINT ignored by its parent, the server stops on either signal and closes
    # its store (the SQLite file opens again at once, nothing left half-written).
    store = tmp_path / "dev.db"
    proc, url = _start_dev(store, preexec_fn=_ignore_sigint)
    try:
        assert httpx.get(f"{url}/v1/runs").status_code == 200
        proc.send_signal(sig)
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)
    from inngest_do.storage.sqlite import SQLiteStore

    reopened = SQLiteStore(str(store))
    reopened.close()


def test_dev_command_syncs_runs_and_keeps_a_store(tmp_path):
    store = tmp_path / "dev.db"

    class _Origin:  # the SDK client needs the server's URL before it starts
        url = ""

    proc, _Origin.url = _start_dev(store)
    app = None
    try:
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
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()  # never left running after the test
            proc.wait(timeout=30)
            raise
        if app is not None:
            app.stop()
    out = subprocess.run([sys.executable, "-m", "inngest_do", "runs", "--store", str(store)],
                         check=False, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and "cliapp-echo" in out.stdout and "Completed" in out.stdout
