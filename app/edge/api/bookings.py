"""Booking routes: staff and customers (public, by tenant slug) place and manage bookings."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Annotated, Any

from litestar import Request, Response, Router, get, post
from litestar.params import Parameter
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app import paging
from app.audit import trail as audit
from app.bookings import guard, rules, service
from app.bookings.checkout import get_payment
from app.bookings.errors import ProviderUnavailable, SlotUnavailable
from app.bookings.schemas import BookingIn, BookingOut, CancelIn, CancelOut, RescheduleIn
from app.edge.deps import ApiDeps
from app.edge.http import (
    Refusal,
    domain_problem,
    idempotent,
    in_idempotent_transaction,
    principal,
)
from app.edge.ratelimit import public_rate_limit
from app.errors import DomainError, NotFound
from app.payments.provider_names import ROUTED_PROVIDERS
from app.payments.service import PaymentView
from app.tenancy.service import find_tenant_by_slug
from app.validation import field_error

Transition = Callable[..., Awaitable[service.BookingView]]


async def await_checkout_url(
    session: AsyncSession, tenant_id: uuid.UUID, payment: PaymentView, wait_seconds: float
) -> PaymentView:
    """The outbox relay opens the provider's checkout right after commit (no provider call
    in the API); wait briefly for its URL so the customer is redirected at once. If the
    provider is slow the booking is returned without it and the client polls the booking."""
    if payment.provider not in ROUTED_PROVIDERS or payment.status != "requires_payment":
        return payment
    if in_idempotent_transaction():
        return payment  # the booking is not committed yet: the relay cannot see it
    deadline = asyncio.get_running_loop().time() + wait_seconds
    while asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.05)
        current = await get_payment(session, tenant_id, payment.id)
        if current.checkout_url:
            return current
    return payment


def _now() -> datetime:
    return datetime.now(UTC)


def _actor(request: Request[Any, Any, Any]) -> tuple[uuid.UUID, audit.Actor]:
    user = principal(request)
    return user.tenant_id, audit.Actor.user(user.user_id)


async def _place(
    request: Request[Any, Any, Any],
    session: AsyncSession,
    data: BookingIn,
    tenant_id: uuid.UUID,
    actor: audit.Actor,
    deps: ApiDeps,
) -> Response[bytes]:
    sandbox_url = None
    if data.payment.provider == "sandbox":
        if deps.production:
            raise ProviderUnavailable(
                "The sandbox provider is not available in production", provider="sandbox"
            )
        sandbox_url = deps.public_base_url

    refusal = _early_refusal(tenant_id, data)
    if refusal is not None and "idempotency-key" not in request.headers:
        if await _plainly_refused(request, tenant_id, refusal):
            return domain_problem(refusal.error)
        refusal = None

    placed: service.Placed | None = None

    async def run() -> tuple[int, Any]:
        nonlocal placed
        placed = await service.place_booking(
            session, tenant_id, actor, data.to_request(), _now(), sandbox_base_url=sandbox_url
        )
        payment = placed.payments[0] if placed.payments else None
        return 201, BookingOut.of(placed.booking, placed.occurrences, payment)

    async def with_checkout_url(out: BookingOut) -> BookingOut:
        # After the commit: only then can the relay open the provider's checkout.
        if placed is None or not placed.payments or placed.payments[0].checkout_url:
            return out
        payment = await await_checkout_url(
            session, tenant_id, placed.payments[0], deps.checkout_wait_seconds
        )
        return BookingOut.of(placed.booking, placed.occurrences, payment)

    return await idempotent(request, tenant_id, run, then=with_checkout_url, refusal=refusal)


def _early_refusal(tenant_id: uuid.UUID, data: BookingIn) -> Refusal | None:
    """A request for a slot already full is refused by one read (guard.plain_slot_check), not
    by a whole placing transaction: in a rush for one slot that is nearly every request. With
    an Idempotency-Key the read rides in the statement that records the key (idempotent(),
    no round trip of its own), and the answer stored is place_booking's own; anything less
    plain (an invalid request, a known key, a slot with room) goes the usual way. None: the
    request is not one refused early."""
    try:
        checked = rules.check_request(data.to_request())
    except DomainError:
        return None  # place_booking reports it, inside idempotent()
    check = guard.plain_slot_check(tenant_id, checked, _now())
    if check is None:
        return None
    return Refusal(SlotUnavailable(start=checked.start.isoformat()), check.sql, check.params)


async def _plainly_refused(
    request: Request[Any, Any, Any], tenant_id: uuid.UUID, refusal: Refusal
) -> bool:
    """Without an Idempotency-Key: the early refusal's read on its own (one round trip)."""
    engine: AsyncEngine = request.app.state.engine
    check = guard.SlotCheck(refusal.condition, refusal.params)
    async with engine.connect() as connection:
        return await guard.slot_plainly_taken(connection, tenant_id, check)


@post("/bookings", status_code=201)
async def create_booking(
    request: Request[Any, Any, Any], data: BookingIn, session: AsyncSession, deps: ApiDeps
) -> Response[bytes]:
    tenant_id, actor = _actor(request)
    return await _place(request, session, data, tenant_id, actor, deps)


@post("/{slug:str}/bookings", status_code=201, guards=[public_rate_limit])
async def create_public_booking(
    request: Request[Any, Any, Any],
    slug: str,
    data: BookingIn,
    session: AsyncSession,
    deps: ApiDeps,
) -> Response[bytes]:
    tenant = await find_tenant_by_slug(session, slug)
    if tenant is None:
        raise NotFound("Business not found", entity="tenant", slug=slug)
    return await _place(request, session, data, tenant.id, audit.PUBLIC, deps)


@get("/bookings")
async def list_bookings(
    request: Request[Any, Any, Any],
    session: AsyncSession,
    from_: Annotated[str | None, Parameter(query="from")] = None,
    to: str | None = None,
    status: str | None = None,
    resource_id: uuid.UUID | None = None,
    limit: Annotated[int, Parameter(ge=1)] = paging.ARRAY_DEFAULT_LIMIT,
    cursor: str | None = None,
) -> Response[list[BookingOut]]:
    """Bookings starting in the period, by start time. `from`/`to`: dates (YYYY-MM-DD, the
    business's timezone, `to` included) or RFC 3339 instants (`to` excluded). A page holds
    `limit` bookings (default and most 500); the next page's link is in the `Link`
    (rel="next") and `X-Next-Cursor` headers, absent on the last page."""
    tenant_id, _ = _actor(request)
    if not from_ or not to:
        raise field_error("from", "from and to are required")
    page = await service.list_bookings(
        session,
        tenant_id,
        start=paging.parse_bound(from_, "from"),
        end=paging.parse_bound(to, "to"),
        status=status,
        resource_id=resource_id,
        cursor=cursor,
        limit=limit,
    )
    return Response(
        [BookingOut.of(view) for view in page.items],
        headers=paging.next_headers(request.url.path, request.url.query, page.next),
    )


@get("/bookings/{booking_id:uuid}")
async def get_booking(
    request: Request[Any, Any, Any], booking_id: uuid.UUID, session: AsyncSession
) -> BookingOut:
    tenant_id, _ = _actor(request)
    return BookingOut.of(await service.get_booking(session, tenant_id, booking_id))


@post("/bookings/{booking_id:uuid}/cancel", status_code=200)
async def cancel(
    request: Request[Any, Any, Any],
    booking_id: uuid.UUID,
    session: AsyncSession,
    data: CancelIn | None = None,
) -> Response[bytes]:
    tenant_id, actor = _actor(request)
    scope = data.scope if data is not None else "one"

    async def run() -> tuple[int, Any]:
        views = await service.cancel_booking(session, tenant_id, actor, booking_id, _now(), scope)
        return 200, CancelOut([BookingOut.of(view) for view in views])

    return await idempotent(request, tenant_id, run)


@post("/bookings/{booking_id:uuid}/reschedule", status_code=200)
async def reschedule(
    request: Request[Any, Any, Any],
    booking_id: uuid.UUID,
    data: RescheduleIn,
    session: AsyncSession,
) -> Response[bytes]:
    tenant_id, actor = _actor(request)

    async def run() -> tuple[int, Any]:
        view = await service.reschedule_booking(
            session,
            tenant_id,
            actor,
            booking_id,
            start=data.start,
            end=data.end,
            resource_id=data.resource_id,
            now=_now(),
        )
        return 200, BookingOut.of(view)

    return await idempotent(request, tenant_id, run)


async def _transition(
    request: Request[Any, Any, Any],
    session: AsyncSession,
    booking_id: uuid.UUID,
    use_case: Transition,
) -> Response[bytes]:
    tenant_id, actor = _actor(request)

    async def run() -> tuple[int, Any]:
        return 200, BookingOut.of(await use_case(session, tenant_id, actor, booking_id, _now()))

    return await idempotent(request, tenant_id, run)


@post("/bookings/{booking_id:uuid}/check-in", status_code=200)
async def check_in(
    request: Request[Any, Any, Any], booking_id: uuid.UUID, session: AsyncSession
) -> Response[bytes]:
    return await _transition(request, session, booking_id, service.check_in_booking)


@post("/bookings/{booking_id:uuid}/complete", status_code=200)
async def complete(
    request: Request[Any, Any, Any], booking_id: uuid.UUID, session: AsyncSession
) -> Response[bytes]:
    return await _transition(request, session, booking_id, service.complete_booking)


@post("/bookings/{booking_id:uuid}/no-show", status_code=200)
async def no_show(
    request: Request[Any, Any, Any], booking_id: uuid.UUID, session: AsyncSession
) -> Response[bytes]:
    return await _transition(request, session, booking_id, service.mark_no_show)


def router() -> Router:
    return Router(
        path="/api/v1",
        route_handlers=[
            create_booking,
            list_bookings,
            get_booking,
            cancel,
            reschedule,
            check_in,
            complete,
            no_show,
        ],
        tags=["bookings"],
    )


def public_router() -> Router:
    return Router(path="/public", route_handlers=[create_public_booking], tags=["public"])
