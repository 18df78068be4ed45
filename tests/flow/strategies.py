"""Hypothesis strategies: random event streams over hours or days of virtual time."""

from __future__ import annotations

import typing

from hypothesis import strategies as st

from .harness import TRIGGER, ev
from .models import DAY_MS, HOUR_MS, SECOND_MS

KEYS = ("a", "b", "c")

#: the Simulation seed of one example (printed with it, so the run replays)
seeds = st.integers(0, 2**32 - 1)

#: flow-control durations: whole seconds, from 1 s to a day, with the boundaries favoured
periods_s = st.one_of(st.sampled_from([1, 2, 3, 7, 60, 3600, 86400]), st.integers(1, 86400))


def gaps(period_ms: int | None = None) -> st.SearchStrategy[int]:
    """Time between two events (ms): often none, often near ``period`` or a whole multiple
    of it (to land exactly on limiter boundaries), sometimes hours or a day or two."""
    near = ([st.integers(0, 2 * period_ms), st.integers(1, 3).map(lambda k: k * period_ms)]
            if period_ms else [])
    return st.one_of(
        st.just(0),
        st.integers(0, 5 * SECOND_MS),
        *near,
        st.integers(0, HOUR_MS),
        st.integers(0, 2 * DAY_MS),
    )


@st.composite
def streams(
    draw: st.DrawFn,
    gap: st.SearchStrategy[int],
    data: st.SearchStrategy[dict[str, typing.Any]] | None = None,
    *,
    name: str = TRIGGER,
    max_events: int = 30,
    grid_ms: int = 1,
    offset_ms: int = 0,
) -> list[tuple[int, dict[str, typing.Any]]]:
    """A stream of up to ``max_events`` events named ``name`` with ``data`` drawn per event.

    ``grid_ms``/``offset_ms``: event times are ``k * grid_ms + offset_ms`` (the tests that
    must keep events off the whole-second deadlines use a half-second offset).
    """
    data = data if data is not None else st.just({})
    n = draw(st.integers(0, max_events))
    t = 0
    out = []
    for i in range(n):
        t += draw(gap) // grid_ms * grid_ms
        out.append((t + offset_ms, ev(i, name, **draw(data))))
    return out


def keyed(*fields: str, values: typing.Sequence[typing.Any] = KEYS
          ) -> st.SearchStrategy[dict[str, typing.Any]]:
    return st.fixed_dictionaries({f: st.sampled_from(values) for f in fields})


def merge(*streams_: list[tuple[int, dict[str, typing.Any]]]
          ) -> list[tuple[int, dict[str, typing.Any]]]:
    """Several streams as one, by time (stable), with ``seq`` renumbered in the new order."""
    merged = sorted((item for s in streams_ for item in s), key=lambda item: item[0])
    out = []
    for i, (t, event) in enumerate(merged):
        event = {**event, "data": {**event["data"], "seq": i}}
        out.append((t, event))
    return out
