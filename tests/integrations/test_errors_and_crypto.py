from __future__ import annotations

import httpx
import pytest
import respx

from app.integrations.crypto import DecryptionFailed, SecretBox
from app.integrations.errors import (
    PermanentProviderError,
    RetryableProviderError,
    classify_transport_error,
    parse_retry_after,
    send,
)

SECRET = "a-very-long-application-secret-key"


def test_retry_after_seconds_and_http_date() -> None:
    assert parse_retry_after("120") == 120.0
    assert parse_retry_after(" 1.5 ") == 1.5
    date = "Sat, 21 Nov 2026 17:00:00 GMT"
    assert parse_retry_after("Sat, 21 Nov 2026 17:00:45 GMT", date) == 45.0
    assert parse_retry_after("Sat, 21 Nov 2026 16:59:00 GMT", date) == 0.0
    assert parse_retry_after("Sat, 21 Nov 2026 17:00:45 GMT") is None
    assert parse_retry_after("soon", date) is None
    assert parse_retry_after(None) is None


@pytest.mark.parametrize(
    "exc",
    [
        httpx.ConnectTimeout("t"),
        httpx.ReadTimeout("t"),
        httpx.ConnectError("refused"),
        httpx.RemoteProtocolError("reset"),
    ],
)
def test_transport_failures_are_retryable(exc: httpx.HTTPError) -> None:
    assert isinstance(classify_transport_error("p", exc), RetryableProviderError)


def test_unsupported_protocol_is_permanent() -> None:
    error = classify_transport_error("p", httpx.UnsupportedProtocol("ftp"))
    assert isinstance(error, PermanentProviderError)


@pytest.mark.parametrize(
    ("status", "expected", "retry_after"),
    [
        (500, RetryableProviderError, None),
        (502, RetryableProviderError, None),
        (429, RetryableProviderError, 9.0),
        (408, RetryableProviderError, None),
        (400, PermanentProviderError, None),
        (404, PermanentProviderError, None),
        (422, PermanentProviderError, None),
    ],
)
async def test_send_classifies_http_status(
    status: int, expected: type[Exception], retry_after: float | None
) -> None:
    headers = {"Retry-After": "9"} if status == 429 else {}
    async with httpx.AsyncClient() as client:
        with respx.mock() as router:
            router.get("https://p.test/x").respond(status, headers=headers, json={"message": "m"})
            with pytest.raises(expected) as info:
                await send(client, "p", client.build_request("GET", "https://p.test/x"))
    assert info.value.status == status  # type: ignore[attr-defined]
    if isinstance(info.value, RetryableProviderError):
        assert info.value.retry_after == retry_after


def test_secret_box_roundtrip_with_associated_data() -> None:
    box = SecretBox(SECRET)
    token = box.encrypt("1//refresh-token", associated_data="tenant-1:res-1:gcal")
    assert "refresh-token" not in token
    assert box.decrypt(token, associated_data="tenant-1:res-1:gcal") == "1//refresh-token"
    assert box.encrypt("x") != box.encrypt("x")  # fresh nonce every time


def test_secret_box_rejects_other_row_tamper_and_other_key() -> None:
    box = SecretBox(SECRET)
    token = box.encrypt("secret", associated_data="tenant-1")
    with pytest.raises(DecryptionFailed):
        box.decrypt(token, associated_data="tenant-2")
    tampered = token[:-2] + ("A" if token[-2] != "A" else "B") + token[-1]
    with pytest.raises(DecryptionFailed):
        box.decrypt(tampered, associated_data="tenant-1")
    with pytest.raises(DecryptionFailed):
        SecretBox("another-long-application-secret").decrypt(token, associated_data="tenant-1")
    with pytest.raises(DecryptionFailed):
        box.decrypt("not-a-token")


def test_secret_box_rotation_keeps_old_tokens_readable() -> None:
    old = SecretBox(SECRET)
    token = old.encrypt("api-key")
    rotated = SecretBox("the-new-application-secret-key", previous=[SECRET])
    assert rotated.decrypt(token) == "api-key"
    assert rotated.needs_rotation(token)
    assert not rotated.needs_rotation(rotated.encrypt("api-key"))


def test_secret_box_refuses_short_secret() -> None:
    with pytest.raises(ValueError):
        SecretBox("short")
