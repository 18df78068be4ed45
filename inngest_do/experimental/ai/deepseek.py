"""DeepSeek (OpenAI chat-completions format; the key goes as ``Authorization: Bearer``)."""

from __future__ import annotations

from .base import FORMAT_OPENAI_CHAT, BaseAdapter, _Adapter

# BaseAdapter is exported here too, as the SDK's adapter modules do
__all__ = ["Adapter", "BaseAdapter"]


class Adapter(_Adapter):
    """DeepSeek adapter: ``Adapter(*, auth_key, model, base_url=None, headers=None)``.

    POSTs to ``{base_url}/chat/completions`` (default base URL ``https://api.deepseek.com/v1``).
    """

    _provider = "DeepSeek"
    _default_url = "https://api.deepseek.com/v1"
    _format = FORMAT_OPENAI_CHAT
    _path = "/chat/completions"
