"""The dashboard's booking page: its ledger entries, invoice and timeline, what each action
would do to the money before it is taken (and that the action then does exactly that), and a
recurring series cancelled one at a time or with the rest."""

from __future__ import annotations

import re
import uuid
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncEngine

from tests.checkout.support import balance
from tests.checkout.test_money_path import pay_on_sandbox_page
from tests.web.dashboard.support import sign_in
from tests.web.support import Client, Site, at, make_site, tomorrow_local


async def _book(client: Client, site: Site, provider: str, **extra: object) -> dict[str, object]:
    response = await client.post(
        "/api/v1/bookings",
        headers=site.business.headers,
        json={
            "service_id": site.services["haircut"],
            "branch_id": site.branch_id,
            "resource_id": site.resources["mona"],
            "start": at(tomorrow_local() + timedelta(days=2), 12).isoformat(),
            "customer": {"name": "Layla Hassan", "phone": "+201001112223"},
            "payment": {"provider": provider},
            **extra,
        },
    )
    assert response.status_code == 201, response.text
    body: dict[str, object] = response.json()
    return body


def _minor(text: str) -> int:
    """'EGP 350.00' -> 35000 (the page formats with two decimals for EGP)."""
    return int(re.sub(r"\D", "", text))


async def test_a_paid_booking_shows_its_money_and_cancelling_refunds_what_the_page_said(
    client: Client, owner_engine: AsyncEngine
) -> None:
    site = await make_site(client)
    booking = await _book(client, site, "sandbox")
    payment = booking["payment"]
    assert isinstance(payment, dict)
    await pay_on_sandbox_page(client, str(payment["checkout_url"]))
    tenant = uuid.UUID(str(site.business.tenant_id))
    assert await balance(owner_engine, tenant, "clearing:sandbox") == 35_000

    csrf = await sign_in(client, site.business.email)
    page = await client.get(f"/dashboard/bookings/{booking['id']}")
    assert page.status_code == 200
    html = page.text
    assert "Ledger entries of this booking" in html
    assert "<code>receivable:customer</code>" in html and "<code>clearing:sandbox</code>" in html
    assert re.search(r"Invoice <strong>INV-\d{4}-\d{6}</strong>", html), "no invoice shown"
    assert len(re.findall(r'<li><time datetime="', html)) >= 2  # placed, then paid
    said = re.search(r"Refunds (.+?) and keeps (.+?) under the cancellation policy", html)
    assert said is not None
    refund, kept = _minor(said.group(1)), _minor(said.group(2))
    assert refund + kept == 35_000 and refund == 35_000  # three days ahead: the 100 % tier

    cancelled = await client.post(
        f"/dashboard/bookings/{booking['id']}/cancel",
        data={"_csrf": csrf},
        follow_redirects=False,
    )
    assert cancelled.status_code == 303
    assert await balance(owner_engine, tenant, "clearing:sandbox") == 35_000 - refund
    after = await client.get(f"/dashboard/bookings/{booking['id']}")
    assert "Cancelled" in after.text and "<code>deferred_revenue</code>" in after.text
    assert "Refunds " not in after.text  # no cancel action on a cancelled booking


async def test_a_series_is_shown_as_one_and_can_be_cancelled_with_the_rest(
    client: Client,
) -> None:
    site = await make_site(client)
    first = await _book(client, site, "cash", recurrence={"freq": "weekly", "count": 3})
    occurrences = first.get("occurrences") or []
    csrf = await sign_in(client, site.business.email)
    page = await client.get(f"/dashboard/bookings/{first['id']}")
    assert "Repeats: 1 of 3" in page.text
    assert "Cancel this and the rest of the series" in page.text
    assert "2 later bookings of the series are cancelled too" in page.text

    done = await client.post(
        f"/dashboard/bookings/{first['id']}/cancel",
        data={"_csrf": csrf, "scope": "series"},
        follow_redirects=False,
    )
    assert done.status_code == 303
    listed = await client.get(
        "/api/v1/bookings",
        headers=site.business.headers,
        params={"from": str(tomorrow_local()), "to": str(tomorrow_local() + timedelta(days=30))},
    )
    statuses = [b["status"] for b in listed.json()]
    assert statuses == ["cancelled", "cancelled", "cancelled"], (statuses, occurrences)


async def test_cancel_the_rest_on_a_single_booking_is_refused_on_the_page(client: Client) -> None:
    site = await make_site(client)
    single = await _book(client, site, "cash")
    csrf = await sign_in(client, site.business.email)
    refused = await client.post(
        f"/dashboard/bookings/{single['id']}/cancel", data={"_csrf": csrf, "scope": "series"}
    )
    assert refused.status_code == 409
    assert "There is a problem" in refused.text
    still = await client.get(f"/api/v1/bookings/{single['id']}", headers=site.business.headers)
    assert still.json()["status"] == "confirmed"


async def test_an_owner_refunds_part_of_a_paid_booking_from_its_page(
    client: Client, owner_engine: AsyncEngine
) -> None:
    site = await make_site(client)
    booking = await _book(client, site, "sandbox")
    payment = booking["payment"]
    assert isinstance(payment, dict)
    await pay_on_sandbox_page(client, str(payment["checkout_url"]))
    tenant = uuid.UUID(str(site.business.tenant_id))
    csrf = await sign_in(client, site.business.email)
    page = await client.get(f"/dashboard/bookings/{booking['id']}")
    assert 'action="/dashboard/bookings/' in page.text and "Amount to refund" in page.text

    bad = await client.post(
        f"/dashboard/bookings/{booking['id']}/refund", data={"_csrf": csrf, "amount": "ten"}
    )
    assert bad.status_code == 422 and "Enter the amount to refund" in bad.text
    assert await balance(owner_engine, tenant, "clearing:sandbox") == 35_000

    done = await client.post(
        f"/dashboard/bookings/{booking['id']}/refund",
        data={"_csrf": csrf, "amount": "100.50", "reason": "late start"},
        follow_redirects=False,
    )
    assert done.status_code == 303, done.text
    assert await balance(owner_engine, tenant, "clearing:sandbox") == 35_000 - 10_050
    too_much = await client.post(
        f"/dashboard/bookings/{booking['id']}/refund", data={"_csrf": csrf, "amount": "1000"}
    )
    assert too_much.status_code in (409, 422) and "There is a problem" in too_much.text
    assert await balance(owner_engine, tenant, "clearing:sandbox") == 35_000 - 10_050
