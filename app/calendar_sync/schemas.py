"""HTTP shapes for calendar connections. The refresh token goes in and never comes out."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

import msgspec


class CalendarConnectIn(msgspec.Struct, forbid_unknown_fields=True):
    calendar_id: Annotated[str, msgspec.Meta(min_length=1, max_length=1024)]
    refresh_token: Annotated[str, msgspec.Meta(min_length=1, max_length=4096)]


class CalendarConnectionOut(msgspec.Struct):
    resource_id: uuid.UUID
    calendar_id: str
    connected_at: datetime
