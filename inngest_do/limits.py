"""The Inngest server's limits, enforced only when asked (``Inngest(..., inngest_limits=True)``).

Embedded, the engine has no step-count or size cap beyond memory and the store. Code headed
for Inngest's servers can opt in to the server's limits so it fails here first, with the
server's wording.
"""

from __future__ import annotations

from .errors import NonRetriableError

MAX_STEPS = 1_000
MAX_STEP_OUTPUT_BYTES = 4 * 1024 * 1024
MAX_RUN_STATE_BYTES = 32 * 1024 * 1024
MAX_EVENT_BYTES = 3 * 1024 * 1024
MAX_SLEEP_MS = 366 * 86_400_000


class InngestLimitError(NonRetriableError):
    """A run went past one of the Inngest server's limits (only with ``inngest_limits``)."""


def check_step_count(recorded: int, step_id: str) -> None:
    if recorded >= MAX_STEPS:
        raise InngestLimitError(
            f"step '{step_id}': the function run exceeded the limit of {MAX_STEPS:,} steps"
        )


def check_output_size(size: int, state_size: int, what: str) -> None:
    if size > MAX_STEP_OUTPUT_BYTES:
        raise InngestLimitError(
            f"{what}: output size {size:,} bytes exceeds the limit of "
            f"{MAX_STEP_OUTPUT_BYTES:,} bytes (4 MiB)"
        )
    if state_size + size > MAX_RUN_STATE_BYTES:
        raise InngestLimitError(
            f"{what}: the run's state would reach {state_size + size:,} bytes, over the limit "
            f"of {MAX_RUN_STATE_BYTES:,} bytes (32 MiB)"
        )


def check_event_size(size: int, name: str) -> None:
    if size > MAX_EVENT_BYTES:
        raise ValueError(
            f"event '{name}': size {size:,} bytes exceeds the limit of {MAX_EVENT_BYTES:,} "
            "bytes (3 MiB)"
        )


def check_duration(ms: int, what: str) -> None:
    if ms > MAX_SLEEP_MS:
        raise InngestLimitError(f"{what}: {ms:,} ms is longer than the limit of 366 days")
