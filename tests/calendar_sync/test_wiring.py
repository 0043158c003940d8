"""The worker composition root registers the integration handlers and their config."""

from __future__ import annotations

import worker
from app.integrations.crypto import SecretBox
from app.settings import Settings
from app.worker import registry
from app.worker.jobs.calendar_sync import sync_booking_calendar
from app.worker.jobs.notifications import REMIND, send_booking_message


def test_booking_topics_reach_calendar_and_whatsapp_handlers() -> None:
    dispatcher = registry.build_dispatcher()
    confirmed = dispatcher.handlers_for("booking.confirmed")
    assert sync_booking_calendar in confirmed and send_booking_message in confirmed
    assert send_booking_message in dispatcher.handlers_for("notification.booking_reminder")
    assert sync_booking_calendar in dispatcher.handlers_for("booking.no_show")
    assert send_booking_message not in dispatcher.handlers_for("booking.no_show")
    assert REMIND in {cron.name for cron in registry.CRON_JOBS}


def test_integration_config_falls_back_to_the_providers_public_endpoints(
    settings: Settings,
) -> None:
    deps = worker.build_deps(settings)
    assert isinstance(deps.providers.secret_box, SecretBox)
    assert deps.google.api_base == "https://www.googleapis.com/calendar/v3"
    assert deps.whatsapp.api_base == "https://graph.facebook.com"
    assert deps.whatsapp.api_version == "v21.0"
