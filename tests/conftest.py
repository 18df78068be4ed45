"""Shared test set-up: which kernel runs, and a fresh client.

(The seeds of a failing test's simulations are printed by inngest_do's pytest plugin.)
"""

from __future__ import annotations

import typing

import pytest

import inngest_do


def pytest_report_header(config: pytest.Config) -> str:
    return f"inngest_do kernel: {inngest_do._core_impl}"


@pytest.fixture
def client() -> inngest_do.Inngest:
    """A new app with no functions (each test registers its own)."""
    return inngest_do.Inngest(app_id="test-app")


@pytest.fixture
def clients() -> typing.Iterator[list[inngest_do.Inngest]]:
    """Append the clients a serve() test serves; their background workers stop after it."""
    from inngest_do._serve import BackgroundWorker

    made: list[inngest_do.Inngest] = []
    yield made
    for client in made:
        BackgroundWorker.for_client(client).stop(30)
