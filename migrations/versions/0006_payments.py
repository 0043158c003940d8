"""Payments, refunds and the webhook inbox; merges the catalog/bookings, outbox and ledger heads.

Revision ID: 0006
Revises: 0003, 0004, 0005
"""

from alembic import op

from app.db import rls_statements

revision = "0006"
down_revision = ("0003", "0004", "0005")
branch_labels = None
depends_on = None

STATEMENTS = [
    """
    CREATE TABLE payments (
        tenant_id uuid NOT NULL REFERENCES tenants (id),
        id uuid NOT NULL,
        booking_id uuid NOT NULL,
        provider text NOT NULL,
        status text NOT NULL,
        amount_minor bigint NOT NULL,
        currency char(3) NOT NULL,
        captured_minor bigint NOT NULL DEFAULT 0,
        refunded_minor bigint NOT NULL DEFAULT 0,
        fee_minor bigint NOT NULL DEFAULT 0,
        provider_ref text,
        provider_charge_ref text,
        checkout_session_id text,
        checkout_url text,
        failure_reason text,
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (tenant_id, id),
        FOREIGN KEY (tenant_id, booking_id) REFERENCES bookings (tenant_id, id),
        CONSTRAINT ck_payments_provider CHECK (provider IN ('stripe', 'kashier', 'cash', 'sandbox')),
        CONSTRAINT ck_payments_status CHECK (status IN ('requires_payment', 'processing',
            'succeeded', 'failed', 'cancelled', 'partially_refunded', 'refunded')),
        CONSTRAINT ck_payments_amounts CHECK (amount_minor >= 0 AND fee_minor >= 0
            AND captured_minor >= 0 AND captured_minor <= amount_minor),
        -- Refunds (pending or done) never exceed what was captured.
        CONSTRAINT ck_payments_refund_le_captured CHECK (
            refunded_minor >= 0 AND refunded_minor <= captured_minor)
    )
    """,
    "CREATE UNIQUE INDEX uq_payments_booking ON payments (tenant_id, booking_id)",
    "CREATE INDEX ix_payments_provider_ref ON payments (provider, provider_ref)",
    """
    CREATE TABLE refunds (
        tenant_id uuid NOT NULL REFERENCES tenants (id),
        id uuid NOT NULL,
        payment_id uuid NOT NULL,
        booking_id uuid NOT NULL,
        amount_minor bigint NOT NULL,
        currency char(3) NOT NULL,
        status text NOT NULL DEFAULT 'pending',
        reason text NOT NULL,
        provider_ref text,
        failure_reason text,
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (tenant_id, id),
        FOREIGN KEY (tenant_id, payment_id) REFERENCES payments (tenant_id, id),
        CONSTRAINT ck_refunds_amount CHECK (amount_minor > 0),
        CONSTRAINT ck_refunds_status CHECK (status IN ('pending', 'succeeded', 'failed'))
    )
    """,
    "CREATE INDEX ix_refunds_payment ON refunds (tenant_id, payment_id)",
    # Belt and braces beside the CHECK on payments: the refunds themselves, summed, never
    # exceed the capture, whatever code wrote them.
    """
    CREATE FUNCTION refunds_within_capture() RETURNS trigger LANGUAGE plpgsql AS $$
    DECLARE
        v_captured bigint;
        v_refunded bigint;
    BEGIN
        SELECT captured_minor INTO v_captured FROM payments
            WHERE tenant_id = NEW.tenant_id AND id = NEW.payment_id;
        SELECT coalesce(sum(amount_minor), 0) INTO v_refunded FROM refunds
            WHERE tenant_id = NEW.tenant_id AND payment_id = NEW.payment_id
              AND status <> 'failed';
        IF v_refunded > v_captured THEN
            RAISE EXCEPTION 'refunds (%) exceed the captured amount (%) of payment %',
                v_refunded, v_captured, NEW.payment_id
                USING ERRCODE = 'check_violation', CONSTRAINT = 'ck_refunds_within_capture';
        END IF;
        RETURN NULL;
    END
    $$
    """,
    """
    CREATE CONSTRAINT TRIGGER refunds_within_capture
        AFTER INSERT OR UPDATE ON refunds DEFERRABLE INITIALLY DEFERRED
        FOR EACH ROW EXECUTE FUNCTION refunds_within_capture()
    """,
    """
    CREATE TABLE inbox (
        -- Provider-level, not a tenant table: event ids are unique per provider, and the
        -- tenant is only known once the verified payload is read.
        owner_tenant_id uuid,
        id uuid NOT NULL PRIMARY KEY,
        provider text NOT NULL,
        event_id text NOT NULL,
        event_type text NOT NULL,
        payload jsonb NOT NULL,
        received_at timestamptz NOT NULL DEFAULT now(),
        processed_at timestamptz,
        outcome text,
        CONSTRAINT uq_inbox_provider_event UNIQUE (provider, event_id)
    )
    """,
]


LOOKUPS = [
    # Webhooks name a payment by our id (metadata, Kashier's merchantOrderId) or by the
    # provider's reference; these narrow doors find its tenant before RLS can be set.
    """
    CREATE FUNCTION payment_tenant(p_payment_id uuid) RETURNS uuid
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
        SELECT tenant_id FROM payments WHERE id = p_payment_id
    $$
    """,
    """
    CREATE FUNCTION payment_by_provider_ref(p_provider text, p_ref text)
    RETURNS TABLE (tenant_id uuid, id uuid)
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
        SELECT tenant_id, id FROM payments
        WHERE provider = p_provider
          AND (provider_ref = p_ref OR provider_charge_ref = p_ref OR checkout_session_id = p_ref)
        LIMIT 1
    $$
    """,
    "REVOKE ALL ON FUNCTION payment_tenant(uuid) FROM PUBLIC",
    "REVOKE ALL ON FUNCTION payment_by_provider_ref(text, text) FROM PUBLIC",
    "GRANT EXECUTE ON FUNCTION payment_tenant(uuid) TO reckon_app",
    "GRANT EXECUTE ON FUNCTION payment_by_provider_ref(text, text) TO reckon_app",
    "CREATE INDEX ix_payments_charge_ref ON payments (provider, provider_charge_ref)",
    "CREATE INDEX ix_payments_session ON payments (provider, checkout_session_id)",
]


def upgrade() -> None:
    for statement in STATEMENTS + LOOKUPS:
        op.execute(statement)
    for table in ("payments", "refunds"):
        for statement in rls_statements(table):
            op.execute(statement)
    # The inbox is written before the tenant is known (it comes from the verified payload);
    # the app role may insert and read it, nothing else reads it.
    op.execute("REVOKE ALL ON inbox FROM reckon_app")
    op.execute("GRANT SELECT, INSERT, UPDATE ON inbox TO reckon_app")


def downgrade() -> None:
    op.execute("DROP FUNCTION IF EXISTS payment_by_provider_ref(text, text)")
    op.execute("DROP FUNCTION IF EXISTS payment_tenant(uuid)")
    op.execute("DROP TABLE IF EXISTS inbox")
    op.execute("DROP TRIGGER IF EXISTS refunds_within_capture ON refunds")
    op.execute("DROP FUNCTION IF EXISTS refunds_within_capture()")
    op.execute("DROP TABLE IF EXISTS refunds")
    op.execute("DROP TABLE IF EXISTS payments")
