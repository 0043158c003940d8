"""Ledger: accounts, append-only journal entries and postings, per-account balances.

Sign convention: a posting's amount_minor is positive for a debit and negative for a credit.
Every entry sums to zero per currency. A payable (credit-normal) account holds a balance
<= 0; "negative from the business's point of view" means a sum of postings above zero.

The database enforces, whatever the application does:
- each entry has >= 2 postings and balances per currency (deferred constraint triggers,
  checked at COMMIT so the postings of one entry can be inserted in any order), and gets
  postings only in the transaction that created it;
- a posting's currency is its account's currency (composite foreign key);
- entries and postings are append-only (UPDATE/DELETE rejected by triggers; TRUNCATE, used
  by test cleanup, is left to the owner); account code, type and currency never change;
- payables never go below zero: a statement trigger adds each INSERT's net amount per
  account to `balances` in account-id order, and a CHECK on `balances` refuses a positive
  payable. The UPDATE takes the balance row lock, so two transactions debiting the same
  payable serialise on that row: under READ COMMITTED the second re-reads the committed
  balance before the CHECK runs; under REPEATABLE READ it gets a serialisation failure.
  Either way at most one of two debits racing for the same balance can commit.

Revision ID: 0004
Revises: 0001
"""

from alembic import op

from app.db import rls_statements

revision = "0004"
down_revision = "0001"
branch_labels = None
depends_on = None

TABLES = ["ledger_accounts", "journal_entries", "postings", "balances"]

DEFINER = "SECURITY DEFINER SET search_path = public, pg_temp"


def _tables() -> None:
    op.execute(
        """
        CREATE TABLE ledger_accounts (
            tenant_id uuid NOT NULL REFERENCES tenants (id),
            id uuid NOT NULL,
            code text NOT NULL,
            type text NOT NULL,
            currency char(3) NOT NULL,
            name text NOT NULL,
            parent_code text,
            dimensions jsonb NOT NULL DEFAULT '{}'::jsonb,
            created_at timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (tenant_id, id),
            CONSTRAINT uq_ledger_accounts_code UNIQUE (tenant_id, code, currency),
            CONSTRAINT uq_ledger_accounts_id_currency UNIQUE (tenant_id, id, currency),
            CONSTRAINT ck_ledger_accounts_type
                CHECK (type IN ('asset', 'liability', 'revenue', 'expense', 'equity')),
            CONSTRAINT ck_ledger_accounts_code CHECK (length(code) BETWEEN 1 AND 200),
            CONSTRAINT ck_ledger_accounts_payable_is_liability
                CHECK (code NOT LIKE 'payable:%' OR type = 'liability')
        )
        """
    )
    op.execute(
        """
        CREATE TABLE journal_entries (
            tenant_id uuid NOT NULL REFERENCES tenants (id),
            id uuid NOT NULL,
            idempotency_key text NOT NULL,
            reason text NOT NULL,
            occurred_at timestamptz NOT NULL,
            booking_id uuid,
            payment_id uuid,
            reverses_entry_id uuid,
            dimensions jsonb NOT NULL DEFAULT '{}'::jsonb,
            created_at timestamptz NOT NULL DEFAULT now(),
            created_xact xid8 NOT NULL DEFAULT pg_current_xact_id(),
            PRIMARY KEY (tenant_id, id),
            CONSTRAINT uq_journal_entries_idempotency_key UNIQUE (tenant_id, idempotency_key),
            CONSTRAINT fk_journal_entries_reverses FOREIGN KEY (tenant_id, reverses_entry_id)
                REFERENCES journal_entries (tenant_id, id),
            CONSTRAINT ck_journal_entries_key CHECK (length(idempotency_key) BETWEEN 1 AND 255)
        )
        """
    )
    # An entry is reversed at most once; a second reversal would double-count.
    op.execute(
        "CREATE UNIQUE INDEX uq_journal_entries_reverses ON journal_entries "
        "(tenant_id, reverses_entry_id) WHERE reverses_entry_id IS NOT NULL"
    )
    op.execute(
        "CREATE INDEX ix_journal_entries_occurred ON journal_entries (tenant_id, occurred_at)"
    )
    op.execute(
        "CREATE INDEX ix_journal_entries_booking ON journal_entries (tenant_id, booking_id) "
        "WHERE booking_id IS NOT NULL"
    )
    op.execute(
        "CREATE INDEX ix_journal_entries_payment ON journal_entries (tenant_id, payment_id) "
        "WHERE payment_id IS NOT NULL"
    )
    op.execute(
        """
        CREATE TABLE postings (
            tenant_id uuid NOT NULL REFERENCES tenants (id),
            id uuid NOT NULL,
            entry_id uuid NOT NULL,
            account_id uuid NOT NULL,
            amount_minor bigint NOT NULL,
            currency char(3) NOT NULL,
            PRIMARY KEY (tenant_id, id),
            CONSTRAINT fk_postings_entry FOREIGN KEY (tenant_id, entry_id)
                REFERENCES journal_entries (tenant_id, id),
            CONSTRAINT fk_postings_account_currency FOREIGN KEY (tenant_id, account_id, currency)
                REFERENCES ledger_accounts (tenant_id, id, currency),
            CONSTRAINT ck_postings_not_zero CHECK (amount_minor <> 0)
        )
        """
    )
    op.execute("CREATE INDEX ix_postings_entry ON postings (tenant_id, entry_id)")
    op.execute("CREATE INDEX ix_postings_account ON postings (tenant_id, account_id)")
    op.execute(
        """
        CREATE TABLE balances (
            tenant_id uuid NOT NULL REFERENCES tenants (id),
            account_id uuid NOT NULL,
            currency char(3) NOT NULL,
            balance_minor bigint NOT NULL DEFAULT 0,
            credit_floor boolean NOT NULL,
            PRIMARY KEY (tenant_id, account_id),
            CONSTRAINT fk_balances_account FOREIGN KEY (tenant_id, account_id, currency)
                REFERENCES ledger_accounts (tenant_id, id, currency),
            CONSTRAINT ck_balances_payable_not_negative
                CHECK (NOT credit_floor OR balance_minor <= 0)
        )
        """
    )


def _balance_triggers() -> None:
    # SECURITY DEFINER: checks and the balances cache must see the true state regardless of
    # the caller's RLS setting, and the app role gets no write grant on balances at all.
    op.execute(
        f"""
        CREATE FUNCTION ledger_assert_entry_balanced(p_tenant uuid, p_entry uuid)
        RETURNS void LANGUAGE plpgsql {DEFINER} AS $$
        DECLARE
            v_postings bigint;
            v_unbalanced text;
        BEGIN
            SELECT coalesce(sum(n), 0),
                   string_agg(currency || ' ' || total, ', ') FILTER (WHERE total <> 0)
              INTO v_postings, v_unbalanced
              FROM (SELECT currency, count(*) AS n, sum(amount_minor) AS total
                      FROM postings
                     WHERE tenant_id = p_tenant AND entry_id = p_entry
                     GROUP BY currency) per_currency;
            IF v_postings < 2 THEN
                RAISE EXCEPTION 'journal entry % has % posting(s); at least two are required',
                    p_entry, v_postings USING ERRCODE = 'check_violation';
            END IF;
            IF v_unbalanced IS NOT NULL THEN
                RAISE EXCEPTION 'journal entry % does not balance: %', p_entry, v_unbalanced
                    USING ERRCODE = 'check_violation';
            END IF;
        END
        $$
        """
    )
    op.execute(
        f"""
        CREATE FUNCTION ledger_entry_balanced() RETURNS trigger LANGUAGE plpgsql {DEFINER} AS $$
        BEGIN
            PERFORM ledger_assert_entry_balanced(NEW.tenant_id, NEW.id);
            RETURN NULL;
        END
        $$
        """
    )
    op.execute(
        f"""
        CREATE FUNCTION ledger_posting_entry_balanced() RETURNS trigger LANGUAGE plpgsql
        {DEFINER} AS $$
        BEGIN
            -- A balanced pair added to an old entry would still sum to zero: refuse postings
            -- outside the (top-level) transaction that created their entry.
            IF (SELECT created_xact FROM journal_entries
                 WHERE tenant_id = NEW.tenant_id AND id = NEW.entry_id)
               IS DISTINCT FROM pg_current_xact_id() THEN
                RAISE EXCEPTION 'postings of journal entry % are closed; post a new entry',
                    NEW.entry_id USING ERRCODE = 'restrict_violation';
            END IF;
            PERFORM ledger_assert_entry_balanced(NEW.tenant_id, NEW.entry_id);
            RETURN NULL;
        END
        $$
        """
    )
    op.execute(
        "CREATE CONSTRAINT TRIGGER journal_entries_balanced AFTER INSERT ON journal_entries "
        "DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION ledger_entry_balanced()"
    )
    op.execute(
        "CREATE CONSTRAINT TRIGGER postings_balanced AFTER INSERT ON postings "
        "DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION ledger_posting_entry_balanced()"
    )
    op.execute(
        f"""
        CREATE FUNCTION ledger_open_balance() RETURNS trigger LANGUAGE plpgsql {DEFINER} AS $$
        BEGIN
            -- Only payables keep a running balance row: it carries the no-overdraft CHECK
            -- and serialises payouts. Hot accounts (receivable, deferred revenue) stay
            -- lock-free; their balances are sums of postings.
            IF NEW.code LIKE 'payable:%' THEN
                INSERT INTO balances (tenant_id, account_id, currency, balance_minor, credit_floor)
                VALUES (NEW.tenant_id, NEW.id, NEW.currency, 0, true);
            END IF;
            RETURN NULL;
        END
        $$
        """
    )
    op.execute(
        "CREATE TRIGGER ledger_accounts_open_balance AFTER INSERT ON ledger_accounts "
        "FOR EACH ROW EXECUTE FUNCTION ledger_open_balance()"
    )
    # One UPDATE per account with the statement's net amount, in account-id order: a fixed
    # lock order (no deadlocks between concurrent entries) and no transient overdraft when
    # one entry both credits and debits the same payable.
    op.execute(
        f"""
        CREATE FUNCTION ledger_apply_postings() RETURNS trigger LANGUAGE plpgsql {DEFINER} AS $$
        DECLARE
            r record;
        BEGIN
            FOR r IN SELECT np.tenant_id, np.account_id, sum(np.amount_minor) AS delta
                       FROM new_postings np
                       JOIN ledger_accounts a ON a.tenant_id = np.tenant_id AND a.id = np.account_id
                      WHERE a.code LIKE 'payable:%'
                      GROUP BY np.tenant_id, np.account_id
                      ORDER BY np.tenant_id, np.account_id
            LOOP
                UPDATE balances SET balance_minor = balance_minor + r.delta
                 WHERE tenant_id = r.tenant_id AND account_id = r.account_id;
                IF NOT FOUND THEN
                    RAISE EXCEPTION 'no balance row for account %', r.account_id;
                END IF;
            END LOOP;
            RETURN NULL;
        END
        $$
        """
    )
    op.execute(
        "CREATE TRIGGER postings_apply_balances AFTER INSERT ON postings "
        "REFERENCING NEW TABLE AS new_postings FOR EACH STATEMENT "
        "EXECUTE FUNCTION ledger_apply_postings()"
    )


def _immutability_triggers() -> None:
    op.execute(
        """
        CREATE FUNCTION ledger_reject_change() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION '% is append-only: % is not allowed; post a reversal entry',
                TG_TABLE_NAME, TG_OP USING ERRCODE = 'restrict_violation';
        END
        $$
        """
    )
    for table in ["journal_entries", "postings"]:
        op.execute(
            f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
            "FOR EACH STATEMENT EXECUTE FUNCTION ledger_reject_change()"
        )
    op.execute(
        "CREATE TRIGGER ledger_accounts_no_delete BEFORE DELETE ON ledger_accounts "
        "FOR EACH STATEMENT EXECUTE FUNCTION ledger_reject_change()"
    )
    op.execute(
        """
        CREATE FUNCTION ledger_account_identity_fixed() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF (NEW.tenant_id, NEW.id, NEW.code, NEW.type, NEW.currency)
               IS DISTINCT FROM (OLD.tenant_id, OLD.id, OLD.code, OLD.type, OLD.currency) THEN
                RAISE EXCEPTION 'ledger account % cannot change code, type or currency', OLD.id
                    USING ERRCODE = 'restrict_violation';
            END IF;
            RETURN NEW;
        END
        $$
        """
    )
    op.execute(
        "CREATE TRIGGER ledger_accounts_identity_fixed BEFORE UPDATE ON ledger_accounts "
        "FOR EACH ROW EXECUTE FUNCTION ledger_account_identity_fixed()"
    )


def upgrade() -> None:
    _tables()
    _balance_triggers()
    _immutability_triggers()
    for table in TABLES:
        for statement in rls_statements(table):
            op.execute(statement)
    # Defence in depth below the triggers: the app role may only append.
    op.execute("REVOKE UPDATE, DELETE, TRUNCATE ON journal_entries, postings FROM reckon_app")
    op.execute("REVOKE DELETE, TRUNCATE ON ledger_accounts FROM reckon_app")
    op.execute("REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON balances FROM reckon_app")
    for function in [
        "ledger_assert_entry_balanced(uuid, uuid)",
        "ledger_open_balance()",
        "ledger_apply_postings()",
    ]:
        op.execute(f"REVOKE ALL ON FUNCTION {function} FROM PUBLIC")


def downgrade() -> None:
    for table in ["balances", "postings", "journal_entries", "ledger_accounts"]:
        op.execute(f"DROP TABLE IF EXISTS {table}")
    for function in [
        "ledger_account_identity_fixed()",
        "ledger_reject_change()",
        "ledger_apply_postings()",
        "ledger_open_balance()",
        "ledger_posting_entry_balanced()",
        "ledger_entry_balanced()",
        "ledger_assert_entry_balanced(uuid, uuid)",
    ]:
        op.execute(f"DROP FUNCTION IF EXISTS {function}")
