"""Google Gemini (``generateContent``; the key goes as ``x-goog-api-key``)."""

from __future__ import annotations

import urllib.parse

from .base import FORMAT_GEMINI, BaseAdapter, _Adapter

# BaseAdapter is exported here too, as the SDK's adapter modules do
__all__ = ["Adapter", "BaseAdapter"]


class Adapter(_Adapter):
    """Gemini adapter: ``Adapter(*, auth_key, model, base_url=None, headers=None)``.

    POSTs to ``{base_url}/models/{model}:generateContent`` (default base URL
    ``https://generativelanguage.googleapis.com/v1beta/``). As in the SDK, ``url_infer()``
    carries the key as a ``key`` query parameter; the engine moves it into the
    ``x-goog-api-key`` header before sending, so no URL it sends, logs or records holds it.
    """

    _provider = "Gemini"
    _default_url = "https://generativelanguage.googleapis.com/v1beta/"
    _format = FORMAT_GEMINI

    def url_infer(self) -> str:
        """The model's ``generateContent`` endpoint, with the key as the SDK puts it."""
        query = urllib.parse.urlencode({"key": self._auth_key})
        return f"{self._url.rstrip('/')}/models/{self._model}:generateContent?{query}"
