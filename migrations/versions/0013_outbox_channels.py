"""Outbox delivery per channel: one handler's failure no longer holds back the others.

An event is first attempted whole (every channel its topic routes to, in one claim). Only
when some channel does not deliver does the relay record the event's channels in
outbox_deliveries, one row per (event, channel), and from then on each channel is claimed,
retried, declared dead and replayed on its own. Order is kept per (aggregate, channel): a
channel's delivery waits for that channel's earlier deliveries of the same aggregate only.

Events never split this way stay as they were, so the common path (every channel delivers
on the first attempt) writes nothing more than before.

Revision ID: 0013
Revises: 0012
"""

import importlib.util
from pathlib import Path
from types import ModuleType

from alembic import op

from app.db import rls_statements

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

CHAIN_PER_AGGREGATE = 20

CLAIMABLE_EVENT = (
    "{t}.status = 'pending' AND NOT {t}.per_channel AND {t}.available_at <= now() "
    "AND ({t}.locked_until IS NULL OR {t}.locked_until < now())"
)
CLAIMABLE_DELIVERY = (
    "{t}.status = 'pending' AND {t}.available_at <= now() "
    "AND ({t}.locked_until IS NULL OR {t}.locked_until < now())"
)
SAME_AGGREGATE = (
    "{e}.tenant_id = {o}.tenant_id AND {e}.aggregate_type = {o}.aggregate_type "
    "AND {e}.aggregate_id = {o}.aggregate_id"
)
SAME_CHANNEL = SAME_AGGREGATE + " AND {e}.channel = {o}.channel"
SAME_DELIVERY = (
    "{e}.tenant_id = {o}.tenant_id AND {e}.outbox_id = {o}.outbox_id AND {e}.channel = {o}.channel"
)

CLAIMED_ROW = (
    "tenant_id uuid, id uuid, seq bigint, aggregate_type text, aggregate_id uuid, topic text, "
    "payload jsonb, created_at timestamptz, attempts integer, channel text, held text[]"
)


def _claim_function() -> str:
    # Two kinds of work in one round trip.
    # Channel deliveries (events that split): a head is a due delivery with no earlier open
    # delivery of its (aggregate, channel); the due run right after it rides along.
    # Whole events (never split): as before, a head is the aggregate's first unsplit open
    # event; the run after it rides along. Unsplit open events of an aggregate always come
    # after its split ones (an event splits only when it is attempted, which needs every
    # earlier event split or delivered), so an unsplit head's only blockers are the open
    # deliveries of its aggregate: they come back as `held`, the channels the relay must not
    # run for it now (those claimed in this same batch excepted: the relay orders them). No
    # open delivery anywhere, the usual case, costs one probe per claim, not one per event.
    event_ok = CLAIMABLE_EVENT.format(t="o")
    delivery_ok = CLAIMABLE_DELIVERY.format(t="o")
    return f"""
        CREATE FUNCTION outbox_claim(p_worker text, p_limit integer, p_lease_seconds double precision)
        RETURNS TABLE ({CLAIMED_ROW})
        LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp AS $$
        #variable_conflict use_column
        BEGIN
            RETURN QUERY WITH owed_heads AS (
                SELECT o.tenant_id, o.outbox_id, o.channel, o.seq, o.aggregate_type, o.aggregate_id
                FROM outbox_deliveries o
                WHERE {CLAIMABLE_DELIVERY.format(t="o")}
                  AND NOT EXISTS (SELECT 1 FROM outbox_deliveries e WHERE {SAME_CHANNEL.format(e="e", o="o")}
                                  AND e.seq < o.seq AND e.status <> 'delivered')
                ORDER BY o.seq
                LIMIT p_limit
                FOR UPDATE SKIP LOCKED
            ), owed_followers AS (
                SELECT f.tenant_id, f.outbox_id, f.channel, f.seq,
                       bool_and(f.ok) OVER (PARTITION BY h.tenant_id, h.outbox_id, h.channel
                                            ORDER BY f.seq) AS in_run
                FROM owed_heads h CROSS JOIN LATERAL (
                    SELECT o.tenant_id, o.outbox_id, o.channel, o.seq, ({delivery_ok}) AS ok
                    FROM outbox_deliveries o
                    WHERE {SAME_CHANNEL.format(e="o", o="h")} AND o.seq > h.seq
                      AND o.status <> 'delivered'
                    ORDER BY o.seq
                    LIMIT {CHAIN_PER_AGGREGATE}
                ) f
            ), owed_chain AS (
                SELECT tenant_id, outbox_id, channel FROM owed_followers WHERE in_run
                ORDER BY seq LIMIT p_limit
            ), owed AS (
                SELECT tenant_id, outbox_id, channel FROM owed_heads
                UNION SELECT tenant_id, outbox_id, channel FROM owed_chain
            ), owed_leased AS (
                UPDATE outbox_deliveries o
                   SET locked_until = now() + make_interval(secs => p_lease_seconds),
                       locked_by = p_worker, attempts = o.attempts + 1
                  FROM owed p
                 WHERE {SAME_DELIVERY.format(e="o", o="p")}
                RETURNING o.tenant_id, o.outbox_id, o.channel, o.attempts
            ), heads AS (
                SELECT o.tenant_id, o.id, o.seq, o.aggregate_type, o.aggregate_id
                FROM outbox o
                WHERE {event_ok}
                  AND NOT EXISTS (SELECT 1 FROM outbox e WHERE {SAME_AGGREGATE.format(e="e", o="o")}
                                  AND e.seq < o.seq AND e.status <> 'delivered'
                                  AND NOT e.per_channel)
                ORDER BY o.seq
                LIMIT greatest(p_limit - (SELECT count(*) FROM owed), 0)
                FOR UPDATE SKIP LOCKED
            ), followers AS (
                SELECT f.tenant_id, f.id, f.seq,
                       bool_and(f.ok) OVER (PARTITION BY h.id ORDER BY f.seq) AS in_run
                FROM heads h CROSS JOIN LATERAL (
                    SELECT o.tenant_id, o.id, o.seq, ({event_ok}) AS ok
                    FROM outbox o
                    WHERE {SAME_AGGREGATE.format(e="o", o="h")} AND o.seq > h.seq
                      AND o.status <> 'delivered'
                    ORDER BY o.seq
                    LIMIT {CHAIN_PER_AGGREGATE}
                ) f
            ), chain AS (
                SELECT tenant_id, id FROM followers WHERE in_run ORDER BY seq LIMIT p_limit
            ), picked AS (
                SELECT tenant_id, id FROM heads UNION SELECT tenant_id, id FROM chain
            ), leased AS (
                UPDATE outbox o
                   SET locked_until = now() + make_interval(secs => p_lease_seconds),
                       locked_by = p_worker, attempts = o.attempts + 1
                  FROM picked p
                 WHERE o.tenant_id = p.tenant_id AND o.id = p.id
                RETURNING o.tenant_id, o.id, o.seq, o.aggregate_type, o.aggregate_id, o.topic,
                          o.payload, o.created_at, o.attempts
            )
            SELECT o.tenant_id, o.id, o.seq, o.aggregate_type, o.aggregate_id, o.topic,
                   o.payload, o.created_at, l.attempts, l.channel, NULL::text[]
              FROM owed_leased l JOIN outbox o ON o.tenant_id = l.tenant_id AND o.id = l.outbox_id
            UNION ALL
            SELECT l.tenant_id, l.id, l.seq, l.aggregate_type, l.aggregate_id, l.topic,
                   l.payload, l.created_at, l.attempts, NULL::text,
                   CASE WHEN (SELECT EXISTS (SELECT 1 FROM outbox_deliveries WHERE status <> 'delivered'))
                   THEN ARRAY(SELECT DISTINCT e.channel FROM outbox_deliveries e
                              WHERE {SAME_AGGREGATE.format(e="e", o="l")} AND e.seq < l.seq
                                AND e.status <> 'delivered'
                                AND NOT EXISTS (SELECT 1 FROM owed p WHERE {SAME_DELIVERY.format(e="p", o="e")}))
                   ELSE '{{}}'::text[] END
              FROM leased l;
        END
        $$
    """


FUNCTIONS = {
    "outbox_claim(text, integer, double precision)": _claim_function(),
    # Whole events only: an event that split is finished through its deliveries.
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
                   AND NOT o.per_channel
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
               AND NOT per_channel
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
               AND NOT o.per_channel
        $$
    """,
}

NEW_FUNCTIONS = {
    # The event row summarises its deliveries for the API, the CLI and the metrics: dead if
    # any channel gave up (someone must look), else pending while any channel is owed.
    # SECURITY INVOKER: the admin retry runs it as the app role, under RLS.
    "outbox_refresh(uuid[], uuid[])": """
        CREATE FUNCTION outbox_refresh(p_tenant_ids uuid[], p_ids uuid[])
        RETURNS void
        LANGUAGE sql VOLATILE SET search_path = public, pg_temp AS $$
            UPDATE outbox o
               SET per_channel = true, locked_until = NULL, locked_by = NULL,
                   status = s.status, attempts = s.attempts, last_error = s.last_error,
                   available_at = coalesce(s.next_at, o.available_at),
                   delivered_at = CASE WHEN s.status = 'delivered'
                                       THEN coalesce(o.delivered_at, now()) END
              FROM (
                SELECT d.tenant_id, d.outbox_id,
                       CASE WHEN bool_or(d.status = 'dead') THEN 'dead'
                            WHEN bool_or(d.status = 'pending') THEN 'pending'
                            ELSE 'delivered' END AS status,
                       coalesce(max(d.attempts) FILTER (WHERE d.status <> 'delivered'),
                                max(d.attempts)) AS attempts,
                       string_agg(d.channel || ': ' || d.last_error, '; ' ORDER BY d.channel)
                           FILTER (WHERE d.status <> 'delivered') AS last_error,
                       min(d.available_at) FILTER (WHERE d.status = 'pending') AS next_at
                FROM outbox_deliveries d
                WHERE (d.tenant_id, d.outbox_id) IN (SELECT * FROM unnest(p_tenant_ids, p_ids))
                GROUP BY d.tenant_id, d.outbox_id
              ) s
             WHERE o.tenant_id = s.tenant_id AND o.id = s.outbox_id
        $$
    """,
    # Outcomes per (event, channel): the first time an event does not deliver everywhere
    # this inserts all its channels (delivered ones too, so a retry never runs them again);
    # afterwards it updates them. A delivered channel is never reopened.
    "outbox_record(uuid[], uuid[], text[], text[], integer[], text[], timestamptz[])": """
        CREATE FUNCTION outbox_record(p_tenant_ids uuid[], p_ids uuid[], p_channels text[],
                                      p_statuses text[], p_attempts integer[], p_errors text[],
                                      p_available_at timestamptz[])
        RETURNS void
        LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp AS $$
        BEGIN
            INSERT INTO outbox_deliveries AS d
                   (tenant_id, outbox_id, channel, seq, aggregate_type, aggregate_id, status,
                    attempts, last_error, available_at, delivered_at)
            SELECT r.tenant_id, r.id, r.channel, o.seq, o.aggregate_type, o.aggregate_id,
                   r.status, r.attempts, left(r.error, 2000), r.available_at,
                   CASE WHEN r.status = 'delivered' THEN now() END
              FROM unnest(p_tenant_ids, p_ids, p_channels, p_statuses, p_attempts, p_errors,
                          p_available_at) AS r(tenant_id, id, channel, status, attempts, error,
                                               available_at)
              JOIN outbox o ON o.tenant_id = r.tenant_id AND o.id = r.id
             WHERE o.status <> 'delivered'
            ON CONFLICT (tenant_id, outbox_id, channel) DO UPDATE
               SET status = excluded.status, attempts = excluded.attempts,
                   last_error = excluded.last_error, available_at = excluded.available_at,
                   delivered_at = excluded.delivered_at, locked_until = NULL, locked_by = NULL
             WHERE d.status <> 'delivered';
            PERFORM outbox_refresh(p_tenant_ids, p_ids);
        END
        $$
    """,
    "outbox_release_deliveries(uuid[], uuid[], text[])": """
        CREATE FUNCTION outbox_release_deliveries(p_tenant_ids uuid[], p_ids uuid[],
                                                  p_channels text[])
        RETURNS void
        LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp AS $$
            UPDATE outbox_deliveries d
               SET locked_until = NULL, locked_by = NULL, attempts = greatest(d.attempts - 1, 0)
              FROM unnest(p_tenant_ids, p_ids, p_channels) AS r(tenant_id, id, channel)
             WHERE d.tenant_id = r.tenant_id AND d.outbox_id = r.id AND d.channel = r.channel
               AND d.status = 'pending'
        $$
    """,
    "outbox_channel_stats()": """
        CREATE FUNCTION outbox_channel_stats()
        RETURNS TABLE (channel text, status text, depth bigint)
        LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
            SELECT channel, status, count(*) FROM outbox_deliveries
            WHERE status <> 'delivered' GROUP BY channel, status
        $$
    """,
}


def _create(signature: str, body: str) -> None:
    op.execute(body)
    op.execute(f"REVOKE ALL ON FUNCTION {signature} FROM PUBLIC")
    op.execute(f"GRANT EXECUTE ON FUNCTION {signature} TO reckon_app")


def upgrade() -> None:
    op.execute("ALTER TABLE outbox ADD COLUMN per_channel boolean NOT NULL DEFAULT false")
    op.execute(
        """
        CREATE TABLE outbox_deliveries (
            tenant_id uuid NOT NULL,
            outbox_id uuid NOT NULL,
            channel text NOT NULL,
            seq bigint NOT NULL,
            aggregate_type text NOT NULL,
            aggregate_id uuid NOT NULL,
            status text NOT NULL,
            attempts integer NOT NULL DEFAULT 0,
            last_error text,
            available_at timestamptz NOT NULL DEFAULT now(),
            delivered_at timestamptz,
            locked_until timestamptz,
            locked_by text,
            PRIMARY KEY (tenant_id, outbox_id, channel),
            FOREIGN KEY (tenant_id, outbox_id) REFERENCES outbox (tenant_id, id) ON DELETE CASCADE,
            CONSTRAINT ck_outbox_deliveries_status CHECK (status IN ('pending', 'delivered', 'dead')),
            CONSTRAINT ck_outbox_deliveries_delivered_at
                CHECK ((status = 'delivered') = (delivered_at IS NOT NULL))
        )
        """
    )
    op.execute(
        "CREATE INDEX ix_outbox_deliveries_due ON outbox_deliveries (seq) WHERE status = 'pending'"
    )
    op.execute(
        "CREATE INDEX ix_outbox_deliveries_open ON outbox_deliveries "
        "(tenant_id, aggregate_type, aggregate_id, channel, seq) WHERE status <> 'delivered'"
    )
    # The whole-event claim scans unsplit pending rows only; split rows (however many wait on
    # a failing channel) stay out of its way.
    op.execute("DROP INDEX ix_outbox_due")
    op.execute(
        "CREATE INDEX ix_outbox_due ON outbox (seq) WHERE status = 'pending' AND NOT per_channel"
    )
    for statement in rls_statements("outbox_deliveries"):
        op.execute(statement)
    op.execute("GRANT SELECT, UPDATE ON outbox_deliveries TO reckon_app")
    for signature, body in FUNCTIONS.items():
        op.execute(f"DROP FUNCTION {signature}")
        _create(signature, body)
    for signature, body in NEW_FUNCTIONS.items():
        _create(signature, body)


def _outbox_0003() -> ModuleType:
    path = Path(__file__).with_name("0003_outbox.py")
    spec = importlib.util.spec_from_file_location("reckon_migration_0003", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def downgrade() -> None:
    # Split events go back to being whole: their delivered channels run again (at least once).
    previous = _outbox_0003().FUNCTIONS
    for signature in NEW_FUNCTIONS:
        op.execute(f"DROP FUNCTION IF EXISTS {signature}")
    for signature in FUNCTIONS:
        op.execute(f"DROP FUNCTION {signature}")
        _create(signature, previous[signature])
    op.execute("DROP TABLE outbox_deliveries")
    op.execute("DROP INDEX ix_outbox_due")
    op.execute("CREATE INDEX ix_outbox_due ON outbox (seq) WHERE status = 'pending'")
    op.execute("ALTER TABLE outbox DROP COLUMN per_channel")
