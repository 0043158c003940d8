"""The chart of accounts is the only place that spells an account code or builds a ledger
`Line` (app/ledger/chart.py); its builders balance; the README's money-path table names
functions that exist."""

from __future__ import annotations

import ast
import importlib
import re
import uuid
from collections import Counter
from pathlib import Path

import pytest

from app.ledger import chart
from app.ledger.models import ACCOUNT_TYPES
from app.money import Money

ROOT = Path(__file__).resolve().parents[2]
APP = ROOT / "app"
CHART = APP / "ledger" / "chart.py"
# Account codes start with one of these roots followed by ':' (or are `deferred_revenue`).
CODE_LITERAL = re.compile(
    r"(?<![\w.-])(?:receivable|revenue|expense|clearing|payable|payouts_in_transit|suspense):"
    r"|deferred_revenue|payouts_in_transit"
)


def offences(source: str, filename: str = "<module>") -> list[str]:
    """Account-code literals (docstrings aside) and ledger `Line`s outside the chart."""
    tree = ast.parse(source, filename)
    docstrings = {
        id(node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Expr)
        and isinstance(node.value, ast.Constant)
        and isinstance(node.value.value, str)
    }
    ledger_modules = {
        alias.asname or alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module == "app.ledger"
        for alias in node.names
    }
    found = []
    for node in ast.walk(tree):
        where = f"{filename}:{getattr(node, 'lineno', '?')}"
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            if id(node) not in docstrings and CODE_LITERAL.search(node.value):
                found.append(f"{where} account code {node.value!r}")
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("app.ledger"):
            if any(alias.name == "Line" for alias in node.names):
                found.append(f"{where} imports the ledger's Line")
        elif (
            isinstance(node, ast.Attribute)
            and node.attr == "Line"
            and isinstance(node.value, ast.Name)
            and node.value.id in ledger_modules
        ):
            found.append(f"{where} uses the ledger's {node.value.id}.Line")
    return found


def test_no_module_but_the_chart_spells_account_codes_or_builds_lines() -> None:
    found = []
    for path in sorted(APP.rglob("*.py")):
        if path == CHART:
            continue
        # The ledger's engine takes `Line`s (its type) and never builds one itself.
        source = path.read_text()
        name = str(path.relative_to(ROOT))
        found += [
            o
            for o in offences(source, name)
            if not (name == "app/ledger/service.py" and "imports the ledger's Line" in o)
        ]
    assert found == []


@pytest.mark.parametrize(
    "source",
    [
        'x = f"clearing:{provider}"',
        "code = 'payable:staff:' + str(rid)",
        'DEFERRED = "deferred_revenue"',
        "sql = \"SELECT 1 WHERE code LIKE 'payouts_in_transit:%'\"",
        "from app.ledger.service import Line",
        "from app.ledger.chart import Line, booked",
        "from app.ledger import chart\nlines = [chart.Line('x', 'asset', amount)]",
        "from app.ledger import service as s\nlines = [s.Line('x', 'asset', amount)]",
    ],
)
def test_the_scan_catches_what_it_forbids(source: str) -> None:
    assert offences(source) != []


def test_the_scan_lets_docstrings_and_other_words_through() -> None:
    source = '"""Dr `clearing:<provider>` / Cr `receivable:customer`."""\n' + (
        'reason = "revenue"\nname = f"revenue-{day}.csv"\nfrom app.invoices.lines import Line\n'
        "from app.invoices import lines\nrow = lines.Line('x', 1, 2, 2)\n"
    )
    assert offences(source) == []


PROVIDER, SERVICE, RESOURCE = "stripe", uuid.uuid4(), uuid.uuid4()
AMOUNT, FEE = Money(12_345, "EGP"), Money(-7, "EGP")
BUILT = {
    "booked": chart.booked(AMOUNT),
    "released": chart.released(AMOUNT),
    "captured": chart.captured(PROVIDER, AMOUNT),
    "fee": chart.fee(PROVIDER, AMOUNT),
    "recognised": chart.recognised(SERVICE, AMOUNT),
    "retained": chart.retained(SERVICE, AMOUNT),
    "commission": chart.commission(RESOURCE, AMOUNT),
    "refunded before completion": chart.refunded(PROVIDER, AMOUNT, from_revenue=None),
    "refunded after completion": chart.refunded(PROVIDER, AMOUNT, from_revenue=SERVICE),
    "disputed": chart.disputed(PROVIDER, AMOUNT),
    "payout_in_transit": chart.payout_in_transit(RESOURCE, "manual", AMOUNT),
    "payout_settled": chart.payout_settled("manual", chart.BANK, AMOUNT),
    "reconciliation_adjustment": chart.reconciliation_adjustment(PROVIDER, AMOUNT, FEE),
}


@pytest.mark.parametrize("event", sorted(BUILT))
def test_every_entry_of_the_money_path_balances(event: str) -> None:
    lines = BUILT[event]
    assert sum(line.amount.amount_minor for line in lines) == 0
    assert all(line.type in ACCOUNT_TYPES for line in lines)
    mirror = chart.reversal(
        type("P", (), {"account_code": ln.code, "account_type": ln.type, "amount": ln.amount})
        for ln in lines
    )
    assert [(m.code, m.amount) for m in mirror] == [(ln.code, -ln.amount) for ln in lines]


def test_the_codes_are_the_documented_ones() -> None:
    def debit_credit(lines: list[chart.Line]) -> tuple[str, str]:
        (debit,) = [ln.code for ln in lines if ln.amount.amount_minor > 0]
        (credit,) = [ln.code for ln in lines if ln.amount.amount_minor < 0]
        return debit, credit

    assert debit_credit(BUILT["booked"]) == ("receivable:customer", "deferred_revenue")
    assert debit_credit(BUILT["captured"]) == ("clearing:stripe", "receivable:customer")
    assert debit_credit(BUILT["fee"]) == ("expense:fees:stripe", "clearing:stripe")
    assert debit_credit(BUILT["recognised"]) == ("deferred_revenue", f"revenue:service:{SERVICE}")
    assert debit_credit(BUILT["commission"]) == ("expense:commission", f"payable:staff:{RESOURCE}")
    assert debit_credit(BUILT["disputed"]) == ("expense:disputes:stripe", "clearing:stripe")
    assert debit_credit(BUILT["payout_in_transit"]) == (
        f"payable:staff:{RESOURCE}",
        "payouts_in_transit:manual",
    )
    assert debit_credit(BUILT["payout_settled"]) == ("payouts_in_transit:manual", "clearing:bank")
    assert chart.payable_resource(chart.payable(RESOURCE)) == RESOURCE
    with pytest.raises(ValueError):
        chart.payable_resource("expense:commission")


def _money_path_table() -> list[str]:
    text = (ROOT / "README.md").read_text()
    lines = text[text.index("### The money path") :].splitlines()
    first = next(i for i, line in enumerate(lines) if line.startswith("|"))
    table = []
    for line in lines[first:]:
        if not line.startswith("|"):
            break
        table.append(line)
    return [row for row in table[1:] if not row.startswith("| ---")]  # header aside


def test_the_readme_table_names_chart_builders_and_posting_functions_that_exist() -> None:
    rows = _money_path_table()
    assert len(rows) >= 9
    named_builders: Counter[str] = Counter()
    for row in rows:
        cells = [c.strip() for c in row.strip("|").split("|")]
        builders = re.findall(r"`chart\.(\w+)`", cells[2])
        posters = re.findall(r"`(app(?:\.\w+)+)`", cells[3])
        assert builders and posters, row
        for name in builders:
            assert callable(getattr(chart, name, None)), name
            named_builders[name] += 1
        for dotted in posters:
            module, _, function = dotted.rpartition(".")
            assert callable(getattr(importlib.import_module(module), function, None)), dotted
    builders_in_chart = {
        name
        for name, value in vars(chart).items()
        if not name.startswith("_")
        and getattr(value, "__module__", None) == chart.__name__
        and getattr(value, "__annotations__", {}).get("return") == "list[Line]"
    }
    assert set(named_builders) == builders_in_chart
