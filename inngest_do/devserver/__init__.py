"""``inngest-do dev``: an Inngest server for apps written with the official SDK.

:class:`DevServer` speaks the server side of Inngest's SDK protocol (sync, the event API,
remote execution of functions, GraphQL and REST reads) over inngest_do's engine, on the real
clock or a virtual one. See docs/devserver.md.
"""

from __future__ import annotations

from .registry import SyncError
from .server import DevServer

__all__ = ["DevServer", "SyncError"]
