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
