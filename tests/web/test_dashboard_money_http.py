"""The dashboard's money pages over HTTP: collected vs earned read from the ledger after a
capture, a completion and refunds; the payout run, the bank sheet (the API's CSV, byte for
byte) and mark-paid; discrepancy resolve and outbox retry with CSRF; staff kept out."""

from __future__ import annotations

import re
import uuid
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.factories import PASSWORD
from tests.web.dashboard.support import hidden_value, sign_in
from tests.web.support import CAIRO, Client, Site, at, make_site, tomorrow_local

MONEY_PAGES = (
    "revenue",
    "payouts",
    "payouts/export.csv",
    "reconciliation",
    "ledger",
    "outbox",
    "invoices",
)


async def book_and_pay(client: Client, site: Site, service: str, resource: str, hour: int) -> str:
    response = await client.post(
        "/api/v1/bookings",
        headers=site.business.headers,
        json={
            "service_id": site.services[service],
            "branch_id": site.branch_id,
            "resource_id": site.resources[resource],
            "start": at(tomorrow_local(), hour).isoformat(),
            "customer": {"name": "Sara Adel", "phone": "+201001112223"},
            "payment": {"provider": "sandbox"},
        },
    )
    assert response.status_code == 201, response.text
    booking = response.json()
    checkout = re.search(r"(/sandbox/pay/[^?#]+)", booking["payment"]["checkout_url"])
    assert checkout, booking
    paid = await client.post(checkout.group(1) + "/pay", follow_redirects=False)
    assert paid.status_code == 303, paid.text
    state = await client.get(f"/api/v1/bookings/{booking['id']}", headers=site.business.headers)
    assert state.json()["status"] == "confirmed"
    return str(booking["id"])


async def api(client: Client, site: Site, path: str, body: dict[str, Any] | None = None) -> Any:
    response = await client.post(path, headers=site.business.headers, json=body or {})
    assert response.status_code in (200, 201), response.text
    return response.json()


async def ledger_figures(client: Client, site: Site) -> dict[str, int]:
    """Collected and earned, summed here from the ledger API's postings."""
    today = datetime.now(UTC).astimezone(CAIRO).date().isoformat()
    response = await client.get(
        "/api/v1/ledger/entries",
        params={"from": today, "to": today},
        headers=site.business.headers,
    )
    entries = response.json()
    assert "x-next-cursor" not in response.headers
    figures: dict[str, int] = defaultdict(int)
    for entry in entries:
        for posting in entry["postings"]:
            code, amount = posting["account_code"], posting["amount_minor"]
            if entry["reason"] == "payment" and code == "receivable:customer":
                figures["collected"] -= amount
            if entry["reason"] == "refund" and code.startswith("clearing:"):
                figures["collected"] += amount
            if code.startswith("revenue:"):
                figures["earned"] -= amount
    return figures


def today_row(html: str) -> tuple[int, int]:
    """The last row of the over-time table (today): collected and earned data-values."""
    table = html.split('data-chart="money-time-egp"')[1].split("</table>")[0]
    rows = re.findall(r"<tr>(.*?)</tr>", table, re.S)
    body = [r for r in rows if "data-value" in r]
    values = re.findall(r'data-value="(-?\d+)"', body[-1])
    return int(values[0]), int(values[1])


async def test_collected_and_earned_match_the_ledger_after_capture_completion_and_refunds(
    client: Client,
) -> None:
    client.cookies.clear()
    site = await make_site(client, name="Nile Hair & Beauty")
    haircut = await book_and_pay(client, site, "haircut", "mona", 10)
    yoga = await book_and_pay(client, site, "yoga", "studio", 12)
    await sign_in(client, site.business.email)

    page = await client.get("/dashboard/money/revenue")
    assert page.status_code == 200
    assert today_row(page.text) == (35_000 + 20_000, 0)  # paid, nothing completed yet

    await api(client, site, f"/api/v1/bookings/{haircut}/check-in")
    await api(client, site, f"/api/v1/bookings/{haircut}/complete")
    await api(client, site, f"/api/v1/bookings/{haircut}/refunds", {"amount_minor": 5_000})
    await api(client, site, f"/api/v1/bookings/{yoga}/refunds", {"amount_minor": 8_000})

    page = await client.get("/dashboard/money/revenue?period=day&by=service")
    collected, earned = today_row(page.text)
    assert (collected, earned) == (35_000 + 20_000 - 5_000 - 8_000, 35_000 - 5_000)
    assert await ledger_figures(client, site) == {"collected": collected, "earned": earned}
    # By service: the yoga class is collected (less its refund) but not earned yet.
    by = page.text.split('data-chart="money-by-egp"')[1].split("</table>")[0]
    rows = {
        name: [int(v) for v in re.findall(r'data-value="(-?\d+)"', row)]
        for name, row in re.findall(r'<th scope="row">([^<]+)</th>(.*?)</tr>', by, re.S)
    }
    assert rows["Haircut"] == [30_000, 30_000]
    assert rows["Yoga class"] == [12_000, 0]
    # The chart draws the same numbers as the table: one bar per figure.
    svg = page.text.split('id="money-time-egp"')[1].split("</svg>")[0]
    bars = [int(v) for v in re.findall(r'<rect class="s\d"[^>]*data-value="(-?\d+)"', svg)]
    assert bars[-2:] == [collected, earned]
    assert "Money collected is what customers paid, less refunds" in page.text


async def test_invoices_list_and_open_with_their_lines(client: Client) -> None:
    client.cookies.clear()
    site = await make_site(client)
    await book_and_pay(client, site, "haircut", "mona", 10)
    await sign_in(client, site.business.email)

    listing = await client.get("/dashboard/money/invoices?kind=invoice")
    assert listing.status_code == 200
    links = re.findall(r'href="(/dashboard/money/invoices/[0-9a-f-]+)">(INV-[^<]+)<', listing.text)
    [(href, number)] = links
    assert (
        "No invoices in this period."
        in (await client.get("/dashboard/money/invoices?kind=credit_note")).text
    )
    invoice = await client.get(href)
    assert invoice.status_code == 200
    assert f"Invoice {number}" in invoice.text and "Sara Adel" in invoice.text
    assert "Haircut" in invoice.text and "EGP350.00" in invoice.text
    assert (await client.get(f"/dashboard/money/invoices/{uuid.uuid4()}")).status_code == 404


async def test_payout_run_csv_and_mark_paid_from_the_dashboard(client: Client) -> None:
    client.cookies.clear()
    site = await make_site(client)
    patched = await client.patch(
        f"/api/v1/resources/{site.resources['mona']}",
        headers=site.business.headers,
        json={"commission_bps": 1_000},
    )
    assert patched.status_code == 200, patched.text
    haircut = await book_and_pay(client, site, "haircut", "mona", 10)
    await api(client, site, f"/api/v1/bookings/{haircut}/check-in")
    await api(client, site, f"/api/v1/bookings/{haircut}/complete")
    csrf = await sign_in(client, site.business.email)
    today = datetime.now(UTC).astimezone(CAIRO).date()

    refused = await client.post(
        "/dashboard/money/payouts/run",
        data={
            "period_start": today.isoformat(),
            "period_end": (today + timedelta(days=1)).isoformat(),
            "minimum": "1",
        },
    )
    assert refused.status_code == 403  # no CSRF token
    bad = await client.post(
        "/dashboard/money/payouts/run",
        data={"_csrf": csrf, "period_start": today.isoformat(), "period_end": "x", "minimum": "1"},
    )
    assert bad.status_code == 422 and "The period must end after it starts." in bad.text
    ran = await client.post(
        "/dashboard/money/payouts/run",
        data={
            "_csrf": csrf,
            "period_start": today.isoformat(),
            "period_end": (today + timedelta(days=1)).isoformat(),
            "minimum": "1",
        },
        follow_redirects=False,
    )
    assert ran.status_code == 303 and ran.headers["location"].endswith("?ran=1")

    sheet = await client.get("/dashboard/money/payouts/export.csv")
    assert sheet.status_code == 200
    assert sheet.headers["content-type"].startswith("text/csv")
    assert "attachment" in sheet.headers["content-disposition"]
    from_api = await client.get("/api/v1/payouts/export.csv", headers=site.business.headers)
    assert sheet.text == from_api.text
    lines = sheet.text.strip().split("\r\n")
    assert lines[0] == "payout_id,resource_id,amount,currency,period_start,period_end,created_at"
    [row] = lines[1:]
    payout_id, resource_id, amount, currency = row.split(",")[:4]
    assert (resource_id, amount, currency) == (site.resources["mona"], "35.00", "EGP")

    listing = await client.get("/dashboard/money/payouts")
    assert "Mark paid" in listing.text
    paid = await client.post(
        f"/dashboard/money/payouts/{payout_id}/mark-paid",
        data={"_csrf": hidden_value(listing.text, "_csrf"), "reference": "TRX-2231"},
        follow_redirects=False,
    )
    assert paid.status_code == 303
    payout = (await client.get("/api/v1/payouts", headers=site.business.headers)).json()[0]
    assert payout["status"] == "paid"
    after = await client.get("/dashboard/money/payouts/export.csv")
    assert after.text.strip().split("\r\n") == [lines[0]]  # nothing left to transfer
    again = await client.post(
        f"/dashboard/money/payouts/{uuid.uuid4()}/mark-paid",
        data={"_csrf": csrf},
    )
    assert again.status_code == 404


async def test_discrepancy_resolve_and_dead_outbox_retry(
    client: Client, owner_engine: AsyncEngine
) -> None:
    client.cookies.clear()
    site = await make_site(client)
    tenant = site.business.tenant_id
    run_id, found_id, dead_id = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    start = datetime.now(UTC) - timedelta(days=1)
    async with owner_engine.begin() as connection:
        await connection.execute(
            text(
                "INSERT INTO reconciliation_runs (tenant_id, id, provider, run_date, status, "
                "window_start, window_end, matched, discrepancies, started_at, finished_at) "
                "VALUES (:t, :id, 'stripe', :d, 'completed', :ws, :we, 4, 1, :ws, :we)"
            ),
            {"t": tenant, "id": run_id, "d": start.date(), "ws": start, "we": start},
        )
        await connection.execute(
            text(
                "INSERT INTO reconciliation_discrepancies (tenant_id, id, run_id, provider, "
                "kind, provider_ref, status) VALUES (:t, :id, :run, 'stripe', "
                "'amount_mismatch', 'txn_4411', 'open')"
            ),
            {"t": tenant, "id": found_id, "run": run_id},
        )
        await connection.execute(
            text(
                "INSERT INTO outbox (tenant_id, id, aggregate_type, aggregate_id, topic, "
                "payload, status, attempts, last_error) VALUES (:t, :id, 'booking', :agg, "
                "'booking.placed', '{}', 'dead', 8, 'smtp: connection refused')"
            ),
            {"t": tenant, "id": dead_id, "agg": uuid.uuid4()},
        )
    csrf = await sign_in(client, site.business.email)

    page = await client.get("/dashboard/money/reconciliation")
    assert "txn_4411" in page.text
    empty = await client.post(
        f"/dashboard/money/reconciliation/{found_id}/resolve", data={"_csrf": csrf, "note": ""}
    )
    assert empty.status_code == 422
    done = await client.post(
        f"/dashboard/money/reconciliation/{found_id}/resolve",
        data={"_csrf": csrf, "note": "Stripe fee corrected by hand"},
        follow_redirects=False,
    )
    assert done.status_code == 303
    twice = await client.post(
        f"/dashboard/money/reconciliation/{found_id}/resolve",
        data={"_csrf": csrf, "note": "again"},
    )
    assert twice.status_code == 409
    resolved = await client.get("/dashboard/money/reconciliation?status=resolved")
    assert "Stripe fee corrected by hand" in resolved.text

    outbox = await client.get("/dashboard/money/outbox")
    assert "smtp: connection refused" in outbox.text
    retried = await client.post(
        f"/dashboard/money/outbox/{dead_id}/retry", data={"_csrf": csrf}, follow_redirects=False
    )
    assert retried.status_code == 303
    async with owner_engine.connect() as connection:
        status = (
            await connection.execute(
                text("SELECT status, attempts FROM outbox WHERE tenant_id = :t AND id = :id"),
                {"t": tenant, "id": dead_id},
            )
        ).one()
    assert tuple(status) == ("pending", 0)
    assert "smtp: connection refused" not in (await client.get("/dashboard/money/outbox")).text


async def test_staff_get_403_on_every_money_page_and_action(client: Client) -> None:
    client.cookies.clear()
    site = await make_site(client)
    email = f"staff-{uuid.uuid4().hex[:8]}@example.com"
    await api(
        client, site, "/api/v1/users", {"email": email, "password": PASSWORD, "role": "staff"}
    )
    csrf = await sign_in(client, email)
    calendar = await client.get("/dashboard/calendar")
    assert "/dashboard/money/" not in calendar.text
    for path in MONEY_PAGES:
        response = await client.get(f"/dashboard/money/{path}")
        assert response.status_code == 403, path
    posts = (
        "payouts/run",
        f"payouts/{uuid.uuid4()}/mark-paid",
        f"reconciliation/{uuid.uuid4()}/resolve",
        f"outbox/{uuid.uuid4()}/retry",
    )
    for path in posts:
        response = await client.post(f"/dashboard/money/{path}", data={"_csrf": csrf})
        assert response.status_code == 403, path
    assert (await client.get(f"/dashboard/money/invoices/{uuid.uuid4()}")).status_code == 403


async def test_bad_period_input_is_corrected_not_a_server_error(client: Client) -> None:
    client.cookies.clear()
    site = await make_site(client)
    await sign_in(client, site.business.email)
    for query in (
        "?from=2026-05-01&to=2026-04-01",
        "?period=year&by=customer",
        "?from=2020-01-01&to=2026-01-01&period=day",
    ):
        response = await client.get(f"/dashboard/money/revenue{query}")
        assert response.status_code == 200, query
    bad = await client.get("/dashboard/money/revenue?from=not-a-date")
    assert bad.status_code == 400
    assert (await client.get("/dashboard/money/ledger?cursor=garbage")).status_code in (400, 422)


def test_a_chart_escapes_names_and_draws_negative_bars_below_the_axis() -> None:
    from datetime import date

    from app.edge.web.dashboard import charts
    from app.presentation.formatting import Formatter
    from app.presentation.i18n import translator

    chart = charts.Chart(
        id="c",
        categories=["s1", date(2026, 3, 2)],
        series=[charts.Series("Money collected", [35_000, -5_000])],
        currency="EGP",
        labels={"s1": '<script>alert("x")</script>'},
    )
    words = translator("en")
    svg = str(charts.draw(chart, Formatter(words.locale), words.gettext, title="T <b>", desc="D"))

    assert "<script>" not in svg and "&lt;script&gt;" in svg
    assert '<title id="c-t">T &lt;b&gt;</title>' in svg
    bars = re.findall(r'<rect[^>]*y="([\d.]+)" width="[\d.]+" height="([\d.]+)"', svg)
    axis = float(re.search(r'<line class="axis"[^>]*y1="([\d.]+)"', svg).group(1))  # type: ignore[union-attr]
    (up_y, up_h), (down_y, down_h) = ((float(a), float(b)) for a, b in bars)
    assert abs(up_y + up_h - axis) < 0.01  # the positive bar stands on the axis
    assert abs(down_y - axis) < 0.01  # the negative one hangs from it
    assert abs(up_h / down_h - 7) < 0.01  # 35,000 : 5,000
    assert "EGP350.00" in svg and "-EGP50.00" in svg  # each bar's <title> reads its amount
