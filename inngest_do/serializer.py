"""``serializer=`` on the client and ``output_type=`` on functions and ``step.run``, as in the SDK.

A step's (or a function's) output is recorded as JSON. Handlers that return objects JSON can't
hold (Pydantic models, dataclasses...) name the type they return with ``output_type=`` and give
the client a :class:`Serializer`: the output is passed through ``serializer.serialize(obj,
output_type)`` before it is recorded, and what the handler gets back from ``step.run`` (or
``step.invoke``, with the invoked function's ``output_type``) is
``serializer.deserialize(recorded, output_type)`` -- on the first run and on every replay alike.
Without a serializer, or without an ``output_type``, outputs are recorded as they are.
"""

from __future__ import annotations

import typing

import pydantic

if typing.TYPE_CHECKING:
    from .client import Inngest


@typing.runtime_checkable
class Serializer(typing.Protocol):
    """Turns outputs into JSON values and back (the SDK's ``inngest.Serializer``)."""

    def serialize(self, obj: object, typ: object) -> object:
        """A JSON value (dict, list, str, number, bool, None) standing for ``obj`` of ``typ``."""
        ...

    def deserialize(self, obj: object, typ: object) -> object:
        """The ``typ`` value that the recorded JSON value ``obj`` stands for."""
        ...


class PydanticSerializer(Serializer):
    """Serializes with Pydantic: models, dataclasses, datetimes... dumped in JSON mode and
    validated back into ``typ`` (which may be any type Pydantic handles: ``list[User]``,
    ``User | None``, ``int``...)."""

    def serialize(self, obj: object, typ: object) -> object:
        # As the SDK does, the value is dumped by what it is, whatever ``typ`` says: a
        # subclass keeps its extra fields in the record.
        return pydantic.TypeAdapter(object).dump_python(obj, mode="json")

    def deserialize(self, obj: object, typ: object) -> object:
        return pydantic.TypeAdapter(typ).validate_python(obj)


def check_serializer(serializer: object) -> Serializer | None:
    """``serializer=`` of the client: None or an object with ``serialize``/``deserialize``."""
    if serializer is None:
        return None
    if isinstance(serializer, type):
        raise TypeError(f"serializer: expected a serializer instance, got the class "
                        f"{serializer.__name__} (write {serializer.__name__}())")
    if not (callable(getattr(serializer, "serialize", None))
            and callable(getattr(serializer, "deserialize", None))):
        raise TypeError(f"serializer: expected an object with serialize(obj, typ) and "
                        f"deserialize(obj, typ) methods, got {type(serializer).__name__}")
    return typing.cast(Serializer, serializer)


def serialize(client: Inngest | None, obj: object, typ: object) -> object:
    """``obj`` as it is recorded: through the client's serializer when there is one and
    ``typ`` was given (``None`` means not given), else unchanged."""
    ser = getattr(client, "serializer", None)
    if ser is None or typ is None:
        return obj
    return ser.serialize(obj, typ)


def deserialize(client: Inngest | None, obj: object, typ: object) -> object:
    """A recorded output as the handler gets it: :func:`serialize` undone."""
    ser = getattr(client, "serializer", None)
    if ser is None or typ is None:
        return obj
    return ser.deserialize(obj, typ)
