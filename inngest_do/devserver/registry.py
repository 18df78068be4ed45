"""App sync: the function configs an app sends (``POST /fn/register`` or an in-band sync)
become engine functions whose handler runs the function over HTTP (see ``remote.py``).

A config is translated into the same options ``create_function`` takes, so the engine applies
retries, flow control, cancellation, timeouts and cron schedules exactly as it does for local
functions. Anything we cannot honour is refused with a :class:`SyncError` naming the function
and the field, and nothing of that sync is applied.
"""

from __future__ import annotations

import dataclasses
import json
import threading
import typing
import urllib.parse

from .. import config as cfg
from ..durations import parse_duration_str
from ..function import Function

if typing.TYPE_CHECKING:
    from .remote import RemoteExecutor

__all__ = ["App", "Registry", "RemoteFunction", "SyncError", "SyncPlan"]

FAILED_EVENT = "inngest/function.failed"


class SyncError(ValueError):
    """A sync request we refuse (answered 400 with ``{"error": message}``)."""


class RemoteFunction(Function[typing.Any]):
    """A synced function: its id is the app's composite id, verbatim."""

    def __init__(self, *, full_id: str, app: App, url: str, config_key: str = "",
                 **kwargs: typing.Any) -> None:
        super().__init__(**kwargs)
        self._full_id = full_id
        self.app = app
        #: where the app serves this function (its ``fnId``/``stepId`` query stripped)
        self.url = url
        #: the synced config minus its URL, canonical: a re-sync that changes it replaces
        #: the function; one that only moves the app keeps it (and its flow-control state)
        self.config_key = config_key

    @property
    def id(self) -> str:
        return self._full_id


@dataclasses.dataclass
class App:
    """A synced app."""

    id: str
    url: str
    framework: str | None = None
    sdk: str | None = None
    functions: dict[str, RemoteFunction] = dataclasses.field(default_factory=dict)


def _ms(value: object, what: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool):
        raise SyncError(f"{what}: expected a duration string such as '30s', got {value!r}")
    if isinstance(value, int):
        return value
    if not isinstance(value, str):
        raise SyncError(f"{what}: expected a duration string such as '30s', got {value!r}")
    try:
        return parse_duration_str(value, what=what)
    except ValueError as err:
        raise SyncError(str(err)) from None


def _obj(value: object, what: str) -> dict[str, typing.Any]:
    if not isinstance(value, dict):
        raise SyncError(f"{what}: expected an object, got {type(value).__name__}")
    return value


def _list(value: object, what: str) -> list[typing.Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise SyncError(f"{what}: expected an array, got {type(value).__name__}")
    return value


#: config keys we read; any other key is refused, so an option we do not support fails the
#: sync loudly instead of being silently ignored
_KNOWN_KEYS = {"id", "name", "triggers", "steps", "batchEvents", "cancel", "concurrency",
               "debounce", "idempotency", "priority", "rateLimit", "throttle", "timeouts",
               "singleton"}


def parse_function(raw: object, app: App, index: int) -> RemoteFunction:
    """One function config -> a :class:`RemoteFunction` (``SyncError`` if unsupported)."""
    conf = _obj(raw, f"functions[{index}]")
    full_id = conf.get("id")
    if not isinstance(full_id, str) or not full_id:
        raise SyncError(f"functions[{index}].id: expected a non-empty string")
    where = f"function '{full_id}'"
    try:
        return _parse_function(conf, app, full_id, where)
    except SyncError as err:
        if where in str(err):
            raise
        raise SyncError(f"{where}: {err}") from None


def _parse_function(conf: dict[str, typing.Any], app: App, full_id: str,
                    where: str) -> RemoteFunction:
    unknown = sorted(set(conf) - _KNOWN_KEYS)
    if unknown:
        raise SyncError(f"{where}: unsupported config field(s) {', '.join(unknown)}")
    steps = _obj(conf.get("steps"), f"{where}: steps")
    step = steps.get("step") or (next(iter(steps.values())) if steps else None)
    step = _obj(step, f"{where}: steps.step")
    runtime = _obj(step.get("runtime"), f"{where}: steps.step.runtime")
    if runtime.get("type", "http") != "http":
        raise SyncError(f"{where}: runtime type {runtime.get('type')!r} is not supported "
                        "(only http)")
    url = runtime.get("url")
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise SyncError(f"{where}: steps.step.runtime.url: expected an http(s) URL, got {url!r}")
    retries = None
    if step.get("retries") is not None:
        attempts = _obj(step["retries"], f"{where}: retries").get("attempts")
        if not isinstance(attempts, int) or isinstance(attempts, bool):
            raise SyncError(f"{where}: retries.attempts: expected an integer")
        retries = attempts

    triggers: list[cfg.TriggerEvent | cfg.TriggerCron] = []
    for i, trig in enumerate(_list(conf.get("triggers"), f"{where}: triggers")):
        trig = _obj(trig, f"{where}: triggers[{i}]")
        if "event" in trig:
            triggers.append(cfg.TriggerEvent(event=trig["event"],
                                             expression=trig.get("expression")))
        elif "cron" in trig:
            triggers.append(cfg.TriggerCron(cron=trig["cron"], jitter=trig.get("jitter")))
        else:
            raise SyncError(f"{where}: triggers[{i}]: expected 'event' or 'cron'")
    if not triggers:
        raise SyncError(f"{where}: triggers: at least one trigger is required")

    kwargs: dict[str, typing.Any] = {}
    if conf.get("concurrency"):
        kwargs["concurrency"] = [
            cfg.Concurrency(limit=c.get("limit"), key=c.get("key"), scope=c.get("scope"))
            for c in (_obj(c, f"{where}: concurrency")
                      for c in _list(conf["concurrency"], f"{where}: concurrency"))]
    if conf.get("rateLimit"):
        r = _obj(conf["rateLimit"], f"{where}: rateLimit")
        kwargs["rate_limit"] = cfg.RateLimit(limit=r.get("limit"), key=r.get("key"),
                                             period=_ms(r.get("period"), "rateLimit.period"))
    if conf.get("throttle"):
        t = _obj(conf["throttle"], f"{where}: throttle")
        kwargs["throttle"] = cfg.Throttle(limit=t.get("limit"), key=t.get("key"),
                                          period=_ms(t.get("period"), "throttle.period"),
                                          burst=t.get("burst", 1))
    if conf.get("debounce"):
        d = _obj(conf["debounce"], f"{where}: debounce")
        kwargs["debounce"] = cfg.Debounce(key=d.get("key"),
                                          period=_ms(d.get("period"), "debounce.period"),
                                          timeout=_ms(d.get("timeout"), "debounce.timeout"))
    if conf.get("batchEvents"):
        b = _obj(conf["batchEvents"], f"{where}: batchEvents")
        kwargs["batch_events"] = cfg.Batch(max_size=b.get("maxSize"), key=b.get("key"),
                                           if_exp=b.get("if"),
                                           timeout=_ms(b.get("timeout"), "batchEvents.timeout"))
    if conf.get("cancel"):
        kwargs["cancel"] = [
            cfg.Cancel(event=c.get("event"), if_exp=c.get("if"),
                       timeout=_ms(c.get("timeout"), "cancel.timeout"))
            for c in (_obj(c, f"{where}: cancel")
                      for c in _list(conf["cancel"], f"{where}: cancel"))]
    if conf.get("priority"):
        kwargs["priority"] = cfg.Priority(run=_obj(conf["priority"], f"{where}: priority")
                                          .get("run"))
    if conf.get("timeouts"):
        t = _obj(conf["timeouts"], f"{where}: timeouts")
        kwargs["timeouts"] = cfg.Timeouts(start=_ms(t.get("start"), "timeouts.start"),
                                          finish=_ms(t.get("finish"), "timeouts.finish"))
    if conf.get("singleton"):
        s = _obj(conf["singleton"], f"{where}: singleton")
        kwargs["singleton"] = cfg.Singleton(key=s.get("key"), mode=s.get("mode", "skip"))
    if conf.get("idempotency"):
        kwargs["idempotency"] = conf["idempotency"]

    # The engine keys functions by id; the local part only feeds names and messages.
    local_id = full_id[len(app.id) + 1:] if full_id.startswith(app.id + "-") else full_id
    is_failure = (len(triggers) == 1 and isinstance(triggers[0], cfg.TriggerEvent)
                  and triggers[0].event == FAILED_EVENT and full_id.endswith("-failure"))
    config_key = json.dumps({**{k: v for k, v in conf.items() if k != "steps"},
                             "retries": retries}, sort_keys=True, default=str)
    try:
        opts = cfg.normalize_function_options(local_id, trigger=triggers, retries=retries,
                                              **kwargs)
        return RemoteFunction(
            full_id=full_id, app=app, url=_strip_query(url), app_id=app.id, opts=opts,
            config_key=config_key,
            handler=_placeholder, name=conf.get("name") or local_id, middleware=None,
            is_failure_handler=is_failure)
    except (ValueError, TypeError) as err:
        raise SyncError(f"{where}: {err}") from None


async def _placeholder(ctx: typing.Any) -> None:  # replaced by Registry.sync
    raise RuntimeError("inngest_do dev: function handler not bound")


def _strip_query(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    query = [(k, v) for k, v in urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
             if k not in ("fnId", "stepId")]
    return urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(query)))


@dataclasses.dataclass
class SyncPlan:
    """What one sync changes (see :meth:`Registry.apply`)."""

    app: App
    #: functions the engine has never served
    new: list[RemoteFunction]
    #: functions served before whose config changed (or that come back after a removal)
    changed: list[RemoteFunction]
    #: ids the app declared before and no longer does
    removed: list[str]
    #: every function id the app declares now
    ids: list[str]
    modified: bool


class Registry:
    """Every synced app and its functions; thread-safe."""

    def __init__(self, executor: RemoteExecutor) -> None:
        self._executor = executor
        self._lock = threading.Lock()
        self.apps: dict[str, App] = {}
        #: every function ever synced, by id (its latest config)
        self.functions: dict[str, RemoteFunction] = {}
        #: ids a re-sync of their app dropped (no longer triggered)
        self.removed: set[str] = set()

    def parse(self, body: object, *, url: str | None = None) -> tuple[App, list[RemoteFunction]]:
        """A sync request body (``appname``/``app_id``, ``url``, ``functions``) -> the app
        and its functions, handlers bound. ``SyncError`` on anything unsupported."""
        body = _obj(body, "body")
        app_id = body.get("appname") or body.get("app_id") or body.get("appName")
        if not isinstance(app_id, str) or not app_id:
            raise SyncError("appname: expected a non-empty string")
        app_url = body.get("url") or url
        if not isinstance(app_url, str) or not app_url.startswith(("http://", "https://")):
            raise SyncError(f"url: expected the app's http(s) URL, got {app_url!r}")
        app = App(id=app_id, url=app_url, framework=body.get("framework"),
                  sdk=body.get("sdk") or body.get("sdk_language"))
        fns = [parse_function(raw, app, i)
               for i, raw in enumerate(_list(body.get("functions"), "functions"))]
        seen: set[str] = set()
        for fn in fns:
            if fn.id in seen:
                raise SyncError(f"functions: id '{fn.id}' appears twice")
            seen.add(fn.id)
            fn.handler = self._executor.handler_for(fn.id)
        return app, fns

    def apply(self, app: App, fns: list[RemoteFunction]) -> SyncPlan:
        """Record a parsed sync; what the engine must do about it. A function synced again
        with the same config keeps its engine identity (its URL and app follow the latest
        sync); one with a changed config is replaced."""
        with self._lock:
            old = self.apps.get(app.id)
            old_ids = set(old.functions) if old is not None else set()
            new: list[RemoteFunction] = []
            changed: list[RemoteFunction] = []
            for fn in fns:
                known = self.functions.get(fn.id)
                if known is None:
                    new.append(fn)
                elif known.config_key != fn.config_key or fn.id in self.removed:
                    changed.append(fn)
                else:
                    known.app, known.url = app, fn.url
                    fn = known
                self.functions[fn.id] = fn
                app.functions[fn.id] = fn
            removed = sorted(old_ids - set(app.functions))
            self.removed.difference_update(app.functions)
            self.removed.update(removed)
            self.apps[app.id] = app
            modified = (old is None or old.url != app.url or bool(new or changed or removed))
            return SyncPlan(app, new, changed, removed, list(app.functions), modified)

    def get(self, fn_id: str) -> RemoteFunction | None:
        with self._lock:
            return self.functions.get(fn_id)
