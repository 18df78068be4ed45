"""The SQLite store: an engine's records in one file that survives a hard kill.

Durability. The file is in WAL mode. Writes wait in memory until :meth:`SQLiteStore.commit`
sends them to SQLite in one transaction (group commit); the engine commits before ``send``
returns and before a handler continues past a step, so what was acknowledged is committed.
With the default ``synchronous="NORMAL"`` a commit appends to the WAL without an fsync: a
killed process (SIGKILL, a crash) loses nothing committed, but a power loss or an OS crash may
roll back the last few transactions (never corrupt the file). ``synchronous="FULL"`` fsyncs
every commit and survives power loss too, at the cost of one fsync per step.

Layout. Step memos and history entries go to one append-only ``journal`` table, so the
commit after a step is a single multi-row INSERT that writes one page; runs, events,
flow-control state and meta values have a table each. Order is kept by rowid.

Format. ``PRAGMA application_id`` marks the file as ours and ``PRAGMA user_version`` holds its
schema version; :data:`MIGRATIONS` move older files forward. Before anything is written, the
file is inspected through a read-only connection: a file that is not SQLite, not ours, from a
newer schema or corrupt raises :class:`StoreFormatError` naming the path and the problem, and
is left exactly as it was (no byte of it, and no side file created).

Lease. One engine owns a store file at a time: it holds an exclusive ``flock`` on the side file
``<path>.lock`` (which also records its pid) for as long as the store is open; a second engine
gets :class:`StoreInUseError` ("... is in use by process N"), or waits up to ``lease_timeout``
seconds for it. The kernel drops the lock when its holder dies, even by SIGKILL.

Inbox. Other processes may still append events while an engine owns the file:
:func:`send_events` inserts them into the ``inbox`` table in its own short transaction (SQLite
serializes writers), and the owner moves them into the engine with :meth:`SQLiteStore.take_inbox`,
whose deletion is committed in the same transaction that records them as accepted, so an inbox
event is accepted exactly once even if the owner dies at any point. This is how
``inngest-do send`` reaches a running ``inngest-do run``.

Costs: a commit is one SQLite transaction, O(log n) per row written; :meth:`SQLiteStore.recover`
reads every table once, O(size of the file).
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import sqlite3
import time
import typing

from .base import RecoveredState, Store

if typing.TYPE_CHECKING:
    from typing_extensions import Self

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX: no lease
    fcntl = None  # type: ignore[assignment]

__all__ = [
    "APPLICATION_ID",
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "SQLiteStore",
    "StoreError",
    "StoreFormatError",
    "StoreInUseError",
    "StoreReader",
    "send_events",
]

#: ``PRAGMA application_id`` of every inngest_do store ("ingd")
APPLICATION_ID = 0x696E6764
#: the schema this code writes; files from a newer one are refused
SCHEMA_VERSION = 1

_SQLITE_HEADER = b"SQLite format 3\x00"

_SCHEMA = (
    """CREATE TABLE inngest_do_store (key TEXT PRIMARY KEY, value TEXT NOT NULL)""",
    """CREATE TABLE events (seq INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE,
        payload TEXT NOT NULL, received_ms INTEGER NOT NULL)""",
    """CREATE TABLE runs (seq INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE,
        fn_id TEXT NOT NULL, status TEXT NOT NULL, created_ms INTEGER NOT NULL,
        ended_ms INTEGER, record TEXT NOT NULL)""",
    # step memos (kind 'm', with their step id) and history entries (kind 'h') share one
    # append-only table: a step's commit then writes one page, not two
    """CREATE TABLE journal (seq INTEGER PRIMARY KEY, run_id TEXT NOT NULL,
        kind TEXT NOT NULL, step_id TEXT, data TEXT NOT NULL)""",
    """CREATE TABLE flow (namespace TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL,
        PRIMARY KEY (namespace, key)) WITHOUT ROWID""",
    """CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)""",
    """CREATE TABLE inbox (seq INTEGER PRIMARY KEY AUTOINCREMENT, payload TEXT NOT NULL,
        sent_ms INTEGER NOT NULL)""",
)

#: ``MIGRATIONS[v]`` turns a version-``v`` file into a version ``v + 1`` one; each runs inside
#: the transaction that also sets the new ``user_version``.
MIGRATIONS: dict[int, typing.Callable[[sqlite3.Connection], None]] = {}

_INSERT_EVENT = (
    "INSERT INTO events (id, payload, received_ms) VALUES (?, ?, ?) ON CONFLICT (id)"
    " DO UPDATE SET payload = excluded.payload, received_ms = excluded.received_ms"
)
_UPSERT_RUN = (
    "INSERT INTO runs (id, fn_id, status, created_ms, ended_ms, record) VALUES (?, ?, ?, ?, ?, ?)"
    " ON CONFLICT (id) DO UPDATE SET status = excluded.status, ended_ms = excluded.ended_ms,"
    " record = excluded.record"
)
_INSERT_JOURNAL = "INSERT INTO journal (run_id, kind, step_id, data) VALUES "
_JOURNAL_ROW = "(?, ?, ?, ?)"
#: up to this many journal rows go in one multi-row INSERT (SQLite allows 32,766 parameters)
_MAX_ROWS = 256
#: WAL pages between automatic checkpoints (SQLite's default is 1,000): a hot page rewritten
#: by many commits is copied back to the file once per checkpoint, so fewer checkpoints is
#: less work per commit; the WAL file stays under 16 MiB plus one transaction
_CHECKPOINT_PAGES = 4000
_UPSERT_FLOW = "INSERT OR REPLACE INTO flow (namespace, key, value) VALUES (?, ?, ?)"
_DELETE_FLOW = "DELETE FROM flow WHERE namespace = ? AND key = ?"
_UPSERT_META = "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)"

_dumps = json.JSONEncoder(separators=(",", ":"), allow_nan=False).encode
_loads = json.loads


class StoreError(RuntimeError):
    """A store file cannot be used; the message names the path and the problem."""


class StoreFormatError(StoreError):
    """The file is not an inngest_do store this code can use (foreign, newer or corrupt)."""


class StoreInUseError(StoreError):
    """Another engine holds the store's lease."""

    def __init__(self, message: str, pid: int | None = None) -> None:
        super().__init__(message)
        self.pid = pid


# inspection (read-only) -------------------------------------------------------------------
def _inspect(path: str, *, check: bool) -> int | None:
    """The schema version of the store at ``path`` (0: nothing there yet), or raise
    :class:`StoreFormatError`. Opens the file read-only: it is never modified."""
    try:
        with open(path, "rb") as f:
            header = f.read(len(_SQLITE_HEADER))
    except FileNotFoundError:
        return 0
    except OSError as err:
        raise StoreError(f"store {path}: cannot read it ({err.strerror or err})") from None
    if not header:
        return 0  # an empty file (e.g. `touch`): nothing to lose by adopting it
    if header != _SQLITE_HEADER:
        raise StoreFormatError(f"store {path}: not an SQLite database, so not an inngest_do "
                               "store; refusing to touch it")
    try:
        conn = _connect_ro(path)
    except sqlite3.Error as err:
        raise StoreError(f"store {path}: cannot open it read-only ({err})") from None
    try:
        app_id = conn.execute("PRAGMA application_id").fetchone()[0]
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        tables = {r[0] for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table'")}
        if app_id == 0 and not tables:
            return 0  # an empty SQLite database
        if app_id != APPLICATION_ID:
            what = f"application id {app_id:#x}" if app_id else \
                f"tables {', '.join(sorted(tables)[:5])}"
            raise StoreFormatError(f"store {path}: not an inngest_do store (an SQLite database "
                                   f"with {what}); refusing to touch it")
        if version > SCHEMA_VERSION:
            raise StoreFormatError(
                f"store {path}: written by a newer inngest_do (schema version {version}; this "
                f"one reads up to {SCHEMA_VERSION}); upgrade inngest_do to open it")
        if version < 1 or "inngest_do_store" not in tables:
            raise StoreFormatError(f"store {path}: corrupt (inngest_do marker present but "
                                   f"schema version {version} and tables missing)")
        if check:
            problems = [r[0] for r in conn.execute("PRAGMA quick_check(3)")]
            if problems != ["ok"]:
                raise StoreFormatError(f"store {path}: corrupt ({'; '.join(problems)})")
        return version
    except sqlite3.DatabaseError as err:
        raise StoreFormatError(f"store {path}: corrupt or unreadable ({err})") from None
    finally:
        conn.close()


def _connect_ro(path: str) -> sqlite3.Connection:
    """A read-only connection that creates nothing next to the file: with no ``-wal`` file
    there is nothing but the file to read, and ``immutable`` keeps SQLite from creating the
    ``-wal``/``-shm`` pair a WAL-mode file would otherwise get."""
    from urllib.parse import quote

    uri = "file:" + quote(os.path.abspath(path)) + "?mode=ro"
    if not os.path.exists(path + "-wal"):
        uri += "&immutable=1"
    return sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)


# the lease ---------------------------------------------------------------------------------
class _Lease:
    """An exclusive ``flock`` on ``<path>.lock``, which also says who holds it: ``"<pid>
    engine"`` for as long as an engine has the store open, ``"<pid> send"`` for the moment
    a sender creates or migrates the file."""

    #: seconds anyone waits for a sender's (short) hold, whatever their own timeout
    TRANSIENT_WAIT = 10.0

    def __init__(self, path: str, role: str = "engine") -> None:
        self.path = path + ".lock"
        self.role = role
        self.fd: int | None = None

    def acquire(self, store_path: str, timeout: float) -> None:
        if fcntl is None:  # pragma: no cover
            return
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        started = time.monotonic()
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                pid, role = _read_holder(fd)
                waited = time.monotonic() - started
                if waited >= timeout and (role == "engine" or waited >= self.TRANSIENT_WAIT):
                    os.close(fd)
                    who = f"process {pid}" if pid else "another process"
                    if pid == os.getpid():
                        who += " (this one: another store object has it open)"
                    raise StoreInUseError(f"store {store_path}: is in use by {who}; stop it "
                                          "first, or send events with `inngest-do send`",
                                          pid) from None
                time.sleep(0.02)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()} {self.role}\n".encode(), 0)
        self.fd = fd

    def release(self) -> None:
        if self.fd is not None:
            fd, self.fd = self.fd, None
            with contextlib.suppress(OSError):
                os.ftruncate(fd, 0)
            os.close(fd)  # closing the descriptor drops the flock


def _read_holder(fd: int) -> tuple[int | None, str | None]:
    """(pid, role) of the lease's holder; (None, None) while it has not written them yet."""
    try:
        pid, role = os.pread(fd, 64, 0).split()[:2]
        return int(pid), role.decode()
    except (OSError, ValueError):
        return None, None


# the store ---------------------------------------------------------------------------------
def _connect(path: str, synchronous: str, busy_ms: int) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False,
                           cached_statements=64)
    conn.execute(f"PRAGMA busy_timeout = {int(busy_ms)}")
    conn.execute(f"PRAGMA synchronous = {synchronous}")
    conn.execute(f"PRAGMA wal_autocheckpoint = {_CHECKPOINT_PAGES}")
    conn.execute(f"PRAGMA journal_size_limit = {4 * _CHECKPOINT_PAGES * 4096}")
    return conn


def _prepare(conn: sqlite3.Connection, path: str, version: int) -> None:
    """Create the schema in a new file, or migrate an older one, in one transaction."""
    if version == 0 and conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
        # outside any transaction: switching to WAL is not transactional
        conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("BEGIN IMMEDIATE")
    try:
        current = conn.execute("PRAGMA user_version").fetchone()[0]
        if current == 0:
            for stmt in _SCHEMA:
                conn.execute(stmt)
            conn.execute("INSERT INTO inngest_do_store VALUES ('format', 'inngest_do'),"
                         " ('created_ms', ?)", (str(time.time_ns() // 1_000_000),))
            conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
            current = 1
        while current < SCHEMA_VERSION:
            MIGRATIONS[current](conn)
            current += 1
        conn.execute(f"PRAGMA user_version = {current}")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def _open_for_writing(path: str, synchronous: str, busy_ms: int, *, check: bool,
                      lease: _Lease | None, lease_timeout: float) -> sqlite3.Connection:
    """Inspect read-only, then (holding ``lease`` if given) open, create or migrate."""
    _inspect(path, check=check)  # refuse bad files before creating anything next to them
    if lease is not None:
        lease.acquire(path, lease_timeout)
    try:
        version = _inspect(path, check=False)  # again, under the lease: it may have changed
        conn = _connect(path, synchronous, busy_ms)
        try:
            if version != SCHEMA_VERSION:
                _prepare(conn, path, version or 0)
        except BaseException:
            conn.close()
            raise
        return conn
    except BaseException:
        if lease is not None:
            lease.release()
        raise


class SQLiteStore(Store):
    """An engine's records in one SQLite file (see the module docstring).

    Args:
        path: the file; created (with its schema) if missing.
        synchronous: ``"NORMAL"`` (default; survives a killed process) or ``"FULL"`` (an
            fsync per commit; survives power loss too).
        lease_timeout: seconds to wait for another process to release the file (0: refuse
            at once with :class:`StoreInUseError`).
        check: run SQLite's ``quick_check`` when opening (O(file size)).
    """

    def __init__(self, path: str | os.PathLike[str], *, synchronous: str = "NORMAL",
                 lease_timeout: float = 0.0, check: bool = True) -> None:
        self.path = os.fspath(path)
        if synchronous.upper() not in ("NORMAL", "FULL"):
            raise ValueError(f"synchronous: expected 'NORMAL' or 'FULL', got {synchronous!r}")
        self.synchronous = synchronous.upper()
        self.lease_timeout = lease_timeout
        self.check = check
        self.location = self.path
        self._conn: sqlite3.Connection | None = None
        self._lease = _Lease(self.path)
        # Writes wait here until commit(), which sends them in one transaction: journal rows
        # (memos, history) as flat INSERT parameters, everything else as statements.
        self._rows: list[typing.Any] = []
        self._statements: list[tuple[str, tuple]] = []

    # life cycle --------------------------------------------------------------------------
    def open(self) -> None:
        """Take the lease and open the file. Opening an open store starts over from its
        last commit, as a restarted process would (what was not committed is dropped)."""
        if self._conn is not None:
            self.rollback()
            return
        self._conn = _open_for_writing(self.path, self.synchronous, 10_000, check=self.check,
                                       lease=self._lease, lease_timeout=self.lease_timeout)

    def close(self) -> None:
        """Commit what is pending, close the file and release the lease."""
        if self._conn is None:
            return
        try:
            self.commit()
        finally:
            conn, self._conn = self._conn, None
            self.rollback()
            conn.close()
            self._lease.release()

    @property
    def is_open(self) -> bool:
        return self._conn is not None

    def _db(self) -> sqlite3.Connection:
        conn = self._conn
        if conn is None:
            self.open()
            conn = self._conn
        return typing.cast(sqlite3.Connection, conn)

    # writes ------------------------------------------------------------------------------
    def save_event(self, event_id: str, payload: dict, received_ms: int) -> None:
        self._statements.append((_INSERT_EVENT, (event_id, _dumps(payload), received_ms)))

    def save_run(self, record: dict) -> None:
        self._statements.append((_UPSERT_RUN, (
            record["id"], record["fn_id"], record["status"], record["created_ms"],
            record.get("ended_ms"), _dumps(record))))

    def save_memo(self, run_id: str, step_id: str, outcome: list) -> None:
        self._rows += (run_id, "m", step_id, _dumps(outcome))

    def append_history(self, run_id: str, entry: tuple) -> None:
        self._rows += (run_id, "h", None, _dumps(entry))

    def save_flow(self, namespace: str, key: str, value: typing.Any) -> None:
        if value is None:
            self._statements.append((_DELETE_FLOW, (namespace, key)))
        else:
            self._statements.append((_UPSERT_FLOW, (namespace, key, _dumps(value))))

    def save_meta(self, key: str, value: typing.Any) -> None:
        self._statements.append((_UPSERT_META, (key, _dumps(value))))

    def commit(self) -> None:
        """Write everything pending in one transaction. The common case, a step's memo and
        history entry, is a single multi-row INSERT (one statement, one page)."""
        rows, statements = self._rows, self._statements
        if not rows and not statements:
            return
        conn = self._db()
        self._rows, self._statements = [], []
        n = len(rows) // 4
        try:
            if not statements and n <= _MAX_ROWS:
                conn.execute(_insert_journal(n), rows)  # autocommit: its own transaction
                return
            conn.execute("BEGIN IMMEDIATE")
            try:
                for sql, params in statements:
                    conn.execute(sql, params)
                for i in range(0, n, _MAX_ROWS):
                    chunk = rows[4 * i:4 * (i + _MAX_ROWS)]
                    conn.execute(_insert_journal(len(chunk) // 4), chunk)
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        except sqlite3.Error as err:
            raise StoreError(f"store {self.path}: commit failed ({err})") from err

    def rollback(self) -> None:
        """Drop what was written since the last commit."""
        self._rows, self._statements = [], []

    @property
    def in_transaction(self) -> bool:
        """True while writes are waiting for :meth:`commit`."""
        return bool(self._rows or self._statements)

    # the inbox ---------------------------------------------------------------------------
    def take_inbox(self, limit: int = 1000) -> list[dict]:
        """Event payloads other processes sent (see :func:`send_events`), oldest first.

        Their deletion waits with the other writes: the caller hands them to the engine,
        whose commit records them as accepted and gone from the inbox in one transaction.
        """
        rows = self._db().execute(
            "SELECT seq, payload FROM inbox ORDER BY seq LIMIT ?", (limit,)).fetchall()
        if not rows:
            return []
        self._statements.append(("DELETE FROM inbox WHERE seq <= ?", (rows[-1][0],)))
        return [_loads(p) for _, p in rows]

    # reads -------------------------------------------------------------------------------
    def recover(self) -> RecoveredState:
        conn = self._db()
        memos: dict[str, dict[str, list]] = {}
        history: dict[str, list] = {}
        for run_id, kind, step_id, data in conn.execute(
                "SELECT run_id, kind, step_id, data FROM journal ORDER BY seq"):
            if kind == "m":
                memos.setdefault(run_id, {})[step_id] = _loads(data)
            else:
                history.setdefault(run_id, []).append(tuple(_loads(data)))
        runs = []
        for (record,) in conn.execute("SELECT record FROM runs ORDER BY seq"):
            rec = _loads(record)
            rec["memos"] = memos.get(rec["id"], {})
            rec["history"] = history.get(rec["id"], [])
            runs.append(rec)
        events = [{"id": i, "payload": _loads(p), "received_ms": ms} for i, p, ms in
                  conn.execute("SELECT id, payload, received_ms FROM events ORDER BY seq")]
        flow: dict[str, dict[str, typing.Any]] = {}
        for namespace, key, value in conn.execute("SELECT namespace, key, value FROM flow"):
            flow.setdefault(namespace, {})[key] = _loads(value)
        meta = {k: _loads(v) for k, v in conn.execute("SELECT key, value FROM meta")}
        return RecoveredState(runs=runs, events=events, flow=flow, meta=meta)


@functools.cache
def _insert_journal(n: int) -> str:
    return _INSERT_JOURNAL + ", ".join([_JOURNAL_ROW] * n)


# other processes ---------------------------------------------------------------------------
def send_events(path: str | os.PathLike[str], payloads: list[dict], *,
                synchronous: str = "NORMAL", timeout: float = 10.0,
                check: bool = True) -> list[int]:
    """Append event payloads to the inbox of the store at ``path`` (creating the store if
    needed); the engine that owns it, now or later, accepts them. Returns their inbox
    numbers. Committed when this returns; safe while a worker holds the lease. ``check``
    runs SQLite's ``quick_check`` first (O(file size)), so a corrupt file is not written."""
    path = os.fspath(path)
    version = _inspect(path, check=check)
    lease = None
    if version != SCHEMA_VERSION:  # creating or migrating: only with the lease
        lease = _Lease(path, role="send")
    conn = _open_for_writing(path, synchronous.upper(), int(timeout * 1000), check=False,
                             lease=lease, lease_timeout=timeout)
    try:
        if lease is not None:
            lease.release()
        now = time.time_ns() // 1_000_000
        conn.execute("BEGIN IMMEDIATE")
        try:
            seqs = [conn.execute("INSERT INTO inbox (payload, sent_ms) VALUES (?, ?)",
                                 (_dumps(p), now)).lastrowid for p in payloads]
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return typing.cast("list[int]", seqs)
    except sqlite3.OperationalError as err:
        raise StoreError(f"store {path}: cannot write the event ({err})") from None
    finally:
        conn.close()


class StoreReader:
    """Read-only queries on a store file, safe while a worker runs (for the CLI)."""

    def __init__(self, path: str | os.PathLike[str], *, check: bool = True) -> None:
        self.path = os.fspath(path)
        if not os.path.exists(self.path):
            raise StoreError(f"store {self.path}: no such file")
        if _inspect(self.path, check=check) == 0:
            raise StoreError(f"store {self.path}: empty (no worker has used it yet)")
        self._conn = _connect_ro(self.path)

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def runs(self, status: str | None = None, limit: int | None = None) -> list[dict]:
        """Run records in creation order (the last ``limit`` of them)."""
        sql = "SELECT record FROM runs"
        args: list[typing.Any] = []
        if status is not None:
            sql += " WHERE status = ?"
            args.append(status)
        sql += " ORDER BY seq DESC"
        if limit is not None:
            sql += " LIMIT ?"
            args.append(limit)
        rows = self._conn.execute(sql, args).fetchall()
        return [_loads(r[0]) for r in reversed(rows)]

    def find_run(self, run_id: str) -> dict | None:
        """A run by id, or by a prefix that only one run id has."""
        row = self._conn.execute("SELECT record FROM runs WHERE id = ?", (run_id,)).fetchone()
        if row is None and run_id:
            rows = self._conn.execute(
                "SELECT record FROM runs WHERE id >= ? AND id < ? LIMIT 2",
                (run_id, run_id + "\U0010ffff")).fetchall()
            row = rows[0] if len(rows) == 1 else None
        return None if row is None else _loads(row[0])

    def history(self, run_id: str) -> list[tuple]:
        return [tuple(_loads(e)) for (e,) in self._conn.execute(
            "SELECT data FROM journal WHERE run_id = ? AND kind = 'h' ORDER BY seq", (run_id,))]

    def memos(self, run_id: str) -> dict[str, list]:
        out: dict[str, list] = {}
        for step_id, outcome in self._conn.execute(
                "SELECT step_id, data FROM journal WHERE run_id = ? AND kind = 'm' ORDER BY seq",
                (run_id,)):
            out[step_id] = _loads(outcome)
        return out

    def inbox_size(self) -> int:
        return self._conn.execute("SELECT count(*) FROM inbox").fetchone()[0]
