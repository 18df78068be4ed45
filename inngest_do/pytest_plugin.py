"""A pytest plugin (registered through the ``pytest11`` entry point) that prints the seed of
every Simulation a failing test created, so the failure can be replayed exactly."""

from __future__ import annotations

import typing

import pytest

from .testing import active_simulations, forget_simulations


def pytest_runtest_setup(item: pytest.Item) -> None:
    forget_simulations()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> typing.Any:
    outcome = yield
    report = outcome.get_result()
    if report.when != "call" or not report.failed:
        return
    sims = active_simulations()
    if sims:
        lines = [f"{s!r}: replay with Simulation(client, seed={s.seed}, "
                 f"start={s.start!r})" for s in sims]
        report.sections.append(("inngest_do simulations", "\n".join(lines)))
