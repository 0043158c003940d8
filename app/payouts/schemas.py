"""HTTP shapes for payouts."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated, Literal

import msgspec

from app.payouts.models import Payout


class PayoutRunIn(msgspec.Struct, forbid_unknown_fields=True):
    period_start: date | None = None
    period_end: date | None = None
    minimum_minor: Annotated[int, msgspec.Meta(ge=1, le=10**15)] | None = None


class MarkPaidIn(msgspec.Struct, forbid_unknown_fields=True):
    reference: Annotated[str, msgspec.Meta(min_length=1, max_length=200)] | None = None


class FailIn(msgspec.Struct, forbid_unknown_fields=True):
    reason: Annotated[str, msgspec.Meta(min_length=1, max_length=500)]


class PayoutAccountIn(msgspec.Struct, forbid_unknown_fields=True):
    rail: Literal["stripe", "manual"]
    connected_account_id: Annotated[str, msgspec.Meta(max_length=100)] | None = None


class PayoutAccountOut(msgspec.Struct):
    resource_id: uuid.UUID
    rail: str
    connected_account_id: str | None


class MoneyOut(msgspec.Struct):
    amount_minor: int
    currency: str


class PayoutOut(msgspec.Struct):
    id: uuid.UUID
    resource_id: uuid.UUID
    rail: str
    status: str
    amount: MoneyOut
    period_start: date
    period_end: date
    destination: str | None
    provider_ref: str | None
    failure_reason: str | None
    created_at: datetime
    paid_at: datetime | None

    @classmethod
    def of(cls, payout: Payout) -> PayoutOut:
        return cls(
            id=payout.id,
            resource_id=payout.resource_id,
            rail=payout.rail,
            status=payout.status,
            amount=MoneyOut(payout.amount_minor, payout.currency.strip()),
            period_start=payout.period_start,
            period_end=payout.period_end,
            destination=payout.destination,
            provider_ref=payout.provider_ref,
            failure_reason=payout.failure_reason,
            created_at=payout.created_at,
            paid_at=payout.paid_at,
        )


class PayableOut(msgspec.Struct):
    resource_id: uuid.UUID
    owed: MoneyOut


class PayoutRunOut(msgspec.Struct):
    period_start: date
    period_end: date
    created: list[PayoutOut]
    skipped: list[PayableOut]
