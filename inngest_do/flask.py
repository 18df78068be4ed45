"""Flask: ``inngest_do.flask.serve(app, client, functions)``, as the SDK's.

``serve`` mounts ``serve_path`` (default ``/api/inngest``) and the event API ``/e/<event_key>``
on the app (see :mod:`inngest_do._serve` for what they answer). The functions run in a
:class:`~inngest_do.Worker` on a background thread with its own event loop, started by the
app's first request (so the reloader's parent process of ``flask run --debug``, which serves
none, never opens the store) and stopped gracefully at interpreter exit. Needs
``pip install 'inngest-do[flask]'``.
"""

from __future__ import annotations

import itertools
import typing

import flask

from ._serve import BackgroundWorker, Request, Response, ServeHandler, iterate_sync

if typing.TYPE_CHECKING:
    from .client import Inngest
    from .function import Function

__all__ = ["FRAMEWORK", "serve"]

FRAMEWORK = "flask"

_serial = itertools.count()


def serve(
    app: flask.Flask,
    client: Inngest,
    functions: list[Function[typing.Any]],
    *,
    public_path: str | None = None,
    serve_origin: str | None = None,
    serve_path: str | None = None,
) -> None:
    """Serve ``functions`` of ``client`` in a Flask app.

    Args:
        app: the Flask app.
        client: the Inngest client.
        functions: the functions to run (what is served is what runs).
        public_path: the path reported by introspection when a proxy rewrites the path.
        serve_origin: the origin reported by introspection.
        serve_path: where to mount (default ``$INNGEST_SERVE_PATH`` or ``/api/inngest``).
    """
    if not isinstance(app, flask.Flask):
        raise TypeError(f"app: expected a flask.Flask, got {type(app).__name__}")
    handler = ServeHandler(client, functions, framework=FRAMEWORK, serve_path=serve_path,
                           serve_origin=serve_origin, public_path=public_path)
    runner = BackgroundWorker.for_client(client)

    def view(**_: str) -> flask.Response:
        request = flask.request
        req = Request(method=request.method, path=request.path,
                      headers={k.lower(): v for k, v in request.headers.items()},
                      body=request.get_data(), query=request.args.to_dict(),
                      url=request.url)
        return to_flask(handler.handle(req))

    name = f"inngest_do_serve_{next(_serial)}"
    base = handler.serve_path
    app.add_url_rule(base, f"{name}_root", view, methods=["GET", "POST", "PUT"])
    app.add_url_rule(base + "/<path:rest>", f"{name}_sub", view,
                     methods=["GET", "POST", "PUT", "DELETE"])
    app.add_url_rule("/e/<event_key>", f"{name}_events", view, methods=["POST"])

    def start_worker() -> None:
        runner.ensure_started()  # once; later requests only check that it runs

    app.before_request(start_worker)


def to_flask(res: Response) -> flask.Response:
    """A core response as a Flask one (streamed when its body is an async iterator)."""
    body: typing.Any = res.body
    if res.streaming:
        body = iterate_sync(body)
    return flask.Response(body, status=res.status, headers=res.headers)
