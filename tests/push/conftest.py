"""A push service on loopback (aiohttp) that keeps what it receives, and a browser-side
subscription: a P-256 key pair and an auth secret, generated as a browser would."""

from __future__ import annotations

import base64
import os
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from aiohttp import web
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from litestar import Litestar
from litestar.testing import AsyncTestClient
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.gateways.accounts import Providers
from app.gateways.webpush import VapidKeys, generate_vapid_keys
from app.outbox.dispatch import HandlerContext
from app.settings import Settings
from app.worker.deps import JobDeps


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class PushService:
    """Answers each path with the statuses queued for it (then 201), like a push service."""

    base: str = ""
    received: list[Received] = field(default_factory=list)
    answers: dict[str, list[int]] = field(default_factory=dict)

    def endpoint(self, name: str) -> str:
        return f"{self.base}/push/{name}"

    def to(self, name: str) -> list[Received]:
        return [r for r in self.received if r.path == f"/push/{name}"]

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.received.append(Received(request.path, dict(request.headers), body))
        queued = self.answers.get(request.path.rsplit("/", 1)[-1], [])
        status = queued.pop(0) if queued else 201
        headers = {"Location": f"{self.base}/message/{uuid.uuid4()}"} if status == 201 else {}
        return web.Response(status=status, headers=headers)


@dataclass(frozen=True)
class Device:
    """A browser's PushSubscription: the push service URL and the keys it decrypts with."""

    endpoint: str
    private_key: ec.EllipticCurvePrivateKey
    auth: bytes

    @property
    def p256dh(self) -> str:
        point = self.private_key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        return b64(point)

    def as_json(self) -> dict[str, Any]:
        return {
            "endpoint": self.endpoint,
            "expirationTime": None,
            "keys": {"p256dh": self.p256dh, "auth": b64(self.auth)},
        }


def new_device(service: PushService, name: str) -> Device:
    return Device(service.endpoint(name), ec.generate_private_key(ec.SECP256R1()), os.urandom(16))


@pytest.fixture
async def push_service() -> AsyncIterator[PushService]:
    service = PushService()
    application = web.Application()
    application.router.add_post("/push/{name}", service.handle)
    runner = web.AppRunner(application)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    service.base = f"http://127.0.0.1:{port}"
    yield service
    await runner.cleanup()


@pytest.fixture(scope="session")
def vapid() -> VapidKeys:
    keys = generate_vapid_keys()
    return VapidKeys(keys.public_key, keys.private_key, "mailto:ops@reckon.test")


@pytest.fixture
async def push_ctx(
    sessions: async_sessionmaker[AsyncSession], settings: Settings, vapid: VapidKeys
) -> AsyncIterator[HandlerContext]:
    redis = Redis.from_url(settings.redis_url)
    async with httpx.AsyncClient(timeout=5.0) as http:
        yield HandlerContext(
            sessions=sessions,
            redis=redis,
            namespace=settings.redis_namespace,
            worker_id="test-worker",
            deps=JobDeps(providers=Providers(http=http), vapid=vapid),
        )
    await redis.aclose()


@pytest.fixture(autouse=True)
def fresh_cookies(client: AsyncTestClient[Litestar]) -> None:
    client.cookies.clear()
