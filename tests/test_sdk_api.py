"""The SDK's smaller API items: Function.get_config/get_id, SendEventsResult, StepMemos."""

from __future__ import annotations

import datetime

import pytest

import inngest_do as inngest


def test_get_config_has_the_sdk_registration_shape() -> None:
    client = inngest.Inngest(app_id="shop")

    @client.create_function(
        fn_id="charge", retries=2, on_failure=lambda ctx: None,
        trigger=inngest.TriggerEvent(event="order/paid", expression="event.data.ok"),
        concurrency=[inngest.Concurrency(limit=3, key="event.data.user")],
        rate_limit=inngest.RateLimit(limit=5, period=datetime.timedelta(minutes=2)),
        cancel=[inngest.Cancel(event="order/void", if_exp="event.data.id == async.data.id")])
    def charge(ctx: inngest.ContextSync) -> None:
        return None

    assert charge.get_id() == "shop-charge"
    cfg = charge.get_config("http://app.test/api/inngest")
    doc = cfg.main.model_dump(by_alias=True, mode="json")
    assert doc["id"] == "shop-charge" and doc["name"] == "charge"
    assert doc["triggers"] == [{"event": "order/paid", "expression": "event.data.ok"}]
    assert doc["concurrency"] == [{"key": "event.data.user", "limit": 3, "scope": None}]
    assert doc["rateLimit"] == {"key": None, "limit": 5, "period": "2m"}
    assert doc["cancel"] == [{"event": "order/void", "if": "event.data.id == async.data.id",
                              "timeout": None}]
    assert doc["batchEvents"] is None and doc["debounce"] is None
    step = doc["steps"]["step"]
    assert step["retries"] == {"attempts": 2}
    assert step["runtime"] == {
        "type": "http", "url": "http://app.test/api/inngest?fnId=shop-charge&stepId=step"}
    assert cfg.on_failure is not None
    fail = cfg.on_failure.model_dump(by_alias=True, mode="json")
    assert fail["id"] == "shop-charge-failure" and fail["name"] == "charge (failure)"
    assert fail["steps"]["step"]["retries"] == {"attempts": 0}
    assert fail["triggers"] == [{"event": "inngest/function.failed",
                                 "expression": "event.data.function_id == 'shop-charge'"}]
    with pytest.raises(TypeError, match="app_url"):
        charge.get_config(None)  # type: ignore[arg-type]


def test_get_config_without_on_failure_and_over_websocket() -> None:
    client = inngest.Inngest(app_id="a")
    fn = client.create_function(fn_id="f", trigger=inngest.TriggerCron(cron="0 * * * *"))(
        lambda ctx: None)
    cfg = fn.get_config("wss://gw.test/connect")
    assert cfg.on_failure is None
    assert cfg.main.steps["step"].runtime.type == "ws"
    assert cfg.main.triggers[0].cron == "0 * * * *"  # type: ignore[union-attr]


def test_send_events_result_defaults() -> None:
    from inngest_do.client import SendEventsResult

    res = SendEventsResult()
    assert res.ids == [] and res.error is None
    assert SendEventsResult(ids=["a"]).ids == ["a"]


def test_step_memos_pop_and_from_raw() -> None:
    import hashlib

    from inngest_do.middleware import EmptySentinel, StepMemos

    memos = StepMemos({"a": ["run", True, 1], "b": ["run", False, {"name": "ValueError",
                                                                   "message": "no"}]})
    first = memos.pop("a")
    assert not isinstance(first, EmptySentinel) and first.data == 1 and memos.size == 1
    assert isinstance(memos.pop("a"), EmptySentinel)
    failed = memos.pop(hashlib.sha1(b"b").hexdigest())  # the SDK's hashed id
    assert not isinstance(failed, EmptySentinel)
    assert failed.error is not None and failed.error.name == "ValueError"
    assert memos.size == 0

    raw = StepMemos.from_raw({"x": {"data": [1]}, "w": {"name": "evt", "data": {}}})
    outs = list(raw.values())
    assert outs[0].data == [1]
    assert outs[1].data == {"name": "evt", "data": {}}  # not a wrapper: kept whole
    with pytest.raises(TypeError, match="raw:"):
        StepMemos.from_raw([])  # type: ignore[arg-type]
