"""Catalog tables: branches, resources, services, products, weekly hours, overrides, time off."""

from __future__ import annotations

import uuid
from datetime import date, datetime, time
from typing import Any

from sqlalchemy import BigInteger, ForeignKeyConstraint, SmallInteger, String, func
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, TenantScoped

RESOURCE_KINDS = ("staff", "room", "unit", "equipment")
POLICIES = ("time_slot", "nightly", "interval")
PRICINGS = ("fixed", "hourly", "nightly")


class Branch(TenantScoped, Base):
    __tablename__ = "branches"

    name: Mapped[str]
    timezone: Mapped[str]
    address: Mapped[str | None] = mapped_column(default=None)
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())


class Resource(TenantScoped, Base):
    __tablename__ = "resources"

    name: Mapped[str]
    kind: Mapped[str]
    capacity: Mapped[int]
    commission_bps: Mapped[int | None]
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())


class ResourceBranch(Base):
    __tablename__ = "resource_branches"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id", "resource_id"], ["resources.tenant_id", "resources.id"]),
        ForeignKeyConstraint(["tenant_id", "branch_id"], ["branches.tenant_id", "branches.id"]),
    )

    tenant_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    resource_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    branch_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)


class Service(TenantScoped, Base):
    __tablename__ = "services"

    name: Mapped[str]
    policy: Mapped[str]
    duration_minutes: Mapped[int | None]
    slot_step_minutes: Mapped[int | None]
    buffer_before_minutes: Mapped[int] = mapped_column(default=0)
    buffer_after_minutes: Mapped[int] = mapped_column(default=0)
    min_notice_minutes: Mapped[int] = mapped_column(default=0)
    max_advance_days: Mapped[int] = mapped_column(default=365)
    min_nights: Mapped[int | None]
    max_nights: Mapped[int | None]
    check_in_time: Mapped[time | None]
    check_out_time: Mapped[time | None]
    min_minutes: Mapped[int | None]
    max_minutes: Mapped[int | None]
    price_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    pricing: Mapped[str]
    commission_bps: Mapped[int | None]
    commission_fixed_minor: Mapped[int | None] = mapped_column(BigInteger)
    cancellation_policy: Mapped[dict[str, Any]] = mapped_column(
        JSONB, default=lambda: {"tiers": []}
    )
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())


class ServiceBranchPrice(Base):
    __tablename__ = "service_branch_prices"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id", "service_id"], ["services.tenant_id", "services.id"]),
        ForeignKeyConstraint(["tenant_id", "branch_id"], ["branches.tenant_id", "branches.id"]),
    )

    tenant_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    service_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    branch_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    pricing: Mapped[str]


class ServiceResource(Base):
    __tablename__ = "service_resources"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id", "service_id"], ["services.tenant_id", "services.id"]),
        ForeignKeyConstraint(["tenant_id", "resource_id"], ["resources.tenant_id", "resources.id"]),
    )

    tenant_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    service_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    resource_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)


class Product(TenantScoped, Base):
    __tablename__ = "products"

    name: Mapped[str]
    price_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())


class ProductStock(Base):
    __tablename__ = "product_stock"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id", "product_id"], ["products.tenant_id", "products.id"]),
        ForeignKeyConstraint(["tenant_id", "branch_id"], ["branches.tenant_id", "branches.id"]),
    )

    tenant_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    product_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    branch_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    quantity: Mapped[int]


class StockMovement(TenantScoped, Base):
    """One change to a product's stock at a branch; append-only (see migration 0015)."""

    __tablename__ = "stock_movements"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id", "product_id"], ["products.tenant_id", "products.id"]),
        ForeignKeyConstraint(["tenant_id", "branch_id"], ["branches.tenant_id", "branches.id"]),
    )

    product_id: Mapped[uuid.UUID]
    branch_id: Mapped[uuid.UUID]
    delta: Mapped[int]
    quantity_after: Mapped[int]
    kind: Mapped[str]
    reason: Mapped[str]
    actor_kind: Mapped[str]
    actor_id: Mapped[uuid.UUID | None]
    booking_id: Mapped[uuid.UUID | None]
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())


class ResourceHours(TenantScoped, Base):
    __tablename__ = "resource_hours"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id", "resource_id"], ["resources.tenant_id", "resources.id"]),
        ForeignKeyConstraint(["tenant_id", "branch_id"], ["branches.tenant_id", "branches.id"]),
    )

    resource_id: Mapped[uuid.UUID]
    branch_id: Mapped[uuid.UUID]
    weekday: Mapped[int] = mapped_column(SmallInteger)
    start_time: Mapped[time]
    end_time: Mapped[time]


class ScheduleOverride(TenantScoped, Base):
    __tablename__ = "schedule_overrides"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id", "resource_id"], ["resources.tenant_id", "resources.id"]),
    )

    resource_id: Mapped[uuid.UUID]
    on_date: Mapped[date]
    closed: Mapped[bool] = mapped_column(default=False)
    start_time: Mapped[time | None]
    end_time: Mapped[time | None]


class TimeOff(TenantScoped, Base):
    __tablename__ = "time_off"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id", "resource_id"], ["resources.tenant_id", "resources.id"]),
    )

    resource_id: Mapped[uuid.UUID]
    starts_at: Mapped[datetime]
    ends_at: Mapped[datetime]
    reason: Mapped[str | None]
