"""Ledger tables (the schema, triggers and constraints live in migration 0004).

Sign convention: `amount_minor` > 0 is a debit, < 0 is a credit; every entry sums to zero per
currency. Asset and expense accounts are debit-normal (balance >= 0 in the usual case);
liability, revenue and equity accounts are credit-normal (balance <= 0). Payables
(`payable:%` in migration 0004's trigger; the codes are app/ledger/chart.py's) may never rise
above zero: the database refuses it.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, String, func
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, TenantScoped

ACCOUNT_TYPES = ("asset", "liability", "revenue", "expense", "equity")


class LedgerAccount(TenantScoped, Base):
    __tablename__ = "ledger_accounts"

    code: Mapped[str]
    type: Mapped[str]
    currency: Mapped[str] = mapped_column(String(3))
    name: Mapped[str]
    parent_code: Mapped[str | None]
    dimensions: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default="{}")
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())


class JournalEntry(TenantScoped, Base):
    __tablename__ = "journal_entries"

    idempotency_key: Mapped[str]
    reason: Mapped[str]
    occurred_at: Mapped[datetime]
    booking_id: Mapped[uuid.UUID | None]
    payment_id: Mapped[uuid.UUID | None]
    reverses_entry_id: Mapped[uuid.UUID | None]
    dimensions: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default="{}")
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())


class PostingRow(TenantScoped, Base):
    __tablename__ = "postings"

    entry_id: Mapped[uuid.UUID]
    account_id: Mapped[uuid.UUID]
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))


class Balance(Base):
    """Running balance per account, maintained by a trigger; the app role can only read it."""

    __tablename__ = "balances"

    tenant_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    account_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    currency: Mapped[str] = mapped_column(String(3))
    balance_minor: Mapped[int] = mapped_column(BigInteger)
    credit_floor: Mapped[bool]
