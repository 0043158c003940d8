"""WhatsApp Cloud API (Meta Graph) template messages over httpx.

Meta has no idempotency key for messages: the caller records the returned wamid against its
outbox id and never sends again once one is stored. Throttling arrives both as HTTP 429 and
as Graph error codes on other statuses (130429 throughput, 131056 pair rate, 80007 WABA
rate, 4 app rate, 2 temporary outage), which are classified retryable here.
"""

from __future__ import annotations

from typing import Any

import httpx

from app.integrations.errors import PermanentProviderError, response_json, send

PROVIDER = "whatsapp"
DEFAULT_API_BASE = "https://graph.facebook.com"
DEFAULT_API_VERSION = "v21.0"
RETRYABLE_CODES = frozenset({2, 4, 80007, 130429, 131056})


def graph_error_code(response: httpx.Response) -> int | None:
    body = response_json(response)
    error = body.get("error") if isinstance(body, dict) else None
    code = error.get("code") if isinstance(error, dict) else None
    return code if isinstance(code, int) else None


def is_retryable_graph_error(response: httpx.Response) -> bool:
    return graph_error_code(response) in RETRYABLE_CODES


class WhatsAppClient:
    def __init__(
        self,
        access_token: str,
        http: httpx.AsyncClient,
        *,
        api_base: str = DEFAULT_API_BASE,
        api_version: str = DEFAULT_API_VERSION,
    ) -> None:
        self._token = access_token
        self._http = http
        self._api_base = api_base.rstrip("/")
        self._version = api_version

    async def send_template(
        self,
        *,
        phone_number_id: str,
        to: str,
        template_name: str,
        language_code: str,
        components: list[dict[str, Any]] | None = None,
    ) -> str:
        """Send an approved template ("ar" / "en_US" ...) and return Meta's wamid."""
        template: dict[str, Any] = {"name": template_name, "language": {"code": language_code}}
        if components:
            template["components"] = components
        body = {
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": to,
            "type": "template",
            "template": template,
        }
        request = self._http.build_request(
            "POST",
            f"{self._api_base}/{self._version}/{phone_number_id}/messages",
            json=body,
            headers={"Authorization": f"Bearer {self._token}"},
        )
        response = await send(self._http, PROVIDER, request, is_retryable=is_retryable_graph_error)
        data = response_json(response)
        messages = data.get("messages") if isinstance(data, dict) else None
        if not messages or not isinstance(messages[0], dict) or not messages[0].get("id"):
            raise PermanentProviderError("response has no messages[0].id", provider=PROVIDER)
        return str(messages[0]["id"])


def body_parameters(*values: str) -> list[dict[str, Any]]:
    """Components for a template whose body has positional {{1}}, {{2}}... parameters."""
    return [{"type": "body", "parameters": [{"type": "text", "text": value} for value in values]}]
