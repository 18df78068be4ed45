"""Triggers: event-name patterns (with Inngest's trailing wildcard) and cron schedules.

* :class:`EventPattern` validates a ``TriggerEvent.event`` name and matches event names.
* :class:`EventRouter` indexes subscribers by pattern so that finding who listens to an event
  costs a dict lookup plus one lookup per ``/`` or ``.`` in the name.
* :class:`CronSchedule` parses a ``TriggerCron.cron`` string (5 fields or an ``@daily``-style
  descriptor, optional ``TZ=Zone `` / ``CRON_TZ=Zone `` prefix) and computes ticks in integer
  epoch milliseconds, in the schedule's zone (UTC by default): arithmetically
  (:class:`inngest_do.cron.CronFields`), through croniter within two days of a zone's offset
  change and for syntax the evaluator does not implement; croniter validates every line.

Time here is integer epoch milliseconds throughout; no function reads a clock.
"""

from __future__ import annotations

import datetime
import heapq
import re
import threading
from typing import Final, Generic, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterError, croniter

from inngest_do.cron import CronFields, ZoneTransitions
from inngest_do.durations import SECOND_MS, parse_duration_str, to_ms

__all__ = ["CronSchedule", "EventPattern", "EventRouter", "jitter_to_ms"]

_SEPARATORS: Final[str] = "/."

T = TypeVar("T")


class EventPattern:
    """A trigger's event name: exact (``"app/user.created"``) or a trailing wildcard.

    A ``*`` may appear once, as the last character, right after a ``/`` or ``.``:
    ``"app/*"`` and ``"app/user.*"`` are valid; ``"*"``, ``"app*"``, ``"app/*/x"`` and
    ``"app/**"`` are not. A wildcard pattern matches every name that starts with its
    :attr:`prefix` (``"app/*"`` matches ``"app/user.created"``; ``"app/user.*"`` matches
    ``"app/user.created"`` but not ``"app/users"``).

    Raises:
        ValueError: ``name`` is not a non-empty string or misplaces ``*`` (the message names it).
    """

    __slots__ = ("is_wildcard", "name", "prefix")

    name: str
    prefix: str
    is_wildcard: bool

    def __init__(self, name: str) -> None:
        if not isinstance(name, str) or not name:
            raise ValueError(f"invalid event trigger {name!r}: expected a non-empty string")
        star = name.find("*")
        if star < 0:
            self.is_wildcard = False
            self.prefix = name
        elif star == len(name) - 1 and star > 0 and name[star - 1] in _SEPARATORS:
            self.is_wildcard = True
            self.prefix = name[:-1]
        else:
            raise ValueError(
                f"invalid event trigger {name!r}: a '*' wildcard may only end the name, "
                "right after a '/' or '.' (e.g. 'app/*' or 'app/user.*')"
            )
        self.name = name

    def matches(self, event_name: str) -> bool:
        """True when ``event_name`` is this exact name or, for a wildcard, starts with the
        prefix (the empty remainder included). O(len(prefix))."""
        if self.is_wildcard:
            return event_name.startswith(self.prefix)
        return event_name == self.name

    def __repr__(self) -> str:
        return f"EventPattern({self.name!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, EventPattern) and other.name == self.name

    def __hash__(self) -> int:
        return hash(("EventPattern", self.name))


class EventRouter(Generic[T]):
    """Index from event names to subscribers, built from :class:`EventPattern` s.

    ``match`` returns the subscribers whose pattern matches, in registration order, each
    subscriber object at most once (by identity, at its first matching registration), so a
    function whose two triggers both match an event is found once.

    Complexity: ``add`` O(1); ``match`` O(len(name)) to scan the name for separators, plus one
    dict lookup per separator whose prefix length some wildcard uses, plus O(m log k) to merge
    the m results of k matching patterns (O(m) for one pattern).
    """

    __slots__ = ("_exact", "_seq", "_wildcard_lengths", "_wildcards")

    def __init__(self) -> None:
        self._exact: dict[str, list[tuple[int, T]]] = {}
        self._wildcards: dict[str, list[tuple[int, T]]] = {}
        self._wildcard_lengths: set[int] = set()
        self._seq = 0

    def add(self, pattern: EventPattern, subscriber: T) -> None:
        """Register ``subscriber`` for events matching ``pattern``."""
        entry = (self._seq, subscriber)
        self._seq += 1
        if pattern.is_wildcard:
            self._wildcards.setdefault(pattern.prefix, []).append(entry)
            self._wildcard_lengths.add(len(pattern.prefix))
        else:
            self._exact.setdefault(pattern.name, []).append(entry)

    def match(self, event_name: str) -> list[T]:
        """The subscribers listening to ``event_name``, in registration order, deduplicated."""
        buckets: list[list[tuple[int, T]]] = []
        exact = self._exact.get(event_name)
        if exact:
            buckets.append(exact)
        if self._wildcards:
            lengths = self._wildcard_lengths
            wildcards = self._wildcards
            for index, char in enumerate(event_name):
                if char in _SEPARATORS and index + 1 in lengths:
                    bucket = wildcards.get(event_name[: index + 1])
                    if bucket:
                        buckets.append(bucket)
        if not buckets:
            return []
        entries = buckets[0] if len(buckets) == 1 else heapq.merge(*buckets)
        seen: set[int] = set()
        out: list[T] = []
        for _, subscriber in entries:
            key = id(subscriber)
            if key not in seen:
                seen.add(key)
                out.append(subscriber)
        return out

    def __len__(self) -> int:
        """Number of registrations."""
        return self._seq


def jitter_to_ms(value: int | str | datetime.timedelta, *, what: str = "jitter") -> int:
    """Convert a cron jitter to integer milliseconds.

    Accepts what ``TriggerCron.jitter`` takes in the SDK (a duration string such as ``"30s"``,
    ``"5m"``, ``"1h"``, ``"1m30s"``; units ms/s/m/h/d/w), plus ``int`` milliseconds and
    :class:`datetime.timedelta`.

    Raises:
        ValueError: not a duration, or shorter than 1 s.
    """
    if isinstance(value, str):
        ms = parse_duration_str(value, what=what)
    else:
        try:
            ms = to_ms(value, what=what)
        except TypeError as exc:
            raise ValueError(str(exc)) from None
    if ms < SECOND_MS:
        raise ValueError(f"{what}: must be at least 1s, got {value!r}")
    return ms


_DESCRIPTORS: Final[dict[str, str]] = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
_TZ_PREFIXES: Final[tuple[str, ...]] = ("CRON_TZ=", "TZ=")
_UTC: Final = datetime.timezone.utc
_MINUTE_MS: Final[int] = 60_000
# Zones whose offset from UTC never changes: their ticks are computed arithmetically.
# croniter's random/hashed field ("R", "R(0-29)", "H/15"), matched whole, case-insensitive
_RANDOM_FIELD: Final = re.compile(r"[hr](\(\d+-\d+\))?(/\d+)?\Z", re.IGNORECASE)
_FIXED_ZONE: Final = re.compile(r"(Etc/)?(UTC|UCT|GMT|Zulu|Universal|Greenwich)([+-]\d{1,2})?\Z")


class CronSchedule:
    """A cron schedule as ``TriggerCron`` gives it, with an optional jitter.

    ``expr`` is a 5-field cron line (minute hour day-of-month month day-of-week, with croniter's
    syntax: ranges, steps, names such as ``MON-FRI``, ``L``, ``#``, ``?``) or one of the
    descriptors ``@yearly``/``@annually``, ``@monthly``, ``@weekly``, ``@daily``/``@midnight``,
    ``@hourly``, optionally preceded by ``TZ=Area/City `` or ``CRON_TZ=Area/City ``. Ticks are
    computed in that zone (UTC without a prefix) and returned as UTC epoch milliseconds.

    Ticks are computed with integer arithmetic on a parse made once (about 1 µs a tick for
    ``* * * * *``), in the zone's wall time at its current offset; within two days of a change
    of the zone's offset (read from its TZif file), for ``L``/``#``/``W``/``R`` and for a zone
    whose file cannot be read, croniter computes them (40-100 µs a tick). Both give the same
    ticks (``tests/test_cron.py`` compares them).

    Daylight-saving time follows croniter with zoneinfo: a wall time skipped by a spring-forward
    change fires at the first instant after the gap (``0 2 * * *`` in Europe/Paris fires at
    03:00 CEST on the change day), and a wall time repeated by a fall-back change fires at both
    occurrences (``0 2 * * *`` fires at 02:00 CEST and again at 02:00 CET). Ticks are always
    strictly increasing in UTC.

    Attributes:
        source: The original string (also available as ``expr``).
        cron: The 5-field line (descriptors expanded), without the zone prefix.
        timezone: The zone's IANA name (``"UTC"`` when none was given).
        jitter_ms: The jitter in milliseconds, or None.

    Raises:
        TypeError: ``expr`` is not a string.
        ValueError: the expression, its zone or the jitter is invalid, or the schedule never
            fires (``0 0 30 2 *``); the message names the expression.
    """

    __slots__ = ("_changes", "_croniter", "_fields", "_lock", "_offset_min", "_span", "_zone",
                 "cron", "jitter_ms", "source", "timezone")

    source: str
    cron: str
    timezone: str
    jitter_ms: int | None

    def __init__(self, expr: str, jitter_ms: int | str | datetime.timedelta | None = None) -> None:
        if not isinstance(expr, str):
            raise TypeError(f"invalid cron expression {expr!r}: expected a string")
        self.source = expr
        text = expr.strip()
        zone_name = "UTC"
        zone: datetime.tzinfo = _UTC
        for prefix in _TZ_PREFIXES:
            if text.startswith(prefix):
                zone_name, _, text = text[len(prefix) :].partition(" ")
                text = text.strip()
                try:
                    zone = ZoneInfo(zone_name)
                except (ZoneInfoNotFoundError, ValueError):
                    raise ValueError(
                        f"invalid cron expression {expr!r}: unknown time zone {zone_name!r}"
                    ) from None
                break
        if text.startswith("@"):
            line = _DESCRIPTORS.get(text.lower())
            if line is None:
                known = ", ".join(_DESCRIPTORS)
                raise ValueError(
                    f"invalid cron expression {expr!r}: unknown descriptor {text!r} "
                    f"(expected one of {known})"
                )
            text = line
        fields = text.split()
        if len(fields) != 5:
            raise ValueError(
                f"invalid cron expression {expr!r}: expected 5 fields "
                f"(minute hour day month weekday) or a descriptor such as '@daily', "
                f"got {len(fields)}"
            )
        self.cron = " ".join(fields)
        self.timezone = zone_name
        self._zone = zone
        try:
            # Validates the fields and that the schedule ever fires.
            parsed = croniter(self.cron, datetime.datetime(2000, 1, 1, tzinfo=zone))
            parsed.get_next(float)
        except (CroniterError, ValueError, TypeError, KeyError) as exc:
            reason = "it never fires" if "find next date" in str(exc) else str(exc)
            raise ValueError(f"invalid cron expression {expr!r}: {reason}") from None
        # The arithmetic evaluator serves UTC and fixed offsets (whole minutes); None: croniter.
        self._fields: CronFields | None = None
        self._offset_min = 0
        # A zone that changes its offset: the instants it does, and the cached span of the
        # last instant asked about, (lo, hi, offset in seconds).
        self._changes: ZoneTransitions | None = None
        self._span = (0, 0, 0)
        if zone is _UTC or _FIXED_ZONE.match(zone_name):
            offset = datetime.datetime(2000, 1, 1, tzinfo=zone).utcoffset()
            if offset is not None and offset % datetime.timedelta(minutes=1) == datetime.timedelta(0):
                self._fields = CronFields.parse(self.cron)
                self._offset_min = offset // datetime.timedelta(minutes=1)
        else:
            self._changes = ZoneTransitions.load(zone_name)
            if self._changes is not None:
                self._fields = CronFields.parse(self.cron)
        # Where croniter computes ticks, one instance parsed once is moved to each start (a
        # new one per tick spent two thirds of its time parsing), except for R fields, which
        # croniter draws anew at each parse.
        self._croniter = None if any(_RANDOM_FIELD.match(f) for f in fields) else parsed
        self._lock = threading.Lock()  # the shared instance keeps its position between calls
        self.jitter_ms = (
            None if jitter_ms is None else jitter_to_ms(jitter_ms, what=f"cron {expr!r} jitter")
        )

    @property
    def expr(self) -> str:
        """The original string (same as :attr:`source`)."""
        return self.source

    def next_after(self, ms: int) -> int:
        """The first tick strictly after the epoch-millisecond instant ``ms``, in epoch ms.

        Ticks fall on whole minutes: a tick at exactly ``ms`` is not returned. About 1 µs for
        ``* * * * *`` in UTC; about 100 µs where croniter computes it (see the class).
        """
        fields = self._fields
        if fields is None:
            return self._croniter_next_after(ms)
        changes = self._changes
        if changes is None:
            offset = self._offset_min
            return (fields.next_minute(ms // _MINUTE_MS + 1 + offset) - offset) * _MINUTE_MS
        # In a zone with DST: in its wall time at the current offset, when no offset change
        # is near (croniter's handling of the gap and the repeat applies only near one).
        at = ms // 1000
        lo, hi, offset = self._span
        if not lo <= at < hi:
            lo, hi = changes.span(at)
            wall = datetime.datetime.fromtimestamp(at, tz=_UTC).astimezone(self._zone)
            offset = wall.utcoffset() // datetime.timedelta(seconds=1)  # type: ignore[operator]
            self._span = (lo, hi, offset)
        tick = fields.next_minute((at + offset) // 60 + 1) * 60 - offset
        if changes.quiet(at, tick):
            return tick * 1000
        return self._croniter_next_after(ms)

    def _croniter_next_after(self, ms: int) -> int:
        """:meth:`next_after` through croniter (also the reference the tests compare with)."""
        start = datetime.datetime.fromtimestamp(ms // 1000, tz=self._zone)
        parsed = self._croniter
        if parsed is None:
            return _datetime_to_ms(croniter(self.cron, start).get_next(datetime.datetime))
        with self._lock:
            return _datetime_to_ms(parsed.get_next(datetime.datetime, start_time=start))

    def ticks_between(self, start_ms: int, end_ms: int) -> list[int]:
        """All ticks t with ``start_ms < t <= end_ms``, in increasing order.

        O(number of ticks); the caller bounds the interval (a minute schedule over a year is
        525,600 ticks).
        """
        ticks: list[int] = []
        if end_ms <= start_ms:
            return ticks
        if self._fields is not None:
            tick = self.next_after(start_ms)
            while tick <= end_ms:
                ticks.append(tick)
                tick = self.next_after(tick)
            return ticks
        start = datetime.datetime.fromtimestamp(start_ms // 1000, tz=self._zone)
        iterator = croniter(self.cron, start)
        while True:
            tick = _datetime_to_ms(iterator.get_next(datetime.datetime))
            if tick > end_ms:
                return ticks
            if tick > start_ms:
                ticks.append(tick)

    def jitter_delay(self, rng_value: int) -> int:
        """The delay to add to a tick, given an integer already drawn from the engine's RNG.

        ``1000 + rng_value % (jitter_ms - 1000)``: uniform over [1000, jitter_ms) ms when
        ``rng_value`` is uniform over a range much larger than the jitter (or a multiple of
        it). A jitter of exactly 1 s always gives 1000; without a jitter the delay is 0.
        """
        jitter = self.jitter_ms
        if jitter is None:
            return 0
        if jitter <= SECOND_MS:
            return SECOND_MS
        return SECOND_MS + rng_value % (jitter - SECOND_MS)

    def __repr__(self) -> str:
        if self.jitter_ms is None:
            return f"CronSchedule({self.source!r})"
        return f"CronSchedule({self.source!r}, jitter_ms={self.jitter_ms})"

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, CronSchedule)
            and other.source == self.source
            and other.jitter_ms == self.jitter_ms
        )

    def __hash__(self) -> int:
        return hash(("CronSchedule", self.source, self.jitter_ms))


def _datetime_to_ms(value: datetime.datetime) -> int:
    """Aware datetime to epoch milliseconds, exactly (integer arithmetic)."""
    delta = value - datetime.datetime(1970, 1, 1, tzinfo=_UTC)
    return (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000
