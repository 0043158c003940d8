"""POST /api/v1/resources/{id}/calendar: sealed refresh token, manager only, per tenant."""

from __future__ import annotations

import uuid

from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.calendar_sync.models import token_associated_data
from app.integrations.crypto import SecretBox
from app.settings import Settings
from tests.factories import add_user, make_catalog, sign_up

TOKEN = "1//0gPlaintextRefreshTokenNeverStored"


def url(resource_id: str) -> str:
    return f"/api/v1/resources/{resource_id}/calendar"


async def test_owner_connects_a_resource_and_the_token_is_sealed(
    client: AsyncTestClient[Litestar], owner_engine: AsyncEngine, settings: Settings
) -> None:
    business = await sign_up(client)
    resource_id = (await make_catalog(client, business))["resource_id"]
    body = {"calendar_id": "salon@group.calendar.google.com", "refresh_token": TOKEN}
    response = await client.post(url(resource_id), headers=business.headers, json=body)
    assert response.status_code == 201, response.text
    assert response.json()["calendar_id"] == "salon@group.calendar.google.com"
    assert TOKEN not in response.text
    reconnect = {"calendar_id": "other@group.calendar.google.com", "refresh_token": TOKEN + "2"}
    again = await client.post(url(resource_id), headers=business.headers, json=reconnect)
    assert again.status_code == 201
    async with owner_engine.connect() as connection:
        rows = list(await connection.execute(text("SELECT * FROM resource_calendars")))
        dump = await connection.scalar(
            text("SELECT string_agg(r::text, '|') FROM resource_calendars r")
        )
    assert len(rows) == 1 and rows[0].calendar_id == "other@group.calendar.google.com"
    assert TOKEN not in dump
    opened = SecretBox(settings.secret_key).decrypt(
        rows[0].sealed_refresh_token,
        associated_data=token_associated_data(business.tenant_id, uuid.UUID(resource_id)),
    )
    assert opened == TOKEN + "2"


async def test_staff_cannot_connect_a_calendar(
    client: AsyncTestClient[Litestar], owner_engine: AsyncEngine
) -> None:
    business = await sign_up(client)
    resource_id = (await make_catalog(client, business))["resource_id"]
    staff = {"Authorization": f"Bearer {await add_user(client, business, 'staff')}"}
    body = {"calendar_id": "c@group.calendar.google.com", "refresh_token": TOKEN}
    assert (await client.post(url(resource_id), headers=staff, json=body)).status_code == 403
    async with owner_engine.connect() as connection:
        assert await connection.scalar(text("SELECT count(*) FROM resource_calendars")) == 0


async def test_another_tenants_resource_is_not_found(
    client: AsyncTestClient[Litestar], owner_engine: AsyncEngine
) -> None:
    alpha, beta = await sign_up(client), await sign_up(client)
    alpha_resource = (await make_catalog(client, alpha))["resource_id"]
    body = {"calendar_id": "c@group.calendar.google.com", "refresh_token": TOKEN}
    response = await client.post(url(alpha_resource), headers=beta.headers, json=body)
    assert response.status_code == 404
    missing = await client.post(url(str(uuid.uuid4())), headers=alpha.headers, json=body)
    assert missing.status_code == 404
    async with owner_engine.connect() as connection:
        assert await connection.scalar(text("SELECT count(*) FROM resource_calendars")) == 0
