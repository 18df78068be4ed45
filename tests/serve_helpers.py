"""What the serve() tests of every framework share: bounded waits, a small app, uvicorn on a
free loopback port (the `clients`
fixture, which stops the background workers a test started, is in conftest.py)."""

from __future__ import annotations

import contextlib
import threading
import time
import typing

import inngest_do as inngest


def wait_until(predicate: typing.Callable[[], bool], timeout: float = 15.0) -> None:
    """Poll ``predicate`` until it holds; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"not true after {timeout} s")
        time.sleep(0.01)


def completed(client: inngest.Inngest, n: int = 1) -> typing.Callable[[], bool]:
    """A predicate: at least ``n`` runs, all of them Completed."""
    def check() -> bool:
        runs = client.runs()
        return len(runs) >= n and all(r.status == "Completed" for r in runs)

    return check


def shop(made: list[inngest.Inngest] | None = None, **kwargs: typing.Any
         ) -> tuple[inngest.Inngest, list[inngest.Function]]:
    """An app with an async and a sync function on ``shop/n`` (outputs n*2 and n*3)."""
    client = inngest.Inngest(app_id="shop", **kwargs)
    if made is not None:
        made.append(client)

    @client.create_function(fn_id="double", trigger=inngest.TriggerEvent(event="shop/n"))
    async def double(ctx: inngest.Context) -> int:
        return await ctx.step.run("x2", lambda: ctx.event.data["n"] * 2)

    @client.create_function(fn_id="triple", trigger=inngest.TriggerEvent(event="shop/n"))
    def triple(ctx: inngest.ContextSync) -> int:
        return ctx.step.run("x3", lambda: ctx.event.data["n"] * 3)

    return client, [double, triple]


@contextlib.contextmanager
def uvicorn_server(app: typing.Any) -> typing.Iterator[tuple[str, typing.Any]]:
    """``app`` served by uvicorn (lifespan on) on a free loopback port: yields (base URL,
    server); stops it and joins its thread afterwards."""
    import uvicorn

    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning",
                                           lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        wait_until(lambda: server.started)
        port = server.servers[0].sockets[0].getsockname()[1]
        yield f"http://127.0.0.1:{port}", server
    finally:
        server.should_exit = True
        thread.join(30)
    assert not thread.is_alive(), "uvicorn did not stop"
