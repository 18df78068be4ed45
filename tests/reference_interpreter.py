"""A reference model of durable-function runs, written from SPEC.md section 2 (not from the
engine), for the property tests in ``test_engine_properties.py``.

A generated function is a list of operations run in order by its handler:

* :class:`RunOp` -- ``step.run``: the body fails its first ``failures`` attempts, then returns
  ``"<name>-ok"``; a ``non_retriable`` body raises ``NonRetriableError`` at once;
  ``catch`` makes the handler catch the ``StepError`` and go on with ``"caught:<message>"``.
* :class:`SleepOp` -- ``step.sleep`` for whole seconds.
* :class:`WaitOp` -- ``step.wait_for_event`` for an external event, optionally matching the
  run's ``k`` (``if_exp``); gives the event's ``j`` or None.
* :class:`SendOp` -- ``step.send_event`` of one event to a sink function; gives ``len(ids)``.
* :class:`RaiseOp` -- code between steps that raises ``failures`` times, then goes on.

An *exact* function fails with ``RetryAfterError(delay)`` so every time in it is known; a
non-exact one fails with plain errors (backoff plus a random jitter), so only what does not
depend on time is predicted (such functions never wait for events).

The rules used (SPEC section 2): steps run in zero virtual time; a step body that fails is
retried up to ``retries`` times (``retries + 1`` attempts), after ``RetryAfterError``'s delay
clamped to 1 s .. 24 h; after the last attempt the handler gets a ``StepError`` (catchable);
``NonRetriableError`` is not retried and fails the run (the step is not recorded); code outside steps that raises is retried the same way
with a counter that starts again after each step, and fails the run when attempts run out;
a wait returns the first matching event arriving strictly after it starts and strictly before
its timeout, else None at the timeout; a memoized step never runs again; an id used again
in one run is suffixed ``id:1``, ``id:2``...
"""

from __future__ import annotations

import dataclasses

SEC = 1_000
RETRY_AFTER_MIN_MS = SEC
RETRY_AFTER_MAX_MS = 24 * 3_600 * SEC
DEFAULT_RETRIES = 4


@dataclasses.dataclass(frozen=True)
class RunOp:
    name: str
    failures: int = 0
    non_retriable: bool = False
    catch: bool = False
    retry_after_ms: int = SEC  # exact functions: the RetryAfterError delay of each failure


@dataclasses.dataclass(frozen=True)
class SleepOp:
    name: str
    seconds: int


@dataclasses.dataclass(frozen=True)
class WaitOp:
    name: str
    event: str
    timeout_s: int
    match_k: bool = False  # if_exp "async.data.k == event.data.k"


@dataclasses.dataclass(frozen=True)
class SendOp:
    name: str


@dataclasses.dataclass(frozen=True)
class RaiseOp:
    failures: int
    retry_after_ms: int = SEC


Op = RunOp | SleepOp | WaitOp | SendOp | RaiseOp


@dataclasses.dataclass(frozen=True)
class FunctionSpec:
    fn_id: str
    ops: tuple[Op, ...]
    retries: int | None = None  # None: the default (4)
    exact: bool = True  # failures are RetryAfterError (exact times) or plain errors
    sync: bool = False  # a ContextSync handler

    @property
    def attempts(self) -> int:
        return (DEFAULT_RETRIES if self.retries is None else self.retries) + 1

    @property
    def error_type(self) -> str:
        return "RetryAfterError" if self.exact else "RuntimeError"


@dataclasses.dataclass(frozen=True)
class Trigger:
    fn: int  # index into the functions
    at_s: int  # whole seconds after the start
    k: int


@dataclasses.dataclass(frozen=True)
class External:
    """An event sent by the test at ``at_ms`` (never a whole second: see ``event_time``)."""

    name: str
    at_ms: int
    k: int
    j: int  # its serial number, unique


def event_time(at_s: int, j: int) -> int:
    """External event j arrives at a millisecond offset no run-internal time can have: runs
    start on whole seconds and every delay is whole seconds, so a run is only ever at offset 0
    or at the offset of the event that last resumed it. No ties, so no ordering ambiguity."""
    return at_s * SEC + 1 + j


@dataclasses.dataclass
class Outcome:
    """What the model predicts for one run."""

    status: str  # "Completed" | "Failed"
    output: list | None
    error_type: str | None
    error_message: str | None
    end_ms: int | None  # relative to the start; None when not exact
    body_calls: dict[int, int]  # op position -> how many times its body ran
    steps: list[str]  # ids of the recorded steps, in order (with :n suffixes)
    sends: int  # events sent by send steps


def clamp_retry(ms: int) -> int:
    return max(RETRY_AFTER_MIN_MS, min(RETRY_AFTER_MAX_MS, ms))


def predict_run(fn: FunctionSpec, trigger: Trigger, externals: list[External]) -> Outcome:
    t: int | None = trigger.at_s * SEC
    attempts = fn.attempts
    out: list = []
    calls: dict[int, int] = {}
    steps: list[str] = []
    seen: dict[str, int] = {}
    sends = 0

    def full_id(name: str) -> str:
        n = seen.get(name, 0)
        seen[name] = n + 1
        return name if n == 0 else f"{name}:{n}"

    def wait_delays(n_failed: int, retry_after_ms: int) -> None:
        nonlocal t
        if t is not None:
            t = t + n_failed * clamp_retry(retry_after_ms) if fn.exact else None

    def failed(err_type: str, message: str) -> Outcome:
        return Outcome("Failed", None, err_type, message, t, calls, steps, sends)

    for pos, op in enumerate(fn.ops):
        if isinstance(op, RaiseOp):
            if op.failures >= attempts:
                wait_delays(attempts - 1, op.retry_after_ms)
                return failed(fn.error_type, f"raise@{pos}#{attempts}")
            wait_delays(op.failures, op.retry_after_ms)
        elif isinstance(op, RunOp):
            sid = full_id(op.name)
            if op.non_retriable:
                # NonRetriableError goes up to the function (as in the SDK): the step is
                # never recorded and the run fails at once
                calls[pos] = 1
                return failed("NonRetriableError", f"{op.name}#nr")
            steps.append(sid)
            if op.failures < attempts:
                calls[pos] = op.failures + 1
                wait_delays(op.failures, op.retry_after_ms)
                out.append(f"{op.name}-ok")
                continue
            calls[pos] = attempts
            wait_delays(attempts - 1, op.retry_after_ms)
            message = f"{op.name}#{attempts}"
            if not op.catch:
                return failed(fn.error_type, message)
            out.append(f"caught:{message}")
        elif isinstance(op, SleepOp):
            steps.append(full_id(op.name))
            if t is not None:
                t += op.seconds * SEC
            out.append(None)
        elif isinstance(op, WaitOp):
            if t is None:
                raise ValueError("a non-exact function cannot wait: its times are unknown")
            steps.append(full_id(op.name))
            deadline = t + op.timeout_s * SEC
            start = t
            hits = [e for e in externals
                    if e.name == op.event and start < e.at_ms < deadline
                    and (not op.match_k or e.k == trigger.k)]
            if hits:
                first = min(hits, key=lambda e: e.at_ms)
                t = first.at_ms
                out.append(first.j)
            else:
                t = deadline
                out.append(None)
        elif isinstance(op, SendOp):
            steps.append(full_id(op.name))
            sends += 1
            out.append(1)
        else:  # pragma: no cover - the generator only makes the types above
            raise TypeError(op)
    return Outcome("Completed", out, None, None, t, calls, steps, sends)


def predict(functions: list[FunctionSpec], triggers: list[Trigger],
            externals: list[External]) -> list[Outcome]:
    """One outcome per trigger, in the order of ``triggers``."""
    return [predict_run(functions[tr.fn], tr, externals) for tr in triggers]


def normalize_ops(ops: list[Op], attempts: int) -> tuple[Op, ...]:
    """Drop RaiseOps where the spec leaves the attempt budget ambiguous: right before a step
    that itself fails, right after a caught failure, or next to another RaiseOp."""
    kept: list[Op] = []
    for i, op in enumerate(ops):
        if isinstance(op, RaiseOp):
            nxt = ops[i + 1] if i + 1 < len(ops) else None
            prev = kept[-1] if kept else None
            if isinstance(nxt, RunOp) and (nxt.failures > 0 or nxt.non_retriable):
                continue
            if isinstance(prev, RaiseOp) or isinstance(nxt, RaiseOp):
                continue
            if isinstance(prev, RunOp) and prev.failures >= attempts:
                continue
        kept.append(op)
    return tuple(kept)
