"""DBOS side of bench/test_dbos_bench.py, run in its own process (DBOS keeps global state):
one workflow of N sequential steps on a SQLite system database.

    python bench/dbos_job.py N DIR DURABILITY    # DURABILITY: power (DBOS's default) or crash

``power``: DBOS as configured out of the box on SQLite (SQLite's defaults: a rollback journal
and synchronous=FULL, so every commit is fsynced and survives power loss). ``crash``: every
SQLite connection DBOS opens is switched to WAL with synchronous=NORMAL (survives a killed
process, not a power loss), the durability of our default. ``off``: the same with
synchronous=OFF (no fsync at all, checkpoints included; still survives a killed process).
Prints ``steps_per_second``.
"""

from __future__ import annotations

import logging
import os
import sys
import time

n, directory, durability = int(sys.argv[1]), sys.argv[2], sys.argv[3]
logging.disable(logging.CRITICAL)

if durability in ("crash", "off"):
    level = "NORMAL" if durability == "crash" else "OFF"

    import sqlalchemy
    import sqlalchemy.engine

    @sqlalchemy.event.listens_for(sqlalchemy.engine.Engine, "connect")
    def _pragmas(conn, _record) -> None:  # type: ignore[no-untyped-def]
        cur = conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute(f"PRAGMA synchronous={level}")
        cur.close()

from dbos import DBOS

path = os.path.join(directory, f"dbos-{durability}.sqlite")
DBOS(config={"name": "bench", "system_database_url": f"sqlite:///{path}",
             "run_admin_server": False})


@DBOS.step()
def step(i: int) -> int:
    return i


@DBOS.workflow()
def workflow(count: int) -> int:
    total = 0
    for i in range(count):
        total += step(i)
    return total


DBOS.launch()
workflow(2)  # warm-up
started = time.perf_counter()
assert workflow(n) == n * (n - 1) // 2
took = time.perf_counter() - started
print(f"steps_per_second {n / took:.1f}")
DBOS.destroy()
