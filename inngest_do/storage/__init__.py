"""Stores: where an engine's records live (see :mod:`inngest_do.storage.base`)."""

from .base import RecoveredState, Store, StoreError, StoreFormatError, StoreInUseError
from .memory import MemoryStore

__all__ = ["MemoryStore", "RecoveredState", "Store", "StoreError", "StoreFormatError",
           "StoreInUseError", "open_store"]


def open_store(store: "Store | str | None") -> Store:
    """A store from the client's ``store=`` argument: None (memory), a path, or a Store."""
    if store is None or store == ":memory:":
        return MemoryStore()
    if isinstance(store, Store):
        return store
    if isinstance(store, str) or hasattr(store, "__fspath__"):
        from .sqlite import SQLiteStore  # imported late: memory users never pay for sqlite3

        return SQLiteStore(store)
    raise TypeError(f"store: expected None, a file path or a Store, got {type(store).__name__}")
