"""The in-memory store: the default, and the fastest.

It keeps its own copy of every finished record, apart from the engine's working objects, so
that a simulated crash (drop the engine, recover from the store) behaves as it would with a
file. Writes are O(1) amortised and do no JSON and no per-record compression (issue 12: the
store's share of a run must be a few microseconds and well under 1 KB; ``python
bench/hotpath.py store_calls 5000`` and ``bytes_split_finished 2000`` measure both):

- An active run is a list ``[shape, values, memos, *history]``. Its record is the fresh dict
  the engine built (``shape`` is ``_AS_GIVEN``), so a repeated save is two slot writes; a run
  that parks (a save with pending suspensions) is made compact: the record as a tuple of
  values (``shape`` names the key layout, shared by every record of that layout) and its
  suspensions flat. Memos are a flat ``[step, outcome, ...]`` list (or None), history entries
  are the engine's own: an active run is kept by reference, as it always was here (the
  engine builds a fresh record for every save, and saves again what it changes in place).
- A run that ends is snapshotted at once with :mod:`marshal` (a C-speed deep copy into bytes,
  so nothing done afterwards to what was handed over reaches it) and joins the open *batch*;
  a settled event likewise. Every ``_BATCH`` snapshots the batch is sealed: joined and
  zlib-compressed in one call (the compressor's set-up costs more than a small record's whole
  compression, and similar records compress together: a finished one-step run and its event
  then take ~70 bytes of blob, where compressed one by one they took ~530). Reads decompress a
  batch on demand (the last one is cached, a scan keeps those it met) and give back what
  they always gave: a finished record or an event as a JSON round trip of what was saved, an
  active record as a deep copy.
- Pruning drops whole batches, and rewrites the one it cuts through.

A record may hold what marshal does not know (a subclass, say); it is then snapshotted through
its JSON form, which is what a read gives back anyway. Recovery walks the index once and
copies only active work; no batch is decompressed.
"""

from __future__ import annotations

import array
import copy
import itertools
import json
import marshal
import typing
import zlib

from ..kernel import plain_records
from .base import RecoveredState, Store

_dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode

#: Snapshots per sealed batch. zlib's window is 32 KB: a one-step run's snapshot is ~350
#: bytes, so 64 of them fill it; more only grows the uncompressed open batch.
_BATCH = 64

#: Decompressed batches a scan (load_runs, load_events) keeps at once (~20 KB each).
_SCAN_CACHE = 8

#: An active run's state[0] when state[1] is its record as the engine handed it over.
_AS_GIVEN = -1


def _json(value: typing.Any) -> typing.Any:
    """``value`` as JSON gives it back (tuples become lists), in fresh objects."""
    return json.loads(_dumps(value))


def _snapshot(value: typing.Any) -> bytes:
    try:
        return marshal.dumps(value)
    except ValueError:  # a type marshal does not know: keep its JSON form (what reads give)
        return marshal.dumps(_json(value))


class _FlatPending(tuple):
    """An active run's ``pending`` (``{step: [kind, due_ms, data]}``) as one flat tuple
    ``(step, kind, due_ms, data, ...)``: 72 bytes for a parked run's one suspension where the
    dict and its list take 272."""

    __slots__ = ()

    @classmethod
    def of(cls, pending: typing.Any) -> typing.Any:
        """``pending`` flattened, or as it is when it is not the engine's layout."""
        if pending.__class__ is not dict:
            return pending
        flat: list = []
        for step, entry in pending.items():
            if entry.__class__ is not list or len(entry) != 3:
                return pending
            flat.append(step)
            flat += entry
        return cls(flat)

    def expand(self) -> dict[str, list]:
        return {self[i]: list(self[i + 1:i + 4]) for i in range(0, len(self), 4)}


def _memo_dict(flat: list | None) -> dict:
    return dict(zip(flat[::2], flat[1::2])) if flat else {}


class _Batch:
    """Snapshots of finished runs (or settled events) in the order they ended (settled).

    Open: ``parts`` holds the snapshots. Sealed: ``blob`` is their zlib-compressed
    concatenation and ``ends`` where each one ends in it. ``stamps`` (ended_ms or
    received_ms) lets prune choose without decoding.
    """

    __slots__ = ("blob", "ends", "ids", "parts", "stamps")

    def __init__(self) -> None:
        self.ids: list[str] = []
        self.stamps = array.array("d")
        self.parts: list[bytes] | None = []
        self.blob: bytes | None = None
        self.ends: array.array | None = None


class MemoryStore(Store):
    """Records in memory; lost with the process."""

    location = "memory"

    def __init__(self) -> None:
        # event id -> (received_ms, payload, outcomes) while unsettled, else its _Batch;
        # arrival order
        self._events: dict[str, tuple | _Batch] = {}
        # run id -> an active run's state list (see the module docstring) or its _Batch;
        # creation (first save) order
        # (emptied in place when initialised again: an engine's journal holds this dict,
        # see entry_lists)
        runs: dict[str, list | _Batch] | None = getattr(self, "_runs", None)
        if runs is None:
            runs = {}
        runs.clear()
        self._runs = runs
        # memos and history saved for a run before its record: adopted by its first save_run
        self._orphans: dict[str, list] = {}
        self._run_batches: dict[_Batch, None] = {}  # in the order they were opened
        self._event_batches: dict[_Batch, None] = {}
        self._open_runs = self._new_batch(self._run_batches)
        self._open_events = self._new_batch(self._event_batches)
        self._shapes: list[tuple[str, ...]] = []  # key layouts of run records, by index
        self._shape_index: dict[tuple[str, ...], int] = {}
        self._pending_at: list[int] = []  # per shape: where "pending" is in it, or -1
        self._last_shape: tuple[str, ...] = ()
        self._last_index = -1
        self._inflated: tuple[bytes, bytes] | None = None  # (blob, its contents): last read
        self._flow: dict[str, dict[str, typing.Any]] = {}
        self._meta: dict[str, typing.Any] = {}
        self._count = 0
        # A parked run's record, kept as given until another run is saved: a run that parks
        # again and again (a loop of sleeps) is made compact once, not on every park.
        self._deferred: tuple[list, dict] | None = None

    # writes ------------------------------------------------------------------------------
    def save_event(self, event_id: str, payload: dict, received_ms: int,
                   outcomes: list | None = None, settled: bool = False) -> None:
        old = self._events.get(event_id)
        if old is None:
            self._count += 1
        elif old.__class__ is _Batch:  # settled before: out of its batch, then as new
            self._remove(typing.cast(_Batch, old), [event_id], self._event_batches)
        if not settled:
            self._events[event_id] = (received_ms, payload, outcomes)
            return
        self._open_events = self._shelve(self._events, event_id,
                                         (received_ms, payload, outcomes or []), received_ms,
                                         self._open_events, self._event_batches)

    def save_run(self, record: dict) -> None:
        run_id = record["id"]
        state = self._runs.get(run_id)
        deferred = self._deferred
        if deferred is not None:
            self._deferred = None
            if deferred[0] is not state and deferred[0][1] is deferred[1]:
                self._compact_parked(deferred[0], deferred[1])
        if record.get("ended_ms") is None:
            if state.__class__ is list:
                # The usual repeated save (three a slice): the fresh dict the engine built is
                # kept as it is; a run that stays parked is made compact when another run
                # is saved next (see _deferred).
                state[0] = _AS_GIVEN  # type: ignore[index]
                state[1] = record  # type: ignore[index]
                if record.get("pending"):
                    self._deferred = (typing.cast(list, state), record)
                return
            if state is None and not record.get("pending"):
                # A new run (its first save, with nothing parked): _save_active's usual
                # case, inlined -- once for every run. What was logged before it (the
                # engine's "run.queued") waits in its orphan state.
                self._count += 1
                state = self._orphans.pop(run_id, None)
                if state is None:
                    self._runs[run_id] = [_AS_GIVEN, record, None]
                else:
                    state[0] = _AS_GIVEN
                    state[1] = record
                    self._runs[run_id] = state
                return
            self._save_active(run_id, state, record)
            return
        # _compact, inlined (once for every run)
        keys = tuple(record)
        shape = self._last_index if keys == self._last_shape else self._shape_of(keys)
        values = tuple(record.values())
        # A run that ended: snapshotted now, compressed with its batch later.
        if state.__class__ is list:
            memos = state[2]  # type: ignore[index]
            history = state[3:]  # type: ignore[index]
        elif state is None:
            self._count += 1
            orphan = self._orphans.pop(run_id, None) or [None, None, None]
            memos, history = orphan[2], orphan[3:]
        else:  # saved again after it ended: the record changes, memos and history stay
            self._change_finished(run_id, record=(shape, values, record["ended_ms"]))
            return
        # History entries are the engine's named tuples, which marshal refuses; the kernel
        # copies them as plain tuples the collector need not track (a 40,000-entry history
        # otherwise set off a full collection).
        self._open_runs = self._shelve(self._runs, run_id,
                                       (shape, values, memos, plain_records(history)),
                                       record["ended_ms"], self._open_runs, self._run_batches)

    def save_memo(self, run_id: str, step_id: str, outcome: list) -> None:
        state = self._runs.get(run_id)
        if state.__class__ is not list:
            state = self._cold_state(run_id)
            if state is None:  # finished: rewritten where it is
                self._change_finished(run_id, memo=(step_id, outcome))
                return
        memos = state[2]  # type: ignore[index]
        if memos is None:
            state[2] = [step_id, outcome]  # type: ignore[index]
        else:
            memos.append(step_id)
            memos.append(outcome)

    def append_history(self, run_id: str, entry: tuple) -> None:
        state = self._runs.get(run_id)
        if state.__class__ is list:
            state.append(entry)  # type: ignore[union-attr]
            return
        if state is None:  # no record yet (the engine's "run.queued"): _cold_state, inlined
            orphan = self._orphans.get(run_id)
            if orphan is None:
                orphan = self._orphans[run_id] = [None, None, None]
            orphan.append(entry)
            return
        self._change_finished(run_id, entry=entry)

    def entry_lists(self) -> dict[str, typing.Any] | None:
        """Run id -> its state, a list while the run is active: the engine's journal appends
        a history entry straight to that list (what :meth:`append_history` does for an
        active run) and calls :meth:`append_history` for anything else. None when a
        subclass has its own ``append_history`` (it must hear of every entry)."""
        if type(self).append_history is not MemoryStore.append_history:
            return None
        return self._runs

    def save_flow(self, namespace: str, key: str, value: typing.Any) -> None:
        space = self._flow.setdefault(namespace, {})
        if value is None:
            space.pop(key, None)
        else:
            space[key] = value

    def save_meta(self, key: str, value: typing.Any) -> None:
        self._meta[key] = value

    # reads -------------------------------------------------------------------------------
    def recover(self) -> RecoveredState:
        runs = [self._active(run_id, state) for run_id, state in self._runs.items()
                if state.__class__ is list]
        events = [self._event_record(event_id, rec) for event_id, rec in self._events.items()
                  if rec.__class__ is tuple]
        meta = copy.deepcopy(self._meta)
        if self._count:
            meta["store:count"] = self._count
        return RecoveredState(runs=runs, events=events, flow=copy.deepcopy(self._flow),
                              meta=meta)

    def load_runs(self, fn_id: str | None = None, status: str | None = None) -> list[dict]:
        out = []
        reader = _Reader(self, scan=True)
        for run_id, state in list(self._runs.items()):
            if state.__class__ is list:  # active: the engine knows its status better
                rec = self._active(run_id, typing.cast(list, state))
                if fn_id is None or rec["fn_id"] == fn_id:
                    out.append(rec)
                continue
            rec = self._finished(reader.part(typing.cast(_Batch, state), run_id))
            if (fn_id is None or rec["fn_id"] == fn_id) and (
                    status is None or rec["status"] == status):
                out.append(_json(rec))
        return out

    def load_run(self, run_id: str) -> dict | None:
        state = self._runs.get(run_id)
        if state is None:
            return None
        if state.__class__ is list:
            return self._active(run_id, typing.cast(list, state))
        return _json(self._finished(_Reader(self).part(typing.cast(_Batch, state), run_id)))

    def load_events(self, name: str | None = None) -> list[dict]:
        out = []
        reader = _Reader(self, scan=True)
        for event_id, rec in list(self._events.items()):
            if rec.__class__ is tuple:
                received_ms, payload, outcomes = typing.cast(tuple, rec)
            else:
                received_ms, payload, outcomes = marshal.loads(
                    reader.part(typing.cast(_Batch, rec), event_id))
            if name is None or payload.get("name") == name:
                out.append(self._event_record(event_id, (received_ms, payload, outcomes)))
        return out

    def prune(self, before_ms: int, limit: int = 5000) -> int:
        gone = self._prune(self._run_batches, self._runs, before_ms, limit)
        self._prune(self._event_batches, self._events, before_ms, limit)
        return gone

    # internals ---------------------------------------------------------------------------
    def _compact(self, record: dict) -> tuple[int, tuple]:
        """``record`` as (key layout, values): a tuple of 17 values takes 176 bytes where the
        engine's dict takes 680."""
        keys = tuple(record)
        if keys == self._last_shape:  # the usual: element by element, the same str objects
            shape = self._last_index
        else:
            shape = self._shape_of(keys)
        return shape, tuple(record.values())

    def _compact_parked(self, state: list, record: dict) -> None:
        """Keep a parked run's record compact: its values in a tuple, suspensions flat."""
        shape, values = self._compact(record)
        at = self._pending_at[shape]
        if at >= 0:
            values = (*values[:at], _FlatPending.of(values[at]), *values[at + 1:])
        state[0] = shape
        state[1] = values

    def _save_active(self, run_id: str, state: list | _Batch | None, record: dict) -> None:
        """A run's first save as active (new, or a finished run active again)."""
        if state is None:
            self._count += 1
            state = self._orphans.pop(run_id, None) or [None, None, None]
        else:  # a finished run active again: out of its batch
            _, _, memos, history = self._take_run(run_id, typing.cast(_Batch, state))
            state = [None, None, memos, *history]
        self._runs[run_id] = state
        if record.get("pending"):  # a parked run: compact, its suspensions flat
            self._compact_parked(state, record)
        else:
            state[0] = _AS_GIVEN
            state[1] = record

    def _shape_of(self, keys: tuple[str, ...]) -> int:
        index = self._shape_index.get(keys)
        if index is None:
            index = self._shape_index[keys] = len(self._shapes)
            self._shapes.append(keys)
            self._pending_at.append(keys.index("pending") if "pending" in keys else -1)
        self._last_shape, self._last_index = self._shapes[index], index
        return index

    def _active(self, run_id: str, state: list) -> dict:
        """An active run's record with memos and history, as a deep copy."""
        if state[0] == _AS_GIVEN:
            rec = dict(state[1])
        else:
            rec = dict(zip(self._shapes[state[0]], state[1]))
            at = self._pending_at[state[0]]
            if at >= 0 and state[1][at].__class__ is _FlatPending:
                rec["pending"] = state[1][at].expand()
        rec["memos"] = _memo_dict(state[2])
        rec["history"] = state[3:]
        return copy.deepcopy(rec)

    def _finished(self, part: bytes | memoryview) -> dict:
        """A finished run's record from its snapshot (not yet through JSON)."""
        shape, values, memos, history = marshal.loads(part)
        rec = dict(zip(self._shapes[shape], values))
        rec["memos"] = _memo_dict(memos)
        rec["history"] = list(history)
        return rec

    @staticmethod
    def _event_record(event_id: str, rec: tuple) -> dict:
        received_ms, payload, outcomes = rec
        payload, outcomes = _json([payload, outcomes or []])
        return {"id": event_id, "payload": payload, "received_ms": received_ms,
                "outcomes": outcomes}

    def _cold_state(self, run_id: str) -> list | None:
        """The state list memos and history of a run not active go to: an orphan's (no
        record yet), or None when the run has finished."""
        if run_id in self._runs:
            return None
        state = self._orphans.get(run_id)
        if state is None:
            state = self._orphans[run_id] = [None, None, None]
        return state

    def _take_run(self, run_id: str, batch: _Batch) -> tuple[int, tuple, list | None, list]:
        """Remove a finished run from its batch; its (shape, values, memos, history)."""
        shape, values, memos, history = marshal.loads(_Reader(self).part(batch, run_id))
        self._remove(batch, [run_id], self._run_batches)
        return shape, tuple(values), memos, list(history)

    def _change_finished(self, run_id: str, *,
                         record: tuple[int, tuple, typing.Any] | None = None,
                         memo: tuple[str, typing.Any] | None = None,
                         entry: tuple | None = None) -> None:
        """A new record (shape, values, ended_ms), memo or history entry for a run that has
        ended (rare): its snapshot is rewritten where it is, so it keeps its place in the
        order runs ended (what prune goes by), as the other stores keep it."""
        batch = typing.cast(_Batch, self._runs[run_id])
        i = batch.ids.index(run_id)
        parts = self._parts(batch)
        shape, values, memos, history = marshal.loads(parts[i])
        if record is not None:
            shape, values, ended_ms = record
            batch.stamps[i] = ended_ms
        if memo is not None:
            memos = [*(memos or ()), *memo]
        if entry is not None:
            history = (*history, tuple(entry))
        parts[i] = _snapshot((shape, values, memos, history))
        self._store_parts(batch, parts)

    def _shelve(self, table: dict, key: str, snap: typing.Any, stamp: int, batch: _Batch,
                registry: dict[_Batch, None]) -> _Batch:
        """File ``snap`` (a finished run's or settled event's) under ``key`` in ``table``, as
        the next snapshot of the open ``batch``; the batch to file into next (a new one once
        this one is full and sealed). O(1), plus the batch's compression when it fills."""
        try:
            part = marshal.dumps(snap)
        except ValueError:
            part = _snapshot(snap)
        batch.ids.append(key)
        batch.parts.append(part)  # type: ignore[union-attr]
        batch.stamps.append(stamp)
        table[key] = batch
        if len(batch.ids) < _BATCH:
            return batch
        self._seal(batch)
        return self._new_batch(registry)

    @staticmethod
    def _new_batch(registry: dict[_Batch, None]) -> _Batch:
        batch = _Batch()
        registry[batch] = None
        return batch

    def _seal(self, batch: _Batch) -> None:
        parts = typing.cast(list, batch.parts)
        batch.ends = array.array("I", itertools.accumulate(map(len, parts)))
        batch.blob = zlib.compress(b"".join(parts), 1)
        batch.parts = None

    def _raw(self, batch: _Batch, upto: int | None = None) -> bytes:
        """A sealed batch's snapshots decompressed, at least its first ``upto`` bytes (None:
        all). The last batch asked for is cached: a first read stops where its record ends
        (half the batch on average), a read past that decompresses the whole batch."""
        blob = typing.cast(bytes, batch.blob)
        cached = self._inflated
        if cached is not None and cached[0] is blob:
            raw = cached[1]
            if len(raw) == batch.ends[-1] or (  # type: ignore[index]
                    upto is not None and len(raw) >= upto):
                return raw
            upto = None
        if upto is None:
            raw = zlib.decompress(blob)
        else:
            raw = zlib.decompressobj().decompress(blob, upto)
        self._inflated = (blob, raw)
        return raw

    def _parts(self, batch: _Batch) -> list[bytes]:
        if batch.blob is None:
            return list(typing.cast(list, batch.parts))
        raw, ends = self._raw(batch), typing.cast(array.array, batch.ends)
        return [raw[start:end] for start, end in zip(itertools.chain((0,), ends), ends)]

    def _store_parts(self, batch: _Batch, parts: list[bytes]) -> None:
        """Give ``batch`` new contents, keeping it open or sealed as it was."""
        if batch.blob is None:
            batch.parts = parts
        else:
            batch.parts = parts
            self._seal(batch)

    def _remove(self, batch: _Batch, ids: typing.Iterable[str],
                registry: dict[_Batch, None]) -> None:
        """Take ``ids`` out of ``batch`` (not out of the index: the caller does that)."""
        drop = {batch.ids.index(i) for i in ids}
        parts = self._parts(batch)
        keep = [i for i in range(len(batch.ids)) if i not in drop]
        batch.ids = [batch.ids[i] for i in keep]
        batch.stamps = array.array("d", [batch.stamps[i] for i in keep])
        if not keep and batch.blob is not None:  # a sealed batch emptied: gone
            del registry[batch]
            batch.blob = b""
            return
        self._store_parts(batch, [parts[i] for i in keep])

    def _prune(self, registry: dict[_Batch, None], index: dict[str, typing.Any],
               before_ms: int, limit: int) -> int:
        """Drop up to ``limit`` snapshots stamped before ``before_ms``, oldest batch first."""
        gone = 0
        for batch in list(registry):
            if gone >= limit:
                break
            if not batch.stamps or min(batch.stamps) >= before_ms:
                continue
            ids = [run_id for run_id, stamp in zip(batch.ids, batch.stamps)
                   if stamp < before_ms][:limit - gone]
            for run_id in ids:
                del index[run_id]
            if len(ids) == len(batch.ids) and batch.blob is not None:
                del registry[batch]  # the usual case: a whole old batch, not decoded
            else:
                self._remove(batch, ids, registry)
            gone += len(ids)
        return gone


class _Reader:
    """Finds snapshots for one read call, indexing (and, for a scan, decompressing) each
    batch it meets once."""

    __slots__ = ("positions", "raws", "store")

    def __init__(self, store: MemoryStore, scan: bool = False) -> None:
        self.store = store
        self.positions: dict[_Batch, dict[str, int]] = {}
        # a scan keeps the last few batches it decompressed: runs in creation order move
        # back and forth between (nearby) batches of the order they ended in
        self.raws: dict[_Batch, bytes] | None = {} if scan else None

    def part(self, batch: _Batch, item_id: str) -> bytes:
        if self.raws is None:  # one read
            i = batch.ids.index(item_id)
        else:
            where = self.positions.get(batch)
            if where is None:
                where = self.positions[batch] = {k: i for i, k in enumerate(batch.ids)}
            i = where[item_id]
        if batch.blob is None:
            return typing.cast(list, batch.parts)[i]
        ends = typing.cast(array.array, batch.ends)
        if self.raws is None:  # one read
            raw = self.store._raw(batch, ends[i])
        else:
            raw = self.raws.get(batch)  # type: ignore[assignment]
            if raw is None:
                if len(self.raws) >= _SCAN_CACHE:
                    del self.raws[next(iter(self.raws))]  # the one decompressed longest ago
                raw = self.raws[batch] = zlib.decompress(typing.cast(bytes, batch.blob))
        return raw[ends[i - 1] if i else 0:ends[i]]
