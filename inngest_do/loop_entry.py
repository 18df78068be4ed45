"""Running one coroutine to completion on a private event loop, from synchronous code.

``loop.run_until_complete`` costs ~10 us on an idle loop (a done-callback, ``run_forever``'s
set-up and tear-down, a stop callback and an extra selector pass), which a Simulation pays
once per ``send``: a third of dispatching an event whose run is one trivial step. :func:`run`
does the same work directly -- the loop is marked running in this thread, the coroutine
becomes a real :class:`asyncio.Task` (so ``current_task()``, sniffio/anyio and cancellation
behave as under ``run_until_complete``), and the loop turns until the task is done -- in
~4 us. It needs the stock asyncio loop's ``_run_once``; any other loop (uvloop) gets
``run_until_complete``.
"""

from __future__ import annotations

import asyncio
import sys
import threading
import typing
from asyncio import events

T = typing.TypeVar("T")


_STEPPABLE: dict[type, bool] = {}  # per loop class (the attributes are the class's own)


def _steppable(loop: asyncio.AbstractEventLoop) -> bool:
    known = _STEPPABLE.get(type(loop))
    if known is None:
        known = _STEPPABLE[type(loop)] = (
            isinstance(loop, asyncio.BaseEventLoop) and hasattr(loop, "_run_once")
            and hasattr(loop, "_asyncgen_firstiter_hook") and hasattr(loop, "_thread_id")
            and hasattr(loop, "_ready") and hasattr(loop, "_scheduled")
            and hasattr(loop, "_task_factory"))
    return known


def run(loop: asyncio.AbstractEventLoop, coro: typing.Coroutine[typing.Any, typing.Any, T]) -> T:
    """``loop.run_until_complete(coro)``, cheaper on the stock loop. O(1) besides the work."""
    base: typing.Any = loop  # (not typing.cast: a call)
    if not _steppable(loop) or loop.is_running() or base._debug:  # (get_debug(), read)
        return loop.run_until_complete(coro)
    hooks = sys.get_asyncgen_hooks()
    # as run_forever: async generators started inside are finalized by this loop
    sys.set_asyncgen_hooks(firstiter=base._asyncgen_firstiter_hook,
                           finalizer=base._asyncgen_finalizer_hook)
    base._thread_id = threading.get_ident()
    events._set_running_loop(loop)
    try:
        ready = base._ready
        alone = not ready and not base._scheduled
        # as loop.create_task does with no task factory, without its extra frame
        task = (asyncio.Task(coro, loop=loop) if base._task_factory is None
                and not base._closed else loop.create_task(coro))
        try:
            if alone and len(ready) == 1:
                # Nothing else is due: the task's first step is the loop's only work, so it
                # runs without polling the selector first (a turn of the loop costs a
                # system call). What it leaves (I/O, timers, callbacks) gets real turns.
                ready.popleft()._run()
            while not task.done():
                base._run_once()
        except BaseException:
            # as run_until_complete: an interrupted task is not left to run on its own later
            if not task.done():
                task.cancel()
            raise
        return task.result()
    finally:
        events._set_running_loop(None)
        base._thread_id = None
        sys.set_asyncgen_hooks(*hooks)
