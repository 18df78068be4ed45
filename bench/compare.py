"""Before/after figures of the hot-path workloads from one run (bench/README.md, "Engine hot
path"): each workload runs in fresh interpreters, alternating the older checkout and this one,
and the best rate of each is kept (other load on the machine only ever slows a round down).

    python bench/compare.py /path/to/older/checkout [rounds] [workload n ...]

The older checkout needs its kernel built in place (``python setup.py build_ext --inplace``).
"""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys

HERE = pathlib.Path(__file__).resolve().parent
DEFAULT = ["dispatch", "2000", "dispatch", "20000", "worker_dispatch", "2000", "steps", "10000",
           "sleeps", "20000", "bytes_finished", "2000", "bytes_parked", "2000"]


def measure(root: str, workload: str, n: str) -> dict:
    env = dict(os.environ, INNGEST_DO_BENCH_ROOT=root)
    env.pop("INNGEST_DO_PURE_PYTHON", None)
    out = subprocess.run([sys.executable, str(HERE / "hotpath.py"), workload, n, "3"], env=env,
                         capture_output=True, text=True, timeout=900, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str]) -> None:
    if not argv:
        raise SystemExit(__doc__)
    before, after = argv[0], str(HERE.parent)
    rounds = int(argv[1]) if len(argv) > 1 else 3
    rest = argv[2:] or DEFAULT
    for workload, n in zip(rest[::2], rest[1::2]):
        best: dict[str, float] = {}
        for _ in range(rounds):
            for label, root in (("before", before), ("after", after)):
                d = measure(root, workload, n)
                if "bytes_per_run" in d:  # deterministic: lower is better
                    best[label] = d["bytes_per_run"]
                else:
                    best[label] = max(best.get(label, 0), d["per_s"])
        unit = "bytes/run" if workload.startswith("bytes") else "/s"
        ratio = best["after"] / best["before"]
        print(f"{workload:16} {n:>6}: before {best['before']:>9,.0f} {unit}, "
              f"after {best['after']:>9,.0f} {unit}  (after/before {ratio:.2f})", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
