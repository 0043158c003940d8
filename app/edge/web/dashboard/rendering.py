"""Rendering a dashboard page: the booking site's render() plus the signed-in user, the CSRF
token and the navigation their role sees; HTML errors that send a missing session back to
the sign-in page."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from litestar import Response
from litestar.response import Redirect, Template

from app import errors
from app.edge.http import principal
from app.edge.web.dashboard.labels import ROLE_LABELS
from app.edge.web.dashboard.session import SESSION_COOKIE, CsrfRefused, csrf_token, expired_cookie
from app.edge.web.rendering import HTML_EXCEPTION_HANDLERS, AnyRequest, render
from app.presentation.i18n import N_
from app.tenancy.models import MANAGER_ROLES

# (path, label, managers only)
NAVIGATION = (
    ("/dashboard/calendar", N_("Calendar"), False),
    ("/dashboard/bookings", N_("Bookings"), False),
    ("/dashboard/customers", N_("Customers"), False),
    ("/dashboard/money/revenue", N_("Revenue"), True),
    ("/dashboard/money/payouts", N_("Payouts"), True),
    ("/dashboard/money/reconciliation", N_("Reconciliation"), True),
    ("/dashboard/money/ledger", N_("Ledger"), True),
    ("/dashboard/audit", N_("Audit log"), True),
    ("/dashboard/catalog", N_("Catalog"), True),
    ("/dashboard/settings", N_("Settings"), True),
    ("/dashboard/money/invoices", N_("Invoices"), True),
    ("/dashboard/money/outbox", N_("Outbox"), True),
)


def is_manager(request: AnyRequest) -> bool:
    return principal(request).role in MANAGER_ROLES


def navigation(request: AnyRequest) -> list[tuple[str, str, bool]]:
    manager = is_manager(request)
    path = request.url.path
    return [
        (href, label, path == href or path.startswith(href + "/"))
        for href, label, managers in NAVIGATION
        if manager or not managers
    ]


def page(
    request: AnyRequest, template: str, *, status: int = 200, business: Any = None, **context: Any
) -> Template:
    user = principal(request)
    response = render(
        request,
        template,
        status=status,
        me=user,
        business=business,
        csrf=csrf_token(request),
        nav=navigation(request),
        role_label=ROLE_LABELS.get(user.role, user.role),
        **context,
    )
    # Pages show a business's bookings: never kept by a shared cache or the back button.
    response.headers["Cache-Control"] = "no-store"
    return response


def _error(request: AnyRequest, status: int, title: str) -> Response[Any]:
    response = render(request, "dashboard/error.html", status=status, title=title)
    response.headers["Cache-Control"] = "no-store"
    return response


def not_signed_in(request: AnyRequest, _: errors.Unauthenticated) -> Response[Any]:
    target = request.url.path
    if request.url.query and request.method == "GET":
        target += "?" + request.url.query
    redirect = Redirect(f"/dashboard/sign-in?next={quote(target, safe='')}", status_code=303)
    if request.cookies.get(SESSION_COOKIE):
        redirect.cookies.append(expired_cookie(request, SESSION_COOKIE))
    return redirect


def forbidden(request: AnyRequest, exc: errors.Forbidden) -> Response[Any]:
    if isinstance(exc, CsrfRefused):
        return _error(
            request, 403, N_("This form has expired. Go back, reload the page and try again.")
        )
    return _error(request, 403, N_("Your role does not give access to this page"))


DASHBOARD_EXCEPTION_HANDLERS: Any = {
    **HTML_EXCEPTION_HANDLERS,
    errors.Unauthenticated: not_signed_in,
    errors.Forbidden: forbidden,
}
