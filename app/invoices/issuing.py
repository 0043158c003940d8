"""Issuing a captured payment's invoice as statements for a caller that sends them through
psycopg in pipeline mode (app.db.driver): what service.issue_invoice reads, as statements to
send with the caller's locks, and what it writes, built from those rows. The document is the
one issue_invoice would issue (same lines, tax split, fields and audit row), inserted
unnumbered and numbered at commit like every invoice (migration 0021)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from app.audit import trail as audit
from app.db import new_id, values_list
from app.invoices import amounts, lines
from app.invoices.models import DEFAULT_TAX_LABEL, INVOICE, SERIES

# The anchor is the payment's booking; otherwise lines.COVERED. Each booking comes with its
# products as lines.PRODUCTS reads them (sorted by name, then id): four arrays, NULL when it
# has none. What issue_invoice reads in two statements, in one.
_COVERED = """
    SELECT b.id, b.customer_name, b.customer_email, s.name AS service_name,
           br.timezone AS branch_timezone, b.starts_at, b.unit_price_minor, b.quantity,
           b.party_size, b.total_minor, x.product_ids, x.product_quantities,
           x.product_prices, x.product_names
    FROM bookings b
    JOIN services s ON s.tenant_id = b.tenant_id AND s.id = b.service_id
    JOIN branches br ON br.tenant_id = b.tenant_id AND br.id = b.branch_id
    CROSS JOIN LATERAL (
        SELECT array_agg(bp.product_id ORDER BY pr.name, bp.product_id) AS product_ids,
               array_agg(bp.quantity ORDER BY pr.name, bp.product_id) AS product_quantities,
               array_agg(bp.unit_price_minor ORDER BY pr.name, bp.product_id) AS product_prices,
               array_agg(pr.name ORDER BY pr.name, bp.product_id) AS product_names
        FROM booking_products bp
        JOIN products pr ON pr.tenant_id = bp.tenant_id AND pr.id = bp.product_id
        WHERE bp.tenant_id = b.tenant_id AND bp.booking_id = b.id) x
    WHERE b.tenant_id = %(t)s AND (
        b.id = (SELECT booking_id FROM payments WHERE tenant_id = %(t)s AND id = %(p)s)
        OR (b.series_id = (SELECT a.series_id FROM bookings a JOIN payments pay
                           ON pay.tenant_id = a.tenant_id AND pay.booking_id = a.id
                           WHERE pay.tenant_id = %(t)s AND pay.id = %(p)s)
            AND NOT EXISTS (SELECT 1 FROM payments p WHERE p.tenant_id = b.tenant_id
                            AND p.booking_id = b.id AND p.id <> %(p)s)))
    ORDER BY b.starts_at, b.id
"""
READS = {
    # The issuer, whether the tenant is set as issuing requires, whether the payment has its
    # invoice already, and the business's invoice settings (a row or none): one statement.
    "issuer": (
        "SELECT t.id, t.name, t.timezone, current_setting('app.tenant_id', true) AS current, "
        "EXISTS (SELECT 1 FROM invoices WHERE tenant_id = %(t)s AND kind = 'invoice' "
        "AND payment_id = %(p)s) AS invoiced, s.tax_rate_bps IS NOT NULL AS configured, "
        "s.tax_rate_bps, s.tax_label, s.footer FROM tenants t LEFT JOIN LATERAL "
        "(SELECT tax_rate_bps, tax_label, footer FROM invoice_settings "
        "WHERE tenant_id = t.id LIMIT 1) s ON true WHERE t.id = %(t)s"
    ),
    "covered": _COVERED,
}
"""What issue_invoice reads, each with parameters t (tenant) and p (payment): send them after
the payment is locked."""

_INSERT_INVOICE = (
    "INSERT INTO invoices (tenant_id, id, kind, series, year, payment_id, booking_id, "
    "issued_at, business_name, timezone, customer_name, customer_email, subtotal_minor, "
    "tax_minor, total_minor, currency, tax_rate_bps, tax_label, footer, created_at) VALUES "
    "(%(t)s, %(id)s, %(kind)s, %(series)s, %(year)s, %(payment)s, %(booking)s, %(now)s, "
    "%(business)s, %(timezone)s, %(customer)s, %(email)s, %(subtotal)s, %(tax)s, %(total)s, "
    "%(currency)s, %(rate)s, %(label)s, %(footer)s, %(now)s)"
)
_LINE_COLUMNS = (
    "tenant_id, id, invoice_id, position, description, quantity, unit_price_minor, "
    "amount_minor, currency, booking_id, product_id"
)
_LINE_CASTS = (None,) * 11


@dataclass(frozen=True, slots=True)
class Planned:
    """The invoice's statements, (sql, params) in order, and its audit row."""

    statements: list[tuple[str, dict[str, Any]]]
    audit: audit.Record


def plan_invoice(
    tenant_id: uuid.UUID,
    payment_id: uuid.UUID,
    anchor_id: uuid.UUID,
    captured: int,
    currency: str,
    rows: Mapping[str, Sequence[Any]],
    now: datetime,
) -> Planned | None:
    """The invoice of a payment captured in this transaction, from the READS rows (named
    tuples, by key). None when issue_invoice must decide (an invoice exists, the tenant is not
    set as issuing requires, the anchor booking is not covered): it raises or finds it."""
    issuer = rows["issuer"][0] if rows["issuer"] else None
    if issuer is None or issuer.current != str(tenant_id) or issuer.invoiced or captured <= 0:
        return None
    covered = [lines.covered_from(r) for r in rows["covered"]]
    anchor = next((b for b in covered if b.id == anchor_id), None)
    if anchor is None:
        return None
    products = [product for r in rows["covered"] for product in _products_of(r)]
    items = amounts.balance_lines(lines.lines_of(covered, products), captured)
    configured = issuer.configured
    rate = issuer.tax_rate_bps if configured else 0
    split = amounts.split_invoice(captured, rate)
    series = SERIES[INVOICE]
    year = now.astimezone(ZoneInfo(issuer.timezone)).year
    invoice_id = new_id()
    invoice = {
        "t": tenant_id,
        "id": invoice_id,
        "kind": INVOICE,
        "series": series,
        "year": year,
        "payment": payment_id,
        "booking": anchor.id,
        "now": now,
        "business": issuer.name,
        "timezone": issuer.timezone,
        "customer": anchor.customer_name,
        "email": anchor.customer_email,
        "subtotal": split.net_minor,
        "tax": split.tax_minor,
        "total": split.gross_minor,
        "currency": currency,
        "rate": rate,
        "label": issuer.tax_label if configured else DEFAULT_TAX_LABEL,
        "footer": issuer.footer if configured else None,
    }
    values, line_params = values_list(
        [
            (
                tenant_id,
                new_id(),
                invoice_id,
                position,
                item.description,
                item.quantity,
                item.unit_price_minor,
                item.amount_minor,
                currency,
                item.booking_id,
                item.product_id,
            )
            for position, item in enumerate(items, start=1)
        ],
        _LINE_CASTS,
    )
    # One statement: the lines' foreign key is checked at its end, the invoice inserted by then.
    insert = (
        f"WITH invoice AS ({_INSERT_INVOICE} RETURNING id) "
        f"INSERT INTO invoice_lines ({_LINE_COLUMNS}) VALUES {values}"
    )
    record = audit.Record(
        audit.SYSTEM,
        f"{INVOICE}.issued",
        INVOICE,
        invoice_id,
        after={
            "series": series,
            "year": year,
            "total_minor": split.gross_minor,
            "currency": currency,
        },
    )
    return Planned([(insert, {**invoice, **line_params})], record)


def _products_of(row: Any) -> list[lines.ProductRow]:
    """A READS["covered"] row's products, as lines.PRODUCTS reads them."""
    if row.product_ids is None:
        return []
    return [
        lines.ProductRow(row.id, *product)
        for product in zip(
            row.product_ids,
            row.product_quantities,
            row.product_prices,
            row.product_names,
            strict=True,
        )
    ]
