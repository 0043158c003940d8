"""The customer row. Its keys (`email_key`, `phone_key`, `name_key`) are generated columns
(migration 0018); the unique indexes on them are what matching relies on."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Computed, func
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, TenantScoped

# The normalisations, as SQL over one argument: the generated columns and the matching
# query use the same text, so a key computed from a booking equals the stored key.
EMAIL_KEY = "NULLIF(lower(btrim({0})), '')"
# Digits only, and a leading 00 (the international call prefix) read as the + it stands for.
PHONE_KEY = "NULLIF(regexp_replace(regexp_replace({0}, '[^0-9]', '', 'g'), '^00', ''), '')"
NAME_KEY = "lower(btrim(regexp_replace({0}, '\\s+', ' ', 'g')))"


class Customer(TenantScoped, Base):
    __tablename__ = "customers"

    name: Mapped[str]
    email: Mapped[str | None]
    phone: Mapped[str | None]
    locale: Mapped[str] = mapped_column(default="en")
    email_key: Mapped[str | None] = mapped_column(Computed(EMAIL_KEY.format("email")))
    phone_key: Mapped[str | None] = mapped_column(Computed(PHONE_KEY.format("phone")))
    name_key: Mapped[str] = mapped_column(Computed(NAME_KEY.format("name")))
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
