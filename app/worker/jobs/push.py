"""Web Push of new and cancelled bookings to the business's subscribed staff devices.

Handler: tx1 claim the subscriptions this event has not reached -> one encrypted POST per
device -> tx2 per device (sent / endpoint gone: subscription deleted / refused for good).
Devices that failed for a while (429, 5xx, timeouts) are retried by the outbox on this
channel alone; a redelivery sends only to them. Without VAPID keys push is off (no-op).
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Protocol

from app.gateways.accounts import Providers
from app.gateways.runtime import http_client
from app.gateways.webpush import Outcome, PushResult, VapidKeys, VapidSigner, push_topic, send_push
from app.notifications.push_service import (
    PUSH_TOPICS,
    PushTarget,
    claim_pushes,
    forget_subscription,
    mark_rejected,
    mark_sent,
    record_push_failure,
)
from app.outbox.dispatch import Dispatcher, HandlerContext
from app.outbox.errors import RetryableError
from app.outbox.models import OutboxEvent

CHANNEL = "notifications.webpush"
# A booking notice a day old is news no longer; the push service drops it after this.
TTL_SECONDS = 24 * 3600

_signers: dict[VapidKeys, VapidSigner] = {}


class HasVapid(Protocol):
    """What Web Push uses of the worker's JobDeps."""

    @property
    def providers(self) -> Providers: ...
    @property
    def vapid(self) -> VapidKeys: ...


Ctx = HandlerContext[HasVapid]


def _signer(ctx: Ctx) -> VapidSigner | None:
    keys = ctx.need().vapid
    if not keys.configured:
        return None
    signer = _signers.get(keys)
    if signer is None:
        signer = _signers[keys] = VapidSigner(keys)
    return signer


async def _record(ctx: Ctx, event: OutboxEvent, target: PushTarget, result: PushResult) -> None:
    tenant_id, subscription_id = event.tenant_id, target.subscription_id
    async with ctx.sessions() as session:
        if result.outcome is Outcome.SENT:
            await mark_sent(session, tenant_id, event.id, subscription_id, datetime.now(UTC))
        elif result.outcome is Outcome.GONE:
            await forget_subscription(session, tenant_id, subscription_id)
        elif result.outcome is Outcome.REJECTED:
            error = f"{result.status}: {result.detail}"
            await mark_rejected(session, tenant_id, event.id, subscription_id, error)
        else:
            error = f"{result.status}: {result.detail}"
            await record_push_failure(session, tenant_id, event.id, subscription_id, error)


async def send_booking_push(ctx: Ctx, event: OutboxEvent) -> None:
    signer = _signer(ctx)
    if signer is None:
        return
    booking_id = uuid.UUID(str(event.payload.get("booking_id", event.aggregate_id)))
    async with ctx.sessions() as session:
        batch = await claim_pushes(
            session, event.tenant_id, outbox_id=event.id, booking_id=booking_id, event=event.topic
        )
    if batch is None or not batch.targets:
        return
    payload = json.dumps(batch.message.as_json()).encode()
    topic = push_topic(booking_id.bytes)
    log = ctx.log(event)
    retry: list[PushResult] = []
    for target in batch.targets:
        result = await send_push(
            http_client(ctx.need().providers), signer, target, payload, ttl=TTL_SECONDS, topic=topic
        )
        await _record(ctx, event, target, result)
        log.info(
            "webpush.sent" if result.outcome is Outcome.SENT else "webpush.not_sent",
            outcome=result.outcome.value,
            status=result.status,
            subscription_id=str(target.subscription_id),
            booking_id=str(booking_id),
        )
        if result.outcome is Outcome.RETRY:
            retry.append(result)
    if retry:
        waits = [r.retry_after for r in retry if r.retry_after is not None]
        raise RetryableError(
            f"{len(retry)} push service(s) asked to retry: {retry[0].status} {retry[0].detail}",
            retry_after=max(waits) if waits else None,
        )


def register_handlers(dispatcher: Dispatcher) -> None:
    for topic in PUSH_TOPICS:
        dispatcher.register(topic, send_booking_push, channel=CHANNEL)
