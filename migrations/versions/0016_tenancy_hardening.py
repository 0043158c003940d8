"""Tenancy hardening: FORCE ROW LEVEL SECURITY on every tenant table, an append-only audit
log for the application, SECURITY DEFINER functions callable by the application role only,
and a refusal to run with an application role that would bypass row-level security.

FORCE makes the policies bind the tables' owner too (when it is not a superuser), so the
role that migrates must be a superuser or have BYPASSRLS: the narrow SECURITY DEFINER
lookups (login by email, a public slug, a webhook's payment, the relay's claim) run as the
owner and must see across businesses. A migrating role with neither is refused by name.

Revision ID: 0016
Revises: 0015
"""

from alembic import op

from app.cli.migrate import assert_role_is_restricted

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

_TENANT_TABLES = """
    SELECT c.oid::regclass AS name FROM pg_class c
      JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'tenant_id' AND NOT a.attisdropped
     WHERE c.relkind = 'r' AND c.relnamespace = 'public'::regnamespace
"""
_DEFINER_FUNCTIONS = """
    SELECT p.oid::regprocedure AS name FROM pg_proc p
     WHERE p.prosecdef AND p.pronamespace = 'public'::regnamespace
"""


def upgrade() -> None:
    assert_role_is_restricted(op.get_bind().connection.dbapi_connection)
    op.execute(
        """
        DO $$
        BEGIN
            IF NOT (SELECT rolsuper OR rolbypassrls FROM pg_roles WHERE rolname = current_user)
            THEN
                RAISE EXCEPTION 'role % migrates but is neither SUPERUSER nor BYPASSRLS: the '
                    'SECURITY DEFINER lookups it owns would not see across businesses under '
                    'FORCE ROW LEVEL SECURITY', current_user;
            END IF;
        END
        $$
        """
    )
    op.execute(
        f"""
        DO $$
        DECLARE t record;
        BEGIN
            FOR t IN {_TENANT_TABLES} LOOP
                EXECUTE format('ALTER TABLE %s ENABLE ROW LEVEL SECURITY', t.name);
                EXECUTE format('ALTER TABLE %s FORCE ROW LEVEL SECURITY', t.name);
            END LOOP;
        END
        $$
        """
    )
    op.execute("REVOKE UPDATE, DELETE, TRUNCATE ON audit_log FROM reckon_app")
    op.execute(
        f"""
        DO $$
        DECLARE f record;
        BEGIN
            FOR f IN {_DEFINER_FUNCTIONS} LOOP
                EXECUTE format('REVOKE ALL ON FUNCTION %s FROM PUBLIC', f.name);
                EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO reckon_app', f.name);
            END LOOP;
        END
        $$
        """
    )


def downgrade() -> None:
    op.execute(
        f"""
        DO $$
        DECLARE t record;
        BEGIN
            FOR t IN {_TENANT_TABLES} LOOP
                EXECUTE format('ALTER TABLE %s NO FORCE ROW LEVEL SECURITY', t.name);
            END LOOP;
        END
        $$
        """
    )
    op.execute("GRANT UPDATE, DELETE ON audit_log TO reckon_app")
