"""The API edits what it creates: archive instead of delete, deactivated users, stock movements.

- branches and products get `active` (resources and services have it already): archiving
  clears it, so nothing a booking, invoice or ledger entry refers to is ever deleted.
- users get `active` and `token_version`: a deactivated user can neither log in (the login
  door skips them) nor use a token issued before (every request compares the token's version
  with the row, through `auth_user_state`).
- stock_movements: every change to product_stock made by the catalog or by placing a
  booking is one append-only row (delta, reason, who, which booking, the quantity after).
  product_stock keeps its CHECK (quantity >= 0): a movement that would take it below zero
  fails whatever the application does.

Revision ID: 0015
Revises: 0014
"""

from alembic import op

from app.db import rls_statements

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

LOGIN_COLUMNS = "tenant_id uuid, user_id uuid, password_hash text, role text, email text, slug text"

STATEMENTS = [
    "ALTER TABLE branches ADD COLUMN active boolean NOT NULL DEFAULT true",
    "ALTER TABLE products ADD COLUMN active boolean NOT NULL DEFAULT true",
    "ALTER TABLE users ADD COLUMN active boolean NOT NULL DEFAULT true",
    "ALTER TABLE users ADD COLUMN token_version integer NOT NULL DEFAULT 0",
    "ALTER TABLE users ADD CONSTRAINT ck_users_token_version CHECK (token_version >= 0)",
    """
    CREATE TABLE stock_movements (
        tenant_id uuid NOT NULL REFERENCES tenants (id),
        id uuid NOT NULL,
        product_id uuid NOT NULL,
        branch_id uuid NOT NULL,
        delta integer NOT NULL,
        quantity_after integer NOT NULL,
        kind text NOT NULL,
        reason text NOT NULL,
        actor_kind text NOT NULL,
        actor_id uuid,
        booking_id uuid,
        created_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (tenant_id, id),
        FOREIGN KEY (tenant_id, product_id) REFERENCES products (tenant_id, id),
        FOREIGN KEY (tenant_id, branch_id) REFERENCES branches (tenant_id, id),
        FOREIGN KEY (tenant_id, booking_id) REFERENCES bookings (tenant_id, id),
        CONSTRAINT ck_stock_movements_delta CHECK (delta <> 0),
        CONSTRAINT ck_stock_movements_quantity_after CHECK (quantity_after >= 0),
        CONSTRAINT ck_stock_movements_kind CHECK (
            kind IN ('opening', 'adjustment', 'booking', 'restock')
        ),
        -- A booking's movement names its booking; nothing else does.
        CONSTRAINT ck_stock_movements_booking CHECK (
            (kind IN ('booking', 'restock')) = (booking_id IS NOT NULL)
        ),
        CONSTRAINT ck_stock_movements_direction CHECK (
            (kind <> 'booking' OR delta < 0) AND (kind NOT IN ('opening', 'restock') OR delta > 0)
        ),
        CONSTRAINT ck_stock_movements_reason CHECK (length(reason) BETWEEN 1 AND 500)
    )
    """,
    """
    CREATE INDEX ix_stock_movements_product
    ON stock_movements (tenant_id, product_id, created_at)
    """,
    """
    CREATE INDEX ix_stock_movements_booking ON stock_movements (tenant_id, booking_id)
    WHERE booking_id IS NOT NULL
    """,
    """
    CREATE FUNCTION stock_movements_reject_change() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        RAISE EXCEPTION 'stock_movements is append-only: % is not allowed; record a movement',
            TG_OP USING ERRCODE = 'restrict_violation';
    END
    $$
    """,
    """
    CREATE TRIGGER stock_movements_append_only BEFORE UPDATE OR DELETE ON stock_movements
    FOR EACH STATEMENT EXECUTE FUNCTION stock_movements_reject_change()
    """,
    "REVOKE ALL ON FUNCTION stock_movements_reject_change() FROM PUBLIC",
    # The login door now skips deactivated users and says which token version to issue.
    "DROP FUNCTION auth_login_candidates(text)",
    f"""
    CREATE FUNCTION auth_login_candidates(p_email text)
    RETURNS TABLE ({LOGIN_COLUMNS}, token_version integer)
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
        SELECT u.tenant_id, u.id, u.password_hash, u.role, u.email, t.slug, u.token_version
        FROM users u JOIN tenants t ON t.id = u.tenant_id
        WHERE lower(u.email) = lower(p_email) AND u.active
        ORDER BY u.created_at
        LIMIT 20
    $$
    """,
    # Per request: is the token's user still active, at the token's version, and in which
    # role? One statement; the caller already holds a signed token naming both ids.
    """
    CREATE FUNCTION auth_user_state(p_tenant_id uuid, p_user_id uuid)
    RETURNS TABLE (role text, email text, active boolean, token_version integer)
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
        SELECT role, email, active, token_version FROM users
        WHERE tenant_id = p_tenant_id AND id = p_user_id
    $$
    """,
    "REVOKE ALL ON FUNCTION auth_login_candidates(text) FROM PUBLIC",
    "REVOKE ALL ON FUNCTION auth_user_state(uuid, uuid) FROM PUBLIC",
    "GRANT EXECUTE ON FUNCTION auth_login_candidates(text) TO reckon_app",
    "GRANT EXECUTE ON FUNCTION auth_user_state(uuid, uuid) TO reckon_app",
]

OLD_LOGIN = f"""
    CREATE FUNCTION auth_login_candidates(p_email text)
    RETURNS TABLE ({LOGIN_COLUMNS})
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
        SELECT u.tenant_id, u.id, u.password_hash, u.role, u.email, t.slug
        FROM users u JOIN tenants t ON t.id = u.tenant_id
        WHERE lower(u.email) = lower(p_email)
        ORDER BY u.created_at
        LIMIT 20
    $$
"""


def upgrade() -> None:
    for statement in STATEMENTS:
        op.execute(statement)
    for statement in rls_statements("stock_movements"):
        op.execute(statement)
    # Stock held before movements existed opens each history, so a quantity is always its
    # movements' sum.
    op.execute(
        """
        INSERT INTO stock_movements (tenant_id, id, product_id, branch_id, delta,
            quantity_after, kind, reason, actor_kind, created_at)
        SELECT tenant_id, gen_random_uuid(), product_id, branch_id, quantity, quantity,
               'opening', 'stock held before movements were recorded', 'system', now()
          FROM product_stock WHERE quantity > 0
        """
    )
    # Movements are history: the app role appends and reads, never rewrites.
    op.execute("GRANT SELECT, INSERT ON stock_movements TO reckon_app")
    op.execute("REVOKE UPDATE, DELETE, TRUNCATE ON stock_movements FROM reckon_app")


def downgrade() -> None:
    op.execute("DROP FUNCTION IF EXISTS auth_user_state(uuid, uuid)")
    op.execute("DROP FUNCTION IF EXISTS auth_login_candidates(text)")
    op.execute(OLD_LOGIN)
    op.execute("REVOKE ALL ON FUNCTION auth_login_candidates(text) FROM PUBLIC")
    op.execute("GRANT EXECUTE ON FUNCTION auth_login_candidates(text) TO reckon_app")
    op.execute("DROP TABLE IF EXISTS stock_movements")
    op.execute("DROP FUNCTION IF EXISTS stock_movements_reject_change()")
    op.execute("ALTER TABLE users DROP CONSTRAINT IF EXISTS ck_users_token_version")
    for table, column in [
        ("users", "token_version"),
        ("users", "active"),
        ("products", "active"),
        ("branches", "active"),
    ]:
        op.execute(f"ALTER TABLE {table} DROP COLUMN IF EXISTS {column}")
