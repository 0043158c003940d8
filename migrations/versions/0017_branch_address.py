"""Branches get an optional street address, shown on the booking site with a map link.

Revision ID: 0017
Revises: 0016
"""

from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        "ALTER TABLE branches ADD COLUMN address text "
        "CONSTRAINT ck_branches_address CHECK (length(address) <= 500)"
    )


def downgrade() -> None:
    op.execute("ALTER TABLE branches DROP COLUMN address")
