"""Event: the SDK's model (fields, defaults, strictness) plus the JSON check on ``data``."""

from __future__ import annotations

import enum
import math
import pickle

import pydantic
import pytest

from inngest_do.event import Event


def test_defaults() -> None:
    event = Event(name="order/created")
    assert event.name == "order/created"
    assert event.data == {}
    assert event.id == ""
    assert event.ts == 0


def test_default_data_is_not_shared() -> None:
    first, second = Event(name="a"), Event(name="b")
    first.data["x"] = 1  # type: ignore[index]
    assert second.data == {}


def test_all_fields() -> None:
    event = Event(name="a", data={"k": [1, {"n": None}]}, id="evt-1", ts=1_700_000_000_000)
    assert event.model_dump() == {
        "name": "a",
        "data": {"k": [1, {"n": None}]},
        "id": "evt-1",
        "ts": 1_700_000_000_000,
    }


def test_none_data_becomes_empty_dict() -> None:
    assert Event(name="a", data=None).data == {}  # type: ignore[arg-type]


def test_equality_as_pydantic() -> None:
    assert Event(name="a", data={"x": 1}) == Event(name="a", data={"x": 1})
    assert Event(name="a", data={"x": 1}) != Event(name="a", data={"x": 2})
    assert Event(name="a", id="1") != Event(name="a", id="2")


def test_data_is_a_shallow_copy() -> None:
    data = {"x": 1}
    event = Event(name="a", data=data)
    data["x"] = 2
    assert event.data == {"x": 1}


def test_name_is_required() -> None:
    with pytest.raises(pydantic.ValidationError, match="name"):
        Event()  # type: ignore[call-arg]


def test_empty_name_is_rejected() -> None:
    with pytest.raises(ValueError, match="name"):
        Event(name="")


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"name": 1}, "name"),
        ({"name": "a", "id": 5}, "id"),
        ({"name": "a", "ts": "5"}, "ts"),
        ({"name": "a", "ts": True}, "ts"),
        ({"name": "a", "ts": 1.0}, "ts"),
    ],
)
def test_strict_types(kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(ValueError, match=field):
        Event(**kwargs)  # type: ignore[arg-type]


def test_validation_errors_are_value_errors() -> None:
    with pytest.raises(ValueError):
        Event(name="a", data=[1, 2])  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("data", "where"),
    [
        ([1, 2, 3], "data: must be a dict"),
        ("text", "data: must be a dict"),
        ({"a": {1, 2}}, "data.a: value of type set"),
        ({"a": [1, object()]}, r"data.a\[1\]: value of type object"),
        ({"a": {"b": float("nan")}}, "data.a.b: nan"),
        ({"a": float("inf")}, "data.a: inf"),
        ({1: "x"}, "data: keys must be strings"),
        ({"a": {2: "x"}}, "data.a: keys must be strings"),
        ({"a": b"bytes"}, "data.a: value of type bytes"),
    ],
)
def test_data_must_be_json(data: object, where: str) -> None:
    with pytest.raises(ValueError, match=where):
        Event(name="a", data=data)  # type: ignore[arg-type]


def test_self_referencing_data_is_rejected() -> None:
    data: dict[str, object] = {}
    data["me"] = data
    with pytest.raises(ValueError, match="data"):
        Event(name="a", data=data)


def test_json_like_values_are_accepted() -> None:
    class Color(str, enum.Enum):
        RED = "red"

    data = {"t": (1, 2), "f": 1.5, "b": False, "n": None, "s": "x", "e": Color.RED, "d": {}}
    assert Event(name="a", data=data).data == data


def test_non_dict_mapping_is_accepted() -> None:
    class Frozen(dict):  # a Mapping that is not exactly dict
        pass

    assert Event(name="a", data=Frozen(x=1)).data == {"x": 1}


def test_to_payload_is_a_deep_snapshot() -> None:
    event = Event(name="a", data={"items": [{"sku": "x"}], "t": (1, 2)}, id="i", ts=5)
    payload = event.to_payload()
    assert payload == {
        "name": "a",
        "data": {"items": [{"sku": "x"}], "t": [1, 2]},
        "id": "i",
        "ts": 5,
    }
    event.data["items"][0]["sku"] = "changed"  # type: ignore[index]
    assert payload["data"]["items"][0]["sku"] == "x"


def test_to_payload_flat_data_is_copied() -> None:
    event = Event(name="a", data={"x": 1})
    payload = event.to_payload()
    event.data["x"] = 2  # type: ignore[index]
    assert payload["data"] == {"x": 1}
    assert type(payload) is dict


def test_to_payload_rechecks_mutated_data() -> None:
    event = Event(name="a")
    event.data["bad"] = {1, 2}  # type: ignore[index]
    with pytest.raises(ValueError, match="data.bad"):
        event.to_payload()
    event.data["bad"] = math.nan  # type: ignore[index]
    with pytest.raises(ValueError, match="data.bad"):
        event.to_payload()


def test_from_payload_round_trip() -> None:
    event = Event(name="a", data={"x": [1]}, id="i", ts=9)
    assert Event.from_payload(event.to_payload()) == event


def test_from_payload_validates() -> None:
    with pytest.raises(ValueError, match="name"):
        Event.from_payload({"name": "", "data": {}})
    with pytest.raises(ValueError, match="data"):
        Event.from_payload({"name": "a", "data": [1]})


def test_pickle() -> None:
    event = Event(name="a", data={"x": 1}, id="i", ts=1)
    assert pickle.loads(pickle.dumps(event)) == event
