"""The event API's body: one event object or an array of them, all valid or none taken."""

from __future__ import annotations

import json
import typing

from ..event import Event

__all__ = ["EventBodyError", "parse_events"]


class EventBodyError(ValueError):
    """A malformed event API body (answered 400; no event of it is accepted)."""


def parse_events(raw: bytes) -> list[Event]:
    """Parse ``POST /e/{key}``'s body into events; ``EventBodyError`` says what is wrong."""
    try:
        body = json.loads(raw) if raw.strip() else None
    except ValueError as err:
        raise EventBodyError(f"body: not valid JSON ({err})") from None
    if body is None:
        raise EventBodyError("body: expected an event object or an array of events, got "
                             "nothing")
    items = body if isinstance(body, list) else [body]
    if not items:
        raise EventBodyError("body: the array of events is empty")
    events: list[Event] = []
    for i, item in enumerate(items):
        where = f"events[{i}]" if isinstance(body, list) else "event"
        events.append(_event(item, where))
    return events


def _event(item: typing.Any, where: str) -> Event:
    if not isinstance(item, dict):
        raise EventBodyError(f"{where}: expected an object, got {type(item).__name__}")
    name = item.get("name")
    if not isinstance(name, str) or not name.strip():
        raise EventBodyError(f"{where}.name: expected a non-empty string, got {name!r}")
    data = item.get("data")
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise EventBodyError(f"{where}.data: expected an object, got {type(data).__name__}")
    fields: dict[str, typing.Any] = {"name": name, "data": data}
    ev_id = item.get("id")
    if ev_id not in (None, ""):
        if not isinstance(ev_id, str):
            raise EventBodyError(f"{where}.id: expected a string, got {ev_id!r}")
        fields["id"] = ev_id
    ts = item.get("ts")
    if ts not in (None, 0):
        if not isinstance(ts, int) or isinstance(ts, bool) or ts < 0:
            raise EventBodyError(f"{where}.ts: expected epoch milliseconds, got {ts!r}")
        fields["ts"] = ts
    try:
        return Event(**fields)
    except ValueError as err:
        raise EventBodyError(f"{where}: {err}") from None
