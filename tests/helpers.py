"""Small helpers the engine tests share."""

from __future__ import annotations

import inngest_do as inngest
from inngest_do.testing import Simulation

SEC = 1_000
MIN = 60 * SEC


def ev(name: str = "go", **data: object) -> inngest.Event:
    """An event named ``name`` with ``data`` as keyword arguments."""
    return inngest.Event(name=name, data=data)


def only_run(sim: Simulation, fn: inngest.Function | None = None) -> inngest.Run:
    """The one run (of ``fn``) the simulation has; fails if there are more or none."""
    runs = sim.runs(fn)
    assert len(runs) == 1, runs
    return runs[0]
