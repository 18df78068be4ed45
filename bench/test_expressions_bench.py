"""Expression evaluation cost: the dict-lookup fast path and projection versus plain CEL.

Run with ``pytest bench/test_expressions_bench.py --benchmark-only``.

The CEL library converts every variable it is given into CEL values on each call, so plain
CEL costs grow with the size of the event; the fast path (field paths) and projection (other
expressions receive only the fields they read) avoid that. Each case runs on a typical event
(a handful of data fields) and on a wide one (50 data fields).
"""

from __future__ import annotations

from typing import Any

import pytest

from inngest_do.expressions import Expression


def _event(width: int) -> dict[str, Any]:
    data: dict[str, Any] = {"userId": "u-42", "order_id": "o-1", "amount": 150, "user": "x"}
    data.update({f"field_{i}": i for i in range(width)})
    return {"name": "order/created", "id": "01HXEVENT", "ts": 1_700_000_000_000, "data": data}


SIZES = {"typical": 4, "wide": 50}
KEY = Expression.compile("event.data.userId", what="concurrency[0].key")
IF_EXP = Expression.compile(
    "event.data.order_id == async.data.order_id && async.data.amount > 100",
    what="wait_for_event.if_exp",
)


@pytest.fixture(params=list(SIZES), ids=list(SIZES))
def variables(request: pytest.FixtureRequest) -> dict[str, Any]:
    width = SIZES[request.param]
    return {"event": _event(width), "async": _event(width)}


def test_key_fast_path(benchmark: Any, variables: dict[str, Any]) -> None:
    assert KEY.is_field_path
    assert benchmark(KEY.evaluate_key, variables) == "u-42"


def test_key_cel_projected(benchmark: Any, variables: dict[str, Any]) -> None:
    assert benchmark(KEY._evaluate_cel, variables) == "u-42"


def test_key_cel_whole_event(benchmark: Any, variables: dict[str, Any]) -> None:
    assert benchmark(lambda: KEY._evaluate_cel(variables, project=False)) == "u-42"


def test_if_exp_projected(benchmark: Any, variables: dict[str, Any]) -> None:
    assert benchmark(IF_EXP.evaluate_bool, variables) is True


def test_if_exp_whole_events(benchmark: Any, variables: dict[str, Any]) -> None:
    assert benchmark(lambda: IF_EXP._evaluate_cel(variables, project=False)) is True


def test_compile_cached(benchmark: Any) -> None:
    source = "event.data.order_id == async.data.order_id && async.data.amount > 100"
    assert benchmark(Expression.compile, source, what="if_exp").source == source
