"""The transactions around a WhatsApp send, and the reminder sweep.

A send is tx1 `claim_message` (row marked 'sending') -> Meta -> tx2 `store_wamid`. Meta takes
no idempotency key, so the one window where a message can go out twice is a crash (or a
lost response) after Meta accepted it and before tx2 committed: the retry finds 'sending'
without a wamid and sends again. Once a wamid is stored no retry sends.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.bookings.models import CONFIRMED, Booking
from app.catalog.models import Branch, Service
from app.db import new_id, set_lock_timeout, set_tenant
from app.notifications.models import (
    BOOKING_REMINDER,
    QUEUED,
    SENDING,
    SENT,
    TEMPLATE_LANGUAGES,
    WhatsAppMessage,
    dedupe_key,
    template_name,
)
from app.outbox.service import stage
from app.tenancy.models import Tenant

REMINDER_LEAD = timedelta(hours=24)
REMINDER_TOPIC = "notification.booking_reminder"
MIN_PHONE_DIGITS = 8


@dataclass(frozen=True, slots=True)
class MessageClaim:
    message_id: uuid.UUID
    already_sent: bool
    to: str
    template: str
    language: str
    parameters: tuple[str, ...]
    uncertain: bool = False  # an earlier attempt stopped mid-send: not sent again


# Marks a message whose fate at Meta is unknown (last_error starts with it): never sent again.
OUTCOME_UNKNOWN = "outcome unknown"


def _outcome_unknown(message: WhatsAppMessage) -> bool:
    """An attempt was under way at Meta and its answer was lost: it stopped mid-send (a crash,
    a deadline: `sending` with no error recorded), or Meta's answer never arrived (an error
    marked OUTCOME_UNKNOWN). Meta takes no idempotency key, so such a message is never sent
    again, however often its event is redelivered."""
    if message.wamid is not None or message.status != SENDING:
        return False
    return message.last_error is None or message.last_error.startswith(OUTCOME_UNKNOWN)


def whatsapp_number(phone: str | None) -> str | None:
    """Meta wants the international number as digits only (no '+', spaces or 00 prefix)."""
    if not phone:
        return None
    digits = re.sub(r"\D", "", phone)
    if phone.strip().startswith("00"):
        digits = digits[2:]
    return digits if len(digits) >= MIN_PHONE_DIGITS else None


@dataclass(frozen=True, slots=True)
class _BookingFacts:
    status: str
    to: str | None
    language: str
    parameters: tuple[str, ...]


async def _booking_facts(
    session: AsyncSession, tenant_id: uuid.UUID, booking_id: uuid.UUID
) -> _BookingFacts | None:
    row = (
        await session.execute(
            select(Booking, Service.name, Branch.timezone, Tenant.name)
            .join(
                Service,
                (Service.tenant_id == Booking.tenant_id) & (Service.id == Booking.service_id),
            )
            .join(
                Branch, (Branch.tenant_id == Booking.tenant_id) & (Branch.id == Booking.branch_id)
            )
            .join(Tenant, Tenant.id == Booking.tenant_id)
            .where(Booking.tenant_id == tenant_id, Booking.id == booking_id)
        )
    ).first()
    if row is None:
        return None
    booking, service_name, timezone, business = row
    local_start = booking.starts_at.astimezone(ZoneInfo(timezone)).strftime("%Y-%m-%d %H:%M")
    # Template body parameters, in order: {{1}} customer, {{2}} business, {{3}} service,
    # {{4}} local start time. Every reckon_* template is approved with these four.
    return _BookingFacts(
        booking.status,
        whatsapp_number(booking.customer_phone),
        TEMPLATE_LANGUAGES.get(booking.customer_locale, TEMPLATE_LANGUAGES["en"]),
        (booking.customer_name, business, service_name, local_start),
    )


async def claim_message(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    *,
    booking_id: uuid.UUID,
    kind: str,
    outbox_id: uuid.UUID | None,
) -> MessageClaim | None:
    """tx1: the message to send, marked 'sending'; `already_sent` when a wamid is stored.
    None when there is nothing to send (no booking, no usable phone, a reminder for a
    booking that is no longer confirmed)."""
    async with session.begin():
        await set_tenant(session, tenant_id)
        facts = await _booking_facts(session, tenant_id, booking_id)
        if facts is None or facts.to is None:
            return None
        if kind == BOOKING_REMINDER and facts.status != CONFIRMED:
            return None
        key = dedupe_key(kind, booking_id, outbox_id)
        await session.execute(
            insert(WhatsAppMessage)
            .values(
                tenant_id=tenant_id,
                id=new_id(),
                booking_id=booking_id,
                kind=kind,
                dedupe_key=key,
                outbox_id=outbox_id,
                status=QUEUED,
            )
            .on_conflict_do_nothing(index_elements=["tenant_id", "dedupe_key"])
        )
        await set_lock_timeout(session)
        message = (
            await session.scalars(
                select(WhatsAppMessage)
                .where(WhatsAppMessage.tenant_id == tenant_id, WhatsAppMessage.dedupe_key == key)
                .with_for_update()
            )
        ).one()
        # A previous attempt marked it 'sending' and never recorded an outcome: it stopped
        # mid-send (a crash), so Meta may have it. Meta takes no idempotency key: sending
        # again could put it on the phone twice, so it is not sent again; on-call sees why.
        # (A failure Meta answered leaves its last_error; a crash leaves none.)
        uncertain = _outcome_unknown(message)
        claim = MessageClaim(
            message.id,
            message.wamid is not None or uncertain,
            facts.to,
            template_name(kind),
            facts.language,
            facts.parameters,
            uncertain=uncertain,
        )
        if uncertain and message.last_error is None:
            message.last_error = f"{OUTCOME_UNKNOWN}: an attempt stopped mid-send; not sent again"
        if not claim.already_sent:
            message.status = SENDING
            message.last_error = None
            message.attempts += 1
            message.outbox_id = message.outbox_id or outbox_id
            message.template, message.language, message.to_phone = (
                claim.template,
                claim.language,
                claim.to,
            )
        return claim


async def store_wamid(
    session: AsyncSession, tenant_id: uuid.UUID, message_id: uuid.UUID, wamid: str, now: datetime
) -> None:
    """tx2: Meta accepted the message; from now on no retry sends it."""
    async with session.begin():
        await set_tenant(session, tenant_id)
        await session.execute(
            update(WhatsAppMessage)
            .where(WhatsAppMessage.tenant_id == tenant_id, WhatsAppMessage.id == message_id)
            .values(status=SENT, wamid=wamid, sent_at=now, last_error=None)
        )


async def record_send_failure(
    session: AsyncSession, tenant_id: uuid.UUID, message_id: uuid.UUID, error: str
) -> None:
    async with session.begin():
        await set_tenant(session, tenant_id)
        await session.execute(
            update(WhatsAppMessage)
            .where(
                WhatsAppMessage.tenant_id == tenant_id,
                WhatsAppMessage.id == message_id,
                WhatsAppMessage.wamid.is_(None),
            )
            # A known failure (last_error set): the next attempt sends again (see `uncertain`).
            .values(last_error=error[:1000])
        )


async def record_outcome_unknown(
    session: AsyncSession, tenant_id: uuid.UUID, message_id: uuid.UUID, error: str
) -> None:
    """Meta may have the message but its answer was lost (a read timeout, a connection cut
    after the request went out): recorded so no later attempt sends it again."""
    await record_send_failure(
        session, tenant_id, message_id, f"{OUTCOME_UNKNOWN}: {error}; not sent again"
    )


async def queue_due_reminders(
    session: AsyncSession, tenant_id: uuid.UUID, now: datetime, lead: timedelta = REMINDER_LEAD
) -> list[uuid.UUID]:
    """Claim a reminder row per due booking and stage its event, in one transaction; the
    unique (booking, kind) key makes a second sweep (or a concurrent one) queue nothing."""
    async with session.begin():
        await set_tenant(session, tenant_id)
        due = await session.scalars(
            select(Booking.id)
            .where(
                Booking.tenant_id == tenant_id,
                Booking.status == CONFIRMED,
                Booking.customer_phone.is_not(None),
                Booking.starts_at > now,
                Booking.starts_at <= now + lead,
                Booking.created_at <= Booking.starts_at - lead,
            )
            .order_by(Booking.id)
        )
        queued: list[uuid.UUID] = []
        for booking_id in due.all():
            inserted = await session.scalar(
                insert(WhatsAppMessage)
                .values(
                    tenant_id=tenant_id,
                    id=new_id(),
                    booking_id=booking_id,
                    kind=BOOKING_REMINDER,
                    dedupe_key=dedupe_key(BOOKING_REMINDER, booking_id, None),
                    status=QUEUED,
                )
                .on_conflict_do_nothing(index_elements=["tenant_id", "dedupe_key"])
                .returning(WhatsAppMessage.id)
            )
            if inserted is None:
                continue
            payload = {"booking_id": booking_id, "kind": BOOKING_REMINDER}
            await stage(session, tenant_id, REMINDER_TOPIC, "booking", booking_id, payload)
            queued.append(booking_id)
        return queued


async def tenants_with_due_reminders(
    sessions: async_sessionmaker[AsyncSession], now: datetime, lead: timedelta = REMINDER_LEAD
) -> list[uuid.UUID]:
    async with sessions() as session, session.begin():
        rows = await session.execute(
            text("SELECT notifications_tenants_with_due_reminders(:now, :lead)"),
            {"now": now, "lead": lead},
        )
        return sorted(rows.scalars().all())
