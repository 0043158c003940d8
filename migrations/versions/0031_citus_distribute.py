"""On a Citus coordinator: reference tables and every tenant table distributed on tenant_id.

Does nothing on plain PostgreSQL (no `citus` extension in the database). On Citus it makes
`tenants` and `inbox` reference tables and distributes every other table with a
`tenant_id` column, colocated, with its foreign keys, triggers and row-level security; see
app/cli/citus.py, which also distributes a database restored onto a coordinator after it was
migrated elsewhere. Later migrations must work on both: every unique constraint includes
tenant_id, every statement on a tenant table names its business, functions are PL/pgSQL.

Revision ID: 0031
Revises: 0030
"""

from alembic import op

from app.cli.citus import distribute

revision = "0031"
down_revision = "0030"
branch_labels = None
depends_on = None


def upgrade() -> None:
    distribute(op.get_bind())


def downgrade() -> None:
    # Undistributing (undistribute_table) copies every shard back to the coordinator: an
    # operator's decision, not a schema step.
    pass
