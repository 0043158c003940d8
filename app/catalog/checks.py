"""Field checks for catalog input. They collect every problem before failing, so one 422
names all the bad fields at once instead of making the caller fix them one round trip at a time."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, time
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from app.errors import ValidationFailed

MAX_BPS = 10_000
MAX_CAPACITY = 10_000
MAX_MINUTES = 60 * 24 * 366
MAX_MINOR = 10**15
MAX_NIGHTS = 366
CLOCK = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)(?::([0-5]\d))?$")


@dataclass
class Problems:
    """Accumulates field errors; `raise_if_any` turns them into one ValidationFailed."""

    items: list[dict[str, Any]] = field(default_factory=list)

    def add(self, field_name: str, message: str) -> None:
        self.items.append({"field": field_name, "message": message})

    def raise_if_any(self) -> None:
        if self.items:
            fields = ", ".join(item["field"] for item in self.items)
            raise ValidationFailed(f"Invalid fields: {fields}", errors=list(self.items))

    def text(self, value: str, name: str, *, max_length: int = 200) -> str:
        value = value.strip()
        if not 1 <= len(value) <= max_length:
            self.add(name, f"must be 1-{max_length} characters")
        elif "\x00" in value:
            self.add(name, "must not contain NUL characters")
        return value

    def int_range(self, value: int | None, name: str, low: int, high: int) -> None:
        if value is not None and not low <= value <= high:
            self.add(name, f"must be between {low} and {high}")

    def bps(self, value: int | None, name: str) -> None:
        self.int_range(value, name, 0, MAX_BPS)

    def minor(self, value: int | None, name: str) -> None:
        self.int_range(value, name, 0, MAX_MINOR)

    def required(self, value: object, name: str, why: str) -> bool:
        if value is None:
            self.add(name, f"is required {why}")
            return False
        return True

    def forbidden(self, value: object, name: str, why: str) -> None:
        if value is not None:
            self.add(name, f"is not used {why}")

    def timezone(self, value: str, name: str) -> None:
        try:
            if not value or value.startswith("/") or ".." in value or value != value.strip():
                raise ValueError(value)
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            self.add(name, f"unknown IANA timezone {value!r}")

    def clock(self, value: str | None, name: str) -> time | None:
        """Parse a local wall-clock time "HH:MM" or "HH:MM:SS"."""
        if value is None:
            return None
        match = CLOCK.match(value)
        if match is None:
            self.add(name, "must be a time of day HH:MM (00:00-23:59)")
            return None
        hour, minute, second = match.groups()
        return time(int(hour), int(minute), int(second or 0))

    def aware(self, value: datetime, name: str) -> bool:
        if value.tzinfo is None or value.utcoffset() is None:
            self.add(name, "must include a UTC offset (RFC 3339)")
            return False
        return True

    def unique(self, values: Sequence[object], name: str) -> None:
        if len(set(values)) != len(values):
            self.add(name, "must not contain duplicates")

    def known(self, wanted: Iterable[object], existing: set[Any], name: str, what: str) -> None:
        missing = sorted({str(value) for value in wanted if value not in existing})
        if missing:
            self.add(name, f"unknown {what}: {', '.join(missing)}")

    def usable(
        self,
        wanted: Iterable[object],
        active: Mapping[Any, bool],
        name: str,
        what: str,
        *,
        linked: Iterable[object] = (),
    ) -> None:
        """Every id is this tenant's (`active` maps the ones that are to whether they are
        active), and none is archived, except those already `linked` (kept, not added)."""
        wanted = list(wanted)
        self.known(wanted, set(active), name, what)
        kept = set(linked)
        archived = sorted(
            {str(value) for value in wanted if active.get(value) is False and value not in kept}
        )
        if archived:
            self.add(name, f"archived {what}: {', '.join(archived)}")


def clock_text(value: time | None) -> str | None:
    if value is None:
        return None
    return value.strftime("%H:%M:%S" if value.second else "%H:%M")


def check_address(problems: Problems, address: str | None) -> str | None:
    """An optional street address: blank means none; otherwise at most 500 characters."""
    if address is None or not address.strip():
        return None
    return problems.text(address, "address", max_length=500)
