"""Outbox handlers of the payment path. Each is tx -> provider call with an idempotency key
derived from our ids -> tx, and safe to run twice. Each asks app.gateways.accounts.account_in whose
account to call: the business's own when it saved its keys, else the platform's.

- payment.checkout: open the provider's hosted payment page (Stripe Checkout, Kashier). Every
  parameter comes from stored rows (expires_at too: see checkout_window.py), so a retry sends
  Stripe byte-identical parameters under the same Idempotency-Key. When the provider refuses
  for good (a wrong key, parameters it will never accept) the payment fails visibly and the
  hold is released (checkout_failed.py), and the row finishes: it is not left dead in front of
  the payment's later events.
- payment.refund: ask the provider to refund. Kashier takes no idempotency key: every attempt
  looks for this very refund at Kashier first, and a refund Kashier calls pending is asked
  about again with backoff until it is final (see kashier_refunds.py).
- payment.fetch_fee: read the provider fee from Stripe's balance transaction into the ledger.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Protocol

from app.bookings import checkout, checkout_failed
from app.bookings.checkout_window import CheckoutWindow, checkout_window
from app.bookings.payment_events import TOPIC_FETCH_FEE
from app.gateways import kashier_refunds
from app.gateways.accounts import Account, Providers, account_in
from app.gateways.provider_calls import call as _call
from app.integrations.errors import PermanentProviderError, RetryableProviderError
from app.mail.confirmation import MailSetup
from app.outbox.dispatch import Dispatcher, HandlerContext
from app.outbox.errors import RetryableError
from app.outbox.models import OutboxEvent
from app.payments.service import TOPIC_CHECKOUT, TOPIC_REFUND
from app.tenancy.service import get_tenant


class HasPaymentDeps(Protocol):
    """What the payment handlers use of the worker's JobDeps."""

    @property
    def providers(self) -> Providers: ...
    @property
    def public_base_url(self) -> str: ...
    @property
    def mail(self) -> MailSetup | None: ...
    @property
    def clock(self) -> Callable[[], datetime] | None: ...


Ctx = HandlerContext[HasPaymentDeps]


def _now(ctx: Ctx) -> datetime:
    clock = ctx.need().clock
    return clock() if clock is not None else datetime.now(UTC)


async def open_checkout(ctx: Ctx, event: OutboxEvent) -> None:
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
    base = ctx.need().public_base_url.rstrip("/")
    booking_url = await _return_url(ctx, event.tenant_id, info.payment.booking_id, base)
    account = await account_in(
        ctx.sessions, ctx.need().providers, event.tenant_id, info.payment.provider
    )
    try:
        session_id, url, provider_ref = await _open(account, info, window, booking_url, base)
    except RetryableProviderError as error:
        raise RetryableError(str(error), retry_after=error.retry_after) from error
    except PermanentProviderError as error:
        await _checkout_refused(ctx, event, info, error)
        return
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


async def _return_url(ctx: Ctx, tenant_id: uuid.UUID, booking_id: uuid.UUID, base: str) -> str:
    """Where the provider sends the customer back: the booking's own manage page (the live
    return page), from stored rows only (the business's slug, the booking's ids), so a retry
    sends the same URL. Without the worker's MailSetup (which holds the link signer) the
    generic return page is all there is."""
    setup = ctx.need().mail
    if setup is None:
        return f"{base}/pay/return?booking_id={booking_id}"
    async with ctx.sessions() as session:
        tenant = await get_tenant(session, tenant_id)
    return f"{base}{setup.links.path(tenant.slug, tenant_id, booking_id)}?placed=1"


async def _checkout_refused(
    ctx: Ctx,
    event: OutboxEvent,
    info: checkout.CheckoutContext,
    error: PermanentProviderError,
) -> None:
    """Retrying cannot open this page: the payment fails with the provider's reason, its
    hold is released and the owner is told; the row itself is done."""
    status = f" ({error.status})" if error.status else ""
    reason = f"{info.payment.provider} refused to open the checkout{status}: {error}"
    async with ctx.sessions() as session:
        outcome = await checkout_failed.record_checkout_failed(
            session, event.tenant_id, info.payment.id, reason=reason, now=_now(ctx)
        )
    ctx.log(event).warning(
        "payment.checkout_failed",
        payment_id=str(info.payment.id),
        provider=info.payment.provider,
        status=error.status,
        code=error.code,
        reason=reason,
        changed=outcome.changed,
        released=[str(b) for b in outcome.released],
    )


async def _open(
    account: Account,
    info: checkout.CheckoutContext,
    window: CheckoutWindow,
    return_url: str,
    base: str,
) -> tuple[str, str | None, str | None]:
    """Opens the page; the provider's errors are raised as they are, classified."""
    payment = info.payment
    if payment.provider == "stripe" and account.stripe is not None:
        opened = await account.stripe.create_checkout_session(
            payment_id=payment.id,
            booking_id=payment.booking_id,
            tenant_id=account.tenant_id,
            amount=payment.amount,
            description=info.description,
            success_url=return_url + "&result=success",
            cancel_url=return_url + "&result=cancel",
            customer_email=info.customer_email,
            expires_at=int(window.expires_at.timestamp()),
        )
        return opened.id, opened.url, opened.payment_intent_id
    if payment.provider == "kashier" and account.kashier is not None:
        opened_k = await account.kashier.create_payment_session(
            payment_id=payment.id,
            amount=payment.amount,
            merchant_redirect=return_url,
            server_webhook=f"{base}/webhooks/kashier",
            expire_at=window.expires_at,
            customer_reference=str(payment.booking_id),
            customer_email=info.customer_email,
            description=info.description,
        )
        return opened_k.id, opened_k.url, None
    raise RetryableError(f"provider {payment.provider} is not configured")


async def request_refund(ctx: Ctx, event: OutboxEvent) -> None:
    refund_id = uuid.UUID(str(event.payload["refund_id"]))
    async with ctx.sessions() as session:
        info = await checkout.refund_context(session, event.tenant_id, refund_id)
    if info.status != "pending":
        return
    account = await account_in(ctx.sessions, ctx.need().providers, event.tenant_id, info.provider)
    succeeded, provider_ref, reason = await _refund_at_provider(ctx, account, info, event.attempts)
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
    ctx: Ctx,
    account: Account,
    info: checkout.RefundContext,
    attempt: int,
) -> tuple[bool | None, str | None, str | None]:
    if info.provider == "sandbox":
        return True, f"sandbox-refund-{info.refund_id}", None
    if info.provider == "stripe" and account.stripe is not None and info.provider_ref:
        stripe = account.stripe
        result = await _call(
            lambda: stripe.create_refund(
                payment_intent_id=str(info.provider_ref),
                amount_minor=info.amount.amount_minor,
                refund_id=info.refund_id,
                tenant_id=account.tenant_id,
            )
        )
        status = {"succeeded": True, "failed": False, "canceled": False}.get(result.status or "")
        return status, result.id, result.failure_reason
    if info.provider == "kashier" and account.kashier is not None and info.provider_ref:
        return await kashier_refunds.refund(
            ctx, account.kashier, info, account.tenant_id, attempt=attempt, now=_now(ctx)
        )
    raise RetryableError(f"provider {info.provider} is not configured for refunds")


async def fetch_fee(ctx: Ctx, event: OutboxEvent) -> None:
    payment_id = uuid.UUID(str(event.payload["payment_id"]))
    async with ctx.sessions() as session:
        info = await checkout.checkout_context(session, event.tenant_id, payment_id)
    if info.payment.provider != "stripe" or not info.provider_ref:
        return
    account = await account_in(ctx.sessions, ctx.need().providers, event.tenant_id, "stripe")
    if account.stripe is None:
        return
    stripe = account.stripe
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
