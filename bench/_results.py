"""Machine-readable figures: each benchmark prints, beside its own output, one line per figure

    RESULT {"name": "...", "label": "...", "value": 1.0, "limit": 2.0, "unit": "ms",
            "goal": "<=", "target": 1.0}

which bench/run_all.py collects into one markdown table. `limit` is the issue's figure or one
measured in the same run (pgbench on the same statements); ratio = value / limit; `goal` says
how the ratio must meet `target` (">=" at least, "<=" at most, null: reported, no goal). The
target is 1 for a limit that is the goal itself (p99 <= 50 ms) and the issue's fraction for a
measured limit (checkout over HTTP >= 0.5 of pgbench).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

PREFIX = "RESULT "


@dataclass(frozen=True, slots=True)
class Result:
    name: str
    label: str
    value: float
    limit: float | None
    unit: str
    goal: str | None  # ">=", "<=" or None
    target: float = 1.0

    @property
    def ratio(self) -> float | None:
        if self.limit is None or self.limit == 0:
            return None
        return self.value / self.limit

    @property
    def met(self) -> bool | None:
        if self.goal is None or self.limit is None:
            return None
        if self.limit == 0:  # a count that must be none (wrong outcomes): no ratio to take
            return self.value <= 0 if self.goal == "<=" else self.value >= 0
        ratio = self.value / self.limit
        return ratio >= self.target if self.goal == ">=" else ratio <= self.target


def result(
    name: str,
    value: float,
    limit: float | None,
    unit: str,
    goal: str | None,
    label: str | None = None,
    *,
    target: float = 1.0,
) -> None:
    """Print one figure as a RESULT line (stdout, flushed)."""
    assert goal in (">=", "<=", None), goal
    record: dict[str, Any] = {
        "name": name,
        "label": label or name,
        "value": round(float(value), 4),
        "limit": None if limit is None else round(float(limit), 4),
        "unit": unit,
        "goal": goal,
        "target": target,
    }
    print(PREFIX + json.dumps(record), flush=True)


def parse(output: str) -> list[Result]:
    """The RESULT lines of a benchmark's output, in order; other lines are ignored."""
    found = []
    for line in output.splitlines():
        if not line.startswith(PREFIX):
            continue
        data = json.loads(line[len(PREFIX) :])
        found.append(
            Result(
                name=str(data["name"]),
                label=str(data.get("label") or data["name"]),
                value=float(data["value"]),
                limit=None if data.get("limit") is None else float(data["limit"]),
                unit=str(data.get("unit") or ""),
                goal=data.get("goal"),
                target=float(data.get("target", 1.0)),
            )
        )
    return found


def _number(value: float) -> str:
    if value == int(value) and abs(value) < 100:
        return str(int(value))  # a count
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def _with_unit(value: float, unit: str) -> str:
    return f"{_number(value)} {unit}".strip()


def table(results: list[Result]) -> str:
    """One markdown table: figure | measured | limit | ratio | goal met?"""
    lines = [
        "| figure | measured | limit | ratio | goal met? |",
        "| --- | ---: | ---: | ---: | --- |",
    ]
    for r in results:
        limit = "—" if r.limit is None else _with_unit(r.limit, r.unit)
        ratio = "—" if r.ratio is None else f"{r.ratio:.2f}"
        if r.goal is not None and r.ratio is not None:
            ratio += f" (goal {r.goal} {r.target:g})"
        met = {True: "yes", False: "**no**", None: "—"}[r.met]
        lines.append(f"| {r.label} | {_with_unit(r.value, r.unit)} | {limit} | {ratio} | {met} |")
    return "\n".join(lines)
