"""Reading invoices and the invoicing settings; updating the settings."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit import trail as audit
from app.db import new_id, set_tenant
from app.errors import NotFound
from app.invoices.amounts import check_rate
from app.invoices.models import CREDIT_NOTE, DEFAULT_TAX_LABEL, INVOICE, Invoice, InvoiceSettings
from app.invoices.views import InvoiceView, SettingsView, load_views
from app.paging import MAX_LIMIT, Bound, Key, Keyset, Page, business_zone, period
from app.tenancy.service import Principal
from app.validation import check_text, field_error

KINDS = (INVOICE, CREDIT_NOTE)


async def find_invoice(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    *,
    payment_id: uuid.UUID | None = None,
    refund_id: uuid.UUID | None = None,
) -> Invoice | None:
    """The invoice of a payment, or the credit note of a refund (tenant already set)."""
    query = select(Invoice).where(Invoice.tenant_id == tenant_id)
    if refund_id is not None:
        query = query.where(Invoice.kind == CREDIT_NOTE, Invoice.refund_id == refund_id)
    else:
        query = query.where(Invoice.kind == INVOICE, Invoice.payment_id == payment_id)
    return (await session.scalars(query)).first()


async def current_settings(session: AsyncSession, tenant_id: uuid.UUID) -> SettingsView:
    row = (
        await session.scalars(select(InvoiceSettings).where(InvoiceSettings.tenant_id == tenant_id))
    ).first()
    if row is None:
        return SettingsView(0, DEFAULT_TAX_LABEL, None)
    return SettingsView(row.tax_rate_bps, row.tax_label, row.footer)


async def get_invoice(
    session: AsyncSession, tenant_id: uuid.UUID, invoice_id: uuid.UUID
) -> InvoiceView:
    async with session.begin():
        await set_tenant(session, tenant_id)
        row = await session.get(Invoice, (tenant_id, invoice_id))
        if row is None:
            raise NotFound("Invoice not found", entity="invoice", id=str(invoice_id))
        return (await load_views(session, [row]))[0]


INVOICE_ORDER = Keyset(
    "invoices",
    Key(Invoice.issued_at, datetime),
    Key(Invoice.series, str),
    Key(Invoice.sequence, int),
    Key(Invoice.id, uuid.UUID),
)


async def list_invoices(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    *,
    start: Bound,
    end: Bound,
    kind: str | None = None,
    cursor: str | None = None,
    limit: int = MAX_LIMIT,
) -> Page[InvoiceView]:
    """One page of the invoices and credit notes issued in the period (dates in the
    business's timezone, `end` included), oldest first, numbers ascending within an instant."""
    if kind is not None and kind not in KINDS:
        raise field_error("kind", "must be invoice or credit_note")
    async with session.begin():
        await set_tenant(session, tenant_id)
        since, until = period(start, end, await business_zone(session, tenant_id))
        query = select(Invoice).where(
            Invoice.tenant_id == tenant_id, Invoice.issued_at >= since, Invoice.issued_at < until
        )
        if kind is not None:
            query = query.where(Invoice.kind == kind)
        page = await INVOICE_ORDER.fetch(session, query, cursor, limit)
        return Page(await load_views(session, page.items), page.next)


async def get_invoice_settings(session: AsyncSession, tenant_id: uuid.UUID) -> SettingsView:
    async with session.begin():
        await set_tenant(session, tenant_id)
        return await current_settings(session, tenant_id)


async def update_invoice_settings(
    session: AsyncSession,
    actor: Principal,
    *,
    tax_rate_bps: int,
    tax_label: str | None,
    footer: str | None,
    now: datetime,
) -> SettingsView:
    """Replace the terms for documents issued from now on (absent fields take their defaults);
    issued documents keep the terms they stated."""
    check_rate(tax_rate_bps)
    label = check_text(tax_label, "tax_label", max_length=40) if tax_label is not None else None
    note = check_text(footer, "footer", max_length=2000, min_length=0) if footer else None
    tenant_id = actor.tenant_id
    async with session.begin():
        await set_tenant(session, tenant_id)
        before = await current_settings(session, tenant_id)
        after = SettingsView(tax_rate_bps, label or DEFAULT_TAX_LABEL, note)
        await session.execute(
            text(
                "INSERT INTO invoice_settings (tenant_id, id, tax_rate_bps, tax_label, footer, "
                "updated_at) VALUES (:t, :id, :rate, :label, :footer, :now) "
                "ON CONFLICT (tenant_id) DO UPDATE SET tax_rate_bps = EXCLUDED.tax_rate_bps, "
                "tax_label = EXCLUDED.tax_label, footer = EXCLUDED.footer, "
                "updated_at = EXCLUDED.updated_at"
            ),
            {
                "t": tenant_id,
                "id": new_id(),
                "rate": after.tax_rate_bps,
                "label": after.tax_label,
                "footer": after.footer,
                "now": now,
            },
        )
        audit.record(
            session,
            tenant_id,
            audit.Actor.user(actor.user_id),
            "invoice_settings.updated",
            "tenant",
            tenant_id,
            before=_snapshot(before),
            after=_snapshot(after),
        )
        return after


def _snapshot(view: SettingsView) -> dict[str, object]:
    return {"tax_rate_bps": view.tax_rate_bps, "tax_label": view.tax_label, "footer": view.footer}
