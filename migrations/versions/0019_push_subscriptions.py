"""Web Push: the devices staff asked to be notified on, and what each booking event sent.

`push_subscriptions` holds a browser's PushSubscription (its endpoint at the push service and
the keys the payload is encrypted to), one row per endpoint per business. `push_deliveries`
records, per outbox event and subscription, that a message went out: a redelivered event
finds it and sends nothing.

Revision ID: 0019
Revises: 0018
"""

from alembic import op

from app.db import rls_statements

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None

TENANT_TABLES = ["push_subscriptions", "push_deliveries"]

STATEMENTS = [
    """
    CREATE TABLE push_subscriptions (
        tenant_id uuid NOT NULL REFERENCES tenants (id),
        id uuid NOT NULL,
        user_id uuid NOT NULL,
        endpoint text NOT NULL,
        p256dh text NOT NULL,
        auth text NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (tenant_id, id),
        FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id) ON DELETE CASCADE,
        CONSTRAINT uq_push_subscriptions_endpoint UNIQUE (tenant_id, endpoint),
        CONSTRAINT ck_push_subscriptions_endpoint CHECK (
            endpoint ~ '^https?://' AND length(endpoint) <= 2048
        ),
        CONSTRAINT ck_push_subscriptions_p256dh CHECK (length(p256dh) BETWEEN 80 AND 100),
        CONSTRAINT ck_push_subscriptions_auth CHECK (length(auth) BETWEEN 16 AND 32)
    )
    """,
    "CREATE INDEX ix_push_subscriptions_user ON push_subscriptions (tenant_id, user_id)",
    """
    CREATE TABLE push_deliveries (
        tenant_id uuid NOT NULL REFERENCES tenants (id),
        id uuid NOT NULL,
        outbox_id uuid NOT NULL,
        subscription_id uuid NOT NULL,
        status text NOT NULL,
        attempts integer NOT NULL DEFAULT 0,
        last_error text,
        created_at timestamptz NOT NULL DEFAULT now(),
        sent_at timestamptz,
        PRIMARY KEY (tenant_id, id),
        FOREIGN KEY (tenant_id, subscription_id) REFERENCES push_subscriptions (tenant_id, id)
            ON DELETE CASCADE,
        CONSTRAINT uq_push_deliveries_event UNIQUE (tenant_id, outbox_id, subscription_id),
        CONSTRAINT ck_push_deliveries_status CHECK (status IN ('sending', 'sent', 'rejected')),
        CONSTRAINT ck_push_deliveries_sent CHECK ((status = 'sent') = (sent_at IS NOT NULL))
    )
    """,
    "CREATE INDEX ix_push_deliveries_subscription ON push_deliveries (tenant_id, subscription_id)",
]


def upgrade() -> None:
    for statement in STATEMENTS:
        op.execute(statement)
    for table in TENANT_TABLES:
        for statement in rls_statements(table):
            op.execute(statement)
        op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")


def downgrade() -> None:
    for table in reversed(TENANT_TABLES):
        op.execute(f"DROP TABLE IF EXISTS {table}")
