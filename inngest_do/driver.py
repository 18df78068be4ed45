"""Driving an engine from synchronous code: running what is ready, and moving virtual time.

A :class:`~inngest_do.worker.Worker` runs slices as tasks on its own event loop and fires
timers as the wall clock reaches them. Everything else drives the engine from synchronous
code through a :class:`Driver`: a :class:`~inngest_do.testing.Simulation` (which moves a
virtual clock from timer to timer), a sync handler's async step body, ``send_sync``'s
async middleware hooks. Slices are coroutines, so they run in a private event loop per
thread (entered once per drive, so step bodies may await real asyncio I/O), or inline
when the caller already runs a loop of its own.

The driver owns nothing of the engine's working state: it is handed the clock, the ready
queue and the timer heap (to look at, never to change: :meth:`Driver.attach` hands it the
new ones when the engine rebuilds its state) and the operations it needs (take the next
ready run, run a slice of it, fire what is due, is anything but cron left).
"""

from __future__ import annotations

import asyncio
import atexit
import inspect
import sys
import threading
import typing

from . import loop_entry

if typing.TYPE_CHECKING:
    from .runs import RunState

T = typing.TypeVar("T")

__all__ = ["Driver", "loop_running", "private_loop", "resolve", "run_inline"]


class Clock(typing.Protocol):
    """The engine's clock, as far as driving it goes (a virtual one can be moved)."""

    def now_ms(self) -> int: ...

    def advance_to(self, ms: int) -> None: ...


class Ready(typing.Protocol):
    """The engine's ready queue, as the driver looks at it: is anything in it."""

    def __len__(self) -> int: ...


class Due(typing.Protocol):
    """The engine's timer heap, as the driver looks at it: when the next timer fires."""

    def peek_due(self) -> int | None: ...


#: the horizon of a drive that may move the clock as far as it likes (run_until_idle)
NO_HORIZON: typing.Final[int] = (1 << 63) - 1


class TimerLoop(typing.Protocol):
    """The kernel's TimerLoop, as the driver uses it: the step from timer to timer, and what
    a drive in progress allows a lone sleep (see the engine's ``sleep_fast``)."""

    horizon_ms: int | None
    budget: int
    timers: typing.Any
    ready: typing.Any

    def due_step(self, target_ms: int, fire_due: typing.Callable[[int], int]) -> bool: ...


class Driver:
    """Runs an engine's ready slices and its due timers from synchronous code.

    While a virtual-time drive is in progress (:meth:`run_until`, :meth:`run_until_idle`),
    ``timer_loop.horizon_ms`` says how far it may move the clock and ``timer_loop.budget`` how
    many timer instants it may still take: a sleep that nothing else could interleave with
    then ends inside its own slice (the engine's ``sleep_fast``) and counts as one instant,
    exactly as if it had parked and its timer had fired. Outside such a drive (a plain
    drain, a Worker, a wall clock) the horizon is None and every sleep parks.
    """

    def __init__(self, *, clock: Clock, ready: Ready, timers: Due,
                 pop_ready: typing.Callable[[], RunState | None],
                 run_slice: typing.Callable[[RunState], typing.Awaitable[None]],
                 fire_due: typing.Callable[[int], int],
                 has_work: typing.Callable[[], bool],
                 sync_functions: typing.Callable[[], None],
                 clock_moved: typing.Callable[[], None],
                 timer_loop: TimerLoop | None = None) -> None:
        """``ready``: the ready queue; ``timers``: the timer heap; ``pop_ready``: take the
        next ready run (None when the one taken no longer needs a slice); ``run_slice``:
        execute a slice of it; ``fire_due(now_ms)``: fire every timer due by then;
        ``has_work``: anything left but cron schedules; ``sync_functions``: serve functions
        created since (a cron function created after the start ticks too);
        ``clock_moved``: the virtual clock moved (time-based state may expire);
        ``timer_loop``: told each virtual-time drive's horizon (None: sleeps always park)."""
        self.clock = clock
        self.ready = ready
        self.timers = timers
        self.timer_loop = timer_loop
        #: may sleeps end inside their slice during virtual-time drives (the engine turns it
        #: off where a gap could be seen: a store that commits, retention pruning)
        self.skip_sleeps = timer_loop is not None and bool(getattr(clock, "is_virtual", False))
        self._pop_ready = pop_ready
        self._run_slice = run_slice
        self._fire_due = fire_due
        self._has_work = has_work
        self._sync_functions = sync_functions
        self._clock_moved = clock_moved
        #: slices one drain may run (a Simulation's bound); None: no bound
        self.drain_limit: int | None = None
        #: the error raised when a drain reaches ``drain_limit`` (given the count)
        self.busy_error: typing.Callable[[int], Exception] = lambda n: RuntimeError(
            f"inngest_do: still busy after {n} slices at one instant")

    def attach(self, ready: Ready, timers: Due) -> None:
        """Drive these from now on (the engine rebuilt its working state)."""
        self.ready = ready
        self.timers = timers
        if self.timer_loop is not None:
            self.timer_loop.ready = ready
            self.timer_loop.timers = timers

    def _open_horizon(self, horizon_ms: int, budget: int) -> tuple[int | None, int]:
        """Let sleeps end in their slice up to ``horizon_ms``, ``budget`` instants at most;
        returns what to restore (a drive inside a drive: a handler calling advance)."""
        timer_loop = self.timer_loop
        if timer_loop is None:
            return (None, 0)
        saved = (timer_loop.horizon_ms, timer_loop.budget)
        if self.skip_sleeps:
            timer_loop.horizon_ms = horizon_ms
            timer_loop.budget = budget
        return saved

    def _close_horizon(self, saved: tuple[int | None, int]) -> None:
        """Restore what :meth:`_open_horizon` saved."""
        if self.timer_loop is not None:
            self.timer_loop.horizon_ms, self.timer_loop.budget = saved

    # running what is ready -------------------------------------------------------------------
    def drain(self) -> int:
        """Execute ready slices one after another until none is left; returns how many ran.

        Slices run inside the thread's private event loop (entered once for the whole
        drain), so step bodies and middleware may await real asyncio I/O.
        """
        if not self.ready:
            return 0  # no loop entry when there is nothing to run
        return drive(self.drain_async())

    async def drain_async(self) -> int:
        """:meth:`drain` from inside an event loop."""
        count = total = 0
        pop_ready, run_slice = self._pop_ready, self._run_slice
        timer_loop = self.timer_loop
        while self.ready:  # read each time: a rebuild under a slice attaches a new queue
            run = pop_ready()
            if run is not None:
                count = self._count(count)
                total += 1
                if timer_loop is None:
                    await run_slice(run)
                    continue
                budget = timer_loop.budget
                await run_slice(run)
                if timer_loop.budget != budget:
                    # A sleep ended inside that slice: it went on at a later instant, as
                    # the first slice of that instant's drain (the bound is per instant).
                    count = 1
        return total

    def _count(self, count: int) -> int:
        if self.drain_limit is not None and count >= self.drain_limit:
            raise self.busy_error(count)
        return count + 1

    # moving virtual time ---------------------------------------------------------------------
    def run_until(self, target_ms: int) -> None:
        """Virtual clocks: run everything due up to ``target_ms`` in time order, then set
        the clock to ``target_ms``. The private loop is entered once for all of it."""
        self._sync_functions()  # a cron function created after the Simulation ticks too
        due = self.timers.peek_due()
        if self.ready or (due is not None and due <= target_ms):
            drive(self._run_until_async(target_ms))
        if target_ms > self.clock.now_ms():
            self.clock.advance_to(target_ms)
            self._clock_moved()  # as the clock moves, limiter keys expire

    def run_until_idle(self, max_iterations: int) -> bool:
        """Virtual clocks: run from timer to timer until only cron schedules remain; False if
        ``max_iterations`` timer instants were not enough."""
        self._sync_functions()
        return drive(self._run_until_idle_async(max_iterations))

    async def _run_until_idle_async(self, max_iterations: int) -> bool:
        # Each timer instant takes one from the budget, and so does each sleep that ends
        # in its own slice (it stands for the instant its timer would have fired at).
        saved = self._open_horizon(NO_HORIZON, min(max_iterations, sys.maxsize))
        timer_loop = self.timer_loop if self.skip_sleeps else None
        done = 0
        try:
            await self.drain_async()
            while self._has_work():
                if timer_loop is not None:
                    done = max_iterations - timer_loop.budget
                if done >= max_iterations:
                    return False
                done += 1
                if timer_loop is not None:
                    timer_loop.budget -= 1
                self._due_step(max(self.timers.peek_due() or 0, self.clock.now_ms()))
                await self.drain_async()
            return True
        finally:
            self._close_horizon(saved)

    async def _run_until_async(self, target_ms: int) -> None:
        saved = self._open_horizon(min(target_ms, NO_HORIZON), sys.maxsize)
        try:
            await self.drain_async()
            while self._due_step(target_ms):
                await self.drain_async()
        finally:
            self._close_horizon(saved)

    def _due_step(self, target_ms: int) -> bool:
        """Move the clock to the next timer due by ``target_ms`` and fire what is due then;
        False when none is."""
        if self.timer_loop is not None:  # the same steps, in the kernel
            return self.timer_loop.due_step(target_ms, self._fire_due)
        if self.ready:
            return True
        due = self.timers.peek_due()
        if due is None or due > target_ms:
            return False
        if due > self.clock.now_ms():
            self.clock.advance_to(due)
        self._fire_due(self.clock.now_ms())
        return True


# event loops ----------------------------------------------------------------------------------
def drive(coro: typing.Coroutine[typing.Any, typing.Any, T]) -> T:
    """Run an engine coroutine from synchronous code: in this thread's private loop, or
    inline when called inside a caller's running loop (real I/O then needs a Worker)."""
    if loop_running():
        return typing.cast(T, run_inline(coro))
    return loop_entry.run(private_loop(), coro)  # run_until_complete, without its set-up


def resolve(awaitable: typing.Awaitable[typing.Any]) -> typing.Any:
    """Run a fresh ``awaitable`` to completion from synchronous code (a sync handler's
    async step body, an async hook called from sync code).

    With no loop running in this thread it runs in this thread's private loop; inside a
    running loop (a Simulation's, while a sync handler runs) it runs on a helper thread
    with a loop of its own. Either way it may await real asyncio I/O.
    """
    if not loop_running():
        return private_loop().run_until_complete(_ensure(awaitable))
    box: list[typing.Any] = []

    def target() -> None:
        try:
            box.append((True, asyncio.run(_ensure(awaitable))))
        except BaseException as err:  # noqa: BLE001 - re-raised in the caller's thread
            box.append((False, err))

    helper = threading.Thread(target=target, name="inngest_do-resolve")
    helper.start()
    helper.join()
    ok, value = box[0]
    if ok:
        return value
    raise value


def run_inline(awaitable: typing.Awaitable[typing.Any]) -> typing.Any:
    """Run ``awaitable`` with no event loop: fine until it awaits real I/O."""
    gen = awaitable.__await__()
    try:
        gen.send(None)
    except StopIteration as stop:
        return stop.value
    gen.close()
    raise RuntimeError(
        "inngest_do: a step awaited real I/O while a Simulation was driven from inside a "
        "running event loop; drive it from synchronous code, or use inngest_do.Worker"
    )


_LOOPS = threading.local()
_ALL_LOOPS: list[asyncio.AbstractEventLoop] = []


def private_loop() -> asyncio.AbstractEventLoop:
    """This thread's private event loop, shared by every engine (one per thread, closed at
    exit), used to drive slices from synchronous code."""
    loop = getattr(_LOOPS, "loop", None)
    if loop is None or loop.is_closed():
        loop = _LOOPS.loop = asyncio.new_event_loop()
        _ALL_LOOPS.append(loop)
    return loop


@atexit.register
def _close_loops() -> None:
    for loop in _ALL_LOOPS:
        if not loop.is_closed() and not loop.is_running():
            loop.close()


def loop_running() -> bool:
    """True when this thread is inside a running event loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


async def _wrap(awaitable: typing.Awaitable[typing.Any]) -> typing.Any:
    return await awaitable


def _ensure(awaitable: typing.Any) -> typing.Coroutine:
    return awaitable if inspect.iscoroutine(awaitable) else _wrap(awaitable)
