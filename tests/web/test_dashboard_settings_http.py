"""The settings pages over HTTP: provider keys are write-only, invoicing terms and users are
changed by the API's own use cases and refused by its own rules, shown next to the field."""

from __future__ import annotations

import uuid

from tests.factories import PASSWORD
from tests.web.dashboard.support import sign_in
from tests.web.support import Client, make_site
from tests.web.test_dashboard_catalog_http import api_get, field_error_text


async def test_provider_secrets_are_write_only_and_shown_as_configured(client: Client) -> None:
    site = await make_site(client)
    csrf = await sign_in(client, site.business.email)
    secret = "sk_test_" + uuid.uuid4().hex
    saved = await client.post(
        "/dashboard/settings/providers",
        data={
            "_csrf": csrf,
            "enabled": ["cash", "stripe"],
            "cred-stripe-api_key": secret,
            "cred-kashier-api_key": "",
        },
        follow_redirects=False,
    )
    assert saved.status_code == 303
    page = await client.get("/dashboard/settings/providers")
    assert secret not in page.text and secret[-4:] not in page.text
    assert page.text.count("Configured") == 1
    # Its own Stripe account: where to point its Stripe webhook, as GET /settings/providers says.
    assert f"/webhooks/stripe/{site.business.tenant_id}</code>" in page.text
    settings = await api_get(client, site, "/api/v1/settings/providers")
    assert settings["enabled"] == ["stripe", "cash"]
    stripe = next(p for p in settings["providers"] if p["provider"] == "stripe")
    assert stripe["fields_set"] == ["api_key"]
    cleared = await client.post(
        "/dashboard/settings/providers",
        data={"_csrf": csrf, "enabled": ["cash"], "clear-stripe-api_key": "1"},
        follow_redirects=False,
    )
    assert cleared.status_code == 303
    settings = await api_get(client, site, "/api/v1/settings/providers")
    stripe = next(p for p in settings["providers"] if p["provider"] == "stripe")
    assert stripe["fields_set"] == [] and settings["enabled"] == ["cash"]


async def test_invoicing_terms_are_saved_and_a_bad_rate_is_refused(client: Client) -> None:
    site = await make_site(client)
    csrf = await sign_in(client, site.business.email)
    bad = await client.post(
        "/dashboard/settings/invoicing", data={"_csrf": csrf, "tax_rate_bps": "140"}
    )
    assert bad.status_code == 422
    assert field_error_text(bad.text, "tax_rate_bps").startswith("Enter a tax rate")
    saved = await client.post(
        "/dashboard/settings/invoicing",
        data={"_csrf": csrf, "tax_rate_bps": "14", "tax_label": "VAT", "footer": "Thank you"},
        follow_redirects=False,
    )
    assert saved.status_code == 303
    assert await api_get(client, site, "/api/v1/settings/invoicing") == {
        "tax_rate_bps": 1400,
        "tax_label": "VAT",
        "footer": "Thank you",
    }


async def test_users_are_added_given_roles_and_deactivated_under_the_api_rules(
    client: Client,
) -> None:
    site = await make_site(client)
    csrf = await sign_in(client, site.business.email)
    short = await client.post(
        "/dashboard/settings/users",
        data={"_csrf": csrf, "email": "new@example.com", "password": "short", "role": "staff"},
    )
    assert short.status_code == 422
    assert field_error_text(short.text, "password").startswith("Enter a first password")
    added = await client.post(
        "/dashboard/settings/users",
        data={
            "_csrf": csrf,
            "email": "new@example.com",
            "password": PASSWORD,
            "role": "staff",
            "resource_id": site.resources["mona"],
        },
        follow_redirects=False,
    )
    assert added.status_code == 303
    users = {u["email"]: u for u in await api_get(client, site, "/api/v1/users")}
    new = users["new@example.com"]
    assert (new["role"], new["resource_id"]) == ("staff", site.resources["mona"])
    promoted = await client.post(
        f"/dashboard/settings/users/{new['id']}",
        data={"_csrf": csrf, "role": "admin", "resource_id": ""},
        follow_redirects=False,
    )
    assert promoted.status_code == 303
    deactivated = await client.post(
        f"/dashboard/settings/users/{new['id']}/active",
        data={"_csrf": csrf, "active": "0"},
        follow_redirects=False,
    )
    assert deactivated.status_code == 303
    users = {u["email"]: u for u in await api_get(client, site, "/api/v1/users")}
    new = users["new@example.com"]
    assert (new["role"], new["resource_id"], new["active"]) == ("admin", None, False)
    me = users[site.business.email]
    refused = await client.post(
        f"/dashboard/settings/users/{me['id']}/active", data={"_csrf": csrf, "active": "0"}
    )
    assert refused.status_code == 409
    assert "You cannot deactivate your own account." in refused.text
    taken = await client.post(
        "/dashboard/settings/users",
        data={"_csrf": csrf, "email": "new@example.com", "password": PASSWORD, "role": "staff"},
    )
    assert taken.status_code == 422
    assert field_error_text(taken.text, "email").startswith("Someone in this business")
