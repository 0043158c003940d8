"""Customers on the dashboard, for every role: the list with search (a plain GET form), one
customer with their bookings, no-shows and lifetime value from the ledger, and the search the
new-booking form uses (server-rendered without JavaScript, a JSON fetch with it)."""

from __future__ import annotations

import uuid
from typing import Any

from litestar import get
from litestar.response import Template
from sqlalchemy.ext.asyncio import AsyncSession

from app import errors
from app.customers import queries
from app.edge.api.customers import CustomerOut, CustomerPageOut
from app.edge.http import principal
from app.edge.web.dashboard.labels import STATUS_LABELS
from app.edge.web.dashboard.queries import get_business, get_catalog
from app.edge.web.dashboard.rendering import page
from app.edge.web.rendering import AnyRequest, with_query

PAGE_SIZE = 50
PICK_SIZE = 8


def _query(q: str | None) -> str:
    """The search box's text, cut to what the search accepts (a page never 4xxs on it)."""
    return (q or "").strip()[: queries.MAX_QUERY]


@get("/customers", include_in_schema=False)
async def customers(
    request: AnyRequest, session: AsyncSession, q: str | None = None, cursor: str | None = None
) -> Template:
    tenant_id = principal(request).tenant_id
    business = await get_business(session, tenant_id)
    text = _query(q)
    found = await queries.list_customers(
        session, tenant_id, q=text or None, cursor=cursor, limit=PAGE_SIZE
    )
    return page(
        request,
        "dashboard/customers.html",
        business=business,
        rows=found.items,
        q=text,
        more=with_query(request, cursor=found.next) if found.next else None,
        first_page=with_query(request, cursor=None) if cursor else None,
        tz=business.tz,
    )


@get("/customers/{customer_id:uuid}", include_in_schema=False)
async def customer(request: AnyRequest, session: AsyncSession, customer_id: uuid.UUID) -> Template:
    tenant_id = principal(request).tenant_id
    business = await get_business(session, tenant_id)
    detail = await queries.get_customer(session, tenant_id, customer_id)
    catalog = await get_catalog(session, tenant_id)
    return page(
        request,
        "dashboard/customer.html",
        business=business,
        detail=detail,
        labels=STATUS_LABELS,
        services=catalog.service_names(),
        resources=catalog.resource_names(),
        tz=business.tz,
    )


async def pick_context(
    session: AsyncSession, tenant_id: uuid.UUID, find: str | None, picked: uuid.UUID | None
) -> tuple[dict[str, str], dict[str, Any]]:
    """For the new-booking form: the picked customer's fields to prefill, and the search box
    with its matches (the form works by links without JavaScript)."""
    prefill: dict[str, str] = {}
    if picked is not None:
        try:
            chosen = (await queries.get_customer(session, tenant_id, picked)).customer
        except errors.NotFound:
            chosen = None
        if chosen is not None:
            prefill = {
                "name": chosen.name,
                "phone": chosen.phone or "",
                "email": chosen.email or "",
            }
    text = _query(find)
    matches = (
        (await queries.list_customers(session, tenant_id, q=text, limit=PICK_SIZE)).items
        if text
        else []
    )
    return prefill, {"find": text, "matches": matches, "picked": picked if prefill else None}


@get("/customers", include_in_schema=False)
async def search(
    request: AnyRequest, session: AsyncSession, q: str | None = None
) -> CustomerPageOut:
    """The new-booking form's search as you type: the first matches by name."""
    text = _query(q)
    if not text:
        return CustomerPageOut([], None)
    found = await queries.list_customers(
        session, principal(request).tenant_id, q=text, limit=PICK_SIZE
    )
    return CustomerPageOut([CustomerOut.of(c) for c in found.items], None)
