"""Invoices and credit notes: per-tenant settings, gapless number counters, documents, lines.

Revision ID: 0009
Revises: 0006
"""

from alembic import op

from app.db import rls_statements

revision = "0009"
down_revision = "0006"
branch_labels = None
depends_on = None

TABLES = ["invoice_settings", "invoice_counters", "invoices", "invoice_lines"]

# lpad would truncate a seven-digit sequence, so only short ones are padded.
NUMBER_FORMAT = (
    "series || '-' || year::text || '-' || CASE WHEN sequence >= 100000 THEN sequence::text "
    "ELSE lpad(sequence::text, 6, '0') END"
)

STATEMENTS = [
    """
    CREATE TABLE invoice_settings (
        tenant_id uuid NOT NULL REFERENCES tenants (id),
        id uuid NOT NULL,
        tax_rate_bps integer NOT NULL DEFAULT 0,
        tax_label text NOT NULL DEFAULT 'VAT',
        footer text,
        updated_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (tenant_id, id),
        CONSTRAINT uq_invoice_settings_tenant UNIQUE (tenant_id),
        CONSTRAINT ck_invoice_settings_rate CHECK (tax_rate_bps BETWEEN 0 AND 10000),
        CONSTRAINT ck_invoice_settings_label CHECK (length(tax_label) BETWEEN 1 AND 40),
        CONSTRAINT ck_invoice_settings_footer CHECK (footer IS NULL OR length(footer) <= 2000)
    )
    """,
    # One row per tenant, series and year, bumped with UPSERT ... RETURNING inside the issuing
    # transaction: the row lock serialises issuers and a rollback returns the number, which a
    # sequence would not (sequences leave gaps on rollback).
    """
    CREATE TABLE invoice_counters (
        tenant_id uuid NOT NULL REFERENCES tenants (id),
        id uuid NOT NULL,
        series text NOT NULL,
        year integer NOT NULL,
        last_value bigint NOT NULL,
        PRIMARY KEY (tenant_id, id),
        CONSTRAINT uq_invoice_counters_series UNIQUE (tenant_id, series, year),
        CONSTRAINT ck_invoice_counters_series CHECK (series IN ('INV', 'CN')),
        CONSTRAINT ck_invoice_counters_value CHECK (last_value >= 1)
    )
    """,
    f"""
    CREATE TABLE invoices (
        tenant_id uuid NOT NULL REFERENCES tenants (id),
        id uuid NOT NULL,
        kind text NOT NULL,
        series text NOT NULL,
        year integer NOT NULL,
        sequence bigint NOT NULL,
        number text NOT NULL,
        payment_id uuid NOT NULL,
        refund_id uuid,
        credits_invoice_id uuid,
        credits_number text,
        booking_id uuid NOT NULL,
        issued_at timestamptz NOT NULL,
        business_name text NOT NULL,
        timezone text NOT NULL,
        customer_name text NOT NULL,
        customer_email text,
        subtotal_minor bigint NOT NULL,
        tax_minor bigint NOT NULL,
        total_minor bigint NOT NULL,
        currency char(3) NOT NULL,
        tax_rate_bps integer NOT NULL,
        tax_label text NOT NULL,
        footer text,
        created_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (tenant_id, id),
        FOREIGN KEY (tenant_id, payment_id) REFERENCES payments (tenant_id, id),
        FOREIGN KEY (tenant_id, refund_id) REFERENCES refunds (tenant_id, id),
        FOREIGN KEY (tenant_id, booking_id) REFERENCES bookings (tenant_id, id),
        FOREIGN KEY (tenant_id, credits_invoice_id) REFERENCES invoices (tenant_id, id),
        CONSTRAINT uq_invoices_number UNIQUE (tenant_id, number),
        CONSTRAINT uq_invoices_sequence UNIQUE (tenant_id, series, year, sequence),
        CONSTRAINT ck_invoices_kind CHECK (
            (kind = 'invoice' AND series = 'INV' AND refund_id IS NULL
                AND credits_invoice_id IS NULL)
            OR (kind = 'credit_note' AND series = 'CN' AND refund_id IS NOT NULL
                AND credits_invoice_id IS NOT NULL AND credits_number IS NOT NULL)),
        CONSTRAINT ck_invoices_number CHECK (sequence >= 1 AND number = {NUMBER_FORMAT}),
        CONSTRAINT ck_invoices_amounts CHECK (
            tax_minor >= 0 AND subtotal_minor >= 0 AND subtotal_minor + tax_minor = total_minor),
        CONSTRAINT ck_invoices_rate CHECK (tax_rate_bps BETWEEN 0 AND 10000)
    )
    """,
    """
    CREATE UNIQUE INDEX uq_invoices_payment ON invoices (tenant_id, payment_id)
    WHERE kind = 'invoice'
    """,
    """
    CREATE UNIQUE INDEX uq_invoices_refund ON invoices (tenant_id, refund_id)
    WHERE kind = 'credit_note'
    """,
    "CREATE INDEX ix_invoices_issued_at ON invoices (tenant_id, issued_at)",
    """
    CREATE TABLE invoice_lines (
        tenant_id uuid NOT NULL REFERENCES tenants (id),
        id uuid NOT NULL,
        invoice_id uuid NOT NULL,
        position integer NOT NULL,
        description text NOT NULL,
        quantity integer NOT NULL,
        unit_price_minor bigint NOT NULL,
        amount_minor bigint NOT NULL,
        currency char(3) NOT NULL,
        booking_id uuid,
        product_id uuid,
        PRIMARY KEY (tenant_id, id),
        FOREIGN KEY (tenant_id, invoice_id) REFERENCES invoices (tenant_id, id),
        CONSTRAINT uq_invoice_lines_position UNIQUE (tenant_id, invoice_id, position),
        CONSTRAINT ck_invoice_lines_quantity CHECK (quantity >= 1),
        CONSTRAINT ck_invoice_lines_amount CHECK (amount_minor >= 0)
    )
    """,
    # Issued documents are legal records: corrections are credit notes, never edits.
    """
    CREATE FUNCTION invoices_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        RAISE EXCEPTION '% rows are immutable once issued', TG_TABLE_NAME
            USING ERRCODE = 'restrict_violation';
    END
    $$
    """,
    """
    CREATE TRIGGER invoices_immutable BEFORE UPDATE OR DELETE ON invoices
        FOR EACH ROW EXECUTE FUNCTION invoices_immutable()
    """,
    """
    CREATE TRIGGER invoice_lines_immutable BEFORE UPDATE OR DELETE ON invoice_lines
        FOR EACH ROW EXECUTE FUNCTION invoices_immutable()
    """,
    # At commit, every document's lines sum to its total, in its currency.
    """
    CREATE FUNCTION invoice_lines_balance() RETURNS trigger LANGUAGE plpgsql AS $$
    DECLARE
        v_invoice uuid;
        v_total bigint;
        v_currency char(3);
        v_lines bigint;
        v_bad integer;
    BEGIN
        IF TG_TABLE_NAME = 'invoices' THEN
            v_invoice := NEW.id;
        ELSE
            v_invoice := NEW.invoice_id;
        END IF;
        SELECT total_minor, currency INTO v_total, v_currency FROM invoices
            WHERE tenant_id = NEW.tenant_id AND id = v_invoice;
        SELECT coalesce(sum(amount_minor), 0), count(*) FILTER (WHERE currency <> v_currency)
            INTO v_lines, v_bad FROM invoice_lines
            WHERE tenant_id = NEW.tenant_id AND invoice_id = v_invoice;
        IF v_lines <> v_total OR v_bad > 0 THEN
            RAISE EXCEPTION 'lines of invoice % sum to % %, not its total %',
                v_invoice, v_lines, v_currency, v_total
                USING ERRCODE = 'check_violation', CONSTRAINT = 'ck_invoice_lines_balance';
        END IF;
        RETURN NULL;
    END
    $$
    """,
    """
    CREATE CONSTRAINT TRIGGER invoices_balance AFTER INSERT ON invoices
        DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION invoice_lines_balance()
    """,
    """
    CREATE CONSTRAINT TRIGGER invoice_lines_balance AFTER INSERT ON invoice_lines
        DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION invoice_lines_balance()
    """,
]


def upgrade() -> None:
    for statement in STATEMENTS:
        op.execute(statement)
    for table in TABLES:
        for statement in rls_statements(table):
            op.execute(statement)


def downgrade() -> None:
    for table in reversed(TABLES):
        op.execute(f"DROP TABLE IF EXISTS {table}")
    op.execute("DROP FUNCTION IF EXISTS invoice_lines_balance()")
    op.execute("DROP FUNCTION IF EXISTS invoices_immutable()")
