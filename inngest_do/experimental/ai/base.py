"""The adapter protocol (same methods as the SDK's ``BaseAdapter``)."""

from __future__ import annotations

import typing

#: request formats the engine knows how to authenticate
FORMAT_OPENAI_CHAT = "openai-chat"
FORMAT_ANTHROPIC = "anthropic"
FORMAT_GEMINI = "gemini"


@typing.runtime_checkable
class BaseAdapter(typing.Protocol):
    """What ``step.ai.infer`` asks of an adapter.

    ``format()`` decides how the key travels: ``"anthropic"`` as ``x-api-key``, ``"gemini"``
    as ``x-goog-api-key``, anything else (``"openai-chat"``) as ``Authorization: Bearer``.
    """

    def auth_key(self) -> str:
        """The provider's API key ("" sends no auth header)."""
        ...

    def format(self) -> str:
        """The request format, e.g. ``"openai-chat"``, ``"anthropic"``, ``"gemini"``."""
        ...

    def headers(self) -> dict[str, str]:
        """Extra request headers."""
        ...

    def on_call(self, body: dict[str, object]) -> None:
        """Adjust the request body in place before it is sent (e.g. fill in the model)."""
        ...

    def url_infer(self) -> str:
        """The URL the request is POSTed to."""
        ...


class _Adapter:
    """Shared plumbing of the bundled adapters: keyword-only arguments, checked eagerly."""

    _provider = ""
    _default_url = ""
    _format = FORMAT_OPENAI_CHAT
    _path = "/chat/completions"

    def __init__(
        self,
        *,
        auth_key: str,
        base_url: str | None = None,
        headers: dict[str, str] | None = None,
        model: str,
    ) -> None:
        if not isinstance(auth_key, str):
            # never echo the value: it is a secret
            raise TypeError(f"auth_key: expected a str, got {type(auth_key).__name__}")
        if not isinstance(model, str) or not model:
            raise TypeError(f"model: expected a non-empty str, got {model!r}")
        if base_url is not None and (not isinstance(base_url, str) or not base_url):
            raise TypeError(f"base_url: expected a non-empty str or None, got {base_url!r}")
        if headers is not None and not (
            isinstance(headers, dict)
            and all(isinstance(k, str) and isinstance(v, str) for k, v in headers.items())
        ):
            raise TypeError("headers: expected a dict of str to str or None")
        self._auth_key = auth_key
        self._headers = dict(headers) if headers is not None else self._default_headers()
        self._model = model
        self._url = base_url or self._default_url

    def _default_headers(self) -> dict[str, str]:
        return {}

    def __repr__(self) -> str:
        # The key stays out of reprs, so it cannot leak through a log line or a traceback.
        return f"<{self._provider} Adapter model={self._model!r} url={self._url!r}>"

    def auth_key(self) -> str:
        """The API key."""
        return self._auth_key

    def format(self) -> str:
        """The request format."""
        return self._format

    def headers(self) -> dict[str, str]:
        """Extra request headers."""
        return self._headers

    def on_call(self, body: dict[str, object]) -> None:
        """Fill in ``model`` when the body does not name one."""
        if not body.get("model"):
            body["model"] = self._model

    def url_infer(self) -> str:
        """The provider's endpoint for this request format."""
        return self._url.rstrip("/") + self._path
