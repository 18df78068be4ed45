"""In-process pub/sub behind ``experimental.realtime``: channels, topics, subscriptions.

One :class:`Hub` per client. A :class:`Subscription` is registered the moment
``client.subscribe(...)`` returns (nothing published after that is missed), buffers up to
``max_buffer`` messages (the oldest are dropped past that and counted in ``dropped``, so a
subscriber that stops reading cannot grow memory without bound) and is read as an async
iterator or, from synchronous code, with :meth:`Subscription.drain`.

Publishers may run on any thread and any event loop (a Worker's loop, a Simulation's private
loop, a worker thread of a sync handler): delivery only appends under a lock and wakes the
reader's loop with ``call_soon_threadsafe``.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import datetime
import threading
import typing

if typing.TYPE_CHECKING:
    from typing_extensions import Self

    from .client import Inngest

#: messages one subscription holds for its reader before dropping the oldest
DEFAULT_MAX_BUFFER = 1_000


@dataclasses.dataclass(frozen=True)
class Message:
    """One published message. ``run_id``/``fn_id`` name the run that published it, if any;
    ``created_at`` is the engine's time (virtual in a Simulation)."""

    channel: str
    topic: str
    data: typing.Any
    created_at: datetime.datetime
    run_id: str | None = None
    fn_id: str | None = None

    def to_json(self) -> dict[str, typing.Any]:
        """The message in the shape Inngest's realtime subscribers receive."""
        return {
            "channel": self.channel,
            "topic": self.topic,
            "data": self.data,
            "runId": self.run_id,
            "fnId": self.fn_id,
            "createdAt": self.created_at.isoformat().replace("+00:00", "Z"),
            "kind": "data",
        }


class Subscription:
    """Messages of one channel (some topics, or all when ``topics`` is None), in order."""

    def __init__(self, hub: Hub, channel: str, topics: frozenset[str] | None,
                 max_buffer: int) -> None:
        self.channel = channel
        self.topics = topics
        self.max_buffer = max_buffer
        #: messages dropped because the reader fell more than ``max_buffer`` behind
        self.dropped = 0
        self._hub = hub
        self._buf: collections.deque[Message] = collections.deque()
        self._lock = threading.Lock()
        self._waiter: tuple[asyncio.AbstractEventLoop, asyncio.Future[None]] | None = None
        self._closed = False

    def __repr__(self) -> str:
        topics = "*" if self.topics is None else ",".join(sorted(self.topics))
        return f"<Subscription {self.channel}:{topics} buffered={len(self._buf)}>"

    @property
    def closed(self) -> bool:
        return self._closed

    def _push(self, msg: Message) -> None:
        with self._lock:
            if self._closed:
                return
            self._buf.append(msg)
            if len(self._buf) > self.max_buffer:
                self._buf.popleft()
                self.dropped += 1
            waiter, self._waiter = self._waiter, None
        if waiter is not None:
            _wake(*waiter)

    def drain(self) -> list[Message]:
        """Every buffered message, without waiting (for synchronous code and tests)."""
        with self._lock:
            out = list(self._buf)
            self._buf.clear()
        return out

    def close(self) -> None:
        """Stop receiving; a reader waiting in ``async for`` ends after the buffered ones."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            waiter, self._waiter = self._waiter, None
        self._hub._remove(self)
        if waiter is not None:
            _wake(*waiter)

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> Message:
        loop = asyncio.get_running_loop()
        while True:
            with self._lock:
                if self._buf:
                    return self._buf.popleft()
                if self._closed:
                    raise StopAsyncIteration
                fut: asyncio.Future[None] = loop.create_future()
                self._waiter = (loop, fut)
            try:
                await fut
            finally:
                with self._lock:
                    if self._waiter is not None and self._waiter[1] is fut:
                        self._waiter = None

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()


def _wake(loop: asyncio.AbstractEventLoop, fut: asyncio.Future[None]) -> None:
    def settle() -> None:
        if not fut.done():
            fut.set_result(None)

    try:
        loop.call_soon_threadsafe(settle)
    except RuntimeError:  # the reader's loop is closed: nobody is waiting any more
        pass


class Hub:
    """Subscriptions by channel."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._channels: dict[str, set[Subscription]] = {}

    def subscribe(self, channel: str, topics: typing.Iterable[str] | None = None, *,
                  max_buffer: int = DEFAULT_MAX_BUFFER) -> Subscription:
        check_name(channel, "channel")
        wanted: frozenset[str] | None = None
        if topics is not None:
            if isinstance(topics, str):
                raise TypeError("topics: expected a list of str (or None for every topic), "
                                f"got the str {topics!r}")
            wanted = frozenset(topics)
            for topic in wanted:
                check_name(topic, "topics[...]")
        if not isinstance(max_buffer, int) or max_buffer < 1:
            raise ValueError(f"max_buffer: expected an int >= 1, got {max_buffer!r}")
        sub = Subscription(self, channel, wanted, max_buffer)
        with self._lock:
            self._channels.setdefault(channel, set()).add(sub)
        return sub

    def publish(self, msg: Message) -> int:
        """Deliver ``msg`` to the channel's subscribers of its topic; how many got it."""
        with self._lock:
            subs = list(self._channels.get(msg.channel, ()))
        count = 0
        for sub in subs:
            if sub.topics is None or msg.topic in sub.topics:
                sub._push(msg)
                count += 1
        return count

    def subscribers(self, channel: str) -> int:
        with self._lock:
            return len(self._channels.get(channel, ()))

    def _remove(self, sub: Subscription) -> None:
        with self._lock:
            subs = self._channels.get(sub.channel)
            if subs is not None:
                subs.discard(sub)
                if not subs:
                    del self._channels[sub.channel]


_hub_lock = threading.Lock()


def hub_for(client: Inngest) -> Hub:
    """The client's hub, created on first use."""
    hub = getattr(client, "_realtime_hub", None)
    if hub is None:
        with _hub_lock:
            hub = getattr(client, "_realtime_hub", None)
            if hub is None:
                hub = Hub()
                client._realtime_hub = hub  # type: ignore[attr-defined]
    return hub


def check_name(value: object, what: str) -> str:
    if not isinstance(value, str) or not value:
        raise TypeError(f"{what}: expected a non-empty str, got {value!r}")
    return value
