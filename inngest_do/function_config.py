"""``Function.get_config``: a function's registration document, shaped as the SDK's.

The Inngest server learns a function from this document (``FunctionConfig`` with one root
step whose runtime URL points back at the app). inngest_do needs no server, but code and tools
that read the SDK's shape (``fn.get_config(url).main.id``, ``model_dump(by_alias=True)``) get
the same fields, built from the function's validated options.
"""

from __future__ import annotations

import dataclasses
import datetime
import typing
import urllib.parse

import pydantic

from .config import (
    Batch,
    Cancel,
    Concurrency,
    CronTriggerSpec,
    Debounce,
    FunctionOptions,
    Priority,
    RateLimit,
    Singleton,
    Throttle,
    Timeouts,
    TriggerCron,
    TriggerEvent,
)

#: the id of a function's single root step in its registration (as the SDK names it)
ROOT_STEP_ID = "step"
FAILED_EVENT = "inngest/function.failed"


class Retries(pydantic.BaseModel):
    attempts: int = pydantic.Field(ge=0)


class Runtime(pydantic.BaseModel):
    type: typing.Literal["http", "ws"]
    url: str


class Step(pydantic.BaseModel):
    id: str
    name: str
    retries: Retries | None = None
    runtime: Runtime


class FunctionConfig(pydantic.BaseModel):
    """One function as registered with Inngest (field names and aliases as in the SDK)."""

    batch_events: Batch | None = pydantic.Field(serialization_alias="batchEvents")
    cancel: list[Cancel] | None
    concurrency: list[Concurrency] | None
    debounce: Debounce | None
    id: str
    idempotency: str | None
    name: str | None
    priority: Priority | None
    rate_limit: RateLimit | None = pydantic.Field(serialization_alias="rateLimit")
    steps: dict[str, Step]
    throttle: Throttle | None
    timeouts: Timeouts | None
    singleton: Singleton | None
    triggers: list[TriggerCron | TriggerEvent]


@dataclasses.dataclass
class Config:
    """``main``: the function; ``on_failure``: its failure handler's, if it has one."""

    main: FunctionConfig
    on_failure: FunctionConfig | None


def _ms(value: int | None) -> datetime.timedelta | None:
    return None if value is None else datetime.timedelta(milliseconds=value)


def _root_step(app_url: str, fn_id: str, retries: int | None) -> dict[str, Step]:
    url = app_url + "?" + urllib.parse.urlencode({"fnId": fn_id, "stepId": ROOT_STEP_ID})
    return {ROOT_STEP_ID: Step(
        id=ROOT_STEP_ID, name=ROOT_STEP_ID,
        retries=None if retries is None else Retries(attempts=retries),
        runtime=Runtime(type="ws" if url.startswith("wss://") else "http", url=url))}


def _triggers(opts: FunctionOptions) -> list[TriggerCron | TriggerEvent]:
    out: list[TriggerCron | TriggerEvent] = []
    for trig in opts.triggers:
        if isinstance(trig, CronTriggerSpec):
            out.append(TriggerCron(cron=trig.cron, jitter=_ms(trig.jitter_ms)))
        else:
            out.append(TriggerEvent(event=trig.event, expression=trig.expression))
    return out


def function_config(fn_id: str, name: str, opts: FunctionOptions, app_url: str) -> FunctionConfig:
    """The registration of the function ``fn_id`` (fully qualified) with options ``opts``."""
    b, d, rl, th, t, s = (opts.batch, opts.debounce, opts.rate_limit, opts.throttle,
                          opts.timeouts, opts.singleton)
    return FunctionConfig(
        batch_events=None if b is None else Batch(
            max_size=b.max_size, timeout=_ms(b.timeout_ms), key=b.key, if_exp=b.if_exp),
        cancel=[Cancel(event=c.event, if_exp=c.if_exp, timeout=_ms(c.timeout_ms))
                for c in opts.cancel] or None,
        # "fn" is the default scope, which the SDK sends as null
        concurrency=[Concurrency(limit=c.limit, key=c.key,
                                 scope=None if c.scope == "fn" else c.scope)  # type: ignore[arg-type]
                     for c in opts.concurrency] or None,
        debounce=None if d is None else Debounce(
            key=d.key, period=_ms(d.period_ms), timeout=_ms(d.timeout_ms)),
        id=fn_id,
        idempotency=opts.idempotency,
        name=name,
        priority=None if opts.priority is None else Priority(run=opts.priority.run),
        rate_limit=None if rl is None else RateLimit(
            key=rl.key, limit=rl.limit, period=_ms(rl.period_ms)),
        steps=_root_step(app_url, fn_id, opts.retries),
        throttle=None if th is None else Throttle(
            key=th.key, limit=th.limit, period=_ms(th.period_ms), burst=th.burst),
        timeouts=None if t is None else Timeouts(start=_ms(t.start_ms), finish=_ms(t.finish_ms)),
        singleton=None if s is None else Singleton(key=s.key, mode=s.mode),  # type: ignore[arg-type]
        triggers=_triggers(opts),
    )


def failure_config(failure_id: str, name: str, fn_id: str, app_url: str) -> FunctionConfig:
    """The registration of ``fn_id``'s on_failure handler (no retries, as in the SDK)."""
    return FunctionConfig(
        batch_events=None, cancel=[], concurrency=[], debounce=None, id=failure_id,
        idempotency=None, name=f"{name} (failure)", priority=None, rate_limit=None,
        steps=_root_step(app_url, failure_id, 0), throttle=None, timeouts=None,
        singleton=None,
        triggers=[TriggerEvent(event=FAILED_EVENT,
                               expression=f"event.data.function_id == '{fn_id}'")],
    )
