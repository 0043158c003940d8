"""Event names for booking state changes, staged into the outbox by the lead's payment wiring."""

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

ALL = (
    BOOKING_PLACED,
    BOOKING_RESCHEDULED,
    BOOKING_CANCELLED,
    BOOKING_CHECKED_IN,
    BOOKING_COMPLETED,
    BOOKING_NO_SHOW,
    BOOKING_EXPIRED,
)
