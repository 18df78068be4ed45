"""Tornado: ``inngest_do.tornado.serve(app, client, functions)``, as the SDK's.

``serve`` adds handlers for ``serve_path`` (default ``/api/inngest``) and the event API
``/e/<event_key>`` to the app (see :mod:`inngest_do._serve` for what they answer). The
functions run in a :class:`~inngest_do.Worker` on a background thread with its own event loop,
started by the app's first request (so a process that never serves, such as an autoreload
parent, never opens the store) and stopped gracefully at interpreter exit. Needs
``pip install 'inngest-do[tornado]'``.
"""

from __future__ import annotations

import typing

import tornado.httputil
import tornado.web

from ._serve import BackgroundWorker, Request, Response, ServeHandler

if typing.TYPE_CHECKING:
    from .client import Inngest
    from .function import Function

__all__ = ["FRAMEWORK", "serve"]

FRAMEWORK = "tornado"


def serve(
    app: tornado.web.Application,
    client: Inngest,
    functions: list[Function[typing.Any]],
    *,
    public_path: str | None = None,
    serve_origin: str | None = None,
    serve_path: str | None = None,
) -> None:
    """Serve ``functions`` of ``client`` in a Tornado app.

    Args:
        app: the Tornado application.
        client: the Inngest client.
        functions: the functions to run (what is served is what runs).
        public_path: the path reported by introspection when a proxy rewrites the path.
        serve_origin: the origin reported by introspection.
        serve_path: where to mount (default ``$INNGEST_SERVE_PATH`` or ``/api/inngest``).
    """
    if not isinstance(app, tornado.web.Application):
        raise TypeError(f"app: expected a tornado.web.Application, got {type(app).__name__}")
    handler = ServeHandler(client, functions, framework=FRAMEWORK, serve_path=serve_path,
                           serve_origin=serve_origin, public_path=public_path)
    runner = BackgroundWorker.for_client(client)

    class InngestHandler(tornado.web.RequestHandler):
        SUPPORTED_METHODS = ("GET", "POST", "PUT")  # type: ignore[assignment]

        def check_xsrf_cookie(self) -> None:
            return None  # machine-to-machine calls; signatures and event keys guard them

        async def _answer(self, *_: str) -> None:
            request = self.request
            req = Request(method=request.method or "GET", path=request.path,
                          headers={k.lower(): v for k, v in request.headers.items()},
                          body=request.body,
                          query={k: v[0].decode("utf-8", "replace")
                                 for k, v in request.query_arguments.items()},
                          url=request.full_url())
            await write(self, handler.handle(req))

        get = post = put = _answer

    base = handler.serve_path
    app.add_handlers(r".*", [(base, InngestHandler), (base + r"/(.*)", InngestHandler),
                             (r"/e/([^/]+)", InngestHandler)])

    # Tornado has no start-up hook that every way of running an app calls; every request
    # goes through find_handler, so the first one starts the worker.
    find_handler = app.find_handler

    def find_handler_starting_worker(request: tornado.httputil.HTTPServerRequest,
                                     **kwargs: typing.Any) -> tornado.web._HandlerDelegate:
        runner.ensure_started()  # once; later requests only check that it runs
        return find_handler(request, **kwargs)

    app.find_handler = find_handler_starting_worker  # type: ignore[method-assign]


async def write(request_handler: tornado.web.RequestHandler, res: Response) -> None:
    """Send a core response through a Tornado handler (streamed, chunk by chunk, when its
    body is an async iterator)."""
    request_handler.set_status(res.status)
    for key, value in res.headers.items():
        request_handler.set_header(key, value)
    if res.streaming:
        async for chunk in typing.cast("typing.AsyncIterator[bytes]", res.body):
            request_handler.write(chunk)
            await request_handler.flush()
        return
    request_handler.write(typing.cast(bytes, res.body))
