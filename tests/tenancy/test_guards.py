"""Role guards: staff are refused management routes; owners and admins are let through."""

from __future__ import annotations

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from tests.factories import add_user, sign_up

Client = AsyncTestClient[Litestar]

# One representative route per guarded class; later domains extend this table.
GUARDED = [
    (
        "users",
        "POST",
        "/api/v1/users",
        {"email": "new-{n}@example.com", "password": "long enough pw", "role": "staff"},
    ),
    ("users", "GET", "/api/v1/users", None),
]


@pytest.mark.parametrize(("kind", "method", "path", "body"), GUARDED)
@pytest.mark.parametrize("role", ["owner", "admin", "staff"])
async def test_role_guard(
    client: Client, role: str, kind: str, method: str, path: str, body: dict[str, str] | None
) -> None:
    business = await sign_up(client)
    token = business.token if role == "owner" else await add_user(client, business, role)
    payload = {k: v.replace("{n}", role) for k, v in body.items()} if body else None
    response = await client.request(
        method, path, json=payload, headers={"Authorization": f"Bearer {token}"}
    )
    if role == "staff":
        assert response.status_code == 403, response.text
        assert response.json()["type"] == "forbidden"
    else:
        assert response.status_code in (200, 201), response.text
