"""What every list endpoint shares: a period (`from`/`to`) and a page (`limit`/`cursor`).

Periods. `from` and `to` are dates (YYYY-MM-DD) in the business's timezone, `to` included
(as in the reports), or RFC 3339 instants with an offset, `to` excluded (what the lists
took before dates, still accepted).

Pages are keyset pages on a stable order that ends in a unique column, so rows never
repeat or vanish between pages while other rows are added. A cursor is the url-safe base64
of a JSON array: the list's name, then the last row's sort key. It is opaque to clients and
checked when it comes back: anything this list did not issue is a 422 naming `cursor`.
Lists that answer a JSON array carry the next page in headers (`Link: <...>; rel="next"`
and `X-Next-Cursor`); lists that answer an object carry it in a `next` field. Both are
absent or null on the last page: a list never stops short without saying so.
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Generic, TypeVar
from urllib.parse import parse_qsl, urlencode
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, Select, and_, literal, or_, text, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from app.errors import ValidationFailed
from app.validation import check_timezone, field_error

MAX_LIMIT = 500
DEFAULT_LIMIT = 100
# Lists that answered a bare array before they paged default to their full page: a client
# that reads no headers still gets every row it used to get in one answer.
ARRAY_DEFAULT_LIMIT = MAX_LIMIT
MAX_CURSOR_LENGTH = 1024
NEXT_CURSOR_HEADER = "X-Next-Cursor"

T = TypeVar("T")
Bound = date | datetime
KeyValue = datetime | date | uuid.UUID | int | str


def page_size(limit: int) -> int:
    """A requested `limit` (>= 1, checked at the edge) capped at MAX_LIMIT: asking for more
    is not an error, the answer just says where the next page starts."""
    return max(1, min(limit, MAX_LIMIT))


# -- periods ---------------------------------------------------------------------------


def parse_bound(value: str, field: str) -> Bound:
    """A date (YYYY-MM-DD) or an RFC 3339 instant with an offset."""
    try:
        if len(value) == 10:
            return date.fromisoformat(value)
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise field_error(field, "must be a date YYYY-MM-DD or RFC 3339 with offset") from None
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        raise field_error(field, "must include a UTC offset (RFC 3339)")
    return parsed


def local_midnight(day: date, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, time(0), tzinfo=zone).astimezone(UTC)


def period(start: Bound, end: Bound, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """[start, end) as instants: a date `from` is the start of that local day, a date `to`
    the end of it (the day is included); an instant is taken as it is."""
    since = start.astimezone(UTC) if isinstance(start, datetime) else local_midnight(start, zone)
    until = (
        end.astimezone(UTC)
        if isinstance(end, datetime)
        else local_midnight(end + timedelta(days=1), zone)
    )
    if until <= since:
        raise field_error("to", "must be after from (a date includes its whole day)")
    return since, until


async def business_zone(session: AsyncSession, tenant_id: uuid.UUID) -> ZoneInfo:
    """The tenant's timezone, read in the caller's transaction (by SQL: the ledger, which
    pages too, may not import the tenancy domain)."""
    name = (
        await session.execute(
            text("SELECT timezone FROM tenants WHERE id = :id"), {"id": tenant_id}
        )
    ).scalar_one_or_none()
    return check_timezone(str(name)) if name else ZoneInfo("UTC")


# -- keyset pages ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    items: list[T]
    next: str | None
    """The cursor of the page after this one; None on the last page."""


@dataclass(frozen=True, slots=True)
class Key:
    """One column of a list's order: its Python type (for the cursor), its direction, and
    the attribute that holds its value on a listed item (default: the column's key)."""

    column: Any
    kind: type[KeyValue]
    descending: bool = False
    attribute: str | None = None

    @property
    def name(self) -> str:
        return self.attribute or str(self.column.key)


class Keyset:
    """A list's stable order (the last key unique) and the cursors that continue it."""

    def __init__(self, name: str, *keys: Key) -> None:
        self.name = name
        self.keys = keys

    def order_by(self) -> list[ColumnElement[Any]]:
        return [k.column.desc() if k.descending else k.column.asc() for k in self.keys]

    def after(self, cursor: str | None) -> ColumnElement[bool] | None:
        """The condition for rows after the cursor's row; None without a cursor. Raises a
        validation error naming `cursor` for anything this list did not issue."""
        if cursor is None:
            return None
        values = self.decode(cursor)
        if len({k.descending for k in self.keys}) == 1:
            row = tuple_(*(k.column for k in self.keys))
            bound = tuple_(
                *(literal(v, k.column.type) for k, v in zip(self.keys, values, strict=True))
            )
            return row < bound if self.keys[0].descending else row > bound
        # Mixed directions: (a > x) OR (a = x AND b < y) OR ...
        branches = []
        for index, key in enumerate(self.keys):
            equal = [k.column == v for k, v in zip(self.keys[:index], values, strict=False)]
            beyond = key.column < values[index] if key.descending else key.column > values[index]
            branches.append(and_(*equal, beyond))
        return or_(*branches)

    async def fetch(
        self, session: AsyncSession, query: Select[T], cursor: str | None, limit: int
    ) -> Page[T]:
        """One page of `query` in this order, inside the caller's transaction (tenant set):
        the rows after the cursor's row and the cursor after them."""
        size = page_size(limit)
        after = self.after(cursor)
        if after is not None:
            query = query.where(after)
        rows = (await session.scalars(query.order_by(*self.order_by()).limit(size + 1))).all()
        return self.page(rows, size)

    def page(self, rows: Sequence[T], limit: int) -> Page[T]:
        """The first `limit` of `rows` (fetched with limit + 1) and the cursor after them."""
        items = list(rows[:limit])
        if len(rows) <= limit or not items:
            return Page(items, None)
        return Page(items, self.encode(items[-1]))

    def encode(self, item: object) -> str:
        values = [_json_value(getattr(item, key.name)) for key in self.keys]
        raw = json.dumps([self.name, *values], separators=(",", ":")).encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    def decode(self, cursor: str) -> list[KeyValue]:
        try:
            if len(cursor) > MAX_CURSOR_LENGTH:
                raise ValueError(cursor[:20])
            padded = cursor + "=" * (-len(cursor) % 4)
            data = json.loads(base64.b64decode(padded, altchars=b"-_", validate=True))
            if not isinstance(data, list) or len(data) != len(self.keys) + 1:
                raise ValueError("shape")
            if data[0] != self.name:
                raise ValueError("another list's cursor")
            return [_key_value(k.kind, v) for k, v in zip(self.keys, data[1:], strict=True)]
        except (ValueError, TypeError, binascii.Error, UnicodeDecodeError):
            raise invalid_cursor() from None


def invalid_cursor() -> ValidationFailed:
    return field_error("cursor", "is not a cursor this list issued; start again without it")


def _json_value(value: object) -> int | str:
    if isinstance(value, bool):
        raise TypeError("a boolean is not a sort key")
    if isinstance(value, int | str):
        return value
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    raise TypeError(f"unsupported sort key {type(value).__name__}")


def _key_value(kind: type[KeyValue], value: object) -> KeyValue:
    if kind is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError("not an integer")
        return value
    if not isinstance(value, str):
        raise ValueError("not a string")
    if kind is datetime:
        parsed = datetime.fromisoformat(value)
        if parsed.tzinfo is None:
            raise ValueError("naive time")
        return parsed
    if kind is date:
        return date.fromisoformat(value)
    if kind is uuid.UUID:
        return uuid.UUID(value)
    return value


# -- the HTTP side of a page -------------------------------------------------------------


def next_headers(path: str, query: str, cursor: str | None) -> dict[str, str]:
    """`Link: <path?...&cursor=...>; rel="next"` and `X-Next-Cursor` for a list answered as
    a JSON array (no headers on the last page). The link keeps the request's other query
    parameters and is relative to the request's URL (RFC 8288 allows a URI reference)."""
    if cursor is None:
        return {}
    params = [(k, v) for k, v in parse_qsl(query, keep_blank_values=True) if k != "cursor"]
    params.append(("cursor", cursor))
    return {
        "Link": f'<{path}?{urlencode(params)}>; rel="next"',
        NEXT_CURSOR_HEADER: cursor,
    }
