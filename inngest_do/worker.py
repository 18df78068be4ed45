"""The worker: runs a client's functions on the wall clock inside an asyncio application.

>>> async with inngest_do.Worker(client):
...     await client.send(inngest_do.Event(name="order/created", data={"id": 1}))
...     ...  # runs start at once, sleeps fire on the wall clock

Or, as a program's main job, ``Worker(client).run()`` (blocking; stops cleanly on SIGINT and
SIGTERM), which is what ``inngest-do run APP`` does.

How it works. One loop task waits until there is something to do: work arrived (the engine
calls ``engine.on_work``), the next timer is due, a slice ended, or (with the SQLite store)
``poll_interval`` passed. It then fires due timers, starts each ready run's next slice as an
asyncio task (at most ``max_concurrency`` at once), and every ``poll_interval`` asks the store
to ``flush`` (apply its redo log, so other processes reading the file see recent work) and
takes the events other processes sent from the store's inbox. Slices of different runs
overlap whenever a step body awaits real I/O.

Threads. The engine's state is guarded by ``engine.lock``: the loop holds it while it touches
the engine and each async slice holds it for every stretch of handler code between two awaits
(it is released while a step body awaits I/O), so ``client.send_sync`` from another thread (a
sync web endpoint, say) is safe. Sync handlers (``def fn(ctx: ContextSync)``) run off the
loop, in a bounded thread pool (``sync_workers``), without the lock: only their calls into the
engine (a step starting, its result being recorded, a sleep being scheduled) take it, briefly.
So sync handlers and their step bodies run truly concurrently, and two of them that wait on
each other (or on the loop) cannot deadlock.

Poison. Whatever a handler or step body raises -- ``SystemExit``, ``KeyboardInterrupt``, a
``CancelledError`` of its own, ``GeneratorExit`` -- is a failed attempt of that step or run,
retried as usual; it never reaches the loop. SIGINT and SIGTERM still stop :meth:`run`: they
are handled by the loop, never raised inside user code.

Stopping. :meth:`Worker.stop` stops taking work, waits up to ``stop_timeout`` seconds for the
slices in flight, cancels the rest (their current step runs again later: nothing it did was
recorded), commits and closes the store. The client keeps its engine, so queries still answer
and a new worker resumes where this one stopped.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import logging
import signal
import threading
import typing

from .event import Event
from .storage.base import StoreError

if typing.TYPE_CHECKING:
    from typing_extensions import Self

    from .client import Inngest
    from .engine import Engine
    from .function import Function
    from .runs import RunState, TraceEntry
    from .storage import Store

__all__ = ["Worker"]

_log = logging.getLogger("inngest_do.worker")

#: the longest the loop sleeps without looking at the clock (wall-clock jumps)
_MAX_SLEEP = 1.0


class _Guarded:
    """Drive ``coro`` holding ``lock`` for each stretch between two awaits of real I/O."""

    __slots__ = ("coro", "lock")

    def __init__(self, coro: typing.Coroutine, lock: typing.Any) -> None:
        self.coro, self.lock = coro, lock

    def __await__(self) -> typing.Generator[typing.Any, typing.Any, typing.Any]:
        coro, lock = self.coro, self.lock
        send: typing.Any = None
        exc: BaseException | None = None
        while True:
            with lock:
                try:
                    y = coro.throw(exc) if exc is not None else coro.send(send)
                except StopIteration as stop:
                    return stop.value
            exc = None
            try:
                send = yield y
            except BaseException as err:  # noqa: BLE001 - forwarded into the slice
                exc, send = err, None


class Worker:
    """Runs ``client``'s functions on the wall clock (see the module docstring).

    Args:
        client: the app whose functions run.
        store: a store (path or object) to use instead of the client's own ``store=``.
        max_concurrency: at most this many run slices execute at once.
        sync_workers: threads that run sync handlers (``def fn(ctx: ContextSync)``).
        poll_interval: seconds between looks at the store's inbox for events sent by other
            processes (``inngest-do send``).
        stop_timeout: seconds :meth:`stop` waits for slices in flight before cancelling them.
        on_trace: called on the loop with each new trace entry (run started, step completed,
            run failed...), e.g. to print progress.
    """

    def __init__(self, client: Inngest, *, store: Store | str | None = None,
                 max_concurrency: int = 100, sync_workers: int = 8,
                 poll_interval: float = 0.05, stop_timeout: float = 30.0,
                 on_trace: typing.Callable[[TraceEntry], None] | None = None,
                 functions: list[Function[typing.Any]] | None = None) -> None:
        if max_concurrency < 1:
            raise ValueError("max_concurrency: must be at least 1")
        if sync_workers < 1:
            raise ValueError("sync_workers: must be at least 1")
        self.sync_workers = sync_workers
        self._pool: concurrent.futures.ThreadPoolExecutor | None = None
        if poll_interval <= 0:
            raise ValueError("poll_interval: must be positive")
        if functions is not None and not isinstance(functions, (list, tuple)):
            raise TypeError(
                f"functions: expected a list of Functions, got {type(functions).__name__}")
        self.client = client
        # None: every function created on the client (also ones created later)
        self.functions = None if functions is None else list(functions)
        self.max_concurrency = max_concurrency
        self.poll_interval = poll_interval
        self.stop_timeout = stop_timeout
        self.on_trace = on_trace
        self._store_spec = store
        self._engine: Engine | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread = 0
        self._wake: asyncio.Event | None = None
        self._main: asyncio.Task | None = None
        self._tasks: dict[str, asyncio.Task] = {}  # run id -> its slice in flight
        self._deferred: set[str] = set()  # ready again while a slice of it was in flight
        self._stopping = False
        self._pending_trace: collections.deque[TraceEntry] = collections.deque()

    # life cycle ----------------------------------------------------------------------------
    @property
    def engine(self) -> Engine:
        if self._engine is None:
            raise RuntimeError("Worker: not started")
        return self._engine

    @property
    def running(self) -> bool:
        return self._main is not None and not self._main.done()

    async def start(self) -> None:
        """Recover the store, then run functions until :meth:`stop`. Returns at once."""
        if self._main is not None:
            raise RuntimeError("Worker: already started")
        self._loop = asyncio.get_running_loop()
        self._thread = threading.get_ident()
        self._wake = asyncio.Event()
        self._stopping = False
        engine = self._engine = self._install_engine()
        # Commits that fsync are shared by the slices that reach one in the same loop turn.
        engine.group_commit = getattr(engine.store, "synchronous", None) == "FULL"
        with engine.lock:
            engine.sync_functions()  # cron schedules of functions created since
            engine.on_work = self._on_work
            self._pool = concurrent.futures.ThreadPoolExecutor(
                self.sync_workers, thread_name_prefix="inngest_do-sync")
            loop, pool = self._loop, self._pool
            engine.sync_runner = lambda fn, *args: loop.run_in_executor(pool, fn, *args)
        self._pending_trace.clear()
        engine.trace_listener = self._pending_trace.append if self.on_trace else None
        self._main = self._loop.create_task(self._run_loop(), name="inngest_do.worker")

    def _install_engine(self) -> Engine:
        """The client's wall-clock engine, or a new one (replacing a simulation's)."""
        from .engine import Engine
        from .kernel import RealClock
        from .storage import open_store

        client = self.client
        old = client._engine
        if old is not None and self._store_spec is None and not old.clock.is_virtual:
            if self.functions is not None:
                old.serve(self.functions)
            return old
        if old is not None:
            old.store.close()
        store = (client.new_store() if self._store_spec is None
                 else open_store(self._store_spec))
        # seed=None: a wall-clock engine draws its own seed, so processes never share an id
        # sequence.
        engine = Engine(client, clock=RealClock(), store=store, seed=None,
                        functions=self.functions)
        client._engine = engine
        return engine

    async def stop(self, timeout: float | None = None) -> None:
        """Stop taking work, let slices in flight finish (up to ``timeout``, default
        ``stop_timeout``; the rest are cancelled and run again later), commit and close."""
        if self._main is None:
            return
        main, self._main = self._main, None
        self._stopping = True
        if self._wake is not None:
            self._wake.set()
        try:
            await main
        finally:
            await self._drain_tasks(self.stop_timeout if timeout is None else timeout)
            engine = self.engine
            with engine.lock:
                engine.on_work = None
                engine.sync_runner = None
                engine.group_commit = False
                self._report()
                engine.store.commit()
                engine.store.close()
            if self._pool is not None:
                self._pool.shutdown(wait=False)
                self._pool = None

    async def _drain_tasks(self, timeout: float) -> None:
        tasks = list(self._tasks.values())
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=max(timeout, 0))
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending)
        engine = self.engine
        with engine.lock:  # cancelled slices are ready again, for a later worker
            for run_id in self._deferred:
                run = engine.runs.get(run_id)
                if run is not None:
                    engine.enqueue(run)
            self._deferred.clear()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def run(self) -> None:
        """Run until SIGINT or SIGTERM (or until the loop fails), then stop cleanly."""
        asyncio.run(self._serve())

    async def _serve(self) -> None:
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        installed = []
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                loop.add_signal_handler(sig, stop.set)
                installed.append(sig)
            except (ValueError, RuntimeError, NotImplementedError):  # not the main thread
                pass
        await self.start()
        try:
            waiter = loop.create_task(stop.wait())
            await asyncio.wait([waiter, typing.cast(asyncio.Task, self._main)],
                               return_when=asyncio.FIRST_COMPLETED)
            waiter.cancel()
        finally:
            for sig in installed:
                loop.remove_signal_handler(sig)
            await self.stop()

    # the loop ------------------------------------------------------------------------------
    def _on_work(self) -> None:
        wake, loop = self._wake, self._loop
        if wake is None or loop is None:
            return
        if threading.get_ident() == self._thread:
            wake.set()
        else:
            loop.call_soon_threadsafe(wake.set)

    async def _run_loop(self) -> None:
        engine = self.engine
        loop = typing.cast(asyncio.AbstractEventLoop, self._loop)
        wake = typing.cast(asyncio.Event, self._wake)
        take_inbox = getattr(engine.store, "take_inbox", None)
        flush = getattr(engine.store, "flush", None)
        polls = take_inbox is not None or flush is not None
        next_poll = loop.time()
        while not self._stopping:
            wake.clear()
            with engine.lock:
                try:
                    if polls and loop.time() >= next_poll:
                        if flush is not None:  # readers in other processes see recent work
                            flush()
                        if take_inbox is not None:
                            self._pull_inbox(engine, take_inbox)
                        next_poll = loop.time() + self.poll_interval
                    # On the wall clock a timer is due once the clock has passed its
                    # millisecond: a sleep's due time is the floored millisecond it started
                    # in plus its duration, so firing within that millisecond could be up to
                    # 1 ms early by datetime.now(). A virtual clock (the dev server's) is
                    # exact.
                    lag = 0 if engine.clock.is_virtual else 1
                    engine.fire_due(engine.now_ms() - lag)
                except StoreError as err:
                    # The engine went back to the store's last commit; try again after a
                    # poll interval (a full disk may have room by then).
                    _log.error("inngest_do: %s; retrying in %.3g s", err, self.poll_interval)
                    next_poll = loop.time() + self.poll_interval
                    failed = True
                else:
                    failed = False
                    self._dispatch(engine, loop)
                self._report()
                timeout = _MAX_SLEEP
                due = engine.next_due()
                if due is not None:
                    timeout = min(timeout, max((due + lag - engine.now_ms()) / 1000, 0.001))
            if polls:
                timeout = min(timeout, max(next_poll - loop.time(), 0.0))
            if failed:  # overdue timers must not make it retry at once, in a loop
                timeout = self.poll_interval
                wake.clear()
            if not wake.is_set():
                try:
                    await asyncio.wait_for(wake.wait(), timeout)
                except asyncio.TimeoutError:
                    pass

    def _pull_inbox(self, engine: Engine, take_inbox: typing.Callable[[], list]) -> None:
        consume = engine.store.consume_inbox  # type: ignore[attr-defined]
        for seq, payload in take_inbox():
            try:
                event = Event.from_payload(payload)
            except ValueError as err:
                _log.error("inngest_do: dropped invalid event #%s from the inbox: %s", seq, err)
                consume(seq)
                engine.commit()
                continue
            consume(seq)  # goes with the commit that records the event as accepted
            engine.accept([event])

    def _dispatch(self, engine: Engine, loop: asyncio.AbstractEventLoop) -> None:
        ready, runs, tasks = engine.ready, engine.runs, self._tasks
        while ready and len(tasks) < self.max_concurrency:
            run = runs.get(ready.pop())
            if run is None:
                continue
            run.queued = False
            if run.status.is_final:
                continue
            if run.id in tasks:  # one slice of a run at a time: this one after it
                self._deferred.add(run.id)
                continue
            tasks[run.id] = loop.create_task(self._slice(engine, run))

    async def _slice(self, engine: Engine, run: RunState) -> None:
        cancelled = False
        try:
            await _Guarded(engine.slice(run), engine.lock)
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                cancelled = True  # stop() is cancelling it: it runs again later
            else:
                _log.exception("inngest_do: internal error in a slice of run %s", run.id)
        except StoreError as err:  # the run goes on from the store's last commit
            _log.error("inngest_do: run %s: %s", run.id, err)
        except BaseException:  # noqa: BLE001 - nothing in a slice may stop the worker
            _log.exception("inngest_do: internal error in a slice of run %s", run.id)
        finally:
            del self._tasks[run.id]
            if cancelled:
                self._deferred.add(run.id)
            elif run.id in self._deferred and not self._stopping:
                self._deferred.discard(run.id)
                with engine.lock:
                    engine.enqueue(run)
            if self._wake is not None:
                self._wake.set()

    def _report(self) -> None:
        if self.on_trace is None:
            return
        pending = self._pending_trace
        while pending:
            entry = pending.popleft()
            try:
                self.on_trace(entry)
            except Exception:  # noqa: BLE001 - a listener's error must not stop the worker
                _log.exception("inngest_do: on_trace raised")
