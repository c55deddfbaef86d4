"""Every word the portal shows has its French translation, with the same placeholders; dates and
amounts are written by Babel the way each language writes them."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from pathlib import Path

from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg

from rempart.web import i18n

ROOT = Path(__file__).resolve().parents[2]
_PLACEHOLDER = re.compile(r"%\((\w+)\)s")


def portal_words() -> dict[str, str]:
    """Every message id the sources and templates mark, as ``pybabel extract -F babel.cfg`` finds
    them, with where each one is."""
    with (ROOT / "babel.cfg").open() as cfg:
        method_map, options_map = parse_mapping_cfg(cfg)
    found: dict[str, str] = {}
    for filename, lineno, message, _comments, _context in extract_from_dir(
        ROOT / "src", method_map, options_map, keywords={"_": None, "gettext": None, "ngettext": (1, 2)}
    ):
        for text in message if isinstance(message, tuple) else (message,):
            if text:
                found.setdefault(text, f"{filename}:{lineno}")
    return found


def test_the_extraction_finds_the_portal_words() -> None:
    words = portal_words()
    assert len(words) > 80
    assert "Sign in with a passkey" in words  # a template
    assert "Please slow down" in words  # Python, marked with _()


def test_every_portal_word_has_a_french_translation_with_the_same_placeholders() -> None:
    french = i18n.translations("fr")
    missing, mismatched = [], []
    for text, where in portal_words().items():
        translated = french.gettext(text)
        if translated == text and text.upper() != text:  # acronyms (NIR, BRSS) read the same
            missing.append(f"{where}: {text!r}")
        elif set(_PLACEHOLDER.findall(translated)) != set(_PLACEHOLDER.findall(text)):
            mismatched.append(f"{where}: {text!r} -> {translated!r}")
    assert not missing, "no French for:\n" + "\n".join(missing)
    assert not mismatched, "placeholders differ:\n" + "\n".join(mismatched)


def test_amounts_and_dates_are_written_per_language() -> None:
    noon = datetime(2026, 7, 14, 10, 30, tzinfo=UTC)  # 12:30 in Paris (summer time)
    with i18n.speaking("fr"):
        assert i18n.euros(1_234_567) == "12\u202f345,67\xa0€"
        assert i18n.day(date(2026, 7, 14)) == "14 juil. 2026"
        assert i18n.clock_time(noon) == "12:30"
        assert i18n.euros(None) == "—"
    with i18n.speaking("en"):
        assert i18n.euros(1_234_567) == "€12,345.67"
        assert i18n.day(date(2026, 7, 14)) == "Jul 14, 2026"
        assert i18n.clock_time(noon) == "12:30\u202fPM"
    assert i18n.iso_utc(datetime(2026, 7, 14, 10, 30).replace(tzinfo=None)) == "2026-07-14T10:30:00Z"  # noqa: DTZ001


def test_an_unknown_language_cookie_reads_as_french() -> None:
    with i18n.speaking("xx"):
        assert i18n.current_language() == "fr"
