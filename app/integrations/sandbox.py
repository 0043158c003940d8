"""Signing for Reckon's own sandbox payment provider (development and demos).

The hosted sandbox page posts a webhook signed exactly like Stripe's (`t=...,v1=...`,
HMAC-SHA256 over f"{t}." + raw body) under `SIGNATURE_HEADER`, so it exercises the same
verify -> inbox -> apply path as a real provider, stale and tampered cases included.
"""

from __future__ import annotations

import json
from typing import Any

from app.integrations import webhook_signing
from app.integrations.errors import InvalidSignature

SIGNATURE_HEADER = "Reckon-Sandbox-Signature"


def sign(raw_body: bytes, secret: str, timestamp: int) -> str:
    """Header value for `raw_body` signed at `timestamp` (unix seconds)."""
    return webhook_signing.sign(raw_body, secret, timestamp)


def encode_event(event: dict[str, Any]) -> bytes:
    """Canonical bytes for an event; sign exactly these bytes and send them as the body."""
    return json.dumps(event, separators=(",", ":"), sort_keys=True).encode()


def signed_event(event: dict[str, Any], secret: str, timestamp: int) -> tuple[bytes, str]:
    body = encode_event(event)
    return body, sign(body, secret, timestamp)


def verify(
    raw_body: bytes, sig_header: str | None, secret: str, now: int, tolerance: int = 300
) -> dict[str, Any]:
    """Verify and parse a sandbox webhook; raise InvalidSignature on any doubt."""
    webhook_signing.verify(raw_body, sig_header, secret, now=now, tolerance=tolerance)
    try:
        event = json.loads(raw_body)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise InvalidSignature("signed payload is not JSON") from None
    if not isinstance(event, dict) or not event.get("id") or not event.get("type"):
        raise InvalidSignature("signed payload is not a sandbox event")
    return event
