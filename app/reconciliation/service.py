"""Reconciliation use cases: store a run's findings, list them, resolve them, summarise.

Fetching from providers and matching happen BEFORE these run (see jobs.py); storing a run
is one transaction: the run row (one per tenant, provider and local day, updated by a
re-run), its findings upserted on (provider, kind, reference) so a re-run never duplicates
them, findings no longer seen marked `cleared`, and one outbox notification when the run
found something new.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit import trail as audit
from app.db import lock_all, new_id, retry_on_contention, set_lock_timeout, set_tenant
from app.errors import InvalidState, NotFound
from app.outbox.service import stage
from app.payments.provider_names import ROUTED_PROVIDERS as PROVIDERS
from app.reconciliation import adjustments
from app.reconciliation.ledger_side import load_ledger_records
from app.reconciliation.matching import Finding, LedgerRecord, MatchResult, Tolerances
from app.reconciliation.models import OPEN, RESOLVED, Discrepancy, ReconciliationRun
from app.validation import check_text, field_error

TOPIC_FOUND = "reconciliation.discrepancies_found"
KINDS_FILTER = ("open", "resolved", "cleared")


class DiscrepancyNotFound(NotFound):
    slug = "discrepancy_not_found"
    title = "No such discrepancy"


class DiscrepancyNotOpen(InvalidState):
    slug = "discrepancy_not_open"
    title = "The discrepancy is already resolved or cleared"


@dataclass(frozen=True, slots=True)
class Window:
    day: date
    start: datetime
    end: datetime


@dataclass(frozen=True, slots=True)
class StoredRun:
    run: ReconciliationRun
    new_findings: int


def check_provider(provider: str) -> str:
    if provider not in PROVIDERS:
        raise field_error("provider", f"must be one of {', '.join(PROVIDERS)}")
    return provider


async def day_window(session: AsyncSession, tenant_id: uuid.UUID, day: date) -> Window:
    """The tenant's local day as [start, end) instants (DST-safe: a day may be 23 or 25 h)."""
    async with session.begin():
        await set_tenant(session, tenant_id)
        tz = ZoneInfo(
            str(
                (
                    await session.execute(
                        text("SELECT timezone FROM tenants WHERE id = :id"), {"id": tenant_id}
                    )
                ).scalar_one()
            )
        )
    start = datetime.combine(day, time(0), tzinfo=tz)
    return Window(day, start, datetime.combine(day + timedelta(days=1), time(0), tzinfo=tz))


async def ledger_records(
    session: AsyncSession, tenant_id: uuid.UUID, provider: str, window: Window, refs: list[str]
) -> list[LedgerRecord]:
    async with session.begin():
        await set_tenant(session, tenant_id)
        return await load_ledger_records(
            session, tenant_id, provider, window.start, window.end, refs
        )


# Which of the provider's references this business knows (payments, refunds, payouts), for
# telling its records on a shared platform account from other businesses' (see sources.py).
_KNOWN_REFS = text(
    "WITH refs AS (SELECT DISTINCT unnest(CAST(:refs AS text[])) AS ref)"
    " SELECT refs.ref FROM refs JOIN payments p ON refs.ref = p.provider_ref"
    " WHERE p.tenant_id = :tenant_id AND p.provider = :provider"
    " UNION SELECT refs.ref FROM refs JOIN payments p ON refs.ref = p.provider_charge_ref"
    " WHERE p.tenant_id = :tenant_id AND p.provider = :provider"
    " UNION SELECT refs.ref FROM refs JOIN payments p ON refs.ref = p.id::text"
    " WHERE p.tenant_id = :tenant_id AND p.provider = :provider"
    " UNION SELECT refs.ref FROM refs JOIN refunds r ON refs.ref = r.provider_ref"
    " JOIN payments p ON p.tenant_id = r.tenant_id AND p.id = r.payment_id"
    " WHERE r.tenant_id = :tenant_id AND p.provider = :provider"
    " UNION SELECT refs.ref FROM refs JOIN payouts po ON refs.ref = po.provider_ref"
    " WHERE po.tenant_id = :tenant_id AND po.rail = :provider"
)


async def known_refs(
    session: AsyncSession, tenant_id: uuid.UUID, provider: str, refs: list[str]
) -> set[str]:
    """The references among `refs` that name this business's own payments (their intent,
    charge or our id), refunds or payouts. Read under the tenant's RLS scope."""
    if not refs:
        return set()
    async with session.begin():
        await set_tenant(session, tenant_id)
        rows = await session.execute(
            _KNOWN_REFS, {"tenant_id": tenant_id, "provider": provider, "refs": refs}
        )
        return {str(row[0]) for row in rows}


_UPSERT_RUN = text(
    "INSERT INTO reconciliation_runs (tenant_id, id, provider, run_date, status, window_start,"
    " window_end, provider_records, ledger_records, matched, discrepancies, tolerances, error,"
    " started_at, finished_at) VALUES (:tenant_id, :id, :provider, :day, :status, :start, :end,"
    " :provider_records, :ledger_records, :matched, :discrepancies, CAST(:tolerances AS jsonb),"
    " :error, :started_at, :now)"
    " ON CONFLICT (tenant_id, provider, run_date) DO UPDATE SET status = EXCLUDED.status,"
    " window_start = EXCLUDED.window_start, window_end = EXCLUDED.window_end,"
    " provider_records = EXCLUDED.provider_records, ledger_records = EXCLUDED.ledger_records,"
    " matched = EXCLUDED.matched, discrepancies = EXCLUDED.discrepancies,"
    " tolerances = EXCLUDED.tolerances, error = EXCLUDED.error,"
    " started_at = EXCLUDED.started_at, finished_at = EXCLUDED.finished_at,"
    " attempts = reconciliation_runs.attempts + 1 RETURNING id"
)

_UPSERT_FINDINGS = text(
    "INSERT INTO reconciliation_discrepancies AS d (tenant_id, id, run_id, provider, kind,"
    " provider_ref, record_type, ledger_minor, provider_minor, currency, provider_currency,"
    " details, created_at, updated_at)"
    # Parameters typed in the select list: a distributed planner (Citus) cannot infer them.
    " SELECT CAST(:tenant_id AS uuid), f.id, CAST(:run_id AS uuid), CAST(:provider AS text),"
    " f.kind, f.ref, f.record_type, f.ledger, f.provider_minor, f.currency,"
    " f.provider_currency, CAST(f.details AS jsonb), CAST(:now AS timestamptz),"
    " CAST(:now AS timestamptz)"
    " FROM unnest(CAST(:ids AS uuid[]), CAST(:kinds AS text[]), CAST(:refs AS text[]),"
    " CAST(:types AS text[]), CAST(:ledger AS bigint[]), CAST(:provider_amounts AS bigint[]),"
    " CAST(:currencies AS text[]), CAST(:provider_currencies AS text[]),"
    " CAST(:details AS text[]))"
    " AS f(id, kind, ref, record_type, ledger, provider_minor, currency, provider_currency,"
    " details)"
    # The conflict arm names no parameter: Citus runs it on the shards as a statement of its
    # own, with the parameters it does not use left untyped ("could not determine data type").
    " ON CONFLICT (tenant_id, provider, kind, provider_ref) DO UPDATE SET run_id = EXCLUDED.run_id,"
    " record_type = EXCLUDED.record_type, ledger_minor = EXCLUDED.ledger_minor,"
    " provider_minor = EXCLUDED.provider_minor, currency = EXCLUDED.currency,"
    " provider_currency = EXCLUDED.provider_currency, details = EXCLUDED.details,"
    " updated_at = EXCLUDED.updated_at,"
    " status = CASE WHEN d.status = 'cleared' THEN 'open' ELSE d.status END"
)

# Findings this run no longer sees; they were fixed at the source or by a later posting.
_CLEAR = text(
    "UPDATE reconciliation_discrepancies d SET status = 'cleared', updated_at = :now"
    " WHERE d.tenant_id = :tenant_id AND d.provider = :provider AND d.run_id = :run_id"
    " AND d.status = 'open' AND NOT EXISTS (SELECT 1 FROM unnest(CAST(:kinds AS text[]),"
    " CAST(:refs AS text[])) AS f(kind, ref) WHERE f.kind = d.kind AND f.ref = d.provider_ref)"
)

_ALREADY_OPEN = text(
    "SELECT count(*) FROM reconciliation_discrepancies d JOIN unnest(CAST(:kinds AS text[]),"
    " CAST(:refs AS text[])) AS f(kind, ref) ON f.kind = d.kind AND f.ref = d.provider_ref"
    " WHERE d.tenant_id = :tenant_id AND d.provider = :provider AND d.status <> 'cleared'"
)


async def store_run(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    *,
    provider: str,
    window: Window,
    result: MatchResult,
    tolerances: Tolerances,
    started_at: datetime,
    now: datetime,
) -> StoredRun:
    findings = result.findings
    base = {"tenant_id": tenant_id, "provider": provider, "now": now}
    keys = {"kinds": [f.kind for f in findings], "refs": [f.ref for f in findings]}
    async with session.begin():
        await set_tenant(session, tenant_id)
        await set_lock_timeout(session, 10_000)
        run_id = (
            await session.execute(
                _UPSERT_RUN,
                {
                    **base,
                    "id": new_id(),
                    "day": window.day,
                    "status": "completed",
                    "start": window.start,
                    "end": window.end,
                    "error": None,
                    "started_at": started_at,
                    "provider_records": result.provider_records,
                    "ledger_records": result.ledger_records,
                    "matched": result.matched,
                    "discrepancies": len(findings),
                    "tolerances": json.dumps(tolerances.to_json()),
                },
            )
        ).scalar_one()
        known = int((await session.execute(_ALREADY_OPEN, {**base, **keys})).scalar_one())
        if findings:
            await session.execute(
                _UPSERT_FINDINGS, {**base, "run_id": run_id, **_finding_columns(findings)}
            )
        await session.execute(_CLEAR, {**base, "run_id": run_id, **keys})
        new = len(findings) - known
        if new > 0:
            await stage(
                session,
                tenant_id,
                TOPIC_FOUND,
                "reconciliation_run",
                run_id,
                {
                    "run_id": run_id,
                    "provider": provider,
                    "date": window.day.isoformat(),
                    "new_discrepancies": new,
                    "discrepancies": len(findings),
                },
            )
        audit.record(
            session,
            tenant_id,
            audit.SYSTEM,
            "reconciliation.run",
            "reconciliation_run",
            run_id,
            after={
                "provider": provider,
                "date": window.day.isoformat(),
                "matched": result.matched,
                "discrepancies": len(findings),
            },
        )
        run = await session.get(ReconciliationRun, (tenant_id, run_id), populate_existing=True)
    assert run is not None
    return StoredRun(run, new)


def _finding_columns(findings: list[Finding]) -> dict[str, list[object]]:
    return {
        "ids": [new_id() for _ in findings],
        "kinds": [f.kind for f in findings],
        "refs": [f.ref for f in findings],
        "types": [f.record_type for f in findings],
        "ledger": [f.ledger_minor for f in findings],
        "provider_amounts": [f.provider_minor for f in findings],
        "currencies": [f.currency for f in findings],
        "provider_currencies": [f.provider_currency for f in findings],
        "details": [json.dumps(f.details) for f in findings],
    }


async def record_failed_run(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    *,
    provider: str,
    window: Window,
    error: str,
    started_at: datetime,
    now: datetime,
) -> None:
    """A fetch that failed is recorded on the day's run; its earlier findings stay."""
    async with session.begin():
        await set_tenant(session, tenant_id)
        await session.execute(
            _UPSERT_RUN,
            {
                "tenant_id": tenant_id,
                "provider": provider,
                "now": now,
                "id": new_id(),
                "day": window.day,
                "status": "failed",
                "start": window.start,
                "end": window.end,
                "error": error[:1000],
                "started_at": started_at,
                "provider_records": 0,
                "ledger_records": 0,
                "matched": 0,
                "discrepancies": 0,
                "tolerances": "{}",
            },
        )


async def list_runs(
    session: AsyncSession, tenant_id: uuid.UUID, *, provider: str | None = None, limit: int = 100
) -> list[ReconciliationRun]:
    async with session.begin():
        await set_tenant(session, tenant_id)
        query = (
            select(ReconciliationRun)
            .order_by(ReconciliationRun.run_date.desc(), ReconciliationRun.provider)
            .limit(limit)
        )
        if provider is not None:
            query = query.where(ReconciliationRun.provider == check_provider(provider))
        return list((await session.scalars(query)).all())


async def list_discrepancies(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    *,
    status: str | None = "open",
    run_id: uuid.UUID | None = None,
    kind: str | None = None,
    limit: int = 200,
) -> list[Discrepancy]:
    if status is not None and status not in KINDS_FILTER:
        raise field_error("status", f"must be one of {', '.join(KINDS_FILTER)}")
    async with session.begin():
        await set_tenant(session, tenant_id)
        query = select(Discrepancy).order_by(Discrepancy.created_at.desc(), Discrepancy.id)
        if status is not None:
            query = query.where(Discrepancy.status == status)
        if run_id is not None:
            query = query.where(Discrepancy.run_id == run_id)
        if kind is not None:
            query = query.where(Discrepancy.kind == kind)
        return list((await session.scalars(query.limit(max(1, min(limit, 1000))))).all())


@retry_on_contention()
async def resolve_discrepancy(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    discrepancy_id: uuid.UUID,
    *,
    note: str,
    adjust: bool,
    actor: audit.Actor,
    now: datetime,
) -> Discrepancy:
    """Close a finding with a note; `adjust` also posts the entry that makes the ledger agree
    with the provider (only for missing postings and amount/fee differences)."""
    note = check_text(note, "note", max_length=2000)
    async with session.begin():
        await set_tenant(session, tenant_id)
        await set_lock_timeout(session)
        rows = await lock_all(
            session,
            select(Discrepancy).where(
                Discrepancy.tenant_id == tenant_id, Discrepancy.id == discrepancy_id
            ),
        )
        if not rows:
            raise DiscrepancyNotFound(discrepancy_id=discrepancy_id)
        found = rows[0]
        if found.status != OPEN:
            raise DiscrepancyNotOpen(discrepancy_id=discrepancy_id, status=found.status)
        if adjust:
            entry = await adjustments.post_adjustment(session, tenant_id, found, now)
            found.adjusting_entry_id = entry.id
        found.status, found.resolution_note, found.resolved_at = RESOLVED, note, now
        found.resolved_by, found.updated_at = actor.id, now
        audit.record(
            session,
            tenant_id,
            actor,
            "reconciliation.resolved",
            "discrepancy",
            discrepancy_id,
            after={"note": note, "adjusted": adjust},
        )
    return found
