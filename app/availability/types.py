"""Value types of the availability engine. Re-exported by app.availability.engine."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import NamedTuple
from uuid import UUID

from app.availability.schedule import Window
from app.errors import ValidationFailed

ZERO = timedelta(0)


@dataclass(frozen=True, slots=True)
class Busy:
    """An existing booking, already widened by its own buffers (see `busy_from_booking`)."""

    start: datetime
    end: datetime
    party_size: int


def busy_from_booking(
    start: datetime,
    end: datetime,
    party_size: int,
    buffer_before: timedelta = ZERO,
    buffer_after: timedelta = ZERO,
) -> Busy:
    return Busy(start - buffer_before, end + buffer_after, party_size)


@dataclass(frozen=True, slots=True)
class ResourceCalendar:
    """One resource as the engine sees it.

    `open` comes from `open_windows` (time off already removed). `time_off` is optional and
    blocks every policy outright; pass it for nightly stays, whose nights only ask for "an
    open window on that date" and would otherwise ignore time off covering part of a date.
    """

    resource_id: UUID
    capacity: int
    open: Sequence[Window]
    busy: Sequence[Busy]
    time_off: Sequence[Window] = ()


def _check_spans(**spans: timedelta) -> None:
    for name, value in spans.items():
        if value < ZERO:
            raise ValidationFailed(f"{name} must not be negative", field=name)


@dataclass(frozen=True, slots=True)
class SlotRule:
    duration: timedelta
    step: timedelta
    buffer_before: timedelta
    buffer_after: timedelta
    min_notice: timedelta
    max_advance: timedelta

    def __post_init__(self) -> None:
        if self.duration <= ZERO or self.step <= ZERO:
            raise ValidationFailed("duration and step must be positive", field="duration")
        _check_spans(
            buffer_before=self.buffer_before,
            buffer_after=self.buffer_after,
            min_notice=self.min_notice,
            max_advance=self.max_advance,
        )


class Slot(NamedTuple):
    """A bookable [start, end) on a resource; `remaining` is the capacity left before it.

    A NamedTuple, not a frozen dataclass: a query returns tens of thousands of these, and a
    frozen dataclass costs several times more to build.
    """

    start: datetime
    end: datetime
    resource_id: UUID
    remaining: int


@dataclass(frozen=True, slots=True)
class NightlyRule:
    check_in: time
    check_out: time
    min_nights: int
    max_nights: int
    min_notice: timedelta
    max_advance: timedelta

    def __post_init__(self) -> None:
        if not 1 <= self.min_nights <= self.max_nights:
            raise ValidationFailed("need 1 <= min_nights <= max_nights", field="min_nights")
        _check_spans(min_notice=self.min_notice, max_advance=self.max_advance)


@dataclass(frozen=True, slots=True)
class StayOption:
    """Stays from one check-in date on one resource.

    `nights`, `ends` and `remaining` are parallel: for nights[i] the stay ends at ends[i]
    (check-out, UTC) and remaining[i] places are left over the whole stay before booking.
    """

    check_in_date: date
    nights: list[int]
    resource_id: UUID
    start: datetime
    ends: list[datetime] = field(default_factory=list)
    remaining: list[int] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class IntervalRule:
    granularity: timedelta
    min_length: timedelta
    max_length: timedelta
    buffer_before: timedelta
    buffer_after: timedelta
    min_notice: timedelta
    max_advance: timedelta

    def __post_init__(self) -> None:
        if self.granularity <= ZERO:
            raise ValidationFailed("granularity must be positive", field="granularity")
        if not ZERO < self.min_length <= self.max_length:
            raise ValidationFailed("need 0 < min_length <= max_length", field="min_length")
        _check_spans(
            buffer_before=self.buffer_before,
            buffer_after=self.buffer_after,
            min_notice=self.min_notice,
            max_advance=self.max_advance,
        )
