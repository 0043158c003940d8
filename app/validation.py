"""Small field validators shared by the domains; each raises ValidationFailed naming the field."""

from __future__ import annotations

import re
from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from app.errors import ValidationFailed

EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]{2,}$")
SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{1,62}$")


def field_error(field: str, message: str) -> ValidationFailed:
    return ValidationFailed(f"{field}: {message}", errors=[{"field": field, "message": message}])


def check_email(value: str, field: str = "email") -> str:
    value = value.strip()
    if len(value) > 254 or not EMAIL.match(value):
        raise field_error(field, "must be a valid email address")
    return value.lower()


def check_slug(value: str, field: str = "slug") -> str:
    if not SLUG.match(value):
        raise field_error(field, "must be 2-63 lowercase letters, digits or dashes")
    return value


def check_timezone(value: str, field: str = "timezone") -> ZoneInfo:
    try:
        if not value or value.startswith("/") or ".." in value:
            raise ValueError(value)
        return ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise field_error(field, f"unknown IANA timezone {value!r}") from None


def check_text(value: str, field: str, *, max_length: int = 200, min_length: int = 1) -> str:
    value = value.strip()
    if not min_length <= len(value) <= max_length:
        raise field_error(field, f"must be {min_length}-{max_length} characters")
    if "\x00" in value:
        raise field_error(field, "must not contain NUL characters")
    return value


def check_password(value: str, field: str = "password") -> str:
    if not 8 <= len(value) <= 256:
        raise field_error(field, "must be 8-256 characters")
    return value


def check_aware(value: datetime, field: str) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise field_error(field, "must include a UTC offset (RFC 3339)")
    return value
