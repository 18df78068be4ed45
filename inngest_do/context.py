"""What a handler receives: ``ctx`` (as in the Inngest SDK)."""

from __future__ import annotations

import dataclasses
import logging
import typing

from .event import Event

if typing.TYPE_CHECKING:
    from .client import Inngest
    from .execution import Execution
    from .step import Group, GroupSync, Step, StepSync


class ReplayQuietLogger(logging.LoggerAdapter):  # type: ignore[type-arg]
    """``ctx.logger``: the client's logger (as ``client.set_logger`` last set it), silent
    while a replay re-runs handler code that already ran (as in the SDK), so each line is
    logged once per time the code really runs."""

    def __init__(self, client: Inngest, execution: Execution) -> None:
        super().__init__(client.logger, {})
        self._client = client
        self._ex = execution

    @property  # type: ignore[override]
    def logger(self) -> typing.Any:
        return self._client.logger

    @logger.setter
    def logger(self, value: typing.Any) -> None:
        pass  # always the client's current logger

    def _quiet(self) -> bool:
        return bool(self._ex.memo_phase)

    def debug(self, msg: object, *args: typing.Any, **kwargs: typing.Any) -> None:
        if not self._quiet():
            self._client.logger.debug(msg, *args, **kwargs)

    def info(self, msg: object, *args: typing.Any, **kwargs: typing.Any) -> None:
        if not self._quiet():
            self._client.logger.info(msg, *args, **kwargs)

    def warning(self, msg: object, *args: typing.Any, **kwargs: typing.Any) -> None:
        if not self._quiet():
            self._client.logger.warning(msg, *args, **kwargs)

    def error(self, msg: object, *args: typing.Any, **kwargs: typing.Any) -> None:
        if not self._quiet():
            self._client.logger.error(msg, *args, **kwargs)

    def exception(self, msg: object, *args: typing.Any, exc_info: typing.Any = True,
                  **kwargs: typing.Any) -> None:
        if not self._quiet():
            self._client.logger.exception(msg, *args, exc_info=exc_info, **kwargs)

    def critical(self, msg: object, *args: typing.Any, **kwargs: typing.Any) -> None:
        if not self._quiet():
            self._client.logger.critical(msg, *args, **kwargs)

    def log(self, level: int, msg: object, *args: typing.Any, **kwargs: typing.Any) -> None:
        if not self._quiet():
            self._client.logger.log(level, msg, *args, **kwargs)


@dataclasses.dataclass
class Context:
    """Context of an async handler.

    ``attempt`` is 0 on a first try and counts failed attempts since the last recorded step;
    ``events`` holds more than one event only for batched functions.
    """

    attempt: int
    event: Event
    events: list[Event]
    group: Group
    logger: logging.Logger | logging.LoggerAdapter[typing.Any]
    run_id: str
    step: Step
    job_id: str | None = None
    request_id: str | None = None


@dataclasses.dataclass
class ContextSync:
    """Context of a sync handler (same fields, sync step tools)."""

    attempt: int
    event: Event
    events: list[Event]
    group: GroupSync
    logger: logging.Logger | logging.LoggerAdapter[typing.Any]
    run_id: str
    step: StepSync
    job_id: str | None = None
    request_id: str | None = None


class _Lazy:
    """What the engine hands a handler: a :class:`Context` (or :class:`ContextSync`) whose
    ``event``, ``events``, ``logger`` and ``group`` are made on first read (issue 12).

    Most handlers never read some of them, yet each run used to build them all: the event
    models (a pydantic validation and a copy of ``data`` each), a logger adapter and a group
    helper -- a few microseconds per run and about a kilobyte per parked run. Reads, writes
    (middleware may replace ``ctx.event``), equality and ``repr`` behave as on the plain
    dataclass, whose fields these are.
    """

    # job_id and request_id keep the dataclass's class-level defaults (None) until set

    @classmethod
    def made(cls, attempt: int, run_id: str, step: typing.Any,
             execution: Execution) -> typing.Any:
        """The engine's way in (the dataclass's own ``__init__`` still works, e.g. for
        ``dataclasses.replace``: then every field is given and nothing is lazy)."""
        self = cls.__new__(cls)
        self.attempt = attempt
        self.run_id = run_id
        self.step = step
        self._ex = execution
        return self

    @property
    def events(self) -> list[Event]:
        d = self.__dict__
        events = d.get("_events")
        if events is None:
            events = d["_events"] = [Event.from_payload(p) for p in self._ex.run.events]
        return events

    @events.setter
    def events(self, value: list[Event]) -> None:
        d = self.__dict__
        if "_event" not in d:
            # as on the dataclass, ``event`` stays what it was when ``events`` is replaced
            current = self.events
            if current:
                d["_event"] = current[0]
        d["_events"] = value

    @property
    def event(self) -> Event:
        d = self.__dict__
        if "_event" in d:
            return d["_event"]
        return self.events[0]

    @event.setter
    def event(self, value: Event) -> None:
        self.__dict__["_event"] = value

    @property
    def group(self) -> typing.Any:
        d = self.__dict__
        group = d.get("_group")
        if group is None:
            group = d["_group"] = self._ex.engine.make_group(self._ex)
        return group

    @group.setter
    def group(self, value: typing.Any) -> None:
        self.__dict__["_group"] = value

    @property
    def logger(self) -> typing.Any:
        d = self.__dict__
        logger = d.get("_logger")
        if logger is None:
            logger = d["_logger"] = self._ex.engine.make_logger(self._ex)
        return logger

    @logger.setter
    def logger(self, value: typing.Any) -> None:
        self.__dict__["_logger"] = value


class LazyContext(_Lazy, Context):
    """:class:`Context` as the engine makes it (see :class:`_Lazy`)."""


class LazyContextSync(_Lazy, ContextSync):
    """:class:`ContextSync` as the engine makes it (see :class:`_Lazy`)."""
