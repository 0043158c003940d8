"""Web Push to a browser's push service (RFC 8030), with VAPID (RFC 8292) and the payload
encrypted to the subscription's keys (aes128gcm, RFC 8291).

pywebpush encrypts and py_vapid signs; the POST goes through the worker's shared httpx client
(timeouts, connection reuse, and the same HTTP boundary tests use for every provider). The
push service's answer is classified here, so the handler decides on outcomes, not codes.
"""

from __future__ import annotations

import base64
import enum
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import httpx
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from py_vapid import Vapid
from pywebpush import WebPusher

from app.notifications.push_service import PushTarget

# A VAPID JWT lives at most 24 h (RFC 8292 §2); ours 12 h, signed again after 11.
JWT_LIFETIME = 12 * 3600
JWT_REUSE = 11 * 3600
TOPIC_LENGTH = 32  # RFC 8030 §5.4: at most 32 characters of the URL-safe base64 alphabet


@dataclass(frozen=True, slots=True)
class VapidKeys:
    """The application server's key pair: the public key (base64url, uncompressed point) is
    what browsers subscribe with; the private key (base64url, 32 raw bytes) signs."""

    public_key: str = ""
    private_key: str = field(default="", repr=False)
    subject: str = "mailto:push@reckon.localhost"

    @property
    def configured(self) -> bool:
        return bool(self.public_key and self.private_key)


class Outcome(enum.Enum):
    SENT = "sent"
    GONE = "gone"  # 404/410: the subscription no longer exists
    REJECTED = "rejected"  # refused for good (bad request, wrong key, too large)
    RETRY = "retry"  # 429, 5xx, timeouts, connection errors


@dataclass(frozen=True, slots=True)
class PushResult:
    outcome: Outcome
    status: int | None
    detail: str = ""
    retry_after: float | None = None


def generate_vapid_keys() -> VapidKeys:
    """A fresh P-256 key pair in the encodings browsers and pywebpush take."""
    private = ec.generate_private_key(ec.SECP256R1())
    raw = private.private_numbers().private_value.to_bytes(32, "big")
    point = private.public_key().public_bytes(
        encoding=serialization.Encoding.X962,
        format=serialization.PublicFormat.UncompressedPoint,
    )
    return VapidKeys(public_key=_b64(point), private_key=_b64(raw))


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def push_topic(name: bytes) -> str:
    """A Topic header from bytes (e.g. a booking id): a newer message with the same topic
    replaces an undelivered older one at the push service."""
    return _b64(name)[:TOPIC_LENGTH]


class VapidSigner:
    """Signs the VAPID JWT once per push service origin and reuses it while it is fresh."""

    def __init__(self, keys: VapidKeys) -> None:
        self._keys = keys
        self._vapid = Vapid.from_string(private_key=keys.private_key)
        self._cache: dict[str, tuple[float, dict[str, str]]] = {}

    def headers(self, endpoint: str, now: float | None = None) -> dict[str, str]:
        parts = urlsplit(endpoint)
        audience = f"{parts.scheme}://{parts.netloc}"
        now = time.time() if now is None else now
        cached = self._cache.get(audience)
        if cached is not None and now - cached[0] < JWT_REUSE:
            return cached[1]
        claims = {"aud": audience, "exp": int(now) + JWT_LIFETIME, "sub": self._keys.subject}
        signed: dict[str, str] = dict(self._vapid.sign(claims))
        self._cache[audience] = (now, signed)
        return signed


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after", "")
    return float(value) if value.isdigit() else None


def classify(response: httpx.Response) -> PushResult:
    status = response.status_code
    detail = response.text[:300]
    if status in (200, 201, 202):
        return PushResult(Outcome.SENT, status)
    if status in (404, 410):
        return PushResult(Outcome.GONE, status, detail)
    if status == 429 or status >= 500:
        return PushResult(Outcome.RETRY, status, detail, _retry_after(response))
    return PushResult(Outcome.REJECTED, status, detail)


async def send_push(
    http: httpx.AsyncClient,
    signer: VapidSigner,
    target: PushTarget,
    payload: bytes,
    *,
    ttl: int,
    topic: str,
    urgency: str = "normal",
) -> PushResult:
    """Encrypt `payload` to the subscription and POST it to its endpoint."""
    pusher = WebPusher(
        {"endpoint": target.endpoint, "keys": {"p256dh": target.p256dh, "auth": target.auth}}
    )
    body: bytes = pusher.encode(payload, content_encoding="aes128gcm")["body"]
    headers = {
        **signer.headers(target.endpoint),
        "Content-Encoding": "aes128gcm",
        "Content-Type": "application/octet-stream",
        "TTL": str(ttl),
        "Topic": topic,
        "Urgency": urgency,
    }
    try:
        response = await http.post(target.endpoint, content=body, headers=headers)
    except httpx.TransportError as error:
        return PushResult(Outcome.RETRY, None, f"{type(error).__name__}: {error}")
    return classify(response)
