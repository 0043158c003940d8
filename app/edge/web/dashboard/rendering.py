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
    ("/dashboard/catalog", N_("Catalog"), True),
    ("/dashboard/settings", N_("Settings"), True),
