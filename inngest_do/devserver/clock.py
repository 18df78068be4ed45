"""Virtual-clock control: time moves only when told, through every timer in order.

Advancing by a duration fires each timer due in that window at its own instant, and lets the
work it starts (HTTP calls to apps included) finish before the clock moves on, so a day of
sleeps, retries and cron ticks plays out in order in milliseconds of wall time.
"""

from __future__ import annotations

import threading
import time
import typing

if typing.TYPE_CHECKING:
    from ..engine import Engine
    from ..worker import Worker

__all__ = ["ClockBusyError", "advance", "wait_idle"]


class ClockBusyError(RuntimeError):
    """The engine did not become idle within the allowed wall time."""


def is_idle(engine: Engine, worker: Worker) -> bool:
    """Nothing runs or is ready, and no timer is due at the current (virtual) instant."""
    with engine.lock:
        if worker._tasks or engine.ready:
            return False
        due = engine.next_due()
        return due is None or due > engine.now_ms()


def wait_idle(engine: Engine, worker: Worker, timeout_s: float,
              stop: threading.Event | None = None) -> None:
    """Block until :func:`is_idle` (polling, bounded by ``timeout_s`` of wall time)."""
    deadline = time.monotonic() + timeout_s
    # The worker wakes on its own when work arrives; this only watches for the end of it.
    pause = 0.0005
    while not is_idle(engine, worker):
        if stop is not None and stop.is_set():
            return
        if time.monotonic() > deadline:
            raise ClockBusyError(
                f"the engine is still busy after {timeout_s:g} s of wall time (an app that "
                "does not answer, or a function that keeps triggering itself?)")
        worker._on_work()
        time.sleep(pause)
        pause = min(pause * 2, 0.01)


def advance(engine: Engine, worker: Worker, target_ms: int, timeout_s: float) -> int:
    """Move a virtual clock to ``target_ms``, firing timers one instant at a time and
    waiting for the work each starts; returns how many timer instants were visited."""
    clock = engine.clock
    wait_idle(engine, worker, timeout_s)
    instants = 0
    while True:
        with engine.lock:
            due = engine.next_due()
            if due is None or due > target_ms:
                break
            if due > clock.now_ms():
                clock.advance_to(due)
            engine.fire_due(clock.now_ms())
        instants += 1
        worker._on_work()
        wait_idle(engine, worker, timeout_s)
    with engine.lock:
        if target_ms > clock.now_ms():
            clock.advance_to(target_ms)
    return instants
