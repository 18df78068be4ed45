"""Cron at simulation speed: an arithmetic evaluator for 5-field cron lines.

:class:`CronFields` parses the five fields of a cron line once into tables of allowed values
and answers "the first matching minute at or after this one" with integer arithmetic on epoch
minutes: no datetime objects, no re-parsing, whole hours and days that cannot match skipped at
once. For ``* * * * *`` a query is a division and a cached day lookup.

The grammar it takes is the common subset of croniter's: ``*``, numbers, lists, ranges
(``1-5``, wrapping ones such as ``FRI-MON`` too), steps (``*/7``, ``10-50/20``, ``5/15``),
month and weekday names (``JAN``, ``MON``), ``7`` for Sunday and ``?`` alone in the
day-of-month or day-of-week field. Its meaning is croniter's, quirks included, so a schedule
ticks at the same instants whichever evaluates it (``tests/test_cron.py`` compares the two
over random expressions): an equal range written out (``5-5``) means the whole field, a
start with a step at the field's maximum (``59/15``) means that one value, and when both the
day of month and the day of week are restricted a day matching either fires (a full range in
one of them counts as unrestricted only when the other field's text contains a ``*``).

:meth:`CronFields.parse` returns None for anything outside that subset (``L``, ``#``, ``W``,
``R``, ``H``, values out of range, malformed text); the caller keeps croniter for those, and
croniter is what validates and words the errors.

:class:`CronTicker` is the engine's collaborator for cron triggers: it arms each schedule's
next tick on the engine's timer heap, records it as the durable cursor and, when a tick fires,
hands the tick event to the engine's admission path and arms the next one. It is given the
callables it needs rather than the Engine.

Time is integer epoch minutes in :class:`CronFields` and epoch milliseconds elsewhere.
"""

from __future__ import annotations

import bisect
import datetime
import functools
import importlib.resources
import os
import re
import struct
import typing
import zoneinfo
from typing import Final

from .kernel import iso_utc

if typing.TYPE_CHECKING:
    from inngest_do.function import Function
    from inngest_do.triggers import CronSchedule

__all__ = ["CronFields", "CronTicker", "ZoneTransitions"]

MINUTES_PER_DAY: Final[int] = 1440
# date.toordinal() of 1970-01-01: epoch day 0.
_EPOCH_ORDINAL: Final[int] = 719_163
# 1970-01-01 was a Thursday; day of week counts Sunday as 0 (cron's convention).
_EPOCH_WEEKDAY: Final[int] = 4
# No valid 5-field schedule goes more than 8 years between ticks (29 Feb across 2100); past
# this many days of searching the schedule is taken to never fire again.
_SEARCH_DAYS: Final[int] = 400 * 366

# (low, high) per field: minute, hour, day of month, month, day of week.
_RANGES: Final[tuple[tuple[int, int], ...]] = ((0, 59), (0, 23), (1, 31), (1, 12), (0, 6))
_MONTH_NAMES: Final[dict[str, int]] = {
    name: n for n, name in enumerate(
        ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"),
        start=1)
}
_DOW_NAMES: Final[dict[str, int]] = {
    name: n for n, name in enumerate(("sun", "mon", "tue", "wed", "thu", "fri", "sat"))
}
_NAMES: Final[tuple[dict[str, int], ...]] = ({}, {}, {}, _MONTH_NAMES, _DOW_NAMES)
_DAYS_IN_MONTH: Final[tuple[int, ...]] = (0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
_DOM: Final[int] = 2
_DOW: Final[int] = 4


class _Unsupported(Exception):
    """The field uses syntax outside the subset this module evaluates."""


def _days_in_month(year: int, month: int) -> int:
    if month == 2 and year % 4 == 0 and (year % 100 != 0 or year % 400 == 0):
        return 29
    return _DAYS_IN_MONTH[month]


def _value(token: str, index: int) -> int:
    """A number or a name in field ``index``, with ``7`` read as Sunday in the weekday."""
    if token.isascii() and token.isdigit():
        value = int(token)
    else:
        named = _NAMES[index].get(token)
        if named is None:
            raise _Unsupported(token)
        value = named
    if index == _DOW and value == 7:
        value = 0
    return value


def _expand_item(item: str, index: int) -> list[int]:
    """The values one comma-separated item of field ``index`` allows, as croniter reads it."""
    low_bound, high_bound = _RANGES[index]
    if item == "*":
        return list(range(low_bound, high_bound + 1))
    base, slash, step_text = item.partition("/")
    step = 1
    if slash:
        if not (step_text.isascii() and step_text.isdigit()) or int(step_text) == 0:
            raise _Unsupported(item)
        step = int(step_text)
    start_with_step = False
    if base == "*" and slash:
        low, high = low_bound, high_bound
    elif "-" in base:
        first, _, last = base.partition("-")
        if not first or not last or "-" in last:
            raise _Unsupported(item)
        low, high = _value(first, index), _value(last, index)
    elif slash:
        # "5/15" is "from 5 to the field's maximum, every 15".
        start_with_step = True
        low, high = _value(base, index), _value(str(high_bound), index)
    else:
        value = _value(base, index)
        if not low_bound <= value <= high_bound:
            raise _Unsupported(item)
        return [value]
    if max(low, high) > high_bound or min(low, high) < low_bound:
        raise _Unsupported(item)
    if start_with_step and low == high:
        return [low]  # "59/15": the one value, not a cycle
    if low == high:
        # croniter reads an equal range written out ("5-5", "JAN-JAN") as the whole field.
        low, high = low_bound, high_bound
    if low <= high:
        return list(range(low, high + 1, step))
    # A wrapping range ("FRI-MON", "22-2/3"): up to the maximum, then on from the minimum,
    # skipping the way croniter does so both evaluate the same schedule.
    values = list(range(low, high_bound + 1, step))
    skip = 0
    already = high_bound - values[-1]
    if values[-1] - low_bound + step > high_bound - low_bound + 1 and already < step:
        skip = step - already
    values.extend(range(low_bound + skip, high + 1, step))
    return values


def _expand_field(text: str, index: int, fields: list[str]) -> list[int] | None:
    """The sorted values field ``index`` allows, or None for every value (unrestricted)."""
    low_bound, high_bound = _RANGES[index]
    if text == "?":
        if index not in (_DOM, _DOW):
            raise _Unsupported(text)
        return None
    items = text.split(",")
    if all(item == "*" for item in items):
        return None
    if "*" in items:
        raise _Unsupported(text)  # '*' in a list: croniter's reading depends on sort order
    values: set[int] = set()
    for item in items:
        values.update(_expand_item(item, index))
    if len(values) == high_bound - low_bound + 1:
        # Every value is unrestricted, except that a full day of month (or day of week)
        # stays restricted, for the either-day rule, unless the other field has a '*'.
        other = fields[_DOW] if index == _DOM else fields[_DOM] if index == _DOW else "*"
        if "*" in other:
            return None
    return sorted(values)


def _next_table(allowed: list[int] | None, size: int) -> list[int]:
    """``table[v]``: the smallest allowed value >= v, or -1; ``size + 1`` entries."""
    ok = [allowed is None or v in allowed for v in range(size)]
    table = [-1] * (size + 1)
    nxt = -1
    for v in range(size - 1, -1, -1):
        if ok[v]:
            nxt = v
        table[v] = nxt
    return table


class CronFields:
    """The five fields of a cron line as tables, and the next matching minute.

    Build with :meth:`parse`. Immutable apart from a one-entry cache of the last day looked
    up (replaced atomically, so sharing an instance between threads is safe).
    """

    __slots__ = ("_day_cache", "_dom_ok", "_dow_ok", "_either", "_first_hour", "_first_minute",
                 "_month_ok", "_next_hour", "_next_minute", "_wildcard_days", "line")

    line: str

    def __init__(self, line: str, fields: list[list[int] | None]) -> None:
        minutes, hours, doms, months, dows = fields
        self.line = line
        self._next_minute = _next_table(minutes, 60)
        self._next_hour = _next_table(hours, 24)
        self._first_minute = self._next_minute[0]
        self._first_hour = self._next_hour[0]
        self._month_ok = [False] + [months is None or m in months for m in range(1, 13)]
        self._dom_ok = [False] + [doms is None or d in doms for d in range(1, 32)]
        self._dow_ok = [dows is None or d in dows for d in range(7)]
        # croniter's rule: both day fields restricted -> a day matching either one fires.
        self._either = doms is not None and dows is not None
        self._wildcard_days = months is None and doms is None and dows is None
        self._day_cache = (None, 0)

    @classmethod
    def parse(cls, line: str) -> CronFields | None:
        """Parse a 5-field line (already validated by croniter); None when it uses syntax this
        evaluator does not implement (``L``, ``#``, ``W``, ``R``, ``H``, ...)."""
        fields = line.lower().split()
        if len(fields) != 5:
            return None
        try:
            expanded = [_expand_field(text, index, fields) for index, text in enumerate(fields)]
        except (_Unsupported, ValueError):
            return None
        return cls(line, expanded)

    def next_minute(self, minute: int) -> int:
        """The first matching epoch minute at or after ``minute`` (both in the schedule's wall
        time, counted as if it were UTC).

        Raises:
            ValueError: no match within 400 years (only possible for a line croniter rejects).
        """
        day, minute_of_day = divmod(minute, MINUTES_PER_DAY)
        first = self._first_day(day)
        if first == day:
            hour, minute_of_hour = divmod(minute_of_day, 60)
            if self._next_hour[hour] == hour:
                found = self._next_minute[minute_of_hour]
                if found >= 0:
                    return minute - minute_of_hour + found
            later = self._next_hour[hour + 1]
            if later >= 0:
                return day * MINUTES_PER_DAY + later * 60 + self._first_minute
            first = self._first_day(day + 1)
        return first * MINUTES_PER_DAY + self._first_hour * 60 + self._first_minute

    def _first_day(self, day: int) -> int:
        """The first epoch day >= ``day`` whose month and day fields match (cached)."""
        if self._wildcard_days:
            return day
        cached_day, cached = self._day_cache
        if cached_day == day:
            return cached
        found = self._search_day(day)
        self._day_cache = (day, found)
        return found

    def _search_day(self, day: int) -> int:
        date = datetime.date.fromordinal(day + _EPOCH_ORDINAL)
        year, month, dom = date.year, date.month, date.day
        weekday = (day + _EPOCH_WEEKDAY) % 7
        month_ok, dom_ok, dow_ok, either = self._month_ok, self._dom_ok, self._dow_ok, self._either
        limit = day + _SEARCH_DAYS
        length = _days_in_month(year, month)
        while day < limit:
            if not month_ok[month]:
                skipped = length - dom + 1  # to the 1st of the next month
                day += skipped
                weekday = (weekday + skipped) % 7
                dom = 1
            elif (dom_ok[dom] or dow_ok[weekday]) if either else (dom_ok[dom] and dow_ok[weekday]):
                return day
            elif dom < length:
                day += 1
                dom += 1
                weekday = (weekday + 1) % 7
                continue
            else:
                day += 1
                weekday = (weekday + 1) % 7
                dom = 1
            month += 1
            if month == 13:
                month = 1
                year += 1
            length = _days_in_month(year, month)
        raise ValueError(f"cron {self.line!r}: no tick within 400 years")


# -- zones with daylight-saving time -------------------------------------------------------------

# Ticks are computed arithmetically in a zone's wall time when no change of its UTC offset
# lies within two days of the interval (offsets differ by at most 26 h, so no wall time there
# is skipped or repeated and the wall clock runs at one offset); otherwise croniter decides.
_ZONE_MARGIN_S: Final[int] = 2 * 86_400
# Rule-generated changes are listed up to this year; later instants go to croniter.
_LAST_RULE_YEAR: Final[int] = 2200
_POSIX_NAME: Final = r"(?:<[^>]*>|[A-Za-z]{3,})"
_POSIX_OFFSET: Final = r"[+-]?\d{1,3}(?::\d{1,2}){0,2}"
_POSIX_TZ: Final = re.compile(
    rf"(?P<std>{_POSIX_NAME})(?P<stdoff>{_POSIX_OFFSET})"
    rf"(?:(?P<dst>{_POSIX_NAME})(?P<dstoff>{_POSIX_OFFSET})?"
    rf",(?P<start>[^,/]+)(?:/(?P<starttime>{_POSIX_OFFSET}))?"
    rf",(?P<end>[^,/]+)(?:/(?P<endtime>{_POSIX_OFFSET}))?)?\Z")


def _posix_seconds(text: str) -> int:
    """``[+-]hh[:mm[:ss]]`` as signed seconds."""
    sign = -1 if text.startswith("-") else 1
    parts = [int(p) for p in text.lstrip("+-").split(":")]
    parts += [0] * (3 - len(parts))
    return sign * (parts[0] * 3600 + parts[1] * 60 + parts[2])


def _posix_day(rule: str, year: int) -> int:
    """The epoch day a POSIX TZ date (``Mm.w.d``, ``Jn`` or ``n``) names in ``year``."""
    jan1 = datetime.date(year, 1, 1).toordinal() - _EPOCH_ORDINAL
    leap = _days_in_month(year, 2) == 29
    if rule.startswith("M"):
        month, week, weekday = (int(p) for p in rule[1:].split("."))
        first = datetime.date(year, month, 1).toordinal() - _EPOCH_ORDINAL
        day = 1 + (weekday - (first + _EPOCH_WEEKDAY)) % 7 + (week - 1) * 7
        if day > _days_in_month(year, month):
            day -= 7
        return first + day - 1
    if rule.startswith("J"):
        n = int(rule[1:])  # 1..365, 29 February never counted
        return jan1 + n - 1 + (1 if leap and n >= 60 else 0)
    return jan1 + int(rule)  # 0..365, 29 February counted


def _tzif_path(key: str) -> typing.Any:
    """The TZif file zoneinfo reads for ``key`` (its search path, then the tzdata package);
    None when there is none."""
    for directory in zoneinfo.TZPATH:
        path = os.path.join(directory, key)
        if os.path.isfile(path):
            return path
    try:
        package, _, name = f"tzdata.zoneinfo.{key}".replace("/", ".").rpartition(".")
        resource = importlib.resources.files(package).joinpath(name)
        return resource if resource.is_file() else None
    except (ModuleNotFoundError, ValueError, TypeError):
        return None


def _read_tzif(data: bytes) -> tuple[list[int], str]:
    """The transition instants (UTC seconds) and the footer rule of a TZif file (RFC 8536)."""
    if data[:4] != b"TZif":
        raise ValueError("not a TZif file")
    version = data[4]
    counts = struct.unpack(">6l", data[20:44])
    isut, isstd, leap, timecnt, typecnt, charcnt = counts
    if version < ord("2"):
        return list(struct.unpack(f">{timecnt}l", data[44:44 + 4 * timecnt])), ""
    # skip the version 1 block (32-bit times) to the version 2+ header
    start = 44 + timecnt * 5 + typecnt * 6 + charcnt + leap * 8 + isstd + isut
    isut, isstd, leap, timecnt, typecnt, charcnt = struct.unpack(
        ">6l", data[start + 20:start + 44])
    body = start + 44
    times = list(struct.unpack(f">{timecnt}q", data[body:body + 8 * timecnt]))
    footer_at = body + timecnt * 9 + typecnt * 6 + charcnt + leap * 12 + isstd + isut
    footer = data[footer_at:].strip(b"\n").decode("ascii")
    return times, footer


class ZoneTransitions:
    """Every instant at which a zone's UTC offset may change, from its TZif file and footer
    rule, up to :data:`_LAST_RULE_YEAR`. Over-listing is harmless (more ticks go to croniter);
    :meth:`load` returns None rather than risk missing one."""

    __slots__ = ("end", "times")

    def __init__(self, times: list[int], end: int) -> None:
        self.times = times
        self.end = end  # past this instant (UTC seconds) nothing is known

    @staticmethod
    @functools.lru_cache(maxsize=64)
    def load(key: str) -> ZoneTransitions | None:
        """The transitions of the IANA zone ``key``; None when its file cannot be read or its
        rule not understood (such zones keep croniter)."""
        path = _tzif_path(key)
        if path is None:
            return None
        try:
            with open(path, "rb") if isinstance(path, str) else path.open("rb") as file:
                times, footer = _read_tzif(file.read())
            end = datetime.datetime(_LAST_RULE_YEAR, 1, 1, tzinfo=datetime.timezone.utc)
            end_s = int(end.timestamp())
            match = _POSIX_TZ.match(footer)
            if match is None:
                return None
            ruled: list[int] = []
            if match["start"] is not None:
                std = -_posix_seconds(match["stdoff"])
                dst = -_posix_seconds(match["dstoff"]) if match["dstoff"] else std + 3600
                first_year = 1970 if not times else max(
                    1970, datetime.datetime.fromtimestamp(times[-1], datetime.timezone.utc).year
                    - 1)
                for year in range(first_year, _LAST_RULE_YEAR + 1):
                    for rule, at, offset in (
                            (match["start"], match["starttime"], std),
                            (match["end"], match["endtime"], dst)):
                        local = _posix_day(rule, year) * 86_400 + (
                            _posix_seconds(at) if at else 7200)
                        ruled.append(local - offset)
            zone = zoneinfo.ZoneInfo(key)
        except (OSError, ValueError, struct.error, zoneinfo.ZoneInfoNotFoundError):
            return None
        # Check the rule against zoneinfo where it applies: each change it lists from 2020 on
        # must change the offset or the DST flag (a misread rule would list wrong instants).
        utc = datetime.timezone.utc
        for at in ruled:
            if at < 1_577_836_800 or at > 2_240_611_200:  # 2020..2041
                continue
            before = datetime.datetime.fromtimestamp(at - 1, utc).astimezone(zone)
            after = datetime.datetime.fromtimestamp(at, utc).astimezone(zone)
            if (before.utcoffset(), before.dst()) == (after.utcoffset(), after.dst()):
                return None
        return ZoneTransitions(sorted({*times, *ruled}), end_s)

    def span(self, at_s: int) -> tuple[int, int]:
        """``(lo, hi)``: the listed changes around ``at_s`` (``lo <= at_s < hi``), between which
        the offset is constant."""
        times = self.times
        i = bisect.bisect_right(times, at_s)
        return (times[i - 1] if i else -(1 << 62)), (times[i] if i < len(times) else self.end)

    def quiet(self, start_s: int, end_s: int) -> bool:
        """True when no change lies within two days of ``[start_s, end_s]``."""
        if end_s + _ZONE_MARGIN_S >= self.end:
            return False
        times = self.times
        i = bisect.bisect_right(times, start_s - _ZONE_MARGIN_S)
        return i == len(times) or times[i] > end_s + _ZONE_MARGIN_S


class CronTicker:
    """Arms and fires an engine's cron triggers.

    Given, not reached for: ``schedule(due_ms, payload) -> handle`` (the timer heap),
    ``save_cursor(key, tick_ms)`` (the store's durable metadata), ``draw() -> int`` (the seeded
    RNG, for jitter), ``now_ms()`` (the clock), ``function(fn_id)`` (a served function or
    None), and for a tick's event ``record_event(payload) -> event_id`` (gives it its id and
    a place in the engine's event table), ``admit(fn, event_id, payload)`` (starts the
    function's run under its flow control) and ``store_event(event_id)`` (saves it with its
    outcome, after which it leaves the engine's memory like any settled event).
    """

    __slots__ = ("_admit", "_draw", "_function", "_now_ms", "_record_event",
                 "_save_cursor", "_schedule", "_store_event")

    def __init__(self, *, schedule: typing.Callable[[int, tuple], int],
                 save_cursor: typing.Callable[[str, typing.Any], None],
                 draw: typing.Callable[[], int], now_ms: typing.Callable[[], int],
                 function: typing.Callable[[str], Function[typing.Any] | None],
                 record_event: typing.Callable[[dict], str],
                 admit: typing.Callable[[Function[typing.Any], str, dict], object],
                 store_event: typing.Callable[[str], None]) -> None:
        self._schedule = schedule
        self._save_cursor = save_cursor
        self._draw = draw
        self._now_ms = now_ms
        self._function = function
        self._record_event = record_event
        self._admit = admit
        self._store_event = store_event

    def arm(self, fn: Function[typing.Any], idx: int, cron: CronSchedule, tick: int) -> int:
        """Schedule the tick at ``tick`` (plus seeded jitter) and record it as the durable
        cursor of ``fn``'s trigger ``idx``; the timer's handle."""
        fire = tick
        if cron.jitter_ms:
            fire = tick + cron.jitter_delay(self._draw())
        handle = self._schedule(fire, ("cron", fn.id, idx, tick))
        self._save_cursor(f"cron:{fn.id}:{idx}", tick)
        return handle

    def fire(self, payload: tuple) -> tuple[Function[typing.Any], int, CronSchedule, int] | None:
        """A tick's timer is due: start its run; what to arm next as ``(fn, idx, cron,
        next_tick)``, or None when the function is no longer served."""
        _, fn_id, idx, tick = payload
        fn = self._function(fn_id)
        if fn is None:
            return None
        cron = fn.cron_triggers[idx]
        now = self._now_ms()
        scheduled = iso_utc(tick)
        data = {"cron": cron.source, "scheduledAt": scheduled,
                "fireAt": scheduled if now == tick else iso_utc(now)}
        # a tick is this function's own event: recorded, but delivered to no one else
        payload = {"name": CRON_EVENT, "data": data, "id": "", "ts": 0}
        event_id = self._record_event(payload)
        self._admit(fn, event_id, payload)
        # Stored with its outcome, so it leaves memory at the next commit (before, every
        # tick's event stayed in the engine's event table for good).
        self._store_event(event_id)
        return fn, idx, cron, cron.next_after(tick)

    #: ``ms_to_datetime(ms).isoformat()``, from integers (the kernel's)
    _iso = staticmethod(iso_utc)


#: the name of a cron tick's event (the SDK's)
CRON_EVENT: Final[str] = "inngest/scheduled.timer"
