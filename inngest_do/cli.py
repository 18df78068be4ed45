"""``inngest-do`` (also ``python -m inngest_do``): run an app's functions, send events, look at runs.

    inngest-do run examples/worker_app.py        # run the app's functions until Ctrl-C
    inngest-do send app/hello '{"name": "Ada"}'  # from another terminal: the worker runs it
    inngest-do runs                              # a table of runs
    inngest-do show 01J...                       # one run's step history

Every command works on one store file, ``--store`` (default: ``$INNGEST_DO_STORE``, else
``./inngest_do.db``). ``run`` holds the file's lease; ``send`` appends to its inbox, which the
running worker polls (so ``send`` works whether or not a worker runs: a worker started later
picks the event up); ``runs`` and ``show`` only read. Bad input (no such app, invalid JSON, an
unknown run, a file that is not a store) prints one line on stderr and exits with status 2; a
store in use by another worker exits with status 1.
"""

from __future__ import annotations

import argparse
import datetime
import importlib
import importlib.util
import json
import os
import sys
import typing

if typing.TYPE_CHECKING:
    from .client import Inngest
    from .runs import TraceEntry

PROG = "inngest-do"
DEFAULT_STORE = "inngest_do.db"


class UsageError(Exception):
    """Bad input: printed as one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> typing.NoReturn:
        raise UsageError(f"{message} (see {PROG} --help)")


def _parser() -> argparse.ArgumentParser:
    store = argparse.ArgumentParser(add_help=False)
    store.add_argument("--store", default=argparse.SUPPRESS, metavar="PATH",
                       help="the store file (default: $INNGEST_DO_STORE or ./inngest_do.db)")
    parser = _Parser(prog=PROG, parents=[store],
                     description="Run inngest_do functions as a service, and inspect them.")
    parser.add_argument("--version", action="version", version=f"{PROG} {_version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND",
                                parser_class=_Parser)
    p = sub.add_parser("run", parents=[store], help="run an app's functions until stopped",
                       description="Load APP's functions and run them on the store until "
                       "SIGINT/SIGTERM, printing each run as it starts and ends.")
    p.add_argument("app", metavar="APP",
                   help="module:client, or path/to/file.py[:client] (the client may be "
                        "omitted when the module has exactly one Inngest instance)")
    p.add_argument("--max-concurrency", type=int, default=100, metavar="N",
                   help="run slices executing at once (default 100)")
    p.add_argument("--poll-interval", type=float, default=0.05, metavar="SECONDS",
                   help="how often to look for events sent by `send` (default 0.05)")
    p.add_argument("--quiet", action="store_true", help="do not print runs")
    p = sub.add_parser("send", parents=[store], help="send an event to the app",
                       description="Store an event for the app's worker to pick up.")
    p.add_argument("name", metavar="NAME", help="the event name, e.g. order/created")
    p.add_argument("data", metavar="JSON", nargs="?", default="{}",
                   help="the event's data, a JSON object (default {})")
    p.add_argument("--id", default="", help="the event's deduplication id")
    p = sub.add_parser("runs", parents=[store], help="list runs",
                       description="A table of runs, oldest first.")
    p.add_argument("--status", type=_run_status, metavar="STATUS",
                   help="only runs in this status: " + ", ".join(_STATUSES))
    p.add_argument("--function", metavar="FN_ID", help="only runs of this function")
    p.add_argument("--limit", type=int, default=50, metavar="N",
                   help="the last N runs (default 50; 0 for all)")
    p = sub.add_parser("show", parents=[store], help="show one run and its step history",
                       description="One run's status, output and history.")
    p.add_argument("run_id", metavar="RUN_ID", help="a run id (or a prefix of one)")
    _add_dev_parser(sub)
    return parser


# dev ---------------------------------------------------------------------------------------
def _add_dev_parser(sub: typing.Any) -> None:
    p = sub.add_parser("dev", help="an Inngest server for apps on the official SDK",
                       description="Serve Inngest's SDK protocol (sync, events, execution, "
                       "GraphQL) over the inngest_do engine. Memory store unless --store.")
    p.add_argument("-u", "--sdk-url", dest="urls", action="append", default=[],
                   metavar="APP_URL", help="sync the app served at this URL at start "
                   "(repeatable)")
    p.add_argument("--host", default="127.0.0.1", help="interface to listen on "
                   "(default 127.0.0.1)")
    p.add_argument("-p", "--port", type=int, default=8288, help="port (default 8288)")
    p.add_argument("--store", dest="dev_store", default=None, metavar="PATH",
                   help="keep runs in this SQLite file (default: memory)")
    p.add_argument("--virtual-clock", action="store_true",
                   help="time moves only when told (POST /v0/sim/advance)")
    p.add_argument("--seed", type=int, default=None, help="seed for run ids and jitter")
    p.add_argument("--signing-key", default=os.environ.get("INNGEST_SIGNING_KEY"),
                   help="sign requests to apps (default: $INNGEST_SIGNING_KEY; none: dev mode)")
    p.add_argument("--request-timeout", type=float, default=60.0, metavar="SECONDS",
                   help="seconds an app has to answer one call (default 60)")


def _cmd_dev(args: argparse.Namespace, store: str) -> int:
    import logging

    from .devserver import DevServer

    if not 0 <= args.port <= 65535:
        raise UsageError(f"--port: expected 0..65535, got {args.port}")
    for url in args.urls:
        if not url.startswith(("http://", "https://")):
            raise UsageError(f"-u: expected an http(s) URL, got {url!r}")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    server = DevServer(host=args.host, port=args.port, store=args.dev_store or None,
                       virtual_clock=args.virtual_clock, seed=args.seed,
                       signing_key=args.signing_key or None, app_urls=args.urls,
                       request_timeout=args.request_timeout)
    try:
        server.start()
    except OSError as err:
        return _fail(f"cannot listen on {args.host}:{args.port}: {err}", 1)
    print(f"{PROG} dev: serving on {server.url}", flush=True)
    server.serve_forever()
    return 0


def main(argv: list[str] | None = None) -> int:
    from .storage.sqlite import StoreError, StoreInUseError

    try:
        args = _parser().parse_args(argv)
        store = getattr(args, "store", None) or os.environ.get("INNGEST_DO_STORE") \
            or DEFAULT_STORE
        return typing.cast(int, _COMMANDS[args.command](args, store))
    except UsageError as err:
        return _fail(str(err), 2)
    except StoreInUseError as err:
        return _fail(str(err), 1)
    except StoreError as err:
        return _fail(str(err), 2)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # `inngest-do show ... | head`: the reader left; say nothing more, as cat does
        # (stdout goes to devnull so the interpreter's own flush at exit cannot fail)
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141


def _fail(message: str, code: int) -> int:
    print(f"{PROG}: error: {message}", file=sys.stderr, flush=True)
    return code


# run ---------------------------------------------------------------------------------------
def load_app(spec: str) -> Inngest:
    """The client named by ``spec``: ``module:attr`` or ``path/to/file.py[:attr]``."""
    from .client import Inngest

    target, _, attr = spec.partition(":")
    if target.endswith(".py") or "/" in target or os.sep in target:
        module = _import_file(target)
    else:
        module = _import_module(target)
    if attr:
        obj: typing.Any = module
        for part in attr.split("."):
            if not hasattr(obj, part):
                raise UsageError(f"app {spec!r}: {target} has no attribute {attr!r}")
            obj = getattr(obj, part)
        if not isinstance(obj, Inngest):
            raise UsageError(f"app {spec!r}: {attr} is a {type(obj).__name__}, not an "
                             "inngest_do.Inngest client")
        return obj
    found = {name: v for name, v in vars(module).items() if isinstance(v, Inngest)}
    if len(found) != 1:
        what = "no inngest_do.Inngest client" if not found else \
            f"{len(found)} clients ({', '.join(sorted(found))})"
        raise UsageError(f"app {spec!r}: {target} has {what}; name one as {target}:NAME")
    return next(iter(found.values()))


def _import_file(path: str) -> typing.Any:
    if not os.path.isfile(path):
        raise UsageError(f"app {path!r}: no such file")
    name = os.path.splitext(os.path.basename(path))[0] or "app"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise UsageError(f"app {path!r}: cannot be imported as Python")
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, os.path.dirname(os.path.abspath(path)))  # its sibling modules
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as err:  # noqa: BLE001 - any error in the app's module: one line
        raise UsageError(f"app {path!r}: importing it raised {type(err).__name__}: "
                         f"{err}") from None
    return module


def _import_module(name: str) -> typing.Any:
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as err:
        if err.name and (name == err.name or name.startswith(err.name + ".")):
            raise UsageError(f"app {name!r}: no such module") from None
        raise UsageError(f"app {name!r}: importing it raised ModuleNotFoundError: "
                         f"{err}") from None
    except Exception as err:  # noqa: BLE001 - any error in the app's module: one line
        raise UsageError(f"app {name!r}: importing it raised {type(err).__name__}: "
                         f"{err}") from None


def _cmd_run(args: argparse.Namespace, store: str) -> int:
    from .storage.sqlite import SQLiteStore
    from .worker import Worker

    if args.max_concurrency < 1:
        raise UsageError("--max-concurrency: must be at least 1")
    if not 0 < args.poll_interval <= 86_400:  # also refuses nan and inf
        raise UsageError(f"--poll-interval: expected seconds in (0, 86400], got "
                         f"{args.poll_interval}")
    client = load_app(args.app)
    worker: Worker | None = None

    def report(entry: TraceEntry) -> None:
        if entry.kind not in _RUN_EVENTS or worker is None:
            return
        run = worker.engine.get_run(entry.run_id)  # a finished one from the store
        line = f"{_time(entry.at_ms)}  {_RUN_EVENTS[entry.kind]:<9}  {entry.fn_id}  " \
               f"{entry.run_id}"
        if run is not None and entry.kind != "run.started" and run.started_ms is not None:
            line += f"  {(entry.at_ms - run.started_ms) / 1000:.3f}s"
        if entry.kind in ("run.failed", "run.cancelled") and entry.detail:
            line += f"  {entry.detail}"
        print(line, flush=True)

    sqlite = SQLiteStore(store)
    sqlite.open()  # the file's checks and lease before anything is printed
    # What the app module served (serve(app, client, functions)), else every function
    # created on the client.
    served = client._served
    worker = Worker(client, store=sqlite, max_concurrency=args.max_concurrency,
                    poll_interval=args.poll_interval, on_trace=None if args.quiet else report,
                    functions=served)
    n = len(client.functions if served is None else served)
    print(f"{PROG}: running app {client.app_id!r} ({n} function{'s' * (n != 1)}) on {store} "
          f"(pid {os.getpid()}); Ctrl-C stops", file=sys.stderr, flush=True)
    worker.run()
    print(f"{PROG}: stopped", file=sys.stderr, flush=True)
    return 0


_RUN_EVENTS = {"run.started": "started", "run.completed": "completed", "run.failed": "failed",
               "run.cancelled": "cancelled", "run.skipped": "skipped"}


# send --------------------------------------------------------------------------------------
def _cmd_send(args: argparse.Namespace, store: str) -> int:
    from .event import Event
    from .storage.sqlite import send_events

    try:
        data = json.loads(args.data)
    except json.JSONDecodeError as err:
        raise UsageError(f"JSON: invalid ({err})") from None
    if not isinstance(data, dict):
        raise UsageError(f"JSON: the event's data must be an object, got {args.data!r}")
    try:
        event = Event(name=args.name, data=data, id=args.id)
    except ValueError as err:
        raise UsageError(f"event: {_first_error(err)}") from None
    (seq,) = send_events(store, [event.to_payload()])
    print(f"sent {args.name} (inbox #{seq}) to {store}", flush=True)
    return 0


def _first_error(err: ValueError) -> str:
    errors = getattr(err, "errors", None)
    if callable(errors):
        first = errors()[0]
        loc = ".".join(str(p) for p in first.get("loc", ()))
        return f"{loc}: {first.get('msg')}" if loc else str(first.get("msg"))
    return str(err).splitlines()[0]


# runs / show -------------------------------------------------------------------------------
def _cmd_runs(args: argparse.Namespace, store: str) -> int:
    from .storage.sqlite import StoreReader

    with StoreReader(store) as reader:
        rows = reader.runs(status=args.status, limit=None if args.function or not args.limit
                           else args.limit)
        waiting = reader.inbox_size()
    if args.function:
        # a full id (app-fn) or the id given to create_function
        rows = [r for r in rows
                if r["fn_id"] == args.function or r["fn_id"].endswith("-" + args.function)]
        if args.limit:
            rows = rows[-args.limit:]
    table = [("ID", "FUNCTION", "STATUS", "CREATED", "ENDED")]
    for r in rows:
        table.append((r["id"], r["fn_id"], r["status"], _time(r["created_ms"]),
                      _time(r["ended_ms"])))
    _print_table(table)
    if waiting:
        print(f"({waiting} sent event{'s' * (waiting != 1)} not yet picked up by a worker)")
    return 0


def _cmd_show(args: argparse.Namespace, store: str) -> int:
    from .storage.sqlite import StoreReader

    with StoreReader(store) as reader:
        found = reader.find_runs(args.run_id, limit=3)
        if not found:
            raise UsageError(f"run {args.run_id!r}: no such run in {store}")
        if len(found) > 1:
            ids = ", ".join(r["id"] for r in found[:2]) + (", ..." if len(found) > 2 else "")
            raise UsageError(f"run {args.run_id!r}: matches several runs ({ids}); give more "
                             "of the id")
        rec = found[0]
        history = reader.history(rec["id"])
    print(f"run       {rec['id']}")
    print(f"function  {rec['fn_id']}")
    print(f"status    {rec['status']}" + (f" ({rec['reason']})" if rec.get("reason") else ""))
    print(f"event     {json.dumps(rec['events'][0] if rec['events'] else None)}")
    print(f"created   {_time(rec['created_ms'])}")
    print(f"started   {_time(rec['started_ms'])}")
    print(f"ended     {_time(rec['ended_ms'])}")
    if rec["status"] == "Completed":
        print(f"output    {json.dumps(rec['output'])}")
    if rec.get("error"):
        err = rec["error"]
        print(f"error     {err.get('name')}: {err.get('message')}")
    print()
    table = [("TIME", "WHAT", "STEP", "DETAIL")]
    for at_ms, _run, _fn, kind, step, detail in history:
        table.append((_time(at_ms), kind, step or "",
                      "" if detail is None else detail if isinstance(detail, str)
                      else json.dumps(detail)))
    _print_table(table)
    return 0


_STATUSES = ("Queued", "Running", "Sleeping", "Waiting", "Completed", "Failed", "Cancelled",
             "Skipped")


def _run_status(text: str) -> str:
    """A run status, any case (argparse turns the ValueError into a usage error)."""
    for status in _STATUSES:
        if status.lower() == text.lower():
            return status
    raise argparse.ArgumentTypeError(f"expected one of {', '.join(_STATUSES)}, got {text!r}")


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("inngest-do")
    except Exception:  # noqa: BLE001 - not installed (run from a checkout)
        return "(not installed)"


def _time(ms: int | None) -> str:
    if ms is None:
        return "-"
    dt = datetime.datetime.fromtimestamp(ms / 1000, datetime.timezone.utc)
    return dt.strftime("%Y-%m-%d %H:%M:%S.") + f"{ms % 1000:03d}Z"


def _print_table(rows: list[tuple[str, ...]]) -> None:
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        print("  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip())


_COMMANDS: dict[str, typing.Callable[[argparse.Namespace, str], int]] = {
    "run": _cmd_run, "send": _cmd_send, "runs": _cmd_runs, "show": _cmd_show,
    "dev": _cmd_dev,
}
