"""The dev server's engine: inngest_do's :class:`~inngest_do.engine.Engine` plus what a
server whose functions live in other processes needs.

- **Parked runs.** A run is only sliced once its function has been synced by its app since
  this server started (it is *live*). After a restart from ``--store`` the runs of apps that
  have not synced again wait here -- queued, sleeping or waiting as they were -- instead of
  failing with "function not found"; the app's sync wakes them and they resume from their
  memos.
- **Re-syncs.** A function synced again with a changed config is replaced: its triggers,
  cron schedules and flow control follow the new config for runs that start after the sync
  (state that outlives one config -- debounce/batch piles, throttle queues, singleton locks,
  seen event ids -- is carried over). A function an app no longer declares is unserved: no
  trigger, cron tick or new debounce starts it; runs already in flight go on.
- **Cancel at once.** Cancelling a run whose request to the app is in flight tells the
  executor (``on_cancel``), which abandons the request so the run is cancelled now; the
  app's answer, when it comes, is dropped.

Everything here runs under the engine lock, as the base class's own bookkeeping does.
"""

from __future__ import annotations

import logging
import typing

from ..engine import Engine
from ..triggers import CronSchedule, EventRouter

if typing.TYPE_CHECKING:
    from ..function import Function
    from ..runs import RunState

__all__ = ["DevEngine"]

log = logging.getLogger("inngest_do.devserver")


class DevEngine(Engine):
    """An engine whose functions are served by apps that sync them (see the module doc)."""

    def __init__(self, *args: typing.Any, **kwargs: typing.Any) -> None:
        # Set before the base constructor: it recovers runs and may serve functions.
        #: ids of functions an app has synced since this engine started
        self.live_ids: set[str] = set()
        #: fn id -> run id -> run: runs that reached the queue before their app synced
        self.parked: dict[str, dict[str, RunState]] = {}
        #: ids of functions their app no longer declares (served for runs in flight only)
        self.unserved: set[str] = set()
        #: the store's meta values as recovered at start (synced app configs live there)
        self.recovered_meta: dict[str, typing.Any] = {}
        #: called (under the lock) when a run is cancelled, so a request in flight is dropped
        self.on_cancel: typing.Callable[[RunState], None] | None = None
        # fn id -> cron index -> (timer handle, tick): a replaced function's ticks are found
        self._dev_crons: dict[str, dict[int, tuple[int, int]]] = {}
        super().__init__(*args, **kwargs)

    # recovery --------------------------------------------------------------------------------
    def _recover(self) -> None:
        # As the base class does, keeping the meta values: the dev server keeps the last sync
        # of each app there, to serve its functions again before the app re-syncs.
        state = self.store.recover()
        self.recovered_meta = dict(state.meta)
        self._restore(state)

    # parking ---------------------------------------------------------------------------------
    async def slice(self, run: RunState) -> None:
        if run.fn_id not in self.live_ids:
            self._park(run)
            return
        await super().slice(run)

    def _park(self, run: RunState) -> None:
        runs = self.parked.setdefault(run.fn_id, {})
        if run.id not in runs:
            runs[run.id] = run
            self.record_run_note(run, "run.parked", f"function '{run.fn_id}' has not been "
                                 "synced since the server started; waiting for its app")
            log.info("inngest-do dev: run %s waits for function '%s' to be synced", run.id,
                     run.fn_id)

    def set_live(self, fn_ids: typing.Iterable[str]) -> int:
        """Functions just synced by their app: their parked runs go on. How many woke."""
        woken = 0
        for fn_id in fn_ids:
            self.live_ids.add(fn_id)
            for run in self.parked.pop(fn_id, {}).values():
                if not run.status.is_final:
                    self.record_run_note(run, "run.unparked", None)
                    self.wake(run)
                    woken += 1
        if woken:
            self._work_arrived()
        return woken

    # re-syncs --------------------------------------------------------------------------------
    def replace_function(self, fn: Function[typing.Any]) -> None:
        """Serve ``fn`` in place of the function with its id (a re-sync changed its
        config, or declared it again after it was unserved)."""
        old = self._known_fns.get(fn.id)
        if old is None:
            self.serve([fn])
            return
        self.unserved.discard(fn.id)
        self._known_fns[fn.id] = fn  # keeps its place, so trigger order is stable
        self._rebuild_router()
        old_crons = self._cancel_crons(fn.id)
        for idx, cron in enumerate(fn.cron_triggers):
            kept = old_crons.get(idx)
            # The same schedule keeps its next tick (one due now still fires).
            same = (kept is not None and idx < len(old.cron_triggers)
                    and old.cron_triggers[idx].source == cron.source)
            self._arm_cron(fn, idx, cron, kept[1] if same and kept else
                           cron.next_after(self.now_ms()))
        self.flow.replace(fn)
        self.store.commit()

    def unserve(self, fn_id: str) -> None:
        """Stop triggering ``fn_id`` (its app no longer declares it)."""
        if fn_id not in self._known_fns or fn_id in self.unserved:
            return
        self.unserved.add(fn_id)
        self._rebuild_router()
        self._cancel_crons(fn_id)
        self.store.commit()

    def _rebuild_router(self) -> None:
        # EventRouter has no removal; rebuilding is O(functions), once per changed sync.
        router: EventRouter[typing.Any] = EventRouter()
        for fn in self._known_fns.values():
            if fn.id in self.unserved:
                continue
            for trig in fn.event_triggers:
                router.add(trig.pattern, (fn, trig))
        self._router = router

    def _arm_cron(self, fn: Function[typing.Any], idx: int, cron: CronSchedule,
                  tick: int) -> None:
        before = set(self._cron_timers)
        super()._arm_cron(fn, idx, cron, tick)
        for handle in self._cron_timers - before:
            self._dev_crons.setdefault(fn.id, {})[idx] = (handle, tick)

    def _cancel_crons(self, fn_id: str) -> dict[int, tuple[int, int]]:
        """Cancel ``fn_id``'s armed cron ticks; what they were."""
        armed = self._dev_crons.pop(fn_id, {})
        for handle, _tick in armed.values():
            if handle in self._cron_timers:
                self._cron_timers.discard(handle)
                if handle in self.timers:
                    self.timers.cancel(handle)
        return armed

    # cancellation ----------------------------------------------------------------------------
    def cancel_run(self, run: RunState, reason: str) -> None:
        super().cancel_run(run, reason)
        if run.cancel_requested and not run.status.is_final and self.on_cancel is not None:
            self.on_cancel(run)
