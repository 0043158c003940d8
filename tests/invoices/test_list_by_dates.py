"""The invoice list takes dates like every report: YYYY-MM-DD in the business's timezone,
`to` included; the RFC 3339 instants it took before keep working (`to` excluded)."""

from __future__ import annotations

from datetime import UTC, datetime

from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from tests.factories import Business, sign_up
from tests.invoices.setup import invoice, make_paid, make_shop

Client = AsyncTestClient[Litestar]
Sessions = async_sessionmaker[AsyncSession]
# Cairo is UTC+2 in March: 21:59 UTC is still the 10th locally, 22:00 UTC is the 11th.
LAST_OF_10TH = datetime(2026, 3, 10, 21, 59, tzinfo=UTC)
FIRST_OF_11TH = datetime(2026, 3, 10, 22, 0, tzinfo=UTC)
END_OF_11TH = datetime(2026, 3, 11, 21, 59, 59, tzinfo=UTC)


async def numbers(client: Client, business: Business, **params: str) -> list[str]:
    response = await client.get("/api/v1/invoices", params=params, headers=business.headers)
    assert response.status_code == 200, response.text
    return [item["number"] for item in response.json()]


async def test_dates_are_local_days_with_to_included(
    client: Client, owner_engine: AsyncEngine, sessions: Sessions
) -> None:
    business = await sign_up(client, timezone="Africa/Cairo")
    shop = await make_shop(owner_engine, business.tenant_id)
    for at in (LAST_OF_10TH, FIRST_OF_11TH, END_OF_11TH):
        paid = await make_paid(owner_engine, shop)
        await invoice(sessions, business.tenant_id, paid.payment_id, at)

    assert await numbers(client, business, **{"from": "2026-03-10", "to": "2026-03-10"}) == [
        "INV-2026-000001"
    ]
    assert await numbers(client, business, **{"from": "2026-03-11", "to": "2026-03-11"}) == [
        "INV-2026-000002",
        "INV-2026-000003",
    ]
    # The README's own example: a range of whole months.
    assert await numbers(client, business, **{"from": "2026-03-01", "to": "2026-03-31"}) == [
        "INV-2026-000001",
        "INV-2026-000002",
        "INV-2026-000003",
    ]
    # What worked before still works: instants, `to` excluded.
    instants = {"from": "2026-03-10T22:00:00Z", "to": "2026-03-11T21:59:59+00:00"}
    assert await numbers(client, business, **instants) == ["INV-2026-000002"]
    mixed = {"from": "2026-03-11", "to": "2026-03-11T21:59:59Z"}
    assert await numbers(client, business, **mixed) == ["INV-2026-000002"]


async def test_bad_dates_name_their_parameter(client: Client) -> None:
    business = await sign_up(client)
    cases = {
        "from": {"from": "2026-13-01", "to": "2026-12-31"},
        "to": {"from": "2026-11-01", "to": "yesterday"},
    }
    for field, params in cases.items():
        response = await client.get("/api/v1/invoices", params=params, headers=business.headers)
        assert response.status_code == 422, response.text
        assert [e["field"] for e in response.json()["errors"]] == [field]
    backwards = await client.get(
        "/api/v1/invoices",
        params={"from": "2026-12-31", "to": "2026-11-01"},
        headers=business.headers,
    )
    assert backwards.status_code == 422
    assert backwards.json()["errors"][0]["field"] == "to"
    missing = await client.get(
        "/api/v1/invoices", params={"from": "2026-11-01"}, headers=business.headers
    )
    assert missing.status_code == 422
