"""How the breach-response documents are written out: one Jinja2 template per document and language,
rendered to a self-contained HTML file and, from the same template, to a PDF (fpdf2, pure Python, so
`make demo` needs nothing but Python). The PDF is the template's body fed to ``FPDF.write_html``:
both carry the same words.

Dates are shown in Paris time, formatted per locale by Babel; numbers too.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any, Final, TypeVar
from zoneinfo import ZoneInfo

from babel.dates import format_datetime
from babel.numbers import format_decimal
from fpdf import FPDF
from fpdf.fonts import TextStyle
from jinja2 import Environment, PackageLoader, StrictUndefined

from rempart.audit.disclosures import FIELD_LABELS, DataField
from rempart.audit.models import Channel

LANGUAGES: Final = ("fr", "en")
PARIS: Final = ZoneInfo("Europe/Paris")

# Where the data was seen, said so that a member understands it.
CHANNEL_LABELS: Final[dict[Channel, dict[str, str]]] = {
    Channel.PRO_API: {
        "fr": "le logiciel d'un professionnel de santé",
        "en": "a health professional's software",
    },
    Channel.PRO_PORTAL: {"fr": "le portail des professionnels de santé", "en": "the health professionals' portal"},
    Channel.FHIR: {
        "fr": "l'interface d'échange avec les logiciels de santé (FHIR)",
        "en": "the interface with health software (FHIR)",
    },
    Channel.BACKOFFICE: {"fr": "l'espace de gestion de votre complémentaire", "en": "your insurer's back office"},
    Channel.INSURER_API: {"fr": "l'interface de votre complémentaire", "en": "your insurer's interface"},
    Channel.BENEFICIARY_PORTAL: {"fr": "l'espace des assurés", "en": "the members' portal"},
    Channel.SECURITY_CONSOLE: {
        "fr": "la console de sécurité de la plateforme",
        "en": "the platform's security console",
    },
    Channel.CLI: {"fr": "une commande sur les serveurs de la plateforme", "en": "a command on the platform's servers"},
    Channel.BATCH: {"fr": "un traitement automatique de la plateforme", "en": "an automatic job of the platform"},
}

NATURE_LABELS: Final[dict[str, dict[str, str]]] = {
    "confidentiality": {"fr": "atteinte à la confidentialité", "en": "confidentiality breach"},
    "integrity": {"fr": "atteinte à l'intégrité", "en": "integrity breach"},
    "availability": {"fr": "atteinte à la disponibilité", "en": "availability breach"},
}
NATURES: Final = tuple(NATURE_LABELS)

_Item = TypeVar("_Item", DataField, Channel)
_ORDER: Final[dict[DataField | Channel, int]] = {
    **{item: index for index, item in enumerate(DataField)},
    **{item: index for index, item in enumerate(Channel)},
}
_SPACES = re.compile("[\u202f\u2009\u2007]")
_MARKUP_GAPS = re.compile(r">\s+<")

# Headings in ink, not in red: red is for what the insurer still has to fill in.
_PDF_STYLES: Final = {
    "h1": TextStyle(font_style="B", font_size_pt=16, color=(20, 30, 70), t_margin=4, b_margin=2),
    "h2": TextStyle(font_style="B", font_size_pt=12, color=(20, 30, 70), t_margin=5, b_margin=1),
}

_templates = Environment(
    loader=PackageLoader("rempart", "web/templates"),
    autoescape=True,  # every template here is HTML; an insurer's name is data, never markup
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


def check_language(lang: str) -> None:
    if lang not in LANGUAGES:
        raise ValueError(f"lang must be one of {LANGUAGES}")


def in_order(items: Iterable[_Item]) -> list[_Item]:
    """Fields and channels in the order their enum declares them (identity first), not by code."""
    return sorted(items, key=lambda item: _ORDER[item])


def field_labels(fields: Iterable[DataField], lang: str) -> list[str]:
    return [FIELD_LABELS[item][lang] for item in in_order(fields)]


def channel_labels(channels: Iterable[Channel], lang: str) -> list[str]:
    return [CHANNEL_LABELS[item][lang] for item in in_order(channels)]


def moment(value: datetime | None, lang: str) -> str:
    """A date and time in Paris time (naive values are taken as UTC, as stored)."""
    if value is None:
        return ""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    pattern = "d MMMM y 'à' HH:mm" if lang == "fr" else "d MMMM y 'at' HH:mm"
    return format_datetime(value, pattern, tzinfo=PARIS, locale=lang)


def number(value: int, lang: str) -> str:
    return format_decimal(value, locale=lang)


def printable(text: str) -> str:
    """Text the PDF core fonts can show (Windows-1252 holds French's accents, œ, ’ and « »).
    Babel's thin no-break spaces become no-break spaces; anything else outside the code page falls
    back to its unaccented form, then to '?', rather than refusing to print a letter."""
    text = _SPACES.sub("\u00a0", unicodedata.normalize("NFC", text))
    kept = []
    for char in text:
        try:
            char.encode("cp1252")
        except UnicodeEncodeError:
            plain = unicodedata.normalize("NFKD", char).encode("ascii", "ignore").decode("ascii")
            kept.append(plain or "?")
        else:
            kept.append(char)
    return "".join(kept)


def html_and_pdf(template: str, *, lang: str, title: str, created: datetime, **context: Any) -> tuple[str, bytes]:
    """The document as a self-contained HTML file, and as a PDF of the same template's body."""
    page = _templates.get_template(f"incidents/documents/{template}.{lang}.html")
    html = page.render(lang=lang, title=title, for_pdf=False, **context)
    body = page.render(lang=lang, title=title, for_pdf=True, **context)
    return html, _pdf(body, lang=lang, title=title, created=created)


def _pdf(body: str, *, lang: str, title: str, created: datetime) -> bytes:
    sheet = FPDF(orientation="P", unit="mm", format="A4")
    sheet.core_fonts_encoding = "windows-1252"
    sheet.set_margins(18, 16, 18)
    sheet.set_auto_page_break(auto=True, margin=16)
    sheet.set_title(printable(title))
    sheet.set_creator("Rempart")
    sheet.set_lang(lang)
    # Same facts, same bytes: the PDF is dated by the caller, not by the clock.
    sheet.set_creation_date(created if created.tzinfo else created.replace(tzinfo=UTC))
    sheet.add_page()
    sheet.set_font("Helvetica", size=10)
    sheet.write_html(
        printable(_MARKUP_GAPS.sub("><", body)),
        font_family="helvetica",
        ul_bullet_char="\u2022",  # the default is a Latin-1 code the windows-1252 core font refuses
        li_prefix_color=(0, 0, 0),
        tag_styles=_PDF_STYLES,
    )
    return bytes(sheet.output())
