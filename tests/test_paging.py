"""Every list pages with a cursor and never stops short without saying so: each list is
walked page by page (following the `Link` header, or `next` in an object body) over more
rows than one page, with ties in the leading sort column, and must show every row exactly
once, in its documented order. A cursor the list did not issue is a 422 naming `cursor`."""

from __future__ import annotations

import base64
import json
import re
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.db import tenant_transaction
from app.ledger.service import Line, post
from app.money import Money
from tests.factories import Business, sign_up
from tests.invoices.setup import Shop, invoice, make_paid, make_shop

Client = AsyncTestClient[Litestar]
Sessions = async_sessionmaker[AsyncSession]
T0 = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)
LINK = re.compile(r'<(?P<url>[^>]+)>; rel="next"')


async def walk_array(
    client: Client, path: str, params: dict[str, Any], headers: dict[str, str]
) -> list[list[dict[str, Any]]]:
    """The pages of a list answered as a JSON array, following `Link: <...>; rel="next"`
    (which must carry the same cursor as `X-Next-Cursor`) until neither header is sent."""
    pages: list[list[dict[str, Any]]] = []
    url: str = path
    query: dict[str, Any] | None = params
    while True:
        response = await client.get(url, params=query, headers=headers)
        assert response.status_code == 200, response.text
        body = response.json()
        assert isinstance(body, list), body
        pages.append(body)
        link, cursor = response.headers.get("link"), response.headers.get("x-next-cursor")
        if link is None:
            assert cursor is None
            return pages
        match = LINK.fullmatch(link)
        assert match is not None, link
        url, query = match["url"], None
        assert parse_qs(urlsplit(url).query)["cursor"] == [cursor]
        assert len(pages) < 100, "the cursor does not advance"


def ids(pages: list[list[dict[str, Any]]]) -> list[str]:
    return [row["id"] for page in pages for row in page]


def sizes(pages: list[list[dict[str, Any]]]) -> list[int]:
    return [len(page) for page in pages]


def ordered(keyed: list[tuple[Any, ...]]) -> list[str]:
    """Ids in the order of their sort keys (the id, last, a UUID as PostgreSQL orders it)."""
    return [str(key[-1]) for key in sorted(keyed)]


def cursor_of(*values: Any) -> str:
    raw = json.dumps(list(values)).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


# -- bookings ----------------------------------------------------------------------------


async def insert_bookings(
    owner: AsyncEngine, shop: Shop, starts: list[datetime]
) -> list[tuple[datetime, uuid.UUID]]:
    rows = [(start, uuid.uuid4()) for start in starts]
    async with owner.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO bookings (tenant_id, id, branch_id, service_id, resource_id, "
                "customer_name, party_size, starts_at, ends_at, blocked, exclusive, status, "
                "unit_price_minor, pricing, quantity, total_minor, currency, payment_provider) "
                "VALUES (:t, :id, :b, :s, :r, 'Layla', 1, :start, :end, "
                "tstzrange(:start, :end, '[)'), false, 'confirmed', 100, 'fixed', 1, 100, "
                ":cur, 'cash')"
            ),
            [
                {
                    "t": shop.tenant_id,
                    "id": booking_id,
                    "b": shop.branch_id,
                    "s": shop.service_id,
                    "r": shop.resource_id,
                    "start": start,
                    "end": start + timedelta(minutes=30),
                    "cur": shop.currency,
                }
                for start, booking_id in rows
            ],
        )
    return rows


async def shop_of(client: Client, owner: AsyncEngine) -> tuple[Business, Shop]:
    business = await sign_up(client)
    return business, await make_shop(owner, business.tenant_id)


async def test_bookings_are_walked_once_each_by_start_then_id(
    client: Client, owner_engine: AsyncEngine
) -> None:
    business, shop = await shop_of(client, owner_engine)
    # Three pairs share a start: only the id can order them, and a page boundary falls
    # between the two bookings of a pair.
    starts = [T0 + timedelta(hours=h) for h in (5, 1, 3, 1, 0, 3, 5)]
    rows = await insert_bookings(owner_engine, shop, starts)
    params = {"from": "2026-03-10", "to": "2026-03-10", "limit": 3}

    pages = await walk_array(client, "/api/v1/bookings", params, business.headers)

    assert sizes(pages) == [3, 3, 1]
    assert ids(pages) == ordered(rows)


async def test_bookings_beyond_the_default_page_are_announced_not_dropped(
    client: Client, owner_engine: AsyncEngine
) -> None:
    """The reported bug: 501 bookings came back as 500 with nothing saying so."""
    business, shop = await shop_of(client, owner_engine)
    rows = await insert_bookings(
        owner_engine, shop, [T0 + timedelta(minutes=m) for m in range(501)]
    )
    params = {"from": "2026-03-10", "to": "2026-03-10"}

    pages = await walk_array(client, "/api/v1/bookings", params, business.headers)
    assert sizes(pages) == [500, 1]
    assert ids(pages) == ordered(rows)

    # More than the most a page holds is served as a full page with its link, not refused.
    capped = await client.get(
        "/api/v1/bookings", params={**params, "limit": 1000}, headers=business.headers
    )
    assert capped.status_code == 200, capped.text
    assert len(capped.json()) == 500 and capped.headers.get("x-next-cursor")


async def test_filters_are_kept_on_every_page(client: Client, owner_engine: AsyncEngine) -> None:
    business, shop = await shop_of(client, owner_engine)
    rows = await insert_bookings(owner_engine, shop, [T0 + timedelta(hours=h) for h in range(5)])
    async with owner_engine.begin() as conn:
        await conn.execute(
            text("UPDATE bookings SET status = 'cancelled' WHERE tenant_id = :t AND id = :id"),
            {"t": shop.tenant_id, "id": rows[2][1]},
        )
    params = {"from": "2026-03-10", "to": "2026-03-10", "status": "confirmed", "limit": 2}

    pages = await walk_array(client, "/api/v1/bookings", params, business.headers)

    assert ids(pages) == ordered([row for index, row in enumerate(rows) if index != 2])


# -- ledger entries ----------------------------------------------------------------------


async def test_ledger_entries_are_walked_by_occurrence_creation_then_id(
    client: Client, sessions: Sessions
) -> None:
    business = await sign_up(client, timezone="UTC")
    keyed: list[tuple[Any, ...]] = []
    # Two transactions of three entries at one instant: ties on occurred_at AND created_at.
    for batch in range(2):
        async with tenant_transaction(sessions, business.tenant_id) as session:
            for number in range(3):
                entry = await post(
                    session,
                    business.tenant_id,
                    idempotency_key=f"paging:{batch}:{number}",
                    reason="checkout",
                    lines=[
                        Line("receivable:customer", "asset", Money(100, "EGP")),
                        Line("deferred_revenue", "liability", Money(-100, "EGP")),
                    ],
                    occurred_at=T0 + timedelta(hours=number % 2),
                )
                keyed.append((entry.occurred_at, entry.created_at, entry.id))
    params = {"from": "2026-03-10", "to": "2026-03-10", "limit": 4}

    pages = await walk_array(client, "/api/v1/ledger/entries", params, business.headers)

    assert sizes(pages) == [4, 2]
    assert ids(pages) == ordered(keyed)
    assert all(len(entry["postings"]) == 2 for page in pages for entry in page)


# -- invoices ----------------------------------------------------------------------------


async def test_invoices_are_walked_by_issue_time_then_number(
    client: Client, owner_engine: AsyncEngine, sessions: Sessions
) -> None:
    business, shop = await shop_of(client, owner_engine)
    numbers = []
    for index in range(5):
        paid = await make_paid(owner_engine, shop, start=T0 + timedelta(days=index + 1))
        # Pairs issued at one instant: their numbers order them.
        issued = await invoice(
            sessions, business.tenant_id, paid.payment_id, T0 + timedelta(hours=index // 2)
        )
        numbers.append(issued.number)
    params = {"from": "2026-03-10", "to": "2026-03-10", "limit": 2}

    pages = await walk_array(client, "/api/v1/invoices", params, business.headers)

    assert sizes(pages) == [2, 2, 1]
    assert [row["number"] for page in pages for row in page] == sorted(numbers)


# -- payouts -----------------------------------------------------------------------------


async def test_payouts_are_walked_newest_first_then_by_id(
    client: Client, owner_engine: AsyncEngine, sessions: Sessions
) -> None:
    business = await sign_up(client)
    async with tenant_transaction(sessions, business.tenant_id) as session:
        transfer = await post(
            session,
            business.tenant_id,
            idempotency_key="paging:transfer",
            reason="payout",
            lines=[
                Line("payouts_in_transit:manual", "asset", Money(100, "EGP")),
                Line("clearing:manual", "asset", Money(-100, "EGP")),
            ],
            occurred_at=T0,
        )
    keyed = []
    async with owner_engine.begin() as conn:
        for index in range(5):
            payout_id, created = uuid.uuid4(), T0 - timedelta(days=index // 2)
            await conn.execute(
                text(
                    "INSERT INTO payouts (tenant_id, id, resource_id, rail, status, "
                    "amount_minor, currency, period_start, period_end, transfer_entry_id, "
                    "created_at) VALUES (:t, :id, :r, 'manual', 'in_transit', 100, 'EGP', "
                    ":start, :end, :entry, :created)"
                ),
                {
                    "t": business.tenant_id,
                    "id": payout_id,
                    "r": uuid.uuid4(),
                    "start": date(2026, 3, 2),
                    "end": date(2026, 3, 9),
                    "entry": transfer.id,
                    "created": created,
                },
            )
            # Newest first: the negated age sorts ascending like the API's descending time.
            keyed.append((-created.timestamp(), payout_id))

    pages = await walk_array(client, "/api/v1/payouts", {"limit": 2}, business.headers)

    assert sizes(pages) == [2, 2, 1]
    assert ids(pages) == ordered(keyed)
    sheet = await client.get("/api/v1/payouts/export.csv", headers=business.headers)
    assert len(sheet.text.strip().splitlines()) == 1 + 5


# -- reconciliation ----------------------------------------------------------------------


async def insert_runs(owner: AsyncEngine, tenant_id: uuid.UUID) -> list[tuple[Any, ...]]:
    keyed = []
    async with owner.begin() as conn:
        for index in range(5):
            run_id, day = uuid.uuid4(), date(2026, 3, 10) - timedelta(days=index // 2)
            provider = ("kashier", "stripe")[index % 2]
            await conn.execute(
                text(
                    "INSERT INTO reconciliation_runs (tenant_id, id, provider, run_date, status, "
                    "window_start, window_end, started_at) VALUES (:t, :id, :provider, :day, "
                    "'completed', :start, :end, :start)"
                ),
                {
                    "t": tenant_id,
                    "id": run_id,
                    "provider": provider,
                    "day": day,
                    "start": T0,
                    "end": T0 + timedelta(days=1),
                },
            )
            keyed.append((-day.toordinal(), provider, run_id))
    return keyed


async def test_reconciliation_runs_are_walked_latest_day_first(
    client: Client, owner_engine: AsyncEngine
) -> None:
    business = await sign_up(client)
    keyed = await insert_runs(owner_engine, business.tenant_id)

    pages = await walk_array(client, "/api/v1/reconciliation/runs", {"limit": 2}, business.headers)

    assert sizes(pages) == [2, 2, 1]
    assert ids(pages) == ordered(keyed)


async def test_discrepancies_are_walked_newest_first_then_by_id(
    client: Client, owner_engine: AsyncEngine
) -> None:
    business = await sign_up(client)
    run_id = (await insert_runs(owner_engine, business.tenant_id))[0][-1]
    keyed = []
    async with owner_engine.begin() as conn:
        for index in range(7):
            finding, created = uuid.uuid4(), T0 - timedelta(hours=index // 3)
            await conn.execute(
                text(
                    "INSERT INTO reconciliation_discrepancies (tenant_id, id, run_id, provider, "
                    "kind, provider_ref, created_at, updated_at) VALUES (:t, :id, :run, "
                    "'stripe', 'missing_in_ledger', :ref, :created, :created)"
                ),
                {
                    "t": business.tenant_id,
                    "id": finding,
                    "run": run_id,
                    "ref": f"txn_{index}",
                    "created": created,
                },
            )
            keyed.append((-created.timestamp(), finding))

    pages = await walk_array(
        client, "/api/v1/reconciliation/discrepancies", {"limit": 3}, business.headers
    )

    assert sizes(pages) == [3, 3, 1]
    assert ids(pages) == ordered(keyed)


# -- audit (an object body with `next`) --------------------------------------------------


@pytest.fixture
def audit_client(client: Client) -> Client:
    """The audit log is served by the composition root's own router."""
    return client


async def test_audit_trail_is_walked_newest_first_with_next_in_the_body(
    audit_client: Client, owner_engine: AsyncEngine
) -> None:
    business = await sign_up(audit_client)
    async with owner_engine.begin() as conn:
        # Signing up wrote rows of its own; they are part of the trail too.
        existing = await conn.execute(
            text("SELECT at, id FROM audit_log WHERE tenant_id = :t"), {"t": business.tenant_id}
        )
        keyed = [(-at.timestamp(), row_id) for at, row_id in existing]
        for index in range(7):
            row_id, at = uuid.uuid4(), T0 - timedelta(minutes=index // 2)
            await conn.execute(
                text(
                    "INSERT INTO audit_log (tenant_id, id, actor_kind, action, entity_type, "
                    "entity_id, at) VALUES (:t, :id, 'system', 'thing.done', 'thing', :e, :at)"
                ),
                {"t": business.tenant_id, "id": row_id, "e": uuid.uuid4(), "at": at},
            )
            keyed.append((-at.timestamp(), row_id))

    seen: list[str] = []
    pages = 0
    params: dict[str, Any] = {"limit": 3}
    while True:
        response = await audit_client.get("/api/v1/audit", params=params, headers=business.headers)
        assert response.status_code == 200, response.text
        body = response.json()
        pages += 1
        assert len(body["items"]) <= 3
        seen += [item["id"] for item in body["items"]]
        if body["next"] is None:
            break
        params = {"limit": 3, "cursor": body["next"]}
    assert pages == -(-len(keyed) // 3) and len(keyed) > 7
    assert seen == ordered(keyed)


# -- cursors the list did not issue -------------------------------------------------------

DAY = {"from": "2026-03-10", "to": "2026-03-10"}
ARRAY_LISTS = [
    ("/api/v1/bookings", DAY),
    ("/api/v1/ledger/entries", DAY),
    ("/api/v1/invoices", DAY),
    ("/api/v1/payouts", {}),
    ("/api/v1/reconciliation/runs", {}),
    ("/api/v1/reconciliation/discrepancies", {}),
]
BAD_CURSORS = {
    "not base64": "%%%not-a-cursor%%%",
    "not json": base64.urlsafe_b64encode(b"\xff\xfe{").decode(),
    "not a list": base64.urlsafe_b64encode(b'{"a": 1}').decode(),
    "wrong types": cursor_of("bookings", 12, "not-a-uuid"),
    "too long": "A" * 5000,
}


@pytest.mark.parametrize(("path", "params"), ARRAY_LISTS, ids=[p for p, _ in ARRAY_LISTS])
async def test_a_cursor_the_list_did_not_issue_is_a_422_naming_cursor(
    client: Client, path: str, params: dict[str, str]
) -> None:
    business = await sign_up(client)
    for name, bad in BAD_CURSORS.items():
        response = await client.get(
            path, params={**params, "cursor": bad}, headers=business.headers
        )
        assert response.status_code == 422, (name, response.text)
        body = response.json()
        assert body["type"] == "validation_error"
        assert [e["field"] for e in body["errors"]] == ["cursor"], (name, body)
    refused = await client.get(path, params={**params, "limit": 0}, headers=business.headers)
    assert refused.status_code == 422, refused.text


async def test_one_lists_cursor_is_refused_by_another(
    client: Client, owner_engine: AsyncEngine, audit_client: Client
) -> None:
    business, shop = await shop_of(client, owner_engine)
    await insert_bookings(owner_engine, shop, [T0, T0 + timedelta(hours=1)])
    first = await client.get(
        "/api/v1/bookings", params={**DAY, "limit": 1}, headers=business.headers
    )
    cursor = first.headers["x-next-cursor"]
    # Same shape of key (a time and an id), another list: refused, not misread.
    for path, params in ARRAY_LISTS[1:]:
        response = await client.get(
            path, params={**params, "cursor": cursor}, headers=business.headers
        )
        assert response.status_code == 422, (path, response.text)
    audit = await audit_client.get(
        "/api/v1/audit", params={"cursor": cursor}, headers=business.headers
    )
    assert audit.status_code == 422 and audit.json()["errors"][0]["field"] == "cursor"
    again = await client.get(
        "/api/v1/bookings", params={**DAY, "limit": 1, "cursor": cursor}, headers=business.headers
    )
    assert again.status_code == 200 and len(again.json()) == 1
