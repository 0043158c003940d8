"""HTTP shapes for reconciliation."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated, Any

import msgspec

from app.payments.provider_names import RoutedProvider
from app.reconciliation.models import Discrepancy, ReconciliationRun
from app.reconciliation.summary import ReconciliationSummary

Minor = Annotated[int, msgspec.Meta(ge=0, le=10**12)]


class TolerancesIn(msgspec.Struct, forbid_unknown_fields=True):
    amount_minor: Minor = 0
    fee_minor: Minor = 0


class RunIn(msgspec.Struct, forbid_unknown_fields=True):
    provider: RoutedProvider
    date: date
    tolerances: TolerancesIn | None = None


class ResolveIn(msgspec.Struct, forbid_unknown_fields=True):
    note: Annotated[str, msgspec.Meta(min_length=1, max_length=2000)]
    adjust: bool = False


class RunOut(msgspec.Struct):
    id: uuid.UUID
    provider: str
    date: date
    status: str
    window_start: datetime
    window_end: datetime
    provider_records: int
    ledger_records: int
    matched: int
    discrepancies: int
    tolerances: dict[str, Any]
    attempts: int
    error: str | None
    started_at: datetime
    finished_at: datetime | None

    @classmethod
    def of(cls, run: ReconciliationRun) -> RunOut:
        return cls(
            run.id,
            run.provider,
            run.run_date,
            run.status,
            run.window_start,
            run.window_end,
            run.provider_records,
            run.ledger_records,
            run.matched,
            run.discrepancies,
            dict(run.tolerances),
            run.attempts,
            run.error,
            run.started_at,
            run.finished_at,
        )


class DiscrepancyOut(msgspec.Struct):
    id: uuid.UUID
    run_id: uuid.UUID
    provider: str
    kind: str
    provider_ref: str
    record_type: str | None
    ledger_minor: int | None
    provider_minor: int | None
    currency: str | None
    provider_currency: str | None
    details: dict[str, Any]
    status: str
    resolution_note: str | None
    resolved_at: datetime | None
    adjusting_entry_id: uuid.UUID | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, d: Discrepancy) -> DiscrepancyOut:
        return cls(
            d.id,
            d.run_id,
            d.provider,
            d.kind,
            d.provider_ref,
            d.record_type,
            d.ledger_minor,
            d.provider_minor,
            _code(d.currency),
            _code(d.provider_currency),
            dict(d.details),
            d.status,
            d.resolution_note,
            d.resolved_at,
            d.adjusting_entry_id,
            d.created_at,
            d.updated_at,
        )


def _code(value: str | None) -> str | None:
    return value.strip() if value else value


class SummaryOut(msgspec.Struct):
    provider: str
    days: int
    days_run: int
    days_reconciled: int
    days_failed: int
    matched: int
    open_discrepancies: int
    resolved_discrepancies: int
    reconciled: bool

    @classmethod
    def of(cls, s: ReconciliationSummary) -> SummaryOut:
        return cls(
            s.provider,
            s.days,
            s.days_run,
            s.days_reconciled,
            s.days_failed,
            s.matched,
            s.open_discrepancies,
            s.resolved_discrepancies,
            s.reconciled,
        )
