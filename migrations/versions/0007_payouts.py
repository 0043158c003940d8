"""Payouts (staff commission payouts, payout accounts) and reconciliation runs/discrepancies.

Revision ID: 0007
Revises: 0006
"""

from alembic import op

from app.db import rls_statements

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

TABLES = ["payout_accounts", "payouts", "reconciliation_runs", "reconciliation_discrepancies"]

STATEMENTS = [
    """
    CREATE TABLE payout_accounts (
        tenant_id uuid NOT NULL REFERENCES tenants (id),
        id uuid NOT NULL,
        resource_id uuid NOT NULL,
        rail text NOT NULL,
        connected_account_id text,
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (tenant_id, id),
        FOREIGN KEY (tenant_id, resource_id) REFERENCES resources (tenant_id, id),
        CONSTRAINT uq_payout_accounts_resource UNIQUE (tenant_id, resource_id),
        CONSTRAINT ck_payout_accounts_rail CHECK (rail IN ('stripe', 'manual')),
        CONSTRAINT ck_payout_accounts_connected CHECK (
            rail <> 'stripe' OR connected_account_id ~ '^acct_[A-Za-z0-9]+$')
    )
    """,
    """
    CREATE TABLE payouts (
        tenant_id uuid NOT NULL REFERENCES tenants (id),
        id uuid NOT NULL,
        resource_id uuid NOT NULL,
        rail text NOT NULL,
        destination text,
        status text NOT NULL,
        amount_minor bigint NOT NULL,
        currency char(3) NOT NULL,
        period_start date NOT NULL,
        period_end date NOT NULL,
        transfer_entry_id uuid NOT NULL,
        settle_entry_id uuid,
        provider_ref text,
        failure_reason text,
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now(),
        paid_at timestamptz,
        PRIMARY KEY (tenant_id, id),
        FOREIGN KEY (tenant_id, transfer_entry_id) REFERENCES journal_entries (tenant_id, id),
        FOREIGN KEY (tenant_id, settle_entry_id) REFERENCES journal_entries (tenant_id, id),
        -- A run repeated for the same period finds its payouts already there.
        CONSTRAINT uq_payouts_period
            UNIQUE (tenant_id, resource_id, currency, period_start, period_end),
        CONSTRAINT ck_payouts_amount CHECK (amount_minor > 0),
        CONSTRAINT ck_payouts_rail CHECK (rail IN ('stripe', 'manual')),
        CONSTRAINT ck_payouts_status CHECK (status IN ('in_transit', 'paid', 'failed')),
        CONSTRAINT ck_payouts_period CHECK (period_start < period_end),
        CONSTRAINT ck_payouts_paid CHECK ((status = 'paid') = (settle_entry_id IS NOT NULL))
    )
    """,
    "CREATE INDEX ix_payouts_created ON payouts (tenant_id, created_at DESC)",
    """
    CREATE TABLE reconciliation_runs (
        tenant_id uuid NOT NULL REFERENCES tenants (id),
        id uuid NOT NULL,
        provider text NOT NULL,
        run_date date NOT NULL,
        status text NOT NULL,
        window_start timestamptz NOT NULL,
        window_end timestamptz NOT NULL,
        provider_records integer NOT NULL DEFAULT 0,
        ledger_records integer NOT NULL DEFAULT 0,
        matched integer NOT NULL DEFAULT 0,
        discrepancies integer NOT NULL DEFAULT 0,
        tolerances jsonb NOT NULL DEFAULT '{}'::jsonb,
        attempts integer NOT NULL DEFAULT 1,
        error text,
        started_at timestamptz NOT NULL,
        finished_at timestamptz,
        PRIMARY KEY (tenant_id, id),
        CONSTRAINT uq_reconciliation_runs_day UNIQUE (tenant_id, provider, run_date),
        CONSTRAINT ck_reconciliation_runs_provider CHECK (provider IN ('stripe', 'kashier')),
        CONSTRAINT ck_reconciliation_runs_status CHECK (status IN ('completed', 'failed'))
    )
    """,
    """
    CREATE TABLE reconciliation_discrepancies (
        tenant_id uuid NOT NULL REFERENCES tenants (id),
        id uuid NOT NULL,
        run_id uuid NOT NULL,
        provider text NOT NULL,
        kind text NOT NULL,
        provider_ref text NOT NULL,
        record_type text,
        ledger_minor bigint,
        provider_minor bigint,
        currency char(3),
        provider_currency char(3),
        details jsonb NOT NULL DEFAULT '{}'::jsonb,
        status text NOT NULL DEFAULT 'open',
        resolution_note text,
        resolved_by uuid,
        resolved_at timestamptz,
        adjusting_entry_id uuid,
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (tenant_id, id),
        FOREIGN KEY (tenant_id, run_id) REFERENCES reconciliation_runs (tenant_id, id),
        FOREIGN KEY (tenant_id, adjusting_entry_id) REFERENCES journal_entries (tenant_id, id),
        -- Re-running a day updates findings instead of repeating them.
        CONSTRAINT uq_reconciliation_discrepancies_finding
            UNIQUE (tenant_id, provider, kind, provider_ref),
        CONSTRAINT ck_reconciliation_discrepancies_kind CHECK (kind IN ('missing_in_ledger',
            'missing_at_provider', 'amount_mismatch', 'fee_mismatch', 'currency_mismatch',
            'duplicate')),
        CONSTRAINT ck_reconciliation_discrepancies_status
            CHECK (status IN ('open', 'resolved', 'cleared')),
        CONSTRAINT ck_reconciliation_discrepancies_resolved CHECK (
            status <> 'resolved' OR (resolved_at IS NOT NULL AND resolution_note IS NOT NULL))
    )
    """,
    "CREATE INDEX ix_reconciliation_discrepancies_run ON reconciliation_discrepancies "
    "(tenant_id, run_id)",
    "CREATE INDEX ix_reconciliation_discrepancies_open ON reconciliation_discrepancies "
    "(tenant_id, created_at DESC) WHERE status = 'open'",
    # Cron jobs visit tenants; the tenants table is under RLS, so a narrow door names them.
    """
    CREATE FUNCTION payouts_tenants() RETURNS SETOF uuid
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
        SELECT id FROM tenants ORDER BY id
    $$
    """,
]


def upgrade() -> None:
    for statement in STATEMENTS:
        op.execute(statement)
    for table in TABLES:
        for statement in rls_statements(table):
            op.execute(statement)


def downgrade() -> None:
    op.execute("DROP FUNCTION IF EXISTS payouts_tenants()")
    for table in reversed(TABLES):
        op.execute(f"DROP TABLE IF EXISTS {table}")
