"""Provider-agnostic matching of provider records against ledger records. Pure and linear.

Both sides are keyed by the provider reference (Stripe's source id, Kashier's order or
transaction id). Amounts are signed from the provider balance's point of view, which is
also the sign of the ledger's `clearing:<provider>` postings: money in > 0, money out < 0.
Fees are positive amounts the provider kept.

Rules, per reference:
- several provider records of one type (distinct record ids) -> `duplicate`; the same
  record id listed twice is one record (pagination overlap), not a finding;
- several ledger origins (payments, refunds, payouts) of one type -> `duplicate`;
- otherwise the ledger records for a reference are SUMMED before comparing (one-to-many:
  a payout settled by several entries, or an adjusting entry that corrects a record);
- only at the provider -> `missing_in_ledger`; only in the ledger -> `missing_at_provider`
  unless the ledger records net to zero (a posting already undone);
- currency differs -> `currency_mismatch` (amounts are then not comparable); else amount
  or fee beyond tolerance -> `amount_mismatch` / `fee_mismatch` (fee only when the
  provider reports one).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

MISSING_IN_LEDGER = "missing_in_ledger"
MISSING_AT_PROVIDER = "missing_at_provider"
AMOUNT_MISMATCH = "amount_mismatch"
FEE_MISMATCH = "fee_mismatch"
CURRENCY_MISMATCH = "currency_mismatch"
DUPLICATE = "duplicate"
KINDS = (
    MISSING_IN_LEDGER,
    MISSING_AT_PROVIDER,
    AMOUNT_MISMATCH,
    FEE_MISMATCH,
    CURRENCY_MISMATCH,
    DUPLICATE,
)
ADJUSTMENT = "adjustment"


@dataclass(frozen=True, slots=True)
class ProviderRecord:
    ref: str
    record_type: str
    amount_minor: int
    fee_minor: int | None
    currency: str
    record_id: str


@dataclass(frozen=True, slots=True)
class LedgerRecord:
    ref: str
    record_type: str
    amount_minor: int
    fee_minor: int
    currency: str
    origin: str
    """What produced it, e.g. "payment:<id>"; ADJUSTMENT records never count as duplicates."""


@dataclass(frozen=True, slots=True)
class Tolerances:
    amount_minor: int = 0
    fee_minor: int = 0

    def to_json(self) -> dict[str, int]:
        return {"amount_minor": self.amount_minor, "fee_minor": self.fee_minor}


@dataclass(frozen=True, slots=True)
class Finding:
    kind: str
    ref: str
    record_type: str
    ledger_minor: int | None
    provider_minor: int | None
    currency: str | None
    provider_currency: str | None
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class MatchResult:
    provider_records: int
    ledger_records: int
    matched: int
    findings: list[Finding]


def match(
    provider: Iterable[ProviderRecord],
    ledger: Iterable[LedgerRecord],
    tolerances: Tolerances = Tolerances(),
) -> MatchResult:
    by_provider: dict[str, dict[str, ProviderRecord]] = {}
    provider_count = 0
    for record in provider:
        by_provider.setdefault(record.ref, {}).setdefault(record.record_id, record)
        provider_count += 1
    by_ledger: dict[str, list[LedgerRecord]] = {}
    ledger_count = 0
    for entry in ledger:
        by_ledger.setdefault(entry.ref, []).append(entry)
        ledger_count += 1
    findings: list[Finding] = []
    matched = 0
    for ref, records in by_provider.items():
        found = _compare(ref, list(records.values()), by_ledger.get(ref, []), tolerances)
        findings.extend(found)
        matched += not found
    for ref, entries in by_ledger.items():
        if ref not in by_provider:
            findings.extend(_ledger_only(ref, entries))
    return MatchResult(provider_count, ledger_count, matched, findings)


def _compare(
    ref: str, records: list[ProviderRecord], entries: list[LedgerRecord], tolerances: Tolerances
) -> list[Finding]:
    first = records[0]
    duplicate = _duplicate(ref, records, entries)
    if duplicate is not None:
        return [duplicate]
    if not entries:
        return [
            Finding(
                MISSING_IN_LEDGER,
                ref,
                first.record_type,
                None,
                first.amount_minor,
                None,
                first.currency,
                _provider_details(first),
            )
        ]
    currencies = sorted({e.currency for e in entries})
    amount = sum(e.amount_minor for e in entries)
    fee = sum(e.fee_minor for e in entries)
    details = {**_provider_details(first), "ledger_amount_minor": amount, "ledger_fee_minor": fee}
    if currencies != [first.currency]:
        details["ledger_currencies"] = currencies
        return [
            Finding(
                CURRENCY_MISMATCH,
                ref,
                first.record_type,
                amount,
                first.amount_minor,
                currencies[0],
                first.currency,
                details,
            )
        ]
    found: list[Finding] = []
    if abs(amount - first.amount_minor) > tolerances.amount_minor:
        found.append(
            Finding(
                AMOUNT_MISMATCH,
                ref,
                first.record_type,
                amount,
                first.amount_minor,
                first.currency,
                first.currency,
                details,
            )
        )
    if first.fee_minor is not None and abs(fee - first.fee_minor) > tolerances.fee_minor:
        found.append(
            Finding(
                FEE_MISMATCH,
                ref,
                first.record_type,
                fee,
                first.fee_minor,
                first.currency,
                first.currency,
                details,
            )
        )
    return found


def _duplicate(
    ref: str, records: list[ProviderRecord], entries: list[LedgerRecord]
) -> Finding | None:
    types = [r.record_type for r in records]
    if len(types) != len(set(types)):
        return Finding(
            DUPLICATE,
            ref,
            records[0].record_type,
            None,
            sum(r.amount_minor for r in records),
            None,
            records[0].currency,
            {"side": "provider", "record_ids": sorted(r.record_id for r in records)},
        )
    origins: dict[str, set[str]] = {}
    for entry in entries:
        if entry.origin != ADJUSTMENT:
            origins.setdefault(entry.record_type, set()).add(entry.origin)
    for record_type, found in origins.items():
        if len(found) > 1:
            return Finding(
                DUPLICATE,
                ref,
                record_type,
                sum(e.amount_minor for e in entries),
                records[0].amount_minor,
                entries[0].currency,
                records[0].currency,
                {"side": "ledger", "origins": sorted(found)},
            )
    return None


def _ledger_only(ref: str, entries: list[LedgerRecord]) -> list[Finding]:
    amount = sum(e.amount_minor for e in entries)
    fee = sum(e.fee_minor for e in entries)
    if amount == 0 and fee == 0:
        return []
    first = entries[0]
    origins = sorted({e.origin for e in entries if e.origin != ADJUSTMENT})
    if len(origins) > 1 and len({e.record_type for e in entries}) == 1:
        return [
            Finding(
                DUPLICATE,
                ref,
                first.record_type,
                amount,
                None,
                first.currency,
                None,
                {"side": "ledger", "origins": origins},
            )
        ]
    return [
        Finding(
            MISSING_AT_PROVIDER,
            ref,
            first.record_type,
            amount,
            None,
            first.currency,
            None,
            {"ledger_amount_minor": amount, "ledger_fee_minor": fee, "origins": origins},
        )
    ]


def _provider_details(record: ProviderRecord) -> dict[str, Any]:
    return {
        "provider_record_id": record.record_id,
        "provider_amount_minor": record.amount_minor,
        "provider_fee_minor": record.fee_minor,
    }
