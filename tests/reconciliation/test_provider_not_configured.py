"""A run for a provider whose keys are not set is a 409 naming what to set, not a 503."""

from __future__ import annotations

from litestar import Litestar
from litestar.testing import AsyncTestClient

from app.edge.asgi import api_deps_of
from app.gateways.accounts import Providers
from tests.factories import Business

Client = AsyncTestClient[Litestar]


async def test_run_without_provider_keys_answers_409_provider_not_configured(
    client: Client, app: Litestar, business: Business
) -> None:
    deps = api_deps_of(app)
    before, deps.providers = deps.providers, Providers()  # as from settings with no keys
    try:
        response = await client.post(
            "/api/v1/reconciliation/runs",
            headers=business.headers,
            json={"provider": "stripe", "date": "2026-03-10"},
        )
        kashier = await client.post(
            "/api/v1/reconciliation/runs",
            headers=business.headers,
            json={"provider": "kashier", "date": "2026-03-10"},
        )
    finally:
        api_deps_of(app).providers = before

    assert response.status_code == 409, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert (body["type"], body["provider"], body["configure"]) == (
        "provider_not_configured",
        "stripe",
        ["STRIPE_API_KEY"],
    )
    assert "STRIPE_API_KEY" in body["detail"]
    assert kashier.status_code == 409
    assert kashier.json()["configure"] == [
        "KASHIER_MERCHANT_ID",
        "KASHIER_API_KEY",
        "KASHIER_SECRET_KEY",
    ]
    runs = await client.get("/api/v1/reconciliation/runs", headers=business.headers)
    assert runs.json() == []
