"""GET /api/v1/events/stream: the caller's tenant's booking events as server-sent events.

Subscribes to the tenant's Redis channel first, then replays from the outbox (under RLS)
what came after Last-Event-ID, so nothing committed in between is missed; events seen in
both are sent once. Event ids are outbox seqs. Redis being down ends the stream after the
replay; the client reconnects with Last-Event-ID.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import structlog
from litestar import Request, Router, get
from litestar.response import ServerSentEvent, ServerSentEventMessage
from redis.asyncio import Redis
from redis.exceptions import RedisError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.edge.http import principal
from app.events.live import LIVE_TOPIC_PREFIX, channel, decode, encode
from app.outbox.service import events_after
from app.validation import field_error

log = structlog.get_logger()

KEEPALIVE_SECONDS = 15.0
RECONNECT_MS = 3000


def parse_last_event_id(value: str | None) -> int | None:
    if value is None or not value.strip():
        return None
    try:
        seq = int(value.strip())
    except ValueError:
        raise field_error("Last-Event-ID", "must be an event id from this stream") from None
    return max(seq, 0)


@get("/events/stream", tags=["events"])
async def stream(request: Request[Any, Any, Any]) -> ServerSentEvent:
    caller = principal(request)
    last_seq = parse_last_event_id(request.headers.get("last-event-id"))
    state = request.app.state
    events = tenant_events(
        state.redis, state.sessions, state.settings.redis_namespace, caller.tenant_id, last_seq
    )
    return ServerSentEvent(events, retry_duration=RECONNECT_MS)


async def tenant_events(
    redis: Redis,
    sessions: async_sessionmaker[AsyncSession],
    namespace: str,
    tenant_id: uuid.UUID,
    last_seq: int | None,
) -> AsyncIterator[ServerSentEventMessage]:
    pubsub: Any = redis.pubsub()
    sent: set[int] = set()
    try:
        live = await _subscribe(pubsub, channel(namespace, tenant_id))
        if last_seq is not None:
            async with sessions() as session:
                missed = await events_after(session, tenant_id, last_seq, LIVE_TOPIC_PREFIX)
            for entry in missed:
                sent.add(entry.seq)
                yield ServerSentEventMessage(
                    data=encode(entry), id=str(entry.seq), event=entry.topic
                )
        if not live:
            return
        async for message in _live(pubsub, str(tenant_id), sent):
            yield message
    finally:
        await pubsub.aclose()


async def _subscribe(pubsub: Any, name: str) -> bool:
    try:
        await pubsub.subscribe(name)
    except (RedisError, OSError) as error:
        log.warning("events.subscribe_failed", error=str(error))
        return False
    return True


async def _live(
    pubsub: Any, tenant_id: str, sent: set[int]
) -> AsyncIterator[ServerSentEventMessage]:
    quiet_since = time.monotonic()
    while True:
        try:
            # Returns None early (e.g. on a swallowed subscribe confirmation), so the
            # keepalive is timed here rather than trusted to the timeout.
            message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
        except (RedisError, OSError) as error:
            log.warning("events.live_failed", error=str(error))
            return
        if message is None:
            if time.monotonic() - quiet_since >= KEEPALIVE_SECONDS:
                quiet_since = time.monotonic()
                yield ServerSentEventMessage(comment="keepalive", data=None)
            continue
        event = decode(message["data"])
        # The channel is per tenant already; checking again costs nothing.
        if event.get("tenant_id") != tenant_id or event["seq"] in sent:
            continue
        sent.add(event["seq"])
        quiet_since = time.monotonic()
        yield ServerSentEventMessage(
            data=message["data"].decode(), id=str(event["seq"]), event=event["topic"]
        )


def router() -> Router:
    return Router(path="/api/v1", route_handlers=[stream])
