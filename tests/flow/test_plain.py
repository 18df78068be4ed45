"""A function with no flow control takes admission's short way (its run created and queued
at once); any flow-control option at all takes the full one."""

from __future__ import annotations

import datetime

import pytest

import inngest_do as inngest
from inngest_do.flow import _FnFlow

from .harness import new_client, simple_fn

MINUTE = datetime.timedelta(minutes=1)

OPTIONS = {
    "concurrency": [inngest.Concurrency(limit=1)],
    "rate_limit": inngest.RateLimit(limit=1, period=MINUTE),
    "throttle": inngest.Throttle(limit=1, period=MINUTE),
    "debounce": inngest.Debounce(period=MINUTE),
    "batch_events": inngest.Batch(max_size=2, timeout=MINUTE),
    "idempotency": "event.data.seq",
    "priority": inngest.Priority(run="event.data.seq"),
    "timeouts": inngest.Timeouts(start=MINUTE),
    "singleton": inngest.Singleton(mode="skip"),
    "cancel": [inngest.Cancel(event="flow/stop")],
}


def test_a_function_without_flow_control_is_plain() -> None:
    assert _FnFlow(simple_fn(new_client())).plain


@pytest.mark.parametrize("option", sorted(OPTIONS))
def test_any_flow_control_option_makes_it_not_plain(option: str) -> None:
    assert not _FnFlow(simple_fn(new_client(), **{option: OPTIONS[option]})).plain


def test_commits_sweep_only_once_something_is_keyed() -> None:
    from inngest_do.testing import Simulation

    client = new_client()
    simple_fn(client)
    sim = Simulation(client)
    sim.send(inngest.Event(name="flow/ev", data={"seq": 1}))
    assert not sim.engine.flow.keyed  # nothing a sweep could forget: commits skip it
    sim.send(inngest.Event(name="flow/ev", data={"seq": 2}, id="dup"))
    assert sim.engine.flow.keyed  # an event id to forget a day later
    sim.send(inngest.Event(name="flow/ev", data={"seq": 3}, id="dup"))
    assert sim.engine.flow.key_counts()["event_ids"] == 1
    sim.advance(datetime.timedelta(days=1, minutes=1))
    sim.send(inngest.Event(name="flow/ev", data={"seq": 4}))
    assert sim.engine.flow.key_counts()["event_ids"] == 0
    assert len(sim.runs()) == 3  # the duplicate within a day started nothing

    limited = new_client()
    simple_fn(limited, rate_limit=OPTIONS["rate_limit"])
    assert Simulation(limited).engine.flow.keyed
