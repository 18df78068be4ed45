"""The SQLite store: an engine's records in one file that survives a hard kill.

Durability is SQLite's own: every :meth:`SQLiteStore.commit` is one SQLite transaction in
WAL mode. The engine commits before ``send`` returns and before a handler continues past a
step, so what was acknowledged is committed. With the default ``synchronous="NORMAL"``
nothing is fsynced on commit: a killed process (SIGKILL, a crash) loses nothing committed,
since the kernel has the bytes, but a power loss or an OS crash may lose the last commits
(never corrupt the file). ``synchronous="FULL"`` has SQLite fsync the WAL on every commit and
survives power loss too. ``synchronous="OFF"`` never fsyncs, not even when SQLite copies the
WAL back into the file (a checkpoint): a killed process still loses nothing committed, since
in WAL mode a commit is complete once its frames are handed to the kernel ("If the
application running SQLite crashes, the data will be safe", SQLite's docs on ``PRAGMA
synchronous``), but a power loss or an OS crash may corrupt the file, not only drop the last
commits; it saves the checkpoints' fsyncs, which are most of a ``NORMAL`` commit's cost on a
long run (bench/README.md). (Versions before schema 2 wrote a redo log ``<path>-redo`` beside
the file and folded it in later; it was 2.0x faster per step, short of the 3x that would pay
for a second durability mechanism -- bench/README.md. A log left by such a version is applied
at open.)

Failures. A commit that fails (a full disk, an I/O error, a short write, a failed fsync)
raises :class:`StoreError` naming the file and the cause, and SQLite rolls the transaction
back: the file is then exactly what the last successful commit left, and the same store
keeps working once the cause is gone. tests/test_store_faults.py fails every write and fsync
of a workload in turn, through an ``LD_PRELOAD`` shim around libc, and checks this.

Layout. Step memos and history entries go to one append-only ``journal`` table (kind ``m`` or
``h``), runs, events, flow-control state and meta values to a table each; order is kept by
rowid. Partial indexes find the active runs and the unsettled events, so opening a file
reads only active work, whatever number of finished runs it holds; finished ones are read on
demand (:meth:`SQLiteStore.load_runs`...) and deleted by age (:meth:`SQLiteStore.prune`).

Format. ``PRAGMA application_id`` marks the file as ours and ``PRAGMA user_version`` holds its
schema version; :data:`MIGRATIONS` move older files forward. Before anything is written, the
file is inspected through a read-only connection: a file that is not SQLite, not ours, from a
newer schema, damaged, or read-only raises :class:`StoreFormatError`/:class:`StoreError`
naming the path and the problem, and is left exactly as it was. Every command that writes
(an engine, :func:`send_events`) makes the same checks, so none writes a file another refuses.

Lease. One engine owns a store file at a time: it holds an exclusive ``flock`` on the
database file itself for as long as the store is open, so the lease follows the file's
identity (a symlink or a hard link to it is the same file; there is no lock file to delete).
A second engine gets :class:`StoreInUseError` ("... is in use by process N", the holder read
from ``/proc/locks``), or waits up to ``lease_timeout`` seconds. The kernel drops the lock
when its holder dies, even by SIGKILL. (SQLite's own locks are POSIX ``fcntl`` locks, which
Linux keeps apart from ``flock`` ones; on NFS, where they are not, use a local disk.)

Inbox. Other processes may still append events while an engine owns the file:
:func:`send_events` inserts them into the ``inbox`` table in its own short transaction (SQLite
serializes writers), and the owner moves them into the engine one by one
(:meth:`SQLiteStore.take_inbox`, :meth:`SQLiteStore.consume_inbox`): an event's deletion from
the inbox is in the same commit as its record as accepted, so an inbox event is accepted
exactly once even if the owner dies at any point.

Costs: a commit is one SQLite transaction, O(log n) per row; :meth:`SQLiteStore.recover`
reads the active runs (with their journal rows) and unsettled events through indexes,
O(active work).
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import sqlite3
import stat
import struct
import time
import typing
import zlib

from .base import RecoveredState, Store, StoreError, StoreFormatError, StoreInUseError

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
SCHEMA_VERSION = 2

_SQLITE_HEADER = b"SQLite format 3\x00"

_INDEXES = (
    # the journal rows of one run (recover, show, load_run, prune)
    "CREATE INDEX IF NOT EXISTS journal_run ON journal (run_id, seq)",
    # active runs, so that opening reads only them
    "CREATE INDEX IF NOT EXISTS runs_active ON runs (seq) WHERE ended_ms IS NULL",
    # finished runs by age, for pruning
    "CREATE INDEX IF NOT EXISTS runs_ended ON runs (ended_ms) WHERE ended_ms IS NOT NULL",
    # events whose outcomes may still change
    "CREATE INDEX IF NOT EXISTS events_open ON events (seq) WHERE settled = 0",
)

_SCHEMA = (
    """CREATE TABLE inngest_do_store (key TEXT PRIMARY KEY, value TEXT NOT NULL)""",
    """CREATE TABLE events (seq INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE,
        payload TEXT NOT NULL, received_ms INTEGER NOT NULL,
        outcomes TEXT NOT NULL DEFAULT '[]', settled INTEGER NOT NULL DEFAULT 1)""",
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
    *_INDEXES,
)


def _migrate_1(conn: sqlite3.Connection) -> None:
    """1 -> 2: events keep their outcomes and whether those are final; indexes for reading
    only active work."""
    conn.execute("ALTER TABLE events ADD COLUMN outcomes TEXT NOT NULL DEFAULT '[]'")
    conn.execute("ALTER TABLE events ADD COLUMN settled INTEGER NOT NULL DEFAULT 1")
    for stmt in _INDEXES:
        conn.execute(stmt)


#: ``MIGRATIONS[v]`` turns a version-``v`` file into a version ``v + 1`` one; each runs inside
#: the transaction that also sets the new ``user_version``.
MIGRATIONS: dict[int, typing.Callable[[sqlite3.Connection], None]] = {1: _migrate_1}

_INSERT_EVENT = (
    "INSERT INTO events (id, payload, received_ms, outcomes, settled) VALUES (?, ?, ?, ?, ?)"
    " ON CONFLICT (id) DO UPDATE SET payload = excluded.payload,"
    " received_ms = excluded.received_ms, outcomes = excluded.outcomes,"
    " settled = excluded.settled"
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
#: statements by a one-letter code
_SQL = {"E": _INSERT_EVENT, "R": _UPSERT_RUN, "F": _UPSERT_FLOW, "D": _DELETE_FLOW,
        "M": _UPSERT_META, "I": _DELETE_INBOX}
#: the statements of a schema-1 redo log (its events have no outcomes)
_LEGACY_SQL = dict(_SQL, E=(
    "INSERT INTO events (id, payload, received_ms) VALUES (?, ?, ?) ON CONFLICT (id)"
    " DO UPDATE SET payload = excluded.payload, received_ms = excluded.received_ms"))

#: up to this many journal rows go in one multi-row INSERT (SQLite allows 32,766 parameters)
_MAX_ROWS = 256
_FRAME = struct.Struct("<II")  # a legacy redo record's header: payload length, CRC-32
#: WAL pages between automatic checkpoints (SQLite's default is 1,000): a hot page rewritten
#: by many commits is copied back to the file once per checkpoint, so fewer checkpoints is
#: less work per commit; the WAL file stays under 16 MiB plus one transaction
_CHECKPOINT_PAGES = 4000

#: what SQLite's result codes mean, for messages
_CAUSES = {
    "SQLITE_FULL": "the disk is full",
    "SQLITE_IOERR_WRITE": "a write failed (I/O error)",
    "SQLITE_IOERR_FSYNC": "fsync failed (I/O error)",
    "SQLITE_IOERR_DIR_FSYNC": "fsync of the directory failed (I/O error)",
    "SQLITE_IOERR_TRUNCATE": "truncating a file failed (I/O error)",
    "SQLITE_IOERR_SHORT_READ": "a file is shorter than expected",
    "SQLITE_IOERR_READ": "a read failed (I/O error)",
    "SQLITE_IOERR_SHMSIZE": "cannot grow the -shm file (is the disk full?)",
    "SQLITE_READONLY": "the file is read-only",
    "SQLITE_READONLY_DIRECTORY": "the directory is read-only",
    "SQLITE_READONLY_DBMOVED": "the file was moved or deleted while open",
    "SQLITE_CANTOPEN": "a file cannot be opened or created (permissions? read-only directory?)",
    "SQLITE_CORRUPT": "the file is damaged",
    "SQLITE_NOTADB": "the file is not a database",
    "SQLITE_BUSY": "another process holds a lock on it too long",
    "SQLITE_LOCKED": "it is locked",
    "SQLITE_PERM": "permission denied",
}


def _cause(err: sqlite3.Error, path: str) -> str:
    """A readable cause for a SQLite error: what it means, then SQLite's own words."""
    name = getattr(err, "sqlite_errorname", "") or ""
    what = _CAUSES.get(name) or _CAUSES.get(name.rsplit("_", 1)[0] if name.count("_") > 1
                                             else name)
    if name.startswith("SQLITE_IOERR") and _disk_full(path):
        what = "the disk is full"
    if what is None and name.startswith("SQLITE_IOERR"):
        what = "an I/O error"
    detail = f"{err}" + (f", {name}" if name else "")
    return f"{what} ({detail})" if what else detail


def _disk_full(path: str) -> bool:
    try:
        st = os.statvfs(os.path.dirname(os.path.abspath(path)))
    except OSError:
        return False
    return st.f_bavail == 0


def _store_error(path: str, doing: str, err: BaseException) -> StoreError:
    if isinstance(err, sqlite3.Error):
        cause = _cause(err, path)
        cls = StoreFormatError if getattr(err, "sqlite_errorname", "") in (
            "SQLITE_CORRUPT", "SQLITE_NOTADB") else StoreError
        return cls(f"store {path}: {doing}: {cause}")
    if isinstance(err, OSError):
        return StoreError(f"store {path}: {doing}: {err.strerror or err}")
    return StoreError(f"store {path}: {doing}: {err}")


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



# inspection (read-only) -------------------------------------------------------------------
#: ``check=None`` runs SQLite's ``quick_check`` (which reads the whole file) on files up to
#: this size; past it, damage shows when a damaged page is read, as a StoreFormatError
_CHECK_LIMIT = 64 * 2**20


def _inspect(path: str, *, check: bool | None) -> int:
    """The schema version of the store at ``path`` (0: nothing there yet), or raise
    :class:`StoreFormatError`. Opens the file read-only: it is never modified."""
    try:
        with open(path, "rb") as f:
            header = f.read(len(_SQLITE_HEADER))
    except FileNotFoundError:
        return 0
    except IsADirectoryError:
        raise StoreError(f"store {path}: is a directory, not a file") from None
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
            raise StoreFormatError(f"store {path}: damaged (inngest_do marker present but "
                                   f"schema version {version} and tables missing)")
        if check is None:
            check = os.path.getsize(path) <= _CHECK_LIMIT
        if check:
            problems = [r[0] for r in conn.execute("PRAGMA quick_check(3)")]
            if problems != ["ok"]:
                raise StoreFormatError(f"store {path}: damaged ({'; '.join(problems)})")
        return version
    except sqlite3.DatabaseError as err:
        raise StoreFormatError(f"store {path}: damaged or unreadable ({err})") from None
    finally:
        conn.close()


def _check_writable(path: str) -> None:
    """Refuse, before anything is written, a store that could not take a write: a file
    without write permission (whoever we are: root could write it, but its owner marked it
    read-only), a directory we cannot create the WAL files in, a read-only filesystem."""
    directory = os.path.dirname(os.path.abspath(path)) or "."
    try:
        st = os.stat(path)
    except FileNotFoundError:
        st = None
    except OSError as err:
        raise StoreError(f"store {path}: cannot look at it ({err.strerror or err})") from None
    if st is not None:
        if not stat.S_ISREG(st.st_mode):
            raise StoreError(f"store {path}: not a regular file")
        _check_links(path, st)
        if not st.st_mode & 0o222 or not os.access(path, os.W_OK):
            raise StoreError(f"store {path}: the file is read-only (mode "
                             f"{stat.S_IMODE(st.st_mode):04o}); make it writable "
                             "(chmod u+w) to use it")
    try:
        fs = os.statvfs(directory)
    except OSError as err:
        raise StoreError(f"store {path}: cannot look at its directory {directory} "
                         f"({err.strerror or err})") from None
    if fs.f_flag & os.ST_RDONLY:
        raise StoreError(f"store {path}: on a read-only filesystem")
    if not os.access(directory, os.W_OK | os.X_OK):
        raise StoreError(f"store {path}: its directory {directory} is read-only (SQLite "
                         "creates its -wal and -shm files there)")


def _check_links(path: str, st: os.stat_result) -> None:
    """Refuse a file with several hard links: SQLite keeps its WAL beside the name it was
    opened by, so through another name it would miss (or fork) the WAL and read stale data
    or corrupt the file. (A symlink is fine: SQLite resolves it.)"""
    if st.st_nlink > 1:
        raise StoreError(f"store {path}: the file has {st.st_nlink} hard links; SQLite keeps "
                         "its WAL beside the name used, so two names for one store would "
                         "corrupt it: use one name (a symlink is fine)")


def _connect_ro(path: str) -> sqlite3.Connection:
    """A read-only connection that creates nothing next to the file: with no ``-wal`` file
    there is nothing but the file to read, and ``immutable`` keeps SQLite from creating the
    ``-wal``/``-shm`` pair a WAL-mode file would otherwise get."""
    from urllib.parse import quote

    path = os.path.realpath(path)  # SQLite's WAL sits beside the real file, not a symlink
    uri = "file:" + quote(path) + "?mode=ro"
    if not os.path.exists(path + "-wal"):
        uri += "&immutable=1"
    return sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)


# the lease ---------------------------------------------------------------------------------
def load_record(path: str, table: str, seq: int, text: str) -> typing.Any:
    """Decode one stored JSON record; a damaged one is a :class:`StoreFormatError` naming the
    file, the table and the row."""
    try:
        return _loads(text)
    except ValueError as err:
        raise StoreFormatError(f"store {path}: damaged record in table {table} "
                               f"(row {seq}): {err}") from None


class _Lease:
    """An exclusive ``flock`` on the database file itself, held while an engine has it
    open: it follows the file's identity, whatever path reached it."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.fd: int | None = None

    def acquire(self, timeout: float) -> None:
        if fcntl is None:  # pragma: no cover
            return
        try:
            # O_RDONLY is enough for flock, and creates nothing but the (empty) file
            fd = os.open(self.path, os.O_RDONLY | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as err:
            raise StoreError(f"store {self.path}: cannot open or create it "
                             f"({err.strerror or err})") from None
        started = time.monotonic()
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() - started >= timeout:
                    pid = _lock_holder(fd)
                    os.close(fd)
                    who = f"process {pid}" if pid else "another process"
                    if pid == os.getpid():
                        who += " (this one: another store object has it open)"
                    raise StoreInUseError(f"store {self.path}: is in use by {who}; stop it "
                                          "first, or send events with `inngest-do send`",
                                          pid) from None
                time.sleep(0.02)
        self.fd = fd

    def release(self) -> None:
        if self.fd is not None:
            fd, self.fd = self.fd, None
            os.close(fd)  # closing the descriptor drops the flock


def _lock_holder(fd: int) -> int | None:
    """The pid holding a ``flock`` on the file open as ``fd`` (Linux's /proc/locks)."""
    try:
        st = os.fstat(fd)
        ident = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"
        with open("/proc/locks") as f:
            for line in f:
                parts = line.split()
                if "->" in parts:  # a waiter, not a holder
                    continue
                if len(parts) >= 6 and parts[1] == "FLOCK" and parts[5] == ident:
                    return int(parts[4])
    except (OSError, ValueError):
        pass
    return None


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
    """Create the schema in a new file, or migrate an older one, in one transaction. Two
    processes doing it at once are serialized by the transaction (the second finds it done)."""
    if conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
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
            current = SCHEMA_VERSION
        while current < SCHEMA_VERSION:
            MIGRATIONS[current](conn)
            current += 1
        conn.execute(f"PRAGMA user_version = {current}")
        conn.execute("COMMIT")
    except BaseException:
        with contextlib.suppress(sqlite3.Error):
            conn.execute("ROLLBACK")
        raise


def _open_for_writing(path: str, synchronous: str, busy_ms: int, *, check: bool | None,
                      lease: _Lease | None, lease_timeout: float) -> sqlite3.Connection:
    """Inspect read-only, check that it can take writes, then (holding ``lease`` if given)
    open, create or migrate it. Every writer goes through here."""
    _inspect(path, check=check)  # refuse bad files before creating anything next to them
    _check_writable(path)
    if lease is not None:
        lease.acquire(lease_timeout)
    try:
        version = _inspect(path, check=False)  # again, under the lease: it may have changed
        try:
            conn = _connect(path, synchronous, busy_ms)
        except sqlite3.Error as err:
            raise _store_error(path, "cannot open it", err) from None
        try:
            if version != SCHEMA_VERSION:
                _prepare(conn, version)
        except sqlite3.Error as err:
            conn.close()
            raise _store_error(path, "cannot set it up", err) from None
        except BaseException:
            conn.close()
            raise
        return conn
    except BaseException:
        if lease is not None:
            lease.release()
        raise


#: the accepted ``synchronous`` levels
_SYNCHRONOUS = ("NORMAL", "FULL", "OFF")

#: keys every run record has (a record without them is damaged)
_RUN_KEYS = ("id", "fn_id", "status")


class SQLiteStore(Store):
    """An engine's records in one SQLite file (see the module docstring).

    Args:
        path: the file; created (with its schema) if missing.
        synchronous: ``"NORMAL"`` (default; survives a killed process; a power loss may drop
            the last commits), ``"FULL"`` (an fsync per commit; survives power loss too) or
            ``"OFF"`` (no fsync at all, checkpoints included; survives a killed process, but a
            power loss or an OS crash may corrupt the file).
        lease_timeout: seconds to wait for another process to release the file (0: refuse
            at once with :class:`StoreInUseError`).
        check: run SQLite's ``quick_check`` when opening (it reads the whole file); None
            (default): on files up to 64 MiB, so that a restart stays fast on a big one.
    """

    def __init__(self, path: str | os.PathLike[str], *, synchronous: str = "NORMAL",
                 lease_timeout: float = 0.0, check: bool | None = None) -> None:
        self.path = os.fspath(path)
        if not isinstance(synchronous, str) or synchronous.upper() not in _SYNCHRONOUS:
            raise ValueError("synchronous: expected 'NORMAL', 'FULL' or 'OFF', got "
                             f"{synchronous!r}")
        if not isinstance(lease_timeout, (int, float)) or not lease_timeout >= 0:
            raise ValueError(f"lease_timeout: expected seconds >= 0, got {lease_timeout!r}")
        self.synchronous = synchronous.upper()
        self.lease_timeout = lease_timeout
        self.check = check
        self.location = self.path
        self._conn: sqlite3.Connection | None = None
        self._reader: sqlite3.Connection | None = None  # queries: sees only commits
        import threading

        self._read_lock = threading.Lock()
        self._lease = _Lease(self.path)
        # Writes since the last commit: journal rows (memos, history) as flat INSERT
        # parameters, everything else as (statement code, parameters).
        self._rows: list[typing.Any] = []
        self._statements: list[tuple[str, tuple]] = []
        self._inbox_seen = 0  # the inbox rows up to this one were handed out

    # life cycle --------------------------------------------------------------------------
    def open(self) -> None:
        """Take the lease and open the file (applying a redo log an older version left).
        Opening an open store starts over from its last commit, as a restarted process
        would: what was not committed is dropped."""
        if self._conn is not None:
            self.rollback()
            self._inbox_seen = 0  # rows handed out but not consumed are handed out again
            return
        conn = _open_for_writing(self.path, self.synchronous, 10_000, check=self.check,
                                 lease=self._lease, lease_timeout=self.lease_timeout)
        try:
            _apply_legacy_redo(conn, self.path)
            # A write now, so that a file that cannot take one fails here, at open, and
            # not at the first acknowledged send.
            conn.execute("INSERT OR REPLACE INTO inngest_do_store VALUES ('opened_ms', ?)",
                         (str(time.time_ns() // 1_000_000),))
        except BaseException as err:
            conn.close()
            self._lease.release()
            if isinstance(err, sqlite3.Error):
                raise _store_error(self.path, "cannot write it", err) from None
            raise
        self._conn = conn

    def close(self) -> None:
        """Commit what is pending, close the file and release the lease."""
        if self._conn is None:
            return
        try:
            self.commit()
        finally:
            conn, self._conn = self._conn, None
            self.rollback()
            with self._read_lock:
                if self._reader is not None:
                    self._reader.close()
                    self._reader = None
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
    def save_event(self, event_id: str, payload: dict, received_ms: int,
                   outcomes: list | None = None, settled: bool = False) -> None:
        self._statements.append(("E", (event_id, _dumps(payload), received_ms,
                                       _dumps(outcomes or []), 1 if settled else 0)))

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
        """Make the pending writes durable: one SQLite transaction (fsynced with
        ``synchronous="FULL"``). On failure raise :class:`StoreError` naming the cause;
        nothing of this commit is then applied, and its writes are dropped."""
        rows, statements = self._rows, self._statements
        if not rows and not statements:
            return
        conn = self._db()
        self._rows, self._statements = [], []
        try:
            _write(conn, statements, rows, _SQL)
        except sqlite3.Error as err:
            self._overwrite_failed(conn)
            raise _store_error(self.path, "commit failed, nothing of it was kept",
                               err) from err

    def _overwrite_failed(self, conn: sqlite3.Connection) -> None:
        """After a failed commit, commit a one-row write at once. A commit whose fsync failed
        has its WAL frames written, checksums and all: a process that died now would find
        them at the next open and apply a commit that was never acknowledged. The next
        commit is written over them (SQLite reuses the frames past the last good one), so
        this one makes the failed commit gone for good -- if the disk lets it."""
        with contextlib.suppress(sqlite3.Error):
            _write(conn, [("M", ("store:last_failed_commit_ms",
                                 str(time.time_ns() // 1_000_000)))], [], _SQL)

    def flush(self) -> None:
        """Nothing to do: every commit is in the tables (kept for callers of old versions)."""

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
        try:
            rows = self._db().execute(
                "SELECT seq, payload FROM inbox WHERE seq > ? ORDER BY seq LIMIT ?",
                (self._inbox_seen, limit)).fetchall()
        except sqlite3.Error as err:
            raise _store_error(self.path, "cannot read the inbox", err) from err
        if rows:
            self._inbox_seen = rows[-1][0]
        out = []
        for seq, p in rows:
            try:
                out.append((seq, _loads(p)))
            except ValueError as err:
                raise StoreFormatError(f"store {self.path}: damaged record in table inbox "
                                       f"(row {seq}): {err}") from None
        return out

    def consume_inbox(self, seq: int) -> None:
        """Delete inbox event ``seq`` with the next commit."""
        self._statements.append(("I", (seq,)))

    # reads -------------------------------------------------------------------------------
    def _query(self, sql: str, args: typing.Sequence[typing.Any] = ()) -> list[tuple]:
        """Rows from a connection of their own, which sees only committed data (another
        thread may be in the middle of a commit on the writer's)."""
        with self._read_lock:
            if self._reader is None:
                # reading needs no lease: a closed store still answers queries
                if not os.path.exists(self.path):
                    return []
                try:
                    self._reader = _connect(self.path, "NORMAL", 10_000)
                except sqlite3.Error as err:
                    raise _store_error(self.path, "cannot read it", err) from err
            try:
                return self._reader.execute(sql, args).fetchall()
            except sqlite3.Error as err:
                raise _store_error(self.path, "cannot read it", err) from err

    def _load(self, table: str, seq: int, text: str) -> typing.Any:
        return load_record(self.path, table, seq, text)

    def _run_record(self, seq: int, text: str) -> dict:
        rec = self._load("runs", seq, text)
        if not isinstance(rec, dict) or any(k not in rec for k in _RUN_KEYS):
            raise StoreFormatError(f"store {self.path}: damaged record in table runs (row "
                                   f"{seq}): not a run record")
        return rec

    def _with_journal(self, records: list[dict], rows: list[tuple]) -> list[dict]:
        by_id = {}
        for rec in records:
            rec["memos"], rec["history"] = {}, []
            by_id[rec["id"]] = rec
        for seq, run_id, kind, step_id, data in rows:
            rec = by_id.get(run_id)
            if rec is None:
                continue
            value = self._load("journal", seq, data)
            if kind == "m":
                rec["memos"][step_id] = value
            else:
                rec["history"].append(tuple(value))
        return records

    def recover(self) -> RecoveredState:
        runs = [self._run_record(seq, r) for seq, r in self._query(
            "SELECT seq, record FROM runs WHERE ended_ms IS NULL ORDER BY seq")]
        # CROSS JOIN keeps SQLite from scanning the whole journal (it would, for the ORDER
        # BY): active runs first, through their index, then their rows through theirs
        journal = self._query(
            "SELECT j.seq, j.run_id, j.kind, j.step_id, j.data FROM runs r CROSS JOIN journal"
            " j ON j.run_id = r.id WHERE r.ended_ms IS NULL ORDER BY j.seq")
        events = [{"id": i, "payload": self._load("events", seq, p), "received_ms": ms,
                   "outcomes": self._load("events", seq, o)} for seq, i, p, ms, o in
                  self._query("SELECT seq, id, payload, received_ms, outcomes FROM events"
                              " WHERE settled = 0 ORDER BY seq")]
        flow: dict[str, dict[str, typing.Any]] = {}
        for namespace, key, value in self._query("SELECT namespace, key, value FROM flow"):
            flow.setdefault(namespace, {})[key] = self._load("flow", 0, value)
        meta = {k: self._load("meta", 0, v) for k, v in
                self._query("SELECT key, value FROM meta")}
        ((count,),) = self._query("SELECT (SELECT coalesce(max(seq), 0) FROM runs)"
                                  " + (SELECT coalesce(max(seq), 0) FROM events)")
        if count:
            meta["store:count"] = count
        return RecoveredState(runs=self._with_journal(runs, journal), events=events,
                              flow=flow, meta=meta)

    def load_runs(self, fn_id: str | None = None, status: str | None = None) -> list[dict]:
        where, args = [], []
        if fn_id is not None:
            where.append("fn_id = ?")
            args.append(fn_id)
        if status is not None:
            where.append("(status = ? OR ended_ms IS NULL)")
            args.append(str(status))
        cond = (" WHERE " + " AND ".join(where)) if where else ""
        records = [self._run_record(seq, r) for seq, r in self._query(
            f"SELECT seq, record FROM runs{cond} ORDER BY seq", args)]
        journal = self._query(
            "SELECT seq, run_id, kind, step_id, data FROM journal WHERE run_id IN"
            f" (SELECT id FROM runs{cond}) ORDER BY seq", args)
        return self._with_journal(records, journal)

    def load_run(self, run_id: str) -> dict | None:
        rows = self._query("SELECT seq, record FROM runs WHERE id = ?", (run_id,))
        if not rows:
            return None
        rec = self._run_record(*rows[0])
        journal = self._query("SELECT seq, run_id, kind, step_id, data FROM journal"
                              " WHERE run_id = ? ORDER BY seq", (run_id,))
        return self._with_journal([rec], journal)[0]

    def load_events(self, name: str | None = None) -> list[dict]:
        sql = "SELECT seq, id, payload, received_ms, outcomes FROM events"
        args: list[typing.Any] = []
        if name is not None:
            sql += " WHERE json_extract(payload, '$.name') = ?"
            args.append(name)
        return [{"id": i, "payload": self._load("events", seq, p), "received_ms": ms,
                 "outcomes": self._load("events", seq, o)}
                for seq, i, p, ms, o in self._query(sql + " ORDER BY seq", args)]

    def prune(self, before_ms: int, limit: int = 5000) -> int:
        conn = self._db()
        # a bounded batch, so that a week's backlog is not one long pause of the engine
        old = ("SELECT id FROM runs WHERE ended_ms IS NOT NULL AND ended_ms < ?"
               " ORDER BY ended_ms LIMIT ?")
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.execute(f"DELETE FROM journal WHERE run_id IN ({old})",
                             (before_ms, limit))
                count = conn.execute(f"DELETE FROM runs WHERE id IN ({old})",
                                     (before_ms, limit)).rowcount
                conn.execute("DELETE FROM events WHERE seq IN (SELECT seq FROM events WHERE"
                             " settled = 1 AND received_ms < ? LIMIT ?)", (before_ms, limit))
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    with contextlib.suppress(sqlite3.Error):
                        conn.execute("ROLLBACK")
                raise
        except sqlite3.Error as err:
            raise _store_error(self.path, "pruning failed, nothing was deleted", err) from err
        return count


def _write(conn: sqlite3.Connection, statements: list[tuple[str, tuple]], rows: list,
           sql: dict[str, str]) -> None:
    """One transaction: the statements in order, then the journal rows in a few multi-row
    INSERTs (order matters within a table, not across tables). Rolled back on any error."""
    if not statements and 0 < len(rows) <= 4 * _MAX_ROWS:
        # One statement (a step's memo and history rows, the commonest commit) is a
        # transaction by itself: SQLite wraps it in one, all or nothing, and BEGIN and
        # COMMIT would be two more calls.
        conn.execute(_insert_journal(len(rows) // 4), rows)
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        for code, params in statements:
            conn.execute(sql[code], params)
        for i in range(0, len(rows), 4 * _MAX_ROWS):
            chunk = rows[i:i + 4 * _MAX_ROWS]
            conn.execute(_insert_journal(len(chunk) // 4), chunk)
        conn.execute("COMMIT")
    except BaseException:
        # SQLite may have rolled back already (an I/O error during COMMIT does)
        if conn.in_transaction:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
        raise


@functools.cache
def _insert_journal(n: int) -> str:
    return _INSERT_JOURNAL + ", ".join([_JOURNAL_ROW] * n)


# what schema-1 versions left -----------------------------------------------------------------
def _apply_legacy_redo(conn: sqlite3.Connection, path: str) -> None:
    """Apply (in one transaction) and remove a redo log left by a version that wrote one."""
    redo = path + "-redo"
    if not os.path.exists(redo):
        return
    row = conn.execute("SELECT value FROM inngest_do_store WHERE key = 'applied_seq'"
                       ).fetchone()
    commits = _read_redo(redo, int(row[0]) if row else 0)
    if commits:
        statements = [st for _, sts in commits for st in sts]
        rows = [r for rs, _ in commits for r in rs]
        _write(conn, [(code, tuple(p)) for code, p in statements], rows, _LEGACY_SQL)
    os.remove(redo)


def _read_redo(path: str, after: int) -> list[tuple[list, list]]:
    """The commits in a legacy redo log numbered above ``after``, in order. A damaged frame
    at the very end is a write cut short by a kill (never acknowledged) and is dropped; a
    damaged frame with anything after it, or a gap in the numbering, is damage we will not
    guess about: :class:`StoreFormatError`."""
    with open(path, "rb") as f:
        data = f.read()
    out = []
    pos, size, expect = 0, len(data), None
    while pos < size:
        end = size  # where a damaged frame would end, if it is the last one
        bad = None
        if pos + _FRAME.size > size:
            bad = "a record header cut short"
        else:
            length, crc = _FRAME.unpack_from(data, pos)
            start = pos + _FRAME.size
            payload = data[start:start + length]
            end = start + length
            if len(payload) < length:
                bad = "a record cut short"
            elif zlib.crc32(payload) != crc:
                bad = "a record whose checksum fails"
        if bad is not None:
            if end >= size and not _has_frame(data, pos + 1):
                break  # the torn tail of the last write, never acknowledged
            raise StoreFormatError(f"store {path}: damaged redo log ({bad} at byte {pos}, "
                                   "with more data after it)")
        pos = start + length
        try:
            seq, rows, statements = _loads(payload)
        except ValueError as err:
            raise StoreFormatError(f"store {path}: damaged redo log record at byte "
                                   f"{pos}: {err}") from None
        if seq <= after:
            continue  # applied before the log could be emptied
        if expect is not None and seq != expect:
            raise StoreFormatError(f"store {path}: damaged redo log (commit {seq} where "
                                   f"{expect} was expected: a gap)")
        expect = seq + 1
        out.append((rows, statements))
    return out


def _has_frame(data: bytes, start: int) -> bool:
    """True if a valid frame begins anywhere at or after ``start`` (a legacy log is small:
    at most a few hundred commits, so scanning every offset is cheap)."""
    for pos in range(start, len(data) - _FRAME.size):
        length, crc = _FRAME.unpack_from(data, pos)
        body = pos + _FRAME.size
        if 0 < length <= len(data) - body and zlib.crc32(data[body:body + length]) == crc:
            return True
    return False


# other processes ---------------------------------------------------------------------------
def send_events(path: str | os.PathLike[str], payloads: list[dict], *,
                synchronous: str = "NORMAL", timeout: float = 10.0,
                check: bool | None = None) -> list[int]:
    """Append event payloads to the inbox of the store at ``path`` (creating the store if
    needed); the engine that owns it, now or later, accepts them. Returns their inbox
    numbers. Committed when this returns; safe while a worker holds the lease. It checks
    the file as an engine opening it would (``check`` as in :class:`SQLiteStore`), so it
    never writes a file an engine would refuse."""
    path = os.fspath(path)
    if not isinstance(synchronous, str) or synchronous.upper() not in _SYNCHRONOUS:
        raise ValueError("synchronous: expected 'NORMAL', 'FULL' or 'OFF', got "
                         f"{synchronous!r}")
    sync = synchronous.upper()
    conn = _open_for_writing(path, sync, int(timeout * 1000), check=check, lease=None,
                             lease_timeout=0)
    try:
        if os.path.exists(path + "-redo"):
            raise StoreError(f"store {path}: has a redo log from an older inngest_do; "
                             "start a worker on it once (`inngest-do run`) before sending")
        now = time.time_ns() // 1_000_000
        conn.execute("BEGIN IMMEDIATE")
        try:
            seqs = [conn.execute("INSERT INTO inbox (payload, sent_ms) VALUES (?, ?)",
                                 (_dumps(p), now)).lastrowid for p in payloads]
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
            raise
        return typing.cast("list[int]", seqs)
    except sqlite3.Error as err:
        raise _store_error(path, "cannot write the event, it was not sent", err) from None
    finally:
        conn.close()


class StoreReader:
    """Read-only queries on a store file, safe while a worker runs (for the CLI). It
    writes nothing, and creates no file."""

    def __init__(self, path: str | os.PathLike[str], *, check: bool | None = None) -> None:
        self.path = os.fspath(path)
        if not os.path.exists(self.path):
            raise StoreError(f"store {self.path}: no such file")
        _check_links(self.path, os.stat(self.path))
        if _inspect(self.path, check=check) == 0:
            raise StoreError(f"store {self.path}: empty (no worker has used it yet)")
        try:
            self._conn = _connect_ro(self.path)
            self._conn.execute("SELECT count(*) FROM inbox").fetchone()
        except sqlite3.Error as err:
            raise _store_error(self.path, "cannot read it", err) from None

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _rows(self, sql: str, args: typing.Sequence[typing.Any] = ()) -> list[tuple]:
        try:
            return self._conn.execute(sql, args).fetchall()
        except sqlite3.Error as err:
            raise _store_error(self.path, "cannot read it", err) from None

    def _load(self, table: str, seq: int, text: str) -> typing.Any:
        return load_record(self.path, table, seq, text)

    def runs(self, status: str | None = None, limit: int | None = None) -> list[dict]:
        """Run records in creation order (the last ``limit`` of them)."""
        sql = "SELECT seq, record FROM runs"
        args: list[typing.Any] = []
        if status is not None:
            sql += " WHERE status = ?"
            args.append(status)
        sql += " ORDER BY seq DESC"
        if limit is not None:
            sql += " LIMIT ?"
            args.append(limit)
        return [self._load("runs", seq, r) for seq, r in reversed(self._rows(sql, args))]

    def find_runs(self, prefix: str, limit: int = 2) -> list[dict]:
        """Runs whose id is ``prefix`` (that one alone) or starts with it (up to
        ``limit`` of them: more than one means the prefix is ambiguous)."""
        if not prefix:
            return []
        rows = self._rows("SELECT seq, record FROM runs WHERE id = ?", (prefix,))
        if not rows:
            rows = self._rows("SELECT seq, record FROM runs WHERE id >= ? AND id < ?"
                              " ORDER BY id LIMIT ?", (prefix, prefix + "\U0010ffff", limit))
        return [self._load("runs", seq, r) for seq, r in rows]

    def find_run(self, run_id: str) -> dict | None:
        """A run by id, or by a prefix that only one run id has."""
        found = self.find_runs(run_id)
        return found[0] if len(found) == 1 else None

    def _journal(self, run_id: str, kind: str) -> list[tuple[int, str | None, str]]:
        return self._rows("SELECT seq, step_id, data FROM journal WHERE run_id = ? AND"
                          " kind = ? ORDER BY seq", (run_id, kind))

    def history(self, run_id: str) -> list[tuple]:
        """The run's history entries, in order."""
        return [tuple(self._load("journal", seq, d)) for seq, _, d in self._journal(run_id, "h")]

    def memos(self, run_id: str) -> dict[str, list]:
        """The run's step memos (step id -> outcome), in the order they were recorded."""
        out: dict[str, list] = {}
        for seq, step_id, data in self._journal(run_id, "m"):
            out[typing.cast(str, step_id)] = self._load("journal", seq, data)
        return out

    def inbox_size(self) -> int:
        """Events sent by other processes that no worker has taken yet."""
        return self._rows("SELECT count(*) FROM inbox")[0][0]
