"""English and Arabic: every text the site and its mails use is in the Arabic catalogue, the
language follows ?lang=, the cookie it sets and Accept-Language, and Arabic is right to left
with Arabic dates and money."""

from __future__ import annotations

from app.presentation.i18n import choose, parse_accept_language, translator
from tests.web.catalogue import msgids
from tests.web.support import Client, make_site


def test_every_msgid_has_an_arabic_translation_with_the_same_placeholders() -> None:
    import re

    arabic = translator("ar")
    singles, plurals = msgids()
    assert len(singles) > 100
    placeholders = re.compile(r"%\([a-z_]+\)s")
    for msgid in singles:
        translated = arabic.gettext(msgid)
        assert translated != msgid, f"untranslated: {msgid!r}"
        assert sorted(placeholders.findall(translated)) == sorted(placeholders.findall(msgid))
    for singular, plural in plurals:
        for n in (0, 1, 2, 3, 11, 100):
            assert arabic.ngettext(singular, plural, n, share=50) not in (singular, plural)
    assert arabic.ngettext("%(n)s night", "%(n)s nights", 2) == "ليلتان"
    assert arabic.ngettext("%(n)s night", "%(n)s nights", 5) == "5 ليالٍ"


def test_language_choice_prefers_the_switch_then_the_cookie_then_the_browser() -> None:
    assert parse_accept_language("fr-CH, ar;q=0.9, en;q=0.8") == ["fr-ch", "ar", "en"]
    assert choose(None, None, "fr-CH, ar;q=0.9, en;q=0.8") == "ar"
    assert choose(None, "en", "ar") == "en"
    assert choose("ar", "en", "en") == "ar"
    assert choose("xx", None, "de") == "en"


async def test_the_arabic_page_is_right_to_left_with_arabic_text_and_money(client: Client) -> None:
    site = await make_site(client)
    page = await client.get(f"/b/{site.slug}", headers={"Accept-Language": "ar-EG,ar;q=0.9"})
    assert page.status_code == 200
    assert '<html lang="ar" dir="rtl">' in page.text
    assert "الخدمات" in page.text and "احجز" in page.text
    assert "ج.م.\u200f" in page.text  # EGP in Arabic, by Babel
    switched = await client.get(f"/b/{site.slug}?lang=en", headers={"Accept-Language": "ar"})
    assert '<html lang="en" dir="ltr">' in switched.text
    assert "lang=en" in switched.headers["set-cookie"]
