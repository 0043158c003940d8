"""What each step of the booking flow shows: the month, a day's times, a stay's nights, a
rental's starts and lengths, each linked to the next step by GET query parameters."""

from __future__ import annotations

import uuid
from datetime import date, datetime, timedelta
from typing import Any, cast
from urllib.parse import urlencode

from app.availability.service import interval_rule
from app.edge.web import calendar as cal
from app.edge.web.queries import MonthAvailability
from app.edge.web.rendering import AnyRequest, page_lang
from app.edge.web.shop import ServiceInfo
from app.presentation.i18n import translator


def book_url(slug: str, **params: Any) -> str:
    query = urlencode({k: str(v) for k, v in params.items() if v not in (None, "")})
    return f"/b/{slug}/book?{query}"


def details_url(slug: str, **params: Any) -> str:
    query = urlencode({k: str(v) for k, v in params.items() if v not in (None, "")})
    return f"/b/{slug}/book/details?{query}"


def parse_month_or_day(month: str | None, day: date | None) -> tuple[int, int] | None:
    parsed = cal.parse_month(month)
    if parsed is None and day is not None:
        return day.year, day.month
    return parsed


def month_context(
    request: AnyRequest,
    slug: str,
    found: MonthAvailability,
    service_id: uuid.UUID,
    branch_id: uuid.UUID,
    who: str | None,
    party: int,
) -> dict[str, Any]:
    shop = found.shop
    service = shop.service(service_id)
    branch = shop.branch(branch_id)
    base = {"service": service_id, "branch": branch_id, "who": who, "party": party}
    prev_year, prev_month = cal.shift_month(found.year, found.month, -1)
    next_year, next_month = cal.shift_month(found.year, found.month, 1)
    has_prev = (found.year, found.month) > (found.today.year, found.today.month)
    has_next = date(next_year, next_month, 1) <= found.last_bookable
    lang = page_lang(request)
    return {
        "shop": shop,
        "service": service,
        "branch": branch,
        "tz": found.tz,
        "who": who or "",
        "party": party,
        "resources": service.resources_at(branch_id),
        "capacity": service.capacity_at(branch_id),
        "price": service.price_at(branch_id),
        "year": found.year,
        "month": found.month,
        "month_key": cal.month_key(found.year, found.month),
        "weeks": cal.weeks(found.year, found.month, translator(lang).locale.first_week_day),
        "free": found.free,
        "today": found.today,
        "prev_url": book_url(slug, **base, month=cal.month_key(prev_year, prev_month))
        if has_prev
        else None,
        "next_url": book_url(slug, **base, month=cal.month_key(next_year, next_month))
        if has_next
        else None,
        "day_url": lambda day: book_url(slug, **base, day=day.isoformat()) + "#times",
    }


def day_context(
    slug: str,
    found: MonthAvailability,
    service_id: uuid.UUID,
    branch_id: uuid.UUID,
    who: str | None,
    party: int,
    day: date | None,
    at: datetime | None,
) -> dict[str, Any]:
    if day is None:
        return {"day": None}
    shop = found.shop
    service = shop.service(service_id)
    price = service.price_at(branch_id)
    tz = found.tz
    base = {"service": service_id, "branch": branch_id, "who": who, "party": party}
    context: dict[str, Any] = {"day": day, "at": at}
    if service.policy == "nightly":
        context["stays"] = [
            {
                "choice": stay,
                "total": cal.estimate(price, stay.start, stay.end, stay.nights, party),
                "url": details_url(
                    slug,
                    **base,
                    start=stay.start.astimezone(tz).isoformat(),
                    end=stay.end.astimezone(tz).isoformat(),
                ),
            }
            for stay in cal.stays_from(found.availability, day, tz)
        ]
    elif service.policy == "interval":
        context.update(_interval_options(slug, found, service, branch_id, base, day, at))
    else:
        context["times"] = [
            {
                "option": option,
                "url": details_url(slug, **base, start=option.start.astimezone(tz).isoformat()),
            }
            for option in cal.times_on(found.availability, day, tz)
        ]
    return context


def _interval_options(
    slug: str,
    found: MonthAvailability,
    service: ServiceInfo,
    branch_id: uuid.UUID,
    base: dict[str, Any],
    day: date,
    at: datetime | None,
) -> dict[str, Any]:
    # The catalog's read model carries the same fields the rule reads from the row.
    rule = interval_rule(cast(Any, service.view))
    tz = found.tz
    starts = cal.interval_starts(found.availability, day, tz, rule.granularity, rule.min_length)
    context: dict[str, Any] = {
        "starts": [
            {
                "start": start,
                "url": book_url(
                    slug, **base, day=day.isoformat(), at=start.astimezone(tz).isoformat()
                )
                + "#lengths",
            }
            for start in starts
        ]
    }
    if at is not None:
        price = service.price_at(branch_id)
        lengths = cal.interval_lengths(
            found.availability, at, rule.granularity, rule.min_length, rule.max_length
        )
        context["lengths"] = [
            {
                "minutes": int(length / timedelta(minutes=1)),
                "end": at + length,
                "total": cal.estimate(price, at, at + length, 0, base["party"]),
                "url": details_url(
                    slug,
                    **base,
                    start=at.astimezone(tz).isoformat(),
                    end=(at + length).astimezone(tz).isoformat(),
                ),
            }
            for length in lengths
        ]
    return context
