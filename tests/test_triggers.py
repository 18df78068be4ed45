"""Tests for inngest_do.triggers: event-name patterns, the router and cron schedules."""

from __future__ import annotations

import datetime
import itertools
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from inngest_do.triggers import CronSchedule, EventPattern, EventRouter, jitter_to_ms

UTC = datetime.timezone.utc
PARIS = ZoneInfo("Europe/Paris")
MINUTE = 60_000
HOUR = 60 * MINUTE
DAY = 24 * HOUR


def ms(*args: int, tz: datetime.tzinfo = UTC, fold: int = 0) -> int:
    """Epoch ms of a wall time in ``tz``."""
    return int(datetime.datetime(*args, tzinfo=tz, fold=fold).timestamp() * 1000)  # type: ignore[misc]


def wall(ms_value: int, tz: datetime.tzinfo = PARIS) -> str:
    return datetime.datetime.fromtimestamp(ms_value / 1000, tz=tz).isoformat()


# --- EventPattern -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "prefix"),
    [("app/*", "app/"), ("app/user.*", "app/user."), ("a.*", "a."), ("x/y/z.*", "x/y/z.")],
)
def test_valid_wildcards(name: str, prefix: str) -> None:
    pattern = EventPattern(name)
    assert pattern.is_wildcard
    assert pattern.prefix == prefix
    assert pattern.name == name


@pytest.mark.parametrize("name", ["app/user.created", "a", "inngest/scheduled.timer", "a b"])
def test_exact_names(name: str) -> None:
    pattern = EventPattern(name)
    assert not pattern.is_wildcard
    assert pattern.prefix == name
    assert pattern.matches(name)
    assert not pattern.matches(name + "x")


@pytest.mark.parametrize(
    "name", ["*", "app*", "app/**", "app/*/x", "*/x", "app/*.x", "app/user*", "a.*b", "a/*."]
)
def test_invalid_wildcards(name: str) -> None:
    with pytest.raises(ValueError, match="wildcard") as info:
        EventPattern(name)
    assert repr(name) in str(info.value)


@pytest.mark.parametrize("name", ["", None, 5])
def test_invalid_names(name: object) -> None:
    with pytest.raises(ValueError, match="non-empty string"):
        EventPattern(name)  # type: ignore[arg-type]


def test_wildcard_matching() -> None:
    app = EventPattern("app/*")
    user = EventPattern("app/user.*")
    assert app.matches("app/user.created")
    assert app.matches("app/x")
    assert not app.matches("apps/x")
    assert not app.matches("app")
    assert user.matches("app/user.created")
    assert user.matches("app/user.created.v2")
    assert not user.matches("app/users")
    assert not user.matches("app/user")
    assert EventPattern("app/*") == app and hash(EventPattern("app/*")) == hash(app)
    assert repr(app) == "EventPattern('app/*')"


# --- EventRouter ----------------------------------------------------------------------------------


def test_router_exact_and_wildcards_in_registration_order() -> None:
    router: EventRouter[str] = EventRouter()
    router.add(EventPattern("app/user.*"), "user-any")
    router.add(EventPattern("app/user.created"), "created")
    router.add(EventPattern("app/*"), "app-any")
    router.add(EventPattern("other/*"), "other")
    router.add(EventPattern("app/user.created"), "created-2")
    assert router.match("app/user.created") == ["user-any", "created", "app-any", "created-2"]
    assert router.match("app/user.deleted") == ["user-any", "app-any"]
    assert router.match("app/users") == ["app-any"]
    assert router.match("other/x.y") == ["other"]
    assert router.match("nothing") == []
    assert router.match("") == []
    assert len(router) == 5


def test_router_deduplicates_a_subscriber() -> None:
    fn = object()
    router: EventRouter[object] = EventRouter()
    router.add(EventPattern("app/*"), fn)
    router.add(EventPattern("app/user.created"), fn)
    router.add(EventPattern("app/user.created"), "other")
    assert router.match("app/user.created") == [fn, "other"]


def test_router_unhashable_subscribers() -> None:
    router: EventRouter[list[int]] = EventRouter()
    a, b = [1], [1]
    router.add(EventPattern("x/*"), a)
    router.add(EventPattern("x/y"), b)
    found = router.match("x/y")
    assert found == [a, b] and found[0] is a and found[1] is b


names = st.text(alphabet="ab/.", min_size=1, max_size=8)


@st.composite
def patterns(draw: st.DrawFn) -> EventPattern:
    base = draw(names)
    if draw(st.booleans()):
        base = base.rstrip("/.") + draw(st.sampled_from(["/", "."])) + "*"
    return EventPattern(base)


@settings(max_examples=200, deadline=None)
@given(registrations=st.lists(patterns(), max_size=8), event=names)
def test_router_agrees_with_linear_scan(registrations: list[EventPattern], event: str) -> None:
    router: EventRouter[int] = EventRouter()
    subscribers = [1000 + i for i in range(len(registrations))]  # distinct objects
    for pattern, subscriber in zip(registrations, subscribers, strict=True):
        router.add(pattern, subscriber)
    expected = [s for p, s in zip(registrations, subscribers, strict=True) if p.matches(event)]
    assert router.match(event) == expected


# --- CronSchedule: parsing ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expr", "cron", "zone"),
    [
        ("*/5 * * * *", "*/5 * * * *", "UTC"),
        ("  0  9 * * MON-FRI ", "0 9 * * MON-FRI", "UTC"),
        ("@daily", "0 0 * * *", "UTC"),
        ("@HOURLY", "0 * * * *", "UTC"),
        ("@weekly", "0 0 * * 0", "UTC"),
        ("@monthly", "0 0 1 * *", "UTC"),
        ("@yearly", "0 0 1 1 *", "UTC"),
        ("@annually", "0 0 1 1 *", "UTC"),
        ("@midnight", "0 0 * * *", "UTC"),
        ("TZ=Europe/Paris 0 2 * * *", "0 2 * * *", "Europe/Paris"),
        ("CRON_TZ=America/New_York @daily", "0 0 * * *", "America/New_York"),
    ],
)
def test_parse(expr: str, cron: str, zone: str) -> None:
    schedule = CronSchedule(expr)
    assert (schedule.cron, schedule.timezone, schedule.source) == (cron, zone, expr)
    assert schedule.expr == expr
    assert schedule.jitter_ms is None


@pytest.mark.parametrize(
    ("expr", "reason"),
    [
        ("", "expected 5 fields"),
        ("* * * *", "expected 5 fields"),
        ("* * * * * *", "expected 5 fields"),
        ("0 0 1 1 * 2099", "expected 5 fields"),
        ("60 * * * *", "out of range"),
        ("*/0 * * * *", "step"),
        ("0 0 30 2 *", "never fires"),
        ("@every 1h", "unknown descriptor"),
        ("@reboot", "unknown descriptor"),
        ("TZ=Mars/Olympus 0 * * * *", "unknown time zone"),
        ("TZ=Europe/Paris", "expected 5 fields"),
        ("TZ= 0 * * * *", "unknown time zone"),
        ("0 0 * * FOO", ""),
    ],
)
def test_invalid_cron(expr: str, reason: str) -> None:
    with pytest.raises(ValueError) as info:
        CronSchedule(expr)
    message = str(info.value)
    assert message.startswith(f"invalid cron expression {expr!r}")
    assert reason in message


def test_non_string_cron() -> None:
    with pytest.raises(TypeError, match="invalid cron expression 5"):
        CronSchedule(5)  # type: ignore[arg-type]


# --- CronSchedule: ticks --------------------------------------------------------------------------


def test_next_after_is_strictly_after() -> None:
    every_5 = CronSchedule("*/5 * * * *")
    tick = ms(2024, 1, 1, 12, 0)
    assert every_5.next_after(tick) == tick + 5 * MINUTE
    assert every_5.next_after(tick - 1) == tick
    assert every_5.next_after(tick + 1) == tick + 5 * MINUTE
    assert every_5.next_after(tick + 999) == tick + 5 * MINUTE
    assert every_5.next_after(tick - 5 * MINUTE + 1) == tick


def test_next_after_utc_descriptors() -> None:
    start = ms(2024, 2, 28, 13, 7)
    assert CronSchedule("@hourly").next_after(start) == ms(2024, 2, 28, 14, 0)
    assert CronSchedule("@daily").next_after(start) == ms(2024, 2, 29)
    assert CronSchedule("@weekly").next_after(start) == ms(2024, 3, 3)  # a Sunday
    assert CronSchedule("@monthly").next_after(start) == ms(2024, 3, 1)
    assert CronSchedule("@yearly").next_after(start) == ms(2025, 1, 1)
    assert CronSchedule("0 0 29 2 *").next_after(ms(2024, 3, 1)) == ms(2028, 2, 29)
    assert CronSchedule("0 9 * * MON-FRI").next_after(ms(2024, 3, 1, 10)) == ms(2024, 3, 4, 9)


def test_time_zone_without_dst_change() -> None:
    paris = CronSchedule("TZ=Europe/Paris 0 2 * * *")
    assert paris.next_after(ms(2024, 1, 10)) == ms(2024, 1, 10, 1)  # 02:00 CET = 01:00 UTC
    assert paris.next_after(ms(2024, 7, 9, 12)) == ms(2024, 7, 10, 0)  # 02:00 CEST = 00:00 UTC
    new_york = CronSchedule("CRON_TZ=America/New_York @daily")
    assert new_york.next_after(ms(2024, 1, 10, 12)) == ms(2024, 1, 11, 5)


def test_spring_forward_fires_after_the_gap() -> None:
    # 2024-03-31 in Paris: 02:00 CET jumps to 03:00 CEST; 02:00 does not exist that day.
    paris = CronSchedule("TZ=Europe/Paris 0 2 * * *")
    ticks = paris.ticks_between(ms(2024, 3, 29, tz=PARIS), ms(2024, 4, 2, tz=PARIS))
    assert [wall(t) for t in ticks] == [
        "2024-03-29T02:00:00+01:00",
        "2024-03-30T02:00:00+01:00",
        "2024-03-31T03:00:00+02:00",
        "2024-04-01T02:00:00+02:00",
    ]
    assert ticks[2] - ticks[1] == 24 * HOUR  # 01:00 UTC both days
    assert ticks[3] - ticks[2] == 23 * HOUR


def test_fall_back_fires_in_both_occurrences() -> None:
    # 2024-10-27 in Paris: 03:00 CEST goes back to 02:00 CET; 02:00-03:00 happens twice.
    paris = CronSchedule("TZ=Europe/Paris 0 2 * * *")
    ticks = paris.ticks_between(ms(2024, 10, 26, tz=PARIS), ms(2024, 10, 28, 12, tz=PARIS))
    assert [wall(t) for t in ticks] == [
        "2024-10-26T02:00:00+02:00",
        "2024-10-27T02:00:00+02:00",
        "2024-10-27T02:00:00+01:00",
        "2024-10-28T02:00:00+01:00",
    ]
    hourly = CronSchedule("TZ=Europe/Paris 0 * * * *")
    second_half_past_two = ms(2024, 10, 27, 2, 30, tz=PARIS, fold=1)
    first_half_past_two = ms(2024, 10, 27, 2, 30, tz=PARIS, fold=0)
    assert wall(hourly.next_after(first_half_past_two)) == "2024-10-27T02:00:00+01:00"
    assert wall(hourly.next_after(second_half_past_two)) == "2024-10-27T03:00:00+01:00"
    span = hourly.ticks_between(ms(2024, 10, 26, 23, 30), ms(2024, 10, 27, 3, 30))
    assert [t - span[0] for t in span] == [0, HOUR, 2 * HOUR, 3 * HOUR]


def test_ticks_between_bounds() -> None:
    every_minute = CronSchedule("* * * * *")
    start = ms(2024, 5, 1, 10, 0)
    assert every_minute.ticks_between(start, start + 3 * MINUTE) == [
        start + MINUTE,
        start + 2 * MINUTE,
        start + 3 * MINUTE,
    ]
    assert every_minute.ticks_between(start, start + MINUTE - 1) == []
    assert every_minute.ticks_between(start, start) == []
    assert every_minute.ticks_between(start + 1, start) == []
    assert every_minute.ticks_between(start + 1, start + MINUTE) == [start + MINUTE]
    assert len(CronSchedule("@hourly").ticks_between(start, start + DAY)) == 24


@settings(max_examples=60, deadline=None)
@given(
    expr=st.sampled_from(
        ["*/7 * * * *", "TZ=Europe/Paris 30 1-3 * * *", "TZ=America/New_York 0 */5 * * 0,3"]
    ),
    start=st.integers(min_value=ms(2023, 1, 1), max_value=ms(2026, 1, 1)),
    length=st.integers(min_value=0, max_value=3 * DAY),
)
def test_ticks_between_equals_iterated_next_after(expr: str, start: int, length: int) -> None:
    schedule = CronSchedule(expr)
    expected = []
    tick = schedule.next_after(start)
    while tick <= start + length:
        expected.append(tick)
        tick = schedule.next_after(tick)
    ticks = schedule.ticks_between(start, start + length)
    assert ticks == expected
    assert all(a < b for a, b in itertools.pairwise(ticks))
    assert all(t % MINUTE == 0 for t in ticks)


# --- jitter ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("30s", 30_000),
        ("5m", 300_000),
        ("1h", 3_600_000),
        ("1m30s", 90_000),
        (1000, 1000),
        (45_000, 45_000),
        (datetime.timedelta(minutes=2), 120_000),
    ],
)
def test_jitter_values(value: object, expected: int) -> None:
    assert jitter_to_ms(value) == expected  # type: ignore[arg-type]
    assert CronSchedule("@hourly", value).jitter_ms == expected  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "value", ["500ms", "0s", "abc", "", 999, 0, -5, datetime.timedelta(milliseconds=10), 1.5, True]
)
def test_invalid_jitter(value: object) -> None:
    with pytest.raises(ValueError, match="jitter"):
        CronSchedule("@hourly", value)  # type: ignore[arg-type]


def test_jitter_delay() -> None:
    schedule = CronSchedule("@hourly", "30s")
    assert schedule.jitter_delay(0) == 1000
    assert schedule.jitter_delay(28_999) == 29_999
    assert schedule.jitter_delay(29_000) == 1000
    assert schedule.jitter_delay(2**64 - 1) == 1000 + (2**64 - 1) % 29_000
    delays = {schedule.jitter_delay(v) for v in range(100_000)}
    assert min(delays) == 1000 and max(delays) == 29_999
    assert CronSchedule("@hourly", 1000).jitter_delay(12345) == 1000
    assert CronSchedule("@hourly").jitter_delay(12345) == 0


def test_equality_and_repr() -> None:
    assert CronSchedule("@daily", "30s") == CronSchedule("@daily", 30_000)
    assert CronSchedule("@daily") != CronSchedule("@daily", 30_000)
    assert hash(CronSchedule("@daily")) == hash(CronSchedule("@daily"))
    assert repr(CronSchedule("@daily", "1m")) == "CronSchedule('@daily', jitter_ms=60000)"
