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
