"""The storage interface: everything the engine must find again after a restart.

The engine keeps its working state in memory (timer heap, wait index, live coroutines) and
writes through to a :class:`Store` at each state change. A store only has to keep records and
give them back; it knows nothing about heaps, CEL or Inngest. Records are plain JSON-friendly
dicts, so any store (memory, SQLite, a future PostgreSQL one) can hold them.

Durability contract: what a store was given before :meth:`Store.commit` returned survives a
crash of the process. The engine commits before ``send`` returns and before a handler
continues past a step.
"""

from __future__ import annotations

import abc
import typing


class RecoveredState(typing.NamedTuple):
    """Everything a store gives back to an engine that starts over."""

    runs: list[dict]  # run records (see RunState.to_record), memos and history inside
    events: list[dict]  # {"id", "payload", "received_ms"} in arrival order
    flow: dict[str, dict[str, typing.Any]]  # namespace -> key -> value
    meta: dict[str, typing.Any]


class Store(abc.ABC):
    """Where an engine's records live. Implementations: MemoryStore, SQLiteStore."""

    #: a label for messages and ``repr``
    location: str = "memory"

    def open(self) -> None:
        """Acquire resources (files, leases). Called once by the engine."""

    def close(self) -> None:
        """Release resources. Everything committed stays."""

    # writes ------------------------------------------------------------------------------
    @abc.abstractmethod
    def save_event(self, event_id: str, payload: dict, received_ms: int) -> None:
        """Record an accepted event."""

    @abc.abstractmethod
    def save_run(self, record: dict) -> None:
        """Insert or replace a run's record (scalar fields and pending suspensions)."""

    @abc.abstractmethod
    def save_memo(self, run_id: str, step_id: str, outcome: list) -> None:
        """Record a step's outcome; a step is recorded once."""

    @abc.abstractmethod
    def append_history(self, run_id: str, entry: tuple) -> None:
        """Append one trace entry to a run's history."""

    @abc.abstractmethod
    def save_flow(self, namespace: str, key: str, value: typing.Any) -> None:
        """Set (or, with ``value=None``, delete) one piece of flow-control state."""

    @abc.abstractmethod
    def save_meta(self, key: str, value: typing.Any) -> None:
        """Set an engine-wide value (cron cursors, the random source's state...)."""

    def commit(self) -> None:
        """Make everything written so far durable."""

    # reads -------------------------------------------------------------------------------
    @abc.abstractmethod
    def recover(self) -> RecoveredState:
        """Everything needed to rebuild an engine."""

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.location}>"
