"""The booking confirmation mail: on `booking.confirmed`, the customer gets the booking in
their language, the manage link and an .ics invitation.

Handler: tx (read the booking) -> SMTP -> mark sent in Redis. SMTP has no idempotency key:
the Message-ID is derived from the outbox id (mail clients collapse duplicates), and a
redelivery after a send whose outcome was recorded in Redis sends nothing. The one window
for a second mail is a crash after the server accepted it and before that mark (or Redis
being down then) — the outbox delivers at least once.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, formataddr, parseaddr
from typing import Protocol
from zoneinfo import ZoneInfo

from redis.exceptions import RedisError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.bookings.models import Booking
from app.bookings.queries import BookingView, with_payments
from app.catalog.models import Branch, Resource, Service
from app.db import set_tenant
from app.mail import ics, smtp
from app.outbox.dispatch import HandlerContext
from app.outbox.models import OutboxEvent
from app.presentation.formatting import Formatter
from app.presentation.i18n import translator
from app.presentation.links import ManageLinks
from app.tenancy.models import Tenant

CHANNEL = "mail.confirmation"
SENT_TTL_SECONDS = 7 * 24 * 3600


@dataclass(frozen=True)
class MailSetup:
    """Built by the worker (composition root). `smtp` None: mail is switched off."""

    smtp: smtp.SmtpConfig | None
    links: ManageLinks = field(repr=False)
    public_base_url: str


class HasMail(Protocol):
    """What the confirmation mail uses of the worker's wiring (app/worker/deps.JobDeps)."""

    @property
    def mail(self) -> MailSetup | None: ...


@dataclass(frozen=True, slots=True)
class Facts:
    booking: BookingView
    business: str
    slug: str
    service: str
    branch: str
    timezone: str
    resource: str


async def load_facts(
    session: AsyncSession, tenant_id: uuid.UUID, booking_id: uuid.UUID
) -> Facts | None:
    async with session.begin():
        await set_tenant(session, tenant_id)
        row = (
            await session.execute(
                select(Booking, Service.name, Branch.name, Branch.timezone, Resource.name)
                .join(
                    Service,
                    (Service.tenant_id == Booking.tenant_id) & (Service.id == Booking.service_id),
                )
                .join(
                    Branch,
                    (Branch.tenant_id == Booking.tenant_id) & (Branch.id == Booking.branch_id),
                )
                .join(
                    Resource,
                    (Resource.tenant_id == Booking.tenant_id)
                    & (Resource.id == Booking.resource_id),
                )
                .where(Booking.tenant_id == tenant_id, Booking.id == booking_id)
            )
        ).first()
        tenant = await session.get(Tenant, tenant_id)
        if row is None or tenant is None:
            return None
        booking, service, branch, timezone, resource = row
        view = (await with_payments(session, tenant_id, [BookingView.of(booking)]))[0]
    return Facts(view, tenant.name, tenant.slug, service, branch, timezone, resource)


def compose(facts: Facts, setup: MailSetup, event: OutboxEvent, now: datetime) -> EmailMessage:
    booking = facts.booking
    words = translator(booking.customer_locale)
    _ = words.gettext
    fmt = Formatter(words.locale)
    tz = ZoneInfo(facts.timezone)
    link = setup.public_base_url.rstrip("/") + setup.links.path(
        facts.slug, booking.tenant_id, booking.id
    )
    when = (
        f"{fmt.datetime(booking.start, tz)} \u2013 {fmt.time(booking.end, tz)} ({fmt.timezone(tz)})"
    )
    payment = booking.payment
    if payment is not None and payment.provider == "cash":
        paid = _("%(amount)s, to pay at the venue", amount=fmt.money(booking.total))
    else:
        paid = _("%(amount)s, paid", amount=fmt.money(booking.total))
    lines = [
        _("Hello %(name)s,", name=booking.customer_name),
        "",
        _("Your booking at %(business)s is confirmed.", business=facts.business),
        "",
        facts.service,
        when,
        facts.branch,
        _("With: %(name)s", name=facts.resource),
        _("Total: %(amount)s", amount=paid),
        "",
        _("To see, change or cancel your booking, open:"),
        link,
        "",
        _("The booking is attached as a calendar invitation."),
        "",
        facts.business,
    ]
    message = EmailMessage()
    message["Subject"] = _(
        "Booking confirmed: %(service)s at %(business)s",
        service=facts.service,
        business=facts.business,
    )
    message["From"] = _sender(setup, facts.business)
    message["To"] = formataddr((booking.customer_name, booking.customer_email or ""))
    message["Date"] = format_datetime(now)
    message["Message-ID"] = f"<booking-confirmed.{event.id}@reckon>"
    message["Auto-Submitted"] = "auto-generated"
    message.set_content("\n".join(lines))
    invitation = ics.build(
        ics.CalendarEvent(
            uid=f"{booking.id}@reckon",
            start=booking.start,
            end=booking.end,
            stamp=now,
            summary=f"{facts.service} — {facts.business}",
            location=facts.branch,
            description=f"{_('To see, change or cancel your booking, open:')} {link}",
            url=link,
            sequence=booking.version,
        )
    )
    message.add_attachment(
        invitation,
        maintype="text",
        subtype="calendar",
        filename="booking.ics",
        params={"method": "PUBLISH", "charset": "UTF-8"},
    )
    # After the body: set_content and add_attachment rewrite the Content-* headers.
    message["Content-Language"] = words.lang
    return message


def _sender(setup: MailSetup, business: str) -> str:
    if setup.smtp is None:
        return ""
    _, address = parseaddr(setup.smtp.sender)
    return formataddr((business, address))


def _sent_key(ctx: HandlerContext, event: OutboxEvent) -> str:
    return f"{ctx.namespace}:mail:sent:{CHANNEL}:{event.id}"


async def _already_sent(ctx: HandlerContext, event: OutboxEvent) -> bool:
    try:
        return bool(await ctx.redis.exists(_sent_key(ctx, event)))
    except RedisError:
        return False  # Redis is an optimisation here; PostgreSQL's outbox is the record


async def _mark_sent(ctx: HandlerContext, event: OutboxEvent) -> None:
    try:
        await ctx.redis.set(_sent_key(ctx, event), "1", ex=SENT_TTL_SECONDS)
    except RedisError:
        ctx.log(event).warning("mail.sent_mark_failed")


async def send_confirmation(ctx: HandlerContext[HasMail], event: OutboxEvent) -> None:
    setup = ctx.need().mail
    if setup is None or setup.smtp is None:
        return
    booking_id = uuid.UUID(str(event.payload.get("booking_id", event.aggregate_id)))
    async with ctx.sessions() as session:
        facts = await load_facts(session, event.tenant_id, booking_id)
    if facts is None or not facts.booking.customer_email:
        return
    if await _already_sent(ctx, event):
        return
    await smtp.send(setup.smtp, compose(facts, setup, event, datetime.now(UTC)))
    await _mark_sent(ctx, event)
    ctx.log(event).info("mail.sent", kind="confirmation", booking_id=str(booking_id))
