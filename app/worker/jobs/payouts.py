"""Worker side of payouts: the weekly run per tenant and the Stripe Connect transfer handler.

The handler is the tx1 -> provider call -> tx2 shape: the payout row and its in-transit
ledger entry were committed by the run; the transfer goes out of the business's own Stripe
account when it saved its key, else the platform's (app.gateways.accounts.account_in decides), names
the business and the payout in its metadata and carries Idempotency-Key payout-<id>, so
a retry after a crash replays Stripe's first answer; then one transaction marks it paid.
A permanent refusal fails the payout, which reverses its ledger entry.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, Protocol

import structlog
from arq.cron import cron
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.audit import trail as audit
from app.gateways.accounts import Providers, account_in
from app.integrations.errors import PermanentProviderError, RetryableProviderError
from app.integrations.stripe_client import IDEMPOTENCY_MISMATCH
from app.money import Money
from app.outbox.dispatch import Dispatcher, HandlerContext
from app.outbox.errors import PermanentError, RetryableError
from app.outbox.models import OutboxEvent
from app.payouts import service
from app.payouts.models import IN_TRANSIT, RAIL_STRIPE
from app.payouts.service import default_period
from app.tenancy.service import all_tenants
from app.worker.context import context_of

log = structlog.get_logger()

WEEKLY_RUN = "payouts.weekly_run"


async def run_weekly(sessions: async_sessionmaker[AsyncSession], now: datetime) -> int:
    """Last week's payouts for every tenant; one tenant failing does not stop the others."""
    start, end = default_period(now.date())
    created = 0
    for tenant_id in await all_tenants(sessions):
        try:
            async with sessions() as session:
                result = await service.run_payouts(
                    session,
                    tenant_id,
                    period_start=start,
                    period_end=end,
                    minimum_minor=service.DEFAULT_MINIMUM_MINOR,
                    now=now,
                    actor=audit.SYSTEM,
                )
            created += len(result.created)
        except Exception:
            log.exception("payouts.run_failed", tenant_id=str(tenant_id))
    log.info("payouts.weekly_run", created=created)
    return created


class HasProviders(Protocol):
    """What payout transfers use of the worker's JobDeps."""

    @property
    def providers(self) -> Providers: ...


async def weekly_run(ctx: dict[str, Any]) -> int:
    return await run_weekly(context_of(ctx).sessions, datetime.now(UTC))


async def handle_payout_requested(ctx: HandlerContext[HasProviders], event: OutboxEvent) -> None:
    payout_id = uuid.UUID(str(event.payload["payout_id"]))
    async with ctx.sessions() as session:
        payout = await service.get_payout(session, event.tenant_id, payout_id)
    if payout.status != IN_TRANSIT or payout.rail != RAIL_STRIPE:
        return  # manual rail: the owner pays from the CSV export and marks it paid
    account = await account_in(ctx.sessions, ctx.need().providers, event.tenant_id, "stripe")
    if account.stripe is None or not payout.destination:
        raise RetryableError("stripe is not configured for payouts", retry_after=300)
    try:
        transfer = await account.stripe.create_transfer(
            payout_id=payout_id,
            amount=Money(payout.amount_minor, payout.currency.strip()),
            destination=payout.destination,
            description=f"Payout {payout.period_start}..{payout.period_end}",
            tenant_id=event.tenant_id,
        )
    except RetryableProviderError as exc:
        raise RetryableError(str(exc), retry_after=exc.retry_after) from exc
    except PermanentProviderError as exc:
        if exc.code == IDEMPOTENCY_MISMATCH:
            # The first attempt (under other parameters) may have paid: reversing the payout
            # could pay twice. The row goes dead for on-call to check the transfer at Stripe.
            raise PermanentError(f"transfer for payout {payout_id} needs checking: {exc}") from exc
        async with ctx.sessions() as session:
            await service.fail_payout(
                session,
                event.tenant_id,
                payout_id,
                reason=str(exc),
                now=datetime.now(UTC),
                actor=audit.SYSTEM,
            )
        ctx.log(event).warning("payout.failed", payout_id=str(payout_id), error=str(exc))
        return
    async with ctx.sessions() as session:
        try:
            await service.mark_payout_paid(
                session,
                event.tenant_id,
                payout_id,
                provider_ref=transfer.id,
                now=datetime.now(UTC),
                actor=audit.SYSTEM,
            )
        except service.PayoutNotInTransit as exc:
            raise PermanentError(f"transfer {transfer.id} made for a failed payout") from exc


def register_handlers(dispatcher: Dispatcher) -> None:
    dispatcher.register(service.TOPIC_REQUESTED, handle_payout_requested)


CRON_JOBS = [
    cron(
        weekly_run,
        name=WEEKLY_RUN,
        weekday={0},
        hour={3},
        minute={0},
        run_at_startup=False,
        unique=True,
    )
]
