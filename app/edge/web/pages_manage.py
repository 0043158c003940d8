"""The signed manage-booking link: the live return page after payment, its small JSON status
for polling, cancel (the refund its policy gives shown first) and reschedule. No account:
the token is the key; it stops working once the booking has ended."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

import msgspec
from litestar import Response, get, post
from litestar.response import Redirect
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit import trail as audit
from app.bookings.service import cancel_booking, get_booking, reschedule_booking
from app.edge.http import problem
from app.edge.ratelimit import public_rate_limit
from app.edge.web import calendar as cal
from app.edge.web.config import web_config
from app.edge.web.errors import LinkExpired
from app.edge.web.forms import new_key, run_once, web_url
from app.edge.web.queries import (
    ManagedBooking,
    find_business,
    get_managed_booking,
    get_reschedule_options,
)
from app.edge.web.rendering import AnyRequest, now, page_lang, render
from app.errors import IdempotencyKeyReused, NotFound
from app.presentation.i18n import translator
from app.tenancy.models import Tenant

NO_STORE = {"Cache-Control": "no-store"}


async def _tenant_of(
    request: AnyRequest, session: AsyncSession, slug: str, token: str
) -> tuple[Tenant, uuid.UUID]:
    """The business and booking a token names; a token of another business is unknown here."""
    ref = web_config(request.app.state).links.verify(token)
    if ref is None:
        raise NotFound("Unknown link")
    tenant = await find_business(session, slug)
    if tenant.id != ref.tenant_id:
        raise NotFound("Unknown link")
    return tenant, ref.booking_id


def state_of(status: str, hold_lapsed: bool) -> str:
    """What the customer is told: waiting, confirmed, expired, cancelled, done."""
    if status == "pending_payment":
        return "expired" if hold_lapsed else "waiting"
    if status in ("confirmed", "checked_in"):
        return "confirmed"
    if status in ("expired", "cancelled"):
        return status
    return "done"


def manage_path(request: AnyRequest, slug: str, token: str) -> str:
    return f"/b/{slug}/m/{token}"


@get("/b/{slug:str}/m/{token:str}", include_in_schema=False)
async def manage(
    request: AnyRequest,
    slug: str,
    token: str,
    session: AsyncSession,
    placed: bool = False,
    cancelled: bool = False,
    moved: bool = False,
    result: str | None = None,
) -> Response[Any]:
    tenant, booking_id = await _tenant_of(request, session, slug, token)
    managed = await get_managed_booking(session, tenant, booking_id, now())
    return render(
        request,
        "manage.html",
        headers=NO_STORE,
        **_context(request, slug, token, managed),
        placed=placed,
        cancelled=cancelled,
        moved=moved,
        # Stripe and Kashier send the customer back here; `result=cancel` when they gave up.
        payment_abandoned=result == "cancel",
    )


def _context(request: AnyRequest, slug: str, token: str, managed: ManagedBooking) -> dict[str, Any]:
    booking = managed.booking
    payment = booking.payment
    base = manage_path(request, slug, token)
    checkout = payment.checkout_url if payment is not None else None
    return {
        "shop": managed.shop,
        "managed": managed,
        "booking": booking,
        "payment": payment,
        "pay_url": checkout if web_url(checkout) else None,
        "state": state_of(booking.status, managed.hold_lapsed),
        "tz": managed.branch.tz,
        "base": base,
        "status_url": f"{base}/status",
        "book_again_url": f"/b/{slug}/book?service={booking.service_id}&branch={booking.branch_id}",
    }


class StatusOut(msgspec.Struct):
    state: str
    status: str
    payment_status: str | None
    checkout_url: str | None
    hold_expires_at: datetime | None


@get("/b/{slug:str}/m/{token:str}/status", include_in_schema=False)
async def status(
    request: AnyRequest, slug: str, token: str, session: AsyncSession
) -> Response[Any]:
    """Polled by the return page until the payment settles (no customer details in it)."""
    tenant, booking_id = await _tenant_of(request, session, slug, token)
    view = await get_booking(session, tenant.id, booking_id)
    moment = now()
    if moment >= view.end:
        return problem(410, LinkExpired.slug, LinkExpired.title)
    hold = view.hold_expires_at
    lapsed = view.status == "pending_payment" and hold is not None and hold <= moment
    payment = view.payment
    body = StatusOut(
        state=state_of(view.status, lapsed),
        status=view.status,
        payment_status=payment.status if payment else None,
        checkout_url=payment.checkout_url if payment else None,
        hold_expires_at=hold,
    )
    return Response(body, headers=NO_STORE)


@get("/b/{slug:str}/m/{token:str}/cancel", include_in_schema=False)
async def cancel_form(
    request: AnyRequest, slug: str, token: str, session: AsyncSession
) -> Response[Any]:
    tenant, booking_id = await _tenant_of(request, session, slug, token)
    managed = await get_managed_booking(session, tenant, booking_id, now())
    return render(
        request,
        "cancel.html",
        headers=NO_STORE,
        **_context(request, slug, token, managed),
        key=new_key(),
    )


@post("/b/{slug:str}/m/{token:str}/cancel", include_in_schema=False, guards=[public_rate_limit])
async def cancel(
    request: AnyRequest, slug: str, token: str, session: AsyncSession
) -> Response[Any]:
    tenant, booking_id = await _tenant_of(request, session, slug, token)
    form = await request.form()
    key = str(form.get("idempotency_key") or new_key())[:255]

    base = manage_path(request, slug, token)
    # Offered before the start only. A replay of a cancel that went through lands here too:
    # the page then shows the booking as it is.
    if not (await get_managed_booking(session, tenant, booking_id, now())).changeable:
        return Redirect(base, status_code=303)

    async def run() -> tuple[int, Any]:
        await cancel_booking(session, tenant.id, audit.PUBLIC, booking_id, now())
        return 200, {"cancelled": str(booking_id)}

    try:
        outcome = await run_once(request, tenant.id, key, [("action", "cancel")], run)
    except IdempotencyKeyReused:
        return Redirect(base, status_code=303)
    return Redirect(base + ("?cancelled=1" if outcome.ok else ""), status_code=303)


@get("/b/{slug:str}/m/{token:str}/reschedule", include_in_schema=False, guards=[public_rate_limit])
async def reschedule_form(
    request: AnyRequest,
    slug: str,
    token: str,
    session: AsyncSession,
    month: str | None = None,
    day: date | None = None,
    taken: bool = False,
) -> Response[Any]:
    tenant, booking_id = await _tenant_of(request, session, slug, token)
    chosen = cal.parse_month(month) or ((day.year, day.month) if day else None)
    managed, found = await get_reschedule_options(session, tenant, booking_id, chosen, now())
    base = manage_path(request, slug, token)
    here = f"{base}/reschedule"
    prev_year, prev_month = cal.shift_month(found.year, found.month, -1)
    next_year, next_month = cal.shift_month(found.year, found.month, 1)
    has_prev = (found.year, found.month) > (found.today.year, found.today.month)
    has_next = date(next_year, next_month, 1) <= found.last_bookable
    times = []
    if day is not None and managed.service.policy == "time_slot":
        times = [
            option
            for option in cal.times_on(found.availability, day, found.tz)
            if option.start != managed.booking.start
        ]
    return render(
        request,
        "reschedule.html",
        headers=NO_STORE,
        **_context(request, slug, token, managed),
        key=new_key(),
        year=found.year,
        month=found.month,
        weeks=cal.weeks(
            found.year, found.month, translator(page_lang(request)).locale.first_week_day
        ),
        free=found.free,
        today=found.today,
        day=day,
        times=times,
        taken=taken,
        action=here,
        prev_url=f"{here}?month={cal.month_key(prev_year, prev_month)}" if has_prev else None,
        next_url=f"{here}?month={cal.month_key(next_year, next_month)}" if has_next else None,
        day_url=lambda d: f"{here}?day={d.isoformat()}#times",
    )


@post("/b/{slug:str}/m/{token:str}/reschedule", include_in_schema=False, guards=[public_rate_limit])
async def reschedule(
    request: AnyRequest, slug: str, token: str, session: AsyncSession
) -> Response[Any]:
    tenant, booking_id = await _tenant_of(request, session, slug, token)
    form = await request.form()
    key = str(form.get("idempotency_key") or new_key())[:255]
    try:
        start = datetime.fromisoformat(str(form.get("start") or ""))
    except ValueError:
        raise NotFound("Unknown time") from None
    if start.tzinfo is None:
        raise NotFound("Unknown time")

    base = manage_path(request, slug, token)
    if not (await get_managed_booking(session, tenant, booking_id, now())).changeable:
        return Redirect(base, status_code=303)

    async def run() -> tuple[int, Any]:
        await reschedule_booking(
            session, tenant.id, audit.PUBLIC, booking_id, start=start, now=now()
        )
        return 200, {"rescheduled": str(booking_id)}

    try:
        outcome = await run_once(request, tenant.id, key, [("start", start.isoformat())], run)
    except IdempotencyKeyReused:
        return Redirect(base, status_code=303)
    if outcome.ok:
        return Redirect(base + "?moved=1", status_code=303)
    if outcome.problem in ("slot_unavailable", "contention"):
        return Redirect(
            f"{base}/reschedule?day={start.date().isoformat()}&taken=1#times", status_code=303
        )
    return Redirect(base, status_code=303)
