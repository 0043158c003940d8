"""Provider settings: secrets sealed at rest, never returned, role-guarded, per tenant."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.integrations.crypto import DecryptionFailed, SecretBox
from app.settings import Settings
from app.tenant_settings.service import load_provider_config, update_provider_settings
from tests.factories import add_user, sign_up
from tests.tenant_settings.support import owner_of

URL = "/api/v1/settings/providers"
STRIPE_KEY = "sk_test_51PlaintextMustNeverBeStored"
WA_TOKEN = "EAAG-whatsapp-plaintext-token"


async def stored_rows(
    owner_engine: AsyncEngine, tenant_id: uuid.UUID
) -> dict[str, tuple[Any, ...]]:
    async with owner_engine.connect() as connection:
        rows = await connection.execute(
            text(
                "SELECT provider, enabled, sealed, fields_set FROM tenant_provider_settings "
                "WHERE tenant_id = :t"
            ),
            {"t": tenant_id},
        )
        return {row.provider: (row.enabled, row.sealed, row.fields_set) for row in rows}


async def test_put_seals_secrets_and_get_names_only_the_fields_set(
    client: AsyncTestClient[Litestar], owner_engine: AsyncEngine
) -> None:
    business = await sign_up(client)
    body = {
        "enabled": ["stripe", "whatsapp", "cash"],
        "credentials": {
            "stripe": {"api_key": STRIPE_KEY},
            "whatsapp": {"access_token": WA_TOKEN, "phone_number_id": "106540352242922"},
        },
    }
    put = await client.put(URL, headers=business.headers, json=body)
    assert put.status_code == 200, put.text
    got = await client.get(URL, headers=business.headers)
    assert got.status_code == 200
    for response in (put, got):
        data = response.json()
        assert data["enabled"] == ["stripe", "cash", "whatsapp"]
        by_provider = {p["provider"]: p for p in data["providers"]}
        assert by_provider["stripe"]["fields_set"] == ["api_key"]
        assert by_provider["whatsapp"]["fields_set"] == ["access_token", "phone_number_id"]
        assert by_provider["kashier"] == {"provider": "kashier", "enabled": False, "fields_set": []}
        assert STRIPE_KEY not in response.text and WA_TOKEN not in response.text
    rows = await stored_rows(owner_engine, business.tenant_id)
    enabled, sealed, fields = rows["stripe"]
    assert enabled and fields == ["api_key"]
    assert sealed.startswith("v1.") and STRIPE_KEY not in sealed
    async with owner_engine.connect() as connection:
        dump = await connection.scalar(
            text("SELECT string_agg(t::text, '|') FROM tenant_provider_settings t")
        )
        audit = await connection.scalar(text("SELECT string_agg(a::text, '|') FROM audit_log a"))
    assert STRIPE_KEY not in dump and WA_TOKEN not in dump
    assert "provider_settings.updated" in audit and STRIPE_KEY not in audit


async def test_a_new_tenant_has_only_cash_and_sandbox_on(
    client: AsyncTestClient[Litestar],
) -> None:
    business = await sign_up(client)
    response = await client.get(URL, headers=business.headers)
    assert response.json()["enabled"] == ["sandbox", "cash"]


async def test_credentials_merge_field_by_field_and_null_removes_one(
    client: AsyncTestClient[Litestar],
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
) -> None:
    business = await sign_up(client)
    headers = business.headers
    first = {"credentials": {"stripe": {"api_key": STRIPE_KEY}}}
    assert (await client.put(URL, headers=headers, json=first)).status_code == 200
    second = {"credentials": {"stripe": {"webhook_secret": "whsec_1", "api_key": None}}}
    response = await client.put(URL, headers=headers, json=second)
    assert response.status_code == 200
    stripe = next(p for p in response.json()["providers"] if p["provider"] == "stripe")
    assert stripe == {"provider": "stripe", "enabled": False, "fields_set": ["webhook_secret"]}
    async with sessions() as session:
        config = await load_provider_config(
            session, business.tenant_id, "stripe", SecretBox(settings.secret_key)
        )
    assert dict(config.credentials) == {"webhook_secret": "whsec_1"}
    assert config.enabled is False


@pytest.mark.parametrize(
    "body",
    [
        {"credentials": {"stripe": {"apikey": "typo"}}},
        {"credentials": {"paypal": {"api_key": "x"}}},
        {"enabled": ["paypal"]},
        {"credentials": {"stripe": {"api_key": ""}}},
    ],
)
async def test_unknown_providers_fields_or_empty_values_are_refused(
    client: AsyncTestClient[Litestar], owner_engine: AsyncEngine, body: dict[str, Any]
) -> None:
    business = await sign_up(client)
    response = await client.put(URL, headers=business.headers, json=body)
    assert response.status_code == 422, response.text
    assert response.json()["type"] == "validation_error"
    assert await stored_rows(owner_engine, business.tenant_id) == {}


async def test_staff_can_neither_read_nor_change_provider_settings(
    client: AsyncTestClient[Litestar],
) -> None:
    business = await sign_up(client)
    staff = {"Authorization": f"Bearer {await add_user(client, business, 'staff')}"}
    admin = {"Authorization": f"Bearer {await add_user(client, business, 'admin')}"}
    assert (await client.get(URL, headers=staff)).status_code == 403
    refused = await client.put(URL, headers=staff, json={"enabled": ["stripe"]})
    assert refused.status_code == 403
    assert (await client.get(URL)).status_code == 401
    allowed = await client.put(URL, headers=admin, json={"enabled": ["stripe"]})
    assert allowed.status_code == 200
    assert allowed.json()["enabled"] == ["stripe"]


async def test_tenants_see_only_their_own_settings_and_sealed_values_do_not_travel(
    client: AsyncTestClient[Litestar],
    owner_engine: AsyncEngine,
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
) -> None:
    alpha, beta = await sign_up(client), await sign_up(client)
    body = {"enabled": ["stripe"], "credentials": {"stripe": {"api_key": STRIPE_KEY}}}
    assert (await client.put(URL, headers=alpha.headers, json=body)).status_code == 200
    seen_by_beta = (await client.get(URL, headers=beta.headers)).json()
    assert seen_by_beta["enabled"] == ["sandbox", "cash"]
    assert all(p["fields_set"] == [] for p in seen_by_beta["providers"])
    box = SecretBox(settings.secret_key)
    async with sessions() as session:
        assert not (await load_provider_config(session, beta.tenant_id, "stripe", box)).credentials
    # Copy alpha's sealed value into beta's row: the associated data binds it to alpha.
    async with owner_engine.begin() as connection:
        await connection.execute(
            text(
                "INSERT INTO tenant_provider_settings (tenant_id, id, provider, enabled, sealed) "
                "SELECT :beta, gen_random_uuid(), provider, true, sealed "
                "FROM tenant_provider_settings WHERE tenant_id = :alpha AND provider = 'stripe'"
            ),
            {"alpha": alpha.tenant_id, "beta": beta.tenant_id},
        )
    async with sessions() as session:
        with pytest.raises(DecryptionFailed):
            await load_provider_config(session, beta.tenant_id, "stripe", box)
    async with sessions() as session:
        config = await load_provider_config(session, alpha.tenant_id, "stripe", box)
    assert config.credentials == {"api_key": STRIPE_KEY}


async def test_concurrent_updates_of_different_fields_both_survive(
    client: AsyncTestClient[Litestar],
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
) -> None:
    business = await sign_up(client)
    box = SecretBox(settings.secret_key)
    fields = ["merchant_id", "api_key", "secret_key"]

    async def set_field(name: str) -> None:
        async with sessions() as session:
            await update_provider_settings(
                session,
                owner_of(business.tenant_id),
                box,
                datetime.now(UTC),
                credentials={"kashier": {name: f"value-{name}"}},
            )

    await asyncio.gather(*(set_field(name) for name in fields))
    async with sessions() as session:
        config = await load_provider_config(session, business.tenant_id, "kashier", box)
    assert config.credentials == {name: f"value-{name}" for name in fields}
