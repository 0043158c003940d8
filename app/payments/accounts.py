"""Account codes and the ledger lines of the money path (see DESIGN.md, Ledger).

Signs follow the ledger: debit > 0, credit < 0.
"""

from __future__ import annotations

import uuid

from app.ledger.service import Line
from app.money import Money

RECEIVABLE = "receivable:customer"
DEFERRED = "deferred_revenue"
COMMISSION_EXPENSE = "expense:commission"


def clearing(provider: str) -> str:
    return f"clearing:{provider}"


def fees(provider: str) -> str:
    return f"expense:fees:{provider}"


def revenue(service_id: uuid.UUID) -> str:
    return f"revenue:service:{service_id}"


def payable(resource_id: uuid.UUID) -> str:
    return f"payable:staff:{resource_id}"


def _pair(debit: tuple[str, str], credit: tuple[str, str], amount: Money) -> list[Line]:
    return [Line(debit[0], debit[1], amount), Line(credit[0], credit[1], -amount)]


def booked(amount: Money) -> list[Line]:
    """checkout: Dr receivable / Cr deferred revenue."""
    return _pair((RECEIVABLE, "asset"), (DEFERRED, "liability"), amount)


def released(amount: Money) -> list[Line]:
    """An unpaid booking ends: the receivable and the deferred revenue go away."""
    return _pair((DEFERRED, "liability"), (RECEIVABLE, "asset"), amount)


def captured(provider: str, amount: Money) -> list[Line]:
    return _pair((clearing(provider), "asset"), (RECEIVABLE, "asset"), amount)


def fee(provider: str, amount: Money) -> list[Line]:
    return _pair((fees(provider), "expense"), (clearing(provider), "asset"), amount)


def recognised(service_id: uuid.UUID, amount: Money) -> list[Line]:
    return _pair((DEFERRED, "liability"), (revenue(service_id), "revenue"), amount)


def refunded(provider: str, amount: Money, *, from_revenue: uuid.UUID | None) -> list[Line]:
    """Before completion the refund comes out of deferred revenue, after it out of revenue."""
    source = (revenue(from_revenue), "revenue") if from_revenue else (DEFERRED, "liability")
    return _pair(source, (clearing(provider), "asset"), amount)


def commission(resource_id: uuid.UUID, amount: Money) -> list[Line]:
    return _pair((COMMISSION_EXPENSE, "expense"), (payable(resource_id), "liability"), amount)
