"""Outbox handlers of the payment path. Each is tx -> provider call with an idempotency key
derived from our ids -> tx, and safe to run twice.

- payment.checkout: open the provider's hosted payment page (Stripe Checkout, Kashier). Every
  parameter comes from stored rows (expires_at too: see checkout_window.py), so a retry sends
  Stripe byte-identical parameters under the same Idempotency-Key.
- payment.refund: ask the provider to refund. Kashier takes no idempotency key: every attempt
  looks for this very refund at Kashier first, and a refund Kashier calls pending is asked
  about again with backoff until it is final (see kashier_refunds.py).
- payment.fetch_fee: read the provider fee from Stripe's balance transaction into the ledger.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime

from app.checkout import kashier_refunds
from app.checkout import service as checkout
from app.checkout.checkout_window import CheckoutWindow, checkout_window
from app.checkout.provider_calls import call as _call
from app.checkout.webhooks import TOPIC_FETCH_FEE
from app.integrations.kashier import KashierClient
from app.integrations.stripe_client import StripeGateway
from app.outbox.dispatch import Dispatcher, HandlerContext
from app.outbox.errors import RetryableError
from app.outbox.models import OutboxEvent
from app.payments.service import TOPIC_CHECKOUT, TOPIC_REFUND
from app.providers import Providers, providers_from
from app.tenant_settings.runtime import HTTP_CLIENT, provider_config

PUBLIC_BASE_URL = "payments.public_base_url"
STRIPE_API_BASE = "payments.stripe_api_base"
KASHIER_API_BASE = "payments.kashier_api_base"
# Optional: a `() -> aware datetime` in the handler context's extras (tests move time).
CLOCK = "payments.clock"


def _now(ctx: HandlerContext) -> datetime:
    clock: Callable[[], datetime] | None = ctx.extras.get(CLOCK)
    return clock() if clock is not None else datetime.now(UTC)


async def _gateways(ctx: HandlerContext, tenant_id: uuid.UUID, provider: str) -> Providers:
    """The business's own Stripe or Kashier account when it saved credentials (a Kashier
    merchant is always the business itself), else the platform's."""
    platform = providers_from(ctx.extras) or Providers()
    if provider not in ("stripe", "kashier"):
        return platform
    config = await provider_config(ctx, tenant_id, provider)
    credentials = config.credentials
    http = ctx.extras.get(HTTP_CLIENT) or platform.http
    if http is None:
        return platform
    if provider == "stripe" and credentials.get("api_key"):
        base = str(ctx.extras.get(STRIPE_API_BASE, "https://api.stripe.com"))
        stripe = StripeGateway(credentials["api_key"], http, api_base=base)
        return Providers(stripe=stripe, kashier=platform.kashier, http=http)
    if provider == "kashier" and {"merchant_id", "api_key", "secret_key"} <= set(credentials):
        kashier = KashierClient(
            merchant_id=credentials["merchant_id"],
            api_key=credentials["api_key"],
            secret_key=credentials["secret_key"],
            http=http,
            api_base=str(ctx.extras.get(KASHIER_API_BASE, "https://test-api.kashier.io")),
        )
        return Providers(stripe=platform.stripe, kashier=kashier, http=http)
    return platform


async def open_checkout(ctx: HandlerContext, event: OutboxEvent) -> None:
    payment_id = uuid.UUID(str(event.payload["payment_id"]))
    async with ctx.sessions() as session:
        info = await checkout.checkout_context(session, event.tenant_id, payment_id)
    if info.payment.checkout_url or info.payment.status not in ("requires_payment", "processing"):
        return  # already opened, or already settled: nothing to do
    async with ctx.sessions() as session:
        window = await checkout_window(session, event.tenant_id, payment_id)
    if window.too_late(_now(ctx)):
        # The hold is over: a page now could only take money for a slot no longer held.
        # The hold expiry sweep ends the booking and this payment.
        ctx.log(event).warning(
            "payment.checkout_not_opened",
            payment_id=str(payment_id),
            reason="hold over",
            hold_expires_at=window.hold_end.isoformat(),
        )
        return
    base = str(ctx.extras.get(PUBLIC_BASE_URL, "http://127.0.0.1:8000")).rstrip("/")
    booking_url = f"{base}/pay/return?booking_id={info.payment.booking_id}"
    providers = await _gateways(ctx, event.tenant_id, info.payment.provider)
    opened = await _open(providers, info, window, event.tenant_id, booking_url)
    session_id, url, provider_ref = opened
    async with ctx.sessions() as session:
        await checkout.record_checkout_session(
            session,
            event.tenant_id,
            payment_id,
            session_id=session_id,
            url=url,
            provider_ref=provider_ref,
            now=_now(ctx),
        )
    ctx.log(event).info("payment.checkout_opened", payment_id=str(payment_id))


async def _open(
    providers: Providers,
    info: checkout.CheckoutContext,
    window: CheckoutWindow,
    tenant_id: uuid.UUID,
    return_url: str,
) -> tuple[str, str | None, str | None]:
    payment = info.payment
    if payment.provider == "stripe" and providers.stripe is not None:
        stripe = providers.stripe
        opened = await _call(
            lambda: stripe.create_checkout_session(
                payment_id=payment.id,
                booking_id=payment.booking_id,
                tenant_id=tenant_id,
                amount=payment.amount,
                description=info.description,
                success_url=return_url + "&result=success",
                cancel_url=return_url + "&result=cancel",
                customer_email=info.customer_email,
                expires_at=int(window.expires_at.timestamp()),
            )
        )
        return opened.id, opened.url, opened.payment_intent_id
    if payment.provider == "kashier" and providers.kashier is not None:
        kashier = providers.kashier
        opened_k = await _call(
            lambda: kashier.create_payment_session(
                payment_id=payment.id,
                amount=payment.amount,
                merchant_redirect=return_url,
                server_webhook=return_url.split("/pay/")[0] + "/webhooks/kashier",
                expire_at=window.expires_at,
                customer_reference=str(payment.booking_id),
                customer_email=info.customer_email,
                description=info.description,
            )
        )
        return opened_k.id, opened_k.url, None
    raise RetryableError(f"provider {payment.provider} is not configured")


async def request_refund(ctx: HandlerContext, event: OutboxEvent) -> None:
    refund_id = uuid.UUID(str(event.payload["refund_id"]))
    async with ctx.sessions() as session:
        info = await checkout.refund_context(session, event.tenant_id, refund_id)
    if info.status != "pending":
        return
    providers = await _gateways(ctx, event.tenant_id, info.provider)
    succeeded, provider_ref, reason = await _refund_at_provider(
        ctx, providers, info, event.tenant_id, event.attempts
    )
    if succeeded is None:
        return  # pending at Stripe: its refund.updated webhook finishes it
    async with ctx.sessions() as session:
        await checkout.record_refund_result(
            session,
            event.tenant_id,
            refund_id,
            succeeded=succeeded,
            provider_ref=provider_ref,
            reason=reason,
            now=_now(ctx),
        )


async def _refund_at_provider(
    ctx: HandlerContext,
    providers: Providers,
    info: checkout.RefundContext,
    tenant_id: uuid.UUID,
    attempt: int,
) -> tuple[bool | None, str | None, str | None]:
    if info.provider == "sandbox":
        return True, f"sandbox-refund-{info.refund_id}", None
    if info.provider == "stripe" and providers.stripe is not None and info.provider_ref:
        stripe = providers.stripe
        result = await _call(
            lambda: stripe.create_refund(
                payment_intent_id=str(info.provider_ref),
                amount_minor=info.amount.amount_minor,
                refund_id=info.refund_id,
            )
        )
        status = {"succeeded": True, "failed": False, "canceled": False}.get(result.status or "")
        return status, result.id, result.failure_reason
    if info.provider == "kashier" and providers.kashier is not None and info.provider_ref:
        return await kashier_refunds.refund(
            ctx, providers.kashier, info, tenant_id, attempt=attempt, now=_now(ctx)
        )
    raise RetryableError(f"provider {info.provider} is not configured for refunds")


async def fetch_fee(ctx: HandlerContext, event: OutboxEvent) -> None:
    payment_id = uuid.UUID(str(event.payload["payment_id"]))
    async with ctx.sessions() as session:
        info = await checkout.checkout_context(session, event.tenant_id, payment_id)
    providers = await _gateways(ctx, event.tenant_id, info.payment.provider)
    if info.payment.provider != "stripe" or providers.stripe is None or not info.provider_ref:
        return
    stripe = providers.stripe
    details = await _call(lambda: stripe.retrieve_payment_intent(str(info.provider_ref)))
    if details.fee_minor is None:
        raise RetryableError("balance transaction not available yet", retry_after=30)
    if details.settlement_currency and details.settlement_currency != info.payment.amount.currency:
        ctx.log(event).warning("payment.fee_in_other_currency", payment_id=str(payment_id))
        return  # booked by reconciliation, which sees the settlement currency
    async with ctx.sessions() as session:
        await checkout.record_provider_fee(
            session, event.tenant_id, payment_id, details.fee_minor, _now(ctx)
        )


def register_handlers(dispatcher: Dispatcher) -> None:
    dispatcher.register(TOPIC_CHECKOUT, open_checkout)
    dispatcher.register(TOPIC_REFUND, request_refund)
    dispatcher.register(TOPIC_FETCH_FEE, fetch_fee)
