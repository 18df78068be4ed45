"""inngest_do: durable functions embedded in your process, with the Inngest Python SDK's API.

``import inngest_do as inngest`` and code written for ``inngest`` runs with no server: events,
step memos, timers and flow control live in an engine inside the process.
"""

from __future__ import annotations

from . import kernel as _kernel
from .client import Inngest, SendEventsResult
from .config import (
    Batch,
    Cancel,
    Concurrency,
    Debounce,
    ParallelMode,
    Priority,
    RateLimit,
    Singleton,
    Streaming,
    Throttle,
    Timeouts,
    TriggerCron,
    TriggerEvent,
)
from .context import Context, ContextSync
from .errors import NonRetriableError, RetryAfterError, StepError
from .event import JSON, Event
from .function import Function
from .middleware import (
    Middleware,
    MiddlewareSync,
    StepMemos,
    TransformOutputResult,
)
from .runs import Run, RunError, RunStatus, TraceEntry
from .serializer import PydanticSerializer, Serializer
from .step import Group, GroupSync, Step, StepSync

__version__ = "0.1.0"

#: which kernel is in use: "compiled" (Cython) or "pure" (INNGEST_DO_PURE_PYTHON=1 forces it)
_core_impl: str = _kernel.IMPLEMENTATION

__all__ = [
    "JSON",
    "Batch",
    "Cancel",
    "Concurrency",
    "Context",
    "ContextSync",
    "Debounce",
    "DevServer",
    "Event",
    "Function",
    "Group",
    "GroupSync",
    "Inngest",
    "Middleware",
    "MiddlewareSync",
    "NonRetriableError",
    "ParallelMode",
    "Priority",
    "PydanticSerializer",
    "RateLimit",
    "RetryAfterError",
    "Run",
    "RunError",
    "RunStatus",
    "SendEventsResult",
    "Serializer",
    "Singleton",
    "Step",
    "StepError",
    "StepMemos",
    "StepSync",
    "Streaming",
    "Throttle",
    "Timeouts",
    "TraceEntry",
    "TransformOutputResult",
    "TriggerCron",
    "TriggerEvent",
    "Worker",
]


def __getattr__(name: str) -> object:
    # The worker pulls in asyncio machinery that simulation users never need.
    if name == "Worker":
        from .worker import Worker

        return Worker
    if name == "DevServer":  # an HTTP server: loaded only by those who use it
        from .devserver import DevServer

        return DevServer
    raise AttributeError(f"module 'inngest_do' has no attribute {name!r}")
