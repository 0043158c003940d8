"""The confirmation mail: sent over real SMTP (aiosmtpd on loopback) by the outbox handler on
`booking.confirmed`, in the customer's language, with the manage link and an .ics."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from litestar.testing import AsyncTestClient
from redis.asyncio import Redis
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.cli.mail_catcher import SmtpCatcher, catcher_app, free_port
from app.mail import ics
from app.mail.confirmation import CHANNEL, MailSetup
from app.mail.smtp import SmtpConfig
from app.outbox.dispatch import HandlerContext
from app.outbox.errors import PermanentError, RetryableError
from app.outbox.models import OutboxEvent
from app.presentation.links import ManageLinks
from app.settings import Settings
from app.worker.deps import JobDeps
from app.worker.registry import build_dispatcher
from tests.web.support import Client, Site, at, details_form, make_site, tomorrow_local

BASE = "http://testserver.local"


@pytest.fixture
def smtp_server() -> Iterator[SmtpCatcher]:
    server = SmtpCatcher().start()
    yield server
    server.stop()


@pytest.fixture
async def redis(settings: Settings) -> AsyncIterator[Redis]:
    client = Redis.from_url(settings.redis_url)
    yield client
    await client.aclose()


def context(
    sessions: async_sessionmaker[AsyncSession], redis: Redis, settings: Settings, port: int
) -> HandlerContext[JobDeps]:
    setup = MailSetup(
        smtp=SmtpConfig(host="127.0.0.1", port=port, sender="Reckon <bookings@reckon.test>"),
        links=ManageLinks(settings.secret_key),
        public_base_url=BASE,
    )
    return HandlerContext(
        sessions=sessions,
        redis=redis,
        namespace=f"mail-test-{uuid.uuid4().hex[:8]}",
        worker_id="test",
        deps=JobDeps(mail=setup),
    )


async def confirmed_event(owner_engine: AsyncEngine, site: Site) -> OutboxEvent:
    async with owner_engine.connect() as conn:
        row = (
            await conn.execute(
                text(
                    "SELECT tenant_id, id, seq, topic, aggregate_type, aggregate_id, payload, "
                    "created_at FROM outbox WHERE tenant_id = :t AND topic = 'booking.confirmed'"
                ),
                {"t": site.business.tenant_id},
            )
        ).one()
    return OutboxEvent(**row._asdict(), attempts=1)


async def book(client: Client, site: Site, **fields: str) -> None:
    form = details_form(site, at(tomorrow_local(), 11), idempotency_key=uuid.uuid4().hex, **fields)
    query = f"?lang={fields.pop('lang')}" if "lang" in fields else ""
    placed = await client.post(
        f"/b/{site.slug}/book/details{query}", data=form, follow_redirects=False
    )
    assert placed.status_code == 303, placed.text


def handler() -> Any:
    route = build_dispatcher().route("booking.confirmed", CHANNEL)
    assert route is not None, "the worker registers the confirmation mail"
    return route.handler


def test_ics_escapes_text_and_folds_long_lines_without_splitting_characters() -> None:
    start = datetime(2030, 1, 5, 8, 0, tzinfo=UTC)
    body = ics.build(
        ics.CalendarEvent(
            uid="b-1@reckon",
            start=start,
            end=start.replace(hour=9),
            stamp=start,
            summary="Haircut; wash, blow-dry — صالون النيل " * 3,
            description="Line one\nLine two",
        )
    ).decode()
    raw_lines = body.split("\r\n")
    assert all(len(line.encode()) <= 75 for line in raw_lines)
    lines = ics.unfold(body)
    assert "DTSTART:20300105T080000Z" in lines
    assert "DESCRIPTION:Line one\\nLine two" in lines
    summary = next(line for line in lines if line.startswith("SUMMARY:"))
    assert summary == "SUMMARY:" + "Haircut\\; wash\\, blow-dry — صالون النيل " * 3
    assert body.endswith("END:VCALENDAR\r\n")


async def test_a_confirmed_booking_mails_the_customer_once_with_link_and_invitation(
    client: Client,
    owner_engine: AsyncEngine,
    sessions: async_sessionmaker[AsyncSession],
    redis: Redis,
    settings: Settings,
    smtp_server: SmtpCatcher,
) -> None:
    site = await make_site(client, name="Nile Hair & Beauty")
    await book(client, site)
    event = await confirmed_event(owner_engine, site)
    ctx = context(sessions, redis, settings, smtp_server.port)
    await handler()(ctx, event)
    [mail] = await smtp_server.catcher.wait_for(1)
    assert mail.to == ("layla@example.com",)
    assert mail.subject == "Booking confirmed: Haircut at Nile Hair & Beauty"
    assert mail.message["Message-ID"] == f"<booking-confirmed.{event.id}@reckon>"
    assert "Hello Layla Hassan," in mail.text
    assert "EGP350.00, to pay at the venue" in mail.text
    link = next(line for line in mail.text.splitlines() if line.startswith(BASE))
    page = await client.get(link.removeprefix(BASE))
    assert page.status_code == 200 and "Your booking is confirmed" in page.text
    [invitation] = mail.attachments
    assert invitation.content_type == "text/calendar"
    lines = ics.unfold(invitation.payload.decode())
    start = at(tomorrow_local(), 11).astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    assert f"DTSTART:{start}" in lines
    assert f"URL:{link}" in lines
    # Delivered at least once: a redelivery of the same event sends nothing more.
    await handler()(ctx, event)
    assert len(smtp_server.catcher.mails()) == 1
    # What `reckon dev` shows at the catcher's page.
    async with AsyncTestClient(app=catcher_app(smtp_server.catcher)) as catcher:
        listing = await catcher.get("/")
        assert "Booking confirmed: Haircut at Nile Hair &amp; Beauty" in listing.text
        shown = await catcher.get(f"/mail/{mail.number}")
        assert "Hello Layla Hassan," in shown.text and "booking.ics" in shown.text
        ics_file = await catcher.get(f"/mail/{mail.number}/attachments/0")
        assert ics_file.headers["content-type"].startswith("text/calendar")


async def test_an_arabic_customer_gets_the_mail_in_arabic(
    client: Client,
    owner_engine: AsyncEngine,
    sessions: async_sessionmaker[AsyncSession],
    redis: Redis,
    settings: Settings,
    smtp_server: SmtpCatcher,
) -> None:
    site = await make_site(client, name="صالون النيل")
    await book(client, site, lang="ar")
    await handler()(
        context(sessions, redis, settings, smtp_server.port),
        await confirmed_event(owner_engine, site),
    )
    [mail] = await smtp_server.catcher.wait_for(1)
    assert mail.message["Content-Language"] == "ar"
    assert "صالون النيل" in mail.subject
    assert "Booking confirmed" not in mail.subject


async def test_without_smtp_configured_or_an_email_nothing_is_sent(
    client: Client,
    owner_engine: AsyncEngine,
    sessions: async_sessionmaker[AsyncSession],
    redis: Redis,
    settings: Settings,
    smtp_server: SmtpCatcher,
) -> None:
    site = await make_site(client)
    start = at(tomorrow_local(), 9).isoformat()
    created = await client.post(
        f"/public/{site.slug}/bookings",
        json={
            "service_id": site.services["haircut"],
            "branch_id": site.branch_id,
            "start": start,
            "customer": {"name": "No Email", "phone": "+20 100 000 0001"},
            "payment": {"provider": "cash"},
        },
    )
    assert created.status_code == 201, created.text
    event = await confirmed_event(owner_engine, site)
    await handler()(context(sessions, redis, settings, smtp_server.port), event)
    off = HandlerContext(
        sessions=sessions, redis=redis, namespace="x", worker_id="t", deps=JobDeps()
    )
    await handler()(off, event)
    assert smtp_server.catcher.mails() == []


async def test_smtp_trouble_is_retryable_and_a_refused_recipient_is_permanent(
    client: Client,
    owner_engine: AsyncEngine,
    sessions: async_sessionmaker[AsyncSession],
    redis: Redis,
    settings: Settings,
) -> None:
    site = await make_site(client)
    await book(client, site)
    event = await confirmed_event(owner_engine, site)
    with pytest.raises(RetryableError):
        await handler()(context(sessions, redis, settings, free_port()), event)

    class Refusing:
        async def handle_RCPT(
            self, server: Any, session: Any, envelope: Any, address: str, options: Any
        ) -> str:
            return "550 5.1.1 No such mailbox"

    refusing = SmtpCatcher(handler=Refusing()).start()
    try:
        with pytest.raises(PermanentError):
            await handler()(context(sessions, redis, settings, refusing.port), event)
    finally:
        refusing.stop()
