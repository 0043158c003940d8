"""A small per-process memo for the booking page's month: its free days and the free times
of the days asked for.

Entries are keyed by everything the answer depends on, including a fingerprint of the
calendar rows (app.availability.service.calendar_version) and the minute, so a changed
booking, hold, schedule or service misses at once and time moving on misses within a
minute; a remembered day's times are filtered again by the minimum notice when served. A
free day that filled up within that minute only links to a day page that says nothing is
free: a taken time is never offered, because taking it changes the fingerprint.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable, Mapping
from dataclasses import dataclass, field
from datetime import date

from app.availability.service import Availability

MAX_ENTRIES = 256


@dataclass(slots=True)
class MonthEntry:
    free: Mapping[date, int]
    days: dict[date, Availability] = field(default_factory=dict)


class FreeDayMemo:
    """Least recently used first out, at most `size` months."""

    def __init__(self, size: int = MAX_ENTRIES) -> None:
        self._size = size
        self._entries: OrderedDict[Hashable, MonthEntry] = OrderedDict()

    def get(self, key: Hashable) -> MonthEntry | None:
        found = self._entries.get(key)
        if found is not None:
            self._entries.move_to_end(key)
        return found

    def put(self, key: Hashable, entry: MonthEntry) -> None:
        self._entries[key] = entry
        self._entries.move_to_end(key)
        while len(self._entries) > self._size:
            self._entries.popitem(last=False)
