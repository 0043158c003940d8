"""The calendar's columns, with their blocks and free-time links, as HTML built in Python: a
busy week has thousands of them, and one Jinja call per attribute cost more than the rest of
the page. calendar.html includes it once per day; every text that comes from a person
(customer, resource and service names) is escaped, and every label goes through the same
catalogue and formatter, each distinct wall-clock time formatted once and each day's free
time once for all its columns."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from markupsafe import Markup, escape

from app.edge.web.dashboard.grid import Block, Column, FreeHour
from app.presentation.formatting import Formatter
from app.presentation.i18n import N_

MOVABLE = frozenset({"pending_payment", "confirmed"})
DASH = "\u2013"


class ColumnHtml:
    def __init__(
        self,
        gettext: Callable[..., str],
        fmt: Formatter,
        tz: ZoneInfo,
        labels: Mapping[str, str],
        services: Mapping[Any, str],
    ) -> None:
        self.fmt = fmt
        self.tz = tz
        self.status = {key: str(escape(gettext(label))) for key, label in labels.items()}
        self.services = {key: str(escape(name)) for key, name in services.items()}
        self.grip = str(escape(gettext(N_("Drag to change the length"))))
        self.new_booking = str(escape(gettext(N_("New booking with %(name)s at %(when)s"))))
        self.times: dict[datetime, str] = {}
        self.clocks: dict[tuple[int, int], str] = {}
        self.isos: dict[datetime, str] = {}
        self.names: dict[str, str] = {}
        self.free_days: dict[int, str] = {}

    def _iso(self, moment: datetime) -> str:
        found = self.isos.get(moment)
        if found is None:
            found = self.isos[moment] = moment.isoformat()
        return found

    def _time(self, moment: datetime) -> str:
        found = self.times.get(moment)
        if found is None:
            # Formatted once per wall-clock time: the week repeats its times every day.
            local = moment.astimezone(self.tz)
            clock = (local.hour, local.minute)
            found = self.clocks.get(clock)
            if found is None:
                found = self.clocks[clock] = str(escape(self.fmt.time(moment, self.tz)))
            self.times[moment] = found
        return found

    def _name(self, name: str) -> str:
        found = self.names.get(name)
        if found is None:
            found = self.names[name] = str(escape(name))
        return found

    def _free_day(self, free: Sequence[FreeHour]) -> str:
        """A day's free-time links with <R> and <N> for the resource's id and name: escaped
        text never contains "<", so filling a column is two replaces, not a format per hour."""
        html = []
        for hour in free:
            when = escape(self.fmt.datetime(hour.start, self.tz))
            label = self.new_booking.replace("%(name)s", "<N>").replace("%(when)s", when)
            start = hour.start.astimezone(self.tz).strftime("%Y-%m-%dT%H:%M")
            html.append(
                f'<a class="free at-{hour.row} span-4" tabindex="-1" '
                f'href="/dashboard/bookings/new?resource=<R>&amp;start={start}">'
                f'<span class="vh">{label}</span></a>'
            )
        return "\n".join(html)

    def _free(self, column: Column) -> str:
        # One tuple per day, shared by the day's columns (grid.build_grid).
        found = self.free_days.get(id(column.free))
        if found is None:
            found = self.free_days[id(column.free)] = self._free_day(column.free)
        resource = column.resource
        return found.replace("<R>", str(resource.id)).replace("<N>", self._name(resource.name))

    def _block(self, block: Block, day_iso: str) -> str:
        bk = block.booking
        bid = str(bk.id)
        status = bk.status
        classes = f"block st-{status} at-{block.row} span-{block.span} lane-{block.lane}"
        if block.clipped_start:
            classes += " cut-start"
        if block.clipped_end:
            classes += " cut-end"
        movable = status in MOVABLE
        grip = (
            f'<span class="grip" aria-hidden="true" title="{self.grip}"></span>' if movable else ""
        )
        drag = ' data-movable="true"' if movable else ""
        return (
            f'<a id="b-{bid}-{day_iso}" class="{classes}" href="/dashboard/bookings/{bid}" '
            f'data-booking="{bid}" data-start="{self._iso(bk.start)}" '
            f'data-end="{self._iso(bk.end)}" data-row="{block.row}" data-span="{block.span}" '
            f'data-status="{status}"{drag}>'
            f'<span class="b-time">{self._time(bk.start)}{DASH}{self._time(bk.end)}</span>'
            f'<span class="b-status">{self.status.get(status, status)}</span>'
            f'<span class="b-name">{self._name(bk.customer_name)}</span>'
            f'<span class="b-service">{self.services.get(bk.service_id, "")}</span>'
            f"{grip}</a>"
        )

    def _column(self, column: Column, day_label: str, rows: int) -> str:
        day_iso = column.day.isoformat()
        name = self._name(column.resource.name)
        parts = [
            f'<div class="cal-col-wrap">\n<h3 class="cal-res-head">{name}</h3>\n'
            f'<div class="cal-grid cal-col lanes-{column.lanes}" role="group" '
            f'aria-label="{name}, {day_label}" data-day="{day_iso}" '
            f'data-resource="{column.resource.id}" data-origin="{column.origin.isoformat()}" '
            f'data-rows="{rows}">\n<span class="fill span-{rows}" aria-hidden="true"></span>'
        ]
        if column.free:
            parts.append(self._free(column))
        parts.extend(self._block(block, day_iso) for block in column.blocks)
        parts.append("</div>\n</div>")
        return "\n".join(parts)

    def __call__(self, columns: Iterable[Column], day_label: str, rows: int) -> Markup:
        """A day's columns (one per resource), each a labelled group of its free time and
        blocks."""
        label = str(escape(day_label))
        # Safe: every value below that came from a person or a catalogue was escaped.
        return Markup("\n".join(self._column(c, label, rows) for c in columns))  # noqa: S704
