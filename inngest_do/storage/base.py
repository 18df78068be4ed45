"""The storage interface: everything the engine must find again after a restart.

The engine keeps its working state in memory (timer heap, wait index, live coroutines) and
writes through to a :class:`Store` at each state change. A store only has to keep records and
give them back; it knows nothing about heaps, CEL or Inngest. Records are plain JSON-friendly
dicts, so any store (memory, SQLite, a future PostgreSQL one) can hold them.

Durability contract: what a store was given before :meth:`Store.commit` returned survives a
crash of the process. The engine commits before ``send`` returns and before a handler
continues past a step. A commit that fails raises :class:`StoreError` and applies nothing:
the store is then exactly what the last successful commit left, and the engine rebuilds its
working state from it.

Memory: the engine keeps only active work (runs not final, events whose outcome may still
change); :meth:`Store.recover` gives back only that, and finished runs and settled events
are read on demand (:meth:`Store.load_runs`, :meth:`Store.load_run`,
:meth:`Store.load_events`) and pruned by age (:meth:`Store.prune`).
"""

from __future__ import annotations

import abc
import typing


class StoreError(RuntimeError):
    """A store cannot be used or a write to it failed; the message names the store and the
    real cause (for example "the disk is full"). A failed :meth:`Store.commit` leaves the
    store as it was before that commit."""


class StoreFormatError(StoreError):
    """The file is not an inngest_do store this code can use (foreign, newer or damaged)."""


class StoreInUseError(StoreError):
    """Another engine holds the store's lease."""

    def __init__(self, message: str, pid: int | None = None) -> None:
        super().__init__(message)
        self.pid = pid


class RecoveredState(typing.NamedTuple):
    """Everything a store gives back to an engine that starts over."""

    runs: list[dict]  # active run records (see run_record), memos and history inside
    events: list[dict]  # unsettled {"id", "payload", "received_ms", "outcomes"}, in order
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
    def save_event(self, event_id: str, payload: dict, received_ms: int,
                   outcomes: list | None = None, settled: bool = False) -> None:
        """Record an accepted event (again: its outcomes changed). ``settled``: its outcomes
        are final, so :meth:`recover` need not give it back."""

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
        """Everything needed to rebuild an engine: active runs, unsettled events, flow
        state and meta values (never the finished runs)."""

    @abc.abstractmethod
    def load_runs(self, fn_id: str | None = None, status: str | None = None) -> list[dict]:
        """Committed run records (memos and history inside) in creation order: those of
        ``fn_id`` whose status is ``status`` (None: any), plus every run not final (whose
        status the engine may know better)."""

    @abc.abstractmethod
    def load_run(self, run_id: str) -> dict | None:
        """One committed run record (memos and history inside), or None."""

    @abc.abstractmethod
    def load_events(self, name: str | None = None) -> list[dict]:
        """Committed events (of one name) in arrival order, as in :attr:`RecoveredState.events`."""

    @abc.abstractmethod
    def prune(self, before_ms: int, limit: int = 5000) -> int:
        """Delete up to ``limit`` runs that ended before ``before_ms`` (with their memos and
        history) and settled events received before it; returns how many runs went (``limit``:
        there may be more). Commits itself."""

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.location}>"
