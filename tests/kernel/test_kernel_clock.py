"""Clocks and the ms <-> datetime helpers, on every kernel implementation."""

from __future__ import annotations

import datetime as dt
import time

import pytest

from inngest_do import kernel

UTC = dt.timezone.utc


def test_virtual_clock_moves_only_when_told(core):
    clock = core.VirtualClock(1_000)
    assert clock.is_virtual is True
    assert clock.now_ms() == 1_000
    assert clock.now_ms() == 1_000
    clock.advance_by(250)
    assert clock.now_ms() == 1_250
    clock.advance_to(1_250)  # staying put is allowed
    clock.advance_to(10**12)
    assert clock.now_ms() == 10**12
    clock.advance_by(0)
    assert clock.now_ms() == 10**12


def test_virtual_clock_hands_out_one_int_per_instant(core):
    # Every trace entry and record stamped at one instant shares the int (memory per run).
    clock = core.VirtualClock(10**12)
    assert clock.now_ms() is clock.now_ms()
    assert type(clock.now_ms()) is int
    clock.advance_by(5)
    clock.advance_to(10**12 + 7)
    now = clock.now_ms()
    assert now == 10**12 + 7 and type(now) is int
    assert clock.now_ms() is now


def test_virtual_clock_survives_years_of_virtual_time(core):
    # far past 2**24 s, where float-second clocks lose millisecond resolution
    clock = core.VirtualClock(0)
    year = 366 * 86_400_000
    for _ in range(200):
        clock.advance_by(year)
        clock.advance_by(1)
    assert clock.now_ms() == 200 * (year + 1)


def test_virtual_clock_refuses_to_go_backwards(core):
    clock = core.VirtualClock(500)
    with pytest.raises(ValueError, match="clock cannot move backwards"):
        clock.advance_to(499)
    with pytest.raises(ValueError, match="d_ms must be >= 0"):
        clock.advance_by(-1)
    assert clock.now_ms() == 500


def test_virtual_clock_argument_errors(core):
    with pytest.raises(TypeError, match="start_ms must be an int"):
        core.VirtualClock(1.5)
    with pytest.raises(TypeError, match="start_ms must be an int"):
        core.VirtualClock(True)
    with pytest.raises(ValueError, match="start_ms must fit in a signed 64-bit integer"):
        core.VirtualClock(2**63)
    clock = core.VirtualClock(0)
    with pytest.raises(TypeError, match="t_ms must be an int"):
        clock.advance_to("5")
    with pytest.raises(TypeError, match="d_ms must be an int"):
        clock.advance_by(None)
    clock.advance_to(2**63 - 10)
    with pytest.raises(ValueError, match="the advanced time must fit"):
        clock.advance_by(11)
    assert clock.now_ms() == 2**63 - 10
    negative = core.VirtualClock(-5)  # virtual time may start anywhere
    assert negative.now_ms() == -5


def test_real_clock_follows_the_wall(core):
    clock = core.RealClock()
    assert clock.is_virtual is False
    before = time.time_ns() // 1_000_000
    now = clock.now_ms()
    after = time.time_ns() // 1_000_000
    assert isinstance(now, int)
    assert before <= now <= after
    with pytest.raises(TypeError, match="a real clock cannot be moved"):
        clock.advance_to(now + 1)
    with pytest.raises(TypeError, match="a real clock cannot be moved"):
        clock.advance_by(1)


@pytest.mark.parametrize(
    ("ms", "expected"),
    [
        (0, dt.datetime(1970, 1, 1, tzinfo=UTC)),
        (1, dt.datetime(1970, 1, 1, 0, 0, 0, 1000, tzinfo=UTC)),
        (-1, dt.datetime(1969, 12, 31, 23, 59, 59, 999000, tzinfo=UTC)),
        (1_700_000_000_123, dt.datetime(2023, 11, 14, 22, 13, 20, 123000, tzinfo=UTC)),
        (253_402_300_799_999, dt.datetime(9999, 12, 31, 23, 59, 59, 999000, tzinfo=UTC)),
    ],
)
def test_ms_datetime_round_trip(core, ms, expected):
    got = core.ms_to_datetime(ms)
    assert got == expected
    assert got.tzinfo is not None and got.utcoffset() == dt.timedelta(0)
    assert core.datetime_to_ms(got) == ms


def test_datetime_to_ms_naive_is_utc_and_offsets_apply(core):
    assert core.datetime_to_ms(dt.datetime(1970, 1, 1, 0, 0, 1)) == 1000
    plus_two = dt.timezone(dt.timedelta(hours=2))
    assert core.datetime_to_ms(dt.datetime(1970, 1, 1, 2, 0, 0, tzinfo=plus_two)) == 0
    # sub-millisecond parts are floored, also before the epoch
    assert core.datetime_to_ms(dt.datetime(1970, 1, 1, 0, 0, 0, 999)) == 0
    assert core.datetime_to_ms(dt.datetime(1969, 12, 31, 23, 59, 59, 999_999)) == -1


def test_datetime_helper_errors(core):
    with pytest.raises(TypeError, match="dt must be a datetime.datetime"):
        core.datetime_to_ms(dt.date(2020, 1, 1))
    with pytest.raises(TypeError, match="ms must be an int"):
        core.ms_to_datetime(1.0)


def test_kernel_exports_the_helpers():
    assert kernel.ms_to_datetime(0) == dt.datetime(1970, 1, 1, tzinfo=UTC)
    assert kernel.datetime_to_ms(dt.datetime(1970, 1, 1)) == 0
