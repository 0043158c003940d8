"""Customers: one record per person a business serves, matched by normalised email or phone.

Every booking names its customer (`bookings.customer_id`, composite with the tenant like the
other foreign keys). The unique indexes on the normalised keys are what keep two concurrent
bookings by the same new customer from creating two rows (INSERT ... ON CONFLICT in
app/customers/service.py). A customer known by name only (no email, no phone) is unique by
that name. Existing bookings are matched or given a customer here, oldest first, by the same
rule.

Revision ID: 0018
Revises: 0017
"""

from alembic import op

from app.db import rls_statements

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None

# The keys, as generated columns: the application matches on the same expressions.
EMAIL_KEY = "NULLIF(lower(btrim({0})), '')"
# Digits only, and a leading 00 (the international call prefix) read as the + it stands for.
PHONE_KEY = "NULLIF(regexp_replace(regexp_replace({0}, '[^0-9]', '', 'g'), '^00', ''), '')"
NAME_KEY = "lower(btrim(regexp_replace({0}, '\\s+', ' ', 'g')))"

STATEMENTS = [
    f"""
    CREATE TABLE customers (
        tenant_id uuid NOT NULL REFERENCES tenants (id),
        id uuid NOT NULL,
        name text NOT NULL,
        email text,
        phone text,
        locale text NOT NULL DEFAULT 'en',
        email_key text GENERATED ALWAYS AS ({EMAIL_KEY.format("email")}) STORED,
        phone_key text GENERATED ALWAYS AS ({PHONE_KEY.format("phone")}) STORED,
        name_key text GENERATED ALWAYS AS ({NAME_KEY.format("name")}) STORED,
        created_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (tenant_id, id),
        CONSTRAINT ck_customers_name CHECK (btrim(name) <> ''),
        CONSTRAINT ck_customers_locale CHECK (locale IN ('en', 'ar'))
    )
    """,
    "CREATE UNIQUE INDEX uq_customers_email ON customers (tenant_id, email_key) "
    "WHERE email_key IS NOT NULL",
    "CREATE UNIQUE INDEX uq_customers_phone ON customers (tenant_id, phone_key) "
    "WHERE phone_key IS NOT NULL",
    "CREATE UNIQUE INDEX uq_customers_name_only ON customers (tenant_id, name_key) "
    "WHERE email_key IS NULL AND phone_key IS NULL",
    # The list's order (by name, then id) and its keyset pages.
    "CREATE INDEX ix_customers_name ON customers (tenant_id, name_key, id)",
    # Search: `q` anywhere in the name, email or phone (LIKE '%q%') by trigrams.
    "CREATE EXTENSION IF NOT EXISTS pg_trgm",
    "CREATE INDEX ix_customers_search_name ON customers USING gin (name_key gin_trgm_ops)",
    "CREATE INDEX ix_customers_search_email ON customers USING gin (email_key gin_trgm_ops)",
    "CREATE INDEX ix_customers_search_phone ON customers USING gin (phone_key gin_trgm_ops)",
    "ALTER TABLE bookings ADD COLUMN customer_id uuid",
    "ALTER TABLE bookings ADD CONSTRAINT fk_bookings_customer_id_customers "
    "FOREIGN KEY (tenant_id, customer_id) REFERENCES customers (tenant_id, id)",
    "CREATE INDEX ix_bookings_customer ON bookings (tenant_id, customer_id, starts_at) "
    "WHERE customer_id IS NOT NULL",
]

# Existing bookings, grouped by the customer fields they carry and taken oldest first: each
# group finds its customer by email, else phone, else (with neither) by name, or creates it.
# Runs as the migrating role (superuser or BYPASSRLS, checked in 0016), across businesses.
BACKFILL = f"""
DO $$
DECLARE g record; found uuid;
BEGIN
    CREATE TEMP TABLE booking_customer_map (
        tenant_id uuid, name text, email text, phone text, customer_id uuid
    ) ON COMMIT DROP;
    FOR g IN
        SELECT tenant_id, customer_name AS name, coalesce(customer_email, '') AS email,
               coalesce(customer_phone, '') AS phone, min(customer_locale) AS locale
          FROM bookings WHERE customer_id IS NULL
         GROUP BY 1, 2, 3, 4 ORDER BY min(created_at), 1, 2, 3, 4
    LOOP
        SELECT c.id INTO found FROM customers c
         WHERE c.tenant_id = g.tenant_id AND (
               c.email_key = {EMAIL_KEY.format("g.email")}
            OR c.phone_key = {PHONE_KEY.format("g.phone")}
            OR ({EMAIL_KEY.format("g.email")} IS NULL AND {PHONE_KEY.format("g.phone")} IS NULL
                AND c.email_key IS NULL AND c.phone_key IS NULL
                AND c.name_key = {NAME_KEY.format("g.name")}))
         ORDER BY c.email_key IS NOT DISTINCT FROM {EMAIL_KEY.format("g.email")} DESC,
                  c.created_at, c.id
         LIMIT 1;
        IF found IS NULL THEN
            INSERT INTO customers (tenant_id, id, name, email, phone, locale)
            VALUES (g.tenant_id, gen_random_uuid(), btrim(g.name), NULLIF(btrim(g.email), ''),
                    NULLIF(btrim(g.phone), ''), g.locale)
            RETURNING id INTO found;
        END IF;
        INSERT INTO booking_customer_map VALUES (g.tenant_id, g.name, g.email, g.phone, found);
    END LOOP;
    UPDATE bookings b SET customer_id = m.customer_id
      FROM booking_customer_map m
     WHERE b.customer_id IS NULL AND b.tenant_id = m.tenant_id AND b.customer_name = m.name
       AND coalesce(b.customer_email, '') = m.email AND coalesce(b.customer_phone, '') = m.phone;
END
$$
"""


def upgrade() -> None:
    for statement in STATEMENTS:
        op.execute(statement)
    # Tenant table: the same policy as every other, forced on the owner too (0016), and the
    # application role's grants stated rather than left to default privileges.
    for statement in rls_statements("customers"):
        op.execute(statement)
    op.execute("ALTER TABLE customers FORCE ROW LEVEL SECURITY")
    op.execute("GRANT SELECT, INSERT, UPDATE, DELETE ON customers TO reckon_app")
    op.execute(BACKFILL)


def downgrade() -> None:
    op.execute("DROP INDEX IF EXISTS ix_bookings_customer")
    op.execute("ALTER TABLE bookings DROP COLUMN IF EXISTS customer_id")
    op.execute("DROP TABLE IF EXISTS customers")
