"""The audit trail: one row per mutation, written in the mutation's own transaction."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, TenantScoped, batch_of, new_id, set_tenant, values_list
from app.paging import DEFAULT_LIMIT, Bound, Key, Keyset, Page, business_zone, period


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


_INSERT_SQL = (
    "INSERT INTO audit_log (tenant_id, id, actor_id, actor_kind, action, entity_type, "
    "entity_id, before, after) VALUES (%(tenant_id)s, %(id)s, %(actor_id)s, %(actor_kind)s, "
    "%(action)s, %(entity_type)s, %(entity_id)s, CAST(%(before)s AS jsonb), "
    "CAST(%(after)s AS jsonb))"
)

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
    batch = batch_of(session)
    if batch is not None:
        # The use case's batch (app.db.Batch): the row goes in its round trip, no ORM flush.
        batch.add(
            _INSERT_SQL,
            {
                "tenant_id": tenant_id,
                "id": new_id(),
                "actor_id": actor.id,
                "actor_kind": actor.kind,
                "action": action,
                "entity_type": entity_type,
                "entity_id": entity_id,
                "before": None if before is None else json.dumps(before),
                "after": None if after is None else json.dumps(after),
            },
        )
        return
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


# record() for several rows in one statement, for a caller that sends its statements through
# psycopg in pipeline mode (app.db.driver).
_RECORD_COLUMNS = (
    "tenant_id, id, actor_id, actor_kind, action, entity_type, entity_id, before, after"
)
_RECORD_CASTS = (None, None, None, None, None, None, None, "jsonb", "jsonb")


@dataclass(frozen=True, slots=True)
class Record:
    actor: Actor
    action: str
    entity_type: str
    entity_id: uuid.UUID
    before: dict[str, Any] | None = None
    after: dict[str, Any] | None = None


def insert_statement(tenant_id: uuid.UUID, records: list[Record]) -> tuple[str, dict[str, Any]]:
    """The audit rows `records`, as record() adds them one by one."""
    rows = [
        (
            tenant_id,
            new_id(),
            r.actor.id,
            r.actor.kind,
            r.action,
            r.entity_type,
            r.entity_id,
            _json(r.before),
            _json(r.after),
        )
        for r in records
    ]
    values, params = values_list(rows, _RECORD_CASTS)
    return f"INSERT INTO audit_log ({_RECORD_COLUMNS}) VALUES {values}", params


def _json(value: dict[str, Any] | None) -> str:
    """As the ORM stores the JSONB columns: None is JSON null."""
    return json.dumps(value)


# Stand-ins for an open end of a period (only the given end is applied).
_EARLIEST = date(1970, 1, 1)
_LATEST = date(9999, 12, 30)

# Newest first; rows of one transaction share `at`, the id orders them.
AUDIT_ORDER = Keyset(
    "audit", Key(AuditEntry.at, datetime, descending=True), Key(AuditEntry.id, uuid.UUID)
)


async def list_entries(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    *,
    entity_type: str | None = None,
    entity_id: uuid.UUID | None = None,
    actor_id: uuid.UUID | None = None,
    actor_kind: str | None = None,
    start: Bound | None = None,
    end: Bound | None = None,
    cursor: str | None = None,
    limit: int = DEFAULT_LIMIT,
) -> Page[AuditEntry]:
    """One page of the audit trail, newest first (own read transaction). `start`/`end` as
    the lists read `from`/`to` (app.paging.period), either may be open."""
    query = select(AuditEntry).where(AuditEntry.tenant_id == tenant_id)
    if actor_kind is not None:
        query = query.where(AuditEntry.actor_kind == actor_kind)
    if entity_type is not None:
        query = query.where(AuditEntry.entity_type == entity_type)
    if entity_id is not None:
        query = query.where(AuditEntry.entity_id == entity_id)
    if actor_id is not None:
        query = query.where(AuditEntry.actor_id == actor_id)
    async with session.begin():
        await set_tenant(session, tenant_id)
        if start is not None or end is not None:
            zone = await business_zone(session, tenant_id)
            since, until = period(start or _EARLIEST, end or _LATEST, zone)
            if start is not None:
                query = query.where(AuditEntry.at >= since)
            if end is not None:
                query = query.where(AuditEntry.at < until)
        return await AUDIT_ORDER.fetch(session, query, cursor, limit)


async def entries_for(
    session: AsyncSession, tenant_id: uuid.UUID, entity_ids: list[uuid.UUID], limit: int = 200
) -> list[AuditEntry]:
    """What happened to these entities (a booking and its payments), oldest first, in the
    caller's transaction: a booking's timeline."""
    query = (
        select(AuditEntry)
        .where(AuditEntry.tenant_id == tenant_id, AuditEntry.entity_id.in_(entity_ids))
        .order_by(AuditEntry.at, AuditEntry.id)
        .limit(limit)
    )
    return list((await session.scalars(query)).all())
