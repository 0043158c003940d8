"""The worker composition root registers the integration handlers and their config."""

from __future__ import annotations

import worker
from app.gateways.runtime import SECRET_BOX
from app.integrations.crypto import SecretBox
from app.settings import Settings
from app.worker.jobs.calendar_sync import GOOGLE_CONFIG, sync_booking_calendar
from app.worker.jobs.notifications import REMIND, WHATSAPP_CONFIG, send_booking_message


def test_booking_topics_reach_calendar_and_whatsapp_handlers() -> None:
    dispatcher = worker.build_dispatcher()
    confirmed = dispatcher.handlers_for("booking.confirmed")
    assert sync_booking_calendar in confirmed and send_booking_message in confirmed
    assert send_booking_message in dispatcher.handlers_for("notification.booking_reminder")
    assert sync_booking_calendar in dispatcher.handlers_for("booking.no_show")
    assert send_booking_message not in dispatcher.handlers_for("booking.no_show")
    _, crons, _ = worker._collect()
    assert REMIND in {cron.name for cron in crons}


def test_integration_extras_fall_back_to_the_providers_public_endpoints(
    settings: Settings,
) -> None:
    extras = worker.integration_extras(settings)
    assert isinstance(extras[SECRET_BOX], SecretBox)
    assert extras[GOOGLE_CONFIG].api_base == "https://www.googleapis.com/calendar/v3"
    assert extras[WHATSAPP_CONFIG].api_base == "https://graph.facebook.com"
    assert extras[WHATSAPP_CONFIG].api_version == "v21.0"
