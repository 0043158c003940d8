"""The handler registry: topic -> channels, each served by one async handler. Built in the
worker (composition root).

Domains contribute handlers from their jobs module with `register_handlers(dispatcher)`.
A topic is exact (`booking.confirmed`) or a prefix pattern (`booking.*`). A channel is one
independent effect (a WhatsApp message, a calendar entry, a live event), named when it is
registered (else after its handler): the relay tracks, retries and orders each channel of an
event on its own, so one channel failing neither re-runs nor holds back the others. Channel
names are stored with pending deliveries: keep them stable across deploys.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Generic

import structlog
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from typing_extensions import TypeVar

from app.outbox.errors import PermanentError
from app.outbox.models import OutboxEvent

# What the composition root wired for handlers; a handler that uses none of it takes any.
D = TypeVar("D", default=Any)


@dataclass(frozen=True)
class HandlerContext(Generic[D]):
    """What a handler may use. Handlers open their own transactions and set the tenant.

    `deps` is what the composition root wired for the handlers (the worker's typed JobDeps,
    app/worker/deps.py); the outbox knows nothing of it. A handler states what it needs as a
    Protocol (e.g. `HandlerContext[HasMail]`) and reads it through `need()`."""

    sessions: async_sessionmaker[AsyncSession]
    redis: Redis
    namespace: str
    worker_id: str
    deps: D | None = None

    def need(self) -> D:
        if self.deps is None:
            raise PermanentError("the worker wired no dependencies for handlers")
        return self.deps

    def log(self, event: OutboxEvent) -> Any:
        return structlog.get_logger().bind(
            outbox_id=str(event.id), topic=event.topic, tenant_id=str(event.tenant_id)
        )

    def idempotency_key(self, event: OutboxEvent) -> str:
        """Providers dedupe on this: derived from our id, stable across every retry."""
        return str(event.id)

    def tenant_channel(self, tenant_id: uuid.UUID) -> str:
        return f"{self.namespace}:events:{tenant_id}"


Handler = Callable[[HandlerContext[Any], OutboxEvent], Awaitable[None]]
Registrar = Callable[["Dispatcher"], None]


class UnknownTopic(PermanentError):
    pass


class UnknownChannel(PermanentError):
    pass


@dataclass(frozen=True, slots=True)
class Route:
    channel: str
    handler: Handler


def default_channel(handler: Handler) -> str:
    name = getattr(handler, "__qualname__", None) or type(handler).__qualname__
    return f"{getattr(handler, '__module__', None) or '?'}.{name}"


class Dispatcher:
    def __init__(self) -> None:
        self._exact: dict[str, list[Route]] = {}
        self._prefixes: list[tuple[str, Route]] = []
        self._handlers: dict[str, Handler] = {}
        self._routes: dict[str, tuple[Route, ...]] = {}

    def register(self, topic: str, handler: Handler, *, channel: str | None = None) -> None:
        """One channel is one handler; it may serve several topics."""
        name = channel or default_channel(handler)
        known = self._handlers.setdefault(name, handler)
        if known != handler:
            raise ValueError(f"channel {name!r} is already served by {known!r}")
        route = Route(name, handler)
        self._routes.clear()
        if topic.endswith(".*"):
            self._prefixes.append((topic[:-1], route))
        else:
            self._exact.setdefault(topic, []).append(route)

    def routes_for(self, topic: str) -> tuple[Route, ...]:
        """The channels of an event, each once, in registration order (exact topics first)."""
        cached = self._routes.get(topic)
        if cached is None:
            matching = list(self._exact.get(topic, []))
            matching.extend(r for prefix, r in self._prefixes if topic.startswith(prefix))
            routes: dict[str, Route] = {}
            for route in matching:
                routes.setdefault(route.channel, route)
            cached = self._routes[topic] = tuple(routes.values())
        return cached

    def route(self, topic: str, channel: str) -> Route | None:
        return next((r for r in self.routes_for(topic) if r.channel == channel), None)

    def handlers_for(self, topic: str) -> list[Handler]:
        return [route.handler for route in self.routes_for(topic)]

    @property
    def topics(self) -> list[str]:
        return sorted([*self._exact, *(prefix + "*" for prefix, _ in self._prefixes)])

    @property
    def channels(self) -> list[str]:
        return sorted(self._handlers)

    async def dispatch(self, ctx: HandlerContext, event: OutboxEvent) -> None:
        """Every channel of the event, one after another (tests drive handlers this way; the
        relay runs and records each channel on its own)."""
        routes = self.routes_for(event.topic)
        if not routes:
            raise UnknownTopic(f"no handler registered for topic {event.topic!r}")
        for route in routes:
            await route.handler(ctx, event)
