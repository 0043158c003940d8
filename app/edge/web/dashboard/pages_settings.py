"""Settings pages (owners and admins): payment providers and integrations, invoicing terms,
and users with their roles. Each form calls the use case its JSON route calls
(update_provider_settings, update_invoice_settings, create_user, update_user).

Provider credentials are write-only here as in the API: a stored secret is never read back
into a page; the page shows only which fields are set (the API exposes nothing more, so no
last four characters)."""

from __future__ import annotations

from typing import Any

from litestar import Response, get, post
from litestar.response import Redirect, Template
from sqlalchemy.ext.asyncio import AsyncSession

from app import errors
from app.edge.deps import ApiDeps
from app.edge.web.dashboard.pages_catalog_forms import (
    Form,
    actor,
    field_errors,
    percent_text,
)
from app.edge.web.dashboard.queries import get_business
from app.edge.web.dashboard.rendering import page
from app.edge.web.rendering import AnyRequest, now
from app.gateways.accounts import has_own_account
from app.gateways.stripe_endpoints import webhook_path
from app.invoices import queries as invoices
from app.presentation.i18n import N_
from app.tenant_settings import service as provider_settings
from app.tenant_settings.models import CREDENTIAL_FIELDS, PROVIDERS

PROVIDER_LABELS = {
    "stripe": N_("Stripe (cards)"),
    "kashier": N_("Kashier (cards and wallets)"),
    "sandbox": N_("Sandbox (test payments, no real money)"),
    "cash": N_("Cash at the venue"),
    "whatsapp": N_("WhatsApp messages"),
    "google_calendar": N_("Google Calendar"),
}
CREDENTIAL_LABELS = {
    "api_key": N_("Secret API key"),
    "webhook_secret": N_("Webhook signing secret"),
    "merchant_id": N_("Merchant ID"),
    "secret_key": N_("Secret key"),
    "access_token": N_("Access token"),
    "phone_number_id": N_("Phone number ID"),
    "client_id": N_("Client ID"),
    "client_secret": N_("Client secret"),
}
SECRET = N_("Enter at most 4,096 characters.")
INVOICING_MESSAGES = {
    "tax_rate_bps": N_("Enter a tax rate from 0 to 100 percent."),
    "tax_label": N_("Enter a label of 1 to 40 characters, or leave it empty."),
    "footer": N_("Enter at most 2,000 characters."),
}


@get("/settings", include_in_schema=False)
async def settings_home() -> Redirect:
    return Redirect("/dashboard/settings/providers", status_code=303)


# -- providers ---------------------------------------------------------------------------


def _stripe_webhook(
    deps: ApiDeps, request: AnyRequest, state: provider_settings.ProviderState
) -> str | None:
    """Where a business on its own Stripe account points its Stripe webhook (as the API says)."""
    if state.provider != "stripe":
        return None
    if not has_own_account("stripe", {name: "set" for name in state.fields_set}):
        return None
    return deps.public_base_url.rstrip("/") + webhook_path(actor(request).tenant_id)


async def _providers_page(
    request: AnyRequest,
    session: AsyncSession,
    deps: ApiDeps,
    *,
    problems: dict[str, str] | None = None,
    status: int = 200,
) -> Template:
    tenant_id = actor(request).tenant_id
    business = await get_business(session, tenant_id)
    view = await provider_settings.get_provider_settings(session, tenant_id)
    return page(
        request,
        "dashboard/settings/providers.html",
        status=status,
        business=business,
        providers=[
            (
                state,
                sorted(CREDENTIAL_FIELDS[state.provider]),
                _stripe_webhook(deps, request, state),
            )
            for state in view.providers
        ],
        labels=PROVIDER_LABELS,
        credential_labels=CREDENTIAL_LABELS,
        errors=problems or {},
        saved=request.query_params.get("saved") == "1",
    )


@get("/settings/providers", include_in_schema=False)
async def providers(request: AnyRequest, session: AsyncSession, deps: ApiDeps) -> Template:
    return await _providers_page(request, session, deps)


def _rename(name: str) -> str | None:
    """`credentials.stripe.api_key` -> the input `cred-stripe-api_key`."""
    parts = name.split(".")
    if parts[0] == "credentials" and len(parts) == 3:
        return f"cred-{parts[1]}-{parts[2]}"
    return name


@post("/settings/providers", include_in_schema=False)
async def save_providers(
    request: AnyRequest, session: AsyncSession, deps: ApiDeps
) -> Response[Any]:
    form = Form(await request.form())
    enabled = [p for p in form.texts("enabled") if p in PROVIDERS]
    credentials: dict[str, dict[str, str | None]] = {}
    for provider, names in CREDENTIAL_FIELDS.items():
        for name in sorted(names):
            value = str(form.data.get(f"cred-{provider}-{name}") or "").strip()
            if value:
                credentials.setdefault(provider, {})[name] = value
            elif form.data.get(f"clear-{provider}-{name}"):
                credentials.setdefault(provider, {})[name] = None
    try:
        await provider_settings.update_provider_settings(
            session,
            actor(request),
            deps.secret_box,
            now(),
            enabled=enabled,
            credentials=credentials,
        )
    except errors.ValidationFailed as error:
        messages = {
            f"cred-{provider}-{name}": SECRET
            for provider, names in CREDENTIAL_FIELDS.items()
            for name in names
        }
        problems = field_errors(error, messages, _rename)
        return await _providers_page(request, session, deps, problems=problems, status=422)
    return Redirect("/dashboard/settings/providers?saved=1", status_code=303)


# -- invoicing ---------------------------------------------------------------------------


async def _invoicing_page(
    request: AnyRequest,
    session: AsyncSession,
    *,
    values: dict[str, Any] | None = None,
    problems: dict[str, str] | None = None,
    status: int = 200,
) -> Template:
    tenant_id = actor(request).tenant_id
    business = await get_business(session, tenant_id)
    current = await invoices.get_invoice_settings(session, tenant_id)
    return page(
        request,
        "dashboard/settings/invoicing.html",
        status=status,
        business=business,
        values=values
        or {
            "tax_rate_bps": percent_text(current.tax_rate_bps),
            "tax_label": current.tax_label,
            "footer": current.footer or "",
        },
        errors=problems or {},
        saved=request.query_params.get("saved") == "1",
    )


@get("/settings/invoicing", include_in_schema=False)
async def invoicing(request: AnyRequest, session: AsyncSession) -> Template:
    return await _invoicing_page(request, session)


@post("/settings/invoicing", include_in_schema=False)
async def save_invoicing(request: AnyRequest, session: AsyncSession) -> Response[Any]:
    form = Form(await request.form())
    rate = form.percent("tax_rate_bps", INVOICING_MESSAGES["tax_rate_bps"])
    label = form.text("tax_label", limit=100) or None
    footer = form.text("footer", limit=2100) or None
    problems = dict(form.errors)
    if not problems:
        try:
            await invoices.update_invoice_settings(
                session,
                actor(request),
                tax_rate_bps=rate or 0,
                tax_label=label,
                footer=footer,
                now=now(),
            )
        except errors.ValidationFailed as error:
            problems = field_errors(error, INVOICING_MESSAGES)
        else:
            return Redirect("/dashboard/settings/invoicing?saved=1", status_code=303)
    return await _invoicing_page(
        request, session, values=form.values, problems=problems, status=422
    )
