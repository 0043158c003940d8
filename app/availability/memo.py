"""A per-process memo of computed time-slot availability, for the API's availability route.

An entry is keyed by everything the answer depends on: the business, service, branch and
timezone, the resources and their capacities, the service's slot rule, the party size, the
dates, the minute, and a fingerprint of the calendar rows the engine reads
(app.availability.service.calendar_version: bookings, holds and whether they ran out,
working hours, overrides, time off). A changed booking, hold, schedule or service misses at
once; time moving on misses within a minute; a remembered answer is filtered again by the
minimum notice when served, so a slot is never offered inside it. The rendering an edge made
of an entry (its JSON) is kept beside it and reused while nothing was filtered out.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from app.availability.service import Availability

MAX_ENTRIES = 128


@dataclass(slots=True)
class Remembered:
    """An answer computed from calendar rows that still hold, and the edge's rendering of it
    (None until an edge renders it)."""

    found: Availability
    rendered: bytes | None = None


class AvailabilityMemo:
    """Least recently used first out, at most `size` answers."""

    def __init__(self, size: int = MAX_ENTRIES) -> None:
        self._size = size
        self._entries: OrderedDict[Hashable, Remembered] = OrderedDict()

    def get(self, key: Hashable) -> Remembered | None:
        found = self._entries.get(key)
        if found is not None:
            self._entries.move_to_end(key)
        return found

    def put(self, key: Hashable, entry: Remembered) -> None:
        self._entries[key] = entry
        self._entries.move_to_end(key)
        while len(self._entries) > self._size:
            self._entries.popitem(last=False)

    def __len__(self) -> int:
        return len(self._entries)
