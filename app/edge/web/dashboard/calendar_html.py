"""The calendar's blocks and free-time links as HTML, built in Python: a busy week has
thousands of them, and one Jinja call per attribute cost more than the rest of the page.
The markup is the template's (calendar.html includes it per column); every text that comes
from a person (customer, resource and service names) is escaped, and every label goes
through the same catalogue and formatter, each distinct instant formatted once."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from markupsafe import Markup, escape

from app.edge.web.dashboard.grid import Block, Column
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
        self.new_booking = gettext(N_("New booking with %(name)s at %(when)s"))
        self.times: dict[datetime, str] = {}
        self.whens: dict[datetime, str] = {}
        self.isos: dict[datetime, str] = {}
        self.inputs: dict[datetime, str] = {}

    def _iso(self, moment: datetime) -> str:
        found = self.isos.get(moment)
        if found is None:
            found = self.isos[moment] = moment.isoformat()
        return found

    def _input(self, moment: datetime) -> str:
        found = self.inputs.get(moment)
        if found is None:
            found = self.inputs[moment] = moment.astimezone(self.tz).strftime("%Y-%m-%dT%H:%M")
        return found

    def _time(self, moment: datetime) -> str:
        found = self.times.get(moment)
        if found is None:
            found = self.times[moment] = str(escape(self.fmt.time(moment, self.tz)))
        return found

    def _when(self, moment: datetime) -> str:
        found = self.whens.get(moment)
        if found is None:
            found = self.whens[moment] = self.fmt.datetime(moment, self.tz)
        return found

    def _free(self, column: Column) -> list[str]:
        resource = column.resource
        name = resource.name
        link = f"/dashboard/bookings/new?resource={resource.id}&amp;start="
        out = []
        for free in column.free:
            label = escape(self.new_booking % {"name": name, "when": self._when(free.start)})
            out.append(
                f'<a class="free at-{free.row} span-4" tabindex="-1" '
                f'href="{link}{self._input(free.start)}"><span class="vh">{label}</span></a>'
            )
        return out

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
            f'<span class="b-name">{escape(bk.customer_name)}</span>'
            f'<span class="b-service">{self.services.get(bk.service_id, "")}</span>'
            f"{grip}</a>"
        )

    def __call__(self, column: Column) -> Markup:
        day_iso = column.day.isoformat()
        parts = self._free(column)
        parts.extend(self._block(block, day_iso) for block in column.blocks)
        # Safe: every value above that came from a person or a catalogue was escaped.
        return Markup("\n".join(parts))  # noqa: S704
