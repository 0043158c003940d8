"""The pure matcher: rules that the end-to-end tests do not reach."""

from __future__ import annotations

from app.reconciliation.matching import LedgerRecord, ProviderRecord, Tolerances, match


def provider(
    ref: str,
    amount: int,
    fee: int | None = 0,
    *,
    record_id: str | None = None,
    record_type: str = "charge",
    currency: str = "EGP",
) -> ProviderRecord:
    return ProviderRecord(ref, record_type, amount, fee, currency, record_id or f"txn_{ref}")


def ledger(
    ref: str, amount: int, fee: int = 0, *, origin: str | None = None, record_type: str = "charge"
) -> LedgerRecord:
    return LedgerRecord(ref, record_type, amount, fee, "EGP", origin or f"payment:{ref}")


def test_a_record_listed_twice_by_pagination_is_one_record_not_a_duplicate() -> None:
    result = match([provider("ch_1", 100), provider("ch_1", 100)], [ledger("ch_1", 100)])
    assert (result.matched, result.findings) == (1, [])


def test_one_provider_payout_matches_many_ledger_entries_summed() -> None:
    entries = [
        ledger("tr_1", -300, origin="payout:a", record_type="transfer"),
        ledger("tr_1", -200, origin="adjustment", record_type="transfer"),
    ]
    result = match([provider("tr_1", -500, record_type="transfer")], entries)
    assert (result.matched, result.findings) == (1, [])


def test_two_payments_claiming_one_charge_are_a_ledger_duplicate() -> None:
    result = match(
        [provider("ch_1", 100)],
        [ledger("ch_1", 100, origin="payment:a"), ledger("ch_1", 100, origin="payment:b")],
    )
    assert [(f.kind, f.details["side"]) for f in result.findings] == [("duplicate", "ledger")]


def test_ledger_records_that_net_to_zero_are_not_missing_at_the_provider() -> None:
    result = match([], [ledger("ch_1", 100), ledger("ch_1", -100, origin="adjustment")])
    assert result.findings == []


def test_tolerance_is_inclusive_and_fee_is_skipped_when_the_provider_reports_none() -> None:
    tolerances = Tolerances(amount_minor=1)
    assert match([provider("a", 101, None)], [ledger("a", 100, 99)], tolerances).findings == []
    kinds = [f.kind for f in match([provider("a", 102)], [ledger("a", 100)], tolerances).findings]
    assert kinds == ["amount_mismatch"]
