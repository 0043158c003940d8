"""Reconciliation fixtures: a signed-up business with catalog rows, Stripe and Kashier behind
respx serving the providers' real payload shapes, and those clients injected into the app."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import respx
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy.ext.asyncio import AsyncEngine

from app.edge.asgi import api_deps_of
from app.gateways.accounts import Providers
from app.integrations.kashier import KashierClient
from app.integrations.stripe_client import StripeGateway
from tests.factories import Business, sign_up
from tests.integrations.conftest import stripe_fixture
from tests.reconciliation.world import DAY_START, World, make_world

STRIPE_API = "https://api.stripe.test"
KASHIER_API = "https://test-api.kashier.test"


# What a source id names, for serving it expanded (Stripe's published fixture of that object).
SOURCE_OBJECTS = {"ch_": "charge", "re_": "refund", "dp_": "dispute", "tr_": "transfer"}


class FakeStripe:
    """Serves /v1/balance_transactions with Stripe's cursor pagination. Sources are bare ids,
    or, for a record given an `owner`, the expanded object naming that business in its
    metadata (how our own charges, refunds and transfers look on the platform account)."""

    def __init__(self) -> None:
        self.transactions: list[dict[str, Any]] = []
        self.fail_with: int | None = None

    def add(
        self,
        txn_id: str,
        *,
        type: str,
        source: str | None,
        amount: int,
        fee: int = 0,
        currency: str = "egp",
        category: str | None = None,
        owner: uuid.UUID | None = None,
    ) -> None:
        served: dict[str, Any] | str | None = source
        if owner is not None and source is not None:
            kind = SOURCE_OBJECTS[source[:3]]
            served = stripe_fixture(kind, id=source, metadata={"tenant_id": str(owner)})
        self.transactions.append(
            stripe_fixture(
                "balance_transaction",
                id=txn_id,
                type=type,
                source=served,
                amount=amount,
                fee=fee,
                net=amount - fee,
                currency=currency,
                reporting_category=category or type,
                created=int(DAY_START.timestamp()) + 3600,
            )
        )

    def respond(self, request: httpx.Request) -> httpx.Response:
        if self.fail_with:
            return httpx.Response(
                self.fail_with, json={"error": {"type": "api_error", "message": "down"}}
            )
        params = request.url.params
        limit = int(params.get("limit", "10"))
        start = 0
        if after := params.get("starting_after"):
            start = next(i for i, t in enumerate(self.transactions) if t["id"] == after) + 1
        page = self.transactions[start : start + limit]
        return httpx.Response(
            200,
            json={
                "object": "list",
                "url": "/v1/balance_transactions",
                "data": page,
                "has_more": start + limit < len(self.transactions),
            },
        )


class FakeKashier:
    def __init__(self) -> None:
        self.orders: list[dict[str, Any]] = []

    def respond(self, request: httpx.Request) -> httpx.Response:
        page = int(request.url.params.get("page", "1"))
        limit = int(request.url.params.get("limit", "100"))
        data = self.orders[(page - 1) * limit : page * limit]
        pages = max(1, -(-len(self.orders) // limit))
        return httpx.Response(200, json={"data": data, "pagination": {"totalPages": pages}})


@pytest.fixture
async def business(client: AsyncTestClient[Litestar]) -> Business:
    return await sign_up(client, timezone="UTC")


@pytest.fixture
async def world(owner_engine: AsyncEngine, business: Business) -> World:
    return await make_world(owner_engine, tenant_id=business.tenant_id, resources=2)


@pytest.fixture
def fake_stripe() -> FakeStripe:
    return FakeStripe()


@pytest.fixture
def fake_kashier() -> FakeKashier:
    return FakeKashier()


@pytest.fixture
async def providers(
    app: Litestar, fake_stripe: FakeStripe, fake_kashier: FakeKashier
) -> AsyncIterator[Providers]:
    async with httpx.AsyncClient(timeout=5.0) as http:
        with respx.mock(assert_all_called=False) as router:
            router.get(f"{STRIPE_API}/v1/balance_transactions").mock(
                side_effect=fake_stripe.respond
            )
            router.get(f"{KASHIER_API}/v3/payment/orders").mock(side_effect=fake_kashier.respond)
            found = Providers(
                stripe=StripeGateway("sk_test_123", http, api_base=STRIPE_API),
                kashier=KashierClient(
                    merchant_id="MID-1",
                    api_key="k",
                    secret_key="s",
                    http=http,
                    api_base=KASHIER_API,
                ),
            )
            before, api_deps_of(app).providers = api_deps_of(app).providers, found
            try:
                yield found
            finally:
                api_deps_of(app).providers = before
