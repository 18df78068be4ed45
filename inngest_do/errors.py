"""Errors: the ones user code raises or catches (SDK-compatible) and the engine's own.

User-facing names and constructors match the Inngest Python SDK (``inngest._internal.errors``):
:class:`NonRetriableError`, :class:`RetryAfterError`, :class:`StepError`, all subclasses of
:class:`Error`. The engine's internal errors are subclasses of :class:`Error` as well, so
:func:`is_retriable` and :func:`describe_error` treat them uniformly.

Every error here survives :mod:`pickle` with its attributes, so it can cross process
boundaries.
"""

from __future__ import annotations

import datetime
import enum
import traceback
from collections.abc import Mapping
from typing import Any

from inngest_do.durations import DAY_MS, SECOND_MS, format_ms, to_ms, until_ms

__all__ = [
    "RETRY_AFTER_MAX_MS",
    "RETRY_AFTER_MIN_MS",
    "CodedError",
    "Error",
    "ErrorCode",
    "FunctionConfigInvalidError",
    "FunctionNotFoundError",
    "InvokeTimeoutError",
    "NonDeterminismError",
    "NonRetriableError",
    "OutputUnserializableError",
    "ReportedError",
    "RetryAfterError",
    "RunCancelledError",
    "StepError",
    "StepNestedError",
    "StepUnexpectedError",
    "describe_error",
    "get_traceback",
    "is_quiet",
    "is_retriable",
]

#: Bounds the engine clamps a :class:`RetryAfterError` delay to.
RETRY_AFTER_MIN_MS = SECOND_MS
RETRY_AFTER_MAX_MS = DAY_MS


class ErrorCode(str, enum.Enum):
    """The SDK's error codes (``inngest._internal.server_lib.ErrorCode``), as ``code`` on every
    error and in failed runs' output. A ``str`` enum: it compares and serializes as its value."""

    ASYNC_UNSUPPORTED = "async_unsupported"
    BODY_INVALID = "body_invalid"
    EVENT_KEY_UNSPECIFIED = "event_key_unspecified"
    FUNCTION_CONFIG_INVALID = "function_config_invalid"
    FUNCTION_NOT_FOUND = "function_not_found"
    HEADER_MISSING = "header_missing"
    NON_RETRIABLE_ERROR = "non_retriable_error"
    OUTPUT_UNSERIALIZABLE = "output_unserializable"
    QUERY_PARAM_MISSING = "query_param_missing"
    REGISTRATION_FAILED = "registration_failed"
    RETRY_AFTER_ERROR = "retry_after_error"
    SEND_EVENT_FAILED = "send_event_failed"
    SERVER_KIND_MISMATCH = "server_kind_mismatch"
    SIGNING_KEY_UNSPECIFIED = "signing_key_unspecified"
    SIG_VERIFICATION_FAILED = "sig_verification_failed"
    STEP_ERRORED = "step_errored"
    STEP_NESTED = "step_nested"
    STEP_UNEXPECTED = "step_unexpected"
    UNKNOWN = "unknown"
    URL_INVALID = "url_invalid"


def _restore(cls: type[Error], args: tuple[Any, ...]) -> Error:
    """Recreate an :class:`Error` without calling its ``__init__`` (see ``Error.__reduce__``)."""
    err = cls.__new__(cls)
    err.args = args
    return err


def get_traceback(err: BaseException) -> str:
    """Return the formatted traceback of ``err`` (just its type and message if never raised)."""
    return "".join(traceback.format_exception(type(err), err, err.__traceback__))


class Error(Exception):
    """Base class of all errors defined by inngest_do."""

    #: The SDK's code for this kind of error (failed runs report it as ``"code"``).
    code: ErrorCode = ErrorCode.UNKNOWN
    #: Whether the engine retries the attempt that raised this error.
    is_retriable: bool = True
    #: Whether :attr:`stack` returns the traceback (``None`` otherwise).
    include_stack: bool = True

    def __init__(self, message: str | None = None) -> None:
        """Create the error; ``message=None`` gives an empty message."""
        if message is None:
            super().__init__()
        else:
            super().__init__(message)

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickle args and attributes without replaying ``__init__``.

        Constructor signatures differ between subclasses (users' own ones included), so
        unpickling must not call them.
        """
        return (_restore, (type(self), self.args), self.__dict__)

    @property
    def message(self) -> str:
        """The error message."""
        return str(self)

    @property
    def name(self) -> str:
        """The error's class name."""
        return type(self).__name__

    @property
    def stack(self) -> str | None:
        """The formatted traceback, or ``None`` for errors that hide it."""
        if not self.include_stack:
            return None
        return get_traceback(self)


class CodedError(Error):
    """An error with a code chosen when it is raised (the SDK's ``CodedError``)."""

    def __init__(self, code: ErrorCode, message: str, *, is_retriable: bool = True) -> None:
        """Args:
        code: The error's :class:`ErrorCode`.
        message: What happened.
        is_retriable: Whether the engine retries the attempt that raised it.
        """
        super().__init__(message)
        self.code = ErrorCode(code)
        self.is_retriable = is_retriable


class NonRetriableError(Error):
    """Raise this (in or out of a step) to fail the step or run at once, without retries."""

    code = ErrorCode.NON_RETRIABLE_ERROR
    is_retriable = False

    def __init__(self, message: str | None = None, quiet: bool = False) -> None:
        """Args:
        message: Error message.
        quiet: Suppress logging of this error.
        """
        super().__init__(message)
        self.quiet = quiet


class RetryAfterError(Error):
    """Raise this to retry the attempt after a delay of your choosing instead of the backoff.

    It still counts as an attempt. The engine clamps the delay to 1 s .. 24 h.

    Unlike the SDK, which converts ``retry_after`` to a wall-clock ``datetime`` at construction,
    this class keeps what it was given, because the engine runs on its own (possibly virtual)
    clock:

    * :attr:`retry_after` is the value passed in, unchanged (``int`` ms, ``timedelta`` or
      ``datetime``);
    * :attr:`retry_after_ms` is the relative delay in milliseconds for ``int``/``timedelta``
      input, ``None`` for a ``datetime``;
    * :attr:`retry_at` is the absolute ``datetime`` for ``datetime`` input, ``None`` otherwise
      (naive datetimes are taken as UTC).

    Use :meth:`delay_ms` to resolve the clamped delay against the engine's current time.
    """

    code = ErrorCode.RETRY_AFTER_ERROR

    def __init__(
        self,
        message: str | None,
        retry_after: int | datetime.timedelta | datetime.datetime,
        quiet: bool = False,
    ) -> None:
        """Args:
        message: Error message.
        retry_after: Delay in milliseconds, a ``timedelta``, or the ``datetime`` to retry at.
        quiet: Suppress logging of this error.

        Raises:
            TypeError: ``retry_after`` has another type.
            ValueError: ``retry_after`` is a negative delay.
        """
        super().__init__(message)
        self.quiet = quiet
        self.retry_after_ms: int | None = None
        self.retry_at: datetime.datetime | None = None
        if isinstance(retry_after, datetime.datetime):
            self.retry_at = retry_after
        elif isinstance(retry_after, (int, datetime.timedelta)) and not isinstance(
            retry_after, bool
        ):
            self.retry_after_ms = to_ms(retry_after, what="RetryAfterError.retry_after", min_ms=0)
        else:
            raise TypeError(
                "RetryAfterError.retry_after: expected int milliseconds, datetime.timedelta or "
                f"datetime.datetime, got {type(retry_after).__name__}"
            )
        self._retry_after = retry_after

    @property
    def retry_after(self) -> int | datetime.timedelta | datetime.datetime:
        """The ``retry_after`` value exactly as it was passed to the constructor."""
        return self._retry_after

    def delay_ms(self, now_ms: int) -> int:
        """The delay before the retry, relative to ``now_ms`` (epoch ms), clamped to 1 s..24 h."""
        if self.retry_after_ms is not None:
            delay = self.retry_after_ms
        else:
            assert self.retry_at is not None
            delay = until_ms(self.retry_at) - now_ms
        return max(RETRY_AFTER_MIN_MS, min(RETRY_AFTER_MAX_MS, delay))


class ReportedError(Error):
    """An error that stands for another one known only as data: :attr:`name`, :attr:`message`
    and :attr:`stack` are the original error's, not this object's.

    The shared base of :class:`StepError` (a memoized userland error) and the dev server's
    ``RemoteError`` (an error a remote app reported over HTTP); neither can rebuild the
    original exception class, so both report what they were told.
    """

    def __init__(self, message: str, name: str, stack: str | None) -> None:
        """Args:
        message: The original error's message.
        name: The original error's name (class name).
        stack: The original error's stack trace, ``None`` when unknown.
        """
        super().__init__(message)
        self._message = message
        self._name = name
        self._stack = stack

    @property
    def message(self) -> str:
        """The original error's message."""
        return self._message

    @property
    def name(self) -> str:
        """The original error's name."""
        return self._name

    @property
    def stack(self) -> str | None:
        """The original error's stack trace (``None`` when unknown)."""
        return self._stack


class StepError(ReportedError):
    """Raised inside the handler when a step failed for good (after exhausting its attempts).

    It wraps the userland error, whose original class can't be restored from memoized data:
    :attr:`name`, :attr:`message` and :attr:`stack` are the original error's. Constructed as
    the SDK's: ``StepError(message, name, stack)``.
    """

    code = ErrorCode.STEP_ERRORED
    is_retriable = False

    def to_dict(self) -> dict[str, str | None]:
        """Describe as ``{"message", "name", "stack"}`` (the inverse of :meth:`from_dict`)."""
        return {"message": self._message, "name": self._name, "stack": self._stack}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> StepError:
        """Rebuild from a ``{"message", "name", "stack"}`` mapping (e.g. a memoized error)."""
        stack = data.get("stack")
        return cls(
            message=str(data.get("message", "")),
            name=str(data.get("name", "Error")),
            stack=None if stack is None else str(stack),
        )


class FunctionConfigInvalidError(Error, ValueError):
    """A function's configuration is invalid (it is a ``ValueError``).

    :attr:`field` names the offending option when known, e.g. ``"concurrency[0].limit"``.
    """

    code = ErrorCode.FUNCTION_CONFIG_INVALID
    is_retriable = False

    def __init__(self, message: str, *, field: str | None = None) -> None:
        """Args:
        message: What is wrong; names the option and field.
        field: The offending option path, if known.
        """
        super().__init__(message)
        self.field = field


class StepNestedError(Error):
    """A step was started while another step's body was running (not supported).

    Build the standard message with :meth:`for_steps`.
    """

    code = ErrorCode.STEP_NESTED
    is_retriable = False

    def __init__(
        self,
        message: str,
        *,
        step_id: str | None = None,
        parent_step_id: str | None = None,
    ) -> None:
        """Args:
        message: What happened.
        step_id: The inner step's id.
        parent_step_id: The id of the step whose body started it.
        """
        super().__init__(message)
        self.step_id = step_id
        self.parent_step_id = parent_step_id

    @classmethod
    def for_steps(cls, step_id: str, parent_step_id: str) -> StepNestedError:
        """The standard error for ``step_id`` started inside ``parent_step_id``'s body."""
        return cls(
            f"Nested steps are not supported: step {step_id!r} was started inside step "
            f"{parent_step_id!r}",
            step_id=step_id,
            parent_step_id=parent_step_id,
        )


class StepUnexpectedError(Error):
    """``execution="requests"``: a request that targets one planned step met another new
    step (the handler is not deterministic), as the SDK reports it."""

    code = ErrorCode.STEP_UNEXPECTED

    @property
    def stack(self) -> str | None:
        """Always ``None``: the SDK reports this error with a null stack."""
        return None


class NonDeterminismError(Error):
    """Replay diverged from the recorded history: the code changed so a memo no longer fits.

    Build the standard message with :meth:`for_step`.
    """

    code = ErrorCode.STEP_UNEXPECTED
    is_retriable = False

    def __init__(self, message: str, *, step_id: str | None = None) -> None:
        """Args:
        message: What did not fit; should name the step.
        step_id: The step at which the replay diverged.
        """
        super().__init__(message)
        self.step_id = step_id

    @classmethod
    def for_step(cls, step_id: str, detail: str | None = None) -> NonDeterminismError:
        """The standard error for a replay that diverged at ``step_id``.

        ``detail`` says what did not fit, e.g. ``"it was recorded as a sleep"``.
        """
        message = (
            f"Non-deterministic function: at step {step_id!r} the code no longer matches the "
            "steps recorded for this run (did the function change while the run was in flight?)"
        )
        if detail:
            message += f": {detail}"
        return cls(message, step_id=step_id)


class OutputUnserializableError(Error):
    """A step's (or the function's) output is not JSON-serializable.

    Retriable by default (the attempt fails and is retried, since the step body may return
    something else next time); pass ``is_retriable=False`` to fail at once. Build the
    standard message with :meth:`for_output`. Like the SDK's, it reports no stack.
    """

    code = ErrorCode.OUTPUT_UNSERIALIZABLE
    include_stack = False

    def __init__(
        self,
        message: str,
        *,
        step_id: str | None = None,
        is_retriable: bool = True,
    ) -> None:
        """Args:
        message: What is wrong; should name the step.
        step_id: The step whose output was rejected (``None`` for the function's output).
        is_retriable: Whether the engine retries the attempt.
        """
        super().__init__(message)
        self.step_id = step_id
        self.is_retriable = is_retriable

    @classmethod
    def for_output(
        cls,
        step_id: str | None,
        cause: BaseException | str,
        *,
        is_retriable: bool = True,
    ) -> OutputUnserializableError:
        """The standard error naming the step (or the function when ``step_id`` is ``None``)."""
        where = "function's output" if step_id is None else f"output of step {step_id!r}"
        return cls(
            f"The {where} is not JSON-serializable: {cause}",
            step_id=step_id,
            is_retriable=is_retriable,
        )


class InvokeTimeoutError(Error):
    """An invoked function did not finish within the invoke's timeout.

    Build the standard message with :meth:`for_function`.
    """

    is_retriable = False

    def __init__(
        self,
        message: str | None = None,
        *,
        function_id: str | None = None,
        timeout_ms: int | None = None,
    ) -> None:
        """Args:
        message: What happened (a generic message when ``None``).
        function_id: The invoked function's id.
        timeout_ms: The timeout that passed.
        """
        super().__init__(message or "Timed out waiting for the invoked function to finish")
        self.function_id = function_id
        self.timeout_ms = timeout_ms

    @classmethod
    def for_function(cls, function_id: str, timeout_ms: int | None = None) -> InvokeTimeoutError:
        """The standard error for an invoke of ``function_id`` that timed out."""
        within = f" within {format_ms(timeout_ms)}" if timeout_ms is not None else ""
        return cls(
            f"Timed out waiting for invoked function {function_id!r} to finish{within}",
            function_id=function_id,
            timeout_ms=timeout_ms,
        )


class FunctionNotFoundError(Error):
    """No function with the given id is registered (e.g. the target of ``invoke_by_id``).

    Build the standard message with :meth:`for_id`.
    """

    code = ErrorCode.FUNCTION_NOT_FOUND
    is_retriable = False

    def __init__(self, message: str, *, function_id: str | None = None) -> None:
        """Args:
        message: What was not found.
        function_id: The id that was looked up.
        """
        super().__init__(message)
        self.function_id = function_id

    @classmethod
    def for_id(cls, function_id: str, app_id: str | None = None) -> FunctionNotFoundError:
        """The standard error for an unknown ``function_id`` (in ``app_id``, if given)."""
        where = f" in app {app_id!r}" if app_id else ""
        return cls(
            f"Function not found: no function with id {function_id!r}{where}",
            function_id=function_id,
        )


class RunCancelledError(Error):
    """The run was cancelled (by a cancel event, a timeout, singleton or the API)."""

    is_retriable = False

    def __init__(
        self,
        message: str | None = None,
        *,
        run_id: str | None = None,
        reason: str | None = None,
    ) -> None:
        """Args:
        message: What happened (built from ``run_id`` and ``reason`` when ``None``).
        run_id: The cancelled run's id.
        reason: Why it was cancelled, e.g. ``"cancel event 'order/cancelled'"``.
        """
        if message is None:
            run = f"Run {run_id!r}" if run_id else "The run"
            because = f": {reason}" if reason else ""
            message = f"{run} was cancelled{because}"
        super().__init__(message)
        self.run_id = run_id
        self.reason = reason


def is_retriable(err: BaseException) -> bool:
    """Whether the engine should retry after ``err`` (non-inngest_do errors are retriable)."""
    if isinstance(err, Error):
        return bool(err.is_retriable)
    return True


def is_quiet(err: BaseException) -> bool:
    """Whether ``err`` asked not to be logged (its ``quiet`` attribute)."""
    return getattr(err, "quiet", False) is True


def describe_error(err: BaseException) -> dict[str, str | None]:
    """Describe ``err`` as the SDK reports an error: ``{"code", "name", "message", "stack"}``.

    Used for failed runs' ``error``, memoized step errors and ``on_failure`` payloads. ``code``
    is the error's :class:`ErrorCode` value (``"unknown"`` for errors not of this module). For
    a :class:`StepError` the name, message and stack are the original userland error's
    (``stack`` is ``None`` when unknown); errors that hide their stack (``include_stack =
    False``) have no ``"stack"`` key, as in the SDK.
    """
    if isinstance(err, Error):
        out: dict[str, str | None] = {"code": ErrorCode(err.code).value, "name": err.name,
                                      "message": err.message}
        if err.include_stack:
            out["stack"] = err.stack
        # Errors reported by a remote app (inngest-do dev) carry Inngest's extra fields.
        out.update(getattr(err, "extra_details", None) or {})
        return out
    return {"code": ErrorCode.UNKNOWN.value, "name": type(err).__name__, "message": str(err),
            "stack": get_traceback(err)}
