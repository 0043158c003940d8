"""HTTP shapes for the ledger and revenue report."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

import msgspec

from app.ledger.service import Entry


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

    @classmethod
    def of(cls, e: Entry) -> EntryOut:
        return cls(
            id=e.id,
            idempotency_key=e.idempotency_key,
            reason=e.reason,
            occurred_at=e.occurred_at,
            created_at=e.created_at,
            booking_id=e.booking_id,
            payment_id=e.payment_id,
            reverses_entry_id=e.reverses_entry_id,
            dimensions=e.dimensions,
            postings=[
                PostingOut(p.account_code, p.account_type, p.amount.amount_minor, p.amount.currency)
                for p in e.postings
            ],
        )


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
