"""Outbox handlers of the payment path. Each is tx -> provider call with an idempotency key
derived from our ids -> tx, and safe to run twice.

- payment.checkout: open the provider's hosted payment page (Stripe Checkout, Kashier).
- payment.refund: ask the provider to refund; Kashier takes no idempotency key, so a retry
  first asks Kashier whether the refund already happened.
- payment.fetch_fee: read the provider fee from Stripe's balance transaction into the ledger.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from app.checkout import service as checkout
from app.checkout.webhooks import TOPIC_FETCH_FEE
from app.integrations.errors import PermanentProviderError, RetryableProviderError
from app.integrations.kashier import KashierClient
from app.integrations.stripe_client import StripeGateway
from app.money import Money
from app.outbox.dispatch import Dispatcher, HandlerContext
from app.outbox.errors import PermanentError, RetryableError
from app.outbox.models import OutboxEvent
from app.payments.service import TOPIC_CHECKOUT, TOPIC_REFUND
from app.providers import Providers, providers_from
from app.tenant_settings.runtime import HTTP_CLIENT, provider_config

PUBLIC_BASE_URL = "payments.public_base_url"
STRIPE_API_BASE = "payments.stripe_api_base"
KASHIER_API_BASE = "payments.kashier_api_base"
CHECKOUT_LIFETIME = timedelta(minutes=30)
T = TypeVar("T")


def _now() -> datetime:
    return datetime.now(UTC)


async def _call(call: Callable[[], Awaitable[T]]) -> T:
    """Provider failures become the outbox's retryable / permanent errors."""
    try:
        return await call()
    except RetryableProviderError as error:
        raise RetryableError(str(error), retry_after=error.retry_after) from error
    except PermanentProviderError as error:
        raise PermanentError(str(error)) from error


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
    base = str(ctx.extras.get(PUBLIC_BASE_URL, "http://127.0.0.1:8000")).rstrip("/")
    booking_url = f"{base}/pay/return?booking_id={info.payment.booking_id}"
    providers = await _gateways(ctx, event.tenant_id, info.payment.provider)
    session_id, url, provider_ref = await _open(providers, info, event.tenant_id, booking_url)
    async with ctx.sessions() as session:
        await checkout.record_checkout_session(
            session,
            event.tenant_id,
            payment_id,
            session_id=session_id,
            url=url,
            provider_ref=provider_ref,
            now=_now(),
        )
    ctx.log(event).info("payment.checkout_opened", payment_id=str(payment_id))


async def _open(
    providers: Providers, info: checkout.CheckoutContext, tenant_id: uuid.UUID, return_url: str
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
                expires_at=int((_now() + CHECKOUT_LIFETIME).timestamp()),
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
                expire_at=_now() + CHECKOUT_LIFETIME,
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
    succeeded, provider_ref, reason = await _refund_at_provider(providers, info, event.attempts)
    if succeeded is None:
        return  # pending at the provider: its webhook finishes it
    async with ctx.sessions() as session:
        await checkout.record_refund_result(
            session,
            event.tenant_id,
            refund_id,
            succeeded=succeeded,
            provider_ref=provider_ref,
            reason=reason,
            now=_now(),
        )


async def _refund_at_provider(
    providers: Providers, info: checkout.RefundContext, attempt: int
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
        return await _kashier_refund(providers, info, attempt)
    raise RetryableError(f"provider {info.provider} is not configured for refunds")


async def _kashier_refund(
    providers: Providers, info: checkout.RefundContext, attempt: int
) -> tuple[bool | None, str | None, str | None]:
    kashier = providers.kashier
    assert kashier is not None
    if attempt > 1:
        # No idempotency key at Kashier: before repeating, look for the refund we may have
        # made on the previous attempt.
        order = await _call(lambda: kashier.get_order(str(info.payment_id)))
        if _has_refund(order, info.amount):
            return True, None, None
    result = await _call(
        lambda: kashier.create_refund(
            kashier_order_id=str(info.provider_ref), amount=info.amount, reason=info.reason
        )
    )
    if result.status == "SUCCESS":
        return True, result.transaction_id, None
    if result.status in ("FAILURE", "FAILED", "DECLINED"):
        return False, result.transaction_id, result.status
    return None, result.transaction_id, None


def _has_refund(order: dict[str, Any] | None, amount: Money) -> bool:
    for txn in (order or {}).get("transactions", []) or []:
        kind = str(txn.get("method") or txn.get("operation") or txn.get("type") or "").upper()
        if "REFUND" in kind and str(txn.get("status", "")).upper() == "SUCCESS":
            return True
    return False


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
            session, event.tenant_id, payment_id, details.fee_minor, _now()
        )


def register_handlers(dispatcher: Dispatcher) -> None:
    dispatcher.register(TOPIC_CHECKOUT, open_checkout)
    dispatcher.register(TOPIC_REFUND, request_refund)
    dispatcher.register(TOPIC_FETCH_FEE, fetch_fee)
