"""Config: the SDK's trigger and flow-control classes, and normalize_function_options."""

from __future__ import annotations

import datetime
import typing

import pytest

from inngest_do.config import (
    DEFAULT_RETRIES,
    Batch,
    BatchSpec,
    Cancel,
    CancelSpec,
    Concurrency,
    ConcurrencySpec,
    CronTriggerSpec,
    Debounce,
    DebounceSpec,
    EventTriggerSpec,
    FunctionOptions,
    ParallelMode,
    Priority,
    PrioritySpec,
    RateLimit,
    RateLimitSpec,
    Singleton,
    SingletonSpec,
    Throttle,
    ThrottleSpec,
    Timeouts,
    TimeoutsSpec,
    TriggerCron,
    TriggerEvent,
    normalize_function_options,
)
from inngest_do.durations import (
    format_ms,
    optional_ms,
    parse_duration_str,
    to_duration_str,
    to_ms,
    until_ms,
)
from inngest_do.errors import FunctionConfigInvalidError

MINUTE = datetime.timedelta(minutes=1)
ON_ORDER = TriggerEvent(event="order/created")


def normalize(**kwargs: typing.Any) -> FunctionOptions:
    """normalize_function_options for fn "f", triggered by order/created unless given."""
    kwargs.setdefault("trigger", ON_ORDER)
    return normalize_function_options("f", **kwargs)


def invalid(match: str, **kwargs: typing.Any) -> FunctionConfigInvalidError:
    """Assert that normalizing ``kwargs`` fails with a message matching ``match``."""
    with pytest.raises(FunctionConfigInvalidError, match=match) as info:
        normalize(**kwargs)
    assert isinstance(info.value, ValueError)
    assert "Function 'f'" in str(info.value)
    return info.value


# ------------------------------------------------------------------------------ the SDK models


def test_trigger_event() -> None:
    trigger = TriggerEvent(event="app/user.*")
    assert (trigger.event, trigger.expression) == ("app/user.*", None)
    assert TriggerEvent(event="a", expression="event.data.x > 1").expression == "event.data.x > 1"


def test_trigger_cron() -> None:
    assert TriggerCron(cron="0 * * * *").jitter is None
    assert TriggerCron(cron="@daily", jitter="30s").jitter == "30s"
    assert TriggerCron(cron="@daily", jitter=MINUTE).model_dump() == {
        "cron": "@daily",
        "jitter": "1m",
    }


def test_concurrency() -> None:
    c = Concurrency(limit=10, key="event.data.account_id", scope="env")
    assert (c.limit, c.key, c.scope) == (10, "event.data.account_id", "env")
    assert (Concurrency(limit=1).key, Concurrency(limit=1).scope) == (None, None)


def test_rate_limit() -> None:
    rl = RateLimit(limit=10, period=MINUTE)
    assert (rl.limit, rl.period, rl.key) == (10, MINUTE, None)
    assert rl.model_dump() == {"key": None, "limit": 10, "period": "1m"}


def test_throttle_defaults_burst_to_one() -> None:
    throttle = Throttle(limit=5, period=60_000, key="event.data.user")
    assert (throttle.burst, throttle.period, throttle.key) == (1, 60_000, "event.data.user")
    assert Throttle(limit=1, period=1000, burst=None).burst is None


def test_debounce() -> None:
    debounce = Debounce(period=5000)
    assert (debounce.period, debounce.key, debounce.timeout) == (5000, None, None)
    assert Debounce(period=5000, timeout=MINUTE).model_dump() == {
        "key": None,
        "period": "5s",
        "timeout": "1m",
    }


def test_batch_aliases() -> None:
    batch = Batch(max_size=100, timeout=datetime.timedelta(seconds=5), if_exp="event.data.ok")
    assert (batch.max_size, batch.key, batch.if_exp) == (100, None, "event.data.ok")
    assert batch.model_dump(by_alias=True) == {
        "maxSize": 100,
        "timeout": "5s",
        "key": None,
        "if": "event.data.ok",
    }
    assert Batch(max_size=2).timeout is None


def test_cancel_aliases() -> None:
    cancel = Cancel(event="order/cancelled", if_exp="event.data.id == async.data.id")
    assert cancel.timeout is None
    dumped = cancel.model_dump(by_alias=True)
    assert dumped == {
        "event": "order/cancelled",
        "if": "event.data.id == async.data.id",
        "timeout": None,
    }


def test_priority_timeouts_singleton() -> None:
    assert Priority(run="event.data.plan == 'pro' ? 60 : 0").run.startswith("event")
    timeouts = Timeouts(start=MINUTE)
    assert (timeouts.start, timeouts.finish) == (MINUTE, None)
    assert Timeouts().model_dump() == {"start": None, "finish": None}
    assert Singleton().mode == "skip"  # the SDK requires mode; we default it
    assert Singleton(key="event.data.user", mode="cancel").mode == "cancel"


def test_parallel_mode() -> None:
    assert ParallelMode.RACE.value == "race"
    assert ParallelMode.WAIT.value == "wait"
    assert ParallelMode("wait") is ParallelMode.WAIT


@pytest.mark.parametrize(
    ("build", "match"),
    [
        (lambda: Concurrency(limit="10"), r"Concurrency\.limit"),
        (lambda: Concurrency(limit=True), r"Concurrency\.limit"),
        (lambda: Concurrency(limit=1, scope="global"), r"Concurrency\.scope"),
        (lambda: Concurrency(), r"Concurrency\.limit: required"),
        (lambda: RateLimit(limit=1, period=1.5), r"RateLimit\.period: expected int or timedelta"),
        (lambda: RateLimit(limit=1), r"RateLimit\.period: required"),
        (lambda: Throttle(limit=1, period="1m"), r"Throttle\.period"),
        (lambda: Debounce(period=None), r"Debounce\.period"),
        (lambda: Batch(max_size=2.0), r"Batch\.max_size"),
        (lambda: Cancel(event=None), r"Cancel\.event"),
        (lambda: Priority(run=1), r"Priority\.run"),
        (lambda: Timeouts(start="1m"), r"Timeouts\.start"),
        (lambda: Singleton(mode="queue"), r"Singleton\.mode"),
        (lambda: TriggerEvent(), r"TriggerEvent\.event: required"),
        (lambda: TriggerCron(cron="* * * * *", jitter=1.5), r"TriggerCron\.jitter"),
    ],
)
def test_models_check_types_at_construction(build: typing.Callable[[], object], match: str) -> None:
    with pytest.raises(FunctionConfigInvalidError, match=match):
        build()


def test_model_errors_are_value_errors() -> None:
    with pytest.raises(ValueError):
        RateLimit(limit="ten", period=MINUTE)  # type: ignore[arg-type]


# ------------------------------------------------------------------------------- normalization


def test_defaults() -> None:
    options = normalize()
    assert options == FunctionOptions(
        fn_id="f",
        triggers=(EventTriggerSpec(event="order/created", expression=None),),
        retries=DEFAULT_RETRIES,
        concurrency=(),
        rate_limit=None,
        throttle=None,
        debounce=None,
        batch=None,
        cancel=(),
        priority=None,
        timeouts=None,
        idempotency=None,
        singleton=None,
    )
    assert options.retries == 4


def test_specs_are_frozen() -> None:
    options = normalize()
    with pytest.raises(AttributeError):
        options.retries = 3  # type: ignore[misc]
    assert not hasattr(options, "__dict__")  # slots


def test_everything_normalized_to_ms() -> None:
    options = normalize(
        trigger=[
            TriggerEvent(event="order/*", expression="event.data.total > 10"),
            TriggerCron(cron="TZ=Europe/Paris 0 9 * * *", jitter="1m30s"),
        ],
        retries=0,
        concurrency=[
            Concurrency(limit=10, key="event.data.account_id"),
            Concurrency(limit=100, key='"shared"', scope="account"),
        ],
        rate_limit=RateLimit(limit=10, period=MINUTE, key="event.data.user"),
        throttle=Throttle(limit=5, period=datetime.timedelta(hours=1), burst=3),
        debounce=Debounce(period=5000, key="event.data.id", timeout=MINUTE),
        cancel=[Cancel(event="order/cancelled", if_exp="a == b", timeout=MINUTE)],
        priority=Priority(run="event.data.prio"),
        timeouts=Timeouts(start=10_000, finish=datetime.timedelta(hours=2)),
        idempotency="event.data.order_id",
        singleton=Singleton(key="event.data.user", mode="cancel"),
    )
    assert options.triggers == (
        EventTriggerSpec(event="order/*", expression="event.data.total > 10"),
        CronTriggerSpec(cron="TZ=Europe/Paris 0 9 * * *", jitter_ms=90_000),
    )
    assert options.retries == 0
    assert options.concurrency == (
        ConcurrencySpec(limit=10, key="event.data.account_id", scope="fn"),
        ConcurrencySpec(limit=100, key='"shared"', scope="account"),
    )
    assert options.rate_limit == RateLimitSpec(limit=10, period_ms=60_000, key="event.data.user")
    assert options.throttle == ThrottleSpec(limit=5, period_ms=3_600_000, burst=3, key=None)
    assert options.debounce == DebounceSpec(period_ms=5000, key="event.data.id", timeout_ms=60_000)
    assert options.cancel == (
        CancelSpec(event="order/cancelled", if_exp="a == b", timeout_ms=60_000),
    )
    assert options.priority == PrioritySpec(run="event.data.prio")
    assert options.timeouts == TimeoutsSpec(start_ms=10_000, finish_ms=7_200_000)
    assert options.idempotency == "event.data.order_id"
    assert options.singleton == SingletonSpec(key="event.data.user", mode="cancel")


def test_batch_normalized() -> None:
    options = normalize(
        batch_events=Batch(max_size=50, timeout=datetime.timedelta(seconds=5), key="k", if_exp="x")
    )
    assert options.batch == BatchSpec(max_size=50, timeout_ms=5000, key="k", if_exp="x")


def test_single_trigger_concurrency_and_cancel_are_accepted() -> None:
    options = normalize(
        trigger=TriggerCron(cron="@hourly"),
        concurrency=Concurrency(limit=1),
        cancel=Cancel(event="stop"),
    )
    assert options.triggers == (CronTriggerSpec(cron="@hourly", jitter_ms=None),)
    assert options.concurrency == (ConcurrencySpec(limit=1, key=None, scope="fn"),)
    assert options.cancel == (CancelSpec(event="stop", if_exp=None, timeout_ms=None),)


def test_mappings_are_accepted_like_pydantic() -> None:
    options = normalize(
        trigger=[{"event": "a"}, {"cron": "@daily"}],
        rate_limit={"limit": 1, "period": 1000},
    )
    assert options.triggers == (EventTriggerSpec("a", None), CronTriggerSpec("@daily", None))
    assert options.rate_limit == RateLimitSpec(limit=1, period_ms=1000, key=None)


def test_jitter_forms() -> None:
    for jitter, ms in [("30s", 30_000), (5000, 5000), (MINUTE, 60_000), ("1h", 3_600_000)]:
        options = normalize(trigger=TriggerCron(cron="@daily", jitter=jitter))
        assert options.triggers[0] == CronTriggerSpec(cron="@daily", jitter_ms=ms)


def test_throttle_burst_none_is_one() -> None:
    options = normalize(throttle=Throttle(limit=1, period=1000, burst=None))
    assert options.throttle is not None and options.throttle.burst == 1


def test_empty_timeouts_are_dropped() -> None:
    assert normalize(timeouts=Timeouts()).timeouts is None


def test_duration_bounds_are_inclusive() -> None:
    day = datetime.timedelta(days=1)
    week = datetime.timedelta(days=7)
    assert normalize(rate_limit=RateLimit(limit=1, period=day)).rate_limit is not None
    assert normalize(throttle=Throttle(limit=1, period=week)).throttle is not None
    assert normalize(debounce=Debounce(period=week, timeout=week)).debounce is not None
    assert normalize(retries=20).retries == 20


# ---------------------------------------------------------------------- one failing case per rule


def test_fn_id_rules() -> None:
    with pytest.raises(FunctionConfigInvalidError, match="fn_id: must be a non-empty string"):
        normalize_function_options("", trigger=ON_ORDER)
    with pytest.raises(TypeError, match="fn_id"):
        normalize_function_options(1, trigger=ON_ORDER)  # type: ignore[arg-type]


def test_trigger_rules() -> None:
    with pytest.raises(TypeError, match="trigger: expected"):
        normalize(trigger="order/created")
    with pytest.raises(TypeError, match=r"trigger\[1\]: expected"):
        normalize(trigger=[ON_ORDER, "x"])
    invalid("trigger: at least one trigger is required", trigger=[])
    invalid(r"trigger\.event: must be a non-empty string", trigger=TriggerEvent(event=""))
    invalid(r"trigger\[0\]\.cron: must be a non-empty string", trigger=[TriggerCron(cron=" ")])
    invalid(
        r"trigger\.expression: must be a non-empty string",
        trigger=TriggerEvent(event="a", expression=""),
    )
    invalid(
        r"trigger\.jitter: invalid duration 'soon'",
        trigger=TriggerCron(cron="@daily", jitter="soon"),
    )
    invalid(
        r"trigger\.jitter: must be at least 1s, got 500ms",
        trigger=TriggerCron(cron="@daily", jitter=500),
    )


def test_retries_rules() -> None:
    invalid("retries: must be at most 20, got 21", retries=21)
    invalid("retries: must be at least 0, got -1", retries=-1)
    with pytest.raises(TypeError, match="retries: expected int"):
        normalize(retries=True)
    with pytest.raises(TypeError, match="retries: expected int"):
        normalize(retries="3")


def test_concurrency_rules() -> None:
    invalid(
        "concurrency: at most 2 allowed, got 3",
        concurrency=[Concurrency(limit=1), Concurrency(limit=2), Concurrency(limit=3)],
    )
    invalid(
        r"concurrency\[0\]\.limit: must be at least 1, got 0", concurrency=[Concurrency(limit=0)]
    )
    invalid(
        r"concurrency\[1\]\.key: required when scope is 'env'",
        concurrency=[Concurrency(limit=1), Concurrency(limit=1, scope="env")],
    )
    invalid(
        r"concurrency\[0\]\.key: required when scope is 'account'",
        concurrency=[Concurrency(limit=1, scope="account")],
    )
    invalid(
        r"concurrency\[0\]\.key: must be a non-empty string",
        concurrency=[Concurrency(limit=1, key="")],
    )
    with pytest.raises(TypeError, match=r"concurrency\[0\]: expected inngest.Concurrency"):
        normalize(concurrency=[RateLimit(limit=1, period=1000)])
    with pytest.raises(TypeError, match="concurrency: expected a list"):
        normalize(concurrency=5)


def test_concurrency_mutated_after_construction_is_rechecked() -> None:
    c = Concurrency(limit=1)
    c.limit = True  # pydantic does not validate assignment (as in the SDK)
    with pytest.raises(TypeError, match=r"concurrency\[0\]\.limit: expected int"):
        normalize(concurrency=[c])


def test_rate_limit_rules() -> None:
    invalid(
        r"rate_limit\.limit: must be at least 1, got 0",
        rate_limit=RateLimit(limit=0, period=MINUTE),
    )
    invalid(
        r"rate_limit\.period: must be at least 1s, got 500ms",
        rate_limit=RateLimit(limit=1, period=500),
    )
    invalid(
        r"rate_limit\.period: must be a whole number of seconds, got 1s500ms",
        rate_limit=RateLimit(limit=1, period=1500),
    )
    invalid(
        r"rate_limit\.period: must be at most 1d, got 1d1s",
        rate_limit=RateLimit(limit=1, period=datetime.timedelta(days=1, seconds=1)),
    )
    invalid(
        r"rate_limit\.key: must be a non-empty string",
        rate_limit=RateLimit(limit=1, period=MINUTE, key=""),
    )


def test_throttle_rules() -> None:
    invalid(r"throttle\.limit: must be at least 1", throttle=Throttle(limit=0, period=MINUTE))
    invalid(r"throttle\.period: must be at least 1s", throttle=Throttle(limit=1, period=0))
    invalid(
        r"throttle\.period: must be a whole number of seconds",
        throttle=Throttle(limit=1, period=datetime.timedelta(milliseconds=2500)),
    )
    invalid(
        r"throttle\.period: must be at most 7d, got 8d",
        throttle=Throttle(limit=1, period=datetime.timedelta(days=8)),
    )
    invalid(
        r"throttle\.burst: must be at least 0, got -1",
        throttle=Throttle(limit=1, period=MINUTE, burst=-1),
    )
    assert normalize(throttle=Throttle(limit=1, period=MINUTE, burst=0)).throttle.burst == 0


def test_debounce_rules() -> None:
    invalid(r"debounce\.period: must be at least 1s", debounce=Debounce(period=999))
    invalid(r"debounce\.period: must be a whole number of seconds", debounce=Debounce(period=1001))
    invalid(
        r"debounce\.period: must be at most 7d",
        debounce=Debounce(period=datetime.timedelta(days=7, seconds=1)),
    )
    invalid(
        r"debounce\.timeout: must be at least the period \(1m\), got 30s",
        debounce=Debounce(period=MINUTE, timeout=30_000),
    )
    invalid(
        r"debounce\.timeout: must be a whole number of seconds",
        debounce=Debounce(period=1000, timeout=1500),
    )


def test_batch_rules() -> None:
    invalid(
        r"batch_events\.max_size: must be at least 2, got 1",
        batch_events=Batch(max_size=1, timeout=1000),
    )
    invalid(r"batch_events\.timeout: required", batch_events=Batch(max_size=10))
    invalid(
        r"batch_events\.timeout: must be at least 1s",
        batch_events=Batch(max_size=10, timeout=100),
    )
    invalid(
        r"batch_events\.timeout: must be a whole number of seconds",
        batch_events=Batch(max_size=10, timeout=1100),
    )
    invalid(
        r"batch_events\.if_exp: must be a non-empty string",
        batch_events=Batch(max_size=10, timeout=1000, if_exp=""),
    )


def test_cancel_rules() -> None:
    invalid("cancel: at most 5 allowed, got 6", cancel=[Cancel(event=f"e{i}") for i in range(6)])
    invalid(r"cancel\[0\]\.event: must be a non-empty string", cancel=[Cancel(event="")])
    invalid(
        r"cancel\[0\]\.timeout: must be at least 1s",
        cancel=[Cancel(event="stop", timeout=0)],
    )
    invalid(
        r"cancel\[0\]\.timeout: must be a whole number of seconds",
        cancel=[Cancel(event="stop", timeout=1001)],
    )
    invalid(
        r"cancel\[0\]\.if_exp: must be a non-empty string",
        cancel=[Cancel(event="stop", if_exp=" ")],
    )


def test_priority_rule() -> None:
    invalid(r"priority\.run: must be a non-empty string", priority=Priority(run=""))


def test_timeouts_rules() -> None:
    invalid(r"timeouts\.start: must be at least 1s", timeouts=Timeouts(start=10))
    invalid(
        r"timeouts\.finish: must be a whole number of seconds",
        timeouts=Timeouts(finish=datetime.timedelta(seconds=1.5)),
    )
    with pytest.raises(TypeError, match=r"timeouts\.start: expected a duration"):
        t = Timeouts()
        t.start = "1m"  # type: ignore[assignment]
        normalize(timeouts=t)


def test_idempotency_rule() -> None:
    invalid("idempotency: must be a non-empty string", idempotency="")
    with pytest.raises(TypeError, match="idempotency: expected str"):
        normalize(idempotency=1)


def test_singleton_rule() -> None:
    singleton = Singleton()
    singleton.mode = "queue"  # type: ignore[assignment]
    invalid(r"singleton\.mode: must be 'skip' or 'cancel', got 'queue'", singleton=singleton)
    invalid(r"singleton\.key: must be a non-empty string", singleton=Singleton(key=""))


def test_wrong_option_type_names_the_option() -> None:
    with pytest.raises(TypeError, match="rate_limit: expected inngest.RateLimit"):
        normalize(rate_limit=Throttle(limit=1, period=1000))
    invalid(r"throttle: Throttle\.limit: required", throttle={"period": 1000})


# --------------------------------------------------------------------------------- combinations

BATCH = Batch(max_size=10, timeout=datetime.timedelta(seconds=10))


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("cancel", [Cancel(event="stop")]),
        ("debounce", Debounce(period=MINUTE)),
        ("singleton", Singleton()),
        ("priority", Priority(run="1")),
        ("rate_limit", RateLimit(limit=1, period=MINUTE)),
        ("idempotency", "event.data.id"),
    ],
)
def test_batch_combinations_rejected(option: str, value: object) -> None:
    err = invalid(
        f"batch_events: cannot be combined with {option}", batch_events=BATCH, **{option: value}
    )
    assert err.field == "batch_events"


def test_rate_limit_with_batch_says_why() -> None:
    invalid(
        "rate limits do not apply to batched functions",
        batch_events=BATCH,
        rate_limit=RateLimit(limit=1, period=MINUTE),
    )
    invalid(
        "idempotency does not apply to batched functions",
        batch_events=BATCH,
        idempotency="event.data.id",
    )


def test_batch_combines_with_concurrency_throttle_and_timeouts() -> None:
    options = normalize(
        batch_events=BATCH,
        concurrency=[Concurrency(limit=1)],
        throttle=Throttle(limit=1, period=MINUTE),
        timeouts=Timeouts(finish=MINUTE),
    )
    assert options.batch is not None and options.throttle is not None


def test_error_field_attribute() -> None:
    err = invalid("limit", concurrency=[Concurrency(limit=0)])
    assert err.field == "concurrency[0].limit"


# ------------------------------------------------------------ durations (used by all of the above)


def test_to_ms_accepts_int_and_timedelta() -> None:
    assert to_ms(1500, what="x") == 1500
    assert to_ms(datetime.timedelta(minutes=1, milliseconds=5), what="x") == 60_005
    # Sub-millisecond parts round up: a duration is never shortened.
    assert to_ms(datetime.timedelta(microseconds=1), what="x") == 1
    assert to_ms(datetime.timedelta(microseconds=-1500), what="x") == -1


@pytest.mark.parametrize("bad", [True, 1.0, "1s", None])
def test_to_ms_rejects_other_types(bad: object) -> None:
    with pytest.raises(TypeError, match="sleep.duration: expected a duration"):
        to_ms(bad, what="sleep.duration")  # type: ignore[arg-type]


def test_to_ms_range_messages() -> None:
    with pytest.raises(ValueError, match="p: must be at least 1s, got 500ms"):
        to_ms(500, what="p", min_ms=1000)
    with pytest.raises(ValueError, match="p: must be at most 1d, got 2d"):
        to_ms(datetime.timedelta(days=2), what="p", max_ms=86_400_000)
    with pytest.raises(ValueError, match="p: must be a whole number of seconds, got 1s1ms"):
        to_ms(1001, what="p", whole_seconds=True)


def test_optional_ms() -> None:
    assert optional_ms(None, what="x") is None
    assert optional_ms(MINUTE, what="x", whole_seconds=True) == 60_000


def test_format_ms() -> None:
    assert format_ms(0) == "0ms"
    assert format_ms(5_400_000) == "1h30m"
    assert format_ms(90_061_001) == "1d1h1m1s1ms"
    assert format_ms(-1500) == "-1s500ms"


def test_wire_duration_strings() -> None:
    assert to_duration_str(60_000) == "1m"
    assert to_duration_str(90_000) == "90s"
    assert to_duration_str(1_209_600_000) == "2w"
    assert to_duration_str(1500) == "1500ms"
    assert parse_duration_str("1h30m", what="j") == 5_400_000
    assert parse_duration_str("250ms", what="j") == 250
    assert parse_duration_str("1.5s", what="j") == 1500
    with pytest.raises(ValueError, match="j: invalid duration '5 minutes'"):
        parse_duration_str("5 minutes", what="j")


def test_until_ms() -> None:
    utc = datetime.timezone.utc
    assert until_ms(datetime.datetime(1970, 1, 1, 0, 0, 1, tzinfo=utc)) == 1000
    assert until_ms(datetime.datetime(1970, 1, 1, 0, 0, 1)) == 1000  # naive is UTC
    paris_summer = datetime.timezone(datetime.timedelta(hours=2))
    assert until_ms(datetime.datetime(1970, 1, 1, 2, tzinfo=paris_summer)) == 0
    assert until_ms(datetime.datetime(1970, 1, 1, 0, 0, 0, 1500, tzinfo=utc)) == 1  # floored
    with pytest.raises(TypeError, match="datetime"):
        until_ms(datetime.date(2020, 1, 1))  # type: ignore[arg-type]
