"""Invoice and credit note endpoints (JSON and printable HTML) and invoicing settings:
owners and admins only."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Any

from litestar import Request, Response, Router, get, put
from litestar.params import Parameter
from sqlalchemy.ext.asyncio import AsyncSession

from app import paging
from app.edge.http import manager_only, principal
from app.errors import NotFound
from app.invoices import queries
from app.invoices.render import CONTENT_SECURITY_POLICY, invoice_html
from app.invoices.schemas import InvoiceOut, InvoiceSettingsIn, InvoiceSettingsOut

HTML_SUFFIX = ".html"


@get("/invoices")
async def list_invoices(
    request: Request[Any, Any, Any],
    session: AsyncSession,
    start: Annotated[str, Parameter(query="from")],
    end: Annotated[str, Parameter(query="to")],
    kind: str | None = None,
    limit: Annotated[int, Parameter(ge=1)] = paging.ARRAY_DEFAULT_LIMIT,
    cursor: str | None = None,
) -> Response[list[InvoiceOut]]:
    """Invoices and credit notes issued in the period, oldest first. `from`/`to`: dates
    (YYYY-MM-DD, the business's timezone, `to` included, as in the reports) or RFC 3339
    instants (`to` excluded). A page holds `limit` documents (default and most 500); the
    next page's link is in the `Link` (rel="next") and `X-Next-Cursor` headers, absent on
    the last page."""
    page = await queries.list_invoices(
        session,
        principal(request).tenant_id,
        start=paging.parse_bound(start, "from"),
        end=paging.parse_bound(end, "to"),
        kind=kind,
        cursor=cursor,
        limit=limit,
    )
    return Response(
        [InvoiceOut.of(view) for view in page.items],
        headers=paging.next_headers(request.url.path, request.url.query, page.next),
    )


@get("/invoices/{ref:str}")
async def get_invoice(
    request: Request[Any, Any, Any], session: AsyncSession, ref: str
) -> Response[Any]:
    """`/invoices/{id}` is JSON, `/invoices/{id}.html` the printable page (one path segment,
    so one handler reads the suffix)."""
    html = ref.endswith(HTML_SUFFIX)
    invoice_id = _invoice_id(ref.removesuffix(HTML_SUFFIX) if html else ref)
    view = await queries.get_invoice(session, principal(request).tenant_id, invoice_id)
    if html:
        return Response(
            invoice_html(view),
            media_type="text/html; charset=utf-8",
            headers={
                "Content-Security-Policy": CONTENT_SECURITY_POLICY,
                "X-Content-Type-Options": "nosniff",
                "Cache-Control": "private, no-store",
            },
        )
    return Response(InvoiceOut.of(view))


def _invoice_id(text: str) -> uuid.UUID:
    try:
        return uuid.UUID(text)
    except ValueError:
        raise NotFound("Invoice not found", entity="invoice", id=text[:64]) from None


@get("/settings/invoicing")
async def get_settings(
    request: Request[Any, Any, Any], session: AsyncSession
) -> InvoiceSettingsOut:
    view = await queries.get_invoice_settings(session, principal(request).tenant_id)
    return InvoiceSettingsOut.of(view)


@put("/settings/invoicing")
async def put_settings(
    request: Request[Any, Any, Any], data: InvoiceSettingsIn, session: AsyncSession
) -> InvoiceSettingsOut:
    view = await queries.update_invoice_settings(
        session,
        principal(request),
        tax_rate_bps=data.tax_rate_bps,
        tax_label=data.tax_label,
        footer=data.footer,
        now=datetime.now(UTC),
    )
    return InvoiceSettingsOut.of(view)


def router() -> Router:
    return Router(
        path="/api/v1",
        guards=[manager_only],
        tags=["invoices"],
        route_handlers=[list_invoices, get_invoice, get_settings, put_settings],
    )
