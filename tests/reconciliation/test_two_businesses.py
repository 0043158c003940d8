"""Every business's own Stripe money stays its own: two businesses on the platform account
and a third on its own keys, reconciled by the route and by the nightly job.

Stripe sits behind respx and answers as Stripe does: per API key (the platform's account,
or business C's own), serving the balance transactions of that account only, with each
source expanded into its object (Stripe's published fixtures) when `expand[]=data.source`
is asked for, and as a bare id otherwise."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import httpx
import pytest
import respx
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.edge.asgi import api_deps_of
from app.gateways.accounts import Providers
from app.gateways.reconciliation_run import reconcile_all
from app.integrations.crypto import SecretBox
from app.integrations.kashier import KashierClient
from app.integrations.stripe_client import StripeGateway
from app.settings import Settings
from tests.factories import Business, sign_up
from tests.integrations.conftest import stripe_fixture
from tests.reconciliation.conftest import KASHIER_API, FakeKashier
from tests.reconciliation.test_api_and_kashier import kashier_order
from tests.reconciliation.world import DAY_START, World, add_payment, add_refund, make_world

Client = AsyncTestClient[Litestar]
API = "https://api.stripe.test"
PLATFORM_KEY = "sk_test_platform_account"
OWN_KEY = "sk_test_business_c_own_account"
DAY = "2026-03-10"


def _id(source: Any) -> Any:
    return source.get("id") if isinstance(source, dict) else source


@dataclass
class StripeAccounts:
    """GET /v1/balance_transactions of the account whose key signs the request."""

    accounts: dict[str, list[dict[str, Any]]] = field(
        default_factory=lambda: {PLATFORM_KEY: [], OWN_KEY: []}
    )
    requests: list[httpx.Request] = field(default_factory=list)

    def add(
        self,
        key: str,
        txn_id: str,
        *,
        type: str,
        source: dict[str, Any] | str | None,
        amount: int,
        fee: int = 0,
        category: str | None = None,
    ) -> None:
        self.accounts[key].append(
            stripe_fixture(
                "balance_transaction",
                id=txn_id,
                type=type,
                source=source,
                amount=amount,
                fee=fee,
                net=amount - fee,
                currency="egp",
                reporting_category=category or type,
                created=int(DAY_START.timestamp()) + 3600,
            )
        )

    def respond(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        key = request.headers["Authorization"].removeprefix("Bearer ")
        txns = self.accounts.get(key)
        if txns is None:
            message = f"Invalid API Key provided: {key[:8]}****"
            error = {"type": "invalid_request_error", "message": message}
            return httpx.Response(401, json={"error": error})
        if not expanded(request):
            txns = [{**t, "source": _id(t["source"])} for t in txns]
        params = request.url.params
        limit = int(params.get("limit", "10"))
        start = 0
        if after := params.get("starting_after"):
            start = next(i for i, t in enumerate(txns) if t["id"] == after) + 1
        page = txns[start : start + limit]
        body = {
            "object": "list",
            "url": "/v1/balance_transactions",
            "data": page,
            "has_more": start + limit < len(txns),
        }
        return httpx.Response(200, json=body)

    def keys_used(self) -> list[tuple[str, bool]]:
        """(API key, sources expanded) per request, then forgets them."""
        used = [
            (r.headers["Authorization"].removeprefix("Bearer "), expanded(r)) for r in self.requests
        ]
        self.requests.clear()
        return used


def expanded(request: httpx.Request) -> bool:
    return any(
        k.startswith("expand") and v == "data.source" for k, v in request.url.params.multi_items()
    )


def charge(charge_id: str, amount: int, *, metadata: dict[str, str], group: str | None) -> Any:
    return stripe_fixture(
        "charge",
        id=charge_id,
        amount=amount,
        currency="egp",
        metadata=metadata,
        transfer_group=group,
        payment_intent="pi_" + charge_id[3:],
    )


def refund(refund_id: str, charge_id: str, amount: int, metadata: dict[str, str]) -> Any:
    return stripe_fixture(
        "refund", id=refund_id, amount=amount, charge=charge_id, metadata=metadata
    )


@dataclass
class Shop:
    business: Business
    world: World


@dataclass
class Platform:
    a: Shop
    b: Shop
    c: Shop
    stripe: StripeAccounts
    providers: Providers
    kashier: FakeKashier


@pytest.fixture
async def platform(
    client: Client, app: Litestar, owner_engine: AsyncEngine, settings: Settings
) -> AsyncIterator[Platform]:
    shops = []
    for _ in range(3):
        business = await sign_up(client, timezone="UTC")
        shops.append(Shop(business, await make_world(owner_engine, tenant_id=business.tenant_id)))
    a, b, c = shops
    saved = await client.put(
        "/api/v1/settings/providers",
        headers=c.business.headers,
        json={"enabled": ["stripe", "cash"], "credentials": {"stripe": {"api_key": OWN_KEY}}},
    )
    assert saved.status_code == 200, saved.text
    stripe, kashier = StripeAccounts(), FakeKashier()
    async with httpx.AsyncClient(timeout=5.0) as http:
        with respx.mock(assert_all_mocked=True, assert_all_called=False) as router:
            router.get(f"{API}/v1/balance_transactions").mock(side_effect=stripe.respond)
            router.get(f"{KASHIER_API}/v3/payment/orders").mock(side_effect=kashier.respond)
            providers = Providers(
                stripe=StripeGateway(PLATFORM_KEY, http, api_base=API),
                kashier=KashierClient(
                    merchant_id="MID-platform",
                    api_key="k",
                    secret_key="s",
                    http=http,
                    api_base=KASHIER_API,
                ),
                http=http,
                stripe_api_base=API,
                secret_box=SecretBox(settings.secret_key),
            )
            before, api_deps_of(app).providers = api_deps_of(app).providers, providers
            try:
                yield Platform(a, b, c, stripe, providers, kashier)
            finally:
                api_deps_of(app).providers = before


@dataclass
class Books:
    """What each business owns: references and amounts (fees included) that must never
    appear in another business's run."""

    refs: dict[str, set[str]] = field(default_factory=dict)
    amounts: dict[str, set[int]] = field(default_factory=dict)

    def own(self, name: str, refs: set[str], amounts: set[int]) -> None:
        self.refs[name], self.amounts[name] = refs, amounts

    def others(self, name: str) -> tuple[set[str], set[int]]:
        refs = set().union(*(r for n, r in self.refs.items() if n != name))
        amounts = set().union(*(a for n, a in self.amounts.items() if n != name))
        return refs, amounts


async def fill_the_accounts(
    owner: AsyncEngine, sessions: async_sessionmaker[AsyncSession], p: Platform
) -> Books:
    s, books = p.stripe, Books()
    ta, tb = str(p.a.business.tenant_id), str(p.b.business.tenant_id)
    # A on the platform: a Checkout charge (metadata and transfer group), a charge naming A by
    # its transfer group only, our refund (metadata) and a refund made in Stripe's dashboard
    # (no metadata: known only through A's charge).
    a1 = await add_payment(
        owner, sessions, p.a.world, provider="stripe", amount=10_001, fee=311, charge_ref="ch_A1"
    )
    await add_payment(
        owner, sessions, p.a.world, provider="stripe", amount=7_003, fee=213, charge_ref="ch_A2"
    )
    await add_refund(
        owner, sessions, p.a.world, a1, provider="stripe", amount=2_501, refund_ref="re_A1"
    )
    meta_a = {"tenant_id": ta, "payment_id": str(a1)}
    s.add(
        PLATFORM_KEY,
        "txn_A1",
        type="charge",
        source=charge("ch_A1", 10_001, metadata=meta_a, group=f"tenant:{ta}"),
        amount=10_001,
        fee=311,
    )
    s.add(
        PLATFORM_KEY,
        "txn_A2",
        type="charge",
        source=charge("ch_A2", 7_003, metadata={}, group=f"tenant:{ta}"),
        amount=7_003,
        fee=213,
    )
    s.add(
        PLATFORM_KEY,
        "txn_rA1",
        type="refund",
        source=refund("re_A1", "ch_A1", 2_501, {"refund_id": str(uuid.uuid4()), "tenant_id": ta}),
        amount=-2_501,
    )
    s.add(
        PLATFORM_KEY,
        "txn_rA2",
        type="refund",
        source=refund("re_A2dash", "ch_A2", 1_007, {}),
        amount=-1_007,
    )
    books.own(
        "a",
        {"ch_A1", "ch_A2", "re_A1", "re_A2dash", "txn_A1", "txn_A2", "txn_rA1", "txn_rA2"},
        {10_001, 311, 7_003, 213, 2_501, -2_501, 1_007, -1_007},
    )
    # B on the platform: a charge, a dispute of it (a dispute carries no metadata), and a
    # capture whose charge Stripe does not list that day.
    await add_payment(
        owner, sessions, p.b.world, provider="stripe", amount=20_011, fee=517, charge_ref="ch_B1"
    )
    await add_payment(
        owner, sessions, p.b.world, provider="stripe", amount=5_021, charge_ref="ch_B2"
    )
    s.add(
        PLATFORM_KEY,
        "txn_B1",
        type="charge",
        source=charge("ch_B1", 20_011, metadata={"tenant_id": tb}, group=f"tenant:{tb}"),
        amount=20_011,
        fee=517,
    )
    dispute = stripe_fixture("dispute", id="dp_B1", amount=20_011, charge="ch_B1", metadata={})
    s.add(
        PLATFORM_KEY,
        "txn_dpB1",
        type="adjustment",
        source=dispute,
        amount=-20_011,
        category="dispute",
    )
    # A transfer of B's (a staff payout) its ledger does not know: only its metadata says
    # whose it is.
    transfer = stripe_fixture(
        "transfer",
        id="tr_B1",
        amount=4_207,
        currency="egp",
        metadata={"tenant_id": tb, "payout_id": str(uuid.uuid4())},
        transfer_group="payout-unknown",
    )
    s.add(PLATFORM_KEY, "txn_trB1", type="transfer", source=transfer, amount=-4_207)
    books.own(
        "b",
        {"ch_B1", "ch_B2", "dp_B1", "tr_B1", "txn_B1", "txn_dpB1", "txn_trB1"},
        {20_011, 517, -20_011, 5_021, 4_207, -4_207},
    )
    # The platform's own lines and another platform business's 120 charges (two pages).
    s.add(PLATFORM_KEY, "txn_fee", type="stripe_fee", source=None, amount=-999)
    payout = stripe_fixture("payout", id="po_platform", amount=50_000, metadata={})
    s.add(PLATFORM_KEY, "txn_po", type="payout", source=payout, amount=-50_000)
    other = str(uuid.uuid4())
    for n in range(120):
        s.add(
            PLATFORM_KEY,
            f"txn_D{n}",
            type="charge",
            source=charge(f"ch_D{n}", 3_300 + n, metadata={"tenant_id": other}, group=None),
            amount=3_300 + n,
            fee=90,
        )
    books.own(
        "platform",
        {"txn_fee", "po_platform", "txn_po", *(f"ch_D{n}" for n in range(120))},
        {-999, -50_000, 50_000, 90, *(3_300 + n for n in range(120))},
    )
    # C on its own account: everything there is C's, its fee lines included.
    await add_payment(
        owner, sessions, p.c.world, provider="stripe", amount=15_013, fee=419, charge_ref="ch_C1"
    )
    s.add(OWN_KEY, "txn_C1", type="charge", source="ch_C1", amount=15_013, fee=419)
    s.add(OWN_KEY, "txn_Cx", type="charge", source="ch_Cx", amount=4_441, fee=129)
    s.add(OWN_KEY, "txn_Cfee", type="stripe_fee", source=None, amount=-77)
    books.own(
        "c", {"ch_C1", "ch_Cx", "txn_C1", "txn_Cx", "txn_Cfee"}, {15_013, 419, 4_441, 129, -77}
    )
    return books


async def run(client: Client, shop: Shop) -> dict[str, Any]:
    response = await client.post(
        "/api/v1/reconciliation/runs",
        headers=shop.business.headers,
        json={"provider": "stripe", "date": DAY},
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def stored_findings(owner: AsyncEngine, tenant_id: uuid.UUID) -> list[Any]:
    async with owner.connect() as conn:
        return list(
            (
                await conn.execute(
                    text(
                        "SELECT kind, provider_ref, provider_minor, ledger_minor, details"
                        " FROM reconciliation_discrepancies WHERE tenant_id = :t"
                    ),
                    {"t": tenant_id},
                )
            ).all()
        )


def assert_nothing_of_others(name: str, rows: list[Any], books: Books) -> None:
    refs, amounts = books.others(name)
    for row in rows:
        assert row.provider_ref not in refs, (name, row)
        assert row.details.get("provider_record_id") not in refs, (name, row)
        for value in (
            row.provider_minor,
            row.ledger_minor,
            row.details.get("provider_fee_minor"),
            row.details.get("ledger_fee_minor"),
        ):
            assert value in (None, 0) or value not in amounts, (name, row)


EXPECTED = {
    "a": (4, 3, {("missing_in_ledger", "re_A2dash")}),
    "b": (
        3,
        1,
        {
            ("missing_in_ledger", "dp_B1"),
            ("missing_in_ledger", "tr_B1"),
            ("missing_at_provider", "ch_B2"),
        },
    ),
    "c": (3, 1, {("missing_in_ledger", "ch_Cx"), ("missing_in_ledger", "txn_Cfee")}),
}


async def test_businesses_on_one_platform_account_see_none_of_each_others_money(
    client: Client,
    owner_engine: AsyncEngine,
    sessions: async_sessionmaker[AsyncSession],
    platform: Platform,
) -> None:
    p = platform
    books = await fill_the_accounts(owner_engine, sessions, p)
    shops = {"a": p.a, "b": p.b, "c": p.c}

    for name, shop in shops.items():
        body = await run(client, shop)
        records, matched, expected = EXPECTED[name]
        assert (body["provider_records"], body["matched"]) == (records, matched), name
        rows = await stored_findings(owner_engine, shop.business.tenant_id)
        assert {(r.kind, r.provider_ref) for r in rows} == expected, name
        assert_nothing_of_others(name, rows, books)
        listed = await client.get(
            "/api/v1/reconciliation/discrepancies?status=all", headers=shop.business.headers
        )
        assert {(d["kind"], d["provider_ref"]) for d in listed.json()} == expected, name
        # The platform account is read with the platform key, sources expanded, on every
        # page; C's own account with C's key only.
        used = p.stripe.keys_used()
        if name == "c":
            assert used == [(OWN_KEY, False)]
        else:
            assert used == [(PLATFORM_KEY, True), (PLATFORM_KEY, True)], name


async def test_the_nightly_job_reads_each_business_from_its_own_account_or_its_share(
    owner_engine: AsyncEngine,
    sessions: async_sessionmaker[AsyncSession],
    platform: Platform,
) -> None:
    p = platform
    books = await fill_the_accounts(owner_engine, sessions, p)
    tenants = {p.a.business.tenant_id, p.b.business.tenant_id, p.c.business.tenant_id}

    done = await reconcile_all(sessions, p.providers, date.fromisoformat(DAY), only=["stripe"])

    assert done == 3
    used = p.stripe.keys_used()
    assert sorted(used).count((PLATFORM_KEY, True)) == 4  # two businesses, two pages each
    assert sorted(used).count((OWN_KEY, False)) == 1
    assert len(used) == 5
    async with owner_engine.connect() as conn:
        runs = {
            row.tenant_id: (row.provider_records, row.matched)
            for row in await conn.execute(
                text("SELECT tenant_id, provider_records, matched FROM reconciliation_runs")
            )
        }
    assert set(runs) == tenants
    for name, shop in {"a": p.a, "b": p.b, "c": p.c}.items():
        records, matched, expected = EXPECTED[name]
        assert runs[shop.business.tenant_id] == (records, matched), name
        rows = await stored_findings(owner_engine, shop.business.tenant_id)
        assert {(r.kind, r.provider_ref) for r in rows} == expected, name
        assert_nothing_of_others(name, rows, books)


async def test_a_business_whose_own_key_stripe_refuses_fails_its_run_not_the_platforms(
    client: Client,
    owner_engine: AsyncEngine,
    sessions: async_sessionmaker[AsyncSession],
    platform: Platform,
) -> None:
    p = platform
    await fill_the_accounts(owner_engine, sessions, p)
    del p.stripe.accounts[OWN_KEY]  # the key C saved no longer opens any account

    refused = await client.post(
        "/api/v1/reconciliation/runs",
        headers=p.c.business.headers,
        json={"provider": "stripe", "date": DAY},
    )

    assert refused.status_code == 503, refused.text
    # Never retried on the platform's account: C's money is not there to find.
    assert p.stripe.keys_used() == [(OWN_KEY, False)]
    async with owner_engine.connect() as conn:
        status = await conn.scalar(
            text("SELECT status FROM reconciliation_runs WHERE tenant_id = :t"),
            {"t": p.c.business.tenant_id},
        )
    assert status == "failed"
    assert (await run(client, p.a))["provider_records"] == EXPECTED["a"][0]


async def test_kashier_orders_on_the_platform_merchant_are_each_business_own(
    client: Client,
    owner_engine: AsyncEngine,
    sessions: async_sessionmaker[AsyncSession],
    platform: Platform,
) -> None:
    p = platform
    paid_a = await add_payment(owner_engine, sessions, p.a.world, provider="kashier", amount=15_050)
    paid_b = await add_payment(owner_engine, sessions, p.b.world, provider="kashier", amount=9_900)
    await add_refund(
        owner_engine,
        sessions,
        p.a.world,
        paid_a,
        provider="kashier",
        amount=5_000,
        refund_ref="kr-A",
    )
    p.kashier.orders = [
        kashier_order(paid_a, "150.50", refunds=(("kr-A", "50.00"),)),
        kashier_order(paid_b, "98.00"),  # B's capture is short by 1.00
        kashier_order(uuid.uuid4(), "77.00"),  # a payment of no business here
    ]

    runs = {}
    for name, shop in (("a", p.a), ("b", p.b)):
        response = await client.post(
            "/api/v1/reconciliation/runs",
            headers=shop.business.headers,
            json={"provider": "kashier", "date": DAY},
        )
        assert response.status_code == 201, response.text
        runs[name] = response.json()

    assert (runs["a"]["provider_records"], runs["a"]["discrepancies"]) == (2, 0)
    assert (runs["b"]["provider_records"], runs["b"]["discrepancies"]) == (1, 1)
    rows = await stored_findings(owner_engine, p.b.business.tenant_id)
    assert [(r.kind, r.provider_ref, r.provider_minor) for r in rows] == [
        ("amount_mismatch", str(paid_b), 9_800)
    ]
    assert await stored_findings(owner_engine, p.a.business.tenant_id) == []
