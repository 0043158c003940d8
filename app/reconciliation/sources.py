"""Provider data -> ProviderRecord, one function per provider. Pure.

Stripe: every balance transaction of the window (charges, refunds, fees, disputes,
transfers, payouts), keyed by its `source` (ch_, re_, tr_, po_, dp_...) or its own id.
`amount` is signed as the Stripe balance sees it, `fee` is what Stripe kept.

Kashier: an order is a charge keyed by `merchantOrderId` (our payment id, which we send as
`order` when creating the session); its refund transactions are keyed by transaction id.
Kashier's order listing carries no fee we can rely on, so Kashier fees are not compared
unless the order has a `fees`/`fee` field.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from app.integrations.kashier import parse_amount
from app.integrations.stripe_client import BalanceTransactionInfo
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


def stripe_records(txns: Iterable[BalanceTransactionInfo]) -> list[ProviderRecord]:
    return [
        ProviderRecord(
            ref=txn.source or txn.id,
            record_type=stripe_record_type(txn),
            amount_minor=txn.amount_minor,
            fee_minor=txn.fee_minor,
            currency=txn.currency.upper(),
            record_id=txn.id,
        )
        for txn in txns
    ]


def kashier_records(orders: Iterable[dict[str, Any]]) -> list[ProviderRecord]:
    records: list[ProviderRecord] = []
    for order in orders:
        currency = str(order.get("currency") or "").upper()
        ref = str(order.get("merchantOrderId") or "")
        if not currency or not ref:
            continue
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
