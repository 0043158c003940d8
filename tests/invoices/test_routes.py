"""Invoice HTTP endpoints: JSON, the printable HTML page, settings, role guards and tenant
isolation."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.invoices.views import InvoiceView
from tests.factories import Business, add_user, sign_up
from tests.invoices.setup import credit, invoice, make_paid, make_refund, make_shop

Client = AsyncTestClient[Litestar]
Sessions = async_sessionmaker[AsyncSession]
# 23:30 UTC on the 10th is already the 11th in Cairo (UTC+2 in March).
LATE = datetime(2026, 3, 10, 23, 30, tzinfo=UTC)
SCRIPT = "<script>alert('x')</script>"


async def business_with_invoice(
    client: Client,
    owner: AsyncEngine,
    sessions: Sessions,
    *,
    currency: str = "EGP",
    customer_name: str = "Layla Hassan",
    **overrides: str,
) -> tuple[Business, InvoiceView]:
    business = await sign_up(client, currency=currency, **overrides)
    shop = await make_shop(owner, business.tenant_id, currency=currency, product_name="Oil & <b>")
    paid = await make_paid(
        owner, shop, unit_price_minor=12_345, products=1, customer_name=customer_name
    )
    return business, await invoice(sessions, business.tenant_id, paid.payment_id, LATE)


async def test_invoice_json_states_number_customer_lines_and_money(
    client: Client, owner_engine: AsyncEngine, sessions: Sessions
) -> None:
    business, issued = await business_with_invoice(client, owner_engine, sessions)

    response = await client.get(f"/api/v1/invoices/{issued.id}", headers=business.headers)

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["number"] == "INV-2026-000001"
    assert body["kind"] == "invoice"
    assert body["customer"] == {"name": "Layla Hassan", "email": "layla@example.com"}
    assert body["total"] == {"amount_minor": 14_845, "currency": "EGP"}
    assert body["tax"] == {"amount_minor": 0, "currency": "EGP"}
    assert [line["amount"]["amount_minor"] for line in body["lines"]] == [12_345, 2_500]
    assert body["lines"][1]["description"] == "Oil & <b>"
    assert datetime.fromisoformat(body["issued_at"]) == LATE


async def test_invoice_list_filters_by_issue_time_and_kind(
    client: Client, owner_engine: AsyncEngine, sessions: Sessions
) -> None:
    business = await sign_up(client)
    shop = await make_shop(owner_engine, business.tenant_id)
    early = await make_paid(owner_engine, shop)
    await invoice(sessions, business.tenant_id, early.payment_id, datetime(2026, 3, 1, tzinfo=UTC))
    late = await make_paid(owner_engine, shop)
    await invoice(sessions, business.tenant_id, late.payment_id, LATE)
    refund_id = await make_refund(owner_engine, shop, late, 500)
    await credit(sessions, business.tenant_id, refund_id, LATE)

    async def numbers(**params: str) -> list[str]:
        response = await client.get("/api/v1/invoices", params=params, headers=business.headers)
        assert response.status_code == 200, response.text
        return [item["number"] for item in response.json()]

    window = {"from": "2026-03-05T00:00:00+00:00", "to": "2026-03-12T00:00:00+00:00"}
    assert await numbers(**window) == ["CN-2026-000001", "INV-2026-000002"]
    assert await numbers(**window, kind="invoice") == ["INV-2026-000002"]
    assert await numbers(**{"from": "2026-01-01T00:00:00Z", "to": "2027-01-01T00:00:00Z"}) == [
        "INV-2026-000001",
        "CN-2026-000001",
        "INV-2026-000002",
    ]
    naive = await client.get(
        "/api/v1/invoices",
        params={"from": "2026-03-05T00:00:00", "to": "2026-03-12T00:00:00"},
        headers=business.headers,
    )
    assert naive.status_code == 422, naive.text


async def test_invoice_html_is_printable_and_escapes_user_text(
    client: Client, owner_engine: AsyncEngine, sessions: Sessions
) -> None:
    business, issued = await business_with_invoice(
        client,
        owner_engine,
        sessions,
        currency="KWD",
        customer_name=SCRIPT,
        business_name="Salon <Noor> & Sons",
    )

    response = await client.get(f"/api/v1/invoices/{issued.id}.html", headers=business.headers)

    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/html")
    assert "script-src" not in response.headers["content-security-policy"]
    assert "default-src 'none'" in response.headers["content-security-policy"]
    page = response.text
    assert "<script" not in page
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in page
    assert "Salon &lt;Noor&gt; &amp; Sons" in page
    assert "Oil &amp; &lt;b&gt;" in page
    assert "INV-2026-000001" in page
    assert ">2026-03-11</time>" in page  # the tenant's date, not UTC's 2026-03-10
    assert "12.345 KWD" in page and "14.845 KWD" in page  # KWD has three decimals


async def test_credit_note_html_references_its_invoice(
    client: Client, owner_engine: AsyncEngine, sessions: Sessions
) -> None:
    business = await sign_up(client, currency="JPY", timezone="Asia/Tokyo")
    shop = await make_shop(owner_engine, business.tenant_id, currency="JPY")
    paid = await make_paid(owner_engine, shop, unit_price_minor=5_000)
    await invoice(sessions, business.tenant_id, paid.payment_id)
    note = await credit(
        sessions, business.tenant_id, await make_refund(owner_engine, shop, paid, 1_200)
    )

    response = await client.get(f"/api/v1/invoices/{note.id}.html", headers=business.headers)

    assert response.status_code == 200, response.text
    assert "Credit note" in response.text
    assert "Credits invoice INV-2026-000001" in response.text
    assert "1200 JPY" in response.text


async def test_settings_set_the_tax_of_invoices_issued_afterwards(
    client: Client, owner_engine: AsyncEngine, sessions: Sessions
) -> None:
    business = await sign_up(client)
    default = await client.get("/api/v1/settings/invoicing", headers=business.headers)
    assert default.json() == {"tax_rate_bps": 0, "tax_label": "VAT", "footer": None}

    response = await client.put(
        "/api/v1/settings/invoicing",
        headers=business.headers,
        json={"tax_rate_bps": 1_400, "tax_label": "VAT <EG>", "footer": "Tax ID 123"},
    )
    assert response.status_code == 200, response.text
    shop = await make_shop(owner_engine, business.tenant_id)
    paid = await make_paid(owner_engine, shop, unit_price_minor=11_400)
    issued = await invoice(sessions, business.tenant_id, paid.payment_id)

    assert (issued.tax.amount_minor, issued.subtotal.amount_minor) == (1_400, 10_000)
    assert (issued.tax_label, issued.footer) == ("VAT <EG>", "Tax ID 123")
    page = await client.get(f"/api/v1/invoices/{issued.id}.html", headers=business.headers)
    assert "VAT &lt;EG&gt; 14%" in page.text and "Tax ID 123" in page.text
    for bad in ({"tax_rate_bps": 10_001}, {"tax_rate_bps": -1}, {"tax_rate_bps": 5, "x": 1}):
        refused = await client.put("/api/v1/settings/invoicing", headers=business.headers, json=bad)
        assert refused.status_code == 422, refused.text
    kept = await client.get("/api/v1/settings/invoicing", headers=business.headers)
    assert kept.json()["tax_rate_bps"] == 1_400


@pytest.mark.parametrize("role", ["admin", "staff"])
async def test_staff_are_refused_every_invoice_route_and_admins_allowed(
    client: Client, owner_engine: AsyncEngine, sessions: Sessions, role: str
) -> None:
    business, issued = await business_with_invoice(client, owner_engine, sessions)
    headers = {"Authorization": f"Bearer {await add_user(client, business, role)}"}
    calls = [
        ("GET", f"/api/v1/invoices/{issued.id}", None),
        ("GET", f"/api/v1/invoices/{issued.id}.html", None),
        ("GET", "/api/v1/invoices?from=2026-01-01T00:00:00Z&to=2027-01-01T00:00:00Z", None),
        ("GET", "/api/v1/settings/invoicing", None),
        ("PUT", "/api/v1/settings/invoicing", {"tax_rate_bps": 100}),
    ]
    for method, path, body in calls:
        response = await client.request(method, path, headers=headers, json=body)
        if role == "staff":
            assert response.status_code == 403, (path, response.text)
            assert response.json()["type"] == "forbidden"
        else:
            assert response.status_code == 200, (path, response.text)
    anonymous = await client.get(f"/api/v1/invoices/{issued.id}")
    assert anonymous.status_code == 401


async def test_another_tenant_cannot_read_or_list_an_invoice(
    client: Client, owner_engine: AsyncEngine, sessions: Sessions
) -> None:
    _, issued = await business_with_invoice(client, owner_engine, sessions)
    other, own = await business_with_invoice(client, owner_engine, sessions)

    for path in (f"/api/v1/invoices/{issued.id}", f"/api/v1/invoices/{issued.id}.html"):
        response = await client.get(path, headers=other.headers)
        assert response.status_code == 404, response.text
        assert response.json()["type"] == "not_found"
    listed = await client.get(
        "/api/v1/invoices",
        params={"from": "2026-01-01T00:00:00Z", "to": "2027-01-01T00:00:00Z"},
        headers=other.headers,
    )
    assert [item["id"] for item in listed.json()] == [str(own.id)]
    for garbage in ("nope", f"{uuid.uuid4()}.pdf", ".html"):
        missing = await client.get(f"/api/v1/invoices/{garbage}", headers=other.headers)
        assert missing.status_code == 404, missing.text
