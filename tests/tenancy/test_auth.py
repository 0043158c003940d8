from __future__ import annotations

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from tests.factories import PASSWORD, add_user, sign_up

Client = AsyncTestClient[Litestar]


async def test_signup_returns_token_that_identifies_the_owner(client: Client) -> None:
    business = await sign_up(client)
    me = await client.get("/api/v1/me", headers=business.headers)
    assert me.status_code == 200
    body = me.json()
    assert body["tenant_id"] == str(business.tenant_id)
    assert body["role"] == "owner"
    assert body["email"] == business.email


async def test_token_endpoint_issues_token_for_valid_credentials(client: Client) -> None:
    business = await sign_up(client)
    response = await client.post(
        "/api/v1/auth/token", json={"email": business.email.upper(), "password": PASSWORD}
    )
    assert response.status_code == 200
    assert response.json()["token_type"] == "bearer"
    me = await client.get(
        "/api/v1/me", headers={"Authorization": f"Bearer {response.json()['access_token']}"}
    )
    assert me.json()["user_id"]


async def test_bad_credentials_are_401_and_do_not_reveal_whether_the_email_exists(
    client: Client,
) -> None:
    business = await sign_up(client)
    wrong_password = await client.post(
        "/api/v1/auth/token", json={"email": business.email, "password": "nope-nope"}
    )
    unknown_email = await client.post(
        "/api/v1/auth/token", json={"email": "ghost@example.com", "password": "nope-nope"}
    )
    assert wrong_password.status_code == unknown_email.status_code == 401
    assert wrong_password.headers["content-type"].startswith("application/problem+json")
    assert wrong_password.json() == unknown_email.json()


async def test_me_without_token_is_401_problem(client: Client) -> None:
    response = await client.get("/api/v1/me")
    assert response.status_code == 401
    assert response.json()["type"] == "unauthenticated"


async def test_tampered_token_is_rejected(client: Client) -> None:
    business = await sign_up(client)
    header, payload, signature = business.token.split(".")
    forged = f"{header}.{payload}.{signature[:-4]}AAAA"
    response = await client.get("/api/v1/me", headers={"Authorization": f"Bearer {forged}"})
    assert response.status_code == 401


async def test_duplicate_slug_is_409(client: Client) -> None:
    business = await sign_up(client)
    response = await client.post(
        "/api/v1/signup",
        json={
            "business_name": "Other",
            "slug": business.slug,
            "email": "x@example.com",
            "password": PASSWORD,
            "currency": "USD",
            "timezone": "UTC",
        },
    )
    assert response.status_code == 409
    assert response.json()["type"] == "slug_taken"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("currency", "XXX"),
        ("timezone", "Mars/Olympus"),
        ("email", "not-an-email"),
        ("slug", "Bad Slug!"),
        ("password", "short"),
        ("business_name", "   "),
    ],
)
async def test_signup_rejects_bad_fields_with_problem_json_and_creates_nothing(
    client: Client, field: str, value: str
) -> None:
    body = {
        "business_name": "Salon",
        "slug": "valid-slug-x",
        "email": "a@example.com",
        "password": PASSWORD,
        "currency": "EGP",
        "timezone": "Africa/Cairo",
        field: value,
    }
    response = await client.post("/api/v1/signup", json=body)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["type"] == "validation_error"
    # Nothing was created: the slug is still free.
    ok = await client.post(
        "/api/v1/signup",
        json={
            **body,
            field: {
                "currency": "EGP",
                "timezone": "Africa/Cairo",
                "email": "a@example.com",
                "slug": "valid-slug-x",
                "password": PASSWORD,
                "business_name": "Salon",
            }[field],
        },
    )
    assert ok.status_code == 201


@pytest.mark.parametrize(
    "raw",
    [b"{", b"[]", b'{"email": 1}', b"\xff\xfe", b'{"business_name": null}', b"null"],
)
async def test_malformed_bodies_are_problem_json_never_500(client: Client, raw: bytes) -> None:
    response = await client.post(
        "/api/v1/signup", content=raw, headers={"content-type": "application/json"}
    )
    assert 400 <= response.status_code < 500
    assert response.headers["content-type"].startswith("application/problem+json")


async def test_unknown_route_is_problem_json(client: Client) -> None:
    response = await client.get("/api/v1/nothing-here")
    assert response.status_code == 404
    assert response.json()["type"] == "not_found"


async def test_staff_user_can_log_in_with_their_role(client: Client) -> None:
    business = await sign_up(client)
    token = await add_user(client, business, "staff")
    me = await client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert me.json()["role"] == "staff"
    assert me.json()["tenant_id"] == str(business.tenant_id)
