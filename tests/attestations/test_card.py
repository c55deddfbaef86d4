"""The printed attestation: a QR code a real decoder reads back, and a card a person can read."""

from __future__ import annotations

import dataclasses
import io
import random
from datetime import date
from pathlib import Path

import pypdfium2
import pytest
import zxingcpp
from PIL import Image

from rempart.attestations.card import DOMAINS, CardFace, card_pdf, qr_png, qr_version

QR_ALPHANUMERIC = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:"
ARTEFACTS = Path(__file__).resolve().parents[2] / "var" / "artefacts" / "attestations"


def fake_token(seed: int, length: int = 290) -> str:
    """As long as a real signed token, drawn from the alphabet base45 writes."""
    rng = random.Random(seed)
    return "RA1:" + "".join(rng.choice(QR_ALPHANUMERIC) for _ in range(length - 4))


def a_face(*, rank: int = 1, token: str | None = None) -> CardFace:
    return CardFace(
        insurer_name="Mutuelle Générale de l'Œuvre Santé",
        amc_number="312345678",
        member_number="A0042917",
        birth_rank=rank,
        valid_from=date(2027, 1, 1),
        valid_to=date(2027, 12, 31),
        third_party_payment=frozenset({"PHAR", "OPTI", "DENT", "HOSP", "CONS", "LABO", "AUXM", "RADI"}),
        prior_approval=frozenset({"OPTI", "AUDI", "DENT"}),
        token=token if token is not None else fake_token(rank),
    )


def decoded(image: Image.Image) -> list[str]:
    return [result.text for result in zxingcpp.read_barcodes(image) if result.format == zxingcpp.BarcodeFormat.QRCode]


def rendered(pdf: bytes) -> list[tuple[Image.Image, str]]:
    """Each page as an image (144 dpi) and as the text a reader extracts."""
    document = pypdfium2.PdfDocument(pdf)
    try:
        pages = []
        for page in document:
            pages.append((page.render(scale=2).to_pil().convert("RGB"), page.get_textpage().get_text_range()))
        return pages
    finally:
        document.close()


# -- the QR code ----------------------------------------------------------------------------------


def test_a_real_decoder_reads_the_token_back_from_the_png() -> None:
    token = fake_token(7)
    assert len(token) == 290

    png = qr_png(token)
    image = Image.open(io.BytesIO(png))

    assert png.startswith(b"\x89PNG")
    assert decoded(image) == [token]
    # 290 alphanumeric characters at level M fit version 10 (at most 311); the card is sized for it.
    assert qr_version(token) <= 12


def test_the_png_has_a_four_module_quiet_zone() -> None:
    token = fake_token(8)
    modules = 17 + 4 * qr_version(token)
    image = Image.open(io.BytesIO(qr_png(token, scale=3)))
    assert image.size == ((modules + 8) * 3, (modules + 8) * 3)


def test_a_token_outside_the_alphanumeric_alphabet_is_refused() -> None:
    with pytest.raises(ValueError, match="alphanumeric"):
        qr_png("ra1:lowercase")
    with pytest.raises(ValueError, match="alphanumeric"):
        qr_version("RA1:ABC#")
    with pytest.raises(ValueError, match="alphanumeric"):
        a_face(token="RA1:é")


# -- the card -------------------------------------------------------------------------------------


def test_the_french_card_shows_its_facts_and_a_readable_qr_code() -> None:
    face = a_face()
    pages = rendered(card_pdf([face]))

    assert len(pages) == 1
    image, text = pages[0]
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    image.save(ARTEFACTS / "card-fr.png")

    grey = image.convert("L")
    histogram = grey.histogram()
    inked = sum(histogram[:200]) / (grey.width * grey.height)
    assert inked > 0.02, "the page is (almost) blank"
    colours = image.getcolors(maxcolors=image.width * image.height)
    assert colours is not None
    assert len(colours) > 2, "the page is one or two flat colours"

    assert decoded(image) == [face.token]
    for expected in (
        "Attestation de tiers payant",
        "Mutuelle Générale de l'Œuvre Santé",
        "312345678",
        "A0042917",
        "rang 01",
        "Valable du 1 janv. 2027 au 31 déc. 2027",
        "Pharmacie",
        "Audioprothèse",
        "Auxiliaires médicaux",
        "À présenter avec votre carte Vitale",
    ):
        assert expected in text


def test_the_english_card_speaks_english() -> None:
    image, text = rendered(card_pdf([a_face()], locale="en"))[0]

    assert "Third-party payment attestation" in text
    assert "Valid from Jan 1, 2027 to Dec 31, 2027" in text
    assert "Pharmacy" in text
    assert "Pharmacie" not in text
    assert decoded(image) == [a_face().token]


def test_each_beneficiary_of_a_contract_gets_a_card_with_a_readable_qr_code() -> None:
    faces = [a_face(rank=rank) for rank in (1, 2, 3)]
    pages = rendered(card_pdf(faces))

    assert 1 <= len(pages) <= 2
    found = [token for image, _ in pages for token in decoded(image)]
    assert sorted(found) == sorted(face.token for face in faces)
    text = "".join(page_text for _, page_text in pages)
    assert all(f"rang {rank:02d}" in text for rank in (1, 2, 3))


def test_nine_cards_take_two_pages() -> None:
    faces = [a_face(rank=rank) for rank in range(1, 10)]
    assert len(pypdfium2.PdfDocument(card_pdf(faces))) == 2


def test_the_pdf_is_titled_and_the_same_faces_give_the_same_bytes() -> None:
    pdf = card_pdf([a_face()])
    document = pypdfium2.PdfDocument(pdf)
    metadata = document.get_metadata_dict()
    document.close()

    assert metadata["Title"] == "Attestations de tiers payant"
    assert metadata["Creator"] == "Rempart"
    assert card_pdf([a_face()]) == pdf


def test_bad_input_is_refused() -> None:
    with pytest.raises(ValueError, match="locale"):
        card_pdf([a_face()], locale="de")
    with pytest.raises(ValueError, match="no card"):
        card_pdf([])
    with pytest.raises(ValueError, match="care domain"):
        dataclasses.replace(a_face(), prior_approval=frozenset({"XXXX"}))
    with pytest.raises(ValueError, match="before"):
        dataclasses.replace(a_face(), valid_to=date(2026, 12, 31))


# -- what a card can never carry --------------------------------------------------------------------


def test_a_face_has_no_field_for_a_name_nir_birth_date_or_marital_status() -> None:
    assert [field.name for field in dataclasses.fields(CardFace)] == [
        "insurer_name",
        "amc_number",
        "member_number",
        "birth_rank",
        "valid_from",
        "valid_to",
        "third_party_payment",
        "prior_approval",
        "token",
    ]
    with pytest.raises(TypeError):
        CardFace(**{**dataclasses.asdict(a_face()), "nir": "185057800608436"})  # type: ignore[arg-type]


def test_domains_are_listed_in_the_agreed_order() -> None:
    assert DOMAINS == ("PHAR", "OPTI", "AUDI", "DENT", "HOSP", "CONS", "LABO", "AUXM", "RADI", "TRAN")
