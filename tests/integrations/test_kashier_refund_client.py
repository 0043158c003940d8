"""The Kashier client's refund side: the reference we send, the outcome we read, and how a
refund of ours is recognised in an order (Kashier's documented order shape:
response.transactions[] with transactionId, operation, status and a decimal amount)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import respx

from app.integrations import kashier
from app.integrations.kashier import KashierClient
from app.money import Money

API = "https://test-api.kashier.test"
FEP = "https://test-fep.kashier.test"


@pytest.fixture
def client(http: httpx.AsyncClient) -> KashierClient:
    return KashierClient(
        merchant_id="MID-1-2", api_key="api-key", secret_key="secret", http=http, api_base=API
    )


@pytest.fixture
def kashier_api() -> Iterator[respx.MockRouter]:
    with respx.mock(assert_all_called=True) as router:
        yield router


def order(*transactions: dict[str, Any]) -> dict[str, Any]:
    return {"merchantOrderId": "pay-1", "transactions": list(transactions)}


def txn(txn_id: str, amount: Any, status: str = "SUCCESS", **extra: Any) -> dict[str, Any]:
    return {
        "transactionId": txn_id,
        "operation": "refund",
        "status": status,
        "amount": amount,
        "currency": "EGP",
        **extra,
    }


async def test_refund_carries_our_reference_in_the_reason_identically_each_time(
    client: KashierClient, kashier_api: respx.MockRouter
) -> None:
    # The fep host is derived from the api host: test credentials never meet the live host.
    route = kashier_api.put(f"{FEP}/v3/orders/kord_1/").respond(
        200,
        json={"status": "SUCCESS", "response": {"status": "REFUNDED", "transactionId": "TX-9"}},
    )
    made = []
    for _ in range(2):
        made.append(
            await client.create_refund(
                kashier_order_id="kord_1",
                amount=Money(2500, "EGP"),
                reason="requested",
                reference="7d9f0c1e-refund",
            )
        )

    first, second = route.calls[0].request, route.calls[1].request
    assert first.content == second.content
    assert json.loads(first.content) == {
        "apiOperation": "REFUND",
        "reason": "requested [ref 7d9f0c1e-refund]",
        "transaction": {"amount": "25.00"},
    }
    # "REFUNDED" is how Kashier reports a refund that went through, beside "SUCCESS".
    assert [(m.outcome, m.transaction_id) for m in made] == [("succeeded", "TX-9")] * 2


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        ("SUCCESS", "succeeded"),
        ("REFUNDED", "succeeded"),
        ("partially_refunded", "succeeded"),
        ("FAILURE", "failed"),
        ("DECLINED", "failed"),
        ("PENDING", "pending"),
        ("INITIATED", "pending"),
        ("", "pending"),
    ],
)
def test_only_known_final_statuses_are_final(status: str, outcome: str) -> None:
    assert kashier.refund_outcome(status) == outcome


async def test_get_order_of_an_unknown_order_is_none(
    client: KashierClient, kashier_api: respx.MockRouter
) -> None:
    kashier_api.get(f"{API}/payments/orders/missing").respond(404, json={"status": "FAILURE"})
    kashier_api.get(f"{API}/payments/orders/absent").respond(
        200, json={"status": "FAILURE", "messages": {"en": "Order is not exist"}}
    )
    assert await client.get_order("missing") is None
    assert await client.get_order("absent") is None


def test_find_refund_by_our_reference_wherever_kashier_echoes_it() -> None:
    found = kashier.find_refund(
        order(
            txn("TX-1", 3),
            txn("TX-2", "2.00", reason="requested [ref r-2]"),
            {"transactionId": "TX-P", "operation": "pay", "status": "SUCCESS", "amount": 5},
        ),
        currency="EGP",
        reference="r-2",
        transaction_id=None,
    )
    assert found is not None
    assert (found.transaction_id, found.amount_minor, found.outcome) == ("TX-2", 200, "succeeded")


def test_find_refund_falls_back_to_the_transaction_id_we_recorded() -> None:
    found = kashier.find_refund(
        order(txn("TX-1", 3), txn("TX-2", 2, status="PENDING")),
        currency="EGP",
        reference="r-2",
        transaction_id="TX-2",
    )
    assert found is not None and (found.transaction_id, found.outcome) == ("TX-2", "pending")


def test_find_refund_never_takes_another_refund_for_ours() -> None:
    # The order shows a successful refund of the very amount, but nothing says it is ours.
    assert (
        kashier.find_refund(
            order(txn("TX-1", 2)), currency="EGP", reference="r-2", transaction_id=None
        )
        is None
    )
    assert (
        kashier.find_refund(
            order(txn("TX-1", 2)), currency="EGP", reference="r-2", transaction_id="TX-9"
        )
        is None
    )


def test_find_refund_prefers_the_listing_where_money_moved() -> None:
    found = kashier.find_refund(
        order(
            txn("TX-2", 2, status="FAILURE", reason="[ref r-2]"),
            txn("TX-3", 2, status="SUCCESS", reason="[ref r-2]"),
        ),
        currency="EGP",
        reference="r-2",
        transaction_id=None,
    )
    assert found is not None and found.transaction_id == "TX-3"


def test_unclaimed_refunds_are_those_of_our_amount_that_nobody_owns() -> None:
    listed = order(
        txn("TX-MINE", 2),  # owned by another refund of ours
        txn("TX-FAILED", 2, status="FAILURE"),  # no money moved
        txn("TX-OTHER", 3),  # another amount
        txn("TX-ODD", 2),  # nobody's
        txn("TX-WEIRD", "not a number"),  # cannot be ruled out
    )
    suspects = kashier.unclaimed_refunds(
        listed, currency="EGP", amount_minor=200, claimed={"TX-MINE"}
    )
    assert [t.transaction_id for t in suspects] == ["TX-ODD", "TX-WEIRD"]


@pytest.mark.parametrize(
    ("api", "fep"),
    [
        ("https://test-api.kashier.io", "https://test-fep.kashier.io"),
        ("https://api.kashier.io/", "https://fep.kashier.io"),
        ("http://127.0.0.1:9999", kashier.DEFAULT_FEP_BASE),
    ],
)
def test_fep_host_follows_the_api_host(api: str, fep: str) -> None:
    assert kashier.fep_base_for(api) == fep
