"""Flow control: which events start runs, when runs may start, and which runs end early.

The engine asks this module at each decision point:

- :meth:`FlowControl.admit` -- an event matched a function's trigger: start a run, or not;
- :meth:`FlowControl.on_run_created` / :meth:`FlowControl.request_slice` -- a run has work to
  do: put it in the ready queue now or hold it;
- :meth:`FlowControl.on_event` -- an event may cancel runs;
- :meth:`FlowControl.on_slice_start`, :meth:`FlowControl.on_slice_end`,
  :meth:`FlowControl.on_run_end` -- bookkeeping;
- :meth:`FlowControl.fire` -- a flow-control timer came due.
"""

from __future__ import annotations

import typing

if typing.TYPE_CHECKING:
    from .engine import Engine
    from .function import Function
    from .runs import RunState


class FlowControl:
    """Per-engine flow-control state for every function."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def restore(self, state: dict[str, dict[str, typing.Any]]) -> None:
        """Take back flow-control state a store kept (after a restart)."""

    def register(self, fn: Function[typing.Any]) -> None:
        """A function became known to the engine."""

    def admit(self, fn: Function[typing.Any], event_id: str, payload: dict) -> None:
        run = self.engine.create_run(fn, [payload])
        self.engine.record_outcome(event_id, fn.id, "started", run.id)

    def on_event(self, payload: dict) -> None:
        """Cancel runs that ``payload`` matches."""

    def on_run_created(self, run: RunState, fn: Function[typing.Any]) -> None:
        self.request_slice(run)

    def request_slice(self, run: RunState, *, after_slice: bool = False) -> None:
        self.engine.enqueue(run)

    def on_slice_start(self, run: RunState) -> None:
        """A slice of ``run`` begins executing."""

    def on_slice_end(self, run: RunState) -> None:
        """A slice of ``run`` ended (returned, raised or parked)."""

    def on_run_end(self, run: RunState) -> None:
        """``run`` reached a final status."""

    def fire(self, payload: tuple) -> None:
        """A flow-control timer is due."""

    def finish_timed_out(self, run: RunState) -> bool:
        return False

    def next_work_due(self, timers: typing.Any, cron_timers: set[int]) -> int | None:
        return timers.peek_due()
