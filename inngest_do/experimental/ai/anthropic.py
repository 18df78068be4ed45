"""Anthropic (Messages API; the key goes as ``x-api-key``)."""

from __future__ import annotations

from .base import FORMAT_ANTHROPIC, BaseAdapter, _Adapter

# BaseAdapter is exported here too, as the SDK's adapter modules do
__all__ = ["Adapter", "BaseAdapter"]

#: the API version sent when the adapter's headers name none (Anthropic requires one)
ANTHROPIC_VERSION = "2023-06-01"


class Adapter(_Adapter):
    """Anthropic adapter: ``Adapter(*, auth_key, model, base_url=None, headers=None)``.

    POSTs to ``{base_url}/messages`` (default base URL ``https://api.anthropic.com/v1``).
    Without ``headers`` it sends ``anthropic-version: 2023-06-01``; the engine adds that
    header too when custom headers leave it out.
    """

    _provider = "Anthropic"
    _default_url = "https://api.anthropic.com/v1"
    _format = FORMAT_ANTHROPIC
    _path = "/messages"

    def _default_headers(self) -> dict[str, str]:
        return {"anthropic-version": ANTHROPIC_VERSION}
