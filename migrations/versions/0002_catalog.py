"""Catalog: branches, resources, services, products, schedules and time off.

Revision ID: 0002
Revises: 0001
"""

from alembic import op

from app.db import rls_statements

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

TENANT_TABLES = [
    "branches",
    "resources",
    "resource_branches",
    "services",
    "service_branch_prices",
    "service_resources",
    "products",
    "product_stock",
    "resource_hours",
    "schedule_overrides",
    "time_off",
]

STATEMENTS = [
    """
    CREATE TABLE branches (
        tenant_id uuid NOT NULL REFERENCES tenants (id),
        id uuid NOT NULL,
        name text NOT NULL,
        timezone text NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (tenant_id, id)
    )
    """,
    """
    CREATE TABLE resources (
        tenant_id uuid NOT NULL REFERENCES tenants (id),
        id uuid NOT NULL,
        name text NOT NULL,
        kind text NOT NULL,
        capacity integer NOT NULL,
        commission_bps integer,
        active boolean NOT NULL DEFAULT true,
        created_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (tenant_id, id),
        CONSTRAINT ck_resources_kind CHECK (kind IN ('staff', 'room', 'unit', 'equipment')),
        CONSTRAINT ck_resources_capacity CHECK (capacity >= 1),
        CONSTRAINT ck_resources_commission_bps CHECK (commission_bps BETWEEN 0 AND 10000)
    )
    """,
    """
    CREATE TABLE resource_branches (
        tenant_id uuid NOT NULL REFERENCES tenants (id),
        resource_id uuid NOT NULL,
        branch_id uuid NOT NULL,
        PRIMARY KEY (tenant_id, resource_id, branch_id),
        FOREIGN KEY (tenant_id, resource_id) REFERENCES resources (tenant_id, id),
        FOREIGN KEY (tenant_id, branch_id) REFERENCES branches (tenant_id, id)
    )
    """,
    """
    CREATE TABLE services (
        tenant_id uuid NOT NULL REFERENCES tenants (id),
        id uuid NOT NULL,
        name text NOT NULL,
        policy text NOT NULL,
        duration_minutes integer,
        slot_step_minutes integer,
        buffer_before_minutes integer NOT NULL DEFAULT 0,
        buffer_after_minutes integer NOT NULL DEFAULT 0,
        min_notice_minutes integer NOT NULL DEFAULT 0,
        max_advance_days integer NOT NULL DEFAULT 365,
        min_nights integer,
        max_nights integer,
        check_in_time time,
        check_out_time time,
        min_minutes integer,
        max_minutes integer,
        price_minor bigint NOT NULL,
        currency char(3) NOT NULL,
        pricing text NOT NULL,
        commission_bps integer,
        commission_fixed_minor bigint,
        cancellation_policy jsonb NOT NULL DEFAULT '{"tiers": []}',
        active boolean NOT NULL DEFAULT true,
        created_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (tenant_id, id),
        CONSTRAINT ck_services_policy CHECK (policy IN ('time_slot', 'nightly', 'interval')),
        CONSTRAINT ck_services_pricing CHECK (pricing IN ('fixed', 'hourly', 'nightly')),
        CONSTRAINT ck_services_price_minor CHECK (price_minor >= 0),
        CONSTRAINT ck_services_commission_bps CHECK (commission_bps BETWEEN 0 AND 10000),
        CONSTRAINT ck_services_commission_fixed CHECK (commission_fixed_minor >= 0),
        CONSTRAINT ck_services_buffers CHECK (
            buffer_before_minutes >= 0 AND buffer_after_minutes >= 0
            AND min_notice_minutes >= 0 AND max_advance_days >= 0
        ),
        -- Each policy's required fields and its one pricing mode, so a service row is always
        -- bookable by the engine that its policy names.
        CONSTRAINT ck_services_time_slot CHECK (
            policy <> 'time_slot'
            OR (duration_minutes > 0 AND slot_step_minutes > 0 AND pricing = 'fixed')
        ),
        CONSTRAINT ck_services_nightly CHECK (
            policy <> 'nightly'
            OR (check_in_time IS NOT NULL AND check_out_time IS NOT NULL AND min_nights >= 1
                AND max_nights >= min_nights AND pricing = 'nightly')
        ),
        CONSTRAINT ck_services_interval CHECK (
            policy <> 'interval'
            OR (slot_step_minutes > 0 AND min_minutes > 0 AND max_minutes >= min_minutes
                AND pricing = 'hourly')
        )
    )
    """,
    """
    CREATE TABLE service_branch_prices (
        tenant_id uuid NOT NULL REFERENCES tenants (id),
        service_id uuid NOT NULL,
        branch_id uuid NOT NULL,
        amount_minor bigint NOT NULL,
        pricing text NOT NULL,
        PRIMARY KEY (tenant_id, service_id, branch_id),
        FOREIGN KEY (tenant_id, service_id) REFERENCES services (tenant_id, id),
        FOREIGN KEY (tenant_id, branch_id) REFERENCES branches (tenant_id, id),
        CONSTRAINT ck_service_branch_prices_amount CHECK (amount_minor >= 0),
        CONSTRAINT ck_service_branch_prices_pricing CHECK (pricing IN ('fixed', 'hourly', 'nightly'))
    )
    """,
    """
    CREATE TABLE service_resources (
        tenant_id uuid NOT NULL REFERENCES tenants (id),
        service_id uuid NOT NULL,
        resource_id uuid NOT NULL,
        PRIMARY KEY (tenant_id, service_id, resource_id),
        FOREIGN KEY (tenant_id, service_id) REFERENCES services (tenant_id, id),
        FOREIGN KEY (tenant_id, resource_id) REFERENCES resources (tenant_id, id)
    )
    """,
    """
    CREATE TABLE products (
        tenant_id uuid NOT NULL REFERENCES tenants (id),
        id uuid NOT NULL,
        name text NOT NULL,
        price_minor bigint NOT NULL,
        currency char(3) NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (tenant_id, id),
        CONSTRAINT ck_products_price_minor CHECK (price_minor >= 0)
    )
    """,
    """
    CREATE TABLE product_stock (
        tenant_id uuid NOT NULL REFERENCES tenants (id),
        product_id uuid NOT NULL,
        branch_id uuid NOT NULL,
        quantity integer NOT NULL,
        PRIMARY KEY (tenant_id, product_id, branch_id),
        FOREIGN KEY (tenant_id, product_id) REFERENCES products (tenant_id, id),
        FOREIGN KEY (tenant_id, branch_id) REFERENCES branches (tenant_id, id),
        CONSTRAINT ck_product_stock_quantity CHECK (quantity >= 0)
    )
    """,
    """
    CREATE TABLE resource_hours (
        tenant_id uuid NOT NULL REFERENCES tenants (id),
        id uuid NOT NULL,
        resource_id uuid NOT NULL,
        branch_id uuid NOT NULL,
        weekday smallint NOT NULL,
        start_time time NOT NULL,
        end_time time NOT NULL,
        PRIMARY KEY (tenant_id, id),
        FOREIGN KEY (tenant_id, resource_id) REFERENCES resources (tenant_id, id),
        FOREIGN KEY (tenant_id, branch_id) REFERENCES branches (tenant_id, id),
        CONSTRAINT ck_resource_hours_weekday CHECK (weekday BETWEEN 0 AND 6),
        CONSTRAINT ck_resource_hours_order CHECK (end_time > start_time),
        -- A resource is in one place at a time: its weekly windows never overlap, across
        -- branches too. Seconds since midnight stand in for a time range type.
        CONSTRAINT ex_resource_hours_overlap EXCLUDE USING gist (
            tenant_id WITH =, resource_id WITH =, weekday WITH =,
            int4range(
                extract(epoch FROM start_time)::int, extract(epoch FROM end_time)::int
            ) WITH &&
        )
    )
    """,
    "CREATE INDEX ix_resource_hours_resource ON resource_hours (tenant_id, resource_id)",
    """
    CREATE TABLE schedule_overrides (
        tenant_id uuid NOT NULL REFERENCES tenants (id),
        id uuid NOT NULL,
        resource_id uuid NOT NULL,
        on_date date NOT NULL,
        closed boolean NOT NULL DEFAULT false,
        start_time time,
        end_time time,
        PRIMARY KEY (tenant_id, id),
        FOREIGN KEY (tenant_id, resource_id) REFERENCES resources (tenant_id, id),
        CONSTRAINT ck_schedule_overrides_hours CHECK (
            closed OR (start_time IS NOT NULL AND end_time IS NOT NULL AND end_time > start_time)
        )
    )
    """,
    "CREATE INDEX ix_schedule_overrides_resource ON schedule_overrides (tenant_id, resource_id, on_date)",
    """
    CREATE TABLE time_off (
        tenant_id uuid NOT NULL REFERENCES tenants (id),
        id uuid NOT NULL,
        resource_id uuid NOT NULL,
        starts_at timestamptz NOT NULL,
        ends_at timestamptz NOT NULL,
        reason text,
        PRIMARY KEY (tenant_id, id),
        FOREIGN KEY (tenant_id, resource_id) REFERENCES resources (tenant_id, id),
        CONSTRAINT ck_time_off_order CHECK (ends_at > starts_at)
    )
    """,
    "CREATE INDEX ix_time_off_resource ON time_off (tenant_id, resource_id, starts_at)",
]


def upgrade() -> None:
    for statement in STATEMENTS:
        op.execute(statement)
    for table in TENANT_TABLES:
        for statement in rls_statements(table):
            op.execute(statement)


def downgrade() -> None:
    for table in reversed(TENANT_TABLES):
        op.execute(f"DROP TABLE IF EXISTS {table}")
