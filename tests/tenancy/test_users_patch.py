"""PATCH /api/v1/users/{id}: deactivation ends a user's logins and the tokens they hold at
once, reactivation needs a new login, role changes apply to the next request, owners are
protected (never themselves, never the last one, never by an admin), and every change is
audited with before/after."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from dataclasses import dataclass
from typing import Any

from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.tenancy.service import LastOwner, Principal, UserPatch, update_user
from tests.factories import PASSWORD, Business, make_catalog, sign_up

Client = AsyncTestClient[Litestar]


@dataclass
class Member:
    id: str
    email: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


async def login(client: Client, email: str) -> Any:
    return await client.post("/api/v1/auth/token", json={"email": email, "password": PASSWORD})


async def member(client: Client, business: Business, role: str) -> Member:
    email = f"{role}-{uuid.uuid4().hex[:8]}@example.com"
    created = await client.post(
        "/api/v1/users",
        headers=business.headers,
        json={"email": email, "password": PASSWORD, "role": role},
    )
    assert created.status_code == 201, created.text
    token = await login(client, email)
    assert token.status_code == 200, token.text
    return Member(created.json()["id"], email, token.json()["access_token"])


async def owner_id(client: Client, business: Business) -> str:
    return str((await client.get("/api/v1/me", headers=business.headers)).json()["user_id"])


async def patch_user(client: Client, headers: dict[str, str], user_id: str, **body: Any) -> Any:
    return await client.patch(f"/api/v1/users/{user_id}", headers=headers, json=body)


async def test_deactivation_ends_logins_and_existing_tokens_at_once(
    client: Client, owner_engine: AsyncEngine
) -> None:
    business = await sign_up(client)
    staff = await member(client, business, "staff")
    assert (await client.get("/api/v1/me", headers=staff.headers)).status_code == 200
    response = await patch_user(client, business.headers, staff.id, active=False)
    assert response.status_code == 200, response.text
    assert response.json()["active"] is False
    me = await client.get("/api/v1/me", headers=staff.headers)
    assert me.status_code == 401
    assert me.json()["type"] == "unauthenticated"
    calendar = await client.get(
        "/api/v1/bookings?from=2030-01-01T00:00:00Z&to=2030-01-02T00:00:00Z",
        headers=staff.headers,
    )
    assert calendar.status_code == 401
    refused = await login(client, staff.email)
    assert refused.status_code == 401
    assert refused.json()["type"] == "invalid_credentials"
    listed = (await client.get("/api/v1/users", headers=business.headers)).json()
    assert {u["id"]: u["active"] for u in listed}[staff.id] is False
    async with owner_engine.connect() as conn:
        row = (
            await conn.execute(
                text(
                    "SELECT action, before, after FROM audit_log WHERE entity_id = :id "
                    "AND action <> 'user.created'"
                ),
                {"id": staff.id},
            )
        ).one()
    assert tuple(row) == ("user.deactivated", {"active": True}, {"active": False})


async def test_reactivation_needs_a_new_login_old_tokens_stay_dead(client: Client) -> None:
    business = await sign_up(client)
    admin = await member(client, business, "admin")
    await patch_user(client, business.headers, admin.id, active=False)
    back = await patch_user(client, business.headers, admin.id, active=True)
    assert back.status_code == 200, back.text
    assert back.json()["active"] is True
    assert (await client.get("/api/v1/me", headers=admin.headers)).status_code == 401
    fresh = await login(client, admin.email)
    assert fresh.status_code == 200, fresh.text
    headers = {"Authorization": f"Bearer {fresh.json()['access_token']}"}
    assert (await client.get("/api/v1/users", headers=headers)).status_code == 200


async def test_a_role_change_applies_to_the_next_request_with_the_same_token(
    client: Client,
) -> None:
    business = await sign_up(client)
    admin = await member(client, business, "admin")
    assert (await client.get("/api/v1/users", headers=admin.headers)).status_code == 200
    demoted = await patch_user(client, business.headers, admin.id, role="staff")
    assert demoted.json()["role"] == "staff"
    refused = await client.get("/api/v1/users", headers=admin.headers)
    assert refused.status_code == 403
    me = (await client.get("/api/v1/me", headers=admin.headers)).json()
    assert me["role"] == "staff"
    await patch_user(client, business.headers, admin.id, role="admin")
    assert (await client.get("/api/v1/users", headers=admin.headers)).status_code == 200


async def test_nobody_deactivates_themselves(client: Client) -> None:
    business = await sign_up(client)
    me = await owner_id(client, business)
    refused = await patch_user(client, business.headers, me, active=False)
    assert refused.status_code == 409, refused.text
    assert refused.json()["type"] == "cannot_deactivate_self"
    admin = await member(client, business, "admin")
    refused = await patch_user(client, admin.headers, admin.id, active=False)
    assert refused.json()["type"] == "cannot_deactivate_self"
    assert (await client.get("/api/v1/me", headers=business.headers)).status_code == 200
    assert (await client.get("/api/v1/me", headers=admin.headers)).status_code == 200


async def test_an_admin_cannot_change_an_owner_and_no_one_makes_an_owner(client: Client) -> None:
    business = await sign_up(client)
    me = await owner_id(client, business)
    admin = await member(client, business, "admin")
    for body in ({"active": False}, {"email": "taken-over@example.com"}):
        refused = await patch_user(client, admin.headers, me, **body)
        assert refused.status_code == 403, refused.text
        assert refused.json()["type"] == "forbidden"
    promoted = await patch_user(client, business.headers, admin.id, role="owner")
    assert promoted.status_code == 422
    demoted = await patch_user(client, business.headers, me, role="admin")
    assert demoted.status_code == 422
    assert demoted.json()["errors"] == [
        {"field": "role", "message": "an owner's role cannot change"}
    ]
    assert (await client.get("/api/v1/me", headers=business.headers)).json()["role"] == "owner"


async def promote_to_owner(owner: AsyncEngine, user_id: str) -> None:
    # Sign-up makes the only owner the API creates; a second one exists only by hand.
    async with owner.begin() as conn:
        await conn.execute(text("UPDATE users SET role = 'owner' WHERE id = :id"), {"id": user_id})


async def test_the_last_active_owner_is_never_deactivated(
    client: Client, owner_engine: AsyncEngine, sessions: async_sessionmaker[AsyncSession]
) -> None:
    business = await sign_up(client)
    first = Principal(
        uuid.UUID(await owner_id(client, business)), business.tenant_id, "owner", business.email
    )
    other = await member(client, business, "admin")
    await promote_to_owner(owner_engine, other.id)
    second = Principal(uuid.UUID(other.id), business.tenant_id, "owner", other.email)

    async def deactivate(actor: Principal, target: Principal) -> Any:
        async with sessions() as session:
            return await update_user(session, actor, target.user_id, UserPatch(active=False))

    # Two owners deactivating each other at the same moment: one wins, one is refused.
    results = await asyncio.gather(
        deactivate(first, second), deactivate(second, first), return_exceptions=True
    )
    got = Counter("ok" if not isinstance(r, BaseException) else type(r).__name__ for r in results)
    assert got == Counter({"ok": 1, "LastOwner": 1}), results
    assert any(isinstance(r, LastOwner) for r in results)
    async with owner_engine.connect() as conn:
        owners = (
            await conn.execute(
                text(
                    "SELECT count(*) FROM users WHERE role = 'owner' AND active AND tenant_id = :t"
                ),
                {"t": business.tenant_id},
            )
        ).scalar_one()
    assert owners == 1


async def test_email_and_resource_changes_are_checked(client: Client) -> None:
    business = await sign_up(client)
    ids = await make_catalog(client, business)
    staff = await member(client, business, "staff")
    colleague = await member(client, business, "staff")
    bad = await patch_user(client, business.headers, staff.id, email="not-an-email")
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["field"] == "email"
    taken = await patch_user(client, business.headers, staff.id, email=colleague.email)
    assert taken.status_code == 409
    assert taken.json()["type"] == "email_taken"
    unknown = await patch_user(client, business.headers, staff.id, resource_id=str(uuid.uuid4()))
    assert unknown.status_code == 422
    assert unknown.json()["errors"][0]["field"] == "resource_id"
    linked = await patch_user(
        client, business.headers, staff.id, resource_id=ids["resource_id"], email="New@Example.com"
    )
    assert linked.status_code == 200, linked.text
    assert (linked.json()["resource_id"], linked.json()["email"]) == (
        ids["resource_id"],
        "new@example.com",
    )
    assert (await login(client, "new@example.com")).status_code == 200
    # The token held before the email change still works (only deactivation ends tokens).
    assert (await client.get("/api/v1/me", headers=staff.headers)).json()["email"] == (
        "new@example.com"
    )
    unlinked = await patch_user(client, business.headers, staff.id, resource_id=None)
    assert unlinked.json()["resource_id"] is None


async def test_staff_cannot_patch_users_and_other_tenants_users_are_not_found(
    client: Client,
) -> None:
    business = await sign_up(client)
    other = await sign_up(client)
    staff = await member(client, business, "staff")
    colleague = await member(client, business, "staff")
    refused = await patch_user(client, staff.headers, colleague.id, active=False)
    assert refused.status_code == 403
    missing = await patch_user(client, other.headers, colleague.id, active=False)
    assert missing.status_code == 404
    assert missing.json()["type"] == "not_found"
    assert (await client.get("/api/v1/me", headers=colleague.headers)).status_code == 200
