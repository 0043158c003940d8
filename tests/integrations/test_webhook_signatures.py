"""Stripe and sandbox webhook signatures: `t=...,v1=...` HMAC-SHA256 with a 300 s window."""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest

from app.integrations import sandbox
from app.integrations.errors import InvalidSignature
from app.integrations.stripe_client import verify_webhook

SECRET = "whsec_test_secret"
NOW = 1_767_225_600
BODY = json.dumps({"id": "evt_1", "type": "payment_intent.succeeded", "data": {}}).encode()


def stripe_header(body: bytes, secret: str, timestamp: int) -> str:
    # Computed independently of the code under test, per Stripe's documented scheme.
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={digest.hexdigest()}"


def test_stripe_valid_signature_returns_event() -> None:
    event = verify_webhook(BODY, stripe_header(BODY, SECRET, NOW - 10), SECRET, now=NOW)
    assert event["id"] == "evt_1"


def test_stripe_tampered_body_is_rejected() -> None:
    header = stripe_header(BODY, SECRET, NOW)
    with pytest.raises(InvalidSignature):
        verify_webhook(BODY.replace(b"evt_1", b"evt_2"), header, SECRET, now=NOW)


def test_stripe_wrong_secret_is_rejected() -> None:
    with pytest.raises(InvalidSignature):
        verify_webhook(BODY, stripe_header(BODY, "whsec_other", NOW), SECRET, now=NOW)


@pytest.mark.parametrize("age", [301, -301, 10_000])
def test_stripe_stale_or_future_timestamp_is_rejected(age: int) -> None:
    header = stripe_header(BODY, SECRET, NOW - age)
    with pytest.raises(InvalidSignature, match="tolerance"):
        verify_webhook(BODY, header, SECRET, now=NOW)


def test_stripe_timestamp_at_tolerance_edge_is_accepted() -> None:
    assert verify_webhook(BODY, stripe_header(BODY, SECRET, NOW - 300), SECRET, now=NOW)


def test_stripe_any_of_multiple_v1_signatures_may_match() -> None:
    good = stripe_header(BODY, SECRET, NOW).split("v1=")[1]
    header = f"t={NOW},v1={'0' * 64},v0=legacy,v1={good}"
    assert verify_webhook(BODY, header, SECRET, now=NOW)["type"] == "payment_intent.succeeded"


def test_stripe_signature_for_other_timestamp_does_not_verify() -> None:
    good = stripe_header(BODY, SECRET, NOW - 5).split("v1=")[1]
    with pytest.raises(InvalidSignature):
        verify_webhook(BODY, f"t={NOW},v1={good}", SECRET, now=NOW)


@pytest.mark.parametrize("header", [None, "", "garbage", f"t={NOW}", "v1=abc", "t=x,v1=abc"])
def test_stripe_missing_or_malformed_header_is_rejected(header: str | None) -> None:
    with pytest.raises(InvalidSignature):
        verify_webhook(BODY, header, SECRET, now=NOW)


def test_stripe_signed_non_event_is_rejected() -> None:
    body = b'{"hello": "world"}'
    with pytest.raises(InvalidSignature, match="event"):
        verify_webhook(body, stripe_header(body, SECRET, NOW), SECRET, now=NOW)


def test_sandbox_roundtrip_and_header_matches_stripe_scheme() -> None:
    event = {"id": "sbx_evt_1", "type": "payment.succeeded", "payment_id": "p1"}
    body, header = sandbox.signed_event(event, SECRET, NOW)
    assert header == stripe_header(body, SECRET, NOW)
    assert sandbox.verify(body, header, SECRET, now=NOW + 299) == event


def test_sandbox_rejects_tampered_stale_and_missing() -> None:
    body, header = sandbox.signed_event({"id": "e", "type": "payment.succeeded"}, SECRET, NOW)
    with pytest.raises(InvalidSignature):
        sandbox.verify(body.replace(b"succeeded", b"declined"), header, SECRET, now=NOW)
    with pytest.raises(InvalidSignature, match="tolerance"):
        sandbox.verify(body, header, SECRET, now=NOW + 301)
    with pytest.raises(InvalidSignature):
        sandbox.verify(body, None, SECRET, now=NOW)
    with pytest.raises(InvalidSignature):
        sandbox.verify(body, header, "", now=NOW)
