"""The arithmetic cron evaluator (inngest_do.cron) against croniter, the reference it replaces.

A schedule must tick at the same instants whichever computes them: the property tests draw
random expressions (numbers, lists, ranges, wrapping ranges, steps, names, ``?``, ``7`` and
the odd ``L``/``#`` that croniter keeps evaluating) and random start instants, in UTC and in
zones with and without daylight-saving changes, and compare every tick of a chain.
"""

from __future__ import annotations

import datetime
from zoneinfo import ZoneInfo

import pytest
from croniter import croniter
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import inngest_do as inngest
from inngest_do.cron import CRON_EVENT, CronFields, CronTicker, ZoneTransitions
from inngest_do.kernel import ms_to_datetime
from inngest_do.testing import Simulation
from inngest_do.triggers import CronSchedule

UTC = datetime.timezone.utc
MINUTE = 60_000
DAY = 86_400_000


def ms(*args: int, tz: datetime.tzinfo = UTC) -> int:
    return int(datetime.datetime(*args, tzinfo=tz).timestamp() * 1000)


def reference_ticks(schedule: CronSchedule, start_ms: int, count: int) -> list[int]:
    """``count`` ticks after ``start_ms`` as croniter computes them (what CronSchedule did
    before it had its own evaluator: a fresh croniter from each tick)."""
    zone = ZoneInfo(schedule.timezone) if schedule.timezone != "UTC" else UTC
    out = []
    at = start_ms
    for _ in range(count):
        start = datetime.datetime.fromtimestamp(at // 1000, tz=zone)
        tick = croniter(schedule.cron, start).get_next(datetime.datetime)
        at = int(tick.timestamp()) * 1000
        out.append(at)
    return out


def ticks(schedule: CronSchedule, start_ms: int, count: int) -> list[int]:
    out = []
    at = start_ms
    for _ in range(count):
        at = schedule.next_after(at)
        out.append(at)
    return out


# -- random expressions -------------------------------------------------------------------

_BOUNDS = ((0, 59), (0, 23), (1, 31), (1, 12), (0, 7))
_NAMES = ((), (), (), ("JAN", "feb", "Mar", "APR", "jun", "SEP", "oct", "DEC"),
          ("SUN", "mon", "Tue", "WED", "thu", "FRI", "sat"))


@st.composite
def _value(draw: st.DrawFn, index: int) -> str:
    low, high = _BOUNDS[index]
    if _NAMES[index] and draw(st.booleans()):
        return draw(st.sampled_from(_NAMES[index]))
    return str(draw(st.integers(low, high)))


@st.composite
def _item(draw: st.DrawFn, index: int) -> str:
    kind = draw(st.sampled_from(("value", "value", "range", "range_step", "star_step",
                                 "start_step")))
    step = str(draw(st.integers(1, 40)))
    if kind == "value":
        return draw(_value(index))
    if kind == "star_step":
        return f"*/{step}"
    if kind == "start_step":
        return f"{draw(_value(index))}/{step}"
    first, last = draw(_value(index)), draw(_value(index))
    return f"{first}-{last}" + (f"/{step}" if kind == "range_step" else "")


@st.composite
def _field(draw: st.DrawFn, index: int) -> str:
    choice = draw(st.integers(0, 9))
    if choice <= 2:
        return "*"
    if choice == 3 and index in (2, 4):
        return "?"
    if choice == 4 and index == 2:
        return draw(st.sampled_from(("L", "15W", "L-3")))  # croniter keeps these
    if choice == 4 and index == 4:
        return draw(st.sampled_from(("L5", "MON#2", "1#5")))
    return ",".join(draw(st.lists(_item(index), min_size=1, max_size=3)))


@st.composite
def expressions(draw: st.DrawFn) -> str:
    return " ".join(draw(_field(index)) for index in range(5))


def _schedule_or_none(expr: str) -> CronSchedule | None:
    try:
        return CronSchedule(expr)
    except ValueError:
        return None  # croniter rejects it (out of range, a schedule that never fires...)


# 1901..2099: croniter's own range, our evaluator's is wider
_starts = st.integers(ms(1971, 1, 1), ms(2099, 1, 1))


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(expr=expressions(), start=_starts)
def test_utc_ticks_equal_croniter(expr: str, start: int) -> None:
    schedule = _schedule_or_none(expr)
    if schedule is None:
        return
    assert ticks(schedule, start, 12) == reference_ticks(schedule, start, 12), expr


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(expr=expressions(),
       zone=st.sampled_from(("Europe/Paris", "America/New_York", "Australia/Lord_Howe",
                             "Etc/GMT+5", "Etc/GMT-14", "UTC", "Asia/Kolkata", "Europe/Dublin",
                             "America/Santiago", "Pacific/Apia")),
       start=st.one_of(_starts,
                       # a day either side of 2024's and 2031's changes in Paris and New York
                       st.integers(ms(2024, 3, 9), ms(2024, 3, 12)),
                       st.integers(ms(2024, 10, 26), ms(2024, 11, 4)),
                       st.integers(ms(2031, 3, 29), ms(2031, 3, 31))))
def test_zoned_ticks_equal_croniter(expr: str, zone: str, start: int) -> None:
    schedule = _schedule_or_none(f"TZ={zone} {expr}")
    if schedule is None:
        return
    assert ticks(schedule, start, 8) == reference_ticks(schedule, start, 8), expr


@settings(max_examples=100, deadline=None)
@given(expr=expressions())
def test_parse_is_total(expr: str) -> None:
    """Every line either parses into tables or is left to croniter; nothing raises."""
    fields = CronFields.parse(expr)
    assert fields is None or fields.line == expr


# -- edge cases -----------------------------------------------------------------------------

def test_every_minute_is_arithmetic() -> None:
    schedule = CronSchedule("* * * * *")
    assert schedule._fields is not None
    start = ms(2024, 12, 31, 23, 58, 30)
    assert ticks(schedule, start, 3) == [ms(2024, 12, 31, 23, 59), ms(2025, 1, 1),
                                         ms(2025, 1, 1, 0, 1)]
    # a tick at exactly the instant is not returned, a millisecond before it is
    assert schedule.next_after(ms(2025, 1, 1)) == ms(2025, 1, 1, 0, 1)
    assert schedule.next_after(ms(2025, 1, 1) - 1) == ms(2025, 1, 1)


def test_feb_29() -> None:
    leap = CronSchedule("0 0 29 2 *")
    assert leap.next_after(ms(2025, 3, 1)) == ms(2028, 2, 29)
    assert leap.next_after(ms(2096, 2, 29)) == ms(2104, 2, 29)  # 2100 is not a leap year
    assert leap.next_after(ms(2399, 1, 1)) == ms(2400, 2, 29)  # 2400 is


def test_day_of_month_or_day_of_week() -> None:
    # both restricted: the 13th or a Friday
    either = CronSchedule("0 0 13 * FRI")
    assert ticks(either, ms(2024, 9, 1), 4) == [ms(2024, 9, 6), ms(2024, 9, 13),
                                               ms(2024, 9, 20), ms(2024, 9, 27)]
    # day of month alone (day of week '*') and day of week alone (day of month '?')
    assert CronSchedule("0 0 13 * *").next_after(ms(2024, 9, 1)) == ms(2024, 9, 13)
    assert CronSchedule("0 0 ? * FRI").next_after(ms(2024, 9, 1)) == ms(2024, 9, 6)
    # a full day-of-month range stays restricted (either rule: every day) unless the
    # day-of-week field has a '*'
    assert CronSchedule("0 0 1-31 * MON").next_after(ms(2024, 9, 3)) == ms(2024, 9, 4)
    assert CronSchedule("0 0 1-31 * */7").next_after(ms(2024, 9, 3)) == ms(2024, 9, 8)


def test_steps_and_wrapping_ranges() -> None:
    every7 = CronSchedule("*/7 * * * *")
    assert ticks(every7, ms(2024, 1, 1, 0, 50), 3) == [ms(2024, 1, 1, 0, 56), ms(2024, 1, 1, 1),
                                                      ms(2024, 1, 1, 1, 7)]
    assert CronSchedule("59/15 * * * *").next_after(ms(2024, 1, 1)) == ms(2024, 1, 1, 0, 59)
    assert CronSchedule("5-5 * * * *").next_after(ms(2024, 1, 1)) == ms(2024, 1, 1, 0, 1)
    night = CronSchedule("0 22-2 * * *")
    assert ticks(night, ms(2024, 1, 1, 3), 5) == [ms(2024, 1, 1, 22), ms(2024, 1, 1, 23),
                                                 ms(2024, 1, 2), ms(2024, 1, 2, 1),
                                                 ms(2024, 1, 2, 2)]
    weekend = CronSchedule("0 0 * * FRI-MON")  # Fri, Sat, Sun, Mon
    assert ticks(weekend, ms(2024, 9, 3), 4) == [ms(2024, 9, 6), ms(2024, 9, 7), ms(2024, 9, 8),
                                                ms(2024, 9, 9)]
    assert CronSchedule("0 0 * * 7").next_after(ms(2024, 9, 3)) == ms(2024, 9, 8)  # Sunday


def test_end_of_year_and_month() -> None:
    assert CronSchedule("59 23 31 12 *").next_after(ms(2024, 12, 31, 23, 59)) == \
        ms(2025, 12, 31, 23, 59)
    assert CronSchedule("@yearly").next_after(ms(2024, 12, 31, 23, 59, 59)) == ms(2025, 1, 1)
    # the 31st skips the months that have none
    assert ticks(CronSchedule("0 0 31 * *"), ms(2024, 1, 31), 3) == [
        ms(2024, 3, 31), ms(2024, 5, 31), ms(2024, 7, 31)]


# Dublin's DST is negative, Santiago's rule changes at 24:00, Lord Howe's by 30 minutes, Apia
# skipped 30 December 2011, Casablanca's changes come from the table, not a rule.
_DST_ZONES = {"Europe/Paris": [(2024, 3, 31), (2024, 10, 27)],
              "America/New_York": [(2024, 3, 10), (2024, 11, 3)],
              "Australia/Lord_Howe": [(2024, 4, 7), (2024, 10, 6)],
              "America/Santiago": [(2024, 4, 7), (2024, 9, 8)],
              "Europe/Dublin": [(2031, 3, 30), (2031, 10, 26)],
              "Pacific/Apia": [(2011, 12, 30)],
              "Africa/Casablanca": [(2024, 3, 10), (2024, 4, 14)]}


@pytest.mark.parametrize("zone", sorted(_DST_ZONES))
@pytest.mark.parametrize("expr", ["* * * * *", "*/7 * * * *", "0 2 * * *", "30 1 * * *",
                                  "15 2,3 * * *", "0 0 * * *"])
def test_ticks_across_offset_changes_equal_croniter(zone: str, expr: str) -> None:
    if zone == "Pacific/Apia" and expr.startswith("*"):
        pytest.skip("croniter, the reference, takes ~10 s for a minute tick over Apia's gap")
    schedule = CronSchedule(f"TZ={zone} {expr}")
    assert schedule._fields is not None  # arithmetic away from the changes
    changes = ZoneTransitions.load(zone)
    assert changes is not None
    for day in _DST_ZONES[zone]:
        _, change = changes.span(ms(*day) // 1000 - DAY // 1000)  # the change near that day
        assert abs(change * 1000 - ms(*day)) < 2 * DAY
        # from an hour before it (every minute, every 7) or 3 days before it (daily)
        start, count = ((change - 3600) * 1000, 120) if expr.startswith("*") else (
            change * 1000 - 3 * DAY, 6)
        assert ticks(schedule, start, count) == reference_ticks(schedule, start, count)


@pytest.mark.parametrize("zone", [*_DST_ZONES, "Asia/Tehran", "America/Nuuk", "Europe/London",
                                  "Australia/Sydney", "America/Sao_Paulo", "Asia/Kolkata"])
def test_zone_transitions_miss_no_change(zone: str) -> None:
    """Sampled daily from 1970 to 2150, every change of offset zoneinfo shows lies at a
    listed instant within that day."""
    changes = ZoneTransitions.load(zone)
    assert changes is not None
    tz = ZoneInfo(zone)
    day_s = 86_400
    at = ms(1970, 1, 1) // 1000
    before = datetime.datetime.fromtimestamp(at, UTC).astimezone(tz).utcoffset()
    while at < ms(2150, 1, 1) // 1000:
        at += day_s
        now = datetime.datetime.fromtimestamp(at, UTC).astimezone(tz).utcoffset()
        if now != before:
            _, hi = changes.span(at - day_s)
            assert hi <= at, (zone, datetime.datetime.fromtimestamp(at, UTC))
        before = now


def test_fixed_offset_zone_is_arithmetic() -> None:
    schedule = CronSchedule("TZ=Etc/GMT-14 0 9 * * *")  # UTC+14
    assert schedule._fields is not None
    assert schedule.next_after(ms(2024, 1, 1)) == ms(2024, 1, 1, 19)  # 09:00 next day there
    assert ticks(schedule, ms(2024, 1, 1), 5) == reference_ticks(schedule, ms(2024, 1, 1), 5)


@pytest.mark.parametrize("expr", ["0 0 L * *", "0 0 * * L5", "0 0 * * MON#2", "0 0 15W * *",
                                  "R * * * *"])
def test_croniter_keeps_the_rest(expr: str) -> None:
    schedule = CronSchedule(expr)
    assert schedule._fields is None
    if not expr.startswith("R"):  # R draws a new random value every tick
        start = ms(2024, 1, 1)
        assert ticks(schedule, start, 5) == reference_ticks(schedule, start, 5)


@pytest.mark.parametrize("expr", ["61 * * * *", "* 24 * * *", "* * 0 * *", "* * * 13 *",
                                  "* * * * 8", "*/0 * * * *", "* * * * FOO", "0 0 30 2 *",
                                  "H * * * *", "1-2-3 * * * *"])
def test_rejections_keep_croniters_words(expr: str) -> None:
    with pytest.raises(ValueError) as caught:
        croniter(expr, datetime.datetime(2000, 1, 1, tzinfo=UTC)).get_next(float)
    words = "it never fires" if "find next date" in str(caught.value) else str(caught.value)
    with pytest.raises(ValueError, match="invalid cron expression") as ours:
        CronSchedule(expr)
    assert str(ours.value) == f"invalid cron expression {expr!r}: {words}"


# -- the engine's collaborator ----------------------------------------------------------------

@given(st.integers(ms(1, 1, 2), ms(9999, 12, 30)))
def test_tick_timestamps_read_like_isoformat(at: int) -> None:
    ticker = CronTicker(schedule=lambda due, payload: 0, save_cursor=lambda key, value: None,
                        draw=lambda: 0, now_ms=lambda: at, function=lambda fn_id: None,
                        record_event=lambda payload: "", admit=lambda fn, eid, payload: None,
                        store_event=lambda event_id: None)
    assert ticker._iso(at) == ms_to_datetime(at).isoformat()
    assert ticker._iso(at - at % 1000) == ms_to_datetime(at - at % 1000).isoformat()


def test_tick_events_leave_memory_but_stay_queryable(client: inngest.Inngest) -> None:
    @client.create_function(fn_id="tick", trigger=inngest.TriggerCron(cron="*/10 * * * *"))
    async def tick(ctx: inngest.Context) -> str:
        return ctx.event.data["fireAt"]

    sim = Simulation(client, start=datetime.datetime(2025, 1, 1, tzinfo=UTC))
    sim.advance(DAY)
    runs = sim.runs(tick)
    assert len(runs) == 144 and all(r.status == "Completed" for r in runs)
    # every tick's event was stored with its outcome, then left the engine's event table
    assert not any(rec["payload"]["name"] == CRON_EVENT for rec in sim.engine.events.values())
    events = sim.events(CRON_EVENT)
    assert len(events) == 144
    assert [e.outcomes[0].run_id for e in events] == [r.id for r in runs]
    assert events[0].data["scheduledAt"] == "2025-01-01T00:10:00+00:00" == runs[0].output
