"""No accepted event is lost: for every function its trigger matches, each event shows what
it did (started, rate-limited, deduplicated, idempotent, debounced into run X, batched into
run Y, skipped, throttled), and the same seed replays the same trace."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

import inngest_do as inngest
from inngest_do.testing import Simulation

from .harness import (
    FLOW,
    assert_outcomes,
    drive,
    ev,
    new_client,
    outcomes_for,
    simple_fn,
    sleepy_fn,
)
from .models import (
    HOUR_MS,
    SECOND_MS,
    batch_model,
    debounce_model,
    event_id_model,
    idempotency_model,
    rate_limit_model,
    singleton_model,
    throttle_model,
)
from .strategies import gaps, seeds, streams

S = SECOND_MS
MIN_MS = 60 * S


def every_option(client):
    """One function per option that decides an event's outcome, all on the same trigger;
    each with the model that predicts its outcomes and the outcome names it may use
    instead of the model's."""
    user = "event.data.user"
    return [
        (simple_fn(client, "rate", rate_limit=inngest.RateLimit(limit=2, period=MIN_MS,
                                                                key=user)),
         lambda s: rate_limit_model(s, limit=2, period_ms=MIN_MS, key="user"), {}),
        (simple_fn(client, "throttle", throttle=inngest.Throttle(limit=1, period=MIN_MS,
                                                                 key=user)),
         lambda s: throttle_model(s, limit=1, period_ms=MIN_MS, key="user"),
         {"throttled": {"started"}}),
        (simple_fn(client, "debounce", debounce=inngest.Debounce(period=MIN_MS, key=user)),
         lambda s: debounce_model(s, period_ms=MIN_MS, key="user"),
         {"debounced": {"started"}}),
        (simple_fn(client, "batch", batch_events=inngest.Batch(max_size=3, timeout=MIN_MS,
                                                               key=user)),
         lambda s: batch_model(s, max_size=3, timeout_ms=MIN_MS, key="user"), {}),
        (simple_fn(client, "idempotent", idempotency=user),
         lambda s: idempotency_model(s, key="user"), {"idempotent": {"rate_limited"}}),
        (sleepy_fn(client, "singleton", singleton=inngest.Singleton(key=user, mode="skip")),
         lambda s: singleton_model(s, mode="skip", key="user"), {}),
        (simple_fn(client, "plain"), lambda s: event_id_model(s), {}),
    ]


def test_every_event_has_an_outcome_for_every_function_it_matches():
    client = new_client()
    fns = every_option(client)
    sim = Simulation(client)
    stream = [(i * 10 * S, ev(i, user="a", ms=MIN_MS)) for i in range(8)]
    drive(sim, stream)
    for fn, model, also in fns:
        assert_outcomes(sim, fn, model(stream), also=also)


def test_events_no_function_matches_have_no_outcome():
    client = new_client()
    simple_fn(client, "f")
    sim = Simulation(client)
    sim.send(inngest.Event(name="flow/other", data={"seq": 0}))
    [record] = [r for r in sim.events() if r.name == "flow/other"]
    assert list(record.outcomes) == []


@FLOW
@given(data=st.data(), seed=seeds)
def test_no_accepted_event_is_lost(data, seed):
    """Every event gets exactly one outcome per function, of the kind its option's model
    gives, naming the run the model puts it in. (Event ids are left out here: their
    deduplication has its own tests in test_idempotency.py.)"""
    fields = st.fixed_dictionaries(
        {"user": st.sampled_from("ab"), "ms": st.integers(1, 120).map(lambda s: s * S)})
    stream = data.draw(streams(gaps(MIN_MS) | st.integers(0, 20).map(lambda s: s * S),
                               fields, max_events=20), label="stream")
    # Some events have another name: no function matches them, no outcome names them.
    other = data.draw(st.sets(st.integers(0, max(len(stream) - 1, 0))), label="other names")
    stream = [(t, {**e, "name": "flow/other"} if e["data"]["seq"] in other else e)
              for t, e in stream]
    matching = [(t, e) for t, e in stream if e["name"] == "flow/ev"]
    client = new_client()
    fns = every_option(client)
    sim = Simulation(client, seed=seed)
    drive(sim, stream)
    for fn, model, also in fns:
        assert_outcomes(sim, fn, model(matching), also=also)


def test_a_duplicate_event_id_is_deduplicated_for_every_function():
    client = new_client()
    fns = every_option(client)
    sim = Simulation(client)
    drive(sim, [(0, ev(0, id="x", user="a", ms=S)), (HOUR_MS, ev(1, id="x", user="b", ms=S))])
    for fn, _, _ in fns:
        got = outcomes_for(sim, fn)
        assert [kind for kind, _ in got.get(1, [])] == ["deduplicated"], fn.id
        assert len(got.get(0, [])) == 1, fn.id


def test_the_same_seed_replays_the_same_trace():
    def once():
        client = new_client()
        every_option(client)
        sim = Simulation(client, seed=1234)
        stream = sorted(((i * 7 * S + (i % 3) * HOUR_MS, ev(i, user="ab"[i % 2], ms=MIN_MS))
                         for i in range(30)), key=lambda item: item[0])
        drive(sim, stream)
        runs = [(r.id, r.fn_id, str(r.status), r.created_at, r.started_at, r.ended_at)
                for r in sim.runs()]
        return sim.trace, runs

    first, second = once(), once()
    assert first[0] == second[0]
    assert first[1] == second[1]


_TRACE_SCRIPT = """
import json
from tests.flow.test_outcomes import every_option
from tests.flow.harness import drive, ev, new_client
from inngest_do.testing import Simulation
import inngest_do
client = new_client()
every_option(client)
sim = Simulation(client, seed=99)
stream = sorted(((i * 7_000 + (i % 3) * 3_600_000, ev(i, user="ab"[i % 2], ms=60_000))
                 for i in range(30)), key=lambda item: item[0])
drive(sim, stream)
print(json.dumps({"core": inngest_do._core_impl,
                  "trace": [[e.at_ms, e.run_id, e.fn_id, e.kind, e.step, repr(e.detail)]
                            for e in sim.trace]}))
"""


def test_both_cores_give_the_same_trace():
    root = pathlib.Path(__file__).resolve().parents[2]
    out = {}
    for pure in ("0", "1"):
        env = {k: v for k, v in os.environ.items() if k != "INNGEST_DO_PURE_PYTHON"}
        if pure == "1":
            env["INNGEST_DO_PURE_PYTHON"] = "1"
        done = subprocess.run([sys.executable, "-c", _TRACE_SCRIPT], cwd=root, env=env,
                              capture_output=True, text=True, timeout=120, check=True)
        result = json.loads(done.stdout.strip().splitlines()[-1])
        out[result["core"]] = result["trace"]
    if "compiled" not in out:
        pytest.skip("compiled kernel not built")
    assert out["compiled"] == out["pure"]
