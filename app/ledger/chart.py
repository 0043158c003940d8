"""The chart of accounts: every account code and every ledger line of the money path.

The one module that spells an account code or builds a `Line`; every other module asks it
for codes (`clearing("stripe")`) or for the lines of an event (`captured(...)`) and hands
them to `app.ledger.service.post`. Enforced twice: only this module and the posting engine
may import app.ledger.lines (import-linter, pyproject.toml), and tests/ledger/test_chart.py
fails on an account-code literal or a ledger `Line` anywhere else under app/.

It lives in the ledger package, not in payments, because the ledger's own readers (the
revenue report, reconciliation's clearing queries, payouts' payables) need the same codes
and the ledger imports no business domain: so the chart takes only primitives — provider
and rail names, our ids and Money — and knows nothing of bookings or payments.

Signs follow the ledger: debit > 0, credit < 0. The README's "The money path" table names
the function here that builds each row.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Protocol

from app.ledger.lines import Line
from app.ledger.models import ACCOUNT_TYPES
from app.money import Money

ASSET, LIABILITY, REVENUE, EXPENSE, EQUITY = ACCOUNT_TYPES


# --- account codes ------------------------------------------------------------------------

RECEIVABLE = "receivable:customer"
DEFERRED = "deferred_revenue"
REVENUE_ROOT = "revenue"
FEES_ROOT = "expense:fees"
DISPUTES_ROOT = "expense:disputes"
COMMISSION_EXPENSE = "expense:commission"
CLEARING_ROOT = "clearing"
PAYABLE_ROOT = "payable"
"""Every `payable:...` account is refused a debit balance by the database (migration 0004)."""
STAFF_PAYABLE_PREFIX = f"{PAYABLE_ROOT}:staff:"
IN_TRANSIT_ROOT = "payouts_in_transit"
RECONCILIATION_SUSPENSE = "suspense:reconciliation"
BANK = "bank"
"""The clearing account a manual (bank) payout leaves through: `clearing:bank`."""


def clearing(provider: str) -> str:
    """Money held at a provider (or a payout rail): `clearing:<provider>`."""
    return f"{CLEARING_ROOT}:{provider}"


def fees(provider: str) -> str:
    return f"{FEES_ROOT}:{provider}"


def disputes(provider: str) -> str:
    return f"{DISPUTES_ROOT}:{provider}"


def revenue(service_id: uuid.UUID) -> str:
    return f"{REVENUE_ROOT}:service:{service_id}"


def payable(resource_id: uuid.UUID) -> str:
    return f"{STAFF_PAYABLE_PREFIX}{resource_id}"


def payable_resource(code: str) -> uuid.UUID:
    """The staff member (resource id) a `payable:staff:<id>` code belongs to."""
    if not code.startswith(STAFF_PAYABLE_PREFIX):
        raise ValueError(f"not a staff payable: {code!r}")
    return uuid.UUID(code[len(STAFF_PAYABLE_PREFIX) :])


def in_transit(rail: str) -> str:
    return f"{IN_TRANSIT_ROOT}:{rail}"


# --- the lines of the money path -----------------------------------------------------------


def _pair(debit: tuple[str, str], credit: tuple[str, str], amount: Money) -> list[Line]:
    return [Line(debit[0], debit[1], amount), Line(credit[0], credit[1], -amount)]


def booked(amount: Money) -> list[Line]:
    """Checkout: Dr receivable / Cr deferred revenue."""
    return _pair((RECEIVABLE, ASSET), (DEFERRED, LIABILITY), amount)


def released(amount: Money) -> list[Line]:
    """An unpaid booking ends: the receivable and the deferred revenue go away."""
    return _pair((DEFERRED, LIABILITY), (RECEIVABLE, ASSET), amount)


def captured(provider: str, amount: Money) -> list[Line]:
    """Capture: Dr clearing:<provider> / Cr receivable."""
    return _pair((clearing(provider), ASSET), (RECEIVABLE, ASSET), amount)


def fee(provider: str, amount: Money) -> list[Line]:
    """The provider's fee: Dr expense:fees:<provider> / Cr clearing:<provider>."""
    return _pair((fees(provider), EXPENSE), (clearing(provider), ASSET), amount)


def recognised(service_id: uuid.UUID, amount: Money) -> list[Line]:
    """Completion: Dr deferred revenue / Cr revenue:service:<id>."""
    return _pair((DEFERRED, LIABILITY), (revenue(service_id), REVENUE), amount)


def retained(service_id: uuid.UUID, amount: Money) -> list[Line]:
    """Money kept on a cancellation or no-show becomes revenue (the same lines as
    completion: Dr deferred revenue / Cr revenue:service:<id>)."""
    return recognised(service_id, amount)


def commission(resource_id: uuid.UUID, amount: Money) -> list[Line]:
    """Commission: Dr expense:commission / Cr payable:staff:<resource>."""
    return _pair((COMMISSION_EXPENSE, EXPENSE), (payable(resource_id), LIABILITY), amount)


def refunded(provider: str, amount: Money, *, from_revenue: uuid.UUID | None) -> list[Line]:
    """Before completion the refund comes out of deferred revenue, after it out of revenue;
    Cr clearing:<provider>."""
    source = (revenue(from_revenue), REVENUE) if from_revenue else (DEFERRED, LIABILITY)
    return _pair(source, (clearing(provider), ASSET), amount)


def disputed(provider: str, amount: Money) -> list[Line]:
    """A dispute takes the amount out of the provider balance at once:
    Dr expense:disputes:<provider> / Cr clearing:<provider>."""
    return _pair((disputes(provider), EXPENSE), (clearing(provider), ASSET), amount)


def payout_in_transit(resource_id: uuid.UUID, rail: str, amount: Money) -> list[Line]:
    """A payout is created: Dr payable:staff:<id> / Cr payouts_in_transit:<rail>."""
    return _pair((payable(resource_id), LIABILITY), (in_transit(rail), LIABILITY), amount)


def payout_settled(rail: str, settles_through: str, amount: Money) -> list[Line]:
    """The payout's money left: Dr payouts_in_transit:<rail> / Cr clearing:<settles_through>
    (the provider for Connect transfers, BANK for the manual rail)."""
    return _pair((in_transit(rail), LIABILITY), (clearing(settles_through), ASSET), amount)


def reconciliation_adjustment(provider: str, amount: Money, fee_amount: Money) -> list[Line]:
    """What a reconciliation finds missing: the amount through clearing:<provider> against
    suspense:reconciliation (equity) until reclassified, and a fee difference between
    expense:fees:<provider> and clearing:<provider>. Zero lines are dropped by `post`."""
    return [
        Line(clearing(provider), ASSET, amount),
        Line(RECONCILIATION_SUSPENSE, EQUITY, -amount),
        Line(fees(provider), EXPENSE, fee_amount),
        Line(clearing(provider), ASSET, -fee_amount),
    ]


class _Posted(Protocol):
    @property
    def account_code(self) -> str: ...
    @property
    def account_type(self) -> str: ...
    @property
    def amount(self) -> Money: ...


def reversal(postings: Iterable[_Posted]) -> list[Line]:
    """The mirror image of posted lines: a failed refund, a failed payout (the payable is
    owed again), any correction. Used by `app.ledger.service.reverse`."""
    return [Line(p.account_code, p.account_type, -p.amount) for p in postings]
