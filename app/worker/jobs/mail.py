"""Outbox handlers of the mail channel, registered by the worker (JOB_MODULES)."""

from __future__ import annotations

from app.bookings.events import BOOKING_CONFIRMED
from app.mail.confirmation import CHANNEL, send_confirmation
from app.outbox.dispatch import Dispatcher

CONFIRMED = BOOKING_CONFIRMED


def register_handlers(dispatcher: Dispatcher) -> None:
    dispatcher.register(CONFIRMED, send_confirmation, channel=CHANNEL)
