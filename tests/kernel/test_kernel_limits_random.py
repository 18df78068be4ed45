"""GCRA and SeededRandom unit tests, on every kernel implementation."""

from __future__ import annotations

import re
from collections import Counter

import pytest

from ._impls import AVAILABLE

# ------------------------------------------------------------------ GCRA


def test_gcra_rate_limit_shape(core):
    # rate limit 10 per 1 s: tolerance floor(10/10) = 1 -> 2 at once, then one per 100 ms
    g = core.GCRA(10, 1_000, 1)
    assert (g.limit, g.period_ms, g.tolerance) == (10, 1_000, 1)
    assert g.acquire("k", 0) == -1
    assert g.acquire("k", 0) == -1
    assert g.acquire("k", 0) == 100
    assert g.peek("k", 99) == 100
    assert g.acquire("k", 99) == 100  # refusals consume nothing
    assert g.acquire("k", 100) == -1
    assert g.acquire("k", 100) == 200
    assert g.acquire("other", 100) == -1  # keys are independent
    assert len(g) == 2


def test_gcra_throttle_shape(core):
    # throttle limit 3 per 60 s, burst 1: tolerance = limit + burst - 1 = 3 -> 4 at once
    g = core.GCRA(3, 60_000, 3)
    assert [g.acquire("k", 0) for _ in range(4)] == [-1, -1, -1, -1]
    assert g.acquire("k", 0) == 20_000
    assert g.acquire("k", 20_000) == -1
    assert g.acquire("k", 20_000) == 40_000


def test_gcra_fractional_interval_is_exact(core):
    # T = 1000/3 ms, no tolerance. Scaled by limit=3: T_s = 1000, now_s = 3 * now_ms.
    g = core.GCRA(3, 1_000, 0)
    assert g.acquire("k", 0) == -1
    assert g.get_state("k") == 1_000  # tat 333.33.. ms
    assert g.acquire("k", 333) == 334  # ceil(333.33..)
    assert g.acquire("k", 334) == -1
    assert g.get_state("k") == 2_002  # max(1000, 1002) + 1000: tat 667.33.. ms
    assert g.acquire("k", 667) == 668
    assert g.acquire("k", 668) == -1
    assert g.get_state("k") == 3_004
    # with a backlog the interval stays exactly 1000/3 ms: three admissions per second
    g = core.GCRA(3, 1_000, 3)
    admitted = [t for t in range(3_000) if g.acquire("k", t) == -1]
    # (one attempt per ms) a burst of 4, then one every 333.33.. ms
    assert admitted == [0, 1, 2, 3, 334, 667, 1000, 1334, 1667, 2000, 2334, 2667]


def test_gcra_state_round_trip_and_forget(core):
    g = core.GCRA(5, 1_000, 0)
    assert g.get_state("k") is None
    g.acquire("k", 10)
    state = g.get_state("k")
    assert state == 10 * 5 + 1_000
    g2 = core.GCRA(5, 1_000, 0)
    g2.set_state("k", state)
    assert g2.peek("k", 10) == g.peek("k", 10) == 210
    g.acquire("old", 0)
    g.forget_before(200)  # tat of "old" = 200 ms -> dropped; "k" (210 ms) kept
    assert len(g) == 1 and g.get_state("old") is None and g.get_state("k") == state
    g.forget_before(10**6)
    assert len(g) == 0


def test_gcra_huge_values_take_the_exact_slow_path(core):
    g = core.GCRA(10**6, 10**9, 10**5)
    now = 2**63 - 1
    assert g.acquire("k", now) == -1
    assert g.get_state("k") == now * 10**6 + 10**9
    g.set_state("k", 10**40)
    assert g.peek("k", 0) == -((10**5 * 10**9 - 10**40) // 10**6)
    huge = core.GCRA(2**70, 2**70, 2**70)  # never fast, still exact
    assert huge.acquire("k", 5) == -1
    assert huge.get_state("k") == 5 * 2**70 + 2**70


def test_gcra_errors(core):
    for args, message in [
        ((0, 1, 0), "limit must be >= 1, got 0"),
        ((1, 0, 0), "period_ms must be >= 1, got 0"),
        ((1, 1, -1), "tolerance must be >= 0, got -1"),
    ]:
        with pytest.raises(ValueError, match=re.escape(message)):
            core.GCRA(*args)
    with pytest.raises(TypeError, match="limit must be an int, got float"):
        core.GCRA(1.0, 1, 0)
    with pytest.raises(TypeError, match="tolerance must be an int, got NoneType"):
        core.GCRA(1, 1, None)
    g = core.GCRA(1, 1, 0)
    with pytest.raises(ValueError, match="now_ms must be >= 0, got -1"):
        g.acquire("k", -1)
    with pytest.raises(ValueError, match="now_ms must be >= 0"):
        g.peek("k", -1)
    with pytest.raises(ValueError, match="now_ms must fit in a signed 64-bit integer"):
        g.acquire("k", 2**63)
    with pytest.raises(TypeError, match="now_ms must be an int"):
        g.forget_before(0.5)
    with pytest.raises(TypeError, match="tat_s must be an int"):
        g.set_state("k", "1")
    with pytest.raises(TypeError, match="unhashable"):
        g.acquire(["k"], 0)
    assert len(g) == 0


# ------------------------------------------------------------------ SeededRandom

# Reference splitmix64 outputs (seed 0) from the published algorithm.
SPLITMIX64_SEED0 = [0xE220A8397B1DCDAF, 0x6E789E6AA1B965F4, 0x06C45D188009454F]
SPLITMIX64_GAMMA = 0x9E3779B97F4A7C15


def test_splitmix64_reference_values(core):
    r = core.SeededRandom(0)
    assert [r.next_u64() for _ in range(3)] == SPLITMIX64_SEED0


def test_seeds_reduce_mod_2_64(core):
    a = [core.SeededRandom(-1).next_u64() for _ in range(2)]
    b = [core.SeededRandom(2**64 - 1).next_u64() for _ in range(2)]
    assert a == b
    assert core.SeededRandom(2**64 + 5).next_u64() == core.SeededRandom(5).next_u64()


def test_state_round_trip(core):
    r = core.SeededRandom(99)
    r.next_u64()
    state = r.get_state()
    tail = [r.next_u64() for _ in range(3)]
    r2 = core.SeededRandom(0)
    r2.set_state(state)
    assert [r2.next_u64() for _ in range(3)] == tail
    with pytest.raises(ValueError, match="state must be in"):
        r2.set_state(2**64)
    with pytest.raises(TypeError, match="state must be an int"):
        r2.set_state(None)


def test_randbelow_is_in_range_and_roughly_uniform(core):
    r = core.SeededRandom(7)
    counts = Counter(r.randbelow(6) for _ in range(6_000))
    assert set(counts) == set(range(6))
    assert all(800 < c < 1_200 for c in counts.values())
    assert r.randbelow(1) == 0
    assert 0 <= r.randbelow(2**64) < 2**64
    assert 0 <= r.randbelow(2**63 + 1) <= 2**63


def test_randbelow_rejection_rule():
    # n = 2**63 + 1: threshold = 2**64 mod n = 2**63 - 1; draws below it are rejected
    for _, module in AVAILABLE:
        r = module.SeededRandom(3)
        probe = module.SeededRandom(3)
        n = 2**63 + 1
        expected = None
        while expected is None:
            x = probe.next_u64()
            if x >= 2**63 - 1:
                expected = x % n
        assert r.randbelow(n) == expected
        assert r.get_state() == probe.get_state()


def test_randrange(core):
    r = core.SeededRandom(11)
    values = {r.randrange(-3, 2) for _ in range(200)}
    assert values == {-3, -2, -1, 0, 1}
    assert r.randrange(10**30, 10**30 + 1) == 10**30
    assert -(2**63) <= r.randrange(-(2**63), 2**63) < 2**63  # width exactly 2**64


def test_ulid_format(core):
    r = core.SeededRandom(5)
    u = r.ulid(1_700_000_000_000)
    assert re.fullmatch(r"[0-9A-HJKMNP-TV-Z]{26}", u)
    assert u[:10] == "01HF7YAT00"  # the timestamp part is the standard ULID encoding
    assert r.ulid(0)[:10] == "0000000000"
    assert r.ulid(2**48 - 1)[:10] == "7ZZZZZZZZZ"
    # ids from one source are distinct and sort by time
    ids = [r.ulid(ms) for ms in range(1_000, 1_100)]
    assert ids == sorted(ids) and len(set(ids)) == 100


def test_ulid_random_bits_come_from_two_draws(core):
    r = core.SeededRandom(8)
    probe = core.SeededRandom(8)
    first, second = probe.next_u64(), probe.next_u64()
    value = (123 << 80) | ((first & 0xFFFF) << 64) | second
    alphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
    expected = "".join(alphabet[(value >> s) & 31] for s in range(125, -1, -5))
    assert r.ulid(123) == expected


def test_hex(core):
    r = core.SeededRandom(0)
    assert r.hex(0) == ""
    assert r.get_state() == 0  # no draw for zero bytes
    assert r.hex(8) == f"{SPLITMIX64_SEED0[0]:016x}"
    assert r.hex(3) == f"{SPLITMIX64_SEED0[1]:016x}"[:6]
    probe = core.SeededRandom(0)
    draws = [probe.next_u64() for _ in range(5)]
    assert r.hex(9) == (f"{draws[2]:016x}" + f"{draws[3]:016x}")[:18]
    assert r.get_state() == (4 * SPLITMIX64_GAMMA) % 2**64  # 9 bytes took 2 draws


def test_random_errors(core):
    r = core.SeededRandom(1)
    with pytest.raises(TypeError, match="seed must be an int, got str"):
        core.SeededRandom("1")
    with pytest.raises(ValueError, match="n must be >= 1, got 0"):
        r.randbelow(0)
    with pytest.raises(ValueError, match=r"n must be <= 2\*\*64"):
        r.randbelow(2**64 + 1)
    with pytest.raises(TypeError, match="n must be an int"):
        r.randbelow(2.0)
    with pytest.raises(ValueError, match="empty range: lo=5 must be < hi=5"):
        r.randrange(5, 5)
    with pytest.raises(ValueError, match="range too wide"):
        r.randrange(0, 2**64 + 1)
    with pytest.raises(TypeError, match="hi must be an int"):
        r.randrange(0, None)
    with pytest.raises(ValueError, match=r"ms must be in \[0, 2\*\*48\)"):
        r.ulid(-1)
    with pytest.raises(ValueError, match=r"ms must be in \[0, 2\*\*48\)"):
        r.ulid(2**48)
    with pytest.raises(ValueError, match="nbytes must be >= 0"):
        r.hex(-1)


def test_sequences_identical_across_implementations():
    if len(AVAILABLE) < 2:
        pytest.skip("compiled kernel is not built")
    streams = []
    for _, module in AVAILABLE:
        r = module.SeededRandom(2024)
        out = []
        for i in range(2_000):
            out.append(r.next_u64())
            out.append(r.randbelow(i + 1))
            out.append(r.randrange(-i, 3 * i + 7))
            if i % 50 == 0:
                out.append(r.ulid(i * 1_000))
                out.append(r.hex(i % 13))
        streams.append(out)
    assert streams[0] == streams[1]
