"""Errors: SDK-compatible constructors and attributes, the engine's errors, helpers, pickling."""

from __future__ import annotations

import datetime
import pickle

import pytest

from inngest_do.errors import (
    RETRY_AFTER_MAX_MS,
    RETRY_AFTER_MIN_MS,
    Error,
    FunctionConfigInvalidError,
    FunctionNotFoundError,
    InvokeTimeoutError,
    NonDeterminismError,
    NonRetriableError,
    OutputUnserializableError,
    ReportedError,
    RetryAfterError,
    RunCancelledError,
    StepError,
    StepNestedError,
    describe_error,
    is_quiet,
    is_retriable,
)


def _raised(err: BaseException) -> BaseException:
    """Return ``err`` after raising it, so that it carries a traceback."""
    try:
        raise err
    except BaseException as caught:  # noqa: BLE001
        return caught


# ------------------------------------------------------------------------------------ Error base


def test_error_base_properties() -> None:
    err = _raised(Error("boom"))
    assert isinstance(err, Error)
    assert err.message == "boom"
    assert err.name == "Error"
    assert err.is_retriable is True
    assert err.stack is not None
    assert "boom" in err.stack
    assert "test_errors.py" in err.stack


def test_error_without_message_is_empty() -> None:
    assert str(Error()) == ""
    assert Error(None).message == ""


def test_subclass_name_is_class_name() -> None:
    class PaymentDeclined(Error):
        pass

    assert PaymentDeclined("no").name == "PaymentDeclined"


# -------------------------------------------------------------------------------- user errors


def test_non_retriable_error() -> None:
    err = NonRetriableError("card declined")
    assert err.message == "card declined"
    assert err.name == "NonRetriableError"
    assert err.is_retriable is False
    assert err.quiet is False
    assert NonRetriableError("x", quiet=True).quiet is True
    assert NonRetriableError().message == ""
    assert not is_retriable(err)


def test_retry_after_error_int_ms() -> None:
    err = RetryAfterError("rate limited", 5000)
    assert err.retry_after == 5000
    assert err.retry_after_ms == 5000
    assert err.retry_at is None
    assert err.is_retriable is True
    assert err.quiet is False
    assert err.message == "rate limited"


def test_retry_after_error_timedelta() -> None:
    err = RetryAfterError("later", datetime.timedelta(minutes=2), quiet=True)
    assert err.retry_after == datetime.timedelta(minutes=2)
    assert err.retry_after_ms == 120_000
    assert err.quiet is True


def test_retry_after_error_datetime() -> None:
    at = datetime.datetime(2030, 1, 1, tzinfo=datetime.timezone.utc)
    err = RetryAfterError(None, at)
    assert err.retry_after is at
    assert err.retry_at is at
    assert err.retry_after_ms is None
    assert err.message == ""


def test_retry_after_delay_is_clamped() -> None:
    assert RetryAfterError("x", 0).delay_ms(now_ms=0) == RETRY_AFTER_MIN_MS
    assert RetryAfterError("x", 5000).delay_ms(now_ms=123) == 5000
    assert RetryAfterError("x", datetime.timedelta(days=3)).delay_ms(0) == RETRY_AFTER_MAX_MS
    at = datetime.datetime(1970, 1, 1, 0, 1)  # naive: taken as UTC
    assert RetryAfterError("x", at).delay_ms(now_ms=30_000) == 30_000
    assert RetryAfterError("x", at).delay_ms(now_ms=10**9) == RETRY_AFTER_MIN_MS


def test_retry_after_error_rejects_negative() -> None:
    with pytest.raises(ValueError, match="retry_after"):
        RetryAfterError("x", -1)
    with pytest.raises(ValueError, match="retry_after"):
        RetryAfterError("x", datetime.timedelta(seconds=-1))


@pytest.mark.parametrize("bad", ["5s", 1.5, True, None])
def test_retry_after_error_rejects_wrong_types(bad: object) -> None:
    with pytest.raises(TypeError, match="retry_after"):
        RetryAfterError("x", bad)  # type: ignore[arg-type]


def test_step_error_exposes_userland_error() -> None:
    err = StepError("division by zero", "ZeroDivisionError", "Traceback ...")
    assert err.message == "division by zero"
    assert err.name == "ZeroDivisionError"
    assert err.stack == "Traceback ..."
    assert str(err) == "division by zero"
    assert err.is_retriable is False
    assert StepError("m", "E", None).stack is None


def test_step_error_dict_round_trip() -> None:
    err = StepError("m", "KeyError", "tb")
    assert err.to_dict() == {"message": "m", "name": "KeyError", "stack": "tb"}
    back = StepError.from_dict(err.to_dict())
    assert (back.message, back.name, back.stack) == ("m", "KeyError", "tb")
    assert StepError.from_dict({"message": "m"}).name == "Error"


def test_step_error_and_remote_error_share_the_reported_error_base() -> None:
    from inngest_do.devserver.remote import RemoteError

    step = StepError("m", "KeyError", "tb")
    remote = RemoteError("app said no", name="TypeError", stack="app tb", retriable=False)
    for err, expected in ((step, ("m", "KeyError", "tb")),
                          (remote, ("app said no", "TypeError", "app tb"))):
        assert isinstance(err, ReportedError) and isinstance(err, Error)
        assert (err.message, err.name, err.stack) == expected
        # the reported fields are what describe_error and pickling carry
        info = describe_error(err)
        assert (info["message"], info["name"], info["stack"]) == expected
        back = pickle.loads(pickle.dumps(err))
        assert type(back) is type(err)
        assert (back.message, back.name, back.stack) == expected
    assert not isinstance(remote, StepError)
    assert is_retriable(remote) is False and is_retriable(RemoteError("x")) is True
    assert RemoteError("x").stack is None and RemoteError("x").name == "Error"


# ------------------------------------------------------------------------------ engine errors


def test_function_config_invalid_error_is_value_error() -> None:
    err = FunctionConfigInvalidError("retries: bad", field="retries")
    assert isinstance(err, ValueError)
    assert isinstance(err, Error)
    assert err.field == "retries"
    assert FunctionConfigInvalidError("x").field is None
    with pytest.raises(ValueError, match="retries: bad"):
        raise err


def test_step_nested_error() -> None:
    err = StepNestedError.for_steps("inner", "outer")
    assert err.message == (
        "Nested steps are not supported: step 'inner' was started inside step 'outer'"
    )
    assert (err.step_id, err.parent_step_id) == ("inner", "outer")
    assert not is_retriable(err)
    assert StepNestedError("custom").message == "custom"


def test_non_determinism_error_names_the_step() -> None:
    err = NonDeterminismError.for_step("charge", "it was recorded as a sleep")
    assert "'charge'" in err.message
    assert err.message.endswith("it was recorded as a sleep")
    assert err.step_id == "charge"
    assert not is_retriable(err)
    assert NonDeterminismError("step 'x' changed").step_id is None


def test_output_unserializable_error() -> None:
    err = OutputUnserializableError.for_output("fetch", TypeError("set is not serializable"))
    assert "'fetch'" in err.message
    assert "set is not serializable" in err.message
    assert err.step_id == "fetch"
    assert is_retriable(err)
    assert not OutputUnserializableError("x", is_retriable=False).is_retriable
    assert "function's output" in OutputUnserializableError.for_output(None, "bad").message


def test_invoke_timeout_error() -> None:
    err = InvokeTimeoutError.for_function("app-child", 3_600_000)
    assert "'app-child'" in err.message
    assert "1h" in err.message
    assert err.function_id == "app-child"
    assert err.timeout_ms == 3_600_000
    assert not is_retriable(err)
    assert InvokeTimeoutError().message


def test_function_not_found_error() -> None:
    err = FunctionNotFoundError.for_id("missing", app_id="shop")
    assert "'missing'" in err.message
    assert "'shop'" in err.message
    assert err.function_id == "missing"
    assert not is_retriable(err)


def test_run_cancelled_error() -> None:
    err = RunCancelledError(run_id="r1", reason="cancel event 'order/cancelled'")
    assert err.message == "Run 'r1' was cancelled: cancel event 'order/cancelled'"
    assert (err.run_id, err.reason) == ("r1", "cancel event 'order/cancelled'")
    assert RunCancelledError().message == "The run was cancelled"
    assert not is_retriable(err)


# ------------------------------------------------------------------------------------- helpers


def test_is_retriable_for_plain_exceptions() -> None:
    assert is_retriable(ValueError("x"))
    assert is_retriable(Error("x"))
    assert is_retriable(RetryAfterError("x", 1000))
    assert not is_retriable(StepError("m", "E", None))


def test_is_quiet() -> None:
    assert is_quiet(NonRetriableError("x", quiet=True))
    assert is_quiet(RetryAfterError("x", 1, quiet=True))
    assert not is_quiet(NonRetriableError("x"))
    assert not is_quiet(ValueError("x"))


def test_describe_plain_exception() -> None:
    info = describe_error(_raised(KeyError("user_id")))
    assert info["name"] == "KeyError"
    assert info["message"] == "'user_id'"
    assert "Traceback" in info["stack"]
    assert set(info) == {"code", "name", "message", "stack"}
    assert info["code"] == "unknown"


def test_describe_step_error_keeps_userland_name() -> None:
    info = describe_error(StepError("boom", "ZeroDivisionError", None))
    assert info == {"code": "step_errored", "name": "ZeroDivisionError", "message": "boom",
                    "stack": None}


def test_describe_own_error() -> None:
    info = describe_error(_raised(NonRetriableError("stop")))
    assert info["name"] == "NonRetriableError"
    assert info["message"] == "stop"
    assert "stop" in info["stack"]


# ------------------------------------------------------------------------------------- pickling


@pytest.mark.parametrize(
    "err",
    [
        Error("e"),
        NonRetriableError("n", quiet=True),
        RetryAfterError("r", datetime.timedelta(seconds=5), quiet=True),
        StepError("m", "KeyError", "tb"),
        FunctionConfigInvalidError("f", field="retries"),
        StepNestedError.for_steps("a", "b"),
        NonDeterminismError.for_step("a"),
        OutputUnserializableError.for_output("s", "bad", is_retriable=False),
        InvokeTimeoutError.for_function("fn", 1000),
        FunctionNotFoundError.for_id("fn"),
        RunCancelledError(run_id="r"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_errors_pickle(err: Error) -> None:
    back = pickle.loads(pickle.dumps(err))
    assert type(back) is type(err)
    assert back.message == err.message
    assert back.name == err.name
    assert back.is_retriable == err.is_retriable
    assert vars(back) == vars(err)


def test_user_subclass_with_own_constructor_pickles() -> None:
    class Declined(NonRetriableError):
        def __init__(self, card: str) -> None:
            super().__init__(f"card {card} declined")
            self.card = card

    globals()["Declined"] = Declined  # make it importable by pickle
    Declined.__qualname__ = "Declined"
    try:
        back = pickle.loads(pickle.dumps(Declined("1234")))
        assert back.message == "card 1234 declined"
        assert back.card == "1234"
    finally:
        del globals()["Declined"]
