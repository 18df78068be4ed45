"""The :class:`Event` model (same fields and behaviour as the Inngest SDK's) and the JSON type.

Beyond the SDK, ``data`` must be JSON-serializable all the way down (``dict`` with ``str`` keys,
``list``/``tuple``, ``str``, ``int``, finite ``float``, ``bool``, ``None``): an event is stored
and replayed as JSON, so anything else is rejected at construction with an error naming the
offending path, e.g. ``data.items[2]``.
"""

from __future__ import annotations

import json
import math
import typing
from collections.abc import Mapping

import pydantic
import typing_extensions

__all__ = ["JSON", "Event", "SendEventsResult"]

# Like the SDK's: not recursive, because TypedDicts are only compatible with Mapping[str, object].
JSON = typing_extensions.TypeAliasType(
    "JSON",
    bool | int | float | str | typing.Mapping[str, object] | typing.Sequence[object] | None,
)

_SCALARS = (str, int, bool, type(None))


def _check_json(value: object, path: str) -> None:
    """Raise ``ValueError`` naming ``path`` unless ``value`` is JSON as ``json.dumps`` would
    write it without conversions (``str`` keys only, no NaN or infinities)."""
    cls = type(value)
    if cls in _SCALARS:
        return
    if cls is float:
        if not math.isfinite(value):  # type: ignore[arg-type]
            raise ValueError(f"{path}: {value!r} is not valid JSON (NaN and infinities are not)")
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                # ValueError, not TypeError: pydantic turns only ValueErrors into
                # ValidationErrors.
                raise ValueError(  # noqa: TRY004
                    f"{path}: keys must be strings, got {type(key).__name__} key {key!r}"
                )
            _check_json(item, f"{path}.{key}")
        return
    if isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            _check_json(item, f"{path}[{index}]")
        return
    if isinstance(value, float):
        _check_json(float(value), path)
        return
    if isinstance(value, (str, int)):  # subclasses, e.g. str/int enums
        return
    raise ValueError(f"{path}: value of type {cls.__name__} is not JSON-serializable")


def _validate_data(value: object) -> dict[str, typing.Any]:
    """Validate and shallow-copy event ``data`` (``None`` gives ``{}``)."""
    if value is None:
        return {}
    if type(value) is dict:
        # Fast path: a flat dict of str keys and scalar values, the common case.
        for key, item in value.items():
            if type(key) is not str:
                break
            cls = type(item)
            if cls in _SCALARS:
                continue
            if cls is float and math.isfinite(item):
                continue
            break
        else:
            return dict(value)
    elif not isinstance(value, Mapping):
        raise ValueError(f"data: must be a dict, got {type(value).__name__}")
    value = dict(value)
    try:
        _check_json(value, "data")
    except RecursionError:
        raise ValueError("data: nested too deeply, or contains a reference to itself") from None
    return value


class Event(pydantic.BaseModel):
    """An event: what triggers and resumes functions.

    Args:
        name: Event name, e.g. ``"order/created"`` (required, non-empty).
        data: JSON object payload (``None`` is taken as ``{}``).
        id: Deduplication id; ``""`` lets the engine assign one when sent.
        ts: Timestamp in epoch milliseconds; ``0`` lets the engine set it when sent.
    """

    model_config = pydantic.ConfigDict(strict=True)

    # A plain validator replaces pydantic's union checks: it is as fast for the common flat
    # dict and checks nested values too.
    data: typing.Annotated[typing.Mapping[str, JSON], pydantic.PlainValidator(_validate_data)] = {}
    id: str = ""
    name: str = pydantic.Field(min_length=1)
    ts: int = 0

    def to_payload(self) -> dict[str, typing.Any]:
        """A plain ``{"name", "data", "id", "ts"}`` dict whose ``data`` is a deep copy.

        The copy is a JSON round trip, so the payload is an immutable snapshot of the event:
        later changes to the event's ``data`` do not reach it (tuples become lists).
        """
        return {
            "name": self.name,
            "data": _copy_data(self.data),
            "id": self.id,
            "ts": self.ts,
        }

    @classmethod
    def from_raw(cls, raw: object) -> Event | Exception:
        """The SDK's way in: validate ``raw`` (e.g. ``data["event"]`` of a failure event); a
        bad one is *returned* as the validation error, not raised, as in the SDK."""
        try:
            return cls.model_validate(raw, strict=False)
        except Exception as err:  # noqa: BLE001 - the SDK's MaybeError contract
            return err

    def to_dict(self) -> dict[str, object] | Exception:
        """A JSON-ready dict of the event (the SDK returns, not raises, a failure)."""
        try:
            return self.model_dump(mode="json")
        except Exception as err:  # noqa: BLE001 - the SDK's MaybeError contract
            return err

    @classmethod
    def from_payload(cls, payload: Mapping[str, typing.Any]) -> Event:
        """Build (and validate) an event from a :meth:`to_payload`-style mapping."""
        return cls.model_validate(payload)


def _copy_data(data: Mapping[str, typing.Any]) -> dict[str, typing.Any]:
    """Deep-copy ``data`` through JSON (a shallow copy when it is flat, which is the same)."""
    for key, item in data.items():
        cls = type(item)
        if type(key) is not str or (cls not in _SCALARS and cls is not float):
            break
        if cls is float and not math.isfinite(item):
            break
    else:
        return dict(data)
    # ``data`` was validated at construction, but it is a mutable dict: check it again.
    _check_json(data, "data")
    return typing.cast("dict[str, typing.Any]", json.loads(json.dumps(data)))


class SendEventsResult(pydantic.BaseModel):
    """What ``after_send_events`` middleware hooks receive (defaults as in the SDK)."""

    error: str | None = None
    ids: list[str] = pydantic.Field(default_factory=list)
