"""Role guards: staff are refused every management route class; owners and admins pass; and
staff keep what they need (the calendar and bookings)."""

from __future__ import annotations

from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from tests.factories import add_user, sign_up

Client = AsyncTestClient[Litestar]
RANGE = "from=2026-01-01&to=2026-01-31"
TIMES = "from=2026-01-01T00:00:00Z&to=2026-02-01T00:00:00Z"

# (route class, method, path, body): one representative route per guarded class.
GUARDED: list[tuple[str, str, str, dict[str, Any] | None]] = [
    (
        "users: create",
        "POST",
        "/api/v1/users",
        {"email": "new-{role}@example.com", "password": "long enough pw", "role": "staff"},
    ),
    ("users: list", "GET", "/api/v1/users", None),
    ("catalog write", "POST", "/api/v1/branches", {"name": "Second", "timezone": "UTC"}),
    ("reports: revenue", "GET", f"/api/v1/reports/revenue?{RANGE}", None),
    ("reports: occupancy", "GET", f"/api/v1/reports/occupancy?{RANGE}", None),
    ("ledger", "GET", "/api/v1/ledger/accounts", None),
    ("ledger: trial balance", "GET", "/api/v1/ledger/trial-balance", None),
    ("payouts", "GET", "/api/v1/payouts", None),
    ("payouts: run", "POST", "/api/v1/payouts/run", {}),
    ("invoices", "GET", f"/api/v1/invoices?{TIMES}", None),
    ("outbox", "GET", "/api/v1/outbox?status=dead", None),
    ("provider settings", "GET", "/api/v1/settings/providers", None),
    ("reconciliation", "GET", "/api/v1/reconciliation/runs", None),
]
STAFF_ALLOWED = [
    ("catalog read", "GET", "/api/v1/services"),
    ("calendar", "GET", f"/api/v1/bookings?{TIMES}"),
    ("me", "GET", "/api/v1/me"),
]


async def _token(client: Client, role: str) -> str:
    business = await sign_up(client)
    return business.token if role == "owner" else await add_user(client, business, role)


@pytest.mark.parametrize(("kind", "method", "path", "body"), GUARDED, ids=[g[0] for g in GUARDED])
@pytest.mark.parametrize("role", ["owner", "admin", "staff"])
async def test_role_guard(
    client: Client, role: str, kind: str, method: str, path: str, body: dict[str, Any] | None
) -> None:
    token = await _token(client, role)
    payload = (
        {k: v.replace("{role}", role) if isinstance(v, str) else v for k, v in body.items()}
        if body is not None
        else None
    )
    response = await client.request(
        method, path, json=payload, headers={"Authorization": f"Bearer {token}"}
    )
    if role == "staff":
        assert response.status_code == 403, response.text
        assert response.json()["type"] == "forbidden"
    else:
        assert response.status_code in (200, 201), response.text


@pytest.mark.parametrize(
    ("kind", "method", "path"), STAFF_ALLOWED, ids=[s[0] for s in STAFF_ALLOWED]
)
async def test_staff_keep_calendar_and_bookings(
    client: Client, kind: str, method: str, path: str
) -> None:
    token = await _token(client, "staff")
    response = await client.request(method, path, headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.text
