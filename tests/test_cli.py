"""The ``inngest-do`` command: the newcomer's whole path (run an app, send an event, see it run,
list runs, show one), and one clear line with exit status 2 for every kind of bad input."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from inngest_do import cli

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "worker_app.py"
ENV = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}


def inngest_do(*args: str, cwd: Path, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "inngest_do", *args], cwd=cwd, env=ENV,
                          capture_output=True, text=True, timeout=timeout, check=False)


def error_line(capsys: pytest.CaptureFixture, argv: list[str]) -> str:
    """Run the command in-process; it must fail with status 2 and one line on stderr."""
    assert cli.main(argv) == 2
    out, err = capsys.readouterr()
    assert out == ""
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("inngest-do: error: ")
    return lines[0]


class Worker:
    """``inngest-do run`` in a subprocess, reading its output line by line."""

    def __init__(self, app: str, store: Path, cwd: Path) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "inngest_do", "--store", str(store), "run", app],
            cwd=cwd, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.lines: list[str] = []

    def expect(self, *words: str, timeout: float = 20) -> str:
        """The next stdout line containing every word (earlier lines are kept)."""
        deadline = time.monotonic() + timeout
        assert self.proc.stdout is not None
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                raise AssertionError(f"worker exited: {self.stop()}")
            self.lines.append(line)
            if all(w in line for w in words):
                return line
        raise AssertionError(f"no line with {words} in {self.lines}")

    def stop(self, sig: int = signal.SIGTERM) -> tuple[int, str]:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            _, err = self.proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            _, err = self.proc.communicate()
        return self.proc.returncode, err


def test_run_send_runs_show(tmp_path) -> None:
    store = tmp_path / "app.db"
    worker = Worker(str(EXAMPLE), store, tmp_path)
    try:
        sent = inngest_do("--store", str(store), "send", "app/hello", '{"name": "Ada"}',
                          cwd=tmp_path)
        assert sent.returncode == 0, sent.stderr
        assert sent.stdout.startswith("sent app/hello (inbox #1)")
        started = worker.expect("started", "app-greet")
        run_id = started.split()[-1]
        assert len(run_id) == 26
        done = worker.expect("completed", "app-greet", run_id)
        assert float(done.split()[-1].rstrip("s")) >= 2.0  # the example sleeps 2 s
        worker.expect("completed", "app-count")  # started by the event greet sent

        # a second worker on the same file is refused, naming the first
        second = inngest_do("--store", str(store), "run", str(EXAMPLE), cwd=tmp_path)
        assert second.returncode == 1
        assert f"is in use by process {worker.proc.pid}" in second.stderr
    finally:
        code, err = worker.stop()
    assert code == 0, err
    assert "stopped" in err

    listed = inngest_do("runs", "--store", str(store), cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    header, *rows = listed.stdout.splitlines()
    assert header.split() == ["ID", "FUNCTION", "STATUS", "CREATED", "ENDED"]
    assert [(r.split()[1], r.split()[2]) for r in rows] == [("app-greet", "Completed"),
                                                           ("app-count", "Completed")]
    only = inngest_do("runs", "--store", str(store), "--function", "count", cwd=tmp_path)
    assert len(only.stdout.splitlines()) == 2

    shown = inngest_do("--store", str(store), "show", run_id[:12], cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    text = shown.stdout
    assert f"run       {run_id}" in text and "status    Completed" in text
    assert '"greeting": "Hello, Ada!"' in text
    kinds = [line.split()[2] for line in text.split("TIME", 1)[1].splitlines()[1:]]
    assert kinds == ["run.queued", "run.started", "step.completed", "sleep.started",
                     "sleep.completed", "step.completed", "run.completed"]


def test_sigint_stops_the_worker_and_a_restart_finishes_its_runs(tmp_path) -> None:
    store = tmp_path / "app.db"
    worker = Worker(f"{EXAMPLE}:client", store, tmp_path)
    try:
        assert inngest_do("--store", str(store), "send", "app/hello", cwd=tmp_path).returncode \
            == 0
        worker.expect("started", "app-greet")
    finally:
        code, _ = worker.stop(signal.SIGINT)  # during the 2-second sleep
    assert code == 0
    listed = inngest_do("--store", str(store), "runs", "--status", "Sleeping", cwd=tmp_path)
    assert "app-greet" in listed.stdout

    shutil.copy(EXAMPLE, tmp_path / "my_app.py")  # module:client from the working directory
    worker = Worker("my_app:client", store, tmp_path)
    try:
        worker.expect("completed", "app-greet")
        worker.expect("completed", "app-count")
    finally:
        worker.stop()


def test_an_event_sent_before_any_worker_waits_in_the_inbox(tmp_path) -> None:
    store = tmp_path / "fresh.db"
    sent = inngest_do("--store", str(store), "send", "app/hello", '{"name": "Bo"}',
                      cwd=tmp_path)
    assert sent.returncode == 0, sent.stderr
    listed = inngest_do("--store", str(store), "runs", cwd=tmp_path)
    assert "1 sent event not yet picked up by a worker" in listed.stdout


def test_the_store_defaults_to_the_working_directory(tmp_path, monkeypatch) -> None:
    monkeypatch.delenv("INNGEST_DO_STORE", raising=False)
    sent = inngest_do("send", "app/x", cwd=tmp_path)
    assert sent.returncode == 0, sent.stderr
    assert (tmp_path / "inngest_do.db").exists()
    env_store = tmp_path / "env.db"
    monkeypatch.setenv("INNGEST_DO_STORE", str(env_store))
    assert cli.main(["send", "app/y"]) == 0
    assert env_store.exists()


def test_bad_input_gives_one_line_and_status_2(tmp_path, capsys, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    store = str(tmp_path / "s.db")
    assert "no such module" in error_line(capsys, ["run", "no_such_app_module"])
    assert "no such file" in error_line(capsys, ["run", "missing/app.py"])
    (tmp_path / "empty_app.py").write_text("x = 1\n")
    assert "no inngest_do.Inngest client" in error_line(capsys, ["run", "empty_app.py"])
    (tmp_path / "two_apps.py").write_text(textwrap.dedent("""
        import inngest_do
        a = inngest_do.Inngest(app_id="a")
        b = inngest_do.Inngest(app_id="b")
    """))
    assert "2 clients (a, b)" in error_line(capsys, ["run", "two_apps.py"])
    assert "has no attribute 'c'" in error_line(capsys, ["run", "two_apps.py:c"])
    (tmp_path / "broken_app.py").write_text("raise RuntimeError('boom')\n")
    assert "RuntimeError: boom" in error_line(capsys, ["run", "broken_app.py"])
    assert "JSON: invalid" in error_line(capsys, ["--store", store, "send", "a/b", "{bad"])
    assert "must be an object" in error_line(capsys, ["--store", store, "send", "a/b", "[1]"])
    assert "name" in error_line(capsys, ["--store", store, "send", "", "{}"])
    assert "no such file" in error_line(capsys, ["--store", store, "runs"])
    assert cli.main(["--store", store, "send", "a/b"]) == 0
    capsys.readouterr()
    assert "no such run" in error_line(capsys, ["--store", store, "show", "01NOPE"])
    assert "invalid choice" in error_line(capsys, ["bogus"])
    assert "--max-concurrency" in error_line(capsys, ["run", "x", "--max-concurrency", "0"])
    (tmp_path / "notes.db").write_text("not a database")
    for argv in (["runs"], ["show", "x"], ["send", "a/b"], ["run", "two_apps.py:a"]):
        line = error_line(capsys, ["--store", "notes.db", *argv])
        assert "notes.db: not an SQLite database" in line
    assert (tmp_path / "notes.db").read_text() == "not a database"


def test_the_console_script_is_installed() -> None:
    exe = shutil.which("inngest-do")
    if exe is None:
        pytest.skip("the inngest-do console script is not on PATH")
    out = subprocess.run([exe, "--help"], capture_output=True, text=True, timeout=60,
                         check=False)
    assert out.returncode == 0 and "run" in out.stdout and "send" in out.stdout


def _store_with_runs(path: Path, steps: int = 1, runs: int = 2) -> list[str]:
    import inngest_do as inngest
    from inngest_do.testing import Simulation

    client = inngest.Inngest(app_id="c")

    @client.create_function(fn_id="f", trigger=inngest.TriggerEvent(event="go"))
    async def f(ctx: inngest.Context) -> int:
        for i in range(steps):
            await ctx.step.run("s", lambda i=i: i)
        return steps

    sim = Simulation(client, store=str(path))
    sim.send([inngest.Event(name="go") for _ in range(runs)])
    ids = [r.id for r in sim.runs()]
    sim.engine.store.close()
    return ids


def test_cli_small_things(tmp_path, capsys) -> None:
    store = tmp_path / "s.db"
    a, b = _store_with_runs(store)
    line = error_line(capsys, ["--store", str(store), "runs", "--status", "Done"])
    assert "expected one of Queued, Running" in line and "'Done'" in line
    assert cli.main(["--store", str(store), "runs", "--status", "completed"]) == 0
    assert a in capsys.readouterr().out
    common = os.path.commonprefix([a, b])
    line = error_line(capsys, ["--store", str(store), "show", common])
    assert "matches several runs" in line and a in line
    assert cli.main(["--store", str(store), "show", a[:len(common) + 1]]) == 0
    capsys.readouterr()
    for bad in ("nan", "inf", "0", "-1"):
        line = error_line(capsys, ["--store", str(store), "run", "--poll-interval", bad,
                                   str(EXAMPLE)])
        assert "--poll-interval: expected seconds" in line
    with pytest.raises(SystemExit) as exit_:
        cli.main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out.startswith("inngest-do ")


def test_show_into_a_closed_pipe_exits_quietly(tmp_path) -> None:
    store = tmp_path / "s.db"
    (run_id,) = _store_with_runs(store, steps=3000, runs=1)
    proc = subprocess.run(f"{sys.executable} -m inngest_do --store {store} show {run_id}"
                          " | head -1", shell=True, cwd=tmp_path, env=ENV, capture_output=True,
                          text=True, timeout=60, check=False)
    assert proc.stdout.startswith("run ")
    assert proc.stderr == ""
