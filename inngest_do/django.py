"""Django: ``inngest_do.django.serve(client, functions)`` returns a URL pattern, as the SDK's.

Put it in ``urlpatterns``; it answers ``serve_path`` (default ``api/inngest``) and the event
API ``e/<event_key>`` (see :mod:`inngest_do._serve` for what they answer). The functions run
in a :class:`~inngest_do.Worker` on a background thread with its own event loop, started by
the first request the project serves (Django's ``request_started`` signal, so the
autoreloader's parent process of ``runserver`` never opens the store) and stopped gracefully
at interpreter exit. Needs ``pip install 'inngest-do[django]'``.
"""

from __future__ import annotations

import re
import typing

import django.core.signals
import django.http
import django.urls
import django.views.decorators.csrf

from ._serve import BackgroundWorker, Request, Response, ServeHandler, iterate_sync

if typing.TYPE_CHECKING:
    from .client import Inngest
    from .function import Function

__all__ = ["FRAMEWORK", "serve"]

FRAMEWORK = "django"


def serve(
    client: Inngest,
    functions: list[Function[typing.Any]],
    *,
    public_path: str | None = None,
    serve_origin: str | None = None,
    serve_path: str | None = None,
) -> django.urls.URLPattern:
    """Serve ``functions`` of ``client`` in a Django project; returns the URL pattern.

    Args:
        client: the Inngest client.
        functions: the functions to run (what is served is what runs).
        public_path: the path reported by introspection when a proxy rewrites the path.
        serve_origin: the origin reported by introspection.
        serve_path: where to mount (default ``$INNGEST_SERVE_PATH`` or ``/api/inngest``).
    """
    handler = ServeHandler(client, functions, framework=FRAMEWORK, serve_path=serve_path,
                           serve_origin=serve_origin, public_path=public_path)
    runner = BackgroundWorker.for_client(client)
    base = handler.serve_path

    @django.views.decorators.csrf.csrf_exempt
    def view(request: django.http.HttpRequest, rest: str | None = None,
             event_key: str | None = None) -> django.http.HttpResponseBase:
        # The path the core routes on comes from what matched, so the pattern works under
        # an include() prefix too.
        if event_key is not None:
            path = f"/e/{event_key}"
        else:
            path = base + (f"/{rest}" if rest else "")
        # read() rather than .body: .body refuses bodies over DATA_UPLOAD_MAX_MEMORY_SIZE
        # (2.5 MB by default), and events may be up to 3 MiB.
        body = request.body if getattr(request, "_body", None) is not None else request.read()
        req = Request(method=request.method or "GET", path=path,
                      headers={k.lower(): v for k, v in request.headers.items()},
                      body=body, query={k: request.GET[k] for k in request.GET},
                      url=request.build_absolute_uri())
        return to_django(handler.handle(req))

    def start_worker(**_: typing.Any) -> None:
        runner.ensure_started()  # once; later requests only check that it runs

    django.core.signals.request_started.connect(
        start_worker, weak=False, dispatch_uid=f"inngest_do.django.serve:{id(client)}")
    pattern = (rf"^(?:{re.escape(base.lstrip('/'))}(?:/(?P<rest>.+?))?"
               r"|e/(?P<event_key>[^/]+))/?$")
    return django.urls.re_path(pattern, view, name=f"inngest_do:{client.app_id}")


def to_django(res: Response) -> django.http.HttpResponseBase:
    """A core response as a Django one (streamed when its body is an async iterator)."""
    if res.streaming:
        return django.http.StreamingHttpResponse(
            iterate_sync(typing.cast("typing.AsyncIterator[bytes]", res.body)),
            status=res.status, headers=res.headers)
    return django.http.HttpResponse(res.body, status=res.status, headers=res.headers)
