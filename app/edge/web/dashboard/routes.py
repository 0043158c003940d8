"""The dashboard's routers, registered by app.edge.web.routes: the sign-in form (CSRF bound to a
pre-session nonce), the pages every role sees, the money, catalog and settings pages (owners
and admins, 403 otherwise) and the JSON/SSE fetches (problem+json errors). Every router
authenticates by the session cookie itself: the API's Bearer authentication skips them
(exclude_from_auth)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from litestar import Router
from litestar.datastructures import ResponseHeader

from app.edge.http import manager_only
from app.edge.web.dashboard import (
    api,
    pages_audit,
    pages_auth,
    pages_bookings,
    pages_calendar,
    pages_customers,
    pages_money,
    pages_money_books,
    pages_money_payouts,
    push,
    push_shell,
)
from app.edge.web.dashboard.pages_catalog_routes import CATALOG_HANDLERS
from app.edge.web.dashboard.rendering import DASHBOARD_EXCEPTION_HANDLERS
from app.edge.web.dashboard.session import csrf_protected, signed_in

PREFIX = "/dashboard"


def routers(headers: Sequence[ResponseHeader], opt: dict[str, Any]) -> list[Router]:
    common: dict[str, Any] = {
        "response_headers": list(headers),
        "include_in_schema": False,
        "opt": dict(opt),
    }
    entry = Router(
        path=PREFIX,
        route_handlers=[pages_auth.sign_in_form, pages_auth.sign_in, push_shell.offline],
        guards=[csrf_protected],
        exception_handlers=DASHBOARD_EXCEPTION_HANDLERS,
        **common,
    )
    pages = Router(
        path=PREFIX,
        route_handlers=[
            pages_auth.home,
            pages_auth.sign_out,
            pages_calendar.calendar,
            pages_bookings.bookings,
            pages_bookings.new_booking,
            pages_bookings.place,
            pages_bookings.booking,
            pages_bookings.move,
            pages_bookings.cancel,
            pages_bookings.refund,
            pages_bookings.transition,
            pages_customers.customers,
            pages_customers.customer,
        ],
        guards=[signed_in, csrf_protected],
        exception_handlers=DASHBOARD_EXCEPTION_HANDLERS,
        **common,
    )
    money = Router(
        path=PREFIX,
        route_handlers=[
            pages_money.revenue,
            pages_money_payouts.payouts_page,
            pages_money_payouts.run,
            pages_money_payouts.mark_paid,
            pages_money_payouts.export_csv,
            pages_money_books.ledger_page,
            pages_money_books.reconciliation_page,
            pages_money_books.resolve,
            pages_money_books.outbox_page,
            pages_money_books.retry,
            pages_money_books.invoices_page,
            pages_money_books.invoice_page,
            pages_audit.audit_log,
        ],
        guards=[signed_in, manager_only, csrf_protected],
        exception_handlers=DASHBOARD_EXCEPTION_HANDLERS,
        **common,
    )
    catalog = Router(
        path=PREFIX,
        route_handlers=CATALOG_HANDLERS,
        guards=[signed_in, manager_only, csrf_protected],
        exception_handlers=DASHBOARD_EXCEPTION_HANDLERS,
        **common,
    )
    fetches = Router(
        path=PREFIX + "/api",
        route_handlers=[
            api.reschedule,
            api.events,
            pages_customers.search,
            push.key,
            push.subscribe,
            push.unsubscribe,
        ],
        guards=[signed_in, csrf_protected],
        **common,
    )
    return [entry, pages, money, catalog, fetches, push_shell.shell_router(opt)]
