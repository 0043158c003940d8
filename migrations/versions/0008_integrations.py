"""Integrations: per-tenant provider settings, calendar connections and synced events,
WhatsApp message records.

Revision ID: 0008
Revises: 0006
"""

from alembic import op

from app.db import rls_statements

revision = "0008"
down_revision = "0006"
branch_labels = None
depends_on = None

TENANT_TABLES = [
    "tenant_provider_settings",
    "resource_calendars",
    "calendar_events",
    "whatsapp_messages",
]

PROVIDERS = "'stripe', 'kashier', 'sandbox', 'cash', 'whatsapp', 'google_calendar'"

STATEMENTS = [
    # One row per (tenant, provider). `sealed` is a SecretBox token over the JSON credentials;
    # `fields_set` names them in clear so listing needs no key.
    f"""
    CREATE TABLE tenant_provider_settings (
        tenant_id uuid NOT NULL REFERENCES tenants (id),
        id uuid NOT NULL,
        provider text NOT NULL,
        enabled boolean NOT NULL DEFAULT false,
        sealed text,
        fields_set text[] NOT NULL DEFAULT '{{}}',
        updated_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (tenant_id, id),
        CONSTRAINT uq_tenant_provider_settings_provider UNIQUE (tenant_id, provider),
        CONSTRAINT ck_tenant_provider_settings_provider CHECK (provider IN ({PROVIDERS}))
    )
    """,
    """
    CREATE TABLE resource_calendars (
        tenant_id uuid NOT NULL REFERENCES tenants (id),
        id uuid NOT NULL,
        resource_id uuid NOT NULL,
        calendar_id text NOT NULL,
        sealed_refresh_token text NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (tenant_id, id),
        FOREIGN KEY (tenant_id, resource_id) REFERENCES resources (tenant_id, id),
        CONSTRAINT uq_resource_calendars_resource UNIQUE (tenant_id, resource_id),
        CONSTRAINT ck_resource_calendars_calendar CHECK (length(calendar_id) BETWEEN 1 AND 1024)
    )
    """,
    # Where a booking's event lives (a reschedule may move it to another resource's calendar)
    # and the booking version last written, so a redelivered event makes no provider call.
    """
    CREATE TABLE calendar_events (
        tenant_id uuid NOT NULL REFERENCES tenants (id),
        id uuid NOT NULL,
        booking_id uuid NOT NULL,
        resource_id uuid NOT NULL,
        calendar_id text NOT NULL,
        event_id text NOT NULL,
        state text NOT NULL,
        synced_version integer NOT NULL,
        synced_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (tenant_id, id),
        FOREIGN KEY (tenant_id, booking_id) REFERENCES bookings (tenant_id, id),
        CONSTRAINT uq_calendar_events_booking UNIQUE (tenant_id, booking_id),
        CONSTRAINT ck_calendar_events_state CHECK (state IN ('live', 'cancelled'))
    )
    """,
    # One row per message we mean to send, keyed by `dedupe_key` (per booking and kind, or
    # per outbox event for refunds). A stored wamid means Meta accepted it: never send again.
    """
    CREATE TABLE whatsapp_messages (
        tenant_id uuid NOT NULL REFERENCES tenants (id),
        id uuid NOT NULL,
        booking_id uuid NOT NULL,
        kind text NOT NULL,
        dedupe_key text NOT NULL,
        outbox_id uuid,
        status text NOT NULL,
        template text,
        language text,
        to_phone text,
        wamid text,
        attempts integer NOT NULL DEFAULT 0,
        last_error text,
        created_at timestamptz NOT NULL DEFAULT now(),
        sent_at timestamptz,
        PRIMARY KEY (tenant_id, id),
        FOREIGN KEY (tenant_id, booking_id) REFERENCES bookings (tenant_id, id),
        CONSTRAINT uq_whatsapp_messages_dedupe UNIQUE (tenant_id, dedupe_key),
        CONSTRAINT ck_whatsapp_messages_kind CHECK (kind IN ('booking_confirmed',
            'booking_reminder', 'booking_cancelled', 'booking_refunded')),
        CONSTRAINT ck_whatsapp_messages_status CHECK (status IN ('queued', 'sending', 'sent')),
        CONSTRAINT ck_whatsapp_messages_sent CHECK ((status = 'sent') = (wamid IS NOT NULL))
    )
    """,
    "CREATE INDEX ix_whatsapp_messages_booking ON whatsapp_messages (tenant_id, booking_id)",
    # The reminder cron acts per tenant under RLS; this names only the tenants with reminders
    # due (WhatsApp on, a confirmed booking with a phone starting within the window, booked
    # at least the lead time ahead, and not yet reminded).
    """
    CREATE FUNCTION notifications_tenants_with_due_reminders(
        p_now timestamptz, p_lead interval
    )
    RETURNS SETOF uuid
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
        SELECT DISTINCT b.tenant_id
        FROM bookings b
        JOIN tenant_provider_settings s
          ON s.tenant_id = b.tenant_id AND s.provider = 'whatsapp' AND s.enabled
        WHERE b.status = 'confirmed'
          AND b.customer_phone IS NOT NULL
          AND b.starts_at > p_now AND b.starts_at <= p_now + p_lead
          AND b.created_at <= b.starts_at - p_lead
          AND NOT EXISTS (
              SELECT 1 FROM whatsapp_messages m
              WHERE m.tenant_id = b.tenant_id AND m.booking_id = b.id
                AND m.kind = 'booking_reminder'
          )
    $$
    """,
    "REVOKE ALL ON FUNCTION notifications_tenants_with_due_reminders(timestamptz, interval) "
    "FROM PUBLIC",
    "GRANT EXECUTE ON FUNCTION notifications_tenants_with_due_reminders(timestamptz, interval) "
    "TO reckon_app",
]


def upgrade() -> None:
    for statement in STATEMENTS:
        op.execute(statement)
    for table in TENANT_TABLES:
        for statement in rls_statements(table):
            op.execute(statement)


def downgrade() -> None:
    op.execute(
        "DROP FUNCTION IF EXISTS notifications_tenants_with_due_reminders(timestamptz, interval)"
    )
    for table in reversed(TENANT_TABLES):
        op.execute(f"DROP TABLE IF EXISTS {table}")
