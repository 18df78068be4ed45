"""``experimental.mocked.trigger`` on a run of 1,000 steps: ours against the SDK's.

    python -m pytest bench/test_mocked_bench.py --benchmark-only -p no:cacheprovider

Ours runs the handler once on a Simulation (an async handler's coroutine is kept; a sync
handler goes on inline after each step). The SDK's mocked re-invokes the handler about twice
per step (plan, then run the planned step), so its cost grows with the square of the step
count: it is timed at ``SDK_STEPS`` steps (one round) to keep the suite short; at 1,000 it
takes tens of seconds (figures in bench/README.md, "mocked").
"""

from __future__ import annotations

import typing

import pytest

import inngest_do as inngest
from inngest_do.experimental import mocked

N_STEPS = 1_000
SDK_STEPS = 200


def _ours(sync: bool) -> typing.Callable[[], object]:
    app = inngest.Inngest(app_id="bench")
    trig = inngest.TriggerEvent(event="go")
    if sync:
        @app.create_function(fn_id="many", trigger=trig)
        def many_sync(ctx: inngest.ContextSync) -> int:
            return sum(ctx.step.run("s", lambda i=i: i) for i in range(N_STEPS))
        fn = many_sync
    else:
        @app.create_function(fn_id="many", trigger=trig)
        async def many(ctx: inngest.Context) -> int:
            total = 0
            for i in range(N_STEPS):
                total += await ctx.step.run("s", lambda i=i: i)
            return total
        fn = many
    client = mocked.Inngest(app_id="bench-mock")
    event = inngest.Event(name="go")
    return lambda: mocked.trigger(fn, event, client)


@pytest.mark.benchmark(group="mocked: 1,000 steps")
@pytest.mark.parametrize("sync", [False, True], ids=["async", "sync"])
def test_ours_1000_steps(benchmark: typing.Any, sync: bool) -> None:
    res = benchmark(_ours(sync))
    assert res.status is mocked.Status.COMPLETED
    assert res.output == N_STEPS * (N_STEPS - 1) // 2


@pytest.mark.benchmark(group="mocked: the SDK's")
def test_sdk_steps(benchmark: typing.Any) -> None:
    sdk = pytest.importorskip("inngest")
    sdk_mocked = pytest.importorskip("inngest.experimental.mocked")
    app = sdk.Inngest(app_id="bench", is_production=False)

    @app.create_function(fn_id="many", trigger=sdk.TriggerEvent(event="go"))
    async def many(ctx: typing.Any) -> int:
        total = 0
        for i in range(SDK_STEPS):
            total += await ctx.step.run("s", lambda i=i: i)
        return total

    client = sdk_mocked.Inngest(app_id="bench-mock", is_production=False)
    res = benchmark.pedantic(sdk_mocked.trigger, args=(many, sdk.Event(name="go"), client),
                             rounds=1, iterations=1)
    assert res.output == SDK_STEPS * (SDK_STEPS - 1) // 2
