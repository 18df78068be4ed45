"""``inngest_do.experimental.dev_server.server``: the SDK's test-harness handle on a dev server
(``server.start()``, ``server.stop()``, ``server.port``, ``server.origin``), here starting
inngest_do's own :class:`~inngest_do.DevServer` in the process instead of running the Go
binary through ``npx``. As in the SDK, ``DEV_SERVER_PORT`` picks the port (default 8288) and
``DEV_SERVER_ENABLED=0`` makes ``start``/``stop`` do nothing (a server is run elsewhere).
"""

from __future__ import annotations

import os
import typing

if typing.TYPE_CHECKING:
    from ...devserver import DevServer

__all__ = ["server"]


class _Server:
    """One dev server for a test session, started and stopped explicitly."""

    def __init__(self) -> None:
        raw = os.getenv("DEV_SERVER_PORT")
        try:
            self.port = int(raw) if raw else 8288
        except ValueError:
            raise ValueError(f"DEV_SERVER_PORT: expected a port number, got {raw!r}") from None
        self._enabled = os.getenv("DEV_SERVER_ENABLED") != "0"
        self._running: DevServer | None = None

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def running(self) -> DevServer | None:
        """The server started by :meth:`start` (None when not running or disabled)."""
        return self._running

    def start(self) -> None:
        """Start listening on ``port``; returns once the server answers."""
        if not self._enabled:
            return
        if self._running is not None:
            raise RuntimeError("Dev Server is already running")
        from ...devserver import DevServer  # the server's dependencies load only when used

        self._running = DevServer(port=self.port).start()

    def stop(self) -> None:
        if not self._enabled:
            return
        if self._running is None:
            raise RuntimeError("Dev Server is not running")
        running, self._running = self._running, None
        running.stop()


server = _Server()
