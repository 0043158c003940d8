"""Bookings: booking rows with the no-double-booking exclusion constraint, product line items,
and the narrow cross-tenant door the worker uses to find due work.

Revision ID: 0005
Revises: 0002
"""

from alembic import op

from app.db import rls_statements

revision = "0005"
down_revision = "0002"
branch_labels = None
depends_on = None

TENANT_TABLES = ["bookings", "booking_products"]

ACTIVE = "('pending_payment', 'confirmed', 'checked_in')"

STATEMENTS = [
    f"""
    CREATE TABLE bookings (
        tenant_id uuid NOT NULL REFERENCES tenants (id),
        id uuid NOT NULL,
        branch_id uuid NOT NULL,
        service_id uuid NOT NULL,
        resource_id uuid NOT NULL,
        series_id uuid,
        customer_name text NOT NULL,
        customer_email text,
        customer_phone text,
        customer_locale text NOT NULL DEFAULT 'en',
        party_size integer NOT NULL DEFAULT 1,
        starts_at timestamptz NOT NULL,
        ends_at timestamptz NOT NULL,
        blocked tstzrange NOT NULL,
        exclusive boolean NOT NULL,
        status text NOT NULL,
        hold_expires_at timestamptz,
        unit_price_minor bigint NOT NULL,
        pricing text NOT NULL,
        quantity integer NOT NULL,
        total_minor bigint NOT NULL,
        currency char(3) NOT NULL,
        payment_provider text NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now(),
        checked_in_at timestamptz,
        completed_at timestamptz,
        cancelled_at timestamptz,
        version integer NOT NULL DEFAULT 1,
        PRIMARY KEY (tenant_id, id),
        FOREIGN KEY (tenant_id, branch_id) REFERENCES branches (tenant_id, id),
        FOREIGN KEY (tenant_id, service_id) REFERENCES services (tenant_id, id),
        FOREIGN KEY (tenant_id, resource_id) REFERENCES resources (tenant_id, id),
        CONSTRAINT ck_bookings_status CHECK (status IN ('pending_payment', 'confirmed',
            'checked_in', 'completed', 'cancelled', 'no_show', 'expired')),
        CONSTRAINT ck_bookings_locale CHECK (customer_locale IN ('en', 'ar')),
        CONSTRAINT ck_bookings_party_size CHECK (party_size >= 1),
        CONSTRAINT ck_bookings_order CHECK (ends_at > starts_at),
        CONSTRAINT ck_bookings_blocked CHECK (
            NOT isempty(blocked) AND lower(blocked) <= starts_at AND upper(blocked) >= ends_at
            AND lower_inc(blocked) AND NOT upper_inc(blocked)
        ),
        CONSTRAINT ck_bookings_hold CHECK (status <> 'pending_payment' OR hold_expires_at IS NOT NULL),
        CONSTRAINT ck_bookings_pricing CHECK (pricing IN ('fixed', 'hourly', 'nightly')),
        CONSTRAINT ck_bookings_amounts CHECK (
            unit_price_minor >= 0 AND total_minor >= 0 AND quantity >= 1
        ),
        CONSTRAINT ck_bookings_provider CHECK (
            payment_provider IN ('stripe', 'kashier', 'cash', 'sandbox')
        ),
        CONSTRAINT ck_bookings_version CHECK (version >= 1),
        -- The guarantee: two active bookings of a capacity-1 resource never overlap,
        -- buffers included, whatever the application code does.
        CONSTRAINT ex_bookings_no_overlap EXCLUDE USING gist (
            tenant_id WITH =, resource_id WITH =, blocked WITH &&
        ) WHERE (exclusive AND status IN {ACTIVE})
    )
    """,
    # Capacity-N recounts and availability read active bookings of a resource by range.
    f"""
    CREATE INDEX ix_bookings_resource_blocked ON bookings USING gist (tenant_id, resource_id, blocked)
    WHERE status IN {ACTIVE}
    """,
    "CREATE INDEX ix_bookings_starts_at ON bookings (tenant_id, starts_at)",
    "CREATE INDEX ix_bookings_series ON bookings (tenant_id, series_id) WHERE series_id IS NOT NULL",
    """
    CREATE INDEX ix_bookings_due_holds ON bookings (hold_expires_at)
    WHERE status = 'pending_payment'
    """,
    "CREATE INDEX ix_bookings_due_no_show ON bookings (starts_at) WHERE status = 'confirmed'",
    """
    CREATE TABLE booking_products (
        tenant_id uuid NOT NULL REFERENCES tenants (id),
        booking_id uuid NOT NULL,
        product_id uuid NOT NULL,
        quantity integer NOT NULL,
        unit_price_minor bigint NOT NULL,
        currency char(3) NOT NULL,
        PRIMARY KEY (tenant_id, booking_id, product_id),
        FOREIGN KEY (tenant_id, booking_id) REFERENCES bookings (tenant_id, id),
        FOREIGN KEY (tenant_id, product_id) REFERENCES products (tenant_id, id),
        CONSTRAINT ck_booking_products_quantity CHECK (quantity >= 1),
        CONSTRAINT ck_booking_products_price CHECK (unit_price_minor >= 0)
    )
    """,
    # The worker acts per tenant under RLS; this is the one door that tells it which tenants
    # have holds to expire or no-shows to mark, and nothing else about them.
    """
    CREATE FUNCTION bookings_tenants_with_due_work(p_now timestamptz, p_no_show_grace interval)
    RETURNS SETOF uuid
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
        SELECT tenant_id FROM bookings
        WHERE status = 'pending_payment' AND hold_expires_at <= p_now
        UNION
        SELECT tenant_id FROM bookings
        WHERE status = 'confirmed' AND starts_at <= p_now - p_no_show_grace
    $$
    """,
    "REVOKE ALL ON FUNCTION bookings_tenants_with_due_work(timestamptz, interval) FROM PUBLIC",
    "GRANT EXECUTE ON FUNCTION bookings_tenants_with_due_work(timestamptz, interval) TO reckon_app",
]


def upgrade() -> None:
    for statement in STATEMENTS:
        op.execute(statement)
    for table in TENANT_TABLES:
        for statement in rls_statements(table):
            op.execute(statement)


def downgrade() -> None:
    op.execute("DROP FUNCTION IF EXISTS bookings_tenants_with_due_work(timestamptz, interval)")
    for table in reversed(TENANT_TABLES):
        op.execute(f"DROP TABLE IF EXISTS {table}")
