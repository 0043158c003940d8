"""One schema for one PostgreSQL and for Citus: functions and checks that also hold on shards.

On Citus (see 0031) every tenant table is split into shards on the workers, and the
coordinator plans each statement. Three things the single-node schema relied on do not
survive that, so they are rewritten here for both worlds, with the same behaviour on plain
PostgreSQL:

- SQL-language functions: Citus cannot plan a distributed query whose values are SQL-function
  parameters ("parameters in SQL functions are not supported"). Every one is now PL/pgSQL
  (same name, arguments, result, SECURITY DEFINER and search_path).
- Batch writes across businesses (`outbox_mark_delivered(tenant_ids[], ids[])` and friends)
  joined a distributed table to unnest(): they now write one business at a time, each
  statement naming its tenant_id, so each is routed to one shard.
- Ledger checks ran on the workers against values the coordinator computed: the
  `created_xact DEFAULT pg_current_xact_id()` was evaluated on the coordinator and compared on
  the worker, and the statement trigger that applies postings to payable balances joined its
  transition table to ledger_accounts (a query across shards from inside a shard). Now a
  BEFORE INSERT row trigger stamps created_xact where the row is stored, and the balance
  trigger reads the transition table alone, then touches ledger_accounts and balances with
  the tenant named (a colocated, local query on the shard's own node).

The outbox claim keeps its global, seq-ordered form on plain PostgreSQL; when the outbox is a
distributed table it claims business by business (the oldest due work first), because
`FOR UPDATE SKIP LOCKED` across shards is not supported. `reckon_distributed(regclass)` says
which world a function runs in. `outbox`'s `UNIQUE (seq)` becomes `UNIQUE (tenant_id, seq)`: a
unique constraint on a distributed table must include the distribution column (seq is an
identity, unique anyway).

Revision ID: 0030
Revises: 0021
"""

import importlib.util
from pathlib import Path

from alembic import op


def _with_traceparent(body: str) -> str:
    """0020's edits (the outbox row's traceparent) applied to this claim function."""
    path = Path(__file__).with_name("0020_outbox_trace_context.py")
    spec = importlib.util.spec_from_file_location("reckon_migration_0020", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    # The row type once; the claim query twice (plain, and per business when distributed).
    for index, (before, after, _) in enumerate(module._EDITS):
        expected = 1 if index == 0 else 2
        if body.count(before) != expected:
            raise RuntimeError(f"outbox_claim no longer has {before!r} {expected} time(s)")
        body = body.replace(before, after)
    return body


revision = "0030"
down_revision = "0021"
branch_labels = None
depends_on = None

DEFINER = "SECURITY DEFINER SET search_path = public, pg_temp"

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


def _claim_query(limit: str, tenant: str | None) -> str:
    """0013's claim. With `tenant` (a PL/pgSQL variable), every scan of outbox and
    outbox_deliveries names that business, so Citus routes the whole statement to its shard."""

    def only(alias: str) -> str:
        return f" AND {alias}.tenant_id = {tenant}" if tenant else ""

    event_ok = CLAIMABLE_EVENT.format(t="o")
    delivery_ok = CLAIMABLE_DELIVERY.format(t="o")
    return f"""
            WITH owed_heads AS (
                SELECT o.tenant_id, o.outbox_id, o.channel, o.seq, o.aggregate_type, o.aggregate_id
                FROM outbox_deliveries o
                WHERE {delivery_ok}{only("o")}
                  AND NOT EXISTS (SELECT 1 FROM outbox_deliveries e WHERE {SAME_CHANNEL.format(e="e", o="o")}
                                  AND e.seq < o.seq AND e.status <> 'delivered'{only("e")})
                ORDER BY o.seq
                LIMIT {limit}
                FOR UPDATE SKIP LOCKED
            ), owed_followers AS (
                SELECT f.tenant_id, f.outbox_id, f.channel, f.seq,
                       bool_and(f.ok) OVER (PARTITION BY h.tenant_id, h.outbox_id, h.channel
                                            ORDER BY f.seq) AS in_run
                FROM owed_heads h CROSS JOIN LATERAL (
                    SELECT o.tenant_id, o.outbox_id, o.channel, o.seq, ({delivery_ok}) AS ok
                    FROM outbox_deliveries o
                    WHERE {SAME_CHANNEL.format(e="o", o="h")} AND o.seq > h.seq
                      AND o.status <> 'delivered'{only("o")}
                    ORDER BY o.seq
                    LIMIT {CHAIN_PER_AGGREGATE}
                ) f
            ), owed_chain AS (
                SELECT tenant_id, outbox_id, channel FROM owed_followers WHERE in_run
                ORDER BY seq LIMIT {limit}
            ), owed AS (
                SELECT tenant_id, outbox_id, channel FROM owed_heads
                UNION SELECT tenant_id, outbox_id, channel FROM owed_chain
            ), owed_leased AS (
                UPDATE outbox_deliveries o
                   SET locked_until = now() + make_interval(secs => p_lease_seconds),
                       locked_by = p_worker, attempts = o.attempts + 1
                  FROM owed p
                 WHERE {SAME_DELIVERY.format(e="o", o="p")}{only("o")}
                RETURNING o.tenant_id, o.outbox_id, o.channel, o.attempts
            ), heads AS (
                SELECT o.tenant_id, o.id, o.seq, o.aggregate_type, o.aggregate_id
                FROM outbox o
                WHERE {event_ok}{only("o")}
                  AND NOT EXISTS (SELECT 1 FROM outbox e WHERE {SAME_AGGREGATE.format(e="e", o="o")}
                                  AND e.seq < o.seq AND e.status <> 'delivered'
                                  AND NOT e.per_channel{only("e")})
                ORDER BY o.seq
                LIMIT greatest({limit} - (SELECT count(*) FROM owed), 0)
                FOR UPDATE SKIP LOCKED
            ), followers AS (
                SELECT f.tenant_id, f.id, f.seq,
                       bool_and(f.ok) OVER (PARTITION BY h.id ORDER BY f.seq) AS in_run
                FROM heads h CROSS JOIN LATERAL (
                    SELECT o.tenant_id, o.id, o.seq, ({event_ok}) AS ok
                    FROM outbox o
                    WHERE {SAME_AGGREGATE.format(e="o", o="h")} AND o.seq > h.seq
                      AND o.status <> 'delivered'{only("o")}
                    ORDER BY o.seq
                    LIMIT {CHAIN_PER_AGGREGATE}
                ) f
            ), chain AS (
                SELECT tenant_id, id FROM followers WHERE in_run ORDER BY seq LIMIT {limit}
            ), picked AS (
                SELECT tenant_id, id FROM heads UNION SELECT tenant_id, id FROM chain
            ), leased AS (
                UPDATE outbox o
                   SET locked_until = now() + make_interval(secs => p_lease_seconds),
                       locked_by = p_worker, attempts = o.attempts + 1
                  FROM picked p
                 WHERE o.tenant_id = p.tenant_id AND o.id = p.id{only("o")}
                RETURNING o.tenant_id, o.id, o.seq, o.aggregate_type, o.aggregate_id, o.topic,
                          o.payload, o.created_at, o.attempts
            )
            SELECT o.tenant_id, o.id, o.seq, o.aggregate_type, o.aggregate_id, o.topic,
                   o.payload, o.created_at, l.attempts, l.channel, NULL::text[]
              FROM owed_leased l JOIN outbox o ON o.tenant_id = l.tenant_id AND o.id = l.outbox_id
                                               {only("o")}
            UNION ALL
            SELECT l.tenant_id, l.id, l.seq, l.aggregate_type, l.aggregate_id, l.topic,
                   l.payload, l.created_at, l.attempts, NULL::text,
                   CASE WHEN (SELECT EXISTS (SELECT 1 FROM outbox_deliveries x
                                             WHERE x.status <> 'delivered'{only("x")}))
                   THEN ARRAY(SELECT DISTINCT e.channel FROM outbox_deliveries e
                              WHERE {SAME_AGGREGATE.format(e="e", o="l")} AND e.seq < l.seq
                                AND e.status <> 'delivered'{only("e")}
                                AND NOT EXISTS (SELECT 1 FROM owed p WHERE {SAME_DELIVERY.format(e="p", o="e")}))
                   ELSE '{{}}'::text[] END
              FROM leased l
    """


# Businesses with due outbox work, oldest first: a multi-shard read grouped by the
# distribution column, which Citus pushes down to every shard.
_DUE_TENANTS = f"""
    SELECT d.tenant_id FROM (
        SELECT o.tenant_id, min(o.seq) AS first_seq FROM outbox o
         WHERE {CLAIMABLE_EVENT.format(t="o")} GROUP BY o.tenant_id
        UNION ALL
        SELECT o.tenant_id, min(o.seq) FROM outbox_deliveries o
         WHERE {CLAIMABLE_DELIVERY.format(t="o")} GROUP BY o.tenant_id
    ) d
    GROUP BY d.tenant_id ORDER BY min(d.first_seq) LIMIT p_limit
"""


def _claim_function() -> str:
    return f"""
        CREATE OR REPLACE FUNCTION outbox_claim(p_worker text, p_limit integer,
                                                p_lease_seconds double precision)
        RETURNS TABLE ({CLAIMED_ROW})
        LANGUAGE plpgsql VOLATILE {DEFINER} AS $$
        #variable_conflict use_column
        DECLARE
            v_tenant uuid;
            v_left integer := p_limit;
            v_got integer;
        BEGIN
            IF NOT reckon_distributed('outbox') THEN
                RETURN QUERY {_claim_query("p_limit", None)};
                RETURN;
            END IF;
            -- Distributed: SKIP LOCKED works within one shard only, so claim per business.
            FOR v_tenant IN {_DUE_TENANTS} LOOP
                RETURN QUERY {_claim_query("v_left", "v_tenant")};
                GET DIAGNOSTICS v_got = ROW_COUNT;
                v_left := v_left - v_got;
                EXIT WHEN v_left <= 0;
            END LOOP;
        END
        $$
    """


# Per business: the tenants named in a pair of arrays, and that business's ids.
_EACH_TENANT = "FOR v_tenant IN SELECT DISTINCT t FROM unnest(p_tenant_ids) AS t LOOP"
_TENANT_IDS = (
    "v_ids := ARRAY(SELECT u.id FROM unnest(p_tenant_ids, p_ids) AS u(tenant_id, id) "
    "WHERE u.tenant_id = v_tenant);"
)

FUNCTIONS: dict[str, str] = {
    "reckon_distributed(regclass)": """
        CREATE OR REPLACE FUNCTION reckon_distributed(p_table regclass) RETURNS boolean
        LANGUAGE plpgsql STABLE SET search_path = public, pg_temp AS $$
        DECLARE
            v_distributed boolean;
        BEGIN
            -- pg_dist_partition exists only where the citus extension is installed.
            IF to_regclass('pg_catalog.pg_dist_partition') IS NULL THEN
                RETURN false;
            END IF;
            EXECUTE 'SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_dist_partition '
                    'WHERE logicalrelid = $1 AND partmethod = ''h'')'
               INTO v_distributed USING p_table;
            RETURN v_distributed;
        END
        $$
    """,
    # With 0020's trace context column in the claimed row, as 0020 made it.
    "outbox_claim(text, integer, double precision)": _with_traceparent(_claim_function()),
    "outbox_mark_delivered(uuid[], uuid[])": f"""
        CREATE OR REPLACE FUNCTION outbox_mark_delivered(p_tenant_ids uuid[], p_ids uuid[])
        RETURNS integer
        LANGUAGE plpgsql VOLATILE {DEFINER} AS $$
        DECLARE
            v_tenant uuid;
            v_ids uuid[];
            v_done integer := 0;
            v_count integer;
        BEGIN
            {_EACH_TENANT}
                {_TENANT_IDS}
                UPDATE outbox o
                   SET status = 'delivered', delivered_at = now(), locked_until = NULL,
                       locked_by = NULL, last_error = NULL
                 WHERE o.tenant_id = v_tenant AND o.id = ANY (v_ids) AND o.status = 'pending'
                   AND NOT o.per_channel;
                GET DIAGNOSTICS v_count = ROW_COUNT;
                v_done := v_done + v_count;
            END LOOP;
            RETURN v_done;
        END
        $$
    """,
    "outbox_mark_failed(uuid, uuid, text, timestamptz, boolean)": f"""
        CREATE OR REPLACE FUNCTION outbox_mark_failed(p_tenant_id uuid, p_id uuid, p_error text,
                                                      p_retry_at timestamptz, p_dead boolean)
        RETURNS void
        LANGUAGE plpgsql VOLATILE {DEFINER} AS $$
        BEGIN
            UPDATE outbox
               SET status = CASE WHEN p_dead THEN 'dead' ELSE 'pending' END,
                   available_at = p_retry_at, last_error = left(p_error, 2000),
                   locked_until = NULL, locked_by = NULL
             WHERE tenant_id = p_tenant_id AND id = p_id AND status = 'pending'
               AND NOT per_channel;
        END
        $$
    """,
    "outbox_release(uuid[], uuid[])": f"""
        CREATE OR REPLACE FUNCTION outbox_release(p_tenant_ids uuid[], p_ids uuid[])
        RETURNS void
        LANGUAGE plpgsql VOLATILE {DEFINER} AS $$
        DECLARE
            v_tenant uuid;
            v_ids uuid[];
        BEGIN
            {_EACH_TENANT}
                {_TENANT_IDS}
                UPDATE outbox o
                   SET locked_until = NULL, locked_by = NULL,
                       attempts = greatest(o.attempts - 1, 0)
                 WHERE o.tenant_id = v_tenant AND o.id = ANY (v_ids) AND o.status = 'pending'
                   AND NOT o.per_channel;
            END LOOP;
        END
        $$
    """,
    "outbox_release_deliveries(uuid[], uuid[], text[])": f"""
        CREATE OR REPLACE FUNCTION outbox_release_deliveries(p_tenant_ids uuid[], p_ids uuid[],
                                                             p_channels text[])
        RETURNS void
        LANGUAGE plpgsql VOLATILE {DEFINER} AS $$
        DECLARE
            r record;
        BEGIN
            FOR r IN SELECT * FROM unnest(p_tenant_ids, p_ids, p_channels)
                                   AS u(tenant_id, id, channel) LOOP
                UPDATE outbox_deliveries d
                   SET locked_until = NULL, locked_by = NULL,
                       attempts = greatest(d.attempts - 1, 0)
                 WHERE d.tenant_id = r.tenant_id AND d.outbox_id = r.id
                   AND d.channel = r.channel AND d.status = 'pending';
            END LOOP;
        END
        $$
    """,
    # SECURITY INVOKER, as before: the admin retry runs it as the app role, under RLS.
    "outbox_refresh(uuid[], uuid[])": f"""
        CREATE OR REPLACE FUNCTION outbox_refresh(p_tenant_ids uuid[], p_ids uuid[])
        RETURNS void
        LANGUAGE plpgsql VOLATILE SET search_path = public, pg_temp AS $$
        DECLARE
            v_tenant uuid;
            v_ids uuid[];
        BEGIN
            {_EACH_TENANT}
                {_TENANT_IDS}
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
                    WHERE d.tenant_id = v_tenant AND d.outbox_id = ANY (v_ids)
                    GROUP BY d.tenant_id, d.outbox_id
                  ) s
                 WHERE o.tenant_id = v_tenant AND o.tenant_id = s.tenant_id
                   AND o.id = s.outbox_id;
            END LOOP;
        END
        $$
    """,
    "outbox_record(uuid[], uuid[], text[], text[], integer[], text[], timestamptz[])": f"""
        CREATE OR REPLACE FUNCTION outbox_record(p_tenant_ids uuid[], p_ids uuid[],
                                                 p_channels text[], p_statuses text[],
                                                 p_attempts integer[], p_errors text[],
                                                 p_available_at timestamptz[])
        RETURNS void
        LANGUAGE plpgsql VOLATILE {DEFINER} AS $$
        DECLARE
            r record;
            v_outbox record;
        BEGIN
            -- Row by row, each statement naming its business: on Citus an INSERT ... SELECT
            -- joining outbox to unnest() cannot be routed to one shard.
            FOR r IN SELECT * FROM unnest(p_tenant_ids, p_ids, p_channels, p_statuses,
                                          p_attempts, p_errors, p_available_at)
                                   AS u(tenant_id, id, channel, status, attempts, error,
                                        available_at) LOOP
                SELECT o.seq, o.aggregate_type, o.aggregate_id INTO v_outbox FROM outbox o
                 WHERE o.tenant_id = r.tenant_id AND o.id = r.id AND o.status <> 'delivered';
                CONTINUE WHEN NOT FOUND;
                INSERT INTO outbox_deliveries AS d
                       (tenant_id, outbox_id, channel, seq, aggregate_type, aggregate_id, status,
                        attempts, last_error, available_at, delivered_at)
                VALUES (r.tenant_id, r.id, r.channel, v_outbox.seq, v_outbox.aggregate_type,
                        v_outbox.aggregate_id, r.status, r.attempts, left(r.error, 2000),
                        r.available_at, CASE WHEN r.status = 'delivered' THEN now() END)
                ON CONFLICT (tenant_id, outbox_id, channel) DO UPDATE
                   SET status = excluded.status, attempts = excluded.attempts,
                       last_error = excluded.last_error, available_at = excluded.available_at,
                       delivered_at = excluded.delivered_at, locked_until = NULL,
                       locked_by = NULL
                 WHERE d.status <> 'delivered';
            END LOOP;
            PERFORM outbox_refresh(p_tenant_ids, p_ids);
        END
        $$
    """,
    "outbox_stats()": f"""
        CREATE OR REPLACE FUNCTION outbox_stats()
        RETURNS TABLE (status text, depth bigint, oldest_created_at timestamptz,
                       attempts bigint)
        LANGUAGE plpgsql STABLE {DEFINER} AS $$
        #variable_conflict use_column
        BEGIN
            RETURN QUERY
            SELECT o.status, count(*), min(o.created_at), coalesce(sum(o.attempts), 0)::bigint
              FROM outbox o WHERE o.status <> 'delivered' GROUP BY o.status;
        END
        $$
    """,
    "outbox_channel_stats()": f"""
        CREATE OR REPLACE FUNCTION outbox_channel_stats()
        RETURNS TABLE (channel text, status text, depth bigint)
        LANGUAGE plpgsql STABLE {DEFINER} AS $$
        #variable_conflict use_column
        BEGIN
            RETURN QUERY
            SELECT d.channel, d.status, count(*) FROM outbox_deliveries d
             WHERE d.status <> 'delivered' GROUP BY d.channel, d.status;
        END
        $$
    """,
    # Percentiles over the seconds gathered first: an ordered-set aggregate does not run
    # across shards.
    "outbox_recent_deliveries(timestamptz)": f"""
        CREATE OR REPLACE FUNCTION outbox_recent_deliveries(p_since timestamptz)
        RETURNS TABLE (delivered bigint, p50_seconds double precision,
                       p99_seconds double precision, max_seconds double precision,
                       attempts bigint, retried bigint)
        LANGUAGE plpgsql STABLE {DEFINER} AS $$
        #variable_conflict use_column
        DECLARE
            v_seconds double precision[];
            v_attempts bigint;
            v_retried bigint;
        BEGIN
            SELECT coalesce(array_agg(extract(epoch FROM o.delivered_at - o.created_at)::float8),
                            '{{}}'),
                   coalesce(sum(o.attempts), 0)::bigint,
                   count(*) FILTER (WHERE o.attempts > 1)
              INTO v_seconds, v_attempts, v_retried
              FROM outbox o WHERE o.status = 'delivered' AND o.delivered_at >= p_since;
            RETURN QUERY
            SELECT count(*),
                   coalesce(percentile_cont(0.5) WITHIN GROUP (ORDER BY s), 0),
                   coalesce(percentile_cont(0.99) WITHIN GROUP (ORDER BY s), 0),
                   coalesce(max(s), 0), v_attempts, v_retried
              FROM unnest(v_seconds) AS s;
        END
        $$
    """,
    "outbox_purge_delivered(timestamptz, integer)": f"""
        CREATE OR REPLACE FUNCTION outbox_purge_delivered(p_before timestamptz, p_limit integer)
        RETURNS integer
        LANGUAGE plpgsql VOLATILE {DEFINER} AS $$
        DECLARE
            p_tenant_ids uuid[];
            p_ids uuid[];
            v_tenant uuid;
            v_ids uuid[];
            v_done integer := 0;
            v_count integer;
        BEGIN
            SELECT coalesce(array_agg(g.tenant_id), '{{}}'), coalesce(array_agg(g.id), '{{}}')
              INTO p_tenant_ids, p_ids
              FROM (SELECT o.tenant_id, o.id FROM outbox o
                     WHERE o.status = 'delivered' AND o.delivered_at < p_before
                     LIMIT p_limit) g;
            {_EACH_TENANT}
                {_TENANT_IDS}
                DELETE FROM outbox o
                 WHERE o.tenant_id = v_tenant AND o.id = ANY (v_ids) AND o.status = 'delivered';
                GET DIAGNOSTICS v_count = ROW_COUNT;
                v_done := v_done + v_count;
            END LOOP;
            RETURN v_done;
        END
        $$
    """,
    "idempotency_purge_expired(timestamptz, integer)": f"""
        CREATE OR REPLACE FUNCTION idempotency_purge_expired(p_before timestamptz,
                                                             p_limit integer)
        RETURNS integer
        LANGUAGE plpgsql VOLATILE {DEFINER} AS $$
        DECLARE
            p_tenant_ids uuid[];
            p_ids uuid[];
            v_tenant uuid;
            v_ids uuid[];
            v_done integer := 0;
            v_count integer;
        BEGIN
            SELECT coalesce(array_agg(g.tenant_id), '{{}}'), coalesce(array_agg(g.id), '{{}}')
              INTO p_tenant_ids, p_ids
              FROM (SELECT k.tenant_id, k.id FROM idempotency_keys k
                     WHERE k.created_at < p_before LIMIT p_limit) g;
            {_EACH_TENANT}
                {_TENANT_IDS}
                DELETE FROM idempotency_keys k
                 WHERE k.tenant_id = v_tenant AND k.id = ANY (v_ids)
                   AND k.created_at < p_before;
                GET DIAGNOSTICS v_count = ROW_COUNT;
                v_done := v_done + v_count;
            END LOOP;
            RETURN v_done;
        END
        $$
    """,
    "tenant_by_slug(text)": f"""
        CREATE OR REPLACE FUNCTION tenant_by_slug(p_slug text)
        RETURNS TABLE (id uuid, slug text, name text, currency char(3), timezone text)
        LANGUAGE plpgsql STABLE {DEFINER} AS $$
        #variable_conflict use_column
        BEGIN
            RETURN QUERY
            SELECT t.id, t.slug, t.name, t.currency, t.timezone FROM tenants t
             WHERE t.slug = p_slug;
        END
        $$
    """,
    "auth_login_candidates(text)": f"""
        CREATE OR REPLACE FUNCTION auth_login_candidates(p_email text)
        RETURNS TABLE (tenant_id uuid, user_id uuid, password_hash text, role text, email text,
                       slug text, token_version integer)
        LANGUAGE plpgsql STABLE {DEFINER} AS $$
        #variable_conflict use_column
        BEGIN
            RETURN QUERY
            SELECT u.tenant_id, u.id, u.password_hash, u.role, u.email, t.slug, u.token_version
              FROM users u JOIN tenants t ON t.id = u.tenant_id
             WHERE lower(u.email) = lower(p_email) AND u.active
             ORDER BY u.created_at
             LIMIT 20;
        END
        $$
    """,
    "auth_user_state(uuid, uuid)": f"""
        CREATE OR REPLACE FUNCTION auth_user_state(p_tenant_id uuid, p_user_id uuid)
        RETURNS TABLE (role text, email text, active boolean, token_version integer)
        LANGUAGE plpgsql STABLE {DEFINER} AS $$
        #variable_conflict use_column
        BEGIN
            RETURN QUERY
            SELECT u.role, u.email, u.active, u.token_version FROM users u
             WHERE u.tenant_id = p_tenant_id AND u.id = p_user_id;
        END
        $$
    """,
    "bookings_tenants_with_due_work(timestamptz, interval)": f"""
        CREATE OR REPLACE FUNCTION bookings_tenants_with_due_work(p_now timestamptz,
                                                                 p_no_show_grace interval)
        RETURNS SETOF uuid
        LANGUAGE plpgsql STABLE {DEFINER} AS $$
        BEGIN
            RETURN QUERY
            SELECT b.tenant_id FROM bookings b
             WHERE b.status = 'pending_payment' AND b.hold_expires_at <= p_now
            UNION
            SELECT b.tenant_id FROM bookings b
             WHERE b.status = 'confirmed' AND b.starts_at <= p_now - p_no_show_grace;
        END
        $$
    """,
    "notifications_tenants_with_due_reminders(timestamptz, interval)": f"""
        CREATE OR REPLACE FUNCTION notifications_tenants_with_due_reminders(
            p_now timestamptz, p_lead interval
        )
        RETURNS SETOF uuid
        LANGUAGE plpgsql STABLE {DEFINER} AS $$
        BEGIN
            RETURN QUERY
            SELECT DISTINCT b.tenant_id
              FROM bookings b
              JOIN tenant_provider_settings s
                ON s.tenant_id = b.tenant_id AND s.provider = 'whatsapp' AND s.enabled
             WHERE b.status = 'confirmed'
               AND b.customer_phone IS NOT NULL
               AND b.starts_at > p_now AND b.starts_at <= p_now + p_lead
               AND b.created_at <= b.starts_at - p_lead
               AND NOT EXISTS (
                   SELECT 1 FROM whatsapp_messages m
                    WHERE m.tenant_id = b.tenant_id AND m.booking_id = b.id
                      AND m.kind = 'booking_reminder'
               );
        END
        $$
    """,
    "payment_tenant(uuid)": f"""
        CREATE OR REPLACE FUNCTION payment_tenant(p_payment_id uuid) RETURNS uuid
        LANGUAGE plpgsql STABLE {DEFINER} AS $$
        BEGIN
            RETURN (SELECT p.tenant_id FROM payments p WHERE p.id = p_payment_id LIMIT 1);
        END
        $$
    """,
    "payment_by_provider_ref(text, text)": f"""
        CREATE OR REPLACE FUNCTION payment_by_provider_ref(p_provider text, p_ref text)
        RETURNS TABLE (tenant_id uuid, id uuid)
        LANGUAGE plpgsql STABLE {DEFINER} AS $$
        #variable_conflict use_column
        BEGIN
            RETURN QUERY
            SELECT p.tenant_id, p.id FROM payments p
             WHERE p.provider = p_provider
               AND (p.provider_ref = p_ref OR p.provider_charge_ref = p_ref
                    OR p.checkout_session_id = p_ref)
             LIMIT 1;
        END
        $$
    """,
    "payouts_tenants()": f"""
        CREATE OR REPLACE FUNCTION payouts_tenants() RETURNS SETOF uuid
        LANGUAGE plpgsql STABLE {DEFINER} AS $$
        BEGIN
            RETURN QUERY SELECT t.id FROM tenants t ORDER BY t.id;
        END
        $$
    """,
    # Ledger: stamped where the row is stored (on Citus, the worker that holds the shard), so
    # the postings check below compares two ids of the same local transaction.
    "ledger_stamp_entry_xact()": f"""
        CREATE OR REPLACE FUNCTION ledger_stamp_entry_xact() RETURNS trigger
        LANGUAGE plpgsql {DEFINER} AS $$
        BEGIN
            NEW.created_xact := pg_current_xact_id();
            RETURN NEW;
        END
        $$
    """,
    # Statement trigger as before (one UPDATE per payable with the statement's net amount, in
    # account order), but the transition table is read on its own and every other statement
    # names its business, so on a shard each runs locally on the colocated shards.
    # On a shard TG_TABLE_NAME is the shard's name (invoices_102345): compare its table.
    "invoice_lines_balance()": """
        CREATE OR REPLACE FUNCTION invoice_lines_balance() RETURNS trigger LANGUAGE plpgsql AS $$
        DECLARE
            v_invoice uuid;
            v_total bigint;
            v_currency char(3);
            v_lines bigint;
            v_bad integer;
        BEGIN
            IF regexp_replace(TG_TABLE_NAME, '_[0-9]+$', '') = 'invoices' THEN
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
    "ledger_apply_postings()": f"""
        CREATE OR REPLACE FUNCTION ledger_apply_postings() RETURNS trigger
        LANGUAGE plpgsql {DEFINER} AS $$
        DECLARE
            v_tenant uuid;
            v_accounts uuid[];
            v_payables uuid[];
            r record;
        BEGIN
            FOR v_tenant IN SELECT DISTINCT np.tenant_id FROM new_postings np
                             ORDER BY np.tenant_id LOOP
                v_accounts := ARRAY(SELECT DISTINCT np.account_id FROM new_postings np
                                     WHERE np.tenant_id = v_tenant);
                v_payables := ARRAY(SELECT a.id FROM ledger_accounts a
                                     WHERE a.tenant_id = v_tenant AND a.id = ANY (v_accounts)
                                       AND a.code LIKE 'payable:%');
                CONTINUE WHEN cardinality(v_payables) = 0;
                FOR r IN SELECT np.account_id, sum(np.amount_minor) AS delta
                           FROM new_postings np
                          WHERE np.tenant_id = v_tenant AND np.account_id = ANY (v_payables)
                          GROUP BY np.account_id
                          ORDER BY np.account_id
                LOOP
                    UPDATE balances SET balance_minor = balance_minor + r.delta
                     WHERE tenant_id = v_tenant AND account_id = r.account_id;
                    IF NOT FOUND THEN
                        RAISE EXCEPTION 'no balance row for account %', r.account_id;
                    END IF;
                END LOOP;
            END LOOP;
            RETURN NULL;
        END
        $$
    """,
}


def upgrade() -> None:
    for signature, body in FUNCTIONS.items():
        op.execute(body)
        if signature == "outbox_refresh(uuid[], uuid[])":
            continue  # invoker: the app role runs it under RLS; its grant is unchanged
        if "SECURITY DEFINER" in body:
            # As 0016: SECURITY DEFINER functions are callable by the application role only.
            op.execute(f"REVOKE ALL ON FUNCTION {signature} FROM PUBLIC")
            op.execute(f"GRANT EXECUTE ON FUNCTION {signature} TO reckon_app")
    op.execute("GRANT EXECUTE ON FUNCTION reckon_distributed(regclass) TO reckon_app")
    # created_xact: stamped by the row's own node, never sent by the coordinator.
    op.execute("ALTER TABLE journal_entries ALTER COLUMN created_xact DROP DEFAULT")
    op.execute(
        "CREATE TRIGGER journal_entries_stamp_xact BEFORE INSERT ON journal_entries "
        "FOR EACH ROW EXECUTE FUNCTION ledger_stamp_entry_xact()"
    )
    # A unique constraint on a distributed table must contain the distribution column.
    op.execute("ALTER TABLE outbox DROP CONSTRAINT uq_outbox_seq")
    op.execute("ALTER TABLE outbox ADD CONSTRAINT uq_outbox_tenant_seq UNIQUE (tenant_id, seq)")


def downgrade() -> None:
    # The PL/pgSQL bodies behave as the SQL ones did; the schema changes are undone.
    op.execute("ALTER TABLE outbox DROP CONSTRAINT uq_outbox_tenant_seq")
    op.execute("ALTER TABLE outbox ADD CONSTRAINT uq_outbox_seq UNIQUE (seq)")
    op.execute("DROP TRIGGER journal_entries_stamp_xact ON journal_entries")
    op.execute("DROP FUNCTION ledger_stamp_entry_xact()")
    op.execute(
        "ALTER TABLE journal_entries ALTER COLUMN created_xact SET DEFAULT pg_current_xact_id()"
    )
