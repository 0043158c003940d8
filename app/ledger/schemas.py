"""HTTP shapes for the ledger and revenue report."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

import msgspec


class AccountOut(msgspec.Struct):
    code: str
    name: str
    type: str
    currency: str
    balance_minor: int


class PostingOut(msgspec.Struct):
    account_code: str
    account_type: str
    amount_minor: int
    currency: str


class EntryOut(msgspec.Struct):
    id: uuid.UUID
    idempotency_key: str
    reason: str
    occurred_at: datetime
    created_at: datetime
    booking_id: uuid.UUID | None
    payment_id: uuid.UUID | None
    reverses_entry_id: uuid.UUID | None
    dimensions: dict[str, Any]
    postings: list[PostingOut]


class TrialBalanceOut(msgspec.Struct):
    currency: str
    debits_minor: int
    credits_minor: int
    balanced: bool


class RevenueRowOut(msgspec.Struct):
    period: date | None
    dimension: str | None
    currency: str
    gross_minor: int
    refunds_minor: int
    fees_minor: int
    commissions_minor: int
    net_minor: int


class RevenueReportOut(msgspec.Struct):
    start: date = msgspec.field(name="from")
    end: date = msgspec.field(name="to")
    timezone: str = "UTC"
    group_by: list[str] = msgspec.field(default_factory=list)
    rows: list[RevenueRowOut] = msgspec.field(default_factory=list)
    totals: list[RevenueRowOut] = msgspec.field(default_factory=list)
