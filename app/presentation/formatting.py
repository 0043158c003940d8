"""The one formatter for what pages and mails show: money (Babel, exponent-aware), dates and
times in the business's timezone, in the reader's language."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache
from zoneinfo import ZoneInfo

from babel import Locale
from babel.dates import (
    format_date,
    format_skeleton,
    format_time,
    get_datetime_format,
)
from babel.dates import get_timezone_location as _timezone_location
from babel.numbers import format_currency, format_decimal

from app.money import Money, currency_exponent


# A month calendar labels every day and every free day's full date: the same few hundred
# strings per language, each a Babel pattern walk, so they are formatted once per process.
@lru_cache(maxsize=4096)
def _full_date(day: dt.date, locale: Locale) -> str:
    return format_date(day, "full", locale=locale)


@lru_cache(maxsize=1024)
def _integer(value: int, locale: Locale) -> str:
    return format_decimal(value, locale=locale)


@dataclass(frozen=True)
class Formatter:
    locale: Locale

    def money(self, amount: Money) -> str:
        value = Decimal(amount.amount_minor).scaleb(-currency_exponent(amount.currency))
        return format_currency(value, amount.currency, locale=self.locale)

    def minor(self, amount_minor: int, currency: str) -> str:
        return self.money(Money(amount_minor, currency))

    def number(self, value: int) -> str:
        if type(value) is int:
            return _integer(value, self.locale)
        return format_decimal(value, locale=self.locale)

    def date(self, day: dt.date | dt.datetime, tz: ZoneInfo | None = None) -> str:
        """Weekday, day and month, with the year: "Saturday, January 5, 2030"."""
        if isinstance(day, dt.datetime):
            day = day.astimezone(tz).date() if tz else day.date()
        return _full_date(day, self.locale)

    def short_date(self, day: dt.date) -> str:
        return format_skeleton("MMMEd", dt.datetime.combine(day, dt.time()), locale=self.locale)

    def month(self, year: int, month: int) -> str:
        return format_skeleton("yMMMM", dt.datetime(year, month, 1), locale=self.locale)

    def time(self, moment: dt.datetime, tz: ZoneInfo) -> str:
        return format_time(moment, "short", tzinfo=tz, locale=self.locale)

    def clock(self, value: dt.time) -> str:
        """A wall-clock time with no date (opening hours)."""
        return format_time(value, "short", locale=self.locale)

    def datetime(self, moment: dt.datetime, tz: ZoneInfo) -> str:
        """The full date and the short time, joined as the language joins them (CLDR)."""
        pattern = str(get_datetime_format("full", locale=self.locale))
        return pattern.replace("{1}", self.date(moment, tz)).replace("{0}", self.time(moment, tz))

    def weekday(self, index: int, width: str = "wide") -> str:
        """0 = Monday, as in the catalog's weekly hours."""
        return str(self.locale.days["format"][width][index])

    def timezone(self, tz: ZoneInfo) -> str:
        return str(_timezone_location(tz, locale=self.locale))
