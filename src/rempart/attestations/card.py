"""The printable face of a signed offline attestation: its QR code and a card to cut out.

The token is already signed and base45-encoded elsewhere; this module only draws it. A card holds
what a professional needs at the counter (insurer, AMC number, member number and birth rank,
validity, per care domain whether third-party payment applies and whether prior approval is
required) and never a name, NIR, date of birth or marital status: `CardFace` has no field for them.

Self-contained on purpose (no database, no other domain, its own words in French and English), so
that a batch job or the command line can print cards without the portal.
"""

from __future__ import annotations

import io
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Final

import segno
from babel.dates import format_date
from fpdf import FPDF

from rempart_verifier import DOMAINS

LOCALES: Final = ("fr", "en")

# The care domains in the token format's order (``rempart_verifier.DOMAINS``), as a card lists them.

DOMAIN_LABELS: Final[dict[str, dict[str, str]]] = {
    "fr": {
        "PHAR": "Pharmacie",
        "OPTI": "Optique",
        "AUDI": "Audioprothèse",
        "DENT": "Dentaire",
        "HOSP": "Hospitalisation",
        "CONS": "Consultations",
        "LABO": "Analyses",
        "AUXM": "Auxiliaires médicaux",
        "RADI": "Radiologie",
        "TRAN": "Transport",
    },
    "en": {
        "PHAR": "Pharmacy",
        "OPTI": "Optics",
        "AUDI": "Hearing aids",
        "DENT": "Dental",
        "HOSP": "Hospital",
        "CONS": "Consultations",
        "LABO": "Lab tests",
        "AUXM": "Paramedics",
        "RADI": "Imaging",
        "TRAN": "Transport",
    },
}

WORDS: Final[dict[str, dict[str, str]]] = {
    "fr": {
        "title": "Attestation de tiers payant",
        "document": "Attestations de tiers payant",
        "amc": "AMC n° {number}",
        "member": "Adhérent n° {number} · rang {rank:02d}",
        "validity": "Valable du {start} au {end}",
        "tp": "TP",
        "pec": "PEC",
        "legend": "TP : tiers payant · PEC : accord préalable requis",
        "footer": (
            "Signée par votre complémentaire santé. À présenter avec votre carte Vitale : "
            "le professionnel vérifie la signature et votre identité sans connexion."
        ),
    },
    "en": {
        "title": "Third-party payment attestation",
        "document": "Third-party payment attestations",
        "amc": "AMC no. {number}",
        "member": "Member no. {number} · rank {rank:02d}",
        "validity": "Valid from {start} to {end}",
        "tp": "TP",
        "pec": "PA",
        "legend": "TP: third-party payment · PA: prior approval required",
        "footer": (
            "Signed by your complementary health insurer. Show it with your Carte Vitale: "
            "the professional checks the signature and your identity offline."
        ),
    },
}

# QR alphanumeric mode's 45 characters (ISO/IEC 18004), which base45 was designed to fit.
_ALPHANUMERIC: Final = re.compile(r"[0-9A-Z $%*+\-./:]+")
_ERROR_LEVEL: Final = "M"
_QUIET_ZONE: Final = 4

# Geometry, in millimetres. ID-1 is the bank-card format; two per row, four rows per A4 page.
CARD_W: Final = 85.6
CARD_H: Final = 54.0
_PAGE_W: Final = 210.0
_PAGE_H: Final = 297.0
_GAP_X: Final = 8.0
_GAP_Y: Final = 10.0
_PER_ROW: Final = 2
_ROWS: Final = 4
_MARGIN_X: Final = (_PAGE_W - _PER_ROW * CARD_W - (_PER_ROW - 1) * _GAP_X) / 2
_MARGIN_Y: Final = (_PAGE_H - _ROWS * CARD_H - (_ROWS - 1) * _GAP_Y) / 2
# The QR image, quiet zone included: a version 10 symbol (57 modules + 2 × 4) is then 31 mm wide.
_QR_SIZE: Final = 35.5
_LABEL_SIZE: Final = 5.5

_INK: Final = (20, 33, 61)
_BAND: Final = (0, 70, 140)
_YES: Final = (0, 120, 60)
_NO: Final = (170, 30, 30)
_RULE: Final = (150, 150, 150)


@dataclass(frozen=True)
class CardFace:
    """What one printed card shows. Deliberately no name, NIR, date of birth or marital status:
    a lost card must reveal nothing about who holds it beyond a member number."""

    insurer_name: str
    amc_number: str
    member_number: str
    birth_rank: int
    valid_from: date
    valid_to: date
    third_party_payment: frozenset[str]
    prior_approval: frozenset[str]
    token: str

    def __post_init__(self) -> None:
        unknown = (self.third_party_payment | self.prior_approval) - set(DOMAINS)
        if unknown:
            raise ValueError(f"unknown care domain codes: {sorted(unknown)}")
        if self.valid_to < self.valid_from:
            raise ValueError("valid_to is before valid_from")
        _check_alphanumeric(self.token)


def _check_alphanumeric(token: str) -> None:
    if not _ALPHANUMERIC.fullmatch(token):
        raise ValueError("an attestation token holds only QR alphanumeric characters (0-9 A-Z $%*+-./: and space)")


def _qr(token: str) -> segno.QRCode:
    _check_alphanumeric(token)
    # boost_error=False: the level stays M, as the verifier's tests and the size budget assume.
    return segno.make_qr(token, error=_ERROR_LEVEL, mode="alphanumeric", boost_error=False)


def qr_version(token: str) -> int:
    """The QR version (1-40) segno picks for ``token`` at level M in alphanumeric mode."""
    version = _qr(token).version
    assert isinstance(version, int)  # a QR code (not a Micro QR) always has a numeric version
    return version


def qr_png(token: str, *, scale: int = 6) -> bytes:
    """The token as a PNG QR code: level M, alphanumeric mode, a 4-module quiet zone,
    ``scale`` pixels per module. Raises ValueError if the token is not alphanumeric-only."""
    out = io.BytesIO()
    _qr(token).save(out, kind="png", scale=scale, border=_QUIET_ZONE)
    return out.getvalue()


# -- the printed card ---------------------------------------------------------------------------------

_SPACES: Final = re.compile(r"[\u2000-\u200a\u202f\u205f]")


def _printable(text: str) -> str:
    """Text the PDF core fonts can show (Windows-1252, which holds French's œ, ’ and «»).
    Babel writes thin no-break spaces; anything else outside the code page falls back to its
    unaccented form, then to '?', rather than refusing to print a card."""
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


def _day(value: date, locale: str) -> str:
    return format_date(value, format="medium", locale=locale)


class _CardSheet(FPDF):
    def __init__(self, locale: str) -> None:
        super().__init__(orientation="P", unit="mm", format="A4")
        self.locale = locale
        self.words = WORDS[locale]
        self.labels = DOMAIN_LABELS[locale]
        self.core_fonts_encoding = "windows-1252"
        self.set_auto_page_break(auto=False)
        self.set_margins(0, 0, 0)

    def put(self, x: float, y: float, w: float, text: str, *, size: float, style: str = "", align: str = "L") -> None:
        """One line of text in a box of width ``w``, shrunk (down to 60 %) rather than overflowing."""
        text = _printable(text)
        floor = 0.6 * size
        self.set_font("Helvetica", style, size)
        while self.get_string_width(text) > w and size - 0.25 >= floor:
            size -= 0.25
            self.set_font("Helvetica", style, size)
        self.set_xy(x, y)
        self.cell(w, size * 0.3528 * 1.15, text, align=align)

    def mark(self, cx: float, cy: float, *, yes: bool) -> None:
        """A drawn tick or cross: no glyph needed, and they differ in shape, not only colour."""
        self.set_line_width(0.35)
        if yes:
            self.set_draw_color(*_YES)
            self.polyline([(cx - 0.9, cy), (cx - 0.25, cy + 0.7), (cx + 1.0, cy - 0.8)])
        else:
            self.set_draw_color(*_NO)
            self.line(cx - 0.7, cy - 0.7, cx + 0.7, cy + 0.7)
            self.line(cx - 0.7, cy + 0.7, cx + 0.7, cy - 0.7)

    def card(self, face: CardFace, x: float, y: float) -> None:
        words = self.words
        # Outline to cut along, and the title band.
        self.set_line_width(0.2)
        self.set_draw_color(*_RULE)
        self.rect(x, y, CARD_W, CARD_H, style="D", round_corners=True, corner_radius=3.0)
        self.set_fill_color(*_BAND)
        # Rounded on top only: a rounded band, its lower half squared off by a plain one.
        self.rect(x, y, CARD_W, 7.5, style="F", round_corners=True, corner_radius=3.0)
        self.rect(x, y + 4.0, CARD_W, 3.5, style="F")
        self.set_text_color(255, 255, 255)
        self.put(x + 3, y + 1.6, CARD_W - 6, words["title"], size=8.5, style="B")

        # The QR code on the right, its quiet zone inside the card.
        qr_x = x + CARD_W - _QR_SIZE - 0.8
        qr_y = y + 8.2
        self.image(io.BytesIO(qr_png(face.token, scale=4)), x=qr_x, y=qr_y, w=_QR_SIZE, h=_QR_SIZE)

        # Who and when, on the left.
        left = x + 3.0
        width = qr_x - left
        self.set_text_color(*_INK)
        self.put(left, y + 9.0, width, face.insurer_name, size=7.5, style="B")
        self.put(left, y + 12.6, width, words["amc"].format(number=face.amc_number), size=6.5)
        member = words["member"].format(number=face.member_number, rank=face.birth_rank)
        self.put(left, y + 15.6, width, member, size=6.5)
        start, end = _day(face.valid_from, self.locale), _day(face.valid_to, self.locale)
        self.put(left, y + 18.6, width, words["validity"].format(start=start, end=end), size=6.5, style="B")

        # Care domains: two columns of five, each row "label  TP ✓  PEC ✗". The first column is as
        # wide as its longest label, so that the second keeps room for "Auxiliaires médicaux".
        marks_w = 8.0
        self.set_font("Helvetica", "", _LABEL_SIZE)
        first = max(self.get_string_width(_printable(self.labels[code])) for code in DOMAINS[:5]) + 1.3
        first = min(first, width / 2 - marks_w)
        label_ws = (first, width - 2 * marks_w - first)
        starts = (left, left + label_ws[0] + marks_w)
        head_y = y + 22.4
        row_h = 3.5
        self.set_text_color(*_INK)
        for cx, label_w in zip(starts, label_ws, strict=True):
            self.put(cx + label_w, head_y, 4, words["tp"], size=5, style="B", align="C")
            self.put(cx + label_w + 4, head_y, 4, words["pec"], size=5, style="B", align="C")
        for index, code in enumerate(DOMAINS):
            column, row = divmod(index, 5)
            cx, label_w = starts[column], label_ws[column]
            cy = head_y + 2.6 + row * row_h
            self.set_text_color(*_INK)
            self.put(cx, cy, label_w - 0.4, self.labels[code], size=_LABEL_SIZE)
            mid = cy + 1.1
            self.mark(cx + label_w + 2, mid, yes=code in face.third_party_payment)
            self.mark(cx + label_w + 6, mid, yes=code in face.prior_approval)
        self.set_text_color(90, 90, 90)
        self.put(left, y + 43.0, width, words["legend"], size=4.3)

        # Footer.
        self.set_draw_color(*_RULE)
        self.set_line_width(0.15)
        self.line(x + 3, y + 45.6, x + CARD_W - 3, y + 45.6)
        self.set_text_color(*_INK)
        self.set_font("Helvetica", "", 4.8)
        self.set_xy(x + 3, y + 46.3)
        self.multi_cell(CARD_W - 6, 2.2, _printable(words["footer"]), align="C")


def card_pdf(faces: Sequence[CardFace], *, locale: str = "fr") -> bytes:
    """An A4 PDF of the cards, drawn at 1:1 (ID-1, 85.6 × 54 mm) to be cut out: two per row,
    eight per page, as many pages as needed. ``locale`` is "fr" or "en"."""
    if locale not in LOCALES:
        raise ValueError(f"locale must be one of {LOCALES}")
    if not faces:
        raise ValueError("no card to print")
    sheet = _CardSheet(locale)
    sheet.set_title(_printable(WORDS[locale]["document"]))
    sheet.set_creator("Rempart")
    sheet.set_lang(locale)
    # Same faces, same bytes: the document is dated at the start of validity, not at print time.
    first = min(face.valid_from for face in faces)
    sheet.set_creation_date(datetime(first.year, first.month, first.day, tzinfo=UTC))
    per_page = _PER_ROW * _ROWS
    for index, face in enumerate(faces):
        slot = index % per_page
        if slot == 0:
            sheet.add_page()
        row, column = divmod(slot, _PER_ROW)
        sheet.card(
            face,
            _MARGIN_X + column * (CARD_W + _GAP_X),
            _MARGIN_Y + row * (CARD_H + _GAP_Y),
        )
    return bytes(sheet.output())
