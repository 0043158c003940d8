"""Reconciliation tables (schema, constraints and RLS live in migration 0007).

A run is one (tenant, provider, local day); re-running the day updates it. A discrepancy is
one finding per (tenant, provider, kind, provider reference): re-runs update it, a finding
no longer seen is `cleared`, and an owner `resolved` it with a note (and maybe an adjusting
ledger entry).
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import BigInteger, String
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, TenantScoped

OPEN = "open"
RESOLVED = "resolved"
CLEARED = "cleared"


class ReconciliationRun(TenantScoped, Base):
    __tablename__ = "reconciliation_runs"

    provider: Mapped[str]
    run_date: Mapped[date]
    status: Mapped[str]
    window_start: Mapped[datetime]
    window_end: Mapped[datetime]
    provider_records: Mapped[int]
    ledger_records: Mapped[int]
    matched: Mapped[int]
    discrepancies: Mapped[int]
    tolerances: Mapped[dict[str, Any]] = mapped_column(JSONB)
    attempts: Mapped[int]
    error: Mapped[str | None]
    started_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]


class Discrepancy(TenantScoped, Base):
    __tablename__ = "reconciliation_discrepancies"

    run_id: Mapped[uuid.UUID]
    provider: Mapped[str]
    kind: Mapped[str]
    provider_ref: Mapped[str]
    record_type: Mapped[str | None]
    ledger_minor: Mapped[int | None] = mapped_column(BigInteger)
    provider_minor: Mapped[int | None] = mapped_column(BigInteger)
    currency: Mapped[str | None] = mapped_column(String(3))
    provider_currency: Mapped[str | None] = mapped_column(String(3))
    details: Mapped[dict[str, Any]] = mapped_column(JSONB)
    status: Mapped[str]
    resolution_note: Mapped[str | None]
    resolved_by: Mapped[uuid.UUID | None]
    resolved_at: Mapped[datetime | None]
    adjusting_entry_id: Mapped[uuid.UUID | None]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
