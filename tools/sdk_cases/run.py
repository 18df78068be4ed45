"""Run the Inngest Python SDK's function cases against inngest_do and print a pass/fail table.

    python -m tools.sdk_cases.run PATH/TO/tests/test_inngest/test_function/cases [--mode sync|async|both]

(or set SDK_CASES_DIR). Each mode runs in its own process: the cases of one mode are created on
one client, served by one ``Worker`` (as the SDK's tests serve them with ``serve()``), and each
case's ``run_test`` runs in turn, bounded by ``--timeout`` seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import os
import subprocess
import sys
import threading
import time
import traceback
import typing

CASE_TIMEOUT = 40.0


def _load_cases(path: str) -> tuple[typing.Any, list[str]]:
    """The cases' package, empty: each case module is imported on its own, so one that needs
    something we lack fails alone."""
    spec = importlib.util.spec_from_loader("sdk_function_cases", loader=None, is_package=True)
    assert spec is not None
    pkg = importlib.util.module_from_spec(spec)
    pkg.__path__ = [path]
    sys.modules[spec.name] = pkg
    names = sorted(f[:-3] for f in os.listdir(path)
                   if f.endswith(".py") and f not in ("__init__.py", "base.py"))
    return pkg, names


class _TestClass:
    """Stands in for the unittest.TestCase the cases are methods of."""

    def __init__(self, client: typing.Any) -> None:
        self.client = client
        self._cleanups: list[tuple[typing.Callable[..., typing.Any], tuple, dict]] = []

    def addCleanup(self, function: typing.Callable[..., typing.Any], /,
                   *args: typing.Any, **kwargs: typing.Any) -> None:
        self._cleanups.append((function, args, kwargs))

    def cleanup(self) -> None:
        for fn, args, kwargs in reversed(self._cleanups):
            try:
                fn(*args, **kwargs)
            except Exception:  # noqa: BLE001 - a failed cleanup must not stop the table
                traceback.print_exc()


def _serve(client: typing.Any, fns: list, ready: threading.Event, stop: threading.Event,
           holder: dict) -> None:
    import inngest_do

    async def main() -> None:
        worker = inngest_do.Worker(client, functions=fns, stop_timeout=2.0)
        async with worker:
            holder["engine"] = worker.engine
            ready.set()
            while not stop.is_set():
                await asyncio.sleep(0.05)

    try:
        asyncio.run(main())
    except BaseException as err:  # noqa: BLE001 - reported by the main thread
        holder["error"] = err
        ready.set()


def _why(err: BaseException, path: str) -> str:
    """One line: the error, and for a bare assert the case's line that failed."""
    text = f"{type(err).__name__}: {err}".replace("\n", " ")
    frames = [f for f in traceback.extract_tb(err.__traceback__) if f.filename.startswith(path)]
    if frames:
        text += f"  [{os.path.basename(frames[-1].filename)}:{frames[-1].lineno} " \
                f"{(frames[-1].line or '').strip()}]"
    return text[:400]


def run_mode(path: str, mode: str, only: list[str], timeout: float,
             verbose: bool, skip: typing.Collection[str] = (),
             execution: str = "requests") -> list[tuple[str, bool, str]]:
    from tools.sdk_cases import shims

    shims.install()
    import inngest_do

    _pkg, names = _load_cases(path)
    # The cases count handler calls and provoke step targeting as against Inngest's server,
    # so by default they run in inngest_do's request model (execution="requests").
    client = inngest_do.Inngest(app_id=f"fast_api-functions-{mode}", is_production=False,
                                execution=execution)
    framework = shims.Framework.FAST_API
    cases: list[typing.Any] = []
    broken: list[tuple[str, str]] = []  # (case name, why it could not even be created)
    for name in names:
        if (only and name not in only) or name in skip:
            continue
        try:
            mod = importlib.import_module(f"sdk_function_cases.{name}")
            case = mod.create(client, framework, is_sync=mode == "sync")
        except Exception as err:  # noqa: BLE001 - reported as a failing row
            broken.append((name, f"{type(err).__name__}: {err}".replace("\n", " ")[:300]))
            continue
        if mode == "sync" and isinstance(case.fn, list) and not case.fn:
            continue  # the SDK skips cases with no sync function too
        cases.append(case)
    fns: list = []
    for case in cases:
        fns.extend(case.fn if isinstance(case.fn, list) else [case.fn])
    ready, stop, holder = threading.Event(), threading.Event(), {}
    thread = threading.Thread(target=_serve, args=(client, fns, ready, stop, holder), daemon=True)
    thread.start()
    ready.wait(30)
    if "error" in holder:
        raise holder["error"]
    shims.api.engine = holder["engine"]

    results: list[tuple[str, bool, str]] = []
    for name, why in broken:
        results.append((name, False, why))
        print(f"FAIL {mode:5} {name} (not created)  {why}", flush=True)
    for case in cases:
        if only and case.name not in only:
            continue
        tc = _TestClass(client)
        t0 = time.monotonic()
        try:
            asyncio.run(asyncio.wait_for(case.run_test(tc), timeout))
            ok, why = True, ""
        except BaseException as err:
            if isinstance(err, KeyboardInterrupt):
                raise
            ok = False
            why = _why(err, path)
            if verbose:
                traceback.print_exc()
        finally:
            tc.cleanup()
        results.append((case.name, ok, why))
        print(f"{'PASS' if ok else 'FAIL'} {mode:5} {case.name} ({time.monotonic() - t0:.1f}s)"
              + (f"  {why}" if why else ""), flush=True)
        if not ok and not holder["engine"].lock.acquire(timeout=5):
            # A handler of this case holds the engine forever (e.g. a sync handler blocking
            # outside its steps): the rest run in a fresh process.
            print(f"STUCK {mode} {case.name}", flush=True)
            os._exit(3)
        if not ok:
            holder["engine"].lock.release()
    stop.set()
    thread.join(5)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("cases", nargs="?", default=os.environ.get("SDK_CASES_DIR"),
                        help="the SDK's tests/test_inngest/test_function/cases directory")
    parser.add_argument("--mode", choices=["sync", "async", "both"], default="both")
    parser.add_argument("--only", nargs="*", default=[], help="case names to run")
    parser.add_argument("--timeout", type=float, default=CASE_TIMEOUT)
    parser.add_argument("-v", "--verbose", action="store_true")
    parser.add_argument("--execution", choices=["requests", "coroutines"], default="requests",
                        help="the client's execution mode (default: requests, as the server)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--skip", nargs="*", default=[], help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if not args.cases or not os.path.isdir(args.cases):
        parser.error("cases: give the SDK's cases directory (or set SDK_CASES_DIR)")
    path = os.path.abspath(args.cases)
    if args.child:
        run_mode(path, args.mode, args.only, args.timeout, args.verbose,
                 set(args.skip), args.execution)
        # A case may leave a handler thread blocked forever; don't wait for it at exit.
        os._exit(0)
    modes = ("sync", "async") if args.mode == "both" else (args.mode,)
    rows: dict[str, dict[str, str]] = {}
    totals = {}
    for mode in modes:
        done: list[str] = []
        passed = total = 0
        while True:
            # One process per mode (the two modes' functions share ids and event names),
            # and a fresh one after a case that leaves the engine stuck.
            cmd = [sys.executable, "-m", "tools.sdk_cases.run", path, "--mode", mode, "--child",
                   "--execution", args.execution, "--timeout", str(args.timeout), "--skip", *done, "--only", *args.only]
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=3000, check=False)
            stuck = False
            for line in proc.stdout.splitlines():
                parts = line.split(None, 3)
                if len(parts) >= 3 and parts[0] in ("PASS", "FAIL") and parts[1] == mode:
                    rows.setdefault(parts[2], {})[mode] = "pass" if parts[0] == "PASS" else "FAIL"
                    done.append(parts[2])
                    total += 1
                    passed += parts[0] == "PASS"
                    if parts[0] == "FAIL" or args.verbose:
                        print(line, flush=True)
                elif parts and parts[0] == "STUCK":
                    stuck = True
            if proc.returncode not in (0, 3) or args.verbose:
                print(proc.stderr[-3000:])
            if not stuck:
                break
        totals[mode] = (passed, total)
    print()
    print("| case | sync | async |")
    print("| --- | --- | --- |")
    for name in sorted(rows):
        print(f"| {name} | {rows[name].get('sync', '-')} | {rows[name].get('async', '-')} |")
    print("| **total** | " + " | ".join(
        f"**{totals[m][0]}/{totals[m][1]}**" if m in totals else "-" for m in ("sync", "async"))
        + " |")
    return 0 if all(p == t for p, t in totals.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
