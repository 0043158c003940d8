"""Web Push rows: a staff device's subscription, and one delivery per (event, subscription)."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKeyConstraint, func
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, TenantScoped

SENDING = "sending"
SENT = "sent"
# The push service refused the message for good (400, 403, 413): never retried.
REJECTED = "rejected"


class PushSubscription(TenantScoped, Base):
    __tablename__ = "push_subscriptions"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id", "user_id"], ["users.tenant_id", "users.id"]),
    )

    user_id: Mapped[uuid.UUID]
    endpoint: Mapped[str]
    p256dh: Mapped[str]
    auth: Mapped[str]
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())


class PushDelivery(TenantScoped, Base):
    __tablename__ = "push_deliveries"
    __table_args__ = (
        ForeignKeyConstraint(
            ["tenant_id", "subscription_id"],
            ["push_subscriptions.tenant_id", "push_subscriptions.id"],
        ),
    )

    outbox_id: Mapped[uuid.UUID]
    subscription_id: Mapped[uuid.UUID]
    status: Mapped[str]
    attempts: Mapped[int] = mapped_column(default=0)
    last_error: Mapped[str | None]
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    sent_at: Mapped[datetime | None]
