"""The handler registry: topic -> async handlers. Built in the worker (composition root).

Domains contribute handlers from their jobs module with `register_handlers(dispatcher)`.
A topic is exact (`booking.confirmed`) or a prefix pattern (`booking.*`); every matching
handler runs for an event, so each must be idempotent on its own (a retry re-runs all).
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import structlog
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.outbox.errors import PermanentError
from app.outbox.models import OutboxEvent


@dataclass(frozen=True)
class HandlerContext:
    """What a handler may use. Handlers open their own transactions and set the tenant."""

    sessions: async_sessionmaker[AsyncSession]
    redis: Redis
    namespace: str
    worker_id: str
    extras: dict[str, Any] = field(default_factory=dict)

    def log(self, event: OutboxEvent) -> Any:
        return structlog.get_logger().bind(
            outbox_id=str(event.id), topic=event.topic, tenant_id=str(event.tenant_id)
        )

    def idempotency_key(self, event: OutboxEvent) -> str:
        """Providers dedupe on this: derived from our id, stable across every retry."""
        return str(event.id)

    def tenant_channel(self, tenant_id: uuid.UUID) -> str:
        return f"{self.namespace}:events:{tenant_id}"


Handler = Callable[[HandlerContext, OutboxEvent], Awaitable[None]]
Registrar = Callable[["Dispatcher"], None]


class UnknownTopic(PermanentError):
    pass


class Dispatcher:
    def __init__(self) -> None:
        self._exact: dict[str, list[Handler]] = {}
        self._prefixes: list[tuple[str, Handler]] = []

    def register(self, topic: str, handler: Handler) -> None:
        if topic.endswith(".*"):
            self._prefixes.append((topic[:-1], handler))
        else:
            self._exact.setdefault(topic, []).append(handler)

    def handlers_for(self, topic: str) -> list[Handler]:
        matching = list(self._exact.get(topic, []))
        matching.extend(handler for prefix, handler in self._prefixes if topic.startswith(prefix))
        return matching

    @property
    def topics(self) -> list[str]:
        return sorted([*self._exact, *(prefix + "*" for prefix, _ in self._prefixes)])

    async def dispatch(self, ctx: HandlerContext, event: OutboxEvent) -> None:
        handlers = self.handlers_for(event.topic)
        if not handlers:
            raise UnknownTopic(f"no handler registered for topic {event.topic!r}")
        for handler in handlers:
            await handler(ctx, event)
