"""Signed manage-booking links: no account, just a token only Reckon can make.

The token names the business and the booking and carries an HMAC-SHA256 tag under a key
derived from SECRET_KEY, so it cannot be forged or moved to another booking or business.
It does not expire by itself: the pages refuse it once the booking has ended.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import uuid
from dataclasses import dataclass, field

VERSION = b"\x01"
TAG_BYTES = 16


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True, slots=True)
class BookingRef:
    tenant_id: uuid.UUID
    booking_id: uuid.UUID


@dataclass(frozen=True)
class ManageLinks:
    """Makes and checks manage-booking tokens; `secret` is the app's SECRET_KEY."""

    secret: str = field(repr=False)

    def _key(self) -> bytes:
        return hmac.new(
            self.secret.encode(), b"reckon-manage-booking-links", hashlib.sha256
        ).digest()

    def _tag(self, body: bytes) -> bytes:
        return hmac.new(self._key(), body, hashlib.sha256).digest()[:TAG_BYTES]

    def token(self, tenant_id: uuid.UUID, booking_id: uuid.UUID) -> str:
        body = VERSION + tenant_id.bytes + booking_id.bytes
        return _b64(body) + "." + _b64(self._tag(body))

    def verify(self, token: str) -> BookingRef | None:
        """The booking a token names, or None when it is malformed or not ours."""
        if len(token) > 200 or token.count(".") != 1:
            return None
        body_text, tag_text = token.split(".")
        try:
            body, tag = _unb64(body_text), _unb64(tag_text)
        except (binascii.Error, ValueError):
            return None
        if len(body) != 33 or body[:1] != VERSION:
            return None
        if not hmac.compare_digest(tag, self._tag(body)):
            return None
        return BookingRef(uuid.UUID(bytes=body[1:17]), uuid.UUID(bytes=body[17:33]))

    def path(self, slug: str, tenant_id: uuid.UUID, booking_id: uuid.UUID) -> str:
        return f"/b/{slug}/m/{self.token(tenant_id, booking_id)}"
