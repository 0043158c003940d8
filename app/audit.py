"""The audit trail: one row per mutation, written in the mutation's own transaction."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, TenantScoped, new_id


class AuditEntry(TenantScoped, Base):
    __tablename__ = "audit_log"

    actor_id: Mapped[uuid.UUID | None]
    actor_kind: Mapped[str] = mapped_column(default="user")
    action: Mapped[str]
    entity_type: Mapped[str]
    entity_id: Mapped[uuid.UUID]
    before: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    after: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    at: Mapped[datetime] = mapped_column(server_default=func.now())


@dataclass(frozen=True, slots=True)
class Actor:
    """Who did something: a user, the public (a customer), the system, or a provider."""

    kind: str
    id: uuid.UUID | None = None

    @classmethod
    def user(cls, user_id: uuid.UUID) -> Actor:
        return cls("user", user_id)


SYSTEM = Actor("system")
PUBLIC = Actor("public")


def record(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    actor: Actor,
    action: str,
    entity_type: str,
    entity_id: uuid.UUID,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> None:
    session.add(
        AuditEntry(
            tenant_id=tenant_id,
            id=new_id(),
            actor_id=actor.id,
            actor_kind=actor.kind,
            action=action,
            entity_type=entity_type,
            entity_id=entity_id,
            before=before,
            after=after,
        )
    )
