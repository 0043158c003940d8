"""Delivery latency and attempts of recently delivered outbox rows, for the API's /metrics.

Revision ID: 0011
Revises: 0010
"""

from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Cross-tenant by nature (an operator's view), so a narrow SECURITY DEFINER door like
    # outbox_stats(); it returns figures only, never rows.
    op.execute(
        """
        CREATE FUNCTION outbox_recent_deliveries(p_since timestamptz)
        RETURNS TABLE (delivered bigint, p50_seconds double precision,
                       p99_seconds double precision, max_seconds double precision,
                       attempts bigint, retried bigint)
        LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
            SELECT count(*),
                   coalesce(percentile_cont(0.5) WITHIN GROUP (ORDER BY
                       extract(epoch FROM delivered_at - created_at)), 0),
                   coalesce(percentile_cont(0.99) WITHIN GROUP (ORDER BY
                       extract(epoch FROM delivered_at - created_at)), 0),
                   coalesce(max(extract(epoch FROM delivered_at - created_at)), 0),
                   coalesce(sum(attempts), 0),
                   count(*) FILTER (WHERE attempts > 1)
            FROM outbox WHERE status = 'delivered' AND delivered_at >= p_since
        $$
        """
    )
    op.execute("REVOKE ALL ON FUNCTION outbox_recent_deliveries(timestamptz) FROM PUBLIC")
    op.execute("GRANT EXECUTE ON FUNCTION outbox_recent_deliveries(timestamptz) TO reckon_app")
    op.execute(
        "CREATE INDEX IF NOT EXISTS ix_outbox_delivered_at ON outbox (delivered_at) "
        "WHERE status = 'delivered'"
    )


def downgrade() -> None:
    op.execute("DROP INDEX IF EXISTS ix_outbox_delivered_at")
    op.execute("DROP FUNCTION IF EXISTS outbox_recent_deliveries(timestamptz)")
