"""The shapes the payments domain shares with its callers: the money facts of a booking, a
payment as read back, the commission rule, its errors and outbox topics."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from app.errors import Conflict
from app.money import Money
from app.payments.models import Payment
from app.payments.provider_names import ROUTED_PROVIDERS

TOPIC_CHECKOUT = "payment.checkout"
TOPIC_REFUND = "payment.refund"
PROVIDER_ROUTED = frozenset(ROUTED_PROVIDERS)


class RefundExceedsCapture(Conflict):
    slug = "refund_exceeds_capture"
    title = "The refund is larger than what remains of the payment"


class PaymentAmountMismatch(Conflict):
    slug = "payment_amount_mismatch"
    title = "The provider reported an amount or currency that does not match the payment"


@dataclass(frozen=True, slots=True)
class Charge:
    """The money facts of one booking, as the bookings domain states them."""

    tenant_id: uuid.UUID
    booking_id: uuid.UUID
    series_id: uuid.UUID | None
    branch_id: uuid.UUID
    service_id: uuid.UUID
    resource_id: uuid.UUID
    total: Money
    provider: str
    starts_at: datetime

    @property
    def dimensions(self) -> dict[str, Any]:
        return {
            "branch_id": str(self.branch_id),
            "service_id": str(self.service_id),
            "resource_id": str(self.resource_id),
        }


@dataclass(frozen=True, slots=True)
class PaymentView:
    id: uuid.UUID
    booking_id: uuid.UUID
    provider: str
    status: str
    amount: Money
    captured_minor: int
    refunded_minor: int
    fee_minor: int
    checkout_url: str | None

    @classmethod
    def of(cls, row: Payment) -> PaymentView:
        return cls(
            row.id,
            row.booking_id,
            row.provider,
            row.status,
            Money(row.amount_minor, row.currency),
            row.captured_minor,
            row.refunded_minor,
            row.fee_minor,
            row.checkout_url,
        )


@dataclass(frozen=True, slots=True)
class CommissionRule:
    fixed_minor: int | None
    service_bps: int | None
    resource_bps: int | None
