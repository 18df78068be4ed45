"""Adapters for ``ctx.step.ai.infer``, mirroring ``inngest.experimental.ai``.

An adapter says where a model lives and how to authenticate: the engine makes the HTTP call
itself, as a step (see :mod:`inngest_do.step_ai`). Each provider module has an ``Adapter``
with the keyword-only signature ``Adapter(*, auth_key, model, base_url=None, headers=None)``;
:class:`BaseAdapter` is the protocol a custom adapter implements.
"""

from __future__ import annotations

from . import anthropic, deepseek, gemini, grok, openai
from .base import BaseAdapter

__all__ = ["BaseAdapter", "anthropic", "deepseek", "gemini", "grok", "openai"]
