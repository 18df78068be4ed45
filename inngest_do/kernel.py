"""The engine's kernel: picks the compiled core or its pure-Python twin.

``inngest_do._core`` (Cython, built by setup.py when a C compiler is available) is used unless
the environment variable ``INNGEST_DO_PURE_PYTHON`` is ``1``/``true``/``yes``, or it cannot be
imported, in which case ``inngest_do._core_py`` is used and one ``RuntimeWarning`` says so. Both
have the same interface and produce identical results; ``IMPLEMENTATION`` tells which one is in
use, and ``load(pure)`` returns either module (for tests that compare them).

Exports: VirtualClock, RealClock, TimerHeap, MemoTable, ReadyQueue, GCRA, KeyedCounter,
SeededRandom, Journal, Drive, StepBook/StepRules (a step's short path), ms_to_datetime,
datetime_to_ms, untracked_record. All times are integer milliseconds.
"""

from __future__ import annotations

import importlib
import os
import warnings
from types import ModuleType

__all__ = [
    "BEGUN",
    "BODY",
    "DONE",
    "GCRA",
    "IMPLEMENTATION",
    "PARKED",
    "RAISED",
    "SLOW",
    "Drive",
    "Journal",
    "KeyedCounter",
    "MemoTable",
    "ReadyQueue",
    "RealClock",
    "SeededRandom",
    "StepBook",
    "StepRules",
    "TimerHeap",
    "VirtualClock",
    "datetime_to_ms",
    "load",
    "ms_to_datetime",
    "untracked_record",
]

_FALLBACK_WARNING = "inngest_do: compiled core unavailable, using the pure-Python kernel"


def load(pure: bool) -> ModuleType:
    """Return the pure-Python kernel module, or the compiled one (ImportError if not built)."""
    if pure:
        return importlib.import_module("inngest_do._core_py")
    return importlib.import_module("inngest_do._core")


def _select() -> tuple[ModuleType, str]:
    if os.environ.get("INNGEST_DO_PURE_PYTHON", "").strip().lower() in ("1", "true", "yes"):
        return load(pure=True), "pure"
    try:
        return load(pure=False), "compiled"
    except ImportError:
        warnings.warn(_FALLBACK_WARNING, RuntimeWarning, stacklevel=3)
        return load(pure=True), "pure"


_core, IMPLEMENTATION = _select()

VirtualClock = _core.VirtualClock
RealClock = _core.RealClock
TimerHeap = _core.TimerHeap
MemoTable = _core.MemoTable
ReadyQueue = _core.ReadyQueue
GCRA = _core.GCRA
KeyedCounter = _core.KeyedCounter
Journal = _core.Journal
Drive = _core.Drive
DONE = _core.DONE
RAISED = _core.RAISED
PARKED = _core.PARKED
StepBook = _core.StepBook
StepRules = _core.StepRules
SLOW = _core.SLOW
BEGUN = _core.BEGUN
BODY = _core.BODY
SeededRandom = _core.SeededRandom
ms_to_datetime = _core.ms_to_datetime
datetime_to_ms = _core.datetime_to_ms
untracked_record = _core.untracked_record
