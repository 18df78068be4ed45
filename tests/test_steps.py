"""Step primitives as a function author sees them: run, ids, sleep, sleep_until,
wait_for_event and send_event, for async (``Context``) and sync (``ContextSync``) handlers.

Every test drives a Simulation (virtual clock) and checks what a user can observe: run
statuses and outputs, virtual times in the run history, and how often step bodies ran.
"""

from __future__ import annotations

import asyncio
import collections
import datetime

import pytest
from helpers import MIN, SEC, ev, only_run

import inngest_do as inngest
from inngest_do.testing import DEFAULT_START, Simulation

START = DEFAULT_START
HOUR = 60 * MIN


def times(run: inngest.Run, kind: str, step: str | None = None) -> list[datetime.datetime]:
    """Virtual times of the run's history entries of one kind (and step)."""
    return [e.at for e in run.history if e.kind == kind and (step is None or e.step == step)]


# ------------------------------------------------------------------------------------ step.run


def test_run_sync_body_with_args_returns_output(client):
    calls = collections.Counter()

    def add(a: int, b: int) -> int:
        calls["add"] += 1
        return a + b

    @client.create_function(fn_id="f", trigger=inngest.TriggerEvent(event="go"))
    async def f(ctx: inngest.Context) -> dict:
        total = await ctx.step.run("add", add, 2, 3)
        return {"total": total}

    sim = Simulation(client)
    sim.send(ev("go"))
    run = only_run(sim)
    assert run.status == "Completed"
    assert run.output == {"total": 5}
    assert calls == {"add": 1}
    assert run.steps == ["add"]


def test_run_async_body(client):
    async def fetch(user_id: int) -> dict:
        return {"id": user_id, "name": "ada"}

    @client.create_function(fn_id="f", trigger=inngest.TriggerEvent(event="go"))
    async def f(ctx: inngest.Context):
        return await ctx.step.run("fetch", fetch, ctx.event.data["uid"])

    sim = Simulation(client)
    sim.send(ev("go", uid=7))
    assert only_run(sim).output == {"id": 7, "name": "ada"}


@pytest.mark.parametrize("sync_handler", [False, True], ids=["async-fn", "sync-fn"])
def test_run_async_body_awaiting_real_asyncio(client, sync_handler):
    async def fetch() -> str:
        await asyncio.sleep(0.001)  # what an HTTP client or a database driver does
        return "fetched"

    if sync_handler:
        @client.create_function(fn_id="f", trigger=inngest.TriggerEvent(event="go"))
        def f(ctx: inngest.ContextSync):
            return ctx.step.run("fetch", fetch)
    else:
        @client.create_function(fn_id="f", trigger=inngest.TriggerEvent(event="go"))
        async def f(ctx: inngest.Context):
            return await ctx.step.run("fetch", fetch)

    sim = Simulation(client)
    sim.send(ev("go"))
    sim.run_until_idle()
    run = only_run(sim)
    assert (run.status, run.output) == ("Completed", "fetched")


def test_run_output_is_the_json_round_trip_live_and_replayed(client):
    seen = []

    @client.create_function(fn_id="f", trigger=inngest.TriggerEvent(event="go"))
    async def f(ctx: inngest.Context):
        pair = await ctx.step.run("pair", lambda: (1, 2))
        keyed = await ctx.step.run("keyed", lambda: {1: "a"})
        seen.append((pair, keyed))
        await ctx.step.sleep("nap", 10)
        return [pair, keyed]

    # coroutine_cap=0: every resume replays the handler against its memos
    sim = Simulation(client, coroutine_cap=0)
    sim.send(ev("go"))
    sim.advance(10)
    assert seen == [([1, 2], {"1": "a"})] * 2
    run = only_run(sim)
    assert run.status == "Completed"
    assert run.output == [[1, 2], {"1": "a"}]


@pytest.mark.parametrize("value", [None, False, 0, "", [], {}], ids=repr)
def test_falsy_outputs_are_memoized_too(client, value):
    calls = collections.Counter()

    def body():
        calls["body"] += 1
        return value

    @client.create_function(fn_id="f", trigger=inngest.TriggerEvent(event="go"))
    def f(ctx: inngest.ContextSync):  # replays from the start on every resume
        out = ctx.step.run("a", body)
        ctx.step.sleep("s", SEC)
        return {"out": out}

    sim = Simulation(client)
    sim.send(ev("go"))
    sim.advance(SEC)
    assert only_run(sim).output == {"out": value}
    assert calls["body"] == 1


@pytest.mark.parametrize("sync_handler,cap", [(False, 0), (True, 10_000)],
                         ids=["async-replayed", "sync"])
def test_mutating_a_step_output_does_not_change_the_memo(client, sync_handler, cap):
    if sync_handler:
        @client.create_function(fn_id="f", trigger=inngest.TriggerEvent(event="go"))
        def f(ctx: inngest.ContextSync):
            counter = ctx.step.run("load", lambda: {"n": 1})
            counter["n"] += 1  # ordinary code working on its copy
            ctx.step.sleep("s", SEC)
            return counter
    else:
        @client.create_function(fn_id="f", trigger=inngest.TriggerEvent(event="go"))
        async def f(ctx: inngest.Context):
            counter = await ctx.step.run("load", lambda: {"n": 1})
            counter["n"] += 1
            await ctx.step.sleep("s", SEC)
            return counter

    sim = Simulation(client, coroutine_cap=cap)
    sim.send(ev("go"))
    sim.advance(SEC)
    assert only_run(sim).output == {"n": 2}  # as on the live path (and with any store)


def test_mutating_send_event_ids_does_not_change_the_memo(client):
    @client.create_function(fn_id="f", trigger=inngest.TriggerEvent(event="go"))
    def f(ctx: inngest.ContextSync):
        ids = ctx.step.send_event("send", [ev("x"), ev("x")])
        ids.append("mine")
        ctx.step.sleep("s", SEC)
        return len(ids)

    sim = Simulation(client)
    sim.send(ev("go"))
    sim.advance(SEC)
    assert only_run(sim).output == 3


def test_mutating_the_event_does_not_leak_to_other_runs(client):
    @client.create_function(fn_id="mutator", trigger=inngest.TriggerEvent(event="go"))
    async def mutator(ctx: inngest.Context):
        ctx.event.data["touched"] = True
        await ctx.step.sleep("s", SEC)
        return ctx.event.data.get("touched", False)

    @client.create_function(fn_id="reader", trigger=inngest.TriggerEvent(event="go"))
    async def reader(ctx: inngest.Context):
        await ctx.step.sleep("s", 2 * SEC)
        return dict(ctx.event.data)

    sim = Simulation(client)
    sim.send(ev("go", k=1))
    sim.run_until_idle()
    assert only_run(sim, reader).output == {"k": 1}
    assert only_run(sim, mutator).event.data == {"k": 1}


@pytest.mark.parametrize("cap", [0, 10_000])
def test_run_body_runs_once_when_the_handler_replays(client, cap):
    calls = collections.Counter()

    def body(name: str) -> str:
        calls[name] += 1
        return name.upper()

    @client.create_function(fn_id="f", trigger=inngest.TriggerEvent(event="go"))
    async def f(ctx: inngest.Context):
        a = await ctx.step.run("a", body, "a")
        await ctx.step.sleep("s1", 1 * MIN)
        b = await ctx.step.run("b", body, "b")
        await ctx.step.sleep("s2", 1 * MIN)
        c = await ctx.step.run("c", body, "c")
        return a + b + c

    sim = Simulation(client, coroutine_cap=cap)
    sim.send(ev("go"))
    sim.advance(5 * MIN)
    run = only_run(sim)
    assert run.status == "Completed"
    assert run.output == "ABC"
    assert calls == {"a": 1, "b": 1, "c": 1}


def test_run_non_json_output_fails_the_run_naming_the_step(client):
    calls = collections.Counter()

    def bad():
        calls["bad"] += 1
        return object()

    @client.create_function(fn_id="f", trigger=inngest.TriggerEvent(event="go"), retries=2)
    async def f(ctx: inngest.Context):
        return await ctx.step.run("make-object", bad)

    sim = Simulation(client)
    sim.send(ev("go"))
    sim.run_until_idle()
    run = only_run(sim)
    assert run.status == "Failed"
    assert calls["bad"] == 1  # as in the SDK: the run fails at once, nothing retried
    assert run.error.name == "OutputUnserializableError"
    assert run.error.message == '"make-object" returned unserializable data'


def test_run_nan_output_is_not_json(client):
    @client.create_function(fn_id="f", trigger=inngest.TriggerEvent(event="go"), retries=0)
    async def f(ctx: inngest.Context):
        return await ctx.step.run("nan", lambda: float("nan"))

    sim = Simulation(client)
    sim.send(ev("go"))
    run = only_run(sim)
    assert run.status == "Failed"
    assert run.error.message == '"nan" returned unserializable data'


def test_function_non_json_output_fails_the_run(client):
    @client.create_function(fn_id="f", trigger=inngest.TriggerEvent(event="go"), retries=0)
    async def f(ctx: inngest.Context):
        return {1, 2}

    sim = Simulation(client)
    sim.send(ev("go"))
    run = only_run(sim)
    assert run.status == "Failed"
    # the SDK's error for a function's output JSON can't hold
    assert (run.error.name, run.error.message) == ("OutputUnserializableError",
                                                   "returned unserializable data")


# ------------------------------------------------------------------------------------ step ids


def test_repeated_step_ids_get_counter_suffixes(client):
    calls = collections.Counter()

    def body(i: int) -> int:
        calls[i] += 1
        return i * i

    @client.create_function(fn_id="f", trigger=inngest.TriggerEvent(event="go"))
    async def f(ctx: inngest.Context):
        out = []
        for i in range(3):
            out.append(await ctx.step.run("square", body, i))
            await ctx.step.sleep("tick", SEC)
        out.append(await ctx.step.run("other", body, 9))
        out.append(await ctx.step.run("square", body, 3))
        return out

    sim = Simulation(client, coroutine_cap=0)
    sim.send(ev("go"))
    sim.run_until_idle()
    run = only_run(sim)
    assert run.output == [0, 1, 4, 81, 9]
    assert run.steps == ["square", "tick", "square:1", "tick:1", "square:2", "tick:2",
                         "other", "square:3"]
    assert all(n == 1 for n in calls.values())


def test_step_ids_are_per_run(client):
    @client.create_function(fn_id="f", trigger=inngest.TriggerEvent(event="go"))
    async def f(ctx: inngest.Context):
        await ctx.step.run("a", lambda: 1)
        return ctx.event.data["n"]

    sim = Simulation(client)
    sim.send([ev("go", n=1), ev("go", n=2)])
    runs = sim.runs()
    assert [r.output for r in runs] == [1, 2]
    assert [r.steps for r in runs] == [["a"], ["a"]]


# ------------------------------------------------------------------------------------ sleep


@pytest.mark.parametrize("duration", [90 * MIN, datetime.timedelta(minutes=90)],
                         ids=["ms", "timedelta"])
def test_sleep_suspends_until_exactly_the_due_time(client, duration):
    @client.create_function(fn_id="f", trigger=inngest.TriggerEvent(event="go"))
    async def f(ctx: inngest.Context):
        await ctx.step.sleep("nap", duration)
        return await ctx.step.run("woke", lambda: sim.now.isoformat())

    sim = Simulation(client)
    sim.send(ev("go"))
    assert only_run(sim).status == "Sleeping"
    sim.advance(90 * MIN - 1)
    assert only_run(sim).status == "Sleeping"
    sim.advance(1)
    run = only_run(sim)
    assert run.status == "Completed"
    due = START + datetime.timedelta(minutes=90)
    assert run.output == due.isoformat()
    assert times(run, "sleep.started", "nap") == [START]
    assert times(run, "sleep.completed", "nap") == [due]
    assert run.ended_at == due


def test_sleep_zero_fires_on_advance_zero(client):
    @client.create_function(fn_id="f", trigger=inngest.TriggerEvent(event="go"))
    async def f(ctx: inngest.Context):
        await ctx.step.sleep("nap", 0)
        return "done"

    sim = Simulation(client)
    sim.send(ev("go"))
    sim.advance(0)
    run = only_run(sim)
    assert run.status == "Completed" and run.ended_at == START
    assert sim.now == START


def test_sleep_zero_completes_within_send(client):
    @client.create_function(fn_id="f", trigger=inngest.TriggerEvent(event="go"))
    async def f(ctx: inngest.Context):
        await ctx.step.sleep("nap", 0)
        return "done"

    sim = Simulation(client)
    sim.send(ev("go"))
    assert only_run(sim).status == "Completed"


def test_sleep_negative_duration_fails_the_run(client):
    @client.create_function(fn_id="f", trigger=inngest.TriggerEvent(event="go"), retries=0)
    async def f(ctx: inngest.Context):
        await ctx.step.sleep("nap", -5)

    sim = Simulation(client)
    sim.send(ev("go"))
    run = only_run(sim)
    assert run.status == "Failed"
    assert "sleep" in run.error.message


def test_sleep_until_aware_and_naive_datetimes(client):
    target = START + datetime.timedelta(days=2, hours=3)
    naive = (target + datetime.timedelta(hours=1)).replace(tzinfo=None)  # taken as UTC

    @client.create_function(fn_id="f", trigger=inngest.TriggerEvent(event="go"))
    async def f(ctx: inngest.Context):
        await ctx.step.sleep_until("aware", target)
        t1 = await ctx.step.run("t1", lambda: sim.now.isoformat())
        await ctx.step.sleep_until("naive", naive)
        t2 = await ctx.step.run("t2", lambda: sim.now.isoformat())
        return [t1, t2]

    sim = Simulation(client)
    sim.send(ev("go"))
    sim.advance_to(target - datetime.timedelta(milliseconds=1))
    assert only_run(sim).status == "Sleeping"
    sim.run_until_idle()
    run = only_run(sim)
    assert run.output == [target.isoformat(),
                          (target + datetime.timedelta(hours=1)).isoformat()]


def test_sleep_until_in_another_zone(client):
    paris = datetime.timezone(datetime.timedelta(hours=1))
    target = datetime.datetime(2025, 1, 1, 9, 0, tzinfo=paris)  # 08:00 UTC

    @client.create_function(fn_id="f", trigger=inngest.TriggerEvent(event="go"))
    async def f(ctx: inngest.Context):
        await ctx.step.sleep_until("nine-in-paris", target)

    sim = Simulation(client)
    sim.send(ev("go"))
    sim.run_until_idle()
    run = only_run(sim)
    assert run.ended_at == datetime.datetime(2025, 1, 1, 8, 0, tzinfo=datetime.timezone.utc)


def test_sleep_until_the_past_fires_without_time_passing(client):
    @client.create_function(fn_id="f", trigger=inngest.TriggerEvent(event="go"))
    async def f(ctx: inngest.Context):
        await ctx.step.sleep_until("past", START - datetime.timedelta(days=1))
        return "ok"

    sim = Simulation(client)
    sim.send(ev("go"))
    sim.advance(0)
    run = only_run(sim)
    assert run.status == "Completed"
    assert run.ended_at == START


# ------------------------------------------------------------------------------ wait_for_event


def test_wait_for_event_returns_the_matching_event(client):
    @client.create_function(fn_id="f", trigger=inngest.TriggerEvent(event="order/created"))
    async def f(ctx: inngest.Context):
        got = await ctx.step.wait_for_event("paid", event="order/paid",
                                            timeout=datetime.timedelta(hours=1))
        return {"name": got.name, "data": got.data, "id": got.id}

    sim = Simulation(client)
    sim.send(ev("order/created", order=1))
    assert only_run(sim).status == "Waiting"
    sim.advance(10 * MIN)
    sim.send(ev("unrelated"))
    assert only_run(sim).status == "Waiting"
    [paid_id] = sim.send(ev("order/paid", amount=30))
    run = only_run(sim)
    assert run.status == "Completed"
    assert run.output == {"name": "order/paid", "data": {"amount": 30}, "id": paid_id}
    assert times(run, "wait.completed", "paid") == [START + datetime.timedelta(minutes=10)]


def test_wait_for_event_timeout_returns_none_exactly_at_the_timeout(client):
    @client.create_function(fn_id="f", trigger=inngest.TriggerEvent(event="go"))
    async def f(ctx: inngest.Context):
        await ctx.step.sleep("first", 5 * MIN)
        got = await ctx.step.wait_for_event("w", event="never", timeout=2 * HOUR)
        return {"got": got, "at": await ctx.step.run("at", lambda: sim.now.isoformat())}

    sim = Simulation(client)
    sim.send(ev("go"))
    sim.advance(5 * MIN + 2 * HOUR - 1)
    assert only_run(sim).status == "Waiting"
    sim.advance(1)
    run = only_run(sim)
    deadline = START + datetime.timedelta(minutes=5, hours=2)
    assert run.status == "Completed"
    assert run.output == {"got": None, "at": deadline.isoformat()}
    assert times(run, "wait.timed_out", "w") == [deadline]


def test_event_sent_before_the_wait_starts_never_resumes_it(client):
    @client.create_function(fn_id="f", trigger=inngest.TriggerEvent(event="go"))
    async def f(ctx: inngest.Context):
        await ctx.step.sleep("first", MIN)
        got = await ctx.step.wait_for_event("w", event="approve", timeout=HOUR)
        return got is not None

    sim = Simulation(client)
    sim.send(ev("go"))
    sim.send(ev("approve"))  # while the run sleeps: before its wait
    sim.run_until_idle()
    run = only_run(sim)
    assert run.status == "Completed"
    assert run.output is False
    assert run.ended_at == START + datetime.timedelta(minutes=1, hours=1)


def test_the_triggering_event_does_not_resume_a_wait_for_the_same_name(client):
    @client.create_function(fn_id="f", trigger=inngest.TriggerEvent(event="ping"))
    async def f(ctx: inngest.Context):
        if ctx.event.data.get("reply"):
            return "reply"
        got = await ctx.step.wait_for_event("w", event="ping", timeout=HOUR)
        return None if got is None else got.data

    sim = Simulation(client)
    sim.send(ev("ping"))
    assert sim.runs()[0].status == "Waiting"
    sim.send(ev("ping", reply=True))
    first = sim.runs()[0]
    assert first.status == "Completed"
    assert first.output == {"reply": True}


def test_wait_for_event_takes_the_first_match_only(client):
    @client.create_function(fn_id="f", trigger=inngest.TriggerEvent(event="go"))
    async def f(ctx: inngest.Context):
        got = await ctx.step.wait_for_event("w", event="v", timeout=HOUR)
        await ctx.step.sleep("s", MIN)
        return got.data["n"]

    sim = Simulation(client, coroutine_cap=0)
    sim.send(ev("go"))
    sim.send(ev("v", n=1))
    sim.send(ev("v", n=2))
    sim.run_until_idle()
    assert only_run(sim).output == 1


def test_wait_for_event_if_exp_compares_trigger_and_incoming(client):
    @client.create_function(fn_id="f", trigger=inngest.TriggerEvent(event="order/created"))
    async def f(ctx: inngest.Context):
        got = await ctx.step.wait_for_event(
            "paid", event="order/paid", timeout=datetime.timedelta(days=1),
            if_exp="event.data.order_id == async.data.order_id && async.data.amount > 10")
        return None if got is None else got.data["amount"]

    sim = Simulation(client)
    sim.send([ev("order/created", order_id=1), ev("order/created", order_id=2)])
    sim.send(ev("order/paid", order_id=1, amount=5))  # filtered out by amount
    sim.send(ev("order/paid", order_id=2, amount=20))
    r1, r2 = sim.runs()
    assert (r1.status, r2.status) == ("Waiting", "Completed")
    assert r2.output == 20
    sim.send(ev("order/paid", order_id=1, amount=50))
    assert sim.runs()[0].output == 50


def test_one_event_resumes_many_waiting_runs(client):
    @client.create_function(fn_id="f", trigger=inngest.TriggerEvent(event="go"))
    async def f(ctx: inngest.Context):
        got = await ctx.step.wait_for_event("w", event="release", timeout=HOUR)
        return [ctx.event.data["n"], got.data["batch"]]

    sim = Simulation(client)
    sim.send([ev("go", n=i) for i in range(5)])
    assert {r.status for r in sim.runs()} == {"Waiting"}
    sim.send(ev("release", batch="b1"))
    assert [r.output for r in sim.runs()] == [[i, "b1"] for i in range(5)]


def test_wait_with_zero_timeout_returns_none_at_once(client):
    @client.create_function(fn_id="f", trigger=inngest.TriggerEvent(event="go"))
    async def f(ctx: inngest.Context):
        return await ctx.step.wait_for_event("w", event="x", timeout=0)

    sim = Simulation(client)
    sim.send(ev("go"))
    run = only_run(sim)
    assert (run.status, run.output, run.ended_at) == ("Completed", None, START)


def test_if_exp_on_a_missing_field_does_not_match(client):
    @client.create_function(fn_id="f", trigger=inngest.TriggerEvent(event="go"))
    async def f(ctx: inngest.Context):
        got = await ctx.step.wait_for_event("w", event="x", timeout=HOUR,
                                            if_exp="async.data.order.id == event.data.id")
        return None if got is None else got.data

    sim = Simulation(client)
    sim.send(ev("go", id=1))
    sim.send([ev("x"), ev("x", order="flat"), ev("x", order={"id": 2})])
    assert only_run(sim).status == "Waiting"
    sim.send(ev("x", order={"id": 1}))
    assert only_run(sim).output == {"order": {"id": 1}}


def test_invalid_if_exp_fails_the_run_clearly(client):
    @client.create_function(fn_id="f", trigger=inngest.TriggerEvent(event="go"), retries=0)
    async def f(ctx: inngest.Context):
        await ctx.step.wait_for_event("w", event="x", timeout=HOUR, if_exp="event.data.(")

    sim = Simulation(client)
    sim.send(ev("go"))
    run = only_run(sim)
    assert run.status == "Failed"
    assert "if_exp" in run.error.message


# ---------------------------------------------------------------------------------- send_event


def test_send_event_returns_ids_and_triggers_other_functions(client):
    @client.create_function(fn_id="sender", trigger=inngest.TriggerEvent(event="go"))
    async def sender(ctx: inngest.Context):
        ids = await ctx.step.send_event("notify", [ev("user/notified", n=1),
                                                   ev("user/notified", n=2)])
        one = await ctx.step.send_event("single", ev("user/notified", n=3))
        return ids + one

    @client.create_function(fn_id="receiver", trigger=inngest.TriggerEvent(event="user/notified"))
    async def receiver(ctx: inngest.Context):
        return {"n": ctx.event.data["n"], "id": ctx.event.id}

    sim = Simulation(client)
    sim.send(ev("go"))
    ids = only_run(sim, sender).output
    assert len(ids) == 3 and len(set(ids)) == 3 and all(isinstance(i, str) for i in ids)
    got = [r.output for r in sim.runs(receiver)]
    assert [g["n"] for g in got] == [1, 2, 3]
    assert [g["id"] for g in got] == ids


@pytest.mark.parametrize("cap", [0, 10_000])
def test_send_event_is_sent_once_even_on_replay(client, cap):
    @client.create_function(fn_id="sender", trigger=inngest.TriggerEvent(event="go"))
    async def sender(ctx: inngest.Context):
        first = await ctx.step.send_event("notify", ev("ping"))
        await ctx.step.sleep("s", MIN)
        again = await ctx.step.send_event("notify", ev("ping"))  # id notify:1: a new send
        await ctx.step.sleep("s", MIN)
        return first + again

    @client.create_function(fn_id="receiver", trigger=inngest.TriggerEvent(event="ping"))
    async def receiver(ctx: inngest.Context):
        return ctx.event.id

    sim = Simulation(client, coroutine_cap=cap)
    sim.send(ev("go"))
    sim.run_until_idle()
    assert only_run(sim, sender).output == [r.output for r in sim.runs(receiver)]
    assert len(sim.runs(receiver)) == 2


def test_send_event_reaches_waiting_runs(client):
    @client.create_function(fn_id="waiter", trigger=inngest.TriggerEvent(event="start"))
    async def waiter(ctx: inngest.Context):
        got = await ctx.step.wait_for_event("w", event="signal", timeout=HOUR)
        return got.data

    @client.create_function(fn_id="signaller", trigger=inngest.TriggerEvent(event="go"))
    async def signaller(ctx: inngest.Context):
        await ctx.step.send_event("sig", ev("signal", v=1))

    sim = Simulation(client)
    sim.send(ev("start"))
    sim.send(ev("go"))
    assert only_run(sim, waiter).output == {"v": 1}


# ---------------------------------------------------------------------- sync handlers (ContextSync)


def test_sync_handler_every_primitive(client):
    calls = collections.Counter()

    def body(name: str) -> str:
        calls[name] += 1
        return name

    @client.create_function(fn_id="sync", trigger=inngest.TriggerEvent(event="go"))
    def f(ctx: inngest.ContextSync) -> dict:
        a = ctx.step.run("a", body, "a")
        ctx.step.sleep("nap", 10 * MIN)
        b = ctx.step.run("b", body, "b")
        ctx.step.sleep_until("until", START + datetime.timedelta(hours=1))
        got = ctx.step.wait_for_event("w", event="reply", timeout=HOUR)
        ids = ctx.step.send_event("send", ev("sent"))
        c = ctx.step.run("c", body, "c")
        return {"steps": [a, b, c], "reply": got.data, "n_ids": len(ids)}

    @client.create_function(fn_id="sent", trigger=inngest.TriggerEvent(event="sent"))
    def sent(ctx: inngest.ContextSync) -> str:
        return "received"

    assert not f.is_handler_async
    sim = Simulation(client)
    sim.send(ev("go"))
    sim.advance(10 * MIN)
    assert only_run(sim, f).status == "Sleeping"
    sim.advance(50 * MIN)
    assert only_run(sim, f).status == "Waiting"
    sim.send(ev("reply", ok=True))
    run = only_run(sim, f)
    assert run.status == "Completed"
    assert run.output == {"steps": ["a", "b", "c"], "reply": {"ok": True}, "n_ids": 1}
    assert calls == {"a": 1, "b": 1, "c": 1}
    assert [r.output for r in sim.runs(sent)] == ["received"]


def test_sync_handler_async_step_body(client):
    async def body() -> int:
        return 41

    @client.create_function(fn_id="sync", trigger=inngest.TriggerEvent(event="go"))
    def f(ctx: inngest.ContextSync) -> int:
        return ctx.step.run("a", body) + 1

    sim = Simulation(client)
    sim.send(ev("go"))
    assert only_run(sim).output == 42


# --------------------------------------------------------------------------------- nested steps


@pytest.mark.parametrize("sync", [False, True])
def test_step_inside_a_step_body_fails_the_run_non_retriably(client, sync):
    calls = collections.Counter()

    if sync:
        @client.create_function(fn_id="f", trigger=inngest.TriggerEvent(event="go"))
        def f(ctx: inngest.ContextSync):
            def outer():
                calls["outer"] += 1
                return ctx.step.run("inner", lambda: 1)
            return ctx.step.run("outer", outer)
    else:
        @client.create_function(fn_id="f", trigger=inngest.TriggerEvent(event="go"))
        async def f(ctx: inngest.Context):
            async def outer():
                calls["outer"] += 1
                return await ctx.step.run("inner", lambda: 1)
            return await ctx.step.run("outer", outer)

    sim = Simulation(client)
    sim.send(ev("go"))
    sim.run_until_idle()
    run = only_run(sim)
    assert run.status == "Failed"
    assert calls["outer"] == 1  # not retried
    # the SDK's error, seen by the handler as the outer step's StepError
    assert run.error.message == "Nested steps are not supported."
    assert run.error.name == "CodedError"
    assert "ested" in run.error.message  # "Nested steps are not supported"
    assert run.ended_at == START


# ------------------------------------------------------------------------------ the context


def test_context_fields(client):
    @client.create_function(fn_id="f", trigger=inngest.TriggerEvent(event="go"))
    async def f(ctx: inngest.Context):
        return {"run_id": ctx.run_id, "attempt": ctx.attempt, "event": ctx.event.name,
                "events": [e.data for e in ctx.events], "logger": ctx.logger is not None}

    assert f.id == "test-app-f" and f.local_id == "f" and f.is_handler_async
    sim = Simulation(client)
    sim.send(ev("go", k=1))
    run = only_run(sim)
    assert run.output == {"run_id": run.id, "attempt": 0, "event": "go",
                          "events": [{"k": 1}], "logger": True}
    assert run.event.name == "go" and run.event.data == {"k": 1}
    assert [e.name for e in run.events] == ["go"]


def test_user_except_exception_does_not_swallow_suspensions(client):
    @client.create_function(fn_id="f", trigger=inngest.TriggerEvent(event="go"))
    async def f(ctx: inngest.Context):
        try:
            await ctx.step.sleep("nap", MIN)
            got = await ctx.step.wait_for_event("w", event="x", timeout=MIN)
        except Exception:  # noqa: BLE001 - what a user might write
            return "swallowed"
        return got

    @client.create_function(fn_id="g", trigger=inngest.TriggerEvent(event="go"))
    def g(ctx: inngest.ContextSync):
        try:
            ctx.step.sleep("nap", MIN)
        except Exception:  # noqa: BLE001
            return "swallowed"
        return "slept"

    sim = Simulation(client)
    sim.send(ev("go"))
    assert {r.status for r in sim.runs()} == {"Sleeping"}
    sim.run_until_idle()
    assert [r.output for r in sim.runs()] == [None, "slept"]


def test_server_only_client_options_are_accepted_and_ignored():
    import logging

    logger = logging.getLogger("my-app")
    client = inngest.Inngest(app_id="shop", signing_key="signkey-prod-123", event_key="k",
                             is_production=True, api_base_url="https://api.example",
                             event_api_base_url="https://events.example", env="prod",
                             app_version="1.2.3", request_timeout=5_000, logger=logger)

    @client.create_function(fn_id="f", name="Pretty name", trigger=inngest.TriggerEvent(event="go"))
    async def f(ctx: inngest.Context):
        return ctx.logger.logger is logger  # a replay-quiet proxy over it, as in the SDK

    assert (f.id, f.local_id, f.name) == ("shop-f", "f", "Pretty name")
    sim = Simulation(client)
    sim.send(ev("go"))
    assert only_run(sim).output is True


def test_run_timestamps(client):
    @client.create_function(fn_id="f", trigger=inngest.TriggerEvent(event="go"))
    async def f(ctx: inngest.Context):
        await ctx.step.sleep("s", HOUR)

    sim = Simulation(client)
    sim.advance(MIN)
    sim.send(ev("go"))
    run = only_run(sim)
    t0 = START + datetime.timedelta(minutes=1)
    assert (run.created_at, run.started_at, run.ended_at) == (t0, t0, None)
    sim.advance(HOUR)
    run = only_run(sim)
    assert run.ended_at == t0 + datetime.timedelta(hours=1)
    assert run.history[0].at == t0 and run.history[-1].at == run.ended_at
