"""The audit log page (owners and admins, as GET /api/v1/audit): who did what to which
booking, payment or setting, and when; filtered by what changed, who changed it and the
dates, newest first, a keyset page at a time."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date
from typing import Annotated, Any

from litestar import get
from litestar.params import Parameter
from litestar.response import Template
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit import trail as audit
from app.edge.http import principal
from app.edge.web.dashboard.queries import get_business
from app.edge.web.dashboard.rendering import page
from app.edge.web.rendering import AnyRequest, with_query
from app.presentation.i18n import N_
from app.tenancy.service import list_users

PAGE_SIZE = 50
MAX_CHANGES = 6

ENTITY_LABELS = {
    "booking": N_("Booking"),
    "payment": N_("Payment"),
    "refund": N_("Refund"),
    "tenant": N_("Business settings"),
    "user": N_("User"),
    "branch": N_("Branch"),
    "resource": N_("Resource"),
    "service": N_("Service"),
    "product": N_("Product"),
    "payout": N_("Payout"),
    "payout_account": N_("Payout account"),
    "reconciliation_run": N_("Reconciliation run"),
    "discrepancy": N_("Discrepancy"),
}
ACTOR_LABELS = {
    "public": N_("A customer (booking site)"),
    "system": N_("The system"),
    "provider": N_("A payment provider"),
}
LINKS = {"booking": "/dashboard/bookings/{0}"}


@dataclass(frozen=True, slots=True)
class Change:
    field: str
    before: str | None
    """None when the entry had no value before (a creation): only the new value is shown."""
    after: str


@dataclass(frozen=True, slots=True)
class Row:
    entry: audit.AuditEntry
    who: str
    """An email, or an ACTOR_LABELS msgid (translated in the template)."""
    what: str
    link: str | None
    changes: list[Change]


def _show(value: Any) -> str:
    return "—" if value is None or value == "" else str(value)[:80]


def changes(before: dict[str, Any] | None, after: dict[str, Any] | None) -> list[Change]:
    """The fields that differ, in the order the row wrote them (at most MAX_CHANGES)."""
    old, new = before or {}, after or {}
    keys = [*new, *(k for k in old if k not in new)]
    found = [Change(k, _show(old[k]) if k in old else None, _show(new.get(k))) for k in keys]
    return [c for c in found if old.get(c.field) != new.get(c.field)][:MAX_CHANGES]


def _day(text: str | None) -> date | None:
    """A date input's value; an empty or unreadable one filters nothing."""
    try:
        return date.fromisoformat(text) if text else None
    except ValueError:
        return None


def _actor_filter(actor: str | None) -> tuple[uuid.UUID | None, str | None]:
    """The actor select's value: a user's id, or one of ACTOR_LABELS' kinds."""
    if actor in ACTOR_LABELS:
        return None, actor
    try:
        return (uuid.UUID(actor), None) if actor else (None, None)
    except ValueError:
        return None, None


@get("/audit", include_in_schema=False)
async def audit_log(
    request: AnyRequest,
    session: AsyncSession,
    entity_type: str | None = None,
    actor: str | None = None,
    from_: Annotated[str | None, Parameter(query="from")] = None,
    to_: Annotated[str | None, Parameter(query="to")] = None,
    cursor: str | None = None,
) -> Template:
    tenant_id = principal(request).tenant_id
    from_day, to_day = _day(from_), _day(to_)
    business = await get_business(session, tenant_id)
    kind = entity_type if entity_type in ENTITY_LABELS else None
    actor_id, actor_kind = _actor_filter(actor)
    if from_day and to_day and to_day < from_day:
        from_day, to_day = to_day, from_day
    found = await audit.list_entries(
        session,
        tenant_id,
        entity_type=kind,
        actor_id=actor_id,
        actor_kind=actor_kind,
        start=from_day,
        end=to_day,
        cursor=cursor,
        limit=PAGE_SIZE,
    )
    users = {u.id: u.email for u in await list_users(session, tenant_id)}
    rows = [
        Row(
            entry=e,
            who=users.get(e.actor_id, "") if e.actor_id else ACTOR_LABELS.get(e.actor_kind, ""),
            what=ENTITY_LABELS.get(e.entity_type, e.entity_type),
            link=LINKS[e.entity_type].format(e.entity_id) if e.entity_type in LINKS else None,
            changes=changes(e.before, e.after),
        )
        for e in found.items
    ]
    return page(
        request,
        "dashboard/audit.html",
        business=business,
        rows=rows,
        entity_labels=ENTITY_LABELS,
        actor_labels=ACTOR_LABELS,
        users=users,
        chosen={
            "entity_type": kind or "",
            "actor": str(actor_id) if actor_id else actor_kind or "",
            "from": from_day.isoformat() if from_day else "",
            "to": to_day.isoformat() if to_day else "",
        },
        more=with_query(request, cursor=found.next) if found.next else None,
        first_page=with_query(request, cursor=None) if cursor else None,
        tz=business.tz,
    )
