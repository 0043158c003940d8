"""Finds every msgid the booking site and its mails use: `_("…")`, `N_("…")` and
`ngettext("…", "…", n)` in templates and Python (single or double quotes, one line)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2] / "app"
SOURCES = [
    *sorted((ROOT / "edge" / "web" / "templates").rglob("*.html")),
    *sorted((ROOT / "edge" / "web").rglob("*.py")),
    *sorted((ROOT / "presentation").glob("*.py")),
    *sorted((ROOT / "mail").glob("*.py")),
]
STRING = r"""(?:"((?:[^"\\]|\\.)*)"|'((?:[^'\\]|\\.)*)')"""
SINGLE = re.compile(r"(?<![A-Za-z0-9])N?_\(\s*" + STRING)
PLURAL = re.compile(r"ngettext\(\s*" + STRING + r"\s*,\s*" + STRING)


def _text(groups: tuple[str | None, ...]) -> str:
    return next(g for g in groups if g is not None).replace('\\"', '"').replace("\\'", "'")


def msgids() -> tuple[set[str], set[tuple[str, str]]]:
    singles: set[str] = set()
    plurals: set[tuple[str, str]] = set()
    for path in SOURCES:
        source = path.read_text()
        for match in SINGLE.finditer(source):
            singles.add(_text(match.groups()))
        for match in PLURAL.finditer(source):
            groups = match.groups()
            plurals.add((_text(groups[:2]), _text(groups[2:])))
    return singles, plurals
