"""The worker sends Web Push on its own outbox channel for new and cancelled bookings, with
the VAPID keys from settings."""

from __future__ import annotations

import dataclasses

import pytest

import worker
from app.gateways.webpush import VapidKeys
from app.settings import Settings, load_settings
from app.worker.jobs.push import CHANNEL, send_booking_push
from app.worker.registry import build_dispatcher


def test_new_and_cancelled_bookings_have_a_web_push_channel() -> None:
    dispatcher = build_dispatcher()
    for topic in ("booking.placed", "booking.cancelled"):
        assert dispatcher.route(topic, CHANNEL) is not None
        assert send_booking_push in dispatcher.handlers_for(topic)
    for topic in ("booking.confirmed", "booking.completed", "booking.refunded"):
        assert dispatcher.route(topic, CHANNEL) is None


def test_vapid_keys_come_from_settings(settings: Settings, vapid: VapidKeys) -> None:
    configured = dataclasses.replace(
        settings,
        vapid_public_key=vapid.public_key,
        vapid_private_key=vapid.private_key,
        vapid_subject="mailto:ops@reckon.test",
    )
    assert worker.build_deps(configured).vapid == vapid
    assert not worker.build_deps(settings).vapid.configured


def test_vapid_settings_are_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VAPID_PUBLIC_KEY", "BPublic")
    monkeypatch.setenv("VAPID_PRIVATE_KEY", "private")
    monkeypatch.setenv("VAPID_SUBJECT", "mailto:ops@reckon.test")
    loaded = load_settings("postgresql://x@localhost/db", "redis://localhost/0")
    assert (loaded.vapid_public_key, loaded.vapid_private_key, loaded.vapid_subject) == (
        "BPublic",
        "private",
        "mailto:ops@reckon.test",
    )
    assert "private" not in repr(loaded)
