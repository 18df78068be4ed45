"""Duration and timestamp conversion to integer milliseconds.

The engine keeps every duration and instant as integer milliseconds (virtual time never passes
through floats). User code, following the Inngest SDK, gives durations as ``int`` milliseconds or
:class:`datetime.timedelta`, and instants as :class:`datetime.datetime`. This module converts
them, checks their ranges and formats them back for error messages.

Sub-millisecond parts of a ``timedelta`` are rounded *up* to the next millisecond, so that a
converted duration is never shorter than the one asked for. Instants (``datetime``) are floored
to the millisecond, as the kernel's ``datetime_to_ms`` does.
"""

from __future__ import annotations

import datetime
import re

__all__ = [
    "DAY_MS",
    "HOUR_MS",
    "MINUTE_MS",
    "SECOND_MS",
    "WEEK_MS",
    "format_ms",
    "optional_ms",
    "parse_duration_str",
    "to_duration_str",
    "to_ms",
    "until_ms",
]

SECOND_MS = 1_000
MINUTE_MS = 60 * SECOND_MS
HOUR_MS = 60 * MINUTE_MS
DAY_MS = 24 * HOUR_MS
WEEK_MS = 7 * DAY_MS

_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)
_US_PER_DAY = 86_400_000_000


def _timedelta_to_ms(value: datetime.timedelta) -> int:
    """Convert exactly (integer arithmetic), rounding sub-millisecond parts up."""
    us = value.days * _US_PER_DAY + value.seconds * 1_000_000 + value.microseconds
    return -((-us) // 1000)


def to_ms(
    value: int | datetime.timedelta,
    *,
    what: str,
    min_ms: int | None = None,
    max_ms: int | None = None,
    whole_seconds: bool = False,
) -> int:
    """Convert a duration (``int`` milliseconds or ``timedelta``) to integer milliseconds.

    Args:
        value: The duration. ``bool`` is rejected even though it is an ``int``.
        what: Names the value in error messages, e.g. ``"rate_limit.period"``.
        min_ms: Smallest accepted value (inclusive), if any.
        max_ms: Largest accepted value (inclusive), if any.
        whole_seconds: Require a whole number of seconds.

    Raises:
        TypeError: ``value`` is neither an ``int`` nor a ``timedelta``.
        ValueError: ``value`` is out of range or not a whole number of seconds.
    """
    if type(value) is int:  # the common case first: one check (a bool is not this type)
        ms = value
    elif isinstance(value, datetime.timedelta):
        ms = _timedelta_to_ms(value)
    elif isinstance(value, int) and not isinstance(value, bool):
        ms = int(value)
    else:
        raise TypeError(
            f"{what}: expected a duration as int milliseconds or datetime.timedelta, "
            f"got {type(value).__name__}"
        )
    if min_ms is not None and ms < min_ms:
        raise ValueError(f"{what}: must be at least {format_ms(min_ms)}, got {format_ms(ms)}")
    if max_ms is not None and ms > max_ms:
        raise ValueError(f"{what}: must be at most {format_ms(max_ms)}, got {format_ms(ms)}")
    if whole_seconds and ms % SECOND_MS != 0:
        raise ValueError(f"{what}: must be a whole number of seconds, got {format_ms(ms)}")
    return ms


def optional_ms(
    value: int | datetime.timedelta | None,
    *,
    what: str,
    min_ms: int | None = None,
    max_ms: int | None = None,
    whole_seconds: bool = False,
) -> int | None:
    """Like :func:`to_ms`, but ``None`` passes through as ``None``."""
    if value is None:
        return None
    return to_ms(value, what=what, min_ms=min_ms, max_ms=max_ms, whole_seconds=whole_seconds)


_FORMAT_UNITS = (("d", DAY_MS), ("h", HOUR_MS), ("m", MINUTE_MS), ("s", SECOND_MS), ("ms", 1))


def format_ms(ms: int) -> str:
    """Format milliseconds for humans: ``5400000`` -> ``"1h30m"``, ``1500`` -> ``"1s500ms"``.

    Units are days, hours, minutes, seconds and milliseconds; zero parts are left out and
    ``0`` gives ``"0ms"``. Negative values get a leading ``-``.
    """
    if ms == 0:
        return "0ms"
    sign = "-" if ms < 0 else ""
    rest = abs(ms)
    parts: list[str] = []
    for suffix, unit in _FORMAT_UNITS:
        count, rest = divmod(rest, unit)
        if count:
            parts.append(f"{count}{suffix}")
    return sign + "".join(parts)


_STR_UNITS = (("w", WEEK_MS), ("d", DAY_MS), ("h", HOUR_MS), ("m", MINUTE_MS), ("s", SECOND_MS))


def to_duration_str(ms: int) -> str:
    """Format as Inngest's wire format does: one count with the largest unit dividing evenly.

    ``60000`` -> ``"1m"``, ``90000`` -> ``"90s"``, ``1500`` -> ``"1500ms"``.
    """
    if ms != 0:
        for suffix, unit in _STR_UNITS:
            if ms % unit == 0:
                return f"{ms // unit}{suffix}"
    return f"{ms}ms"


_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|w|d|h|m|s)")
_STR_UNIT_MS = {"ms": 1, "s": SECOND_MS, "m": MINUTE_MS, "h": HOUR_MS, "d": DAY_MS, "w": WEEK_MS}


def parse_duration_str(value: str, *, what: str) -> int:
    """Parse a duration string such as ``"30s"``, ``"1h30m"`` or ``"1.5h"`` into milliseconds.

    Units: ``ms``, ``s``, ``m``, ``h``, ``d``, ``w``. Fractions are rounded up to the next
    millisecond.

    Raises:
        ValueError: ``value`` is not such a string (the message names ``what``).
    """
    text = value.strip()
    pos = 0
    total = 0.0
    exact = 0
    for match in _DURATION_PART.finditer(text):
        if match.start() != pos:
            break
        number, unit = match.group(1), match.group(2)
        if "." in number:
            total += float(number) * _STR_UNIT_MS[unit]
        else:
            exact += int(number) * _STR_UNIT_MS[unit]
        pos = match.end()
    if pos == 0 or pos != len(text):
        raise ValueError(f"{what}: invalid duration {value!r} (expected e.g. '30s', '5m', '1h30m')")
    frac = int(-(-total // 1)) if total else 0
    return exact + frac


def until_ms(value: datetime.datetime) -> int:
    """Convert an instant to epoch milliseconds, floored (naive datetimes are taken as UTC).

    Raises:
        TypeError: ``value`` is not a ``datetime``.
    """
    if not isinstance(value, datetime.datetime):
        raise TypeError(f"expected datetime.datetime, got {type(value).__name__}")
    if value.tzinfo is None or value.tzinfo.utcoffset(value) is None:
        value = value.replace(tzinfo=datetime.timezone.utc)
    delta = value - _EPOCH
    return delta.days * DAY_MS + delta.seconds * SECOND_MS + delta.microseconds // 1000
