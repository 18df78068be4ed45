"""What a handler receives: ``ctx`` (as in the Inngest SDK)."""

from __future__ import annotations

import dataclasses
import logging
import typing

from .event import Event

if typing.TYPE_CHECKING:
    from .step import Group, GroupSync, Step, StepSync


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
    logger: logging.Logger | logging.LoggerAdapter[logging.Logger]
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
    logger: logging.Logger | logging.LoggerAdapter[logging.Logger]
    run_id: str
    step: StepSync
    job_id: str | None = None
    request_id: str | None = None
