"""The translation catalogue and language choice: English (the msgids) and Arabic (RTL).

Catalogues are the .po files under app/presentation/locales, compiled in memory on first use (no .mo
files, no build step). A page's language comes from `?lang=`, then the `lang` cookie that a
`?lang=` switch sets, then Accept-Language; English otherwise.
"""

from __future__ import annotations

import gettext
import io
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from babel import Locale
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

LOCALES = ("en", "ar")
DEFAULT = "en"
RTL = frozenset({"ar"})
LOCALE_DIR = Path(__file__).parent / "locales"
COOKIE = "lang"


@cache
def _catalogue(lang: str) -> gettext.NullTranslations:
    path = LOCALE_DIR / lang / "LC_MESSAGES" / "messages.po"
    if not path.exists():
        return gettext.NullTranslations()
    with path.open("rb") as po:
        catalog = read_po(po, locale=lang)
    buffer = io.BytesIO()
    write_mo(buffer, catalog)
    buffer.seek(0)
    return gettext.GNUTranslations(buffer)


@dataclass(frozen=True)
class Translator:
    """`_` and `ngettext` for one language; keyword arguments fill %(name)s placeholders."""

    lang: str

    @property
    def locale(self) -> Locale:
        return Locale.parse(self.lang)

    @property
    def direction(self) -> str:
        return "rtl" if self.lang in RTL else "ltr"

    def gettext(self, message: str, /, **values: Any) -> str:
        text = _catalogue(self.lang).gettext(message)
        return text % values if values else text

    def ngettext(self, singular: str, plural: str, n: int, /, **values: Any) -> str:
        text = _catalogue(self.lang).ngettext(singular, plural, n)
        return text % {"n": n, **values}


def translator(lang: str) -> Translator:
    return Translator(lang if lang in LOCALES else DEFAULT)


def parse_accept_language(header: str | None) -> list[str]:
    """Language tags by preference (q-values honoured, malformed parts skipped)."""
    if not header:
        return []
    weighted: list[tuple[float, int, str]] = []
    for index, part in enumerate(header.split(",")[:20]):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                continue
        if tag and quality > 0:
            weighted.append((-quality, index, tag.strip().lower()))
    return [tag for _, _, tag in sorted(weighted)]


def choose(query: str | None, cookie: str | None, accept_language: str | None) -> str:
    for candidate in (query, cookie):
        if candidate in LOCALES:
            return str(candidate)
    for tag in parse_accept_language(accept_language):
        primary = tag.split("-")[0]
        if primary in LOCALES:
            return primary
    return DEFAULT


def N_(message: str) -> str:
    """Marks a msgid for the catalogue where it is translated later (at render time)."""
    return message
