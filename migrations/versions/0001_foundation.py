"""Foundation: application role, tenants, users, idempotency keys, audit log, RLS.

Revision ID: 0001
Revises:
"""

from alembic import op

from app.db import rls_statements

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

TENANT_TABLES = ["users", "idempotency_keys", "audit_log"]


def upgrade() -> None:
    op.execute("CREATE EXTENSION IF NOT EXISTS btree_gist")
    # Roles are cluster-wide: create the application role once, without superuser or
    # BYPASSRLS, so row-level security applies to everything the app does.
    op.execute(
        """
        DO $$
        BEGIN
            CREATE ROLE reckon_app LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;
        EXCEPTION WHEN duplicate_object THEN
            NULL;
        END
        $$
        """
    )
    op.execute("GRANT USAGE ON SCHEMA public TO reckon_app")
    op.execute(
        "ALTER DEFAULT PRIVILEGES IN SCHEMA public "
        "GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO reckon_app"
    )
    op.execute(
        "ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT USAGE, SELECT ON SEQUENCES TO reckon_app"
    )

    op.execute(
        """
        CREATE TABLE tenants (
            id uuid PRIMARY KEY,
            slug text NOT NULL,
            name text NOT NULL,
            currency char(3) NOT NULL,
            timezone text NOT NULL,
            created_at timestamptz NOT NULL DEFAULT now(),
            CONSTRAINT uq_tenants_slug UNIQUE (slug),
            CONSTRAINT ck_tenants_slug_format CHECK (slug ~ '^[a-z0-9][a-z0-9-]{1,62}$')
        )
        """
    )
    op.execute("ALTER TABLE tenants ENABLE ROW LEVEL SECURITY")
    op.execute(
        "CREATE POLICY tenant_isolation ON tenants "
        "USING (id = NULLIF(current_setting('app.tenant_id', true), '')::uuid) "
        "WITH CHECK (id = NULLIF(current_setting('app.tenant_id', true), '')::uuid)"
    )

    op.execute(
        """
        CREATE TABLE users (
            tenant_id uuid NOT NULL REFERENCES tenants (id),
            id uuid NOT NULL,
            email text NOT NULL,
            password_hash text NOT NULL,
            role text NOT NULL,
            resource_id uuid,
            created_at timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (tenant_id, id),
            CONSTRAINT ck_users_role CHECK (role IN ('owner', 'admin', 'staff'))
        )
        """
    )
    op.execute("CREATE UNIQUE INDEX uq_users_tenant_email ON users (tenant_id, lower(email))")
    op.execute("CREATE INDEX ix_users_email ON users (lower(email))")

    op.execute(
        """
        CREATE TABLE idempotency_keys (
            tenant_id uuid NOT NULL REFERENCES tenants (id),
            id uuid NOT NULL,
            key text NOT NULL,
            request_hash text NOT NULL,
            status text NOT NULL DEFAULT 'started',
            locked_at timestamptz,
            response_status integer,
            response_body bytea,
            response_content_type text,
            created_at timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (tenant_id, id),
            CONSTRAINT uq_idempotency_keys_key UNIQUE (tenant_id, key),
            CONSTRAINT ck_idempotency_keys_status CHECK (status IN ('started', 'completed'))
        )
        """
    )
    op.execute("CREATE INDEX ix_idempotency_keys_created_at ON idempotency_keys (created_at)")

    op.execute(
        """
        CREATE TABLE audit_log (
            tenant_id uuid NOT NULL REFERENCES tenants (id),
            id uuid NOT NULL,
            actor_id uuid,
            actor_kind text NOT NULL DEFAULT 'user',
            action text NOT NULL,
            entity_type text NOT NULL,
            entity_id uuid NOT NULL,
            before jsonb,
            after jsonb,
            at timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (tenant_id, id)
        )
        """
    )
    op.execute(
        "CREATE INDEX ix_audit_log_entity ON audit_log (tenant_id, entity_type, entity_id, at)"
    )

    for table in TENANT_TABLES:
        for statement in rls_statements(table):
            op.execute(statement)

    # Two narrow doors past RLS, owned by the migration role: finding login candidates by
    # email (a user does not know their tenant id) and resolving a public slug.
    op.execute(
        """
        CREATE FUNCTION auth_login_candidates(p_email text)
        RETURNS TABLE (tenant_id uuid, user_id uuid, password_hash text, role text, email text, slug text)
        LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
            SELECT u.tenant_id, u.id, u.password_hash, u.role, u.email, t.slug
            FROM users u JOIN tenants t ON t.id = u.tenant_id
            WHERE lower(u.email) = lower(p_email)
            ORDER BY u.created_at
            LIMIT 20
        $$
        """
    )
    op.execute(
        """
        CREATE FUNCTION tenant_by_slug(p_slug text)
        RETURNS TABLE (id uuid, slug text, name text, currency char(3), timezone text)
        LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
            SELECT id, slug, name, currency, timezone FROM tenants WHERE slug = p_slug
        $$
        """
    )
    op.execute("REVOKE ALL ON FUNCTION auth_login_candidates(text) FROM PUBLIC")
    op.execute("REVOKE ALL ON FUNCTION tenant_by_slug(text) FROM PUBLIC")
    op.execute("GRANT EXECUTE ON FUNCTION auth_login_candidates(text) TO reckon_app")
    op.execute("GRANT EXECUTE ON FUNCTION tenant_by_slug(text) TO reckon_app")
    op.execute("GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO reckon_app")


def downgrade() -> None:
    op.execute("DROP FUNCTION IF EXISTS tenant_by_slug(text)")
    op.execute("DROP FUNCTION IF EXISTS auth_login_candidates(text)")
    for table in ["audit_log", "idempotency_keys", "users", "tenants"]:
        op.execute(f"DROP TABLE IF EXISTS {table}")
