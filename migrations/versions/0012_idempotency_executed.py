"""Idempotency keys record that the request's own transaction committed ('executed').

Revision ID: 0012
Revises: 0011
"""

from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE idempotency_keys DROP CONSTRAINT ck_idempotency_keys_status")
    op.execute(
        "ALTER TABLE idempotency_keys ADD CONSTRAINT ck_idempotency_keys_status "
        "CHECK (status IN ('started', 'executed', 'completed'))"
    )


def downgrade() -> None:
    op.execute("UPDATE idempotency_keys SET status = 'started' WHERE status = 'executed'")
    op.execute("ALTER TABLE idempotency_keys DROP CONSTRAINT ck_idempotency_keys_status")
    op.execute(
        "ALTER TABLE idempotency_keys ADD CONSTRAINT ck_idempotency_keys_status "
        "CHECK (status IN ('started', 'completed'))"
    )
