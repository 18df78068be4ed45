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


@pytest.mark.parametrize("waiting", [500, 5_000])
def test_many_runs_queued_on_one_concurrency_key(benchmark: typing.Any, waiting: int) -> None:
    """Runs waiting on a full key start one by one as slots free: the cost per run must not
    grow with the queue (compare the two sizes: ~10x the time for 10x the runs)."""
    benchmark.group = "concurrency: a long queue on one key"

    def setup() -> tuple[tuple[Simulation], dict]:
        from inngest_do.testing import busy

        client = inngest.Inngest(app_id="bench")

        @client.create_function(fn_id="q", trigger=inngest.TriggerEvent(event="go"),
                                concurrency=[inngest.Concurrency(limit=2)])
        async def q(ctx: inngest.Context) -> None:
            await ctx.step.run("work", lambda: busy(1_000))

        return (Simulation(client),), {}

    def run_all(sim: Simulation) -> None:
        sim.send([inngest.Event(name="go") for _ in range(waiting)])
        sim.run_until_idle()

    benchmark.pedantic(run_all, setup=setup, rounds=3)
