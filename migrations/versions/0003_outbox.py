"""Outbox: the transactional outbox table and the narrow cross-tenant doors the relay uses.

Revision ID: 0003
Revises: 0001
"""

from alembic import op

from app.db import rls_statements

revision = "0003"
down_revision = "0001"
branch_labels = None
depends_on = None

# A row can be claimed when it is pending, due and not leased by a live worker.
CLAIMABLE = (
    "{t}.status = 'pending' AND {t}.available_at <= now() "
    "AND ({t}.locked_until IS NULL OR {t}.locked_until < now())"
)
SAME_AGGREGATE = (
    "{e}.tenant_id = {o}.tenant_id AND {e}.aggregate_type = {o}.aggregate_type "
    "AND {e}.aggregate_id = {o}.aggregate_id"
)

OUTBOX_ROW = (
    "tenant_id uuid, id uuid, seq bigint, aggregate_type text, aggregate_id uuid, topic text, "
    "payload jsonb, created_at timestamptz, attempts integer"
)


CHAIN_PER_AGGREGATE = 20


def _claim_function() -> str:
    # Heads: the lowest non-delivered row of an aggregate (a dead row keeps blocking its
    # aggregate until it is retried). Holding the head's lease makes the aggregate ours, so
    # the claimable run right after it is taken in the same batch without SKIP LOCKED; the
    # run stops at the first row that is leased, backing off or dead. plpgsql, not sql: it
    # keeps the plan across calls, and planning this statement was most of a claim's cost.
    claimable = CLAIMABLE.format(t="o")
    no_earlier = SAME_AGGREGATE.format(e="e", o="o")
    follows_head = SAME_AGGREGATE.format(e="o", o="h")
    return f"""
        CREATE FUNCTION outbox_claim(p_worker text, p_limit integer, p_lease_seconds double precision)
        RETURNS TABLE ({OUTBOX_ROW})
        LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp AS $$
        #variable_conflict use_column
        BEGIN
            RETURN QUERY WITH heads AS (
                SELECT o.tenant_id, o.id, o.seq, o.aggregate_type, o.aggregate_id
                FROM outbox o
                WHERE {claimable}
                  AND NOT EXISTS (SELECT 1 FROM outbox e WHERE {no_earlier}
                                  AND e.seq < o.seq AND e.status <> 'delivered')
                ORDER BY o.seq
                LIMIT p_limit
                FOR UPDATE SKIP LOCKED
            ), followers AS (
                SELECT f.tenant_id, f.id, f.seq,
                       bool_and(f.ok) OVER (PARTITION BY h.id ORDER BY f.seq) AS in_run
                FROM heads h CROSS JOIN LATERAL (
                    SELECT o.tenant_id, o.id, o.seq, ({claimable}) AS ok
                    FROM outbox o
                    WHERE {follows_head} AND o.seq > h.seq AND o.status <> 'delivered'
                    ORDER BY o.seq
                    LIMIT {CHAIN_PER_AGGREGATE}
                ) f
            ), chain AS (
                SELECT tenant_id, id FROM followers WHERE in_run ORDER BY seq LIMIT p_limit
            ), picked AS (
                SELECT tenant_id, id FROM heads UNION SELECT tenant_id, id FROM chain
            )
            UPDATE outbox o
               SET locked_until = now() + make_interval(secs => p_lease_seconds),
                   locked_by = p_worker, attempts = o.attempts + 1
              FROM picked p
             WHERE o.tenant_id = p.tenant_id AND o.id = p.id
            RETURNING o.tenant_id, o.id, o.seq, o.aggregate_type, o.aggregate_id, o.topic,
                      o.payload, o.created_at, o.attempts;
        END
        $$
    """


FUNCTIONS = {
    "outbox_claim(text, integer, double precision)": _claim_function(),
    "outbox_mark_delivered(uuid[], uuid[])": """
        CREATE FUNCTION outbox_mark_delivered(p_tenant_ids uuid[], p_ids uuid[])
        RETURNS integer
        LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp AS $$
            WITH done AS (
                UPDATE outbox o
                   SET status = 'delivered', delivered_at = now(), locked_until = NULL,
                       locked_by = NULL, last_error = NULL
                  FROM unnest(p_tenant_ids, p_ids) AS d(tenant_id, id)
                 WHERE o.tenant_id = d.tenant_id AND o.id = d.id AND o.status = 'pending'
                RETURNING 1
            )
            SELECT count(*)::integer FROM done
        $$
    """,
    "outbox_mark_failed(uuid, uuid, text, timestamptz, boolean)": """
        CREATE FUNCTION outbox_mark_failed(p_tenant_id uuid, p_id uuid, p_error text,
                                           p_retry_at timestamptz, p_dead boolean)
        RETURNS void
        LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp AS $$
            UPDATE outbox
               SET status = CASE WHEN p_dead THEN 'dead' ELSE 'pending' END,
                   available_at = p_retry_at, last_error = left(p_error, 2000),
                   locked_until = NULL, locked_by = NULL
             WHERE tenant_id = p_tenant_id AND id = p_id AND status = 'pending'
        $$
    """,
    "outbox_release(uuid[], uuid[])": """
        CREATE FUNCTION outbox_release(p_tenant_ids uuid[], p_ids uuid[])
        RETURNS void
        LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp AS $$
            UPDATE outbox o
               SET locked_until = NULL, locked_by = NULL, attempts = greatest(o.attempts - 1, 0)
              FROM unnest(p_tenant_ids, p_ids) AS d(tenant_id, id)
             WHERE o.tenant_id = d.tenant_id AND o.id = d.id AND o.status = 'pending'
        $$
    """,
    "outbox_stats()": """
        CREATE FUNCTION outbox_stats()
        RETURNS TABLE (status text, depth bigint, oldest_created_at timestamptz,
                       attempts bigint)
        LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
            SELECT status, count(*), min(created_at), coalesce(sum(attempts), 0)
            FROM outbox WHERE status <> 'delivered' GROUP BY status
        $$
    """,
    "outbox_purge_delivered(timestamptz, integer)": """
        CREATE FUNCTION outbox_purge_delivered(p_before timestamptz, p_limit integer)
        RETURNS integer
        LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp AS $$
            WITH gone AS (
                DELETE FROM outbox WHERE (tenant_id, id) IN (
                    SELECT tenant_id, id FROM outbox
                    WHERE status = 'delivered' AND delivered_at < p_before LIMIT p_limit)
                RETURNING 1
            )
            SELECT count(*)::integer FROM gone
        $$
    """,
    "idempotency_purge_expired(timestamptz, integer)": """
        CREATE FUNCTION idempotency_purge_expired(p_before timestamptz, p_limit integer)
        RETURNS integer
        LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp AS $$
            WITH gone AS (
                DELETE FROM idempotency_keys WHERE (tenant_id, id) IN (
                    SELECT tenant_id, id FROM idempotency_keys
                    WHERE created_at < p_before LIMIT p_limit)
                RETURNING 1
            )
            SELECT count(*)::integer FROM gone
        $$
    """,
}


def upgrade() -> None:
    # seq comes from an identity: within one aggregate the writers serialise on the
    # aggregate's row lock before staging, so seq order is that aggregate's commit order.
    op.execute(
        """
        CREATE TABLE outbox (
            tenant_id uuid NOT NULL REFERENCES tenants (id),
            id uuid NOT NULL,
            seq bigint GENERATED ALWAYS AS IDENTITY,
            aggregate_type text NOT NULL,
            aggregate_id uuid NOT NULL,
            topic text NOT NULL,
            payload jsonb NOT NULL,
            status text NOT NULL DEFAULT 'pending',
            attempts integer NOT NULL DEFAULT 0,
            last_error text,
            created_at timestamptz NOT NULL DEFAULT now(),
            available_at timestamptz NOT NULL DEFAULT now(),
            delivered_at timestamptz,
            locked_until timestamptz,
            locked_by text,
            PRIMARY KEY (tenant_id, id),
            CONSTRAINT uq_outbox_seq UNIQUE (seq),
            CONSTRAINT ck_outbox_status CHECK (status IN ('pending', 'delivered', 'dead')),
            CONSTRAINT ck_outbox_delivered_at CHECK ((status = 'delivered') = (delivered_at IS NOT NULL))
        )
        """
    )
    # Partial indexes keep the relay's scans proportional to the backlog, not the history.
    op.execute("CREATE INDEX ix_outbox_due ON outbox (seq) WHERE status = 'pending'")
    op.execute(
        "CREATE INDEX ix_outbox_aggregate_open ON outbox (tenant_id, aggregate_type, aggregate_id, seq) "
        "WHERE status <> 'delivered'"
    )
    op.execute("CREATE INDEX ix_outbox_tenant_status ON outbox (tenant_id, status, seq)")
    op.execute(
        "CREATE INDEX ix_outbox_delivered_at ON outbox (delivered_at) WHERE status = 'delivered'"
    )
    for statement in rls_statements("outbox"):
        op.execute(statement)
    # The relay is cross-tenant by nature; rather than BYPASSRLS for the app role it gets
    # these functions, which read and write outbox bookkeeping only.
    for signature, body in FUNCTIONS.items():
        op.execute(body)
        op.execute(f"REVOKE ALL ON FUNCTION {signature} FROM PUBLIC")
        op.execute(f"GRANT EXECUTE ON FUNCTION {signature} TO reckon_app")
    op.execute("GRANT SELECT, INSERT, UPDATE, DELETE ON outbox TO reckon_app")


def downgrade() -> None:
    for signature in FUNCTIONS:
        op.execute(f"DROP FUNCTION IF EXISTS {signature}")
    op.execute("DROP TABLE IF EXISTS outbox")
