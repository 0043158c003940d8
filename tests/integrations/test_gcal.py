from __future__ import annotations

import json
import re
from collections.abc import Iterator
from urllib.parse import parse_qsl
from uuid import UUID, uuid4

import httpx
import pytest
import respx
from hypothesis import given
from hypothesis import strategies as st

from app.integrations.errors import PermanentProviderError, RetryableProviderError
from app.integrations.gcal import GcalClient, GoogleOAuthRefresher, event_id_for

API = "https://gcal.test/calendar/v3"
TOKEN_URL = "https://oauth.test/token"
EVENTS = f"{API}/calendars/cal%40group.calendar.google.com/events"
CALENDAR = "cal@group.calendar.google.com"


class FakeTokens:
    def __init__(self) -> None:
        self.issued = 0
        self.invalidated = 0

    async def access_token(self) -> str:
        self.issued += 1
        return f"tok-{self.issued}"

    def invalidate(self) -> None:
        self.invalidated += 1


@pytest.fixture
def tokens() -> FakeTokens:
    return FakeTokens()


@pytest.fixture
def gcal(tokens: FakeTokens, http: httpx.AsyncClient) -> GcalClient:
    return GcalClient(tokens, http, api_base=API)


@pytest.fixture
def google() -> Iterator[respx.MockRouter]:
    with respx.mock(assert_all_called=True) as router:
        yield router


@given(st.uuids())
def test_event_id_is_deterministic_base32hex(booking_id: UUID) -> None:
    event_id = event_id_for(booking_id)
    assert re.fullmatch(r"[a-v0-9]{5,1024}", event_id)
    assert event_id == event_id_for(UUID(str(booking_id)))


def test_event_ids_differ_per_booking() -> None:
    ids = {event_id_for(uuid4()) for _ in range(1000)}
    assert len(ids) == 1000
    assert GcalClient.event_id_for(UUID(int=0)) == "0" * 26


async def test_insert_event_posts_our_id_with_bearer_token(
    gcal: GcalClient, google: respx.MockRouter
) -> None:
    route = google.post(EVENTS).respond(200, json={"id": "abc00", "status": "confirmed"})

    event = await gcal.insert_event(CALENDAR, "abc00", {"summary": "Haircut"})

    request = route.calls.last.request
    assert request.headers["Authorization"] == "Bearer tok-1"
    assert json.loads(request.content) == {"summary": "Haircut", "id": "abc00"}
    assert event["id"] == "abc00"


async def test_insert_duplicate_becomes_patch(gcal: GcalClient, google: respx.MockRouter) -> None:
    google.post(EVENTS).respond(409, json={"error": {"code": 409, "message": "duplicate"}})
    patch = google.patch(f"{EVENTS}/abc00").respond(200, json={"id": "abc00"})

    await gcal.insert_event(CALENDAR, "abc00", {"summary": "Haircut"})

    assert json.loads(patch.calls.last.request.content) == {
        "summary": "Haircut",
        "status": "confirmed",
    }


async def test_patch_and_cancel_event(gcal: GcalClient, google: respx.MockRouter) -> None:
    route = google.patch(f"{EVENTS}/abc00").respond(200, json={"id": "abc00"})

    await gcal.patch_event(CALENDAR, "abc00", {"start": {"dateTime": "2026-11-22T10:00:00Z"}})
    await gcal.cancel_event(CALENDAR, "abc00")

    bodies = [json.loads(call.request.content) for call in route.calls]
    assert bodies == [{"start": {"dateTime": "2026-11-22T10:00:00Z"}}, {"status": "cancelled"}]


@pytest.mark.parametrize("status", [404, 410])
async def test_cancel_or_delete_of_gone_event_is_success(
    gcal: GcalClient, google: respx.MockRouter, status: int
) -> None:
    google.patch(f"{EVENTS}/gone1").respond(status)
    google.delete(f"{EVENTS}/gone1").respond(status)
    await gcal.cancel_event(CALENDAR, "gone1")
    await gcal.delete_event(CALENDAR, "gone1")


def google_error(status: int, reason: str) -> httpx.Response:
    error = {
        "code": status,
        "message": reason,
        "errors": [{"domain": "usageLimits", "reason": reason}],
    }
    return httpx.Response(status, json={"error": error})


@pytest.mark.parametrize("reason", ["rateLimitExceeded", "userRateLimitExceeded"])
async def test_403_rate_limit_is_retryable(
    gcal: GcalClient, google: respx.MockRouter, reason: str
) -> None:
    google.patch(f"{EVENTS}/e1234").mock(return_value=google_error(403, reason))
    with pytest.raises(RetryableProviderError) as info:
        await gcal.patch_event(CALENDAR, "e1234", {})
    assert info.value.status == 403


async def test_403_forbidden_is_permanent(gcal: GcalClient, google: respx.MockRouter) -> None:
    google.patch(f"{EVENTS}/e1234").mock(return_value=google_error(403, "forbidden"))
    with pytest.raises(PermanentProviderError):
        await gcal.patch_event(CALENDAR, "e1234", {})


async def test_429_carries_retry_after(gcal: GcalClient, google: respx.MockRouter) -> None:
    google.post(EVENTS).respond(429, headers={"Retry-After": "30"})
    with pytest.raises(RetryableProviderError) as info:
        await gcal.insert_event(CALENDAR, "e1234", {})
    assert info.value.retry_after == 30.0


async def test_401_refreshes_token_once_then_succeeds(
    gcal: GcalClient, tokens: FakeTokens, google: respx.MockRouter
) -> None:
    route = google.patch(f"{EVENTS}/e1234")
    route.side_effect = [httpx.Response(401), httpx.Response(200, json={"id": "e1234"})]

    await gcal.patch_event(CALENDAR, "e1234", {})

    assert tokens.invalidated == 1
    auth = [call.request.headers["Authorization"] for call in route.calls]
    assert auth == ["Bearer tok-1", "Bearer tok-2"]


async def test_repeated_401_is_permanent(
    gcal: GcalClient, tokens: FakeTokens, google: respx.MockRouter
) -> None:
    google.patch(f"{EVENTS}/e1234").respond(401)
    with pytest.raises(PermanentProviderError):
        await gcal.patch_event(CALENDAR, "e1234", {})
    assert tokens.invalidated == 1


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_oauth_refresh_posts_refresh_grant_and_caches_until_expiry(
    http: httpx.AsyncClient, google: respx.MockRouter
) -> None:
    clock = Clock()
    refresher = GoogleOAuthRefresher(
        client_id="cid",
        client_secret="csecret",
        refresh_token="rtok",
        http=http,
        token_url=TOKEN_URL,
        clock=clock,
    )
    route = google.post(TOKEN_URL)
    route.side_effect = [
        httpx.Response(
            200, json={"access_token": "at1", "expires_in": 3600, "token_type": "Bearer"}
        ),
        httpx.Response(200, json={"access_token": "at2", "expires_in": 3600}),
    ]

    assert await refresher.access_token() == "at1"
    clock.now += 3500  # still inside the lifetime minus the 60 s skew
    assert await refresher.access_token() == "at1"
    clock.now += 60
    assert await refresher.access_token() == "at2"

    assert route.call_count == 2
    assert dict(parse_qsl(route.calls[0].request.content.decode())) == {
        "grant_type": "refresh_token",
        "refresh_token": "rtok",
        "client_id": "cid",
        "client_secret": "csecret",
    }


async def test_oauth_revoked_grant_is_permanent(
    http: httpx.AsyncClient, google: respx.MockRouter
) -> None:
    refresher = GoogleOAuthRefresher(
        client_id="c", client_secret="s", refresh_token="r", http=http, token_url=TOKEN_URL
    )
    google.post(TOKEN_URL).respond(400, json={"error": "invalid_grant"})
    with pytest.raises(PermanentProviderError) as info:
        await refresher.access_token()
    assert info.value.code == "invalid_grant"
