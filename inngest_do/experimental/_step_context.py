"""The step tools of the run in progress, without passing ``ctx`` around (as the SDK's
``inngest.experimental.get_step_context``/``set_step_context``/``step``)."""

from __future__ import annotations

import contextlib
import contextvars
import functools
import typing

from ..execution import handler_execution

if typing.TYPE_CHECKING:
    from ..step import Step, StepSync

P = typing.ParamSpec("P")
R = typing.TypeVar("R")

_explicit: contextvars.ContextVar[Step | StepSync] = contextvars.ContextVar("inngest_do_step")


def _current() -> Step | StepSync | None:
    try:
        return _explicit.get()
    except LookupError:
        ex = handler_execution()
        return None if ex is None else ex.ctx.step


def get_step_context() -> Step | StepSync:
    """``ctx.step`` of the function run whose handler is running here (or what
    :func:`set_step_context` set). Raises ``LookupError`` outside of both."""
    step = _current()
    if step is None:
        raise LookupError("no step context: not inside a function run or set_step_context()")
    return step


@contextlib.contextmanager
def set_step_context(step: Step | StepSync) -> typing.Generator[None, None, None]:
    """Make ``step`` what :func:`get_step_context` returns inside the ``with`` block."""
    if _current() is not None:
        raise Exception("Step context already set")  # noqa: TRY002 - the SDK's exact error
    token = _explicit.set(step)
    try:
        yield
    finally:
        _explicit.reset(token)


def step(step_id: str) -> typing.Callable[[typing.Callable[P, R]], typing.Callable[P, R]]:
    """Decorate a function so that, called inside a function run, it runs as
    ``step.run(step_id, ...)`` (memoized, retried); called anywhere else, it is a plain call.
    An async function gives an awaitable either way."""
    if not isinstance(step_id, str) or not step_id:
        raise ValueError("step_id: must be a non-empty string")

    def decorator(func: typing.Callable[P, R]) -> typing.Callable[P, R]:
        @functools.wraps(func)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            body = functools.partial(func, *args, **kwargs)
            current = _current()
            if current is None:
                return body()
            return typing.cast("R", current.run(step_id, body))

        return wrapper

    return decorator
