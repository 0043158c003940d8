"""Service pages (owners and admins): the list, and one form per policy — appointments
(time_slot), stays (nightly), rentals (interval) — with branch prices, cancellation tiers,
a no-show fee and commission. Saved by create_service / update_service, the use cases of
POST /api/v1/services and PATCH /api/v1/services/{id}; their checks decide what is valid."""

from __future__ import annotations

import uuid
from dataclasses import fields
from typing import Any

from litestar import Response, get, post
from litestar.response import Redirect, Template
from sqlalchemy.ext.asyncio import AsyncSession

from app import errors
from app.catalog import service
from app.catalog.checks import clock_text
from app.catalog.models import POLICIES
from app.catalog.specs import POLICY_PRICING, BranchPriceInput, ServiceSpec, TierInput
from app.catalog.views import ServiceView
from app.edge.web.dashboard.pages_catalog import archived_filter
from app.edge.web.dashboard.pages_catalog_forms import (
    POLICY_LABELS,
    Form,
    actor,
    as_uuid,
    field_errors,
    indexed,
    money_text,
    parse_bps,
    parse_whole,
    percent_text,
)
from app.edge.web.dashboard.queries import Business, get_business
from app.edge.web.dashboard.rendering import page
from app.edge.web.rendering import AnyRequest
from app.presentation.i18n import N_

MINUTES = N_("Enter a whole number of minutes.")
PRICE = N_("Enter a price of zero or more, like 350.00.")
BRANCH_PRICE = N_("Enter a price of zero or more, or leave it empty to use the main price.")
MESSAGES = {
    "name": N_("Enter a name of 1 to 200 characters."),
    "price": PRICE,
    "duration_minutes": N_("Enter how long it takes, from 1 to 1,440 minutes."),
    "slot_step_minutes": N_("Enter the step between start times, from 1 to 1,440 minutes."),
    "buffer_before_minutes": N_("Enter a buffer from 0 to 1,440 minutes."),
    "buffer_after_minutes": N_("Enter a buffer from 0 to 1,440 minutes."),
    "min_notice_minutes": N_("Enter the notice in minutes, 0 or more."),
    "max_advance_days": N_("Enter how many days ahead it can be booked, from 1 to 3,660."),
    "min_nights": N_("Enter the shortest stay, from 1 to 366 nights."),
    "max_nights": N_("Enter the longest stay, from 1 to 366 nights and not below the shortest."),
    "check_in_time": N_("Enter the check-in time, like 15:00."),
    "check_out_time": N_("Enter the check-out time, like 11:00."),
    "min_minutes": N_("Enter the shortest rental in minutes, a multiple of the step."),
    "max_minutes": N_(
        "Enter the longest rental in minutes, a multiple of the step and not below the shortest."
    ),
    "commission_bps": N_("Enter a commission from 0 to 100 percent, or leave it empty."),
    "commission_fixed_minor": N_(
        "Enter a fixed commission of zero or more, or a percentage, not both."
    ),
    "resource_ids": N_("Choose at least one active resource that provides it."),
    "tiers": N_("Each tier needs hours before the start, each once, and a refund of 0 to 100 %."),
    "no_show_fee_bps": N_("Enter a no-show fee from 0 to 100 percent, or leave it empty."),
}
# Fields each policy's form shows (the others are sent as not used).
POLICY_FIELDS = {
    "time_slot": (
        "duration_minutes",
        "slot_step_minutes",
        "buffer_before_minutes",
        "buffer_after_minutes",
    ),
    "nightly": ("check_in_time", "check_out_time", "min_nights", "max_nights"),
    "interval": (
        "slot_step_minutes",
        "min_minutes",
        "max_minutes",
        "buffer_before_minutes",
        "buffer_after_minutes",
    ),
}
NUMBERS = (
    "duration_minutes",
    "slot_step_minutes",
    "buffer_before_minutes",
    "buffer_after_minutes",
    "min_nights",
    "max_nights",
    "min_minutes",
    "max_minutes",
)


@get("/catalog/services", include_in_schema=False)
async def services(request: AnyRequest, session: AsyncSession) -> Template:
    tenant_id = actor(request).tenant_id
    business = await get_business(session, tenant_id)
    shown = request.query_params.get("archived")
    found = await service.list_services(session, tenant_id, archived=archived_filter(shown))
    return page(
        request,
        "dashboard/catalog/services.html",
        business=business,
        services=found,
        policies=POLICY_LABELS,
        shown=shown,
    )


def _values(view: ServiceView) -> dict[str, Any]:
    currency = view.price.currency
    values: dict[str, Any] = {
        name: "" if getattr(view, name) is None else str(getattr(view, name)) for name in NUMBERS
    }
    policy = view.cancellation_policy
    values |= {
        "name": view.name,
        "price": money_text(view.price.amount_minor, currency),
        "min_notice_minutes": str(view.min_notice_minutes),
        "max_advance_days": str(view.max_advance_days),
        "check_in_time": clock_text(view.check_in_time) or "",
        "check_out_time": clock_text(view.check_out_time) or "",
        "commission_bps": percent_text(view.commission_bps),
        "commission_fixed_minor": money_text(view.commission_fixed_minor, currency),
        "resource_ids": [str(r) for r in view.resource_ids],
        "tiers": [
            {"hours": str(t.hours_before), "refund": percent_text(t.refund_bps)}
            for t in policy.tiers
        ],
        "no_show_fee_bps": percent_text(policy.no_show_fee_bps),
    }
    for price in view.branch_prices:
        values[f"branch_price-{price.branch_id}"] = money_text(price.amount_minor, currency)
    return values


async def _service_page(
    request: AnyRequest,
    session: AsyncSession,
    policy: str,
    current: ServiceView | None,
    *,
    values: dict[str, Any] | None = None,
    problems: dict[str, str] | None = None,
    status: int = 200,
) -> Template:
    tenant_id = actor(request).tenant_id
    business = await get_business(session, tenant_id)
    resources = await service.list_resources(session, tenant_id, archived=None)
    branches = await service.list_branches(session, tenant_id)
    linked = {str(r) for r in current.resource_ids} if current else set()
    if values is None:
        values = _values(current) if current else {"max_advance_days": "365", "tiers": []}
    # The tiers as they are (empty rows dropped) and one empty row to add another.
    tiers = [t for t in values.get("tiers", []) if t["hours"] or t["refund"]]
    values["tiers"] = [*tiers, {"hours": "", "refund": ""}]
    return page(
        request,
        "dashboard/catalog/service.html",
        status=status,
        business=business,
        service=current,
        policy=policy,
        policy_label=POLICY_LABELS[policy],
        shows=POLICY_FIELDS[policy],
        resources=[r for r in resources if r.active or str(r.id) in linked],
        branches=branches,
        values=values,
        errors=problems or {},
        saved=request.query_params.get("saved") == "1",
    )


@get("/catalog/services/new", include_in_schema=False)
async def new_service(
    request: AnyRequest, session: AsyncSession, policy: str | None = None
) -> Template:
    if policy not in POLICIES:
        business = await get_business(session, actor(request).tenant_id)
        return page(
            request,
            "dashboard/catalog/service_policy.html",
            business=business,
            policies=POLICY_LABELS,
        )
    return await _service_page(request, session, policy, None)


def _read(form: Form, policy: str, business: Business, branch_ids: list[uuid.UUID]) -> ServiceSpec:
    """The form as the ServiceSpec the API's body becomes; text that is no number is an error
    of its field (form.errors) and the spec is not used."""
    currency = business.currency
    name = form.text("name")
    price = form.money("price", currency, PRICE)
    if not form.values["price"]:
        form.errors["price"] = PRICE
    shown = POLICY_FIELDS[policy]
    numbers = {key: form.whole(key, MINUTES) if key in shown else None for key in NUMBERS}
    check_in = form.text("check_in_time") or None if policy == "nightly" else None
    check_out = form.text("check_out_time") or None if policy == "nightly" else None
    notice = form.whole("min_notice_minutes", MESSAGES["min_notice_minutes"]) or 0
    advance = form.whole("max_advance_days", MESSAGES["max_advance_days"])
    chosen = form.texts("resource_ids")
    form.values["resource_ids"] = chosen
    prices = []
    for branch_id in branch_ids:
        amount = form.money(f"branch_price-{branch_id}", currency, BRANCH_PRICE)
        if amount is not None:
            prices.append(BranchPriceInput(branch_id, amount, POLICY_PRICING[policy]))
    return ServiceSpec(
        name=name,
        policy=policy,
        price_minor=price or 0,
        currency=currency,
        pricing=POLICY_PRICING[policy],
        resource_ids=tuple(r for r in (as_uuid(text) for text in chosen) if r is not None),
        min_notice_minutes=notice,
        max_advance_days=365 if advance is None else advance,
        check_in_time=check_in,
        check_out_time=check_out,
        branch_prices=tuple(prices),
        commission_bps=form.percent("commission_bps", MESSAGES["commission_bps"]),
        commission_fixed_minor=form.money(
            "commission_fixed_minor", currency, MESSAGES["commission_fixed_minor"]
        ),
        tiers=_tiers(form),
        no_show_fee_bps=form.percent("no_show_fee_bps", MESSAGES["no_show_fee_bps"]),
        duration_minutes=numbers["duration_minutes"],
        slot_step_minutes=numbers["slot_step_minutes"],
        buffer_before_minutes=numbers["buffer_before_minutes"] or 0,
        buffer_after_minutes=numbers["buffer_after_minutes"] or 0,
        min_nights=numbers["min_nights"],
        max_nights=numbers["max_nights"],
        min_minutes=numbers["min_minutes"],
        max_minutes=numbers["max_minutes"],
    )


def _tiers(form: Form) -> tuple[TierInput, ...]:
    tiers, rows = [], []
    for hours, refund in zip(form.texts("tier_hours"), form.texts("tier_refund"), strict=False):
        rows.append({"hours": hours, "refund": refund})
        if not hours and not refund:
            continue
        hours_before, refund_bps = parse_whole(hours), parse_bps(refund)
        if hours_before is None or refund_bps is None:
            form.errors["tiers"] = MESSAGES["tiers"]
            continue
        tiers.append(TierInput(hours_before, refund_bps))
    form.values["tiers"] = rows
    return tuple(tiers)


def _rename(branch_ids: list[uuid.UUID], prices: tuple[BranchPriceInput, ...]) -> Any:
    """The API's field names as this form's inputs."""

    def rename(name: str) -> str | None:
        if name.startswith("price.") or name == "pricing":
            return "price"
        if name.startswith("cancellation_policy.tiers"):
            return "tiers"
        if name == "cancellation_policy.no_show_fee_bps":
            return "no_show_fee_bps"
        found = indexed(name)
        if found and found[0] == "branch_prices" and found[1] < len(prices):
            return f"branch_price-{prices[found[1]].branch_id}"
        return name

    return rename


def _messages(branch_ids: list[uuid.UUID]) -> dict[str, str]:
    return MESSAGES | {f"branch_price-{b}": BRANCH_PRICE for b in branch_ids}


async def _save(
    request: AnyRequest, session: AsyncSession, policy: str, current: ServiceView | None
) -> Response[Any]:
    principal = actor(request)
    business = await get_business(session, principal.tenant_id)
    branch_ids = [b.id for b in await service.list_branches(session, principal.tenant_id)]
    form = Form(await request.form())
    spec = _read(form, policy, business, branch_ids)
    problems = dict(form.errors)
    if not problems:
        try:
            if current is None:
                saved = await service.create_service(session, principal, spec)
            else:
                patch = service.ServicePatch(
                    **{
                        f.name: getattr(spec, f.name)
                        for f in fields(service.ServicePatch)
                        if f.name not in ("archived", "policy", "currency")
                    }
                )
                saved = await service.update_service(session, principal, current.id, patch)
        except errors.ValidationFailed as error:
            problems = field_errors(
                error, _messages(branch_ids), _rename(branch_ids, spec.branch_prices)
            )
        else:
            return Redirect(f"/dashboard/catalog/services/{saved.id}?saved=1", status_code=303)
    return await _service_page(
        request, session, policy, current, values=form.values, problems=problems, status=422
    )


@post("/catalog/services/new", include_in_schema=False)
async def create_service(
    request: AnyRequest, session: AsyncSession, policy: str | None = None
) -> Response[Any]:
    if policy not in POLICIES:
        raise errors.NotFound("No such policy", entity="policy")
    return await _save(request, session, policy, None)


@get("/catalog/services/{service_id:uuid}", include_in_schema=False)
async def service_page(
    request: AnyRequest, session: AsyncSession, service_id: uuid.UUID
) -> Template:
    current = await service.get_service(session, actor(request).tenant_id, service_id)
    return await _service_page(request, session, current.policy, current)


@post("/catalog/services/{service_id:uuid}", include_in_schema=False)
async def update_service(
    request: AnyRequest, session: AsyncSession, service_id: uuid.UUID
) -> Response[Any]:
    current = await service.get_service(session, actor(request).tenant_id, service_id)
    return await _save(request, session, current.policy, current)


@post("/catalog/services/{service_id:uuid}/archive", include_in_schema=False)
async def archive_service(
    request: AnyRequest, session: AsyncSession, service_id: uuid.UUID
) -> Response[Any]:
    archived = Form(await request.form()).flag("archived")
    patch = service.ServicePatch(archived=archived)
    await service.update_service(session, actor(request), service_id, patch)
    return Redirect(f"/dashboard/catalog/services/{service_id}?saved=1", status_code=303)
