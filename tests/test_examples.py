"""The examples a newcomer starts from run and print what the README promises."""

from __future__ import annotations

import pathlib
import runpy

import pytest

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
