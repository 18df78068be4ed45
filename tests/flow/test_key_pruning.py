"""Per-key flow-control state leaves memory once it can no longer change a decision (issue 9):
100,000 distinct keys go through every keyed option on the virtual clock; once their periods
have passed, every per-key table is empty -- in memory and in the store -- and decisions are
the same as if nothing had been forgotten."""

from __future__ import annotations

import datetime
import os

import pytest

import inngest_do as inngest
from inngest_do import _core_py
from inngest_do.testing import Simulation

from .harness import new_client

N_KEYS = int(os.environ.get("INNGEST_DO_KEYS_N", "100000"))
N_PILES = 10_000  # a pile per key: each closes (and leaves) through its own run
SEC = datetime.timedelta(seconds=1)
DAY = datetime.timedelta(days=1)
KEY = "event.data.k"


def _limited(client: inngest.Inngest) -> inngest.Function:
    """Every keyed option one function can carry at once."""
    @client.create_function(
        fn_id="limited", trigger=inngest.TriggerEvent(event="keys/ev"),
        rate_limit=inngest.RateLimit(limit=1, period=10 * SEC, key=KEY),
        throttle=inngest.Throttle(limit=1, period=10 * SEC, key=KEY),
        idempotency=KEY,
        concurrency=[inngest.Concurrency(limit=1, key=KEY)],
        singleton=inngest.Singleton(key=KEY, mode="skip"),
        cancel=[inngest.Cancel(event="keys/stop", if_exp="async.data.k == event.data.k")],
    )
    def limited(ctx: inngest.Context) -> int:
        return 1

    return limited


def _piled(client: inngest.Inngest) -> list[inngest.Function]:
    @client.create_function(
        fn_id="debounced", trigger=inngest.TriggerEvent(event="keys/ev"),
        debounce=inngest.Debounce(period=10 * SEC, key=KEY))
    def debounced(ctx: inngest.Context) -> int:
        return 1

    @client.create_function(
        fn_id="batched", trigger=inngest.TriggerEvent(event="keys/ev"),
        batch_events=inngest.Batch(max_size=2, timeout=10 * SEC, key=KEY))
    def batched(ctx: inngest.Context) -> int:
        return len(ctx.events)

    return [debounced, batched]


def _nonzero(sim: Simulation) -> dict[str, int]:
    return {name: n for name, n in sim.engine.flow.key_counts().items() if n}


def _stored_flow(sim: Simulation) -> dict:
    return {ns: space for ns, space in sim.engine.store.recover().flow.items() if space}


def _send_keys(sim: Simulation, n: int, first: int = 0) -> None:
    chunk = 2000
    for start in range(first, first + n, chunk):
        sim.send([inngest.Event(name="keys/ev", id=f"id-{i}", data={"k": f"k{i}"})
                  for i in range(start, min(start + chunk, first + n))])


@pytest.mark.slow
def test_100k_distinct_keys_leave_every_limiter_table():
    client = new_client("keys")
    fn = _limited(client)
    sim = Simulation(client, seed=7)
    _send_keys(sim, N_KEYS)
    sim.run_until_idle()
    assert len(sim.runs(fn)) == N_KEYS
    assert {r.status for r in sim.runs(fn)} == {"Completed"}
    # rate limit and throttle periods pass; idempotency and event ids last a day
    sim.advance(11 * SEC)
    counts = _nonzero(sim)
    assert set(counts) == {"idempotency", "event_ids"}, counts
    assert counts["idempotency"] == counts["event_ids"] == N_KEYS
    sim.advance(DAY)
    assert _nonzero(sim) == {}
    assert _stored_flow(sim) == {}


def test_debounce_and_batch_piles_leave_once_closed():
    client = new_client("keys")
    fns = _piled(client)
    sim = Simulation(client, seed=7)
    _send_keys(sim, N_PILES)
    assert sim.engine.flow.key_counts()["debounces"] == N_PILES
    assert sim.engine.flow.key_counts()["batches"] == N_PILES
    sim.advance(11 * SEC)
    sim.run_until_idle()
    assert [len(sim.runs(fn)) for fn in fns] == [N_PILES, N_PILES]
    assert _nonzero(sim) == {"event_ids": 2 * N_PILES}
    sim.advance(DAY)
    assert _nonzero(sim) == {}
    assert _stored_flow(sim) == {}


def test_keys_in_steady_traffic_stay_bounded_by_the_period():
    """New keys keep coming, one per second, with a 10 s rate limit: the table holds the
    keys of the last period (plus the few a decision had no turn to drop), not all."""
    client = new_client("keys")

    @client.create_function(
        fn_id="rl", trigger=inngest.TriggerEvent(event="keys/ev"),
        rate_limit=inngest.RateLimit(limit=1, period=10 * SEC, key=KEY))
    def rl(ctx: inngest.Context) -> int:
        return 1

    sim = Simulation(client, seed=3)
    for i in range(500):
        sim.send(inngest.Event(name="keys/ev", data={"k": f"k{i}"}))
        sim.advance(SEC)
        assert sim.engine.flow.key_counts()["rate"] <= 11
    assert len(sim.runs(rl)) == 500


def _mixed_stream(sim: Simulation) -> None:
    for step in range(300):
        key = f"k{(step * 7) % 13}"
        sim.send(inngest.Event(name="keys/ev", data={"k": key}))
        sim.advance(datetime.timedelta(milliseconds=(step * 7919) % 4000))


def test_forgetting_changes_no_decision(monkeypatch: pytest.MonkeyPatch):
    """The same stream with and without forgetting: identical traces and outcomes."""
    def run(forget: bool) -> tuple:
        client = new_client("keys")
        _limited(client)
        sim = Simulation(client, seed=11)
        if not forget:
            monkeypatch.setattr(sim.engine.flow, "sweep", lambda now_ms=None: None)
            monkeypatch.setattr(sim.engine.flow, "_forget_keys", lambda *a: None)
        _mixed_stream(sim)
        sim.run_until_idle()
        return sim.trace, [repr(r) for r in sim.runs()], repr(sim.events())

    assert run(True) == run(False)


def test_a_throttled_run_that_ends_waiting_leaves_no_entry():
    client = new_client("keys")

    @client.create_function(
        fn_id="th", trigger=inngest.TriggerEvent(event="keys/ev"),
        throttle=inngest.Throttle(limit=1, period=10 * SEC, key=KEY),
        cancel=[inngest.Cancel(event="keys/stop", if_exp="async.data.k == event.data.k")])
    def th(ctx: inngest.Context) -> int:
        return 1

    sim = Simulation(client, seed=5)
    sim.send([inngest.Event(name="keys/ev", data={"k": "a"}) for _ in range(3)])
    assert sim.engine.flow.key_counts()["throttled_events"] == 1  # past the burst: waits
    sim.send(inngest.Event(name="keys/stop", data={"k": "a"}))
    assert sim.engine.flow.key_counts()["throttled_events"] == 0
    sim.advance(11 * SEC)
    assert _nonzero(sim) == {"throttle": 1}  # the two admitted at once hold it for 20 s
    sim.advance(9 * SEC)
    assert _nonzero(sim) == {}
    assert sorted(r.status for r in sim.runs(th)) == ["Cancelled", "Completed", "Completed"]


@pytest.mark.parametrize("module", ["_core", "_core_py"])
def test_gcra_prune_drops_only_expired_keys_from_the_front(module: str):
    core = pytest.importorskip(f"inngest_do.{module}") if module == "_core" else _core_py
    g = core.GCRA(2, 1000, 1)  # T = 500 ms, one extra in a burst
    for i in range(5):
        g.acquire(f"k{i}", i * 100)
    g.acquire("k0", 600)  # admitted again: k0 moves to the back
    assert g.prune(700) == ["k1", "k2"]  # tat 600 and 700; k3 (800) stops the sweep
    assert g.prune(5000, 1) == ["k3"]
    assert g.prune(5000) == ["k4", "k0"]
    assert len(g) == 0 and g.prune(5000) == []
    with pytest.raises(TypeError, match="max_keys"):
        g.prune(0, "x")
