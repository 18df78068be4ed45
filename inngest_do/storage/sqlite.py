"""The SQLite store: an engine's records in one file that survives a hard kill.

Durability. Writes wait in memory until :meth:`SQLiteStore.commit`; the engine commits before
``send`` returns and before a handler continues past a step, so what was acknowledged is
committed. A commit is one ``write`` of one checksummed record to the redo log
``<path>-redo``; every few hundred commits (and whenever the worker calls
:meth:`SQLiteStore.flush`, which it does every ``poll_interval``) the log is applied to the
SQLite tables in one transaction, which also records how far it got, and the log is emptied.
Opening the store applies what a killed process left in the log; a record cut short by the
kill was never acknowledged and is dropped (its checksum fails). A clean close leaves the one
``.db`` file. Why a log: a SQLite commit costs about ten system calls (WAL frames, locks), a
log record one, so a step's commit is several times cheaper (bench/test_store_bench.py).

With the default ``synchronous="NORMAL"`` nothing is fsynced on commit: a killed process
(SIGKILL, a crash) loses nothing committed, since the kernel has the bytes, but a power loss
or an OS crash may lose the last commits (never corrupt the file: SQLite is in WAL mode and
fsyncs its checkpoints). ``synchronous="FULL"`` fsyncs the log on every commit and survives
power loss too, at the cost of one fsync per step.

Layout. Step memos and history entries go to one append-only ``journal`` table (kind ``m`` or
``h``), runs, events, flow-control state and meta values to a table each; order is kept by
rowid.

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
serializes writers), and the owner moves them into the engine one by one
(:meth:`SQLiteStore.take_inbox`, :meth:`SQLiteStore.consume_inbox`): an event's deletion from
the inbox is in the same commit as its record as accepted, so an inbox event is accepted
exactly once even if the owner dies at any point. This is how ``inngest-do send`` reaches a
running ``inngest-do run``.

Costs: a commit is one log write, O(size of the writes); applying the log is one SQLite
transaction, O(log n) per row; :meth:`SQLiteStore.recover` reads every table once, O(size of
the file).
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import sqlite3
import struct
import time
import typing
import zlib

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
#: the transaction that also sets the new ``user_version``. A redo log left by a killed older
#: version is applied after migrating, with this version's statements (:data:`_SQL`), so a
#: migration must keep those valid for the tables it changes.
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
_UPSERT_FLOW = "INSERT OR REPLACE INTO flow (namespace, key, value) VALUES (?, ?, ?)"
_DELETE_FLOW = "DELETE FROM flow WHERE namespace = ? AND key = ?"
_UPSERT_META = "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)"
_DELETE_INBOX = "DELETE FROM inbox WHERE seq = ?"
#: statements by the one-letter code the redo log records them under
_SQL = {"E": _INSERT_EVENT, "R": _UPSERT_RUN, "F": _UPSERT_FLOW, "D": _DELETE_FLOW,
        "M": _UPSERT_META, "I": _DELETE_INBOX}

#: up to this many journal rows go in one multi-row INSERT (SQLite allows 32,766 parameters)
_MAX_ROWS = 256
#: the redo log is applied to the tables after this many commits (and whenever the worker
#: polls, every ``poll_interval``)
_APPLY_EVERY = 256
_FRAME = struct.Struct("<II")  # a redo record's header: payload length, CRC-32 of the payload
#: WAL pages between automatic checkpoints (SQLite's default is 1,000): a hot page rewritten
#: by many commits is copied back to the file once per checkpoint, so fewer checkpoints is
#: less work per commit; the WAL file stays under 16 MiB plus one transaction
_CHECKPOINT_PAGES = 4000

_loads = json.loads


def _make_dumps() -> typing.Callable[[typing.Any], str]:
    """Compact JSON text. The engine hands over values it already passed through JSON, so
    the C encoder is called directly, skipping the per-call set-up of ``json.dumps`` (a
    third of its cost on a step's small memo)."""
    from json import encoder

    def default(o: object) -> typing.NoReturn:
        raise TypeError(f"Object of type {type(o).__name__} is not JSON serializable")

    make = getattr(encoder, "c_make_encoder", None)
    quote = getattr(encoder, "c_encode_basestring", None)
    if make is None or quote is None:  # pragma: no cover - no C accelerator
        return json.JSONEncoder(separators=(",", ":"), ensure_ascii=False,
                                allow_nan=False).encode
    # (markers: None, no cycle check -- records are trees; default, quote, indent, key sep,
    # item sep, sort_keys, skipkeys, allow_nan)
    chunks = make(None, default, quote, None, ":", ",", False, False, False)
    join = "".join

    def dumps(value: typing.Any) -> str:
        return join(chunks(value, 0))

    return dumps


_dumps = _make_dumps()


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
def _inspect(path: str, *, check: bool) -> int:
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


def _prepare(conn: sqlite3.Connection, version: int) -> None:
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
                         " ('created_ms', ?), ('applied_seq', '0')",
                         (str(time.time_ns() // 1_000_000),))
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
                _prepare(conn, version)
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
        self._redo_path = self.path + "-redo"
        self._redo_fd: int | None = None
        # Writes since the last commit: journal rows (memos, history) as flat INSERT
        # parameters, everything else as (statement code, parameters).
        self._rows: list[typing.Any] = []
        self._statements: list[tuple[str, tuple]] = []
        self._inbox_seen = 0  # the inbox rows up to this one were handed out
        # Commits in the redo log, not yet in the tables: (rows, statements), oldest first.
        self._unapplied: list[tuple[list, list]] = []
        self._seq = 0  # number of the last commit

    # life cycle --------------------------------------------------------------------------
    def open(self) -> None:
        """Take the lease and open the file (applying a redo log a killed process left).
        Opening an open store starts over from its last commit, as a restarted process
        would: what was not committed is dropped."""
        if self._conn is not None:
            self.rollback()
            self.flush()
            self._inbox_seen = 0  # rows handed out but not consumed are handed out again
            return
        conn = _open_for_writing(self.path, self.synchronous, 10_000, check=self.check,
                                 lease=self._lease, lease_timeout=self.lease_timeout)
        self._conn = conn
        try:
            self._seq = _applied_seq(conn)
            self._unapplied = _read_redo(self._redo_path, self._seq)
            self._seq += len(self._unapplied)
            self.flush()
        except BaseException:
            self._conn = None
            self._unapplied = []
            conn.close()
            self._lease.release()
            raise

    def close(self) -> None:
        """Commit what is pending, apply the redo log, close the file and release the
        lease. After a clean close the store is the one file again."""
        if self._conn is None:
            return
        try:
            self.commit()
            self.flush()
            self._close_redo()
            with contextlib.suppress(FileNotFoundError):
                os.remove(self._redo_path)
        finally:
            conn, self._conn = self._conn, None
            self._close_redo()
            self.rollback()
            self._unapplied = []
            conn.close()
            self._lease.release()

    def _close_redo(self) -> None:
        if self._redo_fd is not None:
            fd, self._redo_fd = self._redo_fd, None
            os.close(fd)

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
        self._statements.append(("E", (event_id, _dumps(payload), received_ms)))

    def save_run(self, record: dict) -> None:
        self._statements.append(("R", (
            record["id"], record["fn_id"], record["status"], record["created_ms"],
            record.get("ended_ms"), _dumps(record))))

    def save_memo(self, run_id: str, step_id: str, outcome: list) -> None:
        self._rows += (run_id, "m", step_id, _dumps(outcome))

    def append_history(self, run_id: str, entry: tuple) -> None:
        self._rows += (run_id, "h", None, _dumps(entry))

    def save_flow(self, namespace: str, key: str, value: typing.Any) -> None:
        if value is None:
            self._statements.append(("D", (namespace, key)))
        else:
            self._statements.append(("F", (namespace, key, _dumps(value))))

    def save_meta(self, key: str, value: typing.Any) -> None:
        self._statements.append(("M", (key, _dumps(value))))

    def commit(self) -> None:
        """Make the pending writes durable with one ``write`` to the redo log (plus an
        fsync with ``synchronous="FULL"``). Every ``_APPLY_EVERY`` commits, and whenever
        :meth:`flush` is called, the log is applied to the tables in one transaction."""
        rows, statements = self._rows, self._statements
        if not rows and not statements:
            return
        self._db()
        self._rows, self._statements = [], []
        seq = self._seq + 1
        payload = _dumps([seq, rows, statements]).encode()
        frame = _FRAME.pack(len(payload), zlib.crc32(payload)) + payload
        try:
            fd = self._redo_fd
            if fd is None:
                fd = self._redo_fd = os.open(self._redo_path,
                                             os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            written = os.write(fd, frame)
            while written < len(frame):  # a short write (a full disk, say): finish or fail
                written += os.write(fd, frame[written:])
            if self.synchronous == "FULL":
                os.fdatasync(fd)
        except OSError as err:
            raise StoreError(f"store {self.path}: cannot write its redo log "
                             f"{self._redo_path} ({err})") from err
        self._seq = seq
        self._unapplied.append((rows, statements))
        if len(self._unapplied) >= _APPLY_EVERY:
            self.flush()

    def flush(self) -> None:
        """Apply the commits that are only in the redo log to the tables (one SQLite
        transaction), so that other processes reading the file see them, then empty the
        log. Free when there is nothing to apply."""
        unapplied = self._unapplied
        if not unapplied:
            return
        conn = self._db()
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                # Order matters within a table, not across tables: the statements go in
                # order, then all the journal rows in a few multi-row INSERTs.
                rows = []
                for commit_rows, statements in unapplied:
                    for code, params in statements:
                        conn.execute(_SQL[code], params)
                    rows += commit_rows
                for i in range(0, len(rows), 4 * _MAX_ROWS):
                    chunk = rows[i:i + 4 * _MAX_ROWS]
                    conn.execute(_insert_journal(len(chunk) // 4), chunk)
                conn.execute("UPDATE inngest_do_store SET value = ? WHERE key = 'applied_seq'",
                             (str(self._seq),))
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        except sqlite3.Error as err:
            raise StoreError(f"store {self.path}: cannot apply its redo log ({err})") from err
        self._unapplied = []
        # The tables hold it all now, and say up to which commit: the log can go. A crash
        # before this truncation leaves records that the next open skips by number.
        try:
            if self._redo_fd is not None:
                os.ftruncate(self._redo_fd, 0)
            elif os.path.exists(self._redo_path):
                os.truncate(self._redo_path, 0)
        except OSError as err:
            raise StoreError(f"store {self.path}: cannot empty its redo log ({err})") from err

    def rollback(self) -> None:
        """Drop what was written since the last commit."""
        self._rows, self._statements = [], []

    @property
    def in_transaction(self) -> bool:
        """True while writes are waiting for :meth:`commit`."""
        return bool(self._rows or self._statements)

    # the inbox ---------------------------------------------------------------------------
    def take_inbox(self, limit: int = 1000) -> list[tuple[int, dict]]:
        """Events other processes sent (see :func:`send_events`) and this store has not
        handed out yet, oldest first, as ``(inbox number, payload)``.

        Hand each to the engine right after :meth:`consume_inbox` for its number: the
        engine's first commit of the event then also deletes it from the inbox, so the event
        is accepted exactly once, whenever the process dies.
        """
        rows = self._db().execute(
            "SELECT seq, payload FROM inbox WHERE seq > ? ORDER BY seq LIMIT ?",
            (self._inbox_seen, limit)).fetchall()
        if rows:
            self._inbox_seen = rows[-1][0]
        return [(seq, _loads(p)) for seq, p in rows]

    def consume_inbox(self, seq: int) -> None:
        """Delete inbox event ``seq`` with the next commit."""
        self._statements.append(("I", (seq,)))

    # reads -------------------------------------------------------------------------------
    def recover(self) -> RecoveredState:
        conn = self._db()
        self.flush()
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


def _applied_seq(conn: sqlite3.Connection) -> int:
    row = conn.execute("SELECT value FROM inngest_do_store WHERE key = 'applied_seq'").fetchone()
    return int(row[0]) if row else 0


def _read_redo(path: str, after: int, *, strict: bool = True) -> list[tuple[list, list]]:
    """The commits in the redo log at ``path`` numbered above ``after``, in order. The log
    ends at its first incomplete or damaged frame: a write cut short by the process's death
    (or, with synchronous=NORMAL, by a power loss), which was never acknowledged. A reader
    racing the writer (``strict=False``) may find the log emptied and refilled since it
    read ``after``; it takes what it finds."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return []
    out = []
    pos, size, expect = 0, len(data), after + 1
    while pos + _FRAME.size <= size:
        length, crc = _FRAME.unpack_from(data, pos)
        start = pos + _FRAME.size
        payload = data[start:start + length]
        if len(payload) < length or zlib.crc32(payload) != crc:
            break
        pos = start + length
        seq, rows, statements = _loads(payload)
        if seq <= after:
            continue  # applied before the log could be emptied
        if seq != expect and strict:
            raise StoreFormatError(f"store {path}: corrupt redo log (commit {seq} where "
                                   f"{expect} was expected)")
        expect += 1
        out.append((rows, statements))
    return out


# other processes ---------------------------------------------------------------------------
def send_events(path: str | os.PathLike[str], payloads: list[dict], *,
                synchronous: str = "NORMAL", timeout: float = 10.0,
                check: bool = True) -> list[int]:
    """Append event payloads to the inbox of the store at ``path`` (creating the store if
    needed); the engine that owns it, now or later, accepts them. Returns their inbox
    numbers. Committed when this returns; safe while a worker holds the lease. ``check``
    runs SQLite's ``quick_check`` first (O(file size)), so a corrupt file is not written."""
    path = os.fspath(path)
    sync = synchronous.upper()
    deadline = time.monotonic() + timeout
    while True:
        if _inspect(path, check=check) == SCHEMA_VERSION:
            conn = _connect(path, sync, int(timeout * 1000))
            break
        # Creating or migrating the file takes the lease; if a worker holds it, the worker
        # is doing just that: look again.
        lease = _Lease(path, role="send")
        try:
            conn = _open_for_writing(path, sync, int(timeout * 1000), check=False,
                                     lease=lease, lease_timeout=0.05)
        except StoreInUseError:
            if time.monotonic() >= deadline:
                raise
            continue
        lease.release()
        break
    try:
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
    """Read-only queries on a store file, safe while a worker runs (for the CLI).

    It sees what the tables hold plus what the redo log holds beyond them (commits a running
    worker has not applied yet, or a killed one left), without writing anything.
    """

    def __init__(self, path: str | os.PathLike[str], *, check: bool = True) -> None:
        self.path = os.fspath(path)
        if not os.path.exists(self.path):
            raise StoreError(f"store {self.path}: no such file")
        if _inspect(self.path, check=check) == 0:
            raise StoreError(f"store {self.path}: empty (no worker has used it yet)")
        self._conn = _connect_ro(self.path)
        # commits only in the redo log: run records by id, journal rows by run id
        self._runs: dict[str, dict] = {}
        self._journal: dict[str, list[tuple[str, str | None, str]]] = {}
        try:
            unapplied = _read_redo(self.path + "-redo", _applied_seq(self._conn), strict=False)
        except sqlite3.DatabaseError as err:
            self._conn.close()
            raise StoreFormatError(f"store {self.path}: corrupt or unreadable ({err})") from None
        for rows, statements in unapplied:
            for code, params in statements:
                if code == "R":
                    self._runs[params[0]] = _loads(params[5])
            for i in range(0, len(rows), 4):
                run_id, kind, step_id, data = rows[i:i + 4]
                self._journal.setdefault(run_id, []).append((kind, step_id, data))

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def runs(self, status: str | None = None, limit: int | None = None) -> list[dict]:
        """Run records in creation order (the last ``limit`` of them)."""
        pending = self._runs
        sql = "SELECT record FROM runs"
        args: list[typing.Any] = []
        if status is not None and not pending:
            sql += " WHERE status = ?"
            args.append(status)
        sql += " ORDER BY seq DESC"
        if limit is not None and not pending:
            sql += " LIMIT ?"
            args.append(limit)
        records = [_loads(r[0]) for r in reversed(self._conn.execute(sql, args).fetchall())]
        if pending:
            known = {r["id"]: i for i, r in enumerate(records)}
            for run_id, rec in pending.items():
                if run_id in known:
                    records[known[run_id]] = rec
                else:
                    records.append(rec)
            if status is not None:
                records = [r for r in records if r["status"] == status]
            if limit is not None:
                records = records[-limit:] if limit else []
        return records

    def find_run(self, run_id: str) -> dict | None:
        """A run by id, or by a prefix that only one run id has."""
        if not run_id:
            return None
        ids = {r[0] for r in self._conn.execute(
            "SELECT id FROM runs WHERE id >= ? AND id < ? LIMIT 2",
            (run_id, run_id + "\U0010ffff"))}
        ids.update(i for i in self._runs if i.startswith(run_id))
        if run_id in ids:
            ids = {run_id}
        if len(ids) != 1:
            return None
        (found,) = ids
        if found in self._runs:
            return self._runs[found]
        row = self._conn.execute("SELECT record FROM runs WHERE id = ?", (found,)).fetchone()
        return _loads(row[0])

    def _rows(self, run_id: str, kind: str) -> list[tuple[str | None, str]]:
        rows = self._conn.execute(
            "SELECT step_id, data FROM journal WHERE run_id = ? AND kind = ? ORDER BY seq",
            (run_id, kind)).fetchall()
        rows += [(step, data) for k, step, data in self._journal.get(run_id, ()) if k == kind]
        return rows

    def history(self, run_id: str) -> list[tuple]:
        """The run's history entries, in order."""
        return [tuple(_loads(data)) for _, data in self._rows(run_id, "h")]

    def memos(self, run_id: str) -> dict[str, list]:
        """The run's step memos (step id -> outcome), in the order they were recorded."""
        out: dict[str, list] = {}
        for step_id, data in self._rows(run_id, "m"):
            out[typing.cast(str, step_id)] = _loads(data)
        return out

    def inbox_size(self) -> int:
        """Events sent by other processes that no worker has taken yet."""
        return self._conn.execute("SELECT count(*) FROM inbox").fetchone()[0]
