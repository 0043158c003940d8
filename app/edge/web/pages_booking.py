"""The booking flow: branch -> month -> the free times of a day -> details and payment.

Every step is a GET with query parameters (works with JavaScript off); the details form POSTs
once per Idempotency-Key and places the booking exactly as POST /public/{slug}/bookings does.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated, Any

from litestar import Response, get, post
from litestar.params import Parameter
from litestar.response import Redirect
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit import trail as audit
from app.bookings.errors import ProviderUnavailable
from app.bookings.service import place_booking
from app.edge.api.bookings import await_checkout_url
from app.edge.ratelimit import public_rate_limit
from app.edge.web import calendar as cal
from app.edge.web.config import web_config
from app.edge.web.forms import DetailsForm, form_errors, new_key, parse_details, run_once, web_url
from app.edge.web.queries import (
    MonthQuery,
    QuoteQuery,
    find_business,
    get_month_availability,
    get_quote,
    get_shop,
)
from app.edge.web.rendering import AnyRequest, now, page_lang, render, with_query
from app.edge.web.steps import book_url, day_context, month_context, parse_month_or_day
from app.errors import IdempotencyKeyReused, NotFound
from app.presentation.i18n import N_
from app.tenancy.models import Tenant

Party = Annotated[int, Parameter(ge=1, le=1000)]
ONLINE = ("stripe", "kashier")


@get("/b/{slug:str}/book", include_in_schema=False, guards=[public_rate_limit])
async def book(
    request: AnyRequest,
    slug: str,
    session: AsyncSession,
    service: uuid.UUID,
    branch: uuid.UUID | None = None,
    who: str | None = None,
    party: Party = 1,
    month: str | None = None,
    day: date | None = None,
    at: datetime | None = None,
    taken: bool = False,
) -> Response[Any]:
    tenant = await find_business(session, slug)
    if branch is None:
        shop = await get_shop(session, tenant, now())
        info = shop.service(service)
        branches = shop.branches_for(info)
        if len(branches) == 1:
            return Redirect(with_query(request, branch=str(branches[0].id)), status_code=303)
        return render(request, "book_branch.html", shop=shop, service=info, branches=branches)
    chosen = parse_month_or_day(month, day)
    found = await get_month_availability(
        session,
        tenant,
        MonthQuery(service, branch, chosen, cal.resource_choice(who), party),
        now(),
        day=day,
        memo=web_config(request.app.state).free_days,
    )
    return render(
        request,
        "book.html",
        **month_context(request, slug, found, service, branch, who, party),
        **day_context(slug, found, service, branch, who, party, day, at),
        taken=taken,
    )


@get("/b/{slug:str}/book/details", include_in_schema=False, guards=[public_rate_limit])
async def details(
    request: AnyRequest,
    slug: str,
    session: AsyncSession,
    service: uuid.UUID,
    branch: uuid.UUID,
    start: datetime,
    end: datetime | None = None,
    who: str | None = None,
    party: Party = 1,
) -> Response[Any]:
    tenant = await find_business(session, slug)
    query = QuoteQuery(service, branch, start, end, cal.resource_choice(who), party)
    return await _details_page(request, session, tenant, query, values={}, errors={})


async def _details_page(
    request: AnyRequest,
    session: AsyncSession,
    tenant: Tenant,
    query: QuoteQuery,
    *,
    values: dict[str, Any],
    errors: dict[str, str],
    status: int = 200,
) -> Response[Any]:
    shop, quote = await get_quote(session, tenant, query, now())
    service = shop.service(query.service_id)
    branch = shop.branch(query.branch_id)
    config = web_config(request.app.state)
    providers = [p for p in shop.providers if p != "sandbox" or config.development]
    names = {r.id: r.name for r in service.resources}
    tz = branch.tz
    return render(
        request,
        "details.html",
        status=status,
        shop=shop,
        service=service,
        branch=branch,
        quote=quote,
        tz=tz,
        who=query.resource_id,
        who_name=names.get(query.resource_id) if query.resource_id else None,
        party=query.party_size,
        start_value=query.start.astimezone(tz).isoformat(),
        end_value=query.end.astimezone(tz).isoformat() if query.end else "",
        products=shop.products_at(query.branch_id),
        providers=providers,
        values=values,
        errors=errors,
        key=new_key(),
        back_url=book_url(
            shop.slug,
            service=query.service_id,
            branch=query.branch_id,
            who=query.resource_id,
            party=query.party_size,
            day=quote.start.astimezone(tz).date().isoformat(),
        )
        + "#times",
    )


@post("/b/{slug:str}/book/details", include_in_schema=False, guards=[public_rate_limit])
async def place(request: AnyRequest, slug: str, session: AsyncSession) -> Response[Any]:
    tenant = await find_business(session, slug)
    form = await request.form()
    product_ids = set()
    for name in form:
        if name.startswith("product-"):
            try:
                product_ids.add(uuid.UUID(name.removeprefix("product-")))
            except ValueError:
                continue
    submitted, missing = parse_details(form, product_ids)
    query = QuoteQuery(
        submitted.service_id,
        submitted.branch_id,
        submitted.start,
        submitted.end,
        submitted.resource_id,
        submitted.party_size,
    )
    values = {k: str(v) for k, v in form.items()}
    if missing:
        return await _details_page(
            request, session, tenant, query, values=values, errors=missing, status=422
        )
    fields = [(str(k), str(v)) for k, v in form.multi_items()]
    try:
        outcome = await run_once(
            request, tenant.id, submitted.key, fields, _placing(request, session, tenant, submitted)
        )
    except IdempotencyKeyReused:
        errors = {
            "form": N_(
                "These details were already sent with different answers. Check them and send again."
            )
        }
        return await _details_page(
            request, session, tenant, query, values=values, errors=errors, status=422
        )
    if outcome.ok:
        booking_id = uuid.UUID(str(outcome.body["booking_id"]))
        checkout_url = outcome.body.get("checkout_url")
        if web_url(checkout_url) and outcome.body.get("provider") in ONLINE:
            return Redirect(str(checkout_url), status_code=303)
        manage = web_config(request.app.state).links.path(slug, tenant.id, booking_id)
        return Redirect(manage + "?placed=1", status_code=303)
    if outcome.problem in ("slot_unavailable", "contention"):
        again = book_url(
            slug,
            service=submitted.service_id,
            branch=submitted.branch_id,
            who=submitted.resource_id,
            party=submitted.party_size,
            day=submitted.start.date().isoformat(),
            taken=1,
        )
        return Redirect(again + "#times", status_code=303)
    if outcome.problem == "not_found":
        raise NotFound("Not found")
    errors = form_errors(list(outcome.body.get("errors") or []))
    if outcome.problem == "out_of_stock":
        errors["products"] = N_("An extra you chose has just sold out here. Change the quantity.")
    if outcome.problem == "provider_unavailable":
        errors["payment"] = N_("This way of paying is not available. Choose another.")
    if not errors:
        errors["form"] = N_("Some details are not valid. Check them and try again.")
    return await _details_page(
        request, session, tenant, query, values=values, errors=errors, status=outcome.status
    )


def _placing(
    request: AnyRequest, session: AsyncSession, tenant: Tenant, submitted: DetailsForm
) -> Any:
    config = web_config(request.app.state)
    locale = page_lang(request)

    async def run() -> tuple[int, Any]:
        if submitted.provider == "sandbox" and config.sandbox_base_url is None:
            raise ProviderUnavailable(
                "The sandbox provider is not available in production", provider="sandbox"
            )
        placed = await place_booking(
            session,
            tenant.id,
            audit.PUBLIC,
            submitted.request(locale),
            now(),
            sandbox_base_url=config.sandbox_base_url,
        )
        payment = placed.payments[0] if placed.payments else None
        if payment is not None and payment.checkout_url is None:
            payment = await await_checkout_url(
                session, tenant.id, payment, config.checkout_wait_seconds
            )
        return 201, {
            "booking_id": str(placed.booking.id),
            "provider": submitted.provider,
            "checkout_url": payment.checkout_url if payment else None,
        }

    return run
