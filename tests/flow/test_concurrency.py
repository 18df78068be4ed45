"""concurrency: at most ``limit`` executing steps per evaluated key; sleeping, waiting and
invoking runs hold no slot; each parallel step takes one; waiting work starts by (creation
time - priority), FIFO within a key; env/account scopes are shared by key value across
functions (SPEC.md section 3).

Steps take virtual time through ``inngest_do.testing.busy`` (see ``harness.Busy``), which
records when each step body ran so overlaps can be counted.
"""

from __future__ import annotations

import datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

import inngest_do as inngest
from inngest_do.testing import Simulation

from .harness import (
    FLOW,
    TRIGGER,
    Busy,
    assert_runs,
    busy_fn,
    drive,
    ev,
    new_client,
    rejects,
    rel_ms,
)
from .models import SECOND_MS, concurrency_model
from .strategies import gaps, seeds, streams

S = SECOND_MS
HOUR = datetime.timedelta(hours=1)


def run_busy(stream, concurrency, seed=0, label=None, **options):
    client = new_client()
    rec = Busy()
    kwargs = {"label": label} if label else {}
    fn = busy_fn(client, rec, concurrency=concurrency, **kwargs, **options)
    sim = rec.attach(Simulation(client, seed=seed))
    drive(sim, stream)
    return sim, fn, rec


def starts(sim, fn):
    return sorted((r.event.data["seq"], rel_ms(sim, r.started_at)) for r in sim.runs(fn))


def program_fn(client, rec, fn_id="f", event=TRIGGER, **options):
    """Runs ``event.data.prog``: a list of ["busy", ms], ["par", ms] (two busy steps in
    ``ctx.group.parallel``), ["sleep", ms] or ["wait", ms] (wait_for_event on "flow/never"
    with that timeout); step bodies are labelled (seq, user)."""

    @client.create_function(fn_id=fn_id, trigger=inngest.TriggerEvent(event=event), **options)
    async def fn(ctx: inngest.Context) -> int:
        label = (ctx.event.data["seq"], ctx.event.data.get("user"))
        for i, (op, ms) in enumerate(ctx.event.data["prog"]):
            if op == "busy":
                await ctx.step.run(f"work-{i}", rec.body(label, ms))
            elif op == "par":
                await ctx.group.parallel(tuple(
                    (lambda i=i, j=j, ms=ms: ctx.step.run(f"par-{i}-{j}", rec.body(label, ms)))
                    for j in range(2)))
            elif op == "sleep":
                await ctx.step.sleep(f"nap-{i}", ms)
            else:
                await ctx.step.wait_for_event(f"wait-{i}", event="flow/never", timeout=ms)
        return ctx.event.data["seq"]

    return fn


# ----------------------------------------------------------------------------------- examples


def test_limit_one_runs_one_step_at_a_time_in_arrival_order():
    stream = [(0, ev(i, ms=10 * S)) for i in range(3)]
    sim, fn, rec = run_busy(stream, [inngest.Concurrency(limit=1)])
    assert starts(sim, fn) == [(0, 0), (1, 10 * S), (2, 20 * S)]
    assert sorted((s, e) for _, s, e in rec.intervals) == [(0, 10 * S), (10 * S, 20 * S),
                                                          (20 * S, 30 * S)]
    assert [r.status for r in sim.runs(fn)] == ["Completed"] * 3


def test_runs_waiting_for_a_slot_are_queued():
    client = new_client()
    rec = Busy()
    fn = busy_fn(client, rec, concurrency=[inngest.Concurrency(limit=1)])
    sim = rec.attach(Simulation(client))
    drive(sim, [(0, ev(i, ms=10 * S)) for i in range(2)], idle=False)
    assert [r.status for r in sim.runs(fn)] != ["Completed", "Completed"]
    assert sim.runs(fn)[1].status == "Queued"
    assert sim.runs(fn)[1].started_at is None


def test_a_key_limits_each_value_apart():
    stream = [(0, ev(0, user="a", ms=10 * S)), (0, ev(1, user="a", ms=10 * S)),
              (0, ev(2, user="b", ms=10 * S))]
    sim, fn, _ = run_busy(stream, [inngest.Concurrency(limit=1, key="event.data.user")])
    assert starts(sim, fn) == [(0, 0), (1, 10 * S), (2, 0)]


def test_two_limits_both_apply():
    stream = [(0, ev(0, user="a", ms=10 * S)), (0, ev(1, user="a", ms=10 * S)),
              (0, ev(2, user="b", ms=10 * S)), (0, ev(3, user="c", ms=10 * S))]
    sim, fn, _ = run_busy(stream, [inngest.Concurrency(limit=2),
                                   inngest.Concurrency(limit=1, key="event.data.user")])
    assert starts(sim, fn) == [(0, 0), (1, 10 * S), (2, 0), (3, 10 * S)]


def test_fifo_within_a_key_when_the_function_limit_is_also_full():
    # a0 and b2 start; a1 waits on key a, a3 on key a and the function limit. When both
    # finish, a1 (older, same key) must go before a3.
    stream = [(0, ev(0, user="a", ms=S)), (0, ev(1, user="a", ms=S)),
              (0, ev(2, user="b", ms=S)), (0, ev(3, user="a", ms=S))]
    sim, fn, _ = run_busy(stream, [inngest.Concurrency(limit=2),
                                   inngest.Concurrency(limit=1, key="event.data.user")])
    assert starts(sim, fn) == [(0, 0), (1, S), (2, 0), (3, 2 * S)]


def test_a_sleeping_run_holds_no_slot():
    client = new_client()
    rec = Busy()
    fn = program_fn(client, rec, concurrency=[inngest.Concurrency(limit=1)])
    sim = rec.attach(Simulation(client))
    long = [["busy", S], ["sleep", 3_600 * S], ["busy", S]]
    drive(sim, [(0, ev(0, prog=long)), (10 * S, ev(1, prog=[["busy", S]]))])
    assert starts(sim, fn) == [(0, 0), (1, 10 * S)]
    assert sorted(s for _, s, _ in rec.intervals) == [0, 10 * S, 3_601 * S]


def test_a_waiting_run_holds_no_slot():
    client = new_client()
    rec = Busy()
    fn = program_fn(client, rec, concurrency=[inngest.Concurrency(limit=1)])
    sim = rec.attach(Simulation(client))
    waits = [["busy", S], ["wait", 3_600 * S], ["busy", S]]
    drive(sim, [(0, ev(0, prog=waits)), (10 * S, ev(1, prog=[["busy", S]]))])
    assert starts(sim, fn) == [(0, 0), (1, 10 * S)]


def test_an_invoking_run_holds_no_slot():
    client = new_client()
    rec = Busy()

    @client.create_function(fn_id="child", trigger=inngest.TriggerEvent(event="flow/child"))
    async def child(ctx: inngest.Context) -> str:
        await ctx.step.run("work", rec.body("child", 60 * S))
        return "done"

    @client.create_function(fn_id="parent", trigger=inngest.TriggerEvent(event=TRIGGER),
                            concurrency=[inngest.Concurrency(limit=1)])
    async def parent(ctx: inngest.Context) -> str:
        if ctx.event.data["seq"] == 0:
            return await ctx.step.invoke("call", function=child, data={})
        await ctx.step.run("work", rec.body("parent", S))
        return "quick"

    sim = rec.attach(Simulation(client))
    drive(sim, [(0, ev(0)), (10 * S, ev(1))])
    assert starts(sim, parent) == [(0, 0), (1, 10 * S)]
    assert [r.output for r in sim.runs(parent)] == ["done", "quick"]


def test_each_parallel_step_takes_a_slot():
    client = new_client()
    rec = Busy()

    @client.create_function(fn_id="f", trigger=inngest.TriggerEvent(event=TRIGGER),
                            concurrency=[inngest.Concurrency(limit=2)])
    async def fn(ctx: inngest.Context) -> tuple:
        return await ctx.group.parallel(tuple(
            (lambda i=i: ctx.step.run(f"p{i}", rec.body(i, 10 * S))) for i in range(3)))

    sim = rec.attach(Simulation(client))
    drive(sim, [(0, ev(0))])
    assert sorted(s for _, s, _ in rec.intervals) == [0, 0, 10 * S]
    assert rec.max_overlap(lambda _: "all") == {"all": 2}
    assert sim.runs(fn)[0].status == "Completed"


@pytest.mark.parametrize("scope", ["account", "env"])
def test_account_and_env_scopes_are_shared_by_key_value_across_functions(scope):
    client = new_client()
    rec = Busy()
    limit = [inngest.Concurrency(limit=1, key="event.data.acct", scope=scope)]
    f = busy_fn(client, rec, "f", "flow/f", concurrency=limit)
    g = busy_fn(client, rec, "g", "flow/g", concurrency=limit)
    sim = rec.attach(Simulation(client))
    drive(sim, [(0, ev(0, "flow/f", acct=1, ms=10 * S)), (0, ev(1, "flow/g", acct=1, ms=10 * S)),
                (0, ev(2, "flow/g", acct=2, ms=10 * S))])
    assert starts(sim, f) == [(0, 0)]
    assert starts(sim, g) == [(1, 10 * S), (2, 0)]


def test_fn_scope_keys_are_not_shared_across_functions():
    client = new_client()
    rec = Busy()
    limit = [inngest.Concurrency(limit=1, key="event.data.acct")]
    f = busy_fn(client, rec, "f", "flow/f", concurrency=limit)
    g = busy_fn(client, rec, "g", "flow/g", concurrency=limit)
    sim = rec.attach(Simulation(client))
    drive(sim, [(0, ev(0, "flow/f", acct=1, ms=10 * S)), (0, ev(1, "flow/g", acct=1, ms=10 * S))])
    assert starts(sim, f) == [(0, 0)]
    assert starts(sim, g) == [(1, 0)]


def test_a_batched_runs_key_comes_from_its_first_event():
    client = new_client()
    rec = Busy()

    @client.create_function(fn_id="f", trigger=inngest.TriggerEvent(event=TRIGGER),
                            batch_events=inngest.Batch(max_size=2, timeout=HOUR),
                            concurrency=[inngest.Concurrency(limit=1, key="event.data.user")])
    async def fn(ctx: inngest.Context) -> list[int]:
        seqs = [e.data["seq"] for e in ctx.events]
        await ctx.step.run("work", rec.body(tuple(seqs), 10 * S))
        return seqs

    sim = rec.attach(Simulation(client))
    # Two batches, (a, b) and (a, c): both keyed "a", so they run one after the other.
    drive(sim, [(0, ev(0, user="a")), (0, ev(1, user="b")), (0, ev(2, user="a")),
                (0, ev(3, user="c"))])
    assert sorted((rel_ms(sim, r.started_at), r.output) for r in sim.runs(fn)) == [
        (0, [0, 1]), (10 * S, [2, 3])]


def test_an_older_runs_next_step_goes_before_a_newer_runs_first():
    # Waiting work is ordered by run creation time: run 0's later steps keep their place.
    stream = [(0, ev(0, user="a", ms=10 * S, steps=3)), (S, ev(1, user="a", ms=10 * S))]
    sim, fn, _ = run_busy(stream, [inngest.Concurrency(limit=1, key="event.data.user")])
    assert starts(sim, fn) == [(0, 0), (1, 30 * S)]


# --------------------------------------------------------------------------------- validation


@pytest.mark.parametrize(("options", "match"), [
    (lambda: {"concurrency": [inngest.Concurrency(limit=0)]}, "concurrency[0].limit"),
    (lambda: {"concurrency": [inngest.Concurrency(limit=1),
                              inngest.Concurrency(limit=-1, key="event.data.u")]},
     "concurrency[1].limit"),
    (lambda: {"concurrency": [inngest.Concurrency(limit=1)] * 3}, "concurrency"),
    (lambda: {"concurrency": [inngest.Concurrency(limit=1, scope="account")]},
     "concurrency[0].key"),
    (lambda: {"concurrency": [inngest.Concurrency(limit=1, scope="env")]}, "concurrency[0].key"),
    (lambda: {"concurrency": [inngest.Concurrency(limit=1, key="event.data.(")]},
     "concurrency[0].key"),
    (lambda: {"concurrency": [inngest.Concurrency(limit=1, key="steps.x")]},
     "concurrency[0].key"),
    (lambda: {"concurrency": [inngest.Concurrency(limit=1, scope="global", key="event.id")]},
     "scope"),
    (lambda: {"concurrency": [inngest.Concurrency(limit="1")]}, "limit"),
    (lambda: {"concurrency": ["10"]}, "concurrency"),
])
def test_invalid_concurrency_is_rejected_naming_the_field(options, match):
    rejects(options, match)


# --------------------------------------------------------------------------------- properties

durations_ms = st.integers(1, 120).map(lambda s: s * S) | st.integers(S, 600 * S)


@FLOW
@given(data=st.data(), fn_limit=st.none() | st.integers(1, 4), key_limit=st.none()
       | st.integers(1, 3), prioritized=st.booleans(), seed=seeds)
def test_start_times_match_the_model(data, fn_limit, key_limit, prioritized, seed):
    if fn_limit is None and key_limit is None:
        fn_limit = 1
    fields = {"user": st.sampled_from("abc"), "ms": durations_ms,
              "p": st.integers(-700, 700) | st.just("high")}
    stream = data.draw(streams(gaps(60 * S), st.fixed_dictionaries(fields), max_events=25),
                       label="stream")
    limits = []
    if fn_limit is not None:
        limits.append(inngest.Concurrency(limit=fn_limit))
    if key_limit is not None:
        limits.append(inngest.Concurrency(limit=key_limit, key="event.data.user"))
    options = {"priority": inngest.Priority(run="event.data.p")} if prioritized else {}
    sim, fn, _ = run_busy(stream, limits, seed, **options)

    def slots(e):
        out = [("fn", fn_limit)] if fn_limit is not None else []
        return out + ([(e["data"]["user"], key_limit)] if key_limit is not None else [])

    models = [concurrency_model(stream, slots=slots, duration=lambda e: e["data"]["ms"],
                                priority=(lambda e: e["data"]["p"]) if prioritized else None,
                                simultaneous=how)
              for how in ("together", "one_by_one")]
    assert_runs(sim, fn, models, ("status", "created_ms", "started_ms"))


programs = st.lists(st.tuples(st.sampled_from(["busy", "busy", "par", "sleep", "wait"]),
                              st.integers(1, 600).map(lambda s: s * S)), min_size=1, max_size=4)


@FLOW
@given(data=st.data(), fn_limit=st.integers(1, 4), key_limit=st.integers(1, 3), seed=seeds)
def test_concurrency_never_exceeds_its_limit_at_any_instant(data, fn_limit, key_limit, seed):
    fields = {"user": st.sampled_from("abc"), "prog": programs}
    stream = data.draw(streams(gaps(60 * S), st.fixed_dictionaries(fields), max_events=20),
                       label="stream")
    client = new_client()
    rec = Busy()
    fn = program_fn(client, rec, concurrency=[
        inngest.Concurrency(limit=fn_limit),
        inngest.Concurrency(limit=key_limit, key="event.data.user")])
    sim = rec.attach(Simulation(client, seed=seed))
    drive(sim, stream)
    assert [str(r.status) for r in sim.runs(fn)] == ["Completed"] * len(stream), f"seed={seed}"
    whole = rec.max_overlap(lambda label: "fn")
    assert whole.get("fn", 0) <= fn_limit, f"seed={seed}: {whole}"
    per_user = rec.max_overlap(lambda label: label[1])
    assert all(n <= key_limit for n in per_user.values()), f"seed={seed}: {per_user}"
    busy_steps = sum({"busy": 1, "par": 2}.get(op, 0)
                     for _, e in stream for op, _ in e["data"]["prog"])
    assert len(rec.intervals) == busy_steps, f"seed={seed}: each step body runs once"
