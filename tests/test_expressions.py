"""Tests for inngest_do.expressions: CEL as Inngest uses it, the fast path and projection."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from inngest_do.expressions import (
    ALLOWED_VARIABLES,
    Expression,
    ExpressionError,
    _compile_source,
)

EVENT: dict[str, Any] = {
    "name": "order/created",
    "id": "01HXEVENT",
    "ts": 1_700_000_000_000,
    "data": {
        "order_id": "o-1",
        "user": "x",
        "userId": "u-42",
        "user-id": "dash",
        "tags": ["vip", "new"],
        "priority": 7,
        "n": 1.0,
        "count": 3,
        "big": 2**70,
        "nested": {"a": None, "b": {"c": True}},
        "flag": True,
    },
}
ASYNC: dict[str, Any] = {
    "name": "order/approved",
    "id": "01HXASYNC",
    "ts": 1_700_000_001_000,
    "data": {"order_id": "o-1", "amount": 150},
}
VARS: dict[str, Any] = {"event": EVENT, "async": ASYNC, "events": [EVENT, ASYNC]}


def ev(source: str, variables: dict[str, Any] | None = None) -> object:
    return Expression.compile(source, what="test").evaluate(
        VARS if variables is None else variables
    )


# --- the expressions Inngest users write -------------------------------------------------------


def test_wait_for_event_match_on_async() -> None:
    assert ev("event.data.order_id == async.data.order_id") is True
    other = {"event": EVENT, "async": {"name": "x", "data": {"order_id": "o-2"}}}
    assert ev("event.data.order_id == async.data.order_id", other) is False


def test_async_is_an_ordinary_identifier() -> None:
    expr = Expression.compile("async.data.amount > 100 && event.data.user == 'x'", what="t")
    assert expr.variables == frozenset({"async", "event"})
    assert expr.evaluate(VARS) is True
    # "async" inside a string literal is just text.
    assert ev("'async.data' == 'async' + '.data'") is True


def test_in_list_and_size_of_events() -> None:
    assert ev("'vip' in event.data.tags") is True
    assert ev("'gold' in event.data.tags") is False
    assert ev("size(events) > 1") is True
    assert ev("size(events) > 1", {"events": [EVENT]}) is False


def test_priority_style_int_result() -> None:
    result = ev("event.data.priority")
    assert result == 7 and type(result) is int
    result = ev("event.data.priority * 10 - 5")
    assert result == 65 and type(result) is int


def test_ints_and_doubles() -> None:
    # Comparisons are heterogeneous: 1.0 == 1, and ordering across int/double works.
    assert ev("event.data.n == 1") is True
    assert ev("event.data.count == 3.0") is True
    assert ev("event.data.count < 3.5") is True
    # A float stays a float, an int an int.
    assert type(ev("event.data.n")) is float
    assert type(ev("event.data.count")) is int
    # CEL's arithmetic does not mix them, but Inngest reads JSON numbers as doubles: a
    # failed evaluation is tried again with the data's ints as doubles.
    assert ev("event.data.count * 1.5") == 4.5
    assert ev("double(event.data.count) * 1.5") == 4.5
    assert type(ev("event.data.count + 1")) is int  # int-only arithmetic stays int
    assert ev("event.data.count % 2") == 1
    # literals still do not mix (as in Inngest): int data is not the question there
    with pytest.raises(ExpressionError, match="no such overload|No such overload"):
        ev("1 + 1.5")
    # Beyond 64 bits the library turns an int into a double.
    assert ev("event.data.big") == float(2**70)


def test_bool_is_not_int() -> None:
    assert ev("event.data.flag == true") is True
    assert ev("event.data.flag == 1") is False


def test_macros_bind_their_variables() -> None:
    assert ev("events.exists(e, e.name == 'order/approved')") is True
    assert ev("events.map(e, e.name)") == ["order/created", "order/approved"]
    assert ev("event.data.tags.all(t, size(t) >= 3)") is True
    assert ev("events.filter(event, event.name == 'order/approved').size() == 1") is True


def test_has_and_missing_fields() -> None:
    assert ev("has(event.data.user)") is True
    assert ev("has(event.data.nope)") is False
    assert ev("has(event.data.nested.a)") is True
    with pytest.raises(ExpressionError) as info:
        ev("event.data.nope == 1")
    message = str(info.value)
    assert message.startswith("test: cannot evaluate 'event.data.nope == 1'")
    assert "nope" in message


def test_results_are_plain_python() -> None:
    assert ev("{'a': [1, 2.5, 'x', null, true]}") == {"a": [1, 2.5, "x", None, True]}
    assert ev("event.data.nested") == {"a": None, "b": {"c": True}}
    assert ev("timestamp('2024-01-02T03:04:05Z')") == "2024-01-02T03:04:05Z"
    assert ev("duration('90s')") == "90s"
    assert ev("duration('1.5s')") == "1.5s"
    assert ev("b'abc'") == "abc"
    assert ev("1u") == 1


def test_comments_and_whitespace() -> None:
    assert ev("event . data . user == 'x' // a comment") is True


# --- compile-time validation ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "reason"),
    [
        ("event.data.", "Syntax error"),
        ("event.data.x ==", "Syntax error"),
        ("", ""),
        ("foo.bar == 1", "unknown variable(s) foo"),
        ("run.id", "unknown variable(s) run"),
        ("e.name", "unknown variable(s) e"),
        (".event.name", "unknown variable(s) .event"),
        ("events.exists(e, x > 1)", "unknown variable(s) x"),
    ],
)
def test_invalid_expressions(source: str, reason: str) -> None:
    with pytest.raises(ValueError) as info:
        Expression.compile(source, what="cancel[1].if_exp")
    assert not isinstance(info.value, ExpressionError)
    assert str(info.value).startswith(f"cancel[1].if_exp: invalid expression {source!r}: ")
    assert reason in str(info.value)


def test_non_string_source() -> None:
    with pytest.raises(TypeError, match=r"concurrency\[0\].key: invalid expression 5"):
        Expression.compile(5, what="concurrency[0].key")  # type: ignore[arg-type]


def test_type_names_are_allowed() -> None:
    assert ev("type(event.data) == map") is True
    assert ev("type(event.data.count) == int") is True


def test_allowed_variables() -> None:
    assert ALLOWED_VARIABLES == frozenset({"event", "async", "events"})


def test_absent_variable_is_an_evaluation_error() -> None:
    expr = Expression.compile("async.data.amount > 1", what="t")
    with pytest.raises(ExpressionError, match="async"):
        expr.evaluate({"event": EVENT})
    assert expr.evaluate_bool({"event": EVENT}) is False


def test_compile_is_cached() -> None:
    one = Expression.compile("event.data.user == 'cached'", what="a")
    two = Expression.compile("event.data.user == 'cached'", what="b")
    assert one._compiled is two._compiled
    assert _compile_source.cache_info().hits >= 1
    assert (one.what, two.what) == ("a", "b")
    assert one.source == "event.data.user == 'cached'"


# --- evaluate_bool and evaluate_key -----------------------------------------------------------


def test_evaluate_bool() -> None:
    def b(source: str) -> bool:
        return Expression.compile(source, what="if").evaluate_bool(VARS)

    assert b("event.data.user == 'x'") is True
    assert b("event.data.user == 'y'") is False
    assert b("event.data.flag") is True  # fast path, a true bool
    assert b("event.data.priority") is False  # non-bool
    assert b("'true'") is False
    assert b("event.data.nope == 1") is False  # error
    assert b("event.data.nope") is False  # fast-path error
    assert b("1 / 0 == 1") is False


def test_evaluate_key() -> None:
    def k(source: str, variables: dict[str, Any] | None = None) -> str | None:
        return Expression.compile(source, what="key").evaluate_key(
            VARS if variables is None else variables
        )

    assert k("event.data.userId") == "u-42"
    assert k("event.data.priority") == "7"
    assert k("event.data.n") == "1"  # integral float renders like the int
    assert k("event.data.n + 0.5") == "1.5"
    assert k("event.data.flag") == "true"
    assert k("event.data.nested") == '{"a":null,"b":{"c":true}}'
    assert k("{'b': 1, 'a': [1.0, 'x']}") == '{"a":[1,"x"],"b":1}'
    assert k("event.data.nested.a") is None  # null
    assert k("event.data.nope") is None  # error (fast path)
    assert k("event.data.user + event.data.nope") is None  # error (CEL)
    assert k("event.data.user + '-' + event.name") == "x-order/created"
    assert k("event.data.userId", {"event": {"data": {"userId": 5}}}) == "5"


# --- fast path --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "source",
    [
        "event.data.userId",
        'event.data["user-id"]',
        "event.data['user-id']",
        "event.name",
        "async.data.amount",
        "event",
        "event['data'].userId",
        "event.data.nested.b.c",
    ],
)
def test_fast_path_detected(source: str) -> None:
    expr = Expression.compile(source, what="k")
    assert expr.is_field_path
    assert expr.evaluate(VARS) == expr._evaluate_cel(VARS, project=False)


@pytest.mark.parametrize(
    "source",
    [
        "event.data.userId == 'x'",
        "event.data.tags[0]",
        "event.data['a\\x41']",
        "size(event.data)",
        "event.data.tags.size()",
        "(event.data.userId)",
        "events.map(event, event.name)",
        "event.data[b'x']",
        "has(event.data.x)",
    ],
)
def test_fast_path_not_used(source: str) -> None:
    assert not Expression.compile(source, what="k").is_field_path


def test_fast_path_errors_match_cel() -> None:
    for source in [
        "event.data.nope",
        "event.data.tags.x",
        "event.data.user.x",
        "event.data.nested.a.b",
        "events.name",
    ]:
        expr = Expression.compile(source, what="k")
        assert expr.is_field_path
        with pytest.raises(ExpressionError, match="cannot evaluate"):
            expr.evaluate(VARS)
        with pytest.raises(ExpressionError):
            expr._evaluate_cel(VARS, project=False)
        assert expr.evaluate_key(VARS) is None
        assert expr.evaluate_bool(VARS) is False


# --- projection ---------------------------------------------------------------------------------


def test_projection_keeps_only_reachable_fields() -> None:
    expr = Expression.compile("event.data.user == async.data['order_id'] || has(event.x)", what="t")
    roots = dict(expr._compiled.roots)
    assert roots == {
        "event": {"data": {"user": None}, "x": None},
        "async": {"data": {"order_id": None}},
    }


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("event.data.tags.exists(t, t == 'vip')", True),
        ("event.data.user.startsWith('x')", True),
        ("event.data[async.name == 'order/approved' ? 'user' : 'n'] == 'x'", True),
        ("(event.data).user == 'x'", True),
        ("event.data == event.data", True),
        ("size(event) == 4", True),
        ("'user' in event.data", True),
        ("event.data.nested.b == {'c': true}", True),
        ("events[0].data.user == 'x'", True),
        (
            (
                "events.exists(event, has(event.data.amount) && event.data.amount == 150)"
                " && event.data.user == 'x'"
            ),
            True,
        ),
        ("{'k': event}.k.data.user", "x"),
    ],
)
def test_projection_agrees_with_whole_data(source: str, expected: object) -> None:
    expr = Expression.compile(source, what="t")
    assert expr._evaluate_cel(VARS, project=False) == expected
    assert expr.evaluate(VARS) == expected


# --- property tests -----------------------------------------------------------------------------

KEYS = ["a", "b", "data", "name", "user-id", "x_1"]
SAFE_IDENT = {"a", "b", "data", "name", "x_1"}

scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-(2**65), max_value=2**65)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=5)
)
json_values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=3), children, max_size=4)
    ),
    max_leaves=12,
)
roots = st.dictionaries(st.sampled_from(KEYS), json_values, max_size=5)
variable_sets = st.fixed_dictionaries(
    {}, optional={"event": roots | json_values, "async": roots | json_values}
)


@st.composite
def field_path(draw: st.DrawFn) -> tuple[str, list[str], str]:
    """A random root and keys, and their CEL source (``.key`` or ``["key"]`` per key)."""
    root = draw(st.sampled_from(["event", "async"]))
    keys = draw(st.lists(st.sampled_from(KEYS), max_size=4))
    parts = [root]
    for key in keys:
        if key in SAFE_IDENT and draw(st.booleans()):
            parts.append(f".{key}")
        else:
            quote = draw(st.sampled_from(["'", '"']))
            parts.append(f"[{quote}{key}{quote}]")
    return root, keys, "".join(parts)


def embed(variables: dict[str, Any], root: str, keys: list[str], value: object) -> None:
    """Make ``root.keys...`` hold ``value``, creating or replacing maps along the way."""
    if not keys:
        variables[root] = value
        return
    if not isinstance(variables.get(root), dict):
        variables[root] = {}
    current = variables[root]
    for key in keys[:-1]:
        if not isinstance(current.get(key), dict):
            current[key] = {}
        current = current[key]
    current[keys[-1]] = value


@st.composite
def sources_and_variables(draw: st.DrawFn, paths: int) -> tuple[list[str], dict[str, Any]]:
    """``paths`` random field paths, and variables in which each path often exists."""
    drawn = [draw(field_path()) for _ in range(paths)]
    variables = draw(variable_sets)
    for root, keys, _ in drawn:
        if draw(st.integers(0, 9)) < 7:
            embed(variables, root, keys, draw(scalars if draw(st.booleans()) else json_values))
    return [source for _, _, source in drawn], variables


def outcome(fn: Any, variables: dict[str, Any]) -> tuple[str, object]:
    try:
        return ("ok", fn(variables))
    except ExpressionError:
        return ("error", None)


def _nan_safe(value: object) -> object:
    if isinstance(value, float) and math.isnan(value):
        return "nan"
    if isinstance(value, list):
        return [_nan_safe(v) for v in value]
    if isinstance(value, dict):
        return {k: _nan_safe(v) for k, v in value.items()}
    return value


def same_outcome(left: tuple[str, object], right: tuple[str, object]) -> bool:
    """Same success/error, and (NaN-tolerant) equal values of the same type."""
    return (
        left[0] == right[0]
        and _nan_safe(left[1]) == _nan_safe(right[1])
        and type(left[1]) is type(right[1])
    )


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=sources_and_variables(paths=1))
def test_fast_path_equals_cel(case: tuple[list[str], dict[str, Any]]) -> None:
    (source,), variables = case
    expr = Expression.compile(source, what="k")
    assert expr.is_field_path
    fast = outcome(expr.evaluate, variables)
    slow = outcome(lambda v: expr._evaluate_cel(v, project=False), variables)
    assert same_outcome(fast, slow), (source, variables, fast, slow)
    # The same path in parentheses is not a fast path: its key comes from CEL.
    via_cel = Expression.compile(f"({source})", what="k")
    assert not via_cel.is_field_path
    assert expr.evaluate_key(variables) == via_cel.evaluate_key(variables), source
    assert expr.evaluate_bool(variables) is (slow[0] == "ok" and slow[1] is True)


TEMPLATES = [
    "{a} == {b}",
    "has({a}) || {b} != null",
    "{a} == {b} && has({c})",
    "size({a}) > 0",
    "'a' in {a}",
    "[{a}, {b}]",
    "type({a}) == map ? {b} : {c}",
    "{a}.exists(k, k == 'a') || {b} == null",
]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=sources_and_variables(paths=3), template=st.sampled_from(TEMPLATES))
def test_projection_equals_whole_data(
    case: tuple[list[str], dict[str, Any]], template: str
) -> None:
    (a, b, c), variables = case
    source = template.format(a=a, b=b, c=c)
    try:
        expr = Expression.compile(source, what="t")
    except ValueError:
        return  # has() over an index expression is not valid CEL
    projected = outcome(expr._evaluate_cel, variables)
    whole = outcome(lambda v: expr._evaluate_cel(v, project=False), variables)
    assert same_outcome(projected, whole), (source, variables, projected, whole)
