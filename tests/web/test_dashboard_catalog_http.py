"""The catalog and settings pages over HTTP: owners and admins only (staff 403 on every URL,
no links), CSRF on every form, bad input shown next to its field with nothing changed, and
each form doing what the JSON API's use case does."""

from __future__ import annotations

import re
from typing import Any

from tests.factories import PASSWORD
from tests.web.dashboard.support import sign_in
from tests.web.dashboard.test_session import add_member
from tests.web.support import Client, Site, make_site

PAGES = [
    "/dashboard/catalog",
    "/dashboard/catalog/branches",
    "/dashboard/catalog/branches/{branch}",
    "/dashboard/catalog/resources",
    "/dashboard/catalog/resources/new",
    "/dashboard/catalog/resources/{mona}",
    "/dashboard/catalog/resources/{mona}/hours",
    "/dashboard/catalog/services",
    "/dashboard/catalog/services/new",
    "/dashboard/catalog/services/new?policy=time_slot",
    "/dashboard/catalog/services/new?policy=nightly",
    "/dashboard/catalog/services/new?policy=interval",
    "/dashboard/catalog/services/{haircut}",
    "/dashboard/catalog/services/{cabin}",
    "/dashboard/catalog/services/{kayak}",
    "/dashboard/catalog/products",
    "/dashboard/catalog/products/{product}",
    "/dashboard/settings",
    "/dashboard/settings/providers",
    "/dashboard/settings/invoicing",
    "/dashboard/settings/users",
]
FORMS = [
    "/dashboard/catalog/branches",
    "/dashboard/catalog/branches/{branch}",
    "/dashboard/catalog/branches/{branch}/archive",
    "/dashboard/catalog/resources/new",
    "/dashboard/catalog/resources/{mona}",
    "/dashboard/catalog/resources/{mona}/archive",
    "/dashboard/catalog/resources/{mona}/hours",
    "/dashboard/catalog/resources/{mona}/time-off",
    "/dashboard/catalog/services/new?policy=time_slot",
    "/dashboard/catalog/services/{haircut}",
    "/dashboard/catalog/services/{haircut}/archive",
    "/dashboard/catalog/products",
    "/dashboard/catalog/products/{product}",
    "/dashboard/catalog/products/{product}/stock",
    "/dashboard/catalog/products/{product}/archive",
    "/dashboard/settings/providers",
    "/dashboard/settings/invoicing",
    "/dashboard/settings/users",
]


def _url(template: str, site: Site) -> str:
    return template.format(
        branch=site.branch_id,
        product=site.product_id,
        mona=site.resources["mona"],
        **site.services,
    )


async def api_get(client: Client, site: Site, path: str) -> Any:
    response = await client.get(path, headers=site.business.headers)
    assert response.status_code == 200, response.text
    return response.json()


def field_error_text(html: str, field: str) -> str:
    found = re.search(rf'<p class="error" id="{re.escape(field)}-error">(.*?)</p>', html, re.S)
    assert found, f"no error shown next to {field}"
    # The visually hidden "Error:" prefix is for screen readers; the message follows it.
    text = re.sub(r'<span class="vh">[^<]*</span>', "", found.group(1))
    return re.sub(r"<[^>]+>", "", text).strip()


async def test_staff_get_403_on_every_catalog_and_settings_url_and_see_no_links(
    client: Client,
) -> None:
    site = await make_site(client)
    staff, _ = await add_member(client, site.business, "staff")
    csrf = await sign_in(client, staff, PASSWORD)
    calendar = await client.get("/dashboard/calendar")
    assert "/dashboard/catalog" not in calendar.text
    assert "/dashboard/settings" not in calendar.text
    for template in PAGES:
        response = await client.get(_url(template, site), follow_redirects=False)
        assert response.status_code == 403, template
        assert "Your role does not give access to this page" in response.text
    before = await api_get(client, site, "/api/v1/branches?archived=all")
    for template in FORMS:
        response = await client.post(
            _url(template, site), data={"_csrf": csrf, "name": "Staff was here"}
        )
        assert response.status_code == 403, template
    assert await api_get(client, site, "/api/v1/branches?archived=all") == before


async def test_admins_see_the_pages_and_the_navigation(client: Client) -> None:
    site = await make_site(client)
    admin, _ = await add_member(client, site.business, "admin")
    await sign_in(client, admin, PASSWORD)
    calendar = await client.get("/dashboard/calendar")
    assert 'href="/dashboard/catalog"' in calendar.text
    assert 'href="/dashboard/settings"' in calendar.text
    for template in PAGES:
        response = await client.get(_url(template, site))
        assert response.status_code == 200, (template, response.text[:2000])
        assert response.headers["cache-control"] == "no-store"


async def test_every_form_refuses_a_post_without_the_csrf_token_and_changes_nothing(
    client: Client,
) -> None:
    site = await make_site(client)
    csrf = await sign_in(client, site.business.email)
    before = [
        await api_get(client, site, f"/api/v1/{kind}?archived=all")
        for kind in ("branches", "resources", "services", "products")
    ]
    for template in FORMS:
        for token in (None, "forged" + csrf[6:]):
            data = {"name": "Forged", "timezone": "Africa/Cairo", "archived": "1"}
            if token is not None:
                data["_csrf"] = token
            response = await client.post(_url(template, site), data=data)
            assert response.status_code == 403, template
            assert "This form has expired" in response.text
    after = [
        await api_get(client, site, f"/api/v1/{kind}?archived=all")
        for kind in ("branches", "resources", "services", "products")
    ]
    assert after == before


async def test_a_branch_is_created_edited_and_archived_and_a_bad_timezone_changes_nothing(
    client: Client,
) -> None:
    site = await make_site(client)
    csrf = await sign_in(client, site.business.email)
    bad = await client.post(
        "/dashboard/catalog/branches",
        data={"_csrf": csrf, "name": "Maadi", "timezone": "Mars/Olympus"},
    )
    assert bad.status_code == 422
    assert field_error_text(bad.text, "timezone").startswith("Enter a timezone")
    assert 'value="Maadi"' in bad.text  # what was typed is kept
    assert len(await api_get(client, site, "/api/v1/branches?archived=all")) == 1
    created = await client.post(
        "/dashboard/catalog/branches",
        data={
            "_csrf": csrf,
            "name": "Maadi",
            "timezone": "Africa/Cairo",
            "address": "9 Road 9",
        },
        follow_redirects=False,
    )
    assert created.status_code == 303
    maadi = next(b for b in await api_get(client, site, "/api/v1/branches") if b["name"] == "Maadi")
    assert maadi["address"] == "9 Road 9"
    edited = await client.post(
        f"/dashboard/catalog/branches/{maadi['id']}",
        data={"_csrf": csrf, "name": "Maadi Degla", "timezone": "Africa/Cairo", "address": ""},
        follow_redirects=False,
    )
    assert edited.status_code == 303
    archived = await client.post(
        f"/dashboard/catalog/branches/{maadi['id']}/archive",
        data={"_csrf": csrf, "archived": "1"},
        follow_redirects=False,
    )
    assert archived.status_code == 303
    found = await api_get(client, site, f"/api/v1/branches/{maadi['id']}")
    assert (found["name"], found.get("address"), found["archived"]) == ("Maadi Degla", None, True)


def _service_form(csrf: str, site: Site, **changes: str) -> dict[str, Any]:
    return {
        "_csrf": csrf,
        "name": "Beard trim",
        "price": "120.50",
        "duration_minutes": "30",
        "slot_step_minutes": "",
        "buffer_before_minutes": "",
        "buffer_after_minutes": "5",
        "min_notice_minutes": "60",
        "max_advance_days": "30",
        "resource_ids": [site.resources["mona"], site.resources["omar"]],
        f"branch_price-{site.branch_id}": "150",
        "tier_hours": ["24", "2", ""],
        "tier_refund": ["100", "50", ""],
        "no_show_fee_bps": "",
        "commission_bps": "40",
        "commission_fixed_minor": "",
        **changes,
    }


async def test_a_service_form_creates_what_the_api_would_and_a_bad_price_changes_nothing(
    client: Client,
) -> None:
    site = await make_site(client)
    csrf = await sign_in(client, site.business.email)
    before = await api_get(client, site, "/api/v1/services?archived=all")
    for price, shown in (("-5", "-5"), ("12,345.678", "12,345.678"), ("", "")):
        bad = await client.post(
            "/dashboard/catalog/services/new?policy=time_slot",
            data=_service_form(csrf, site, price=price),
        )
        assert bad.status_code == 422, price
        assert field_error_text(bad.text, "price") == "Enter a price of zero or more, like 350.00."
        assert f'id="price" name="price" value="{shown}"' in bad.text
    assert await api_get(client, site, "/api/v1/services?archived=all") == before
    both = await client.post(
        "/dashboard/catalog/services/new?policy=time_slot",
        data=_service_form(csrf, site, commission_fixed_minor="10", tier_refund=["150", "50", ""]),
    )
    assert both.status_code == 422
    assert field_error_text(both.text, "commission_fixed_minor").startswith("Enter a fixed")
    assert field_error_text(both.text, "tiers").startswith("Each tier needs")
    assert await api_get(client, site, "/api/v1/services?archived=all") == before
    created = await client.post(
        "/dashboard/catalog/services/new?policy=time_slot",
        data=_service_form(csrf, site),
        follow_redirects=False,
    )
    assert created.status_code == 303, created.text
    service_id = created.headers["location"].split("/")[-1].split("?")[0]
    found = await api_get(client, site, f"/api/v1/services/{service_id}")
    assert found["price"] == {"amount_minor": 12_050, "currency": "EGP"}
    assert found["duration_minutes"] == 30 and found["slot_step_minutes"] == 30
    assert found["buffer_after_minutes"] == 5 and found["min_notice_minutes"] == 60
    assert found["branch_prices"] == [
        {"branch_id": site.branch_id, "amount_minor": 15_000, "pricing": "fixed"}
    ]
    assert found["cancellation_policy"]["tiers"] == [
        {"hours_before": 24, "refund_bps": 10_000},
        {"hours_before": 2, "refund_bps": 5_000},
    ]
    assert found["commission_bps"] == 4_000
    page = await client.get(f"/dashboard/catalog/services/{service_id}")
    assert 'id="price" name="price" value="120.50"' in page.text
    assert 'name="tier_refund" value="50"' in page.text


async def test_nightly_and_interval_services_are_edited_through_their_own_forms(
    client: Client,
) -> None:
    site = await make_site(client)
    csrf = await sign_in(client, site.business.email)
    cabin = site.services["cabin"]
    saved = await client.post(
        f"/dashboard/catalog/services/{cabin}",
        data={
            "_csrf": csrf,
            "name": "Cabin by the lake",
            "price": "1200",
            "check_in_time": "14:00",
            "check_out_time": "10:00",
            "min_nights": "1",
            "max_nights": "7",
            "resource_ids": site.resources["cabin"],
            "max_advance_days": "365",
        },
        follow_redirects=False,
    )
    assert saved.status_code == 303, saved.text
    found = await api_get(client, site, f"/api/v1/services/{cabin}")
    assert (found["check_in_time"], found["min_nights"], found["price"]["amount_minor"]) == (
        "14:00",
        1,
        120_000,
    )
    kayak = site.services["kayak"]
    refused = await client.post(
        f"/dashboard/catalog/services/{kayak}",
        data={
            "_csrf": csrf,
            "name": "Kayak rental",
            "price": "50",
            "slot_step_minutes": "30",
            "min_minutes": "45",
            "max_minutes": "180",
            "resource_ids": site.resources["kayaks"],
        },
    )
    assert refused.status_code == 422
    assert field_error_text(refused.text, "min_minutes").startswith("Enter the shortest rental")
    assert (await api_get(client, site, f"/api/v1/services/{kayak}"))["min_minutes"] == 60


async def test_the_hours_form_replaces_the_weekly_hours_and_dates_and_refuses_overlaps(
    client: Client,
) -> None:
    site = await make_site(client)
    csrf = await sign_in(client, site.business.email)
    mona = site.resources["mona"]
    url = f"/dashboard/catalog/resources/{mona}/hours"
    page = await client.get(url)
    # Monday 09-17 and one empty row (and the row template the script copies).
    assert 'id="start-0-0" name="start-0" value="09:00"' in page.text
    assert 'id="start-0-1" name="start-0" value=""' in page.text
    assert 'id="start-0-2"' not in page.text
    form: dict[str, Any] = {"_csrf": csrf}
    for day in range(7):
        form[f"start-{day}"], form[f"end-{day}"] = ["", ""], ["", ""]
    form["start-1"], form["end-1"] = ["10:00", "14:00", ""], ["12:00", "16:00", ""]
    form |= {"ov_date": ["2030-01-07", ""], "ov_kind": ["closed", "closed"]}
    form |= {"ov_start": ["", ""], "ov_end": ["", ""]}
    saved = await client.post(url, data=form, follow_redirects=False)
    assert saved.status_code == 303, saved.text
    detail = (await api_get(client, site, f"/api/v1/resources/{mona}"))["schedule"]
    assert [(w["weekday"], w["start"], w["end"]) for w in detail["weekly"]] == [
        (1, "10:00", "12:00"),
        (1, "14:00", "16:00"),
    ]
    assert detail["overrides"] == [
        {"date": "2030-01-07", "closed": True, "start": None, "end": None}
    ]
    overlap = dict(form, **{"start-1": ["10:00", "11:00"], "end-1": ["12:00", "13:00"]})
    refused = await client.post(url, data=overlap)
    assert refused.status_code == 422
    assert field_error_text(refused.text, "weekly").startswith("Some hours on the same day overlap")
    backwards = dict(form, **{"start-3": ["18:00"], "end-3": ["09:00"]})
    refused = await client.post(url, data=backwards)
    assert refused.status_code == 422
    assert field_error_text(refused.text, "end-3-0").startswith("Enter a time of day")
    after = (await api_get(client, site, f"/api/v1/resources/{mona}"))["schedule"]
    assert after == detail


async def test_time_off_is_added_in_the_branch_timezone_and_a_backwards_one_is_refused(
    client: Client,
) -> None:
    site = await make_site(client)
    csrf = await sign_in(client, site.business.email)
    mona = site.resources["mona"]
    url = f"/dashboard/catalog/resources/{mona}/time-off"
    refused = await client.post(
        url, data={"_csrf": csrf, "start": "2030-01-07T12:00", "end": "2030-01-07T11:00"}
    )
    assert refused.status_code == 422
    assert field_error_text(refused.text, "end").startswith("Enter when the time off ends")
    added = await client.post(
        url,
        data={
            "_csrf": csrf,
            "start": "2030-01-07T12:00",
            "end": "2030-01-07T13:30",
            "reason": "Dentist",
        },
        follow_redirects=False,
    )
    assert added.status_code == 303
    detail = (await api_get(client, site, f"/api/v1/resources/{mona}"))["schedule"]
    assert [(t["start"], t["end"], t["reason"]) for t in detail["time_off"]] == [
        ("2030-01-07T10:00:00Z", "2030-01-07T11:30:00Z", "Dentist")
    ]


async def test_stock_is_added_and_listed_and_taking_too_much_is_refused(client: Client) -> None:
    site = await make_site(client)
    csrf = await sign_in(client, site.business.email)
    url = f"/dashboard/catalog/products/{site.product_id}/stock"
    added = await client.post(
        url,
        data={"_csrf": csrf, "branch_id": site.branch_id, "delta": "12", "reason": "Delivery"},
        follow_redirects=False,
    )
    assert added.status_code == 303
    too_much = await client.post(
        url, data={"_csrf": csrf, "branch_id": site.branch_id, "delta": "-50", "reason": "Count"}
    )
    assert too_much.status_code == 409
    assert field_error_text(too_much.text, "delta") == "There is not that much in stock to take."
    page = await client.get(f"/dashboard/catalog/products/{site.product_id}")
    assert "Delivery" in page.text and "Opening stock" in page.text
    product = await api_get(client, site, f"/api/v1/products/{site.product_id}")
    assert product["stock"] == [{"branch_id": site.branch_id, "quantity": 17}]


async def test_another_business_items_are_not_found_and_not_changed(client: Client) -> None:
    ours = await make_site(client)
    theirs = await make_site(client)
    csrf = await sign_in(client, ours.business.email)
    mona = theirs.resources["mona"]
    before = await api_get(client, theirs, f"/api/v1/resources/{mona}")
    for path in (
        f"/dashboard/catalog/resources/{mona}",
        f"/dashboard/catalog/resources/{mona}/hours",
        f"/dashboard/catalog/services/{theirs.services['haircut']}",
        f"/dashboard/catalog/products/{theirs.product_id}",
        f"/dashboard/catalog/branches/{theirs.branch_id}",
    ):
        assert (await client.get(path)).status_code == 404, path
    for path, data in (
        (f"/dashboard/catalog/resources/{mona}/hours", {"start-0": "10:00", "end-0": "11:00"}),
        (f"/dashboard/catalog/resources/{mona}/archive", {"archived": "1"}),
        (f"/dashboard/catalog/resources/{mona}/time-off", {"start": "2030-01-07T10:00"}),
    ):
        response = await client.post(path, data={"_csrf": csrf, **data})
        assert response.status_code == 404, path
    assert await api_get(client, theirs, f"/api/v1/resources/{mona}") == before


async def test_a_resource_in_two_branches_gets_hours_per_branch(client: Client) -> None:
    site = await make_site(client)
    csrf = await sign_in(client, site.business.email)
    response = await client.post(
        "/api/v1/branches",
        headers=site.business.headers,
        json={"name": "Maadi", "timezone": "Africa/Cairo"},
    )
    maadi = response.json()["id"]
    mona = site.resources["mona"]
    response = await client.patch(
        f"/api/v1/resources/{mona}",
        headers=site.business.headers,
        json={"branch_ids": [site.branch_id, maadi]},
    )
    assert response.status_code == 200, response.text
    url = f"/dashboard/catalog/resources/{mona}/hours"
    page = await client.get(url)
    assert 'id="branch-0-0" name="branch-0"' in page.text
    form: dict[str, Any] = {"_csrf": csrf}
    form |= {"start-2": ["09:00", "", "15:00"], "end-2": ["13:00", "", "19:00"]}
    form["branch-2"] = [site.branch_id, site.branch_id, maadi]
    saved = await client.post(url, data=form, follow_redirects=False)
    assert saved.status_code == 303, saved.text
    weekly = (await api_get(client, site, f"/api/v1/resources/{mona}"))["schedule"]["weekly"]
    assert [(w["weekday"], w["start"], w["branch_id"]) for w in weekly] == [
        (2, "09:00", site.branch_id),
        (2, "15:00", maadi),
    ]
