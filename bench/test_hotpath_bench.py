"""The engine's hot path (issue 12): dispatch, sleeps vs SimPy, a year of cron, steps, memory,
compiled vs pure. The figures and the goals they are held to are in bench/README.md ("Engine
hot path"); nothing here asserts a time, only that the work was done.

    python -m pytest bench/test_hotpath_bench.py --benchmark-only -p no:cacheprovider \
        --benchmark-columns=min,median,rounds -s

``-s`` shows the one-line summaries (ratios measured in this run). The workloads themselves are
in ``bench/hotpath.py``, which also runs as a script for a fresh interpreter (the pure twin,
peak RSS). ``BENCH_CRON_DAYS`` sets how many simulated days the RSS run covers (default 365).
"""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys
import typing

import pytest

import inngest_do as inngest

sys.path.insert(0, str(pathlib.Path(__file__).parent))
import hotpath  # bench/ is not a package: imported from the path set just above

HERE = pathlib.Path(__file__).parent
ROOT = HERE.parent


def _run_script(*args: str, pure: bool = False, timeout: float = 900) -> dict:
    """Run ``bench/hotpath.py`` in a fresh interpreter (the kernel is chosen at import)."""
    env = dict(os.environ)
    env.pop("INNGEST_DO_PURE_PYTHON", None)
    if pure:
        env["INNGEST_DO_PURE_PYTHON"] = "1"
    out = subprocess.run([sys.executable, str(HERE / "hotpath.py"), *args], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=timeout, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _best(benchmark: typing.Any, fn: typing.Callable[[], float], rounds: int) -> float:
    """Time ``fn`` (which times itself, setup excluded) ``rounds`` times; the best seconds."""
    times: list[float] = []
    benchmark.pedantic(lambda: times.append(fn()), rounds=rounds, iterations=1)
    return min(times)


# dispatch ------------------------------------------------------------------------------------
@pytest.mark.parametrize("n", [2_000, 20_000])
def test_dispatch_simulation(benchmark: typing.Any, n: int) -> None:
    """n ``sim.send`` calls, each starting a run of one trivial step, run to completion."""
    benchmark.group = "dispatch"
    best = _best(benchmark, lambda: hotpath.sim_dispatch(n), rounds=3 if n <= 2_000 else 1)
    benchmark.extra_info.update(events_per_s=round(n / best), kernel=inngest._core_impl)


def test_dispatch_worker(benchmark: typing.Any) -> None:
    """2,000 ``await client.send`` to a Worker on the memory store, until all completed."""
    benchmark.group = "dispatch"
    n = 2_000
    best = _best(benchmark, lambda: hotpath.worker_dispatch(n), rounds=3)
    benchmark.extra_info.update(events_per_s=round(n / best), kernel=inngest._core_impl)


def test_dispatch_linearity(benchmark: typing.Any) -> None:
    """20,000 events cost how many times 2,000 (10 means linear); sizes timed alternately,
    best of 3 each, so other load affects both alike."""
    benchmark.group = "dispatch"

    def measure() -> float:
        best: dict[int, float] = {}
        for _ in range(3):
            for n in (2_000, 20_000):
                t = hotpath.sim_dispatch(n)
                best[n] = min(best.get(n, t), t)
        return best[20_000] / best[2_000]

    ratio = benchmark.pedantic(measure, rounds=1, iterations=1)
    benchmark.extra_info.update(ratio_20k_over_2k=round(ratio, 2), kernel=inngest._core_impl)
    print(f"\ndispatch linearity: 20,000 events cost {ratio:.2f}x 2,000 (goal <= 11)")


# sleeps vs SimPy -----------------------------------------------------------------------------
N_SLEEPS = 20_000


def test_sleeps_inngest_do(benchmark: typing.Any) -> None:
    """One run of 20,000 one-second ``step.sleep``s in a Simulation."""
    benchmark.group = "sleeps"
    best = _best(benchmark, lambda: hotpath.sim_sleeps(N_SLEEPS), rounds=3)
    benchmark.extra_info.update(sleeps_per_s=round(N_SLEEPS / best), kernel=inngest._core_impl)


def test_sleeps_simpy(benchmark: typing.Any) -> None:
    """One SimPy process of 20,000 bare one-second timeouts (the yardstick)."""
    pytest.importorskip("simpy")
    benchmark.group = "sleeps"
    best = _best(benchmark, lambda: hotpath.simpy_timeouts(N_SLEEPS), rounds=3)
    benchmark.extra_info.update(timeouts_per_s=round(N_SLEEPS / best))


def test_sleeps_vs_simpy_ratio(benchmark: typing.Any) -> None:
    """Side by side, alternately, best of 3: inngest_do's time / SimPy's (goal <= 6)."""
    pytest.importorskip("simpy")
    benchmark.group = "sleeps"

    def measure() -> tuple[float, float]:
        ours = min(hotpath.sim_sleeps(N_SLEEPS) for _ in range(3))
        theirs = min(hotpath.simpy_timeouts(N_SLEEPS) for _ in range(3))
        return ours, theirs

    ours, theirs = benchmark.pedantic(measure, rounds=1, iterations=1)
    benchmark.extra_info.update(ratio=round(ours / theirs, 1),
                                sleeps_per_s=round(N_SLEEPS / ours),
                                simpy_per_s=round(N_SLEEPS / theirs))
    print(f"\nsleeps: {N_SLEEPS / ours:,.0f}/s vs SimPy {N_SLEEPS / theirs:,.0f}/s: "
          f"{ours / theirs:.1f}x SimPy's time (goal <= 6)")


# steps ---------------------------------------------------------------------------------------
def test_sequential_steps(benchmark: typing.Any) -> None:
    """One run of 10,000 sequential trivial ``step.run``s."""
    benchmark.group = "steps"
    n = 10_000
    best = _best(benchmark, lambda: hotpath.sim_steps(n), rounds=5)
    benchmark.extra_info.update(steps_per_s=round(n / best), kernel=inngest._core_impl)


# cron ----------------------------------------------------------------------------------------
def test_cron_week(benchmark: typing.Any) -> None:
    """A simulated week of a once-a-minute cron (10,080 runs), in process."""
    benchmark.group = "cron"
    best = _best(benchmark, lambda: hotpath.cron_days(7), rounds=1)
    benchmark.extra_info.update(runs_per_s=round(7 * 1440 / best),
                                year_estimate_s=round(best * 365 / 7, 1))


def test_cron_year_rss(benchmark: typing.Any) -> None:
    """A simulated year (``BENCH_CRON_DAYS``, default 365) of a once-a-minute cron in a fresh
    interpreter: wall time and peak RSS (goal: under 15 s and 600 MB)."""
    benchmark.group = "cron"
    days = int(os.environ.get("BENCH_CRON_DAYS", "365"))
    out = benchmark.pedantic(lambda: _run_script("cron_days", str(days)), rounds=1,
                             iterations=1)
    benchmark.extra_info.update(days=days, wall_s=round(out["seconds"], 1),
                                peak_rss_mib=round(out["peak_rss_mib"]))
    print(f"\ncron: {days} days ({days * 1440:,} runs) in {out['seconds']:.1f} s, "
          f"peak RSS {out['peak_rss_mib']:.0f} MiB (goal: 365 days < 15 s, < 600 MB)")


# memory --------------------------------------------------------------------------------------
@pytest.mark.parametrize("parked", [False, True], ids=["finished", "parked"])
def test_bytes_per_run(benchmark: typing.Any, parked: bool) -> None:
    """Bytes a run of one step keeps in memory (memory store), finished or parked on a sleep
    (goal: at most 1 KB finished, 2 KB parked)."""
    benchmark.group = "memory"
    value = benchmark.pedantic(lambda: hotpath.bytes_per_run(2_000, parked), rounds=1,
                               iterations=1)
    benchmark.extra_info.update(bytes_per_run=round(value))
    print(f"\n{'parked' if parked else 'finished'} run: {value:,.0f} bytes")


# compiled vs pure ----------------------------------------------------------------------------
@pytest.mark.parametrize(("workload", "n"), [("dispatch", 2_000), ("steps", 10_000),
                                             ("sleeps", 10_000)])
def test_compiled_vs_pure(benchmark: typing.Any, workload: str, n: int) -> None:
    """The same workload in two fresh interpreters, the compiled core and the pure twin,
    best of 3 each: pure time / compiled time (goal >= 2.5 on dispatch and step loops)."""
    benchmark.group = "compiled vs pure"

    def measure() -> tuple[dict, dict]:
        return (_run_script(workload, str(n), "3"), _run_script(workload, str(n), "3", pure=True))

    compiled, pure = benchmark.pedantic(measure, rounds=1, iterations=1)
    if compiled["kernel"] != "compiled":
        pytest.skip("the compiled core is not built")
    ratio = pure["seconds"] / compiled["seconds"]
    benchmark.extra_info.update(ratio=round(ratio, 2), compiled_per_s=round(compiled["per_s"]),
                                pure_per_s=round(pure["per_s"]))
    print(f"\n{workload}: compiled {compiled['per_s']:,.0f}/s, pure {pure['per_s']:,.0f}/s: "
          f"{ratio:.2f}x (goal >= 2.5)")
