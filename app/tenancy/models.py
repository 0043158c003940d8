"""Tenants and their users."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, String, func
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, TenantScoped

ROLES = ("owner", "admin", "staff")
MANAGER_ROLES = frozenset({"owner", "admin"})


class Tenant(Base):
    __tablename__ = "tenants"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    slug: Mapped[str]
    name: Mapped[str]
    currency: Mapped[str] = mapped_column(String(3))
    timezone: Mapped[str]
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())


class User(TenantScoped, Base):
    __tablename__ = "users"

    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id"), primary_key=True)
    email: Mapped[str]
    password_hash: Mapped[str]
    role: Mapped[str]
    resource_id: Mapped[uuid.UUID | None]
    active: Mapped[bool] = mapped_column(default=True)
    # Bumped when the user is deactivated: tokens carrying an older version stop working.
    token_version: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
