"""Function configuration: the SDK's trigger and flow-control classes, and their normalization.

The pydantic models (:class:`TriggerEvent`, :class:`TriggerCron`, :class:`Concurrency`,
:class:`RateLimit`, :class:`Throttle`, :class:`Debounce`, :class:`Batch`, :class:`Cancel`,
:class:`Priority`, :class:`Timeouts`, :class:`Singleton`) have the Inngest SDK's names, fields,
defaults and serialization aliases. Like the SDK's, they check types at construction (strictly:
no coercion, ``bool`` is not an ``int``) and raise :class:`FunctionConfigInvalidError`, which
here is a ``ValueError``. Durations are ``int`` milliseconds or ``datetime.timedelta``.

:func:`normalize_function_options` checks values and combinations (as the Inngest server does)
and turns the options of ``create_function`` into frozen ``*Spec`` dataclasses with every
duration in integer milliseconds, which is all the engine reads. Expressions (keys, ``if_exp``,
``priority.run``, trigger ``expression``) stay strings: the engine compiles them.
"""

from __future__ import annotations

import dataclasses
import datetime
import enum
import typing
from collections.abc import Mapping, Sequence

import pydantic

from .durations import DAY_MS, SECOND_MS, format_ms, parse_duration_str, to_duration_str, to_ms
from .errors import FunctionConfigInvalidError

__all__ = [
    "DEFAULT_RETRIES",
    "MAX_CANCEL",
    "MAX_CONCURRENCY",
    "MAX_RETRIES",
    "Batch",
    "BatchSpec",
    "Cancel",
    "CancelSpec",
    "Concurrency",
    "ConcurrencySpec",
    "CronTriggerSpec",
    "Debounce",
    "DebounceSpec",
    "EventTriggerSpec",
    "FunctionOptions",
    "ParallelMode",
    "Priority",
    "PrioritySpec",
    "RateLimit",
    "RateLimitSpec",
    "Singleton",
    "SingletonSpec",
    "Throttle",
    "ThrottleSpec",
    "Timeouts",
    "TimeoutsSpec",
    "TriggerCron",
    "TriggerEvent",
    "normalize_function_options",
]

DEFAULT_RETRIES = 4
MAX_RETRIES = 20
MAX_CONCURRENCY = 2
MAX_CANCEL = 5
RATE_LIMIT_MAX_PERIOD_MS = DAY_MS
THROTTLE_MAX_PERIOD_MS = 7 * DAY_MS
DEBOUNCE_MAX_PERIOD_MS = 7 * DAY_MS

Duration: typing.TypeAlias = int | datetime.timedelta


class ParallelMode(enum.Enum):
    """How ``ctx.group.parallel`` runs its steps (as the SDK's)."""

    #: Return as soon as any step finishes.
    RACE = "race"
    #: Wait for all steps (the default).
    WAIT = "wait"


class Streaming(enum.Enum):
    """``serve(..., streaming=...)`` as in the SDK. Accepted for source compatibility only:
    with no Inngest server calling in, there is no long execution request to keep alive."""

    DISABLE = "disable"
    FORCE = "force"


# ----------------------------------------------------------------------------- pydantic models


def _dump_duration(value: Duration | None) -> str | None:
    """Serialize a duration as the SDK does (``"1m"``); ``None`` stays ``None``."""
    if value is None:
        return None
    return to_duration_str(to_ms(value, what="duration"))


class _ConfigModel(pydantic.BaseModel):
    """Strict model whose validation errors are :class:`FunctionConfigInvalidError`."""

    model_config = pydantic.ConfigDict(strict=True)

    def __init__(self, /, **data: typing.Any) -> None:
        """Validate ``data`` strictly; raise :class:`FunctionConfigInvalidError` if it fails."""
        try:
            super().__init__(**data)
        except pydantic.ValidationError as err:
            raise _convert_validation_error(type(self).__name__, err) from None


def _convert_validation_error(model: str, err: pydantic.ValidationError) -> Exception:
    errors = err.errors(include_url=False)
    if not errors:
        return FunctionConfigInvalidError(f"{model}: {err}")
    first = errors[0]
    loc = first.get("loc", ())
    field = str(loc[0]) if loc else ""
    what = f"{model}.{field}" if field else model
    if first.get("type") == "missing":
        return FunctionConfigInvalidError(f"{what}: required", field=field or None)
    # A union reports one error per member, each with the member's tag in loc[1].
    members = [
        str(e["loc"][1])
        for e in errors
        if len(e["loc"]) == 2 and e["loc"][0] == field and isinstance(e["loc"][1], str)
    ]
    if len(members) > 1:
        message = "expected " + ", ".join(members[:-1]) + " or " + members[-1]
    else:
        message = first.get("msg", "invalid value")
    got = first.get("input")
    return FunctionConfigInvalidError(
        f"{what}: {message}, got {type(got).__name__} {got!r}", field=field or None
    )


class TriggerEvent(_ConfigModel):
    """Run the function when an event named ``event`` arrives (``expression`` filters)."""

    event: str
    expression: str | None = None


class TriggerCron(_ConfigModel):
    """Run the function on a cron schedule, each tick delayed by up to ``jitter``.

    ``jitter`` accepts a duration string (``"30s"``, as the SDK), ``int`` ms or a
    ``timedelta``.
    """

    cron: str
    jitter: str | int | datetime.timedelta | None = None

    @pydantic.field_serializer("jitter")
    def _serialize_jitter(self, value: str | Duration | None) -> str | None:
        if isinstance(value, str) or value is None:
            return value
        return _dump_duration(value)


class Concurrency(_ConfigModel):
    """At most ``limit`` steps executing at once, per ``key`` value, in ``scope``."""

    key: str | None = None
    limit: int
    scope: typing.Literal["account", "env", "fn"] | None = None


class RateLimit(_ConfigModel):
    """At most ``limit`` runs started per ``period`` per key; events over it start no run."""

    key: str | None = None
    limit: int
    period: Duration

    @pydantic.field_serializer("period")
    def _serialize_period(self, value: Duration) -> str | None:
        return _dump_duration(value)


class Throttle(_ConfigModel):
    """At most ``limit`` runs started per ``period`` per key (plus ``burst``); others wait."""

    key: str | None = None
    limit: int
    period: Duration
    burst: int | None = 1

    @pydantic.field_serializer("period")
    def _serialize_period(self, value: Duration) -> str | None:
        return _dump_duration(value)


class Debounce(_ConfigModel):
    """Start one run ``period`` after the last event per key (at most ``timeout`` later)."""

    key: str | None = None
    period: Duration
    timeout: Duration | None = None

    @pydantic.field_serializer("period", "timeout")
    def _serialize_duration(self, value: Duration | None) -> str | None:
        return _dump_duration(value)


class Batch(_ConfigModel):
    """Run once per batch of up to ``max_size`` events, or ``timeout`` after the first."""

    max_size: int = pydantic.Field(serialization_alias="maxSize")
    timeout: Duration | None = None
    key: str | None = None
    if_exp: str | None = pydantic.Field(default=None, serialization_alias="if")

    @pydantic.field_serializer("timeout")
    def _serialize_timeout(self, value: Duration | None) -> str | None:
        return _dump_duration(value)


class Cancel(_ConfigModel):
    """Cancel a run when ``event`` arrives (matching ``if_exp``) within ``timeout``."""

    event: str
    if_exp: str | None = pydantic.Field(default=None, serialization_alias="if")
    timeout: Duration | None = None

    @pydantic.field_serializer("timeout")
    def _serialize_timeout(self, value: Duration | None) -> str | None:
        return _dump_duration(value)


class Priority(_ConfigModel):
    """``run``: an expression giving seconds (-600..600) by which to move the run ahead."""

    run: str


class Timeouts(_ConfigModel):
    """Cancel a run not started within ``start``, or not finished ``finish`` after starting."""

    start: Duration | None = None
    finish: Duration | None = None

    @pydantic.field_serializer("start", "finish")
    def _serialize_duration(self, value: Duration | None) -> str | None:
        return _dump_duration(value)


class Singleton(_ConfigModel):
    """At most one live run per key: a new one is skipped, or cancels the live one.

    Unlike the SDK, where ``mode`` is required, it defaults to ``"skip"``.
    """

    key: str | None = None
    mode: typing.Literal["skip", "cancel"] = "skip"


# ------------------------------------------------------------------------------ normalized specs


@dataclasses.dataclass(frozen=True, slots=True)
class EventTriggerSpec:
    """Trigger on events named ``event`` (may end in a ``*`` wildcard), filtered by
    ``expression``."""

    event: str
    expression: str | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class CronTriggerSpec:
    """Trigger on the ``cron`` schedule; ``jitter_ms`` bounds each tick's seeded delay."""

    cron: str
    jitter_ms: int | None = None


TriggerSpec: typing.TypeAlias = EventTriggerSpec | CronTriggerSpec


@dataclasses.dataclass(frozen=True, slots=True)
class ConcurrencySpec:
    """A concurrency limit; ``scope`` is ``"fn"``, ``"env"`` or ``"account"``."""

    limit: int
    key: str | None = None
    scope: str = "fn"


@dataclasses.dataclass(frozen=True, slots=True)
class RateLimitSpec:
    """A rate limit of ``limit`` runs per ``period_ms`` per ``key``."""

    limit: int
    period_ms: int
    key: str | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class ThrottleSpec:
    """A throttle of ``limit`` run starts per ``period_ms`` (plus ``burst``) per ``key``."""

    limit: int
    period_ms: int
    burst: int = 1
    key: str | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class DebounceSpec:
    """Debounce by ``period_ms`` per ``key``, at most ``timeout_ms`` after the first event."""

    period_ms: int
    key: str | None = None
    timeout_ms: int | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class BatchSpec:
    """Batch up to ``max_size`` events per ``key`` for at most ``timeout_ms``."""

    max_size: int
    timeout_ms: int
    key: str | None = None
    if_exp: str | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class CancelSpec:
    """Cancel on ``event`` matching ``if_exp`` within ``timeout_ms`` (engine default if None)."""

    event: str
    if_exp: str | None = None
    timeout_ms: int | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class PrioritySpec:
    """The priority expression ``run``."""

    run: str


@dataclasses.dataclass(frozen=True, slots=True)
class TimeoutsSpec:
    """Start and finish timeouts; at least one is set."""

    start_ms: int | None = None
    finish_ms: int | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class SingletonSpec:
    """Singleton per ``key`` with ``mode`` ``"skip"`` or ``"cancel"``."""

    key: str | None = None
    mode: str = "skip"


@dataclasses.dataclass(frozen=True, slots=True)
class FunctionOptions:
    """A function's validated configuration, durations in milliseconds."""

    fn_id: str
    triggers: tuple[TriggerSpec, ...]
    retries: int = DEFAULT_RETRIES
    concurrency: tuple[ConcurrencySpec, ...] = ()
    rate_limit: RateLimitSpec | None = None
    throttle: ThrottleSpec | None = None
    debounce: DebounceSpec | None = None
    batch: BatchSpec | None = None
    cancel: tuple[CancelSpec, ...] = ()
    priority: PrioritySpec | None = None
    timeouts: TimeoutsSpec | None = None
    idempotency: str | None = None
    singleton: SingletonSpec | None = None


# --------------------------------------------------------------------------------- normalization

_M = typing.TypeVar("_M", bound=_ConfigModel)


class _Checker:
    """Field checks whose errors name the function and the field."""

    __slots__ = ("prefix",)

    def __init__(self, fn_id: str) -> None:
        self.prefix = f"Function {fn_id!r}: "

    def invalid(self, field: str, message: str) -> FunctionConfigInvalidError:
        return FunctionConfigInvalidError(f"{self.prefix}{field}: {message}", field=field)

    def wrong_type(self, field: str, expected: str, value: object) -> TypeError:
        return TypeError(f"{self.prefix}{field}: expected {expected}, got {type(value).__name__}")

    def model(self, value: object, cls: type[_M], field: str) -> _M:
        if isinstance(value, cls):
            return value
        if isinstance(value, Mapping):
            try:
                return cls(**value)
            except FunctionConfigInvalidError as err:
                raise self.invalid(field, str(err)) from None
        raise self.wrong_type(field, f"inngest.{cls.__name__}", value)

    def models(self, value: object, cls: type[_M], field: str, most: int) -> list[_M]:
        """A list of ``cls`` from a list/tuple or a single instance; ``None`` gives ``[]``."""
        if value is None:
            return []
        if isinstance(value, (cls, Mapping)):
            return [self.model(value, cls, field)]
        if not isinstance(value, (list, tuple)):
            raise self.wrong_type(field, f"a list of inngest.{cls.__name__}", value)
        if len(value) > most:
            raise self.invalid(field, f"at most {most} allowed, got {len(value)}")
        return [self.model(item, cls, f"{field}[{i}]") for i, item in enumerate(value)]

    def int_(self, value: object, field: str, minimum: int, maximum: int | None = None) -> int:
        if not isinstance(value, int) or isinstance(value, bool):
            raise self.wrong_type(field, "int", value)
        if value < minimum:
            raise self.invalid(field, f"must be at least {minimum}, got {value}")
        if maximum is not None and value > maximum:
            raise self.invalid(field, f"must be at most {maximum}, got {value}")
        return int(value)

    def str_(self, value: object, field: str) -> str:
        if not isinstance(value, str):
            raise self.wrong_type(field, "str", value)
        if not value.strip():
            raise self.invalid(field, "must be a non-empty string")
        return value

    def opt_str(self, value: object, field: str) -> str | None:
        return None if value is None else self.str_(value, field)

    def ms(
        self,
        value: object,
        field: str,
        *,
        min_ms: int = SECOND_MS,
        max_ms: int | None = None,
        whole_seconds: bool = True,
    ) -> int:
        try:
            return to_ms(
                value,  # type: ignore[arg-type]
                what=field,
                min_ms=min_ms,
                max_ms=max_ms,
                whole_seconds=whole_seconds,
            )
        except TypeError as err:
            raise TypeError(f"{self.prefix}{err}") from None
        except ValueError as err:
            raise FunctionConfigInvalidError(f"{self.prefix}{err}", field=field) from None

    def opt_ms(self, value: object, field: str, **kwargs: typing.Any) -> int | None:
        return None if value is None else self.ms(value, field, **kwargs)


def _triggers(c: _Checker, trigger: object) -> tuple[TriggerSpec, ...]:
    if isinstance(trigger, (TriggerEvent, TriggerCron, Mapping)):
        items: list[tuple[str, object]] = [("trigger", trigger)]
    elif isinstance(trigger, (list, tuple)):
        if not trigger:
            raise c.invalid("trigger", "at least one trigger is required")
        items = [(f"trigger[{i}]", t) for i, t in enumerate(trigger)]
    else:
        raise c.wrong_type(
            "trigger", "inngest.TriggerEvent, inngest.TriggerCron or a list of them", trigger
        )
    specs: list[TriggerSpec] = []
    for field, item in items:
        if isinstance(item, Mapping):
            item = c.model(item, TriggerCron if "cron" in item else TriggerEvent, field)
        if isinstance(item, TriggerEvent):
            specs.append(
                EventTriggerSpec(
                    event=c.str_(item.event, f"{field}.event"),
                    expression=c.opt_str(item.expression, f"{field}.expression"),
                )
            )
        elif isinstance(item, TriggerCron):
            specs.append(
                CronTriggerSpec(
                    cron=c.str_(item.cron, f"{field}.cron"),
                    jitter_ms=_jitter(c, item.jitter, f"{field}.jitter"),
                )
            )
        else:
            raise c.wrong_type(field, "inngest.TriggerEvent or inngest.TriggerCron", item)
    return tuple(specs)


def _jitter(c: _Checker, value: object, field: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = parse_duration_str(value, what=field)
        except ValueError as err:
            raise FunctionConfigInvalidError(f"{c.prefix}{err}", field=field) from None
    return c.ms(value, field, whole_seconds=False)


def _concurrency(c: _Checker, value: object) -> tuple[ConcurrencySpec, ...]:
    specs = []
    for i, item in enumerate(c.models(value, Concurrency, "concurrency", MAX_CONCURRENCY)):
        field = f"concurrency[{i}]"
        scope = item.scope if item.scope is not None else "fn"
        if scope not in ("fn", "env", "account"):
            raise c.invalid(f"{field}.scope", f"must be 'fn', 'env' or 'account', got {scope!r}")
        key = c.opt_str(item.key, f"{field}.key")
        if key is None and scope != "fn":
            raise c.invalid(f"{field}.key", f"required when scope is {scope!r}")
        specs.append(
            ConcurrencySpec(limit=c.int_(item.limit, f"{field}.limit", 1), key=key, scope=scope)
        )
    return tuple(specs)


def _rate_limit(c: _Checker, value: object) -> RateLimitSpec | None:
    if value is None:
        return None
    item = c.model(value, RateLimit, "rate_limit")
    return RateLimitSpec(
        limit=c.int_(item.limit, "rate_limit.limit", 1),
        period_ms=c.ms(item.period, "rate_limit.period", max_ms=RATE_LIMIT_MAX_PERIOD_MS),
        key=c.opt_str(item.key, "rate_limit.key"),
    )


def _throttle(c: _Checker, value: object) -> ThrottleSpec | None:
    if value is None:
        return None
    item = c.model(value, Throttle, "throttle")
    return ThrottleSpec(
        limit=c.int_(item.limit, "throttle.limit", 1),
        period_ms=c.ms(item.period, "throttle.period", max_ms=THROTTLE_MAX_PERIOD_MS),
        # burst=0 is allowed (SPEC section 3, as the SDK and Inngest): `limit` runs at once
        burst=1 if item.burst is None else c.int_(item.burst, "throttle.burst", 0),
        key=c.opt_str(item.key, "throttle.key"),
    )


def _debounce(c: _Checker, value: object) -> DebounceSpec | None:
    if value is None:
        return None
    item = c.model(value, Debounce, "debounce")
    period_ms = c.ms(item.period, "debounce.period", max_ms=DEBOUNCE_MAX_PERIOD_MS)
    timeout_ms = c.opt_ms(item.timeout, "debounce.timeout")
    if timeout_ms is not None and timeout_ms < period_ms:
        raise c.invalid(
            "debounce.timeout",
            f"must be at least the period ({format_ms(period_ms)}), got {format_ms(timeout_ms)}",
        )
    return DebounceSpec(
        period_ms=period_ms, key=c.opt_str(item.key, "debounce.key"), timeout_ms=timeout_ms
    )


def _batch(c: _Checker, value: object) -> BatchSpec | None:
    if value is None:
        return None
    item = c.model(value, Batch, "batch_events")
    max_size = c.int_(item.max_size, "batch_events.max_size", 2)
    if item.timeout is None:
        raise c.invalid("batch_events.timeout", "required")
    return BatchSpec(
        max_size=max_size,
        timeout_ms=c.ms(item.timeout, "batch_events.timeout"),
        key=c.opt_str(item.key, "batch_events.key"),
        if_exp=c.opt_str(item.if_exp, "batch_events.if_exp"),
    )


def _cancel(c: _Checker, value: object) -> tuple[CancelSpec, ...]:
    specs = []
    for i, item in enumerate(c.models(value, Cancel, "cancel", MAX_CANCEL)):
        field = f"cancel[{i}]"
        specs.append(
            CancelSpec(
                event=c.str_(item.event, f"{field}.event"),
                if_exp=c.opt_str(item.if_exp, f"{field}.if_exp"),
                timeout_ms=c.opt_ms(item.timeout, f"{field}.timeout"),
            )
        )
    return tuple(specs)


def _priority(c: _Checker, value: object) -> PrioritySpec | None:
    if value is None:
        return None
    item = c.model(value, Priority, "priority")
    return PrioritySpec(run=c.str_(item.run, "priority.run"))


def _timeouts(c: _Checker, value: object) -> TimeoutsSpec | None:
    if value is None:
        return None
    item = c.model(value, Timeouts, "timeouts")
    start_ms = c.opt_ms(item.start, "timeouts.start")
    finish_ms = c.opt_ms(item.finish, "timeouts.finish")
    if start_ms is None and finish_ms is None:
        return None
    return TimeoutsSpec(start_ms=start_ms, finish_ms=finish_ms)


def _singleton(c: _Checker, value: object) -> SingletonSpec | None:
    if value is None:
        return None
    item = c.model(value, Singleton, "singleton")
    if item.mode not in ("skip", "cancel"):
        raise c.invalid("singleton.mode", f"must be 'skip' or 'cancel', got {item.mode!r}")
    return SingletonSpec(key=c.opt_str(item.key, "singleton.key"), mode=item.mode)


def normalize_function_options(
    fn_id: str,
    *,
    trigger: TriggerEvent | TriggerCron | Sequence[TriggerEvent | TriggerCron],
    retries: int | None = None,
    concurrency: Sequence[Concurrency] | Concurrency | None = None,
    rate_limit: RateLimit | None = None,
    throttle: Throttle | None = None,
    debounce: Debounce | None = None,
    batch_events: Batch | None = None,
    cancel: Sequence[Cancel] | Cancel | None = None,
    priority: Priority | None = None,
    timeouts: Timeouts | None = None,
    idempotency: str | None = None,
    singleton: Singleton | None = None,
) -> FunctionOptions:
    """Validate ``create_function``'s options and normalize them (durations in ms).

    Options may also be given as mappings of the same fields (as pydantic accepts in the SDK).
    ``concurrency`` and ``cancel`` accept a single instance as well as a list.

    Raises:
        FunctionConfigInvalidError: a value or a combination is invalid (a ``ValueError``; the
            message names the function, the option and the field, e.g.
            ``"concurrency[0].limit: must be at least 1, got 0"``).
        TypeError: an option has the wrong type.
    """
    if not isinstance(fn_id, str):
        raise TypeError(f"fn_id: expected str, got {type(fn_id).__name__}")
    if not fn_id.strip():
        raise FunctionConfigInvalidError("fn_id: must be a non-empty string", field="fn_id")
    c = _Checker(fn_id)
    options = FunctionOptions(
        fn_id=fn_id,
        triggers=_triggers(c, trigger),
        retries=(
            DEFAULT_RETRIES if retries is None else c.int_(retries, "retries", 0, MAX_RETRIES)
        ),
        concurrency=_concurrency(c, concurrency),
        rate_limit=_rate_limit(c, rate_limit),
        throttle=_throttle(c, throttle),
        debounce=_debounce(c, debounce),
        batch=_batch(c, batch_events),
        cancel=_cancel(c, cancel),
        priority=_priority(c, priority),
        timeouts=_timeouts(c, timeouts),
        idempotency=c.opt_str(idempotency, "idempotency"),
        singleton=_singleton(c, singleton),
    )
    if options.batch is not None:
        _check_batch_combinations(c, options)
    return options


def _check_batch_combinations(c: _Checker, options: FunctionOptions) -> None:
    """Batched functions can't use cancel, debounce, singleton or priority, as on Inngest;
    rate limits and idempotency do not apply to batches, so they are rejected too."""
    conflicts = (
        ("cancel", bool(options.cancel), ""),
        ("debounce", options.debounce is not None, ""),
        ("singleton", options.singleton is not None, ""),
        ("priority", options.priority is not None, ""),
        (
            "rate_limit",
            options.rate_limit is not None,
            ": rate limits do not apply to batched functions",
        ),
        (
            "idempotency",
            options.idempotency is not None,
            ": idempotency does not apply to batched functions",
        ),
    )
    for name, present, why in conflicts:
        if present:
            raise c.invalid("batch_events", f"cannot be combined with {name}{why}")
