"""Worker jobs: expire unpaid holds and mark no-shows, every minute, across tenants.

The SECURITY DEFINER function bookings_tenants_with_due_work only names tenants with due
work; each tenant is then handled by the use cases under its own RLS scope. Safe to run
twice: a booking already moved no longer matches.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from arq.cron import cron
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.bookings.lifecycle import NO_SHOW_GRACE, expire_holds, mark_due_no_shows
from app.worker.context import context_of

log = structlog.get_logger()

SWEEP = "bookings.sweep"


async def tenants_with_due_work(
    sessions: async_sessionmaker[AsyncSession], now: datetime, grace: timedelta = NO_SHOW_GRACE
) -> list[uuid.UUID]:
    async with sessions() as session, session.begin():
        rows = await session.execute(
            text("SELECT bookings_tenants_with_due_work(:now, :grace)"),
            {"now": now, "grace": grace},
        )
        return sorted(rows.scalars().all())


async def sweep_bookings(
    sessions: async_sessionmaker[AsyncSession], now: datetime, grace: timedelta = NO_SHOW_GRACE
) -> dict[str, int]:
    """Expire holds and mark no-shows for every tenant with due work; one tenant failing is
    logged and does not stop the others."""
    expired = no_shows = 0
    for tenant_id in await tenants_with_due_work(sessions, now, grace):
        try:
            async with sessions() as session:
                expired += len(await expire_holds(session, tenant_id, now))
                no_shows += len(await mark_due_no_shows(session, tenant_id, now, grace))
        except Exception:
            log.exception("bookings.sweep_failed", tenant_id=str(tenant_id))
    if expired or no_shows:
        log.info("bookings.swept", expired=expired, no_shows=no_shows)
    return {"expired": expired, "no_shows": no_shows}


async def sweep(ctx: dict[str, Any]) -> dict[str, int]:
    return await sweep_bookings(context_of(ctx).sessions, datetime.now(UTC))


CRON_JOBS = [cron(sweep, name=SWEEP, second={0}, run_at_startup=True, unique=True)]
