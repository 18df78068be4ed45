"""Request signing as Inngest does it: HMAC-SHA256 over the body and a timestamp.

The server signs the requests it sends to an app with the signing key (the body is
canonicalized JSON, RFC 8785 style, so that whitespace and key order do not matter) and checks
the signature of the app's responses (over the raw body bytes). Keys look like
``signkey-<env>-<hex>``; the prefix is not part of the secret.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import time
import urllib.parse

__all__ = ["canonical_json", "sign", "verify"]

_PREFIX = re.compile(r"^signkey-\w+-")
#: how far a response's timestamp may be from now (seconds): replayed responses are refused
MAX_SKEW_S = 5 * 60


def _secret(signing_key: str) -> bytes:
    return _PREFIX.sub("", signing_key).encode("utf-8")


def canonical_json(body: bytes) -> bytes:
    """``body`` re-encoded as canonical JSON (sorted keys, no spaces); an empty body stays
    empty. Raises ``ValueError`` when ``body`` is not JSON."""
    if not body:
        return body
    value = json.loads(body)
    return json.dumps(value, sort_keys=True, separators=(",", ":"),
                      ensure_ascii=False, allow_nan=False).encode("utf-8")


def _mac(secret: bytes, payload: bytes, ts: int) -> str:
    mac = hmac.new(secret, payload, hashlib.sha256)
    mac.update(str(ts).encode("utf-8"))
    return mac.hexdigest()


def sign(body: bytes, signing_key: str, *, canonical: bool = True,
         now_s: int | None = None) -> str:
    """The ``X-Inngest-Signature`` header value for ``body``: ``t=<unix s>&s=<hex>``."""
    ts = int(time.time()) if now_s is None else now_s
    payload = canonical_json(body) if canonical else body
    return f"t={ts}&s={_mac(_secret(signing_key), payload, ts)}"


def verify(body: bytes, header: str | None, signing_key: str, *, canonical: bool = False,
           now_s: int | None = None) -> str | None:
    """Check ``header`` against ``body``: ``None`` when it is valid, else why not."""
    if not header:
        return "missing X-Inngest-Signature header"
    parsed = urllib.parse.parse_qs(header)
    try:
        ts = int(parsed["t"][0])
        sig = parsed["s"][0]
    except (KeyError, ValueError, IndexError):
        return f"malformed X-Inngest-Signature header {header!r}"
    now = int(time.time()) if now_s is None else now_s
    if abs(now - ts) > MAX_SKEW_S:
        return "X-Inngest-Signature timestamp is too old"
    try:
        payload = canonical_json(body) if canonical else body
    except ValueError:
        return "body is not JSON"
    if not hmac.compare_digest(sig, _mac(_secret(signing_key), payload, ts)):
        return "X-Inngest-Signature does not match the body"
    return None


def bearer(signing_key: str) -> str:
    """The ``Authorization`` value an SDK sends to Inngest's API: ``Bearer`` and the SHA-256
    of the key's secret bytes (hex)."""
    secret = _PREFIX.sub("", signing_key)
    try:
        raw = bytes.fromhex(secret)
    except ValueError:
        raw = secret.encode("utf-8")
    return "Bearer " + hashlib.sha256(raw).hexdigest()
