"""WhatsApp template messages for booking events, and the 24 h reminder cron.

Handler: tenant config -> tx1 claim ('sending') -> Meta -> tx2 store wamid. A redelivery that
finds a wamid sends nothing. Meta takes no idempotency key, so a message whose fate is unknown
is never sent again (at most once beats twice on a customer's phone): one left 'sending' with
no error (the attempt stopped mid-send: a crash, a deadline) or whose answer was lost on the
wire (a read timeout, the connection cut after the request went out) is marked "outcome
unknown" and logged `whatsapp.outcome_unknown`, on every later redelivery too. Only a failure
Meta answered (or a request that never left) is sent again. Tenants with whatsapp off and
customers without a phone are a no-op.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import structlog
from arq.cron import cron
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.bookings import events
from app.db import is_unavailable
from app.gateways.accounts import Providers
from app.gateways.runtime import http_client, provider_config
from app.integrations.errors import PermanentProviderError, RetryableProviderError
from app.integrations.whatsapp import (
    WhatsAppClient,
    body_parameters,
)
from app.notifications.models import (
    BOOKING_CANCELLED,
    BOOKING_CONFIRMED,
    BOOKING_REFUNDED,
    BOOKING_REMINDER,
)
from app.notifications.service import (
    REMINDER_LEAD,
    REMINDER_TOPIC,
    MessageClaim,
    claim_message,
    queue_due_reminders,
    record_outcome_unknown,
    record_send_failure,
    store_wamid,
    tenants_with_due_reminders,
)
from app.outbox.dispatch import Dispatcher, HandlerContext
from app.outbox.errors import PermanentError, RetryableError
from app.outbox.models import OutboxEvent
from app.worker.config import WhatsAppConfig
from app.worker.context import context_of


class HasWhatsApp(Protocol):
    """What WhatsApp notifications use of the worker's JobDeps."""

    @property
    def providers(self) -> Providers: ...
    @property
    def whatsapp(self) -> WhatsAppConfig: ...


Ctx = HandlerContext[HasWhatsApp]

log = structlog.get_logger()

REMIND = "notifications.remind"
KIND_BY_TOPIC = {
    events.BOOKING_CONFIRMED: BOOKING_CONFIRMED,
    events.BOOKING_CANCELLED: BOOKING_CANCELLED,
    events.BOOKING_REFUNDED: BOOKING_REFUNDED,
    REMINDER_TOPIC: BOOKING_REMINDER,
}


async def _config_for(ctx: Ctx, tenant_id: uuid.UUID) -> WhatsAppConfig | None:
    deps = ctx.need()
    config = await provider_config(ctx.sessions, deps.providers, tenant_id, "whatsapp")
    if not config.enabled:
        return None
    base = deps.whatsapp
    merged = WhatsAppConfig(
        access_token=config.credentials.get("access_token") or base.access_token,
        phone_number_id=config.credentials.get("phone_number_id") or base.phone_number_id,
        api_base=base.api_base,
        api_version=base.api_version,
    )
    if not merged.access_token or not merged.phone_number_id:
        raise PermanentError("whatsapp is enabled but has no access token or phone number id")
    return merged


async def _send(
    ctx: Ctx, config: WhatsAppConfig, tenant_id: uuid.UUID, claim: MessageClaim
) -> str | None:
    """Meta's wamid; None when Meta's answer was lost (the message may be on the phone)."""
    client = WhatsAppClient(
        config.access_token,
        http_client(ctx.need().providers),
        api_base=config.api_base,
        api_version=config.api_version,
    )
    try:
        return await client.send_template(
            phone_number_id=config.phone_number_id,
            to=claim.to,
            template_name=claim.template,
            language_code=claim.language,
            components=body_parameters(*claim.parameters),
        )
    except (RetryableProviderError, PermanentProviderError) as error:
        if error.answer_lost:
            # Meta may have it: recorded so that no redelivery sends it a second time.
            async with ctx.sessions() as session:
                await record_outcome_unknown(session, tenant_id, claim.message_id, str(error))
            return None
        async with ctx.sessions() as session:
            await record_send_failure(session, tenant_id, claim.message_id, str(error))
        if isinstance(error, RetryableProviderError):
            raise RetryableError(str(error), retry_after=error.retry_after) from error
        raise PermanentError(str(error)) from error


async def send_booking_message(ctx: Ctx, event: OutboxEvent) -> None:
    kind = KIND_BY_TOPIC[event.topic]
    booking_id = uuid.UUID(str(event.payload.get("booking_id", event.aggregate_id)))
    config = await _config_for(ctx, event.tenant_id)
    if config is None:
        return
    async with ctx.sessions() as session:
        claim = await claim_message(
            session, event.tenant_id, booking_id=booking_id, kind=kind, outbox_id=event.id
        )
    if claim is not None and claim.uncertain:
        ctx.log(event).warning(
            "whatsapp.outcome_unknown", kind=kind, booking_id=str(booking_id), sent_again=False
        )
    if claim is None or claim.already_sent:
        return
    wamid = await _send(ctx, config, event.tenant_id, claim)
    if wamid is None:
        ctx.log(event).warning(
            "whatsapp.outcome_unknown", kind=kind, booking_id=str(booking_id), sent_again=False
        )
        return
    await _record_sent(ctx, event.tenant_id, claim.message_id, wamid)
    ctx.log(event).info("whatsapp.sent", kind=kind, booking_id=str(booking_id), wamid=wamid)


# How long a sent message's wamid is retried into a database that is restarting.
RECORD_PATIENCE_SECONDS = 5.0


async def _record_sent(
    ctx: HandlerContext, tenant_id: uuid.UUID, message_id: uuid.UUID, wamid: str
) -> None:
    """The message is out: record it even across a PostgreSQL restart. Failing the handler
    instead would send it again on the retry (Meta has no idempotency key)."""
    deadline = time.monotonic() + RECORD_PATIENCE_SECONDS
    delay = 0.25
    while True:
        try:
            async with ctx.sessions() as session:
                await store_wamid(session, tenant_id, message_id, wamid, datetime.now(UTC))
            return
        except Exception as error:
            if not is_unavailable(error) or time.monotonic() > deadline:
                raise
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)


async def queue_reminders(
    sessions: async_sessionmaker[AsyncSession], now: datetime, lead: timedelta = REMINDER_LEAD
) -> int:
    """Stage a reminder event per booking starting within `lead`, for every tenant with
    WhatsApp on; one tenant failing is logged and does not stop the others."""
    queued = 0
    for tenant_id in await tenants_with_due_reminders(sessions, now, lead):
        try:
            async with sessions() as session:
                queued += len(await queue_due_reminders(session, tenant_id, now, lead))
        except Exception:
            log.exception("notifications.remind_failed", tenant_id=str(tenant_id))
    if queued:
        log.info("notifications.reminders_queued", count=queued)
    return queued


async def remind(ctx: dict[str, Any]) -> int:
    return await queue_reminders(context_of(ctx).sessions, datetime.now(UTC))


# The outbox orders, retries and dead-letters each channel on its own: a number WhatsApp
# rejects holds back this booking's later messages only, not its calendar or live events.
CHANNEL = "notifications.whatsapp"


def register_handlers(dispatcher: Dispatcher) -> None:
    for topic in KIND_BY_TOPIC:
        dispatcher.register(topic, send_booking_message, channel=CHANNEL)


CRON_JOBS = [
    cron(remind, name=REMIND, minute=set(range(0, 60, 5)), run_at_startup=True, unique=True)
]
