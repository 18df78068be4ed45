"""The result states and the wait-timeout stub of ``experimental.mocked``."""

import enum
import typing


class Status(enum.Enum):
    """How a mocked run ended."""

    COMPLETED = "Completed"
    FAILED = "Failed"


class _TimeoutStub:
    """The stub that makes a ``wait_for_event`` time out (it then returns ``None``)."""

    def __repr__(self) -> str:
        return "mocked.Timeout"


#: ``step_stubs={"wait-id": Timeout}``: the wait ends without an event
Timeout: typing.Final[object] = _TimeoutStub()
