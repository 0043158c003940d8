"""Outbox topics of booking state changes: the one place a `booking.*` topic is spelled
(staged by bookings and checkout; read by calendar sync, mail, notifications, live events)."""

from __future__ import annotations

BOOKING_PLACED = "booking.placed"
BOOKING_CONFIRMED = "booking.confirmed"
BOOKING_REFUNDED = "booking.refunded"
BOOKING_RESCHEDULED = "booking.rescheduled"
BOOKING_CANCELLED = "booking.cancelled"
BOOKING_CHECKED_IN = "booking.checked_in"
BOOKING_COMPLETED = "booking.completed"
BOOKING_NO_SHOW = "booking.no_show"
BOOKING_EXPIRED = "booking.expired"
BOOKING_PAYMENT_FAILED = "booking.payment_failed"

ALL = (
    BOOKING_PLACED,
    BOOKING_RESCHEDULED,
    BOOKING_CANCELLED,
    BOOKING_CHECKED_IN,
    BOOKING_COMPLETED,
    BOOKING_NO_SHOW,
    BOOKING_EXPIRED,
)
