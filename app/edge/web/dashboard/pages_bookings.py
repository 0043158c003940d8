"""Bookings from the dashboard: the list, one booking (move, cancel, check in, complete,
no-show — the keyboard's way to do what the calendar's drag does), and a new booking on
free time, placed by place_booking as POST /api/v1/bookings places it."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import date, datetime, timedelta
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from litestar import Response, get, post
from litestar.params import Parameter
from litestar.response import Redirect, Template
from sqlalchemy.ext.asyncio import AsyncSession

from app import errors
from app.audit import trail as audit
from app.bookings import checkout, service
from app.bookings.errors import ProviderUnavailable, SlotUnavailable
from app.bookings.models import STATUSES
from app.bookings.rules import PHONE
from app.edge.http import principal
from app.edge.web.config import web_config
from app.edge.web.dashboard.booking_detail import load_detail
from app.edge.web.dashboard.labels import STATUS_LABELS
from app.edge.web.dashboard.pages_calendar import local_input
from app.edge.web.dashboard.pages_catalog_forms import parse_minor
from app.edge.web.dashboard.pages_customers import pick_context
from app.edge.web.dashboard.queries import bookings_between, get_business, get_catalog
from app.edge.web.dashboard.rendering import is_manager, page
from app.edge.web.rendering import AnyRequest, now
from app.presentation.i18n import N_
from app.tenant_settings.service import get_provider_settings

ONLINE = ("stripe", "kashier")
Transition = Callable[..., Awaitable[service.BookingView]]
TRANSITIONS: dict[str, Transition] = {
    "check-in": service.check_in_booking,
    "complete": service.complete_booking,
    "no-show": service.mark_no_show,
}


def _actor(request: AnyRequest) -> tuple[uuid.UUID, audit.Actor]:
    user = principal(request)
    return user.tenant_id, audit.Actor.user(user.user_id)


def _local(text: str, tz: ZoneInfo) -> datetime | None:
    """A datetime-local input's value, in the business's timezone."""
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        return None
    return value.replace(tzinfo=tz) if value.tzinfo is None else value


def _uuid(text: object) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(text or ""))
    except ValueError:
        return None


def problem_message(error: errors.DomainError) -> str:
    if isinstance(error, SlotUnavailable):
        return N_("That time is not free. Choose another time or resource.")
    if isinstance(error, ProviderUnavailable):
        return N_("This way of paying is not available. Choose another.")
    if isinstance(error, errors.InvalidState):
        return N_("This booking can no longer be changed that way.")
    return N_("Some details are not valid. Check them and try again.")


# -- list ------------------------------------------------------------------------------


@get("/bookings", include_in_schema=False)
async def bookings(
    request: AnyRequest,
    session: AsyncSession,
    from_: Annotated[date | None, Parameter(query="from")] = None,
    to: date | None = None,
    status: str | None = None,
) -> Template:
    tenant_id = principal(request).tenant_id
    business = await get_business(session, tenant_id)
    today = now().astimezone(business.tz).date()
    first = from_ or today
    last = to if to and to >= first else first + timedelta(days=13)
    last = min(last, first + timedelta(days=92))
    chosen = status if status in STATUSES else None
    rows = await bookings_between(
        session, tenant_id, first, last, lookback=timedelta(0), status=chosen
    )
    catalog = await get_catalog(session, tenant_id)
    return page(
        request,
        "dashboard/bookings.html",
        business=business,
        rows=rows,
        first=first,
        last=last,
        chosen=chosen,
        statuses=STATUSES,
        labels=STATUS_LABELS,
        resources=catalog.resource_names(),
        services=catalog.service_names(),
        tz=business.tz,
    )


# -- one booking -----------------------------------------------------------------------


async def _booking_page(
    request: AnyRequest,
    session: AsyncSession,
    booking_id: uuid.UUID,
    *,
    error: str | None = None,
    status: int = 200,
) -> Template:
    tenant_id = principal(request).tenant_id
    business = await get_business(session, tenant_id)
    booking = await service.get_booking(session, tenant_id, booking_id)
    catalog = await get_catalog(session, tenant_id)
    detail = await load_detail(session, tenant_id, booking, now())
    return page(
        request,
        "dashboard/booking.html",
        status=status,
        business=business,
        booking=booking,
        detail=detail,
        labels=STATUS_LABELS,
        resources=catalog.resource_names(),
        services=catalog.service_names(),
        branches=catalog.branch_names(),
        movable_to=[r for r in catalog.resources if booking.branch_id in r.branch_ids],
        start_value=local_input(booking.start, business.tz),
        end_value=local_input(booking.end, business.tz),
        tz=business.tz,
        error=error,
        placed=request.query_params.get("placed") == "1",
        is_manager=is_manager(request),
    )


@get("/bookings/{booking_id:uuid}", include_in_schema=False)
async def booking(request: AnyRequest, session: AsyncSession, booking_id: uuid.UUID) -> Template:
    return await _booking_page(request, session, booking_id)


@post("/bookings/{booking_id:uuid}/move", include_in_schema=False)
async def move(request: AnyRequest, session: AsyncSession, booking_id: uuid.UUID) -> Response[Any]:
    tenant_id, actor = _actor(request)
    business = await get_business(session, tenant_id)
    form = await request.form()
    start = _local(str(form.get("start") or ""), business.tz)
    end = _local(str(form.get("end") or ""), business.tz)
    if start is None:
        return await _booking_page(
            request, session, booking_id, error=N_("Enter the new start."), status=422
        )
    try:
        await service.reschedule_booking(
            session,
            tenant_id,
            actor,
            booking_id,
            start=start,
            end=end,
            resource_id=_uuid(form.get("resource")),
            now=now(),
        )
    except (errors.ValidationFailed, errors.Conflict) as error:
        return await _booking_page(
            request, session, booking_id, error=problem_message(error), status=409
        )
    return Redirect(f"/dashboard/bookings/{booking_id}", status_code=303)


@post("/bookings/{booking_id:uuid}/cancel", include_in_schema=False)
async def cancel(
    request: AnyRequest, session: AsyncSession, booking_id: uuid.UUID
) -> Response[Any]:
    tenant_id, actor = _actor(request)
    form = await request.form()
    series = form.get("scope") == "series"
    try:
        await service.cancel_booking(
            session, tenant_id, actor, booking_id, now(), "series" if series else "one"
        )
    except (errors.ValidationFailed, errors.Conflict) as error:
        return await _booking_page(
            request, session, booking_id, error=problem_message(error), status=409
        )
    return Redirect(f"/dashboard/bookings/{booking_id}", status_code=303)


@post("/bookings/{booking_id:uuid}/refund", include_in_schema=False)
async def refund(
    request: AnyRequest, session: AsyncSession, booking_id: uuid.UUID
) -> Response[Any]:
    """An owner's refund, through the same use case as POST /api/v1/bookings/{id}/refunds:
    blank amount refunds whatever is still refundable."""
    if not is_manager(request):
        raise errors.Forbidden("Only owners and admins refund")
    tenant_id, actor = _actor(request)
    form = await request.form()
    booking = await service.get_booking(session, tenant_id, booking_id)
    text = str(form.get("amount") or "").strip()
    amount = parse_minor(text, booking.total.currency) if text else None
    if text and (amount is None or amount <= 0):
        return await _booking_page(
            request,
            session,
            booking_id,
            error=N_("Enter the amount to refund, for example 150 or 150.50."),
            status=422,
        )
    reason = str(form.get("reason") or "").strip()[:200] or None
    try:
        await checkout.refund_booking(
            session, tenant_id, actor, booking_id, amount_minor=amount, reason=reason, now=now()
        )
    except (errors.ValidationFailed, errors.Conflict) as error:
        return await _booking_page(
            request, session, booking_id, error=problem_message(error), status=409
        )
    return Redirect(f"/dashboard/bookings/{booking_id}", status_code=303)


@post("/bookings/{booking_id:uuid}/{action:str}", include_in_schema=False)
async def transition(
    request: AnyRequest, session: AsyncSession, booking_id: uuid.UUID, action: str
) -> Response[Any]:
    use_case = TRANSITIONS.get(action)
    if use_case is None:
        raise errors.NotFound("No such action", entity="action")
    tenant_id, actor = _actor(request)
    try:
        await use_case(session, tenant_id, actor, booking_id, now())
    except errors.Conflict as error:
        return await _booking_page(
            request, session, booking_id, error=problem_message(error), status=409
        )
    return Redirect(f"/dashboard/bookings/{booking_id}", status_code=303)


# -- new booking -----------------------------------------------------------------------


async def _new_page(
    request: AnyRequest,
    session: AsyncSession,
    values: dict[str, str],
    errors_: dict[str, str],
    status: int = 200,
    picker: dict[str, Any] | None = None,
) -> Template:
    tenant_id = principal(request).tenant_id
    business = await get_business(session, tenant_id)
    catalog = await get_catalog(session, tenant_id)
    resource = _uuid(values.get("resource"))
    services = [s for s in catalog.services if resource is None or resource in s.resource_ids]
    enabled = (await get_provider_settings(session, tenant_id)).enabled
    development = web_config(request.app.state).development
    payments = [p for p in ("cash", "sandbox") if p in enabled and (p != "sandbox" or development)]
    links = [p for p in ONLINE if p in enabled]
    return page(
        request,
        "dashboard/new_booking.html",
        status=status,
        business=business,
        catalog=catalog,
        services=services,
        payments=payments,
        links=links,
        values=values,
        errors=errors_,
        picker=picker or {"find": "", "matches": [], "picked": None},
    )


@get("/bookings/new", include_in_schema=False)
async def new_booking(
    request: AnyRequest,
    session: AsyncSession,
    resource: uuid.UUID | None = None,
    start: str | None = None,
    find: str | None = None,
    customer: uuid.UUID | None = None,
) -> Template:
    values = {"resource": str(resource or ""), "start": (start or "")[:16], "payment": "cash"}
    tenant_id = principal(request).tenant_id
    prefill, picker = await pick_context(session, tenant_id, find, customer)
    return await _new_page(request, session, values | prefill, {}, picker=picker)


def _check_new(values: dict[str, str], tz: ZoneInfo) -> dict[str, str]:
    problems: dict[str, str] = {}
    if not values["name"]:
        problems["name"] = N_("Enter the customer's name.")
    if values["phone"] and not PHONE.match(values["phone"]):
        problems["phone"] = N_(
            "Enter a phone number: digits, spaces, dashes or brackets (5 to 32)."
        )
    if _uuid(values["service"]) is None:
        problems["service"] = N_("Choose a service.")
    if _local(values["start"], tz) is None:
        problems["start"] = N_("Enter when it starts.")
    if values["end"] and _local(values["end"], tz) is None:
        problems["end"] = N_("Enter when it ends, or leave it empty.")
    if not values["payment"]:
        problems["payment"] = N_("Choose how the customer pays.")
    return problems


@post("/bookings/new", include_in_schema=False)
async def place(request: AnyRequest, session: AsyncSession) -> Response[Any]:
    tenant_id, actor = _actor(request)
    business = await get_business(session, tenant_id)
    form = await request.form()
    names = ("resource", "service", "start", "end", "name", "phone", "email", "payment")
    values = {name: str(form.get(name) or "").strip()[:320] for name in names}
    problems = _check_new(values, business.tz)
    if problems:
        return await _new_page(request, session, values, problems, status=422)
    catalog = await get_catalog(session, tenant_id)
    service_id = _uuid(values["service"])
    offered = next((s for s in catalog.services if s.id == service_id), None)
    resource_id = _uuid(values["resource"])
    branch_id = _branch_for(catalog, resource_id, offered)
    if offered is None or branch_id is None:
        problems = {"service": N_("Choose a service this resource offers.")}
        return await _new_page(request, session, values, problems, status=422)
    config = web_config(request.app.state)
    request_ = service.BookingRequest(
        service_id=offered.id,
        branch_id=branch_id,
        start=_local(values["start"], business.tz),  # type: ignore[arg-type]
        end=_local(values["end"], business.tz) if values["end"] else None,
        resource_id=resource_id,
        customer=service.Customer(
            values["name"], values["email"] or None, values["phone"] or None, "en"
        ),
        provider=values["payment"],
    )
    try:
        if request_.provider == "sandbox" and config.sandbox_base_url is None:
            raise ProviderUnavailable("The sandbox provider is not available", provider="sandbox")
        placed = await service.place_booking(
            session, tenant_id, actor, request_, now(), sandbox_base_url=config.sandbox_base_url
        )
    except (errors.ValidationFailed, errors.Conflict, ProviderUnavailable) as error:
        field = "payment" if isinstance(error, ProviderUnavailable) else "form"
        return await _new_page(
            request, session, values, {field: problem_message(error)}, status=409
        )
    return Redirect(f"/dashboard/bookings/{placed.booking.id}?placed=1", status_code=303)


def _branch_for(catalog: Any, resource_id: uuid.UUID | None, offered: Any) -> uuid.UUID | None:
    """The branch of the chosen resource (its first), else the catalog's only branch."""
    for resource in catalog.resources:
        if resource.id == resource_id and resource.branch_ids:
            if offered is not None and resource_id not in offered.resource_ids:
                return None
            branch_id: uuid.UUID = resource.branch_ids[0]
            return branch_id
    if resource_id is None and len(catalog.branches) == 1:
        only: uuid.UUID = catalog.branches[0].id
        return only
    return None
