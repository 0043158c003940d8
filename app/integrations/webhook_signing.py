"""The `t=<unix>,v1=<hex hmac>` webhook signature scheme (Stripe's, reused by our sandbox).

The signed message is `f"{t}.".encode() + raw_body`, HMAC-SHA256 with the endpoint secret.
Several `v1` entries may be present (secret rotation); one match is enough. `now` is passed
in so the tolerance check is testable and never reads a clock behind the caller's back.
"""

from __future__ import annotations

import hashlib
import hmac

from app.integrations.errors import InvalidSignature

DEFAULT_TOLERANCE = 300


def compute_signature(raw_body: bytes, secret: str, timestamp: int) -> str:
    message = str(timestamp).encode() + b"." + raw_body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def sign(raw_body: bytes, secret: str, timestamp: int) -> str:
    """The header value a sender puts on `raw_body`."""
    return f"t={timestamp},v1={compute_signature(raw_body, secret, timestamp)}"


def parse_header(header: str) -> tuple[int, list[str]]:
    timestamp: int | None = None
    signatures: list[str] = []
    for item in header.split(","):
        key, sep, value = item.strip().partition("=")
        if not sep:
            continue
        if key == "t":
            try:
                timestamp = int(value)
            except ValueError:
                raise InvalidSignature("signature timestamp is not an integer") from None
        elif key == "v1":
            signatures.append(value)
    if timestamp is None:
        raise InvalidSignature("signature header has no timestamp")
    if not signatures:
        raise InvalidSignature("signature header has no v1 signature")
    return timestamp, signatures


def verify(
    raw_body: bytes,
    header: str | None,
    secret: str,
    *,
    now: int,
    tolerance: int = DEFAULT_TOLERANCE,
) -> int:
    """Raise InvalidSignature unless one v1 matches and `t` is within `tolerance` of `now`.

    Returns the signed timestamp. Future timestamps beyond the tolerance are refused too: a
    clock that far ahead is as suspicious as a replay.
    """
    if not header:
        raise InvalidSignature("signature header is missing")
    if not secret:
        raise InvalidSignature("no webhook secret is configured")
    timestamp, signatures = parse_header(header)
    expected = compute_signature(raw_body, secret, timestamp)
    # Check every candidate (no early exit) so timing does not reveal which one matched.
    matched = False
    for candidate in signatures:
        matched |= hmac.compare_digest(expected.encode(), candidate.encode())
    if not matched:
        raise InvalidSignature("no signature matches the payload")
    if abs(now - timestamp) > tolerance:
        raise InvalidSignature("signature timestamp is outside the tolerance")
    return timestamp
