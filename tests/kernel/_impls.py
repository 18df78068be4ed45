"""The kernel implementations available to the tests: always the pure twin, and the compiled
core when it is built (its tests are skipped, not failed, when it is not)."""

from __future__ import annotations

import typing
from types import ModuleType

from inngest_do import kernel

PURE: ModuleType = kernel.load(pure=True)
try:
    COMPILED: ModuleType | None = kernel.load(pure=False)
except ImportError:
    COMPILED = None

# (name, module) for every implementation present; the stateful tests drive all of them.
AVAILABLE: list[tuple[str, ModuleType]] = [("pure", PURE)]
if COMPILED is not None:
    AVAILABLE.append(("compiled", COMPILED))


class Entry(typing.NamedTuple):
    """The trace entry type the kernel tests hand their journals (the engine's has these fields)."""

    at_ms: int
    run_id: str
    fn_id: str
    kind: str
    step: str | None
    detail: typing.Any


def outcome(fn, *args):
    """Call fn and describe what happened, so implementations can be compared exactly."""
    try:
        return ("ok", fn(*args))
    except Exception as exc:  # noqa: BLE001 - the exception itself is the observable result
        return ("raise", type(exc), str(exc))


def same(results: list):
    """Assert all implementations gave the same outcome; return it."""
    first = results[0]
    for other in results[1:]:
        assert other == first, f"implementations disagree: {results!r}"
    return first
