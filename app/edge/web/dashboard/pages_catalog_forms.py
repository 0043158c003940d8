"""What the catalog and settings pages share: reading a form's text into the values a use case
takes (money in major units, percentages, whole numbers, times), and turning the domain's
ValidationFailed into a message next to each named field.

These parse what a browser sends; the rules about what is allowed stay in the use cases.
A value that is not even a number is reported against its field before any use case runs,
so nothing changes."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo

from litestar.datastructures import FormMultiDict

from app import errors
from app.edge.http import principal
from app.edge.web.rendering import AnyRequest
from app.money import currency_exponent
from app.presentation.i18n import N_
from app.tenancy.service import Principal

KIND_LABELS = {
    "staff": N_("Staff member"),
    "room": N_("Room"),
    "unit": N_("Unit (cabin, apartment)"),
    "equipment": N_("Equipment"),
}
POLICY_LABELS = {
    "time_slot": N_("Appointments (fixed length)"),
    "nightly": N_("Stays (by the night)"),
    "interval": N_("Rentals (by the hour)"),
}
GENERIC = N_("Check this value.")
FORM = N_("Some details are not valid. Check them and try again.")
INDEXED = re.compile(r"^([a-z_.]+)\[(\d+)\](?:\.([a-z_]+))?$")


def actor(request: AnyRequest) -> Principal:
    return principal(request)


def as_uuid(text: object) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(text or ""))
    except ValueError:
        return None


def money_text(amount_minor: int | None, currency: str) -> str:
    """Minor units as a form shows them: 35000 EGP -> "350.00"."""
    if amount_minor is None:
        return ""
    exponent = currency_exponent(currency)
    return f"{Decimal(amount_minor).scaleb(-exponent):.{exponent}f}"


def percent_text(bps: int | None) -> str:
    """Basis points as a percentage: 1250 -> "12.5"."""
    if bps is None:
        return ""
    return format(Decimal(bps) / 100, "f")


@dataclass
class Form:
    """A submitted form: its raw values (to show again) and the fields it could not read."""

    data: FormMultiDict
    values: dict[str, Any] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)

    def text(self, name: str, *, limit: int = 2000) -> str:
        value = str(self.data.get(name) or "").strip()[:limit]
        self.values[name] = value
        return value

    def texts(self, name: str) -> list[str]:
        return [str(v).strip()[:200] for v in self.data.getall(name, [])]

    def flag(self, name: str) -> bool:
        value = str(self.data.get(name) or "") in ("1", "on", "true")
        self.values[name] = value
        return value

    def whole(self, name: str, message: str = GENERIC) -> int | None:
        """An optional whole number; text that is not one is this field's error."""
        return self._parse(name, message, parse_whole)

    def money(self, name: str, currency: str, message: str) -> int | None:
        """An optional amount in major units ("350", "350.50"), as minor units."""
        return self._parse(name, message, lambda text: _minor(text, currency))

    def percent(self, name: str, message: str) -> int | None:
        """An optional percentage ("10", "12.5"), as basis points."""
        return self._parse(name, message, parse_bps)

    def _parse(self, name: str, message: str, parse: Callable[[str], int | None]) -> int | None:
        text = self.text(name)
        if not text:
            return None
        value = parse(text)
        if value is None:
            self.errors.setdefault(name, message)
        return value


def parse_whole(text: str) -> int | None:
    return int(text) if re.fullmatch(r"-?\d{1,12}", text) else None


def parse_minor(text: str, currency: str) -> int | None:
    """'350', '350.5' or '350,50' in `currency` -> minor units; None when it is not one."""
    return _minor(text.strip(), currency)


def _minor(text: str, currency: str) -> int | None:
    exponent = currency_exponent(currency)
    decimals = max(exponent, 1)
    if not re.fullmatch(rf"-?\d{{1,15}}(?:[.,]\d{{1,{decimals}}})?", text):
        return None
    try:
        amount = Decimal(text.replace(",", ".")).scaleb(exponent)
    except InvalidOperation:
        return None
    return int(amount) if amount == amount.to_integral_value() else None


def parse_bps(text: str) -> int | None:
    if not re.fullmatch(r"-?\d{1,5}(?:[.,]\d{1,2})?", text):
        return None
    return int(Decimal(text.replace(",", ".")) * 100)


def local_moment(text: str, tz: ZoneInfo) -> datetime | None:
    """A datetime-local input's value as a time in `tz`."""
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        return None
    return value.replace(tzinfo=tz) if value.tzinfo is None else value


def field_errors(
    error: errors.ValidationFailed,
    messages: Mapping[str, str],
    rename: Callable[[str], str | None] = lambda name: name,
) -> dict[str, str]:
    """The form fields a ValidationFailed names (its `errors` list uses the API's field names,
    e.g. `price.amount_minor`), each with this page's message; a field the page does not show
    becomes a message for the whole form."""
    found: dict[str, str] = {}
    for problem in error.errors or [{"field": error.context.get("field", "")}]:
        name = rename(str(problem.get("field", "")))
        if name is None or name not in messages:
            found.setdefault("form", FORM)
        else:
            found.setdefault(name, messages[name])
    return found


def indexed(name: str) -> tuple[str, int, str] | None:
    """`weekly[3].end` -> ("weekly", 3, "end")."""
    match = INDEXED.match(name)
    if match is None:
        return None
    return match.group(1), int(match.group(2)), match.group(3) or ""
