"""Ledger errors. Each carries context; app/edge/http.py maps the base classes to HTTP."""

from __future__ import annotations

from app.errors import Conflict, NotFound, ValidationFailed


class LedgerUsageError(RuntimeError):
    """A programming error: the ledger was called outside the caller's transaction."""


class UnbalancedEntry(ValidationFailed):
    slug = "unbalanced_entry"
    title = "A journal entry must have two or more postings that sum to zero per currency"


class AccountTypeMismatch(Conflict):
    slug = "account_type_mismatch"
    title = "The ledger account exists with a different type"


class LedgerKeyReused(Conflict):
    slug = "ledger_key_reused"
    title = "This ledger idempotency key was used for different postings"


class PayableOverdrawn(Conflict):
    slug = "payable_overdrawn"
    title = "A payable account cannot go below zero"


class EntryAlreadyReversed(Conflict):
    slug = "entry_already_reversed"
    title = "This journal entry has already been reversed"


class EntryNotFound(NotFound):
    slug = "not_found"
    title = "Journal entry not found"
