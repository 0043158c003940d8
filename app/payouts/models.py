"""Payout tables (schema, constraints and RLS live in migration 0007).

A payout moves what the ledger says a staff member is owed (`payable:staff:<id>`) into
`payouts_in_transit:<rail>` when it is created, and from there to the rail's clearing
account when the money has left (`clearing:stripe` for Connect transfers, `clearing:bank`
for the manual rail). A failed payout reverses the first entry, so the payable is owed again.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime

from sqlalchemy import BigInteger, String, func
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, TenantScoped
from app.payments.provider_names import STRIPE

RAIL_STRIPE = STRIPE  # Connect transfers: the rail is the provider
RAIL_MANUAL = "manual"
RAILS = (RAIL_STRIPE, RAIL_MANUAL)

IN_TRANSIT = "in_transit"
PAID = "paid"
FAILED = "failed"


class PayoutAccount(TenantScoped, Base):
    __tablename__ = "payout_accounts"

    resource_id: Mapped[uuid.UUID]
    rail: Mapped[str]
    connected_account_id: Mapped[str | None]
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now())


class Payout(TenantScoped, Base):
    __tablename__ = "payouts"

    resource_id: Mapped[uuid.UUID]
    rail: Mapped[str]
    destination: Mapped[str | None]
    status: Mapped[str]
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    period_start: Mapped[date]
    period_end: Mapped[date]
    transfer_entry_id: Mapped[uuid.UUID]
    settle_entry_id: Mapped[uuid.UUID | None]
    provider_ref: Mapped[str | None]
    failure_reason: Mapped[str | None]
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now())
    paid_at: Mapped[datetime | None]
