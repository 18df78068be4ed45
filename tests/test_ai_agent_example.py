"""examples/ai_agent.py in a Simulation: a crash mid-loop repeats no model call, a 429's
Retry-After sets the retry, and the approval can time out."""

from __future__ import annotations

import datetime
import pathlib
import runpy
import typing

import pytest
from helpers import SEC, only_run

import inngest_do as inngest
from inngest_do.experimental import ai
from inngest_do.testing import Simulation

EXAMPLE = pathlib.Path(__file__).resolve().parent.parent / "examples" / "ai_agent.py"


@pytest.fixture(scope="module")
def example() -> dict[str, typing.Any]:
    return runpy.run_path(str(EXAMPLE))  # its definitions, without running main()


@pytest.fixture
def model(example: dict[str, typing.Any]) -> typing.Any:
    fake = example["FakeModel"]()
    yield fake
    fake.close()


def _agent(example: dict[str, typing.Any], model: typing.Any,
           store: str | None = None) -> tuple[inngest.Inngest, Simulation]:
    client = inngest.Inngest(app_id="travel", store=store)
    adapter = ai.openai.Adapter(auth_key="sk-test-agent-key-123456", model="m",
                                base_url=model.base_url)
    example["create_agent"](client, adapter)
    return client, Simulation(client, seed=3)


def _ask(sim: Simulation, conversation: int = 1) -> None:
    sim.send(inngest.Event(name="agent/ask", data={
        "conversation_id": conversation, "question": "Travel to Lyon?"}))


def test_the_example_runs(capsys: pytest.CaptureFixture[str]) -> None:
    runpy.run_path(str(EXAMPLE), run_name="__main__")
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "progress: {'tool': 'get_weather', 'args': {'city': 'Lyon'}}"
    assert out[3].startswith("Completed {'plan': 'It is sunny, 21 C in Lyon")
    assert out[4].endswith("'approved': False}")
    assert out[5] == "model calls: 4"


def test_a_crash_mid_loop_repeats_no_model_call(example: dict[str, typing.Any],
                                                model: typing.Any,
                                                tmp_path: pathlib.Path) -> None:
    client, sim = _agent(example, model, store=str(tmp_path / "agent.db"))
    tools: list[str] = []
    sim.fail_step("model:1")  # the second model call fails once: the run is mid-loop
    progress = client.subscribe("conversation:1")
    _ask(sim)
    run = only_run(sim)
    assert run.status == "Running" and model.calls == 1
    assert run.steps == ["model", "get-weather"]
    tools.extend(m.data["tool"] for m in progress.drain() if "tool" in m.data)
    sim.crash()  # the process dies; the run resumes from the file
    sim.run_until_idle()  # the retry, then the approval times out
    assert model.calls == 2  # the first answer came back from the store
    tools.extend(m.data["tool"] for m in progress.drain() if "tool" in m.data)
    assert tools == ["get_weather"]  # the handler-code publish before the crash was not repeated
    run = only_run(sim)
    assert run.status == "Completed" and run.output["approved"] is False
    assert run.steps == ["model", "get-weather", "model:1", "approval"]


def test_a_429_retries_after_its_retry_after(example: dict[str, typing.Any],
                                             model: typing.Any) -> None:
    _client, sim = _agent(example, model)
    model.fail_next.append((429, {"Retry-After": "20"}))
    _ask(sim)
    [failed] = [e for e in only_run(sim).history if e.kind == "step.failed"]
    assert failed.step == "model" and failed.detail["retry_at_ms"] == sim.now_ms + 20 * SEC
    sim.advance(20 * SEC - 1)
    assert model.calls == 1
    sim.advance(1)
    assert model.calls == 3  # the retried call, then the call after the tool
    assert only_run(sim).status == "Waiting"


def test_the_approval_timeout_path(example: dict[str, typing.Any], model: typing.Any) -> None:
    client, sim = _agent(example, model)
    progress = client.subscribe("conversation:7", ["progress"])
    _ask(sim, conversation=7)
    sim.send(inngest.Event(name="agent/approved", data={"conversation_id": 8}))  # not ours
    sim.advance(datetime.timedelta(hours=1) - datetime.timedelta(milliseconds=1))
    assert only_run(sim).status == "Waiting"
    sim.advance(1)
    run = only_run(sim)
    assert run.status == "Completed" and run.output["approved"] is False
    assert [next(iter(m.data)) for m in progress.drain()] == [
        "tool", "awaiting_approval", "timed_out"]
    assert model.calls == 2
