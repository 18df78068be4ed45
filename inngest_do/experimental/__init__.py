"""Experimental APIs, mirroring ``inngest.experimental``: the step decorator and step
context, AI steps and realtime (no semantic-versioning promise)."""

from ._step_context import get_step_context, set_step_context, step

__all__ = ["get_step_context", "set_step_context", "step"]
