"""FastAPI (and Starlette): ``inngest_do.fast_api.serve(app, client, functions)``, as the SDK's.

``serve`` mounts ``serve_path`` (default ``/api/inngest``) and the event API ``/e/{event_key}``
on the app (see :mod:`inngest_do._serve` for what they answer), and runs the functions in a
:class:`~inngest_do.Worker` inside the app's lifespan: it starts after the app's own startup
and stops gracefully before its shutdown. Needs ``pip install 'inngest-do[fastapi]'``.
"""

from __future__ import annotations

import typing

import starlette.requests
import starlette.responses
import starlette.routing

from ._serve import Request, Response, ServeHandler, asgi_lifespan

if typing.TYPE_CHECKING:
    import fastapi

    from .client import Inngest
    from .function import Function

__all__ = ["FRAMEWORK", "serve"]

FRAMEWORK = "fast_api"


def serve(
    app: fastapi.FastAPI,
    client: Inngest,
    functions: list[Function[typing.Any]],
    *,
    public_path: str | None = None,
    serve_origin: str | None = None,
    serve_path: str | None = None,
    streaming: object = None,
) -> None:
    """Serve ``functions`` of ``client`` in a FastAPI (or Starlette) app.

    Args:
        app: the FastAPI or Starlette app.
        client: the Inngest client.
        functions: the functions to run (what is served is what runs).
        public_path: the path reported by introspection when a proxy rewrites the path.
        serve_origin: the origin reported by introspection.
        serve_path: where to mount (default ``$INNGEST_SERVE_PATH`` or ``/api/inngest``).
        streaming: accepted for the SDK's signature; responses here are immediate.
    """
    router = getattr(app, "router", None)
    if router is None or not hasattr(router, "lifespan_context"):
        raise TypeError(f"app: expected a FastAPI or Starlette app, got {type(app).__name__}")
    handler = ServeHandler(client, functions, framework=FRAMEWORK, serve_path=serve_path,
                           serve_origin=serve_origin, public_path=public_path,
                           streaming=streaming)

    async def endpoint(request: starlette.requests.Request) -> starlette.responses.Response:
        req = Request(method=request.method, path=request.url.path,
                      headers={k.lower(): v for k, v in request.headers.items()},
                      body=await request.body(), query=dict(request.query_params),
                      url=str(request.url))
        return to_starlette(handler.handle(req))

    base = handler.serve_path
    routes = [
        starlette.routing.Route(base, endpoint, methods=["GET", "POST", "PUT"],
                                include_in_schema=False),
        starlette.routing.Route(base + "/{rest:path}", endpoint,
                                methods=["GET", "POST", "PUT", "DELETE"],
                                include_in_schema=False),
        starlette.routing.Route("/e/{event_key}", endpoint, methods=["POST"],
                                include_in_schema=False),
    ]
    # First, so that a catch-all route of the app does not shadow them.
    router.routes[0:0] = routes
    router.lifespan_context = asgi_lifespan(router.lifespan_context, client)


def to_starlette(res: Response) -> starlette.responses.Response:
    """A core response as a Starlette one (streamed when its body is an async iterator)."""
    if res.streaming:
        return starlette.responses.StreamingResponse(
            typing.cast("typing.AsyncIterator[bytes]", res.body), status_code=res.status,
            headers=res.headers)
    return starlette.responses.Response(content=res.body, status_code=res.status,
                                        headers=res.headers)
