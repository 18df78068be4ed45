"""Realtime publishing, mirroring ``inngest.experimental.realtime``, delivered in-process.

``await publish(client, channel, topic, data)`` (or ``publish_sync``) hands ``data`` to every
subscriber of ``channel`` that wants ``topic``: ``client.subscribe(channel, topics)`` (an
async iterator of :class:`~inngest_do.realtime_hub.Message`), and Server-Sent Events through
:func:`sse_stream` where the app serves HTTP.

Once per step: a publish inside a step body happens when the body runs (a recorded step's
body never runs again; a failed attempt's retry runs it again). A publish in handler code
outside steps is counted: the run keeps how many it delivered, and a replay (a sync handler
replays on every resumption, an async one after an eviction or a restart) skips that many,
so nothing is published twice as long as the handler is deterministic, as steps require.

Realtime is ephemeral, as in Inngest: nothing is stored, and a subscriber sees only what is
published while it is subscribed.
"""

from __future__ import annotations

import asyncio
import datetime
import json
import typing

from ..execution import current_execution, handler_execution
from ..kernel import ms_to_datetime
from ..realtime_hub import Message, Subscription, check_name, hub_for

if typing.TYPE_CHECKING:
    from ..client import Inngest

__all__ = [
    "Message",
    "Subscription",
    "get_subscription_token",
    "get_subscription_token_sync",
    "publish",
    "publish_sync",
    "sse_stream",
]

_PUBLISHED = "published"  # run.keys entry: handler-code publishes delivered so far

#: seconds between SSE comment lines that keep idle connections (and proxies) open
SSE_KEEPALIVE_S = 15.0


def _check_client(client: object) -> None:
    # imported here: the client module imports this package's siblings at load time
    from ..client import Inngest

    if not isinstance(client, Inngest):
        raise TypeError(f"client: expected an inngest_do.Inngest, got {type(client).__name__}")


async def publish(
    client: Inngest,
    channel: str,
    topic: str,
    data: typing.Mapping[str, object],
) -> None:
    """Publish ``data`` (JSON-serializable) to ``topic`` of ``channel``."""
    publish_sync(client, channel, topic, data)


def publish_sync(
    client: Inngest,
    channel: str,
    topic: str,
    data: typing.Mapping[str, object],
) -> None:
    """Publish ``data`` to ``topic`` of ``channel`` from synchronous code."""
    _check_client(client)
    check_name(channel, "channel")
    check_name(topic, "topic")
    try:
        # a JSON copy: what subscribers get is what an HTTP subscriber would, and later
        # mutation of ``data`` by the publisher cannot reach them
        payload = json.loads(json.dumps(data, allow_nan=False))
    except (TypeError, ValueError) as err:
        raise TypeError(f"data: not JSON-serializable ({err})") from None
    ex = current_execution() or handler_execution()
    if ex is not None and ex.in_body is None:
        # Handler code outside steps runs again on every replay: count its publishes in
        # order and skip those an earlier pass already delivered (the count is kept with
        # the run, so it holds across replays, evictions and restarts).
        index = ex.publishes
        ex.publishes += 1
        if index < ex.run.keys.get(_PUBLISHED, 0):
            return
        ex.run.keys[_PUBLISHED] = index + 1
    if ex is not None:
        at = ms_to_datetime(ex.engine.now_ms())
        run_id: str | None = ex.run.id
        fn_id: str | None = ex.run.fn_id
    else:
        at = datetime.datetime.now(datetime.timezone.utc)
        run_id = fn_id = None
    hub_for(client).publish(Message(channel, topic, payload, at, run_id, fn_id))


async def get_subscription_token(
    client: Inngest,
    channel: str,
    topics: list[str],
) -> typing.Mapping[str, object]:
    """The SDK's token shape (``channel``, ``topics``, ``key``). In-process subscriptions need
    no credential, so ``key`` is empty."""
    return get_subscription_token_sync(client, channel, topics)


def get_subscription_token_sync(
    client: Inngest,
    channel: str,
    topics: list[str],
) -> typing.Mapping[str, object]:
    """See :func:`get_subscription_token`."""
    _check_client(client)
    check_name(channel, "channel")
    if not isinstance(topics, list) or not all(isinstance(t, str) and t for t in topics):
        raise TypeError(f"topics: expected a list of non-empty str, got {topics!r}")
    return {"channel": channel, "topics": list(topics), "key": ""}


def parse_topics(topics: str | typing.Iterable[str] | None) -> list[str] | None:
    """``"a,b"`` (a query string's form), a list, or None (every topic)."""
    if topics is None:
        return None
    if isinstance(topics, str):
        parts = [t.strip() for t in topics.split(",") if t.strip()]
        return parts or None
    return list(topics)


async def sse_stream(
    client: Inngest,
    channel: str,
    topics: str | typing.Iterable[str] | None,
    *,
    keepalive_s: float = SSE_KEEPALIVE_S,
) -> typing.AsyncIterator[bytes]:
    """Server-Sent Events of ``channel``'s ``topics`` (``"a,b"``, a list, or None for all).

    Yields ready-framed chunks: first a ``: connected`` comment (so headers flush at once),
    then one ``id: n`` / ``data: {json}`` event per message (the JSON of
    :meth:`Message.to_json`), and a ``: keepalive`` comment after ``keepalive_s`` seconds of
    silence. Subscribed before the first chunk; unsubscribed when the consumer stops.
    Serve it as ``text/event-stream``.
    """
    sub = client.subscribe(channel, parse_topics(topics))
    seq = 0
    try:
        yield b": connected\n\n"
        while True:
            try:
                msg = await asyncio.wait_for(sub.__anext__(), keepalive_s)
            except asyncio.TimeoutError:
                yield b": keepalive\n\n"
                continue
            except StopAsyncIteration:
                return
            seq += 1
            data = json.dumps(msg.to_json(), separators=(",", ":"))
            yield f"id: {seq}\ndata: {data}\n\n".encode()
    finally:
        sub.close()
