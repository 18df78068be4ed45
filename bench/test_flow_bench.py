"""Flow control's cost against the plain dispatch path (issue 4).

Run: ``pytest bench/test_flow_bench.py --benchmark-only --benchmark-group-by=group``.
Each benchmark sends the same 2,000 events (over 10,000 distinct keys where a key applies)
to a function with one trivial step and runs them to completion in a Simulation; compare
each option's mean with ``plain`` in the same run.
"""

from __future__ import annotations

import datetime
import typing

import pytest

import inngest_do as inngest
from inngest_do.testing import Simulation

N_EVENTS = 2_000
N_KEYS = 10_000

OPTIONS: dict[str, dict[str, typing.Any]] = {
    "plain": {},
    "rate_limit_keyed": {"rate_limit": inngest.RateLimit(
        limit=1_000, period=datetime.timedelta(hours=1), key="event.data.user")},
    "concurrency_keyed": {"concurrency": [inngest.Concurrency(limit=5, key="event.data.user")]},
    "rate_limit+concurrency": {
        "rate_limit": inngest.RateLimit(limit=1_000, period=datetime.timedelta(hours=1),
                                        key="event.data.user"),
        "concurrency": [inngest.Concurrency(limit=5, key="event.data.user")]},
    "throttle_keyed": {"throttle": inngest.Throttle(
        limit=1_000, period=datetime.timedelta(minutes=1), key="event.data.user")},
    "idempotency": {"idempotency": "event.data.order"},
    "priority": {"priority": inngest.Priority(run="event.data.prio")},
    "cancel": {"cancel": [inngest.Cancel(event="stop", if_exp="event.data.user == async.data.user")]},
    "singleton": {"singleton": inngest.Singleton(key="event.data.order", mode="skip")},
    "debounce_keyed": {"debounce": inngest.Debounce(period=datetime.timedelta(seconds=1),
                                                    key="event.data.order")},
    "batch": {"batch_events": inngest.Batch(max_size=10, timeout=datetime.timedelta(seconds=1))},
}


def _events() -> list[inngest.Event]:
    return [inngest.Event(name="go", data={"user": i * 7 % N_KEYS, "order": i, "prio": i % 5})
            for i in range(N_EVENTS)]


@pytest.mark.parametrize("option", list(OPTIONS))
def test_flow_overhead(benchmark: typing.Any, option: str) -> None:
    benchmark.group = "flow control: 2,000 events -> runs completed"
    events = _events()

    def setup() -> tuple[tuple[Simulation], dict]:
        client = inngest.Inngest(app_id="bench")

        @client.create_function(fn_id="f", trigger=inngest.TriggerEvent(event="go"),
                                **OPTIONS[option])
        async def f(ctx: inngest.Context) -> int:
            return await ctx.step.run("one", lambda: 1)

        return (Simulation(client),), {}

    def send_all(sim: Simulation) -> None:
        sim.send(events)
        sim.run_until_idle()

    benchmark.pedantic(send_all, setup=setup, rounds=5)
