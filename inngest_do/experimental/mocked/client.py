"""``mocked.Inngest``: a client whose ``send`` delivers nothing."""

from __future__ import annotations

from ...client import Inngest as _Inngest
from ...client import _as_events
from ...event import Event

#: the id every event sent in a mocked run gets (the SDK's mock client returns the same)
MOCK_EVENT_ID = "0" * 26


class Inngest(_Inngest):
    """A client for ``mocked.trigger``: sending events checks them and returns one
    :data:`MOCK_EVENT_ID` per event; nothing is stored or delivered."""

    async def send(self, events: Event | list[Event], *,
                   skip_middleware: bool = False) -> list[str]:
        """Check ``events``; one mock id per event."""
        return [MOCK_EVENT_ID for _ in _as_events(events)]

    def send_sync(self, events: Event | list[Event], *,
                  skip_middleware: bool = False) -> list[str]:
        """Check ``events``; one mock id per event."""
        return [MOCK_EVENT_ID for _ in _as_events(events)]
