"""The dashboard's "Notify me on this device" endpoints (session + CSRF, problem+json on bad
input) and the installable shell: manifest, service worker scope, offline page."""

from __future__ import annotations

import uuid

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.db import set_tenant
from tests.push.conftest import PushService, new_device
from tests.push.test_webpush import SUBSCRIPTIONS, subscriptions
from tests.web.dashboard.support import sign_in
from tests.web.support import Client, make_site


async def test_a_device_subscribes_once_per_endpoint_and_unsubscribes(
    client: Client, owner_engine: AsyncEngine, push_service: PushService
) -> None:
    site = await make_site(client)
    csrf = await sign_in(client, site.business.email)
    device = new_device(push_service, "phone")
    headers = {"X-CSRF-Token": csrf}

    assert (await client.post(SUBSCRIPTIONS, json=device.as_json())).status_code == 403
    for _ in range(2):
        response = await client.post(SUBSCRIPTIONS, json=device.as_json(), headers=headers)
        assert response.status_code == 201, response.text
    rows = await subscriptions(owner_engine)
    assert [(r.tenant_id, r.endpoint) for r in rows] == [(site.business.tenant_id, device.endpoint)]

    refused = await client.request("DELETE", SUBSCRIPTIONS, json={"endpoint": device.endpoint})
    assert refused.status_code == 403
    gone = await client.request(
        "DELETE", SUBSCRIPTIONS, json={"endpoint": device.endpoint}, headers=headers
    )
    assert gone.status_code == 204, gone.text
    assert await subscriptions(owner_engine) == []


async def test_bad_subscriptions_are_refused_with_problem_json(
    client: Client, owner_engine: AsyncEngine, push_service: PushService
) -> None:
    site = await make_site(client)
    headers = {"X-CSRF-Token": await sign_in(client, site.business.email)}
    good = new_device(push_service, "phone").as_json()
    bad = [
        {**good, "endpoint": "http://push.example.com/abc"},  # not https, not loopback
        {**good, "endpoint": "ftp://127.0.0.1/abc"},
        {**good, "keys": {"p256dh": "not base64!", "auth": good["keys"]["auth"]}},
        {**good, "keys": {"p256dh": good["keys"]["p256dh"][:40], "auth": good["keys"]["auth"]}},
        {**good, "keys": {"p256dh": good["keys"]["p256dh"], "auth": "AAAA"}},
        {"endpoint": good["endpoint"]},
        {**good, "endpoint": "https://push.example.com/" + "a" * 3000},
    ]
    for body in bad:
        response = await client.post(SUBSCRIPTIONS, json=body, headers=headers)
        assert 400 <= response.status_code < 500, (body, response.status_code)
        assert response.headers["content-type"].startswith("application/problem+json")
    assert await subscriptions(owner_engine) == []


async def test_signed_out_devices_cannot_subscribe(
    client: Client, push_service: PushService
) -> None:
    body = new_device(push_service, "phone").as_json()
    response = await client.post(SUBSCRIPTIONS, json=body, headers={"X-CSRF-Token": "x"})
    assert response.status_code in (401, 403)


async def test_the_dashboard_is_installable_with_a_scoped_service_worker(client: Client) -> None:
    site = await make_site(client)
    await sign_in(client, site.business.email)
    page = await client.get("/dashboard/calendar")
    assert '<link rel="manifest" href="/static/shell/manifest.webmanifest">' in page.text
    assert "Notify me on this device" in page.text

    manifest = await client.get("/static/shell/manifest.webmanifest")
    assert manifest.status_code == 200
    data = manifest.json()
    assert data["start_url"] == "/dashboard/calendar"
    assert data["display"] == "standalone"
    assert data["scope"] == "/dashboard/"
    for icon in data["icons"]:
        drawn = await client.get(icon["src"])
        assert drawn.status_code == 200 and drawn.text.lstrip().startswith("<svg")

    worker = await client.get("/static/shell/sw.js")
    assert worker.status_code == 200
    assert worker.headers["service-worker-allowed"] == "/dashboard/"
    assert worker.headers["content-type"].startswith("text/javascript")
    assert "no-cache" in worker.headers["cache-control"]
    # Other static files are not widened to the dashboard's scope.
    assert "service-worker-allowed" not in (await client.get("/static/css/site.css")).headers

    client.cookies.clear()
    offline = await client.get("/dashboard/offline")
    assert offline.status_code == 200
    assert "You are offline" in offline.text


async def test_the_push_key_is_null_without_vapid_settings(client: Client) -> None:
    site = await make_site(client)
    await sign_in(client, site.business.email)
    response = await client.get("/dashboard/api/push/key")
    assert response.status_code == 200
    assert response.json() == {"public_key": None}


async def test_push_rows_are_invisible_to_other_businesses(
    client: Client,
    owner_engine: AsyncEngine,
    sessions: async_sessionmaker[AsyncSession],
    push_service: PushService,
) -> None:
    salon, spa = await make_site(client), await make_site(client)
    headers = {"X-CSRF-Token": await sign_in(client, salon.business.email)}
    body = new_device(push_service, "phone").as_json()
    assert (await client.post(SUBSCRIPTIONS, json=body, headers=headers)).status_code == 201

    async def visible_to(tenant_id: uuid.UUID) -> int:
        async with sessions() as session, session.begin():
            await set_tenant(session, tenant_id)
            count = await session.scalar(text("SELECT count(*) FROM push_subscriptions"))
            return int(count or 0)

    assert (
        await visible_to(salon.business.tenant_id),
        await visible_to(spa.business.tenant_id),
    ) == (1, 0)
    async with owner_engine.connect() as connection:
        forced = await connection.execute(
            text(
                "SELECT relname FROM pg_class WHERE relname IN "
                "('push_subscriptions', 'push_deliveries') "
                "AND relrowsecurity AND relforcerowsecurity"
            )
        )
        assert sorted(r.relname for r in forced) == ["push_deliveries", "push_subscriptions"]
