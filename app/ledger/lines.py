"""The `Line` type: one side of a ledger entry.

Only the chart of accounts (app/ledger/chart.py), which builds every line, and the posting
engine (app/ledger/service.py), which writes them, import this module (an import-linter
`protected` contract); every other module asks the chart for lines.
"""

from __future__ import annotations

from typing import NamedTuple

from app.money import Money


class Line(NamedTuple):
    """One side of an entry: account code and type, a signed amount, an optional name."""

    code: str
    type: str
    amount: Money
    name: str | None = None
