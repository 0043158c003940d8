"""Webhooks (Stripe, Kashier, sandbox), the sandbox hosted payment page, and refunds.

Signatures are verified on the raw body before anything is stored; a bad or stale signature
is a 400 and leaves no trace. A verified event is stored in the inbox with one INSERT ... ON
CONFLICT, committed, and answered 200 `accepted` (or `duplicate` when it was stored before):
the provider is acknowledged in milliseconds, and the applier in the worker applies the
event afterwards (app/payments/inbox.py, app/bookings/payment_events.py).
"""

from __future__ import annotations

import html
import json
import time
import uuid
from datetime import UTC, datetime
from typing import Annotated, Any

import msgspec
import structlog
from litestar import MediaType, Request, Response, Router, get, post
from litestar.response import Redirect
from sqlalchemy.exc import DataError
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit import trail as audit
from app.bookings import checkout
from app.bookings import payment_events as webhooks
from app.edge.deps import ApiDeps
from app.edge.http import idempotent, manager_only, principal
from app.edge.web.config import web_config
from app.errors import DependencyUnavailable, DomainError, NotFound
from app.gateways import stripe_endpoints
from app.integrations import kashier, sandbox
from app.integrations.crypto import DecryptionFailed
from app.integrations.errors import InvalidSignature
from app.money import Money
from app.payments import inbox
from app.payments import provider_events as events
from app.tenancy.service import get_tenant
from app.tenant_settings.service import load_provider_config

log = structlog.get_logger()


class SignatureInvalid(DomainError):
    slug = "invalid_signature"
    title = "The webhook signature is missing, wrong or stale"


class UnstorableEvent(DomainError):
    slug = "invalid_payload"
    title = "The webhook body cannot be stored as JSON"


class WebhookOut(msgspec.Struct, omit_defaults=True):
    status: str  # accepted | duplicate
    inbox_id: uuid.UUID | None = None  # the stored row, when this delivery stored it


def _now() -> datetime:
    return datetime.now(UTC)


async def _store(
    deps: ApiDeps,
    event: events.ProviderEvent,
    raw: bytes,
    *,
    bound_tenant_id: uuid.UUID | None = None,
) -> inbox.Stored:
    """One statement in autocommit: the row is durable before the provider hears 200. The
    applier is woken after that commit (app/payments/inbox_writer.py)."""
    try:
        body = raw.decode()
    except UnicodeDecodeError:  # JSON in UTF-16/32: stored as we parsed it
        body = json.dumps(event.payload)
    try:
        return await deps.inbox_writer.store(event, body, bound_tenant_id=bound_tenant_id)
    except DataError:  # valid for Python, not for jsonb (NaN, \u0000, lone surrogates)
        raise UnstorableEvent() from None


def _answer(stored: inbox.Stored) -> WebhookOut:
    if stored.inbox_id is None:
        return WebhookOut("duplicate")
    return WebhookOut("accepted", stored.inbox_id)


@post("/stripe", status_code=200)
async def stripe_webhook(
    request: Request[Any, Any, Any], session: AsyncSession, deps: ApiDeps
) -> WebhookOut:
    """The platform account's events, verified with the platform's secret (see
    stripe_endpoints.py: a business with its own account has its own endpoint)."""
    raw = await request.body()
    try:
        event = await stripe_endpoints.platform_event(
            session,
            deps.secret_box,
            deps.stripe_webhook_secret,
            raw,
            request.headers.get("stripe-signature", ""),
        )
    except InvalidSignature as error:
        raise SignatureInvalid(str(error)) from None
    return _answer(await _store(deps, event, raw))


@post("/stripe/{tenant_id:uuid}", status_code=200)
async def business_stripe_webhook(
    request: Request[Any, Any, Any], session: AsyncSession, tenant_id: uuid.UUID, deps: ApiDeps
) -> WebhookOut:
    """A business's own Stripe account's events, verified with its own webhook secret only
    and bound to that business."""
    raw = await request.body()
    try:
        event = await stripe_endpoints.business_event(
            session,
            deps.secret_box,
            tenant_id,
            raw,
            request.headers.get("stripe-signature", ""),
        )
    except InvalidSignature as error:
        raise SignatureInvalid(str(error)) from None
    return _answer(await _store(deps, event, raw, bound_tenant_id=tenant_id))


@post("/kashier", status_code=200)
async def kashier_webhook(
    request: Request[Any, Any, Any], session: AsyncSession, deps: ApiDeps
) -> WebhookOut:
    """Kashier signs no timestamp and a business may have its own merchant key, so: parse,
    refuse anything that cannot be a signed notification with no key at all, then read only
    the key that applies (no read unless the order names one of our payments), verify, and
    only then store anything."""
    header = request.headers.get(kashier.SIGNATURE_HEADER)
    raw = await request.body()
    try:
        payload = _parse_json(raw)
        data = kashier.check_webhook_shape(payload, header)
        api_key = await _kashier_key(deps, session, data)
        kashier.verify_webhook_signature(payload, header, api_key)
    except InvalidSignature as error:
        raise SignatureInvalid(str(error)) from None
    currency = str(data.get("currency", "")).upper()
    try:
        amount = kashier.parse_amount(data.get("amount"), currency)
    except (ValueError, DomainError):  # not a number, or an unknown currency
        amount = None
    return _answer(await _store(deps, events.kashier_event(payload, amount), raw))


def _parse_json(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except ValueError:  # JSONDecodeError and UnicodeDecodeError alike
        raise InvalidSignature("the body is not JSON") from None
    except RecursionError:
        raise InvalidSignature("the body nests too deeply") from None


async def _kashier_key(deps: ApiDeps, session: AsyncSession, data: dict[str, Any]) -> str:
    """The payment API key of the business the order belongs to when it saved its own, else
    the platform's. Reads only: nothing is written before the signature is checked."""
    try:
        payment_id = uuid.UUID(str(data.get("merchantOrderId")))
    except ValueError:
        return deps.kashier_api_key
    tenant_id = await checkout.payment_tenant(session, payment_id)
    if tenant_id is None:
        return deps.kashier_api_key
    box = deps.secret_box
    try:
        config = await load_provider_config(session, tenant_id, "kashier", box)
    except DecryptionFailed:
        # Sealed under a secret this deployment no longer has: nothing to verify with until
        # the owner saves the key again, so the provider should deliver again later.
        log.warning("webhook.kashier_key_unreadable", tenant_id=str(tenant_id))
        raise DependencyUnavailable(
            "The business's Kashier key cannot be read; deliver again later"
        ) from None
    return config.credentials.get("api_key") or deps.kashier_api_key


def verify_sandbox(secret: str, raw: bytes, header: str | None) -> events.ProviderEvent:
    try:
        if header is not None and not header.isascii():
            raise InvalidSignature("signature header is not ASCII")
        event = sandbox.verify(raw, header, secret, int(time.time()))
    except InvalidSignature as error:
        raise SignatureInvalid(str(error)) from None
    except RecursionError:  # a signed body the parser cannot hold
        raise SignatureInvalid("the body nests too deeply") from None
    return events.sandbox_event(event)


@post("/sandbox", status_code=200)
async def sandbox_webhook(request: Request[Any, Any, Any], deps: ApiDeps) -> WebhookOut:
    _refuse_in_production(deps)
    raw = await request.body()
    event = verify_sandbox(deps.sandbox_secret, raw, request.headers.get(sandbox.SIGNATURE_HEADER))
    return _answer(await _store(deps, event, raw))


def _refuse_in_production(deps: ApiDeps) -> None:
    if deps.production:
        raise NotFound("The sandbox provider is not available in production")


PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Reckon sandbox payment</title>
<style>body{{font-family:system-ui,sans-serif;max-width:28rem;margin:3rem auto;padding:0 1rem}}
.amount{{font-size:2rem;font-weight:600}}button{{font-size:1.1rem;padding:.8rem 1.4rem;
margin:.4rem .4rem 0 0;border-radius:.5rem;border:0;cursor:pointer}}.pay{{background:#0a7d38;
color:#fff}}.decline{{background:#eee}}.note{{color:#666;font-size:.9rem}}.back{{display:inline-block;
margin-top:1.2rem;font-size:1.1rem}}</style></head>
<body><p class="note">Sandbox — no real money moves.</p><h1>Pay for your booking</h1>
<p class="amount">{amount}</p><p>Payment status: <strong>{status}</strong></p>{actions}
<p><a class="back" href="{back}">Back to your booking</a></p>
</body></html>"""

ACTIONS = """<form method="post" action="{base}/pay"><button class="pay">Pay</button></form>
<form method="post" action="{base}/decline"><button class="decline">Decline</button></form>"""


@get("/pay/{tenant_id:uuid}/{payment_id:uuid}", media_type=MediaType.HTML)
async def sandbox_page(
    request: Request[Any, Any, Any],
    tenant_id: uuid.UUID,
    payment_id: uuid.UUID,
    session: AsyncSession,
    deps: ApiDeps,
) -> str:
    _refuse_in_production(deps)
    payment = await checkout.get_payment(session, tenant_id, payment_id)
    if payment.provider != "sandbox":
        raise NotFound("Not a sandbox payment")
    base = f"/sandbox/pay/{tenant_id}/{payment_id}"
    actions = (
        ACTIONS.format(base=base)
        if payment.status in ("requires_payment", "processing", "failed")
        else ""
    )
    # The way back is the booking's own manage page on this origin, made here from the
    # payment's booking: never a URL the request brings (no open redirect).
    tenant = await get_tenant(session, tenant_id)
    back = web_config(request.app.state).links.path(tenant.slug, tenant_id, payment.booking_id)
    return PAGE.format(
        # With its currency, as on the invoice: "350.00" alone does not say what is paid.
        amount=html.escape(f"{payment.amount.format()} {payment.amount.currency}"),
        status=html.escape(payment.status),
        actions=actions,
        back=html.escape(back),
    )


@post("/pay/{tenant_id:uuid}/{payment_id:uuid}/{action:str}", status_code=303)
async def sandbox_act(
    request: Request[Any, Any, Any],
    tenant_id: uuid.UUID,
    payment_id: uuid.UUID,
    action: str,
    session: AsyncSession,
    deps: ApiDeps,
) -> Redirect:
    """The customer pressed Pay or Decline: the sandbox "provider" sends its signed webhook
    through the same verify -> inbox -> apply path as any provider."""
    _refuse_in_production(deps)
    if action not in ("pay", "decline"):
        raise NotFound("Unknown action")
    payment = await checkout.get_payment(session, tenant_id, payment_id)
    if payment.provider != "sandbox":
        # This unauthenticated page speaks for the sandbox provider only: it must never
        # settle a Stripe, Kashier or cash payment.
        raise NotFound("Not a sandbox payment")
    event = sandbox_event_for(tenant_id, payment.id, payment.amount, action == "pay")
    raw, header = sandbox.signed_event(event, deps.sandbox_secret, int(time.time()))
    stored = await _store(deps, verify_sandbox(deps.sandbox_secret, raw, header), raw)
    if stored.inbox_id is not None:
        # The sandbox page stands in for the provider's own page, which returns once the
        # payment is settled: the customer sees the outcome. The applier in the worker would
        # apply it too; whichever comes second finds it done.
        await webhooks.apply_now(session, stored.inbox_id, _now())
    return Redirect(path=f"/sandbox/pay/{tenant_id}/{payment_id}", status_code=303)


def sandbox_event_for(
    tenant_id: uuid.UUID, payment_id: uuid.UUID, amount: Money, paid: bool
) -> dict[str, Any]:
    return {
        "id": f"evt_sandbox_{uuid.uuid4().hex}",
        "type": "payment.succeeded" if paid else "payment.failed",
        "data": {
            "tenant_id": str(tenant_id),
            "payment_id": str(payment_id),
            "amount_minor": amount.amount_minor,
            "currency": amount.currency,
            "reason": None if paid else "declined by the customer",
        },
    }


class RefundIn(msgspec.Struct, forbid_unknown_fields=True):
    amount_minor: Annotated[int, msgspec.Meta(gt=0, le=10**15)] | None = None
    reason: Annotated[str, msgspec.Meta(max_length=200)] | None = None


class RefundOut(msgspec.Struct):
    id: uuid.UUID
    booking_id: uuid.UUID
    payment_id: uuid.UUID
    amount: dict[str, Any]
    status: str
    reason: str


class PaymentOut(msgspec.Struct):
    id: uuid.UUID
    booking_id: uuid.UUID
    provider: str
    status: str
    amount: dict[str, Any]
    captured_minor: int
    refunded_minor: int
    fee_minor: int
    checkout_url: str | None


@post("/bookings/{booking_id:uuid}/refunds", guards=[manager_only])
async def refund_booking(
    request: Request[Any, Any, Any], booking_id: uuid.UUID, data: RefundIn, session: AsyncSession
) -> Response[bytes]:
    user = principal(request)

    async def run() -> tuple[int, Any]:
        refund = await checkout.refund_booking(
            session,
            user.tenant_id,
            audit.Actor.user(user.user_id),
            booking_id,
            amount_minor=data.amount_minor,
            reason=data.reason,
            now=_now(),
        )
        return 201, RefundOut(
            refund.id,
            refund.booking_id,
            refund.payment_id,
            {"amount_minor": refund.amount_minor, "currency": refund.currency},
            refund.status,
            refund.reason,
        )

    return await idempotent(request, user.tenant_id, run)


@get("/payments/{payment_id:uuid}")
async def get_payment(
    request: Request[Any, Any, Any], payment_id: uuid.UUID, session: AsyncSession
) -> PaymentOut:
    user = principal(request)
    view = await checkout.get_payment(session, user.tenant_id, payment_id)
    return PaymentOut(
        view.id,
        view.booking_id,
        view.provider,
        view.status,
        view.amount.to_json(),
        view.captured_minor,
        view.refunded_minor,
        view.fee_minor,
        view.checkout_url,
    )


@get("/pay/return", media_type=MediaType.HTML)
async def payment_return(booking_id: uuid.UUID | None = None, result: str | None = None) -> str:
    message = (
        "Thank you — your payment is being confirmed."
        if result != "cancel"
        else "The payment was cancelled."
    )
    return (
        f"<!doctype html><html><body style='font-family:system-ui;margin:3rem'>"
        f"<h1>{html.escape(message)}</h1><p>Booking {html.escape(str(booking_id or ''))}"
        f"</p></body></html>"
    )


def router() -> Router:
    return Router(
        path="/",
        tags=["payments"],
        route_handlers=[
            Router(
                path="/webhooks",
                route_handlers=[
                    stripe_webhook,
                    business_stripe_webhook,
                    kashier_webhook,
                    sandbox_webhook,
                ],
            ),
            Router(path="/sandbox", route_handlers=[sandbox_page, sandbox_act]),
            Router(path="/api/v1", route_handlers=[refund_booking, get_payment]),
            payment_return,
        ],
    )
