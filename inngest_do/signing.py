"""Request signatures as Inngest makes them (``X-Inngest-Signature: t=<unix>&s=<hex>``).

Inngest signs what it sends to an app with the app's signing key: ``s`` is the hex HMAC-SHA256,
keyed with the signing key minus its ``signkey-<env>-`` prefix, of the request body followed by
the decimal timestamp ``t`` (Unix seconds). :func:`sign_request` makes such a header, so other
services (or tests) can call an app served by ``inngest_do``; :func:`verify_signature` checks
one, as :func:`inngest_do.fast_api.serve` and the other adapters do when the client has a
signing key.

The body is hashed as sent, or in its canonical JSON form (sorted keys, no whitespace), which
is what the Inngest SDK hashes; a signature over either is accepted.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import time
import urllib.parse

__all__ = [
    "MAX_SIGNATURE_AGE_S",
    "SignatureError",
    "hash_event_key",
    "hash_signing_key",
    "remove_signing_key_prefix",
    "sign_request",
    "verify_signature",
]

#: a signature older (or further in the future) than this is refused: a captured request
#: cannot be replayed later
MAX_SIGNATURE_AGE_S = 5 * 60

_PREFIX = re.compile(r"^signkey-\w+-")


class SignatureError(Exception):
    """A request's ``X-Inngest-Signature`` is missing, malformed, stale or wrong."""


def remove_signing_key_prefix(key: str) -> str:
    """``signkey-prod-abc123`` -> ``abc123`` (keys without the prefix are returned as is)."""
    match = _PREFIX.match(key)
    return key[match.end():] if match else key


def hash_signing_key(key: str) -> str:
    """The SHA-256 of the key's bytes (hex keys as bytes, others as UTF-8), as shown by
    introspection instead of the key itself."""
    raw = remove_signing_key_prefix(key)
    try:
        data = bytes.fromhex(raw)
    except ValueError:  # not a hex key: hash its text
        data = raw.encode("utf-8")
    return hashlib.sha256(data).hexdigest()


def hash_event_key(key: str) -> str:
    """The SHA-256 of an event key, as shown by introspection instead of the key itself."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def _mac(body: bytes, key: str, timestamp: str) -> str:
    mac = hmac.new(remove_signing_key_prefix(key).encode("utf-8"), body, hashlib.sha256)
    mac.update(timestamp.encode("utf-8"))
    return mac.hexdigest()


def _canonical(body: bytes) -> bytes | None:
    """The body as canonical JSON (what the Inngest SDK signs), or None if it is not JSON."""
    if not body:
        return None
    try:
        value = json.loads(body)
    except ValueError:
        return None
    return json.dumps(value, sort_keys=True, separators=(",", ":"),
                      ensure_ascii=False).encode("utf-8")


def sign_request(body: bytes, signing_key: str, unix_s: int | None = None) -> str:
    """The ``X-Inngest-Signature`` header value for a request carrying ``body``.

    Args:
        body: the exact bytes of the request body.
        signing_key: the app's signing key (with or without its ``signkey-<env>-`` prefix).
        unix_s: the timestamp to sign, in Unix seconds (default: now).
    """
    if not isinstance(body, (bytes, bytearray)):
        raise TypeError(f"body: expected bytes, got {type(body).__name__}")
    if not isinstance(signing_key, str) or not signing_key:
        raise ValueError("signing_key: must be a non-empty string")
    stamp = str(round(time.time()) if unix_s is None else int(unix_s))
    return f"t={stamp}&s={_mac(bytes(body), signing_key, stamp)}"


def verify_signature(body: bytes, header: str | None, signing_keys: list[str], *,
                     now_s: float | None = None) -> str:
    """Check an ``X-Inngest-Signature`` header against ``signing_keys`` (the key, then its
    fallback); returns the key that signed it, else raises :class:`SignatureError`."""
    if not header:
        raise SignatureError("missing X-Inngest-Signature header")
    parsed = urllib.parse.parse_qs(header)
    stamp = (parsed.get("t") or [""])[0]
    sig = (parsed.get("s") or [""])[0]
    if not stamp or not sig or not stamp.isdigit():
        raise SignatureError("malformed X-Inngest-Signature header (expected t=<unix>&s=<hex>)")
    now = time.time() if now_s is None else now_s
    if abs(now - int(stamp)) > MAX_SIGNATURE_AGE_S:
        raise SignatureError("X-Inngest-Signature has expired (older than 5 minutes)")
    bodies = [body]
    canonical = _canonical(body)
    if canonical is not None and canonical != body:
        bodies.append(canonical)
    for key in signing_keys:
        for signed in bodies:
            if hmac.compare_digest(sig, _mac(signed, key, stamp)):
                return key
    raise SignatureError("X-Inngest-Signature does not match the signing key")
