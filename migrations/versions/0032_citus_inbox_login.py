"""What the money path still met on Citus, done for both worlds: the inbox wake-up, issued
invoices' immutability check on shards, and login by email through a reference table.

The inbox wake-up. 0021's insert trigger NOTIFYs the applier when an event arrives at an idle
inbox. On Citus `inbox` is a reference table, so storing a webhook writes every node and
commits by two-phase commit, and PostgreSQL refuses to PREPARE a transaction that has run
NOTIFY. So the trigger goes, in both worlds: the edge stores the event (one autocommit
INSERT), then calls `inbox_wake(seq)`, which sends the same NOTIFY under the same condition (no
earlier event is waiting unclaimed) in a transaction of its own, on the node the applier
listens on (the coordinator). A side effect on one PostgreSQL: the acknowledgement's commit no
longer holds the NOTIFY lock, only a wake-up of an idle inbox does.

Invoices. 0021's `invoices_immutable` lets the number drawn at commit through when
TG_TABLE_NAME = 'invoices'; on a shard that name is the shard's (invoices_102407), so every
capture's invoice was refused at commit on Citus. The table is now compared without the
shard suffix, as 0030 does for the invoice lines' balance.

Login by email. Sign-in knows an email before it knows the business, so it asked every
shard of `users`. `login_emails` maps an email to the (business, user) that has it; on Citus
it is a reference table (a copy on every node), so sign-in is one local index lookup and then
one single-shard read per candidate. The use cases that write `users` keep it in step in the
same transaction. It holds no password hash and no role: the email and two ids. The
application role sees only its own business's rows (row-level security, as every tenant
table), and cannot delete; reading across businesses goes through `auth_login_candidates`,
SECURITY DEFINER, by exact email, as before.

Revision ID: 0032
Revises: 0031
"""

from alembic import op

from app.cli.citus import distribute
from app.db import rls_statements

revision = "0032"
down_revision = "0031"
branch_labels = None
depends_on = None

DEFINER = "SECURITY DEFINER SET search_path = public, pg_temp"
NOTIFY_CHANNEL = "reckon_inbox"
# An earlier event that is due and unclaimed: the applier is on its way to it already.
_EARLIER_WAITING = """
    EXISTS (SELECT 1 FROM inbox
             WHERE status = 'pending' AND seq < {seq}
               AND (locked_until IS NULL OR locked_until < now()))
"""

INBOX = [
    "DROP TRIGGER inbox_notify ON inbox",
    "DROP FUNCTION inbox_notify()",
    f"""
    CREATE FUNCTION inbox_wake(p_seq bigint) RETURNS boolean
    LANGUAGE plpgsql VOLATILE SET search_path = public, pg_temp AS $$
    BEGIN
        IF {_EARLIER_WAITING.format(seq="p_seq")} THEN
            RETURN false;
        END IF;
        PERFORM pg_notify('{NOTIFY_CHANNEL}', '');
        RETURN true;
    END
    $$
    """,
    "REVOKE ALL ON FUNCTION inbox_wake(bigint) FROM PUBLIC",
    "GRANT EXECUTE ON FUNCTION inbox_wake(bigint) TO reckon_app",
]

# 0021's body, with the table compared by name: on a shard TG_TABLE_NAME is the shard's own
# (invoices_102407), so numbering an invoice at commit was refused on Citus.
_IMMUTABLE = """
    CREATE OR REPLACE FUNCTION invoices_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
    DECLARE
        v_table text := regexp_replace(TG_TABLE_NAME, '_[0-9]+$', '');
    BEGIN
        IF TG_OP = 'UPDATE' AND v_table = 'invoices' AND OLD.number IS NULL
           AND NEW.number IS NOT NULL
           AND (OLD.credits_number IS NULL OR NEW.credits_number = OLD.credits_number)
           AND to_jsonb(NEW) - 'number' - 'sequence' - 'credits_number'
               = to_jsonb(OLD) - 'number' - 'sequence' - 'credits_number' THEN
            RETURN NEW;
        END IF;
        RAISE EXCEPTION '% rows are immutable once issued', v_table
            USING ERRCODE = 'restrict_violation';
    END
    $$
"""

LOGIN = [
    """
    CREATE TABLE login_emails (
        tenant_id uuid NOT NULL REFERENCES tenants (id),
        user_id uuid NOT NULL,
        email text NOT NULL,
        -- Candidates are tried oldest account first, as before.
        created_at timestamptz NOT NULL DEFAULT now(),
        CONSTRAINT pk_login_emails PRIMARY KEY (tenant_id, user_id),
        CONSTRAINT ck_login_emails_lower CHECK (email = lower(email))
    )
    """,
    "CREATE INDEX ix_login_emails_email ON login_emails (email)",
    *rls_statements("login_emails"),
    "ALTER TABLE login_emails FORCE ROW LEVEL SECURITY",
    "REVOKE ALL ON login_emails FROM reckon_app",
    "GRANT SELECT, INSERT, UPDATE ON login_emails TO reckon_app",
    # The directory names the candidates; each user row is then read by its key, so on Citus
    # every read is routed to the one shard that holds it.
    f"""
    CREATE OR REPLACE FUNCTION auth_login_candidates(p_email text)
    RETURNS TABLE (tenant_id uuid, user_id uuid, password_hash text, role text, email text,
                   slug text, token_version integer)
    LANGUAGE plpgsql STABLE {DEFINER} AS $$
    #variable_conflict use_column
    DECLARE
        r record;
    BEGIN
        FOR r IN SELECT l.tenant_id, l.user_id FROM login_emails l
                  WHERE l.email = lower(p_email)
                  ORDER BY l.created_at, l.tenant_id, l.user_id
                  LIMIT 20 LOOP
            RETURN QUERY
            SELECT u.tenant_id, u.id, u.password_hash, u.role, u.email, t.slug, u.token_version
              FROM users u JOIN tenants t ON t.id = u.tenant_id
             WHERE u.tenant_id = r.tenant_id AND u.id = r.user_id AND u.active;
        END LOOP;
    END
    $$
    """,
]

# Every user that exists, after the table is in place (on Citus: a reference table by now).
BACKFILL = (
    "INSERT INTO login_emails (tenant_id, user_id, email, created_at) "
    "SELECT tenant_id, id, lower(email), created_at FROM users"
)

# 0030's body of the lookup, restored by downgrade.
_OLD_CANDIDATES = f"""
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
"""

# 0021's trigger, restored by downgrade.
_OLD_NOTIFY = [
    f"""
    CREATE FUNCTION inbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF NOT {_EARLIER_WAITING.format(seq="NEW.seq")} THEN
            PERFORM pg_notify('{NOTIFY_CHANNEL}', '');
        END IF;
        RETURN NULL;
    END
    $$
    """,
    """
    CREATE TRIGGER inbox_notify AFTER INSERT ON inbox
        FOR EACH ROW EXECUTE FUNCTION inbox_notify()
    """,
]


def upgrade() -> None:
    for statement in [*INBOX, _IMMUTABLE, *LOGIN]:
        op.execute(statement)
    # On Citus: login_emails becomes a reference table, the new function reaches the workers.
    distribute(op.get_bind())
    op.execute(BACKFILL)


def downgrade() -> None:
    # invoices_immutable keeps its shard-proof comparison: same behaviour on one PostgreSQL.
    op.execute(_OLD_CANDIDATES)
    op.execute("DROP TABLE login_emails")
    op.execute("DROP FUNCTION inbox_wake(bigint)")
    for statement in _OLD_NOTIFY:
        op.execute(statement)
