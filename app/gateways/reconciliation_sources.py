"""Provider data -> ProviderRecord, one function per provider, and which records are one
business's. Pure.

Stripe: every balance transaction of the window (charges, refunds, fees, disputes,
transfers, payouts), keyed by its `source` (ch_, re_, tr_, po_, dp_...) or its own id.
`amount` is signed as the Stripe balance sees it, `fee` is what Stripe kept.

Whose record it is (`Claim`): on a business's own account, everything is its own. On the
platform's account, shared by many businesses, a record is kept for a business only when its
expanded source names that business (metadata `tenant_id`, or the `tenant:<id>` transfer
group our payments carry), or, when the source names nobody (a refund made in Stripe's
dashboard, a dispute), when the source or what it points at (its charge, payment intent,
transfer) is one of the business's known references. Anything else (another business's
money, Stripe's own fee lines, the platform's payouts) is dropped. A Kashier order on the
platform merchant is kept when its merchantOrderId is one of the business's payment ids.

Kashier: an order is a charge keyed by `merchantOrderId` (our payment id, which we send as
`order` when creating the session); its refund transactions are keyed by transaction id.
Kashier's order listing carries no fee we can rely on, so Kashier fees are not compared
unless the order has a `fees`/`fee` field.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Set
from dataclasses import dataclass
from typing import Any

from app.integrations.kashier import parse_amount
from app.integrations.stripe_client import TENANT_GROUP_PREFIX, BalanceTransactionInfo
from app.reconciliation.matching import ProviderRecord

STRIPE_TYPES = {
    "charge": "charge",
    "payment": "charge",
    "refund": "refund",
    "payment_refund": "refund",
    "payment_failure_refund": "refund",
    "transfer": "transfer",
    "transfer_cancel": "transfer",
    "transfer_failure": "transfer",
    "transfer_refund": "transfer",
    "payout": "payout",
    "payout_cancel": "payout",
    "payout_failure": "payout",
    "stripe_fee": "fee",
    "application_fee": "fee",
}
KASHIER_SUCCESS = frozenset({"SUCCESS", "CAPTURED", "PAID", "APPROVED"})


def stripe_record_type(txn: BalanceTransactionInfo) -> str:
    if txn.reporting_category and "dispute" in txn.reporting_category:
        return "dispute"
    return STRIPE_TYPES.get(txn.type, txn.type)


@dataclass(frozen=True, slots=True)
class Claim:
    """A provider record with what says whose it is: the business its source names, if any,
    and the references it can be known by."""

    record: ProviderRecord
    owner: str | None
    refs: tuple[str, ...]


def candidate_refs(claims: Iterable[Claim]) -> list[str]:
    return sorted({ref for claim in claims for ref in claim.refs})


def belonging_to(
    claims: Iterable[Claim], tenant_id: uuid.UUID, known: Set[str]
) -> list[ProviderRecord]:
    """The records of one business on a shared (platform) account; see the module doc."""
    me = str(tenant_id)
    return [
        claim.record
        for claim in claims
        if claim.owner == me or (claim.owner is None and any(r in known for r in claim.refs))
    ]


def stripe_records(txns: Iterable[BalanceTransactionInfo]) -> list[ProviderRecord]:
    return [claim.record for claim in stripe_claims(txns)]


def stripe_claims(txns: Iterable[BalanceTransactionInfo]) -> list[Claim]:
    return [
        Claim(
            ProviderRecord(
                ref=txn.source or txn.id,
                record_type=stripe_record_type(txn),
                amount_minor=txn.amount_minor,
                fee_minor=txn.fee_minor,
                currency=txn.currency.upper(),
                record_id=txn.id,
            ),
            stripe_owner(txn),
            _stripe_refs(txn),
        )
        for txn in txns
    ]


def stripe_owner(txn: BalanceTransactionInfo) -> str | None:
    """The business an expanded source names, as a canonical uuid string, or None."""
    source = txn.expanded_source
    if source is None:
        return None
    named = _tenant(source.metadata.get("tenant_id"))
    group = source.transfer_group or ""
    if named is None and group.startswith(TENANT_GROUP_PREFIX):
        named = _tenant(group.removeprefix(TENANT_GROUP_PREFIX))
    return named


def _tenant(value: str | None) -> str | None:
    try:
        return str(uuid.UUID(value)) if value else None
    except ValueError:
        return None


def _stripe_refs(txn: BalanceTransactionInfo) -> tuple[str, ...]:
    refs = [txn.source or txn.id]
    if txn.expanded_source is not None:
        refs.extend(txn.expanded_source.related)
    return tuple(dict.fromkeys(refs))


def kashier_records(orders: Iterable[dict[str, Any]]) -> list[ProviderRecord]:
    return [claim.record for claim in kashier_claims(orders)]


def kashier_claims(orders: Iterable[dict[str, Any]]) -> list[Claim]:
    """An order's records (its charge and refunds) are known by its merchantOrderId, our
    payment id; Kashier names no business, so `owner` is None."""
    claims: list[Claim] = []
    for order in orders:
        order_refs = (str(order.get("merchantOrderId") or ""),)
        claims.extend(Claim(record, None, order_refs) for record in _kashier_order(order))
    return claims


def _kashier_order(order: dict[str, Any]) -> list[ProviderRecord]:
    records: list[ProviderRecord] = []
    currency = str(order.get("currency") or "").upper()
    ref = str(order.get("merchantOrderId") or "")
    if not currency or not ref:
        return records
    if _status(order) in KASHIER_SUCCESS:
        records.append(
            ProviderRecord(
                ref=ref,
                record_type="charge",
                amount_minor=parse_amount(order.get("amount"), currency),
                fee_minor=_fee(order, currency),
                currency=currency,
                record_id=str(order.get("_id") or order.get("orderId") or ref),
            )
        )
    records.extend(_kashier_refunds(order, currency))
    return records


def _kashier_refunds(order: dict[str, Any], currency: str) -> list[ProviderRecord]:
    found: list[ProviderRecord] = []
    for txn in order.get("transactions") or []:
        if not isinstance(txn, dict):
            continue
        operation = str(txn.get("operation") or txn.get("type") or txn.get("method") or "")
        txn_id = txn.get("transactionId") or txn.get("_id")
        if "refund" not in operation.lower() or not txn_id or _status(txn) not in KASHIER_SUCCESS:
            continue
        found.append(
            ProviderRecord(
                ref=str(txn_id),
                record_type="refund",
                amount_minor=-abs(parse_amount(txn.get("amount"), currency)),
                fee_minor=None,
                currency=currency,
                record_id=str(txn_id),
            )
        )
    return found


def _status(item: dict[str, Any]) -> str:
    return str(item.get("status") or "").upper()


def _fee(order: dict[str, Any], currency: str) -> int | None:
    for key in ("fees", "fee"):
        if order.get(key) is not None:
            return parse_amount(order[key], currency)
    return None
