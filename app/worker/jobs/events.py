"""Outbox handler publishing booking events to the tenant's Redis channel."""

from __future__ import annotations

from redis.exceptions import RedisError

from app.events.live import LIVE_TOPIC_PREFIX, channel, encode
from app.outbox.dispatch import Dispatcher, HandlerContext
from app.outbox.errors import RetryableError
from app.outbox.models import OutboxEvent


async def publish_live_event(ctx: HandlerContext, event: OutboxEvent) -> None:
    # Redis being away only delays the event: the relay retries it with backoff.
    try:
        await ctx.redis.publish(channel(ctx.namespace, event.tenant_id), encode(event))
    except (RedisError, OSError) as error:
        raise RetryableError(f"redis publish failed: {error}") from error


# Its own outbox channel: a failing WhatsApp or calendar call never holds back live events.
CHANNEL = "events.live"


def register_handlers(dispatcher: Dispatcher) -> None:
    dispatcher.register(LIVE_TOPIC_PREFIX + "*", publish_live_event, channel=CHANNEL)
