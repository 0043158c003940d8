"""Running a reconciliation: fetch -> keep the business's own -> match -> store, and the
nightly cron per tenant.

Whose account is read is app.gateways.accounts.account_for's decision: the business's own when it
saved its keys (everything on it is its own), else the platform's, where many businesses'
money sits side by side: there Stripe is asked to expand each transaction's source, and only
the records that name this business, or that it knows by reference, are matched (see
sources.py). Nothing of another business reaches a run, its findings or its notification.

No transaction is open while the provider is called: the window and the ledger side are
read in short read transactions, the provider's records are fetched with none open, the
match is pure, and the results are stored in one transaction (service.store_run). Running a
day again is safe: it updates the day's run and its findings.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.errors import DependencyUnavailable
from app.gateways import reconciliation_sources as sources
from app.gateways.accounts import (
    ACCOUNT_PROVIDERS,
    Account,
    Providers,
    account_for,
)
from app.integrations.errors import ProviderError
from app.reconciliation import service
from app.reconciliation.matching import (
    LedgerRecord,
    MatchResult,
    ProviderRecord,
    Tolerances,
    match,
)
from app.tenancy.service import all_tenants

log = structlog.get_logger()

NIGHTLY = "reconciliation.nightly"

Progress = Callable[[str, int, int], None]
"""(stage, done, total): 'fetch', 'match', 'store'."""


class ProviderNotConfigured(DependencyUnavailable):
    slug = "provider_not_configured"
    title = "The payment provider is not configured"


async def fetch_claims(
    account: Account, provider: str, window: service.Window
) -> list[sources.Claim]:
    """Every record of the window on the account, with what says whose it is."""
    if provider == "stripe" and account.stripe is not None:
        txns = await account.stripe.list_balance_transactions(
            created_gte=window.start, created_lt=window.end, expand_source=not account.own
        )
        return sources.stripe_claims(txns)
    if provider == "kashier" and account.kashier is not None:
        orders = await account.kashier.list_transactions(start=window.start, end=window.end)
        return sources.kashier_claims(orders)
    raise ProviderNotConfigured(provider=provider)


async def own_records(
    sessions: async_sessionmaker[AsyncSession],
    account: Account,
    window: service.Window,
    claims: list[sources.Claim],
) -> tuple[list[ProviderRecord], list[LedgerRecord]]:
    """The business's provider records and its ledger side. The ledger is read for the
    references of every fetched record, as on an account of its own: under the tenant's RLS
    scope only the business's own entries can answer, and every one that does makes its
    reference known, so the record is kept and matched."""
    tenant_id, provider = account.tenant_id, account.provider
    refs = sorted({claim.record.ref for claim in claims})
    async with sessions() as session:
        ledger = await service.ledger_records(session, tenant_id, provider, window, refs)
    if account.own:
        return [claim.record for claim in claims], ledger
    async with sessions() as session:
        known = await service.known_refs(
            session, tenant_id, provider, sources.candidate_refs(claims)
        )
    known.update(record.ref for record in ledger)
    return sources.belonging_to(claims, tenant_id, known), ledger


async def reconcile_day(
    sessions: async_sessionmaker[AsyncSession],
    tenant_id: uuid.UUID,
    provider: str,
    day: date,
    providers: Providers,
    *,
    tolerances: Tolerances = Tolerances(),
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
    progress: Progress | None = None,
) -> service.StoredRun:
    """One tenant, provider and local day, read from the business's own account or its share
    of the platform's (`providers` is the platform's). A provider failure is recorded on the
    run and re-raised (the cron logs it; the route answers 503)."""
    service.check_provider(provider)
    report = progress or (lambda stage, done, total: None)
    started = now()
    account = await account_for(sessions, providers, tenant_id, provider)
    if not account.configured:
        raise ProviderNotConfigured(provider=provider)
    async with sessions() as session:
        window = await service.day_window(session, tenant_id, day)
    report("fetch", 0, 1)
    try:
        claims = await fetch_claims(account, provider, window)
    except ProviderError as exc:
        async with sessions() as session:
            await service.record_failed_run(
                session,
                tenant_id,
                provider=provider,
                window=window,
                error=str(exc),
                started_at=started,
                now=now(),
            )
        raise DependencyUnavailable(str(exc), provider=provider) from exc
    records, ledger = await own_records(sessions, account, window, claims)
    report("fetch", len(records), len(records))
    report("match", 0, len(records))
    result: MatchResult = match(records, ledger, tolerances)
    report("match", len(records), len(records))
    async with sessions() as session:
        stored = await service.store_run(
            session,
            tenant_id,
            provider=provider,
            window=window,
            result=result,
            tolerances=tolerances,
            started_at=started,
            now=now(),
        )
    report("store", 1, 1)
    log.info(
        "reconciliation.run",
        tenant_id=str(tenant_id),
        provider=provider,
        own_account=account.own,
        date=day.isoformat(),
        fetched=len(claims),
        matched=result.matched,
        discrepancies=len(result.findings),
    )
    return stored


async def reconcile_all(
    sessions: async_sessionmaker[AsyncSession],
    providers: Providers,
    day: date,
    *,
    tolerances: Tolerances = Tolerances(),
    only: list[str] | None = None,
) -> int:
    """Every tenant x provider it has an account with (its own, or the platform's) for
    `day`; one failing does not stop the others."""
    done = 0
    for tenant_id in await all_tenants(sessions):
        for provider in only or ACCOUNT_PROVIDERS:
            started = time.perf_counter()
            try:
                await reconcile_day(
                    sessions, tenant_id, provider, day, providers, tolerances=tolerances
                )
                done += 1
            except ProviderNotConfigured:
                continue  # neither the business nor the platform has keys for it
            except Exception:
                log.exception(
                    "reconciliation.failed",
                    tenant_id=str(tenant_id),
                    provider=provider,
                    seconds=time.perf_counter() - started,
                )
    return done
