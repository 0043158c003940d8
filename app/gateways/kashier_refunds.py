"""Refunds at Kashier, which takes no idempotency key: look first, then ask, then keep asking.

Every attempt of the `payment.refund` outbox row runs the same steps, decided only by what
Kashier and our refund row show (never by the attempt number, which an on-call retry resets):

1. Read Kashier's order and look for THIS refund (`kashier.find_refund`): by our refund id,
   sent in the refund's reason, else by the transaction id Kashier gave it on an earlier
   attempt. Its status is the answer.
2. Not there, and no transaction id remembered: if the order shows a refund of our amount
   that no refund of ours owns, it may be ours with its answer lost (or the same money
   already returned from Kashier's dashboard). Nothing tells them apart, so stop: the row
   goes dead, the refund stays pending, the message names the transactions. Rather that
   than refund twice or book someone else's refund as ours. On-call decides: if that
   transaction is (or stands for) this refund, store its id in the refund's provider_ref
   and retry the row, which then finishes the refund from that transaction.
3. Otherwise ask Kashier to refund, with our refund id as the reference.

An answer still pending keeps the row retrying with a growing delay (the relay's attempt
limit bounds it; the dead row and its last_error are what on-call sees). A final answer goes
through checkout.record_refund_result: success completes the refund; failure gives the amount
back to the payment and reverses the refund's ledger entry.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from app.gateways.provider_calls import call as _call
from app.integrations import kashier
from app.integrations.kashier import KashierClient
from app.outbox.dispatch import HandlerContext
from app.outbox.errors import PermanentError, RetryableError
from app.payments import refund_tracking
from app.payments.queries import RefundContext

# Delay before asking again about a refund Kashier still calls pending: 30 s, doubling to an
# hour. With the relay's attempt limit (10 by default) that is about three hours of asking.
POLL_FIRST_SECONDS = 30.0
POLL_MAX_SECONDS = 3600.0

# (succeeded, provider_ref, failure_reason): the arguments of record_refund_result.
Result = tuple[bool, str | None, str | None]


def poll_delay(attempt: int) -> float:
    return float(min(POLL_MAX_SECONDS, POLL_FIRST_SECONDS * 2 ** max(attempt - 1, 0)))


async def refund(
    ctx: HandlerContext,
    client: KashierClient,
    info: RefundContext,
    tenant_id: uuid.UUID,
    *,
    attempt: int,
    now: datetime,
) -> Result:
    """The final outcome of this refund at Kashier; raises RetryableError while it has none."""
    assert info.provider_ref is not None  # the Kashier order id, checked by the caller
    async with ctx.sessions() as session:
        refs = await refund_tracking.known_refs(session, tenant_id, info.refund_id)
    reference = str(info.refund_id)
    currency = info.amount.currency
    order = await _call(lambda: client.get_order(str(info.payment_id)))
    if order is None:
        raise RetryableError(f"Kashier has no order {info.payment_id} to look for the refund in")
    ours = kashier.find_refund(
        order, currency=currency, reference=reference, transaction_id=refs.own
    )
    if ours is not None:
        if ours.amount_minor is not None and ours.amount_minor != info.amount.amount_minor:
            raise PermanentError(
                f"Kashier transaction {ours.transaction_id} is refund {reference} but of "
                f"{ours.amount_minor} minor units, not {info.amount.amount_minor}"
            )
        return await _settle(
            ctx, tenant_id, info, ours.outcome, ours.transaction_id, ours.status, attempt, now
        )
    if refs.own is not None:
        # Kashier answered "pending" with this id before; it cannot have vanished. Wait.
        raise RetryableError(
            f"Kashier refund {refs.own} is not in order {info.payment_id} yet",
            retry_after=poll_delay(attempt),
        )
    suspects = kashier.unclaimed_refunds(
        order, currency=currency, amount_minor=info.amount.amount_minor, claimed=set(refs.others)
    )
    if suspects:
        ids = ", ".join(str(t.transaction_id) for t in suspects)
        raise PermanentError(
            f"Kashier order {info.payment_id} shows refund(s) {ids} of this amount that no "
            f"refund of ours owns: refund {reference} may already have been made. If one is "
            "this refund, put its id in the refund's provider_ref, then retry this row."
        )
    made = await _call(
        lambda: client.create_refund(
            kashier_order_id=str(info.provider_ref),
            amount=info.amount,
            reason=info.reason,
            reference=reference,
        )
    )
    return await _settle(
        ctx, tenant_id, info, made.outcome, made.transaction_id, made.status, attempt, now
    )


async def _settle(
    ctx: HandlerContext,
    tenant_id: uuid.UUID,
    info: RefundContext,
    outcome: str,
    transaction_id: str | None,
    status: str,
    attempt: int,
    now: datetime,
) -> Result:
    if outcome == kashier.SUCCEEDED:
        return True, transaction_id, None
    if outcome == kashier.FAILED:
        return False, transaction_id, f"kashier: {status or 'failed'}"
    if transaction_id:
        async with ctx.sessions() as session:
            await refund_tracking.remember_provider_ref(
                session, tenant_id, info.refund_id, transaction_id, now
            )
    raise RetryableError(
        f"Kashier refund {transaction_id or info.refund_id} is {status or 'without a status'}:"
        " asking again later",
        retry_after=poll_delay(attempt),
    )
