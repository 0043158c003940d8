from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest
import respx

from app.integrations.errors import PermanentProviderError, RetryableProviderError
from app.integrations.whatsapp import WhatsAppClient, body_parameters

API = "https://graph.test"
MESSAGES = f"{API}/v21.0/1234567890/messages"


@pytest.fixture
def whatsapp(http: httpx.AsyncClient) -> WhatsAppClient:
    return WhatsAppClient("EAAG-token", http, api_base=API)


@pytest.fixture
def meta() -> Iterator[respx.MockRouter]:
    with respx.mock(assert_all_called=True) as router:
        yield router


async def send(whatsapp: WhatsAppClient) -> str:
    return await whatsapp.send_template(
        phone_number_id="1234567890",
        to="201001234567",
        template_name="booking_confirmed",
        language_code="ar",
        components=body_parameters("Salma", "22/11 10:00"),
    )


async def test_send_template_posts_cloud_api_body_and_returns_wamid(
    whatsapp: WhatsAppClient, meta: respx.MockRouter
) -> None:
    route = meta.post(MESSAGES).respond(
        200,
        json={
            "messaging_product": "whatsapp",
            "contacts": [{"input": "201001234567", "wa_id": "201001234567"}],
            "messages": [
                {"id": "wamid.HBgLMjAxMDAxMjM0NTY3FQIAERgSQzQ1", "message_status": "accepted"}
            ],
        },
    )

    wamid = await send(whatsapp)

    assert wamid == "wamid.HBgLMjAxMDAxMjM0NTY3FQIAERgSQzQ1"
    request = route.calls.last.request
    assert request.headers["Authorization"] == "Bearer EAAG-token"
    assert json.loads(request.content) == {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": "201001234567",
        "type": "template",
        "template": {
            "name": "booking_confirmed",
            "language": {"code": "ar"},
            "components": [
                {
                    "type": "body",
                    "parameters": [
                        {"type": "text", "text": "Salma"},
                        {"type": "text", "text": "22/11 10:00"},
                    ],
                }
            ],
        },
    }


def graph_error(status: int, code: int) -> httpx.Response:
    error = {"message": "err", "type": "OAuthException", "code": code, "fbtrace_id": "Ab1"}
    return httpx.Response(status, json={"error": error})


@pytest.mark.parametrize(
    ("response", "expected"),
    [
        (graph_error(400, 130429), RetryableProviderError),  # throughput limit
        (graph_error(400, 131056), RetryableProviderError),  # pair rate limit
        (httpx.Response(429, headers={"Retry-After": "4"}), RetryableProviderError),
        (graph_error(500, 131000), RetryableProviderError),
        (graph_error(404, 132001), PermanentProviderError),  # template does not exist
        (graph_error(400, 131026), PermanentProviderError),  # undeliverable
        (graph_error(401, 190), PermanentProviderError),  # expired access token
    ],
)
async def test_send_template_errors_are_classified(
    whatsapp: WhatsAppClient,
    meta: respx.MockRouter,
    response: httpx.Response,
    expected: type[Exception],
) -> None:
    meta.post(MESSAGES).mock(return_value=response)
    with pytest.raises(expected) as info:
        await send(whatsapp)
    assert info.value.status == response.status_code  # type: ignore[attr-defined]


async def test_130429_code_is_reported(whatsapp: WhatsAppClient, meta: respx.MockRouter) -> None:
    meta.post(MESSAGES).mock(return_value=graph_error(400, 130429))
    with pytest.raises(RetryableProviderError) as info:
        await send(whatsapp)
    assert info.value.code == "130429"


async def test_accepted_response_without_wamid_is_permanent(
    whatsapp: WhatsAppClient, meta: respx.MockRouter
) -> None:
    meta.post(MESSAGES).respond(200, json={"messaging_product": "whatsapp", "messages": []})
    with pytest.raises(PermanentProviderError):
        await send(whatsapp)
