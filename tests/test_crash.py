"""Hard kills: ``inngest-do run tests/crash_app.py`` is SIGKILLed at random points (while it
takes a burst of events, mid-step, mid-sleep, mid-commit) and restarted, again and again.

Afterwards: every event ``send`` acknowledged started exactly one run and that run completed;
every recorded step result is a body's token whose ``end`` line is in the side log (the body
ran to completion before its record); and no body of a recorded step began after that
(a recorded step never runs again). The seed is printed on failure; set CRASH_SEED to replay
the same kill schedule (timing still varies).
"""

from __future__ import annotations

import collections
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from inngest_do.storage.sqlite import StoreReader, send_events

ROOT = Path(__file__).resolve().parent.parent
APP = Path(__file__).resolve().parent / "crash_app.py"

CYCLES = 7
STEPS = ("s0", "s1", "s2")


class App:
    """One ``inngest-do run`` process on the store."""

    def __init__(self, store: Path, log: Path, errors: Path) -> None:
        self.errors = errors
        env = {**os.environ, "PYTHONPATH": str(ROOT), "CRASH_LOG": str(log)}
        with open(errors, "w") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "inngest_do", "--store", str(store), "run", str(APP),
                 "--quiet", "--poll-interval", "0.02"],
                env=env, stdout=subprocess.DEVNULL, stderr=err)
        deadline = time.monotonic() + 30
        while "running app" not in errors.read_text():  # the store is open and leased
            assert self.proc.poll() is None, errors.read_text()
            assert time.monotonic() < deadline, "the worker did not start"
            time.sleep(0.01)

    def kill(self) -> None:
        self.proc.kill()
        assert self.proc.wait(timeout=30) == -signal.SIGKILL

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        assert self.proc.wait(timeout=60) == 0, self.errors.read_text()
        assert "Traceback" not in self.errors.read_text(), self.errors.read_text()


def _log(path: Path) -> list[tuple[str, str, str, str]]:
    if not path.exists():
        return []
    return [tuple(line.split()) for line in path.read_text().splitlines()]  # type: ignore[misc]


def _unfinished(entries) -> set[str]:
    begun = {e[3] for e in entries if e[0] == "begin"}
    return begun - {e[3] for e in entries if e[0] == "end"}


@pytest.mark.slow
def test_sigkill_at_random_points_loses_nothing_and_reruns_no_recorded_step(
        tmp_path, request) -> None:
    seed = int(os.environ.get("CRASH_SEED", random.randrange(2**32)))
    request.node.add_report_section("call", "crash", f"CRASH_SEED={seed}")
    rnd = random.Random(seed)
    store, log = tmp_path / "crash.db", tmp_path / "steps.log"
    sent = 0
    seen = collections.Counter()

    def burst(count: int) -> None:
        nonlocal sent
        while count > 0:
            chunk = min(count, rnd.randint(1, 15))
            payloads = [{"name": "crash/job", "data": {"n": sent + i}, "id": "", "ts": 0}
                        for i in range(chunk)]
            send_events(store, payloads, check=False)  # acknowledged when this returns
            sent += chunk
            count -= chunk
            time.sleep(rnd.uniform(0, 0.03))

    for cycle in range(CYCLES):
        app = App(store, log, tmp_path / f"errors{cycle}.txt")
        before = len(_unfinished(_log(log)))
        if rnd.random() < 0.4:  # killed in the middle of a burst
            burst(rnd.randint(30, 50))
            app.kill()
            burst(rnd.randint(0, 20))  # the rest waits in the inbox
            seen["mid-burst"] += 1
        else:
            burst(rnd.randint(30, 60))
            time.sleep(rnd.uniform(0.0, 0.3))
            app.kill()
        seen["mid-step"] += len(_unfinished(_log(log))) - before
        with StoreReader(store, check=False) as reader:
            seen["mid-sleep"] += len(reader.runs(status="Sleeping"))

    app = App(store, log, tmp_path / "errors-final.txt")
    deadline = time.monotonic() + 60
    while True:
        with StoreReader(store, check=False) as reader:
            runs = reader.runs()
            if (len(runs) == sent and reader.inbox_size() == 0
                    and all(r["status"] == "Completed" for r in runs)):
                break
        assert time.monotonic() < deadline, (
            f"seed {seed}: {len(runs)} runs of {sent} events, "
            f"{collections.Counter(r['status'] for r in runs)}")
        time.sleep(0.1)
    app.stop()

    # every acknowledged event: accepted once, one run, completed
    assert sorted(r["events"][0]["data"]["n"] for r in runs) == list(range(sent))
    assert sent >= CYCLES * 30

    entries = _log(log)
    position = {(e[0], e[3]): i for i, e in enumerate(entries)}
    last_begin: dict[tuple[str, str], int] = {}
    for i, (kind, run_id, step, _) in enumerate(entries):
        if kind == "begin":
            last_begin[(run_id, step)] = i
    reruns = 0
    with StoreReader(store, check=False) as reader:
        for run in runs:
            memos = reader.memos(run["id"])
            tokens = [memos[s][2] for s in STEPS]
            assert run["output"]["tokens"] == tokens
            for step, token in zip(STEPS, tokens):
                end = position.get(("end", token))
                assert end is not None, f"seed {seed}: {run['id']} {step}: no end line"
                assert position[("begin", token)] < end
                assert last_begin[(run["id"], step)] < end, (
                    f"seed {seed}: {run['id']} {step} ran again after its result was recorded")
            reruns += sum(1 for e in entries if e[0] == "begin" and e[1] == run["id"]) - 3
    # the kills did land mid-step (bodies re-ran) and mid-sleep
    assert seen["mid-step"] > 0 and reruns > 0, (seed, seen, reruns)
    assert seen["mid-sleep"] > 0, (seed, seen)
