"""The breach-response documents, drafted from facts built by hand: what the insurer, the CNIL and
each person would read, in the HTML and in the PDF alike."""

from __future__ import annotations

import csv
import hashlib
import html as html_lib
import io
import json
import re
import uuid
import zipfile
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pypdfium2
import pytest

from rempart.audit.disclosures import FIELD_LABELS, DataField
from rempart.audit.models import Channel
from rempart.incidents import documents
from rempart.incidents.documents import IncidentBrief
from rempart.incidents.facts import AttemptFacts, InsurerFacts, PersonFacts

ARTEFACTS = Path(__file__).resolve().parents[2] / "var" / "artefacts" / "incidents"
T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
AWARE = T0 + timedelta(days=2)
DESCRIPTION = "La clé d'API d'un cabinet dentaire a servi depuis l'étranger, sur 412 adhérents de plusieurs mutuelles."

IDENTITY = PersonFacts(
    beneficiary_id=uuid.uuid4(),
    member_number="4400017",
    birth_rank=1,
    fields=frozenset({DataField.NIR, DataField.BIRTH_DATE, DataField.COVERAGE_STATUS}),
    channels=frozenset({Channel.PRO_API}),
    records=3,
    first_seen=T0,
    last_seen=T0 + timedelta(hours=5),
)
COVERAGE = PersonFacts(
    beneficiary_id=uuid.uuid4(),
    member_number="4400028",
    birth_rank=2,
    fields=frozenset({DataField.COVERAGE_STATUS, DataField.GUARANTEES}),
    channels=frozenset({Channel.PRO_PORTAL}),
    records=1,
    first_seen=T0 + timedelta(hours=1),
    last_seen=T0 + timedelta(hours=1),
)
HEALTH = PersonFacts(
    beneficiary_id=uuid.uuid4(),
    member_number="4400039",
    birth_rank=1,
    fields=frozenset({DataField.CARE_LINES}),
    channels=frozenset({Channel.FHIR}),
    records=2,
    first_seen=T0 + timedelta(hours=2),
    last_seen=T0 + timedelta(days=1),
)
TRIED = AttemptFacts(
    beneficiary_id=uuid.uuid4(),
    member_number="4400095",
    birth_rank=1,
    attempts=4,
    channels=frozenset({Channel.PRO_API}),
)
PEOPLE = (IDENTITY, COVERAGE, HEALTH)


def insurer(*people: PersonFacts, name: str = "Mutuelle des Tilleuls") -> InsurerFacts:
    return InsurerFacts(
        insurer_id=uuid.uuid4(),
        amc_number="775685365",
        insurer_name=name,
        disclosed=people,
        attempted=(TRIED,),
        records=sum(p.records for p in people),
        unattributed_attempts=2,
    )


BRIEF = IncidentBrief(
    reference="INC-2026-0007",
    title="Clé d'API d'un cabinet utilisée frauduleusement",
    nature=frozenset({"confidentiality"}),
    description=DESCRIPTION,
    detected_at=AWARE - timedelta(hours=1),
    aware_at=AWARE,
    contained_at=AWARE + timedelta(hours=2),
    contact="Claire Martin, securite@rempart.example, +33 1 23 45 67 89",
    measures_taken=("Clé d'API révoquée et cabinet prévenu",),
    measures_proposed=("Limiter le débit des vérifications de droits par cabinet",),
    timeline=((T0, "Premier accès frauduleux"), (AWARE, "Alerte de la détection confirmée")),
    delay_reason=None,
    notice_sent_at=AWARE + timedelta(hours=6),
    keys_compromised=False,
)
FACTS = insurer(*PEOPLE)


def flat(text: str) -> str:
    return " ".join(text.replace("\u00a0", " ").replace("\u202f", " ").split())


def pdf_text(pdf: bytes) -> str:
    document = pypdfium2.PdfDocument(pdf)
    try:
        return flat(" ".join(page.get_textpage().get_text_range() for page in document))
    finally:
        document.close()


def html_text(page: str) -> str:
    """The words a reader sees: inline tags join their neighbours, block tags separate them."""
    page = re.sub(r"<head>.*?</head>", " ", page, flags=re.DOTALL)
    page = re.sub(r"</?(b|i|font)\b[^>]*>", "", page)
    return flat(html_lib.unescape(re.sub(r"<[^>]+>", " ", page)))


def ink(pdf: bytes) -> float:
    """The share of the first page's pixels that are not white."""
    document = pypdfium2.PdfDocument(pdf)
    try:
        image = document[0].render(scale=1).to_pil().convert("L")
    finally:
        document.close()
    histogram = image.histogram()  # 256 counts of grey levels
    return sum(histogram[:200]) / sum(histogram)


def save_png(pdf: bytes, name: str) -> None:
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    document = pypdfium2.PdfDocument(pdf)
    try:
        document[0].render(scale=1.5).to_pil().save(ARTEFACTS / f"{name}.png")
    finally:
        document.close()


def all_documents(lang: str) -> list[documents.Document]:
    return [
        documents.processor_notice(BRIEF, FACTS, lang=lang),
        documents.art33_notification(BRIEF, FACTS, lang=lang, now=AWARE + timedelta(hours=20)),
        documents.art34_assessment(BRIEF, FACTS, lang=lang),
    ]


@pytest.mark.parametrize("lang", ["fr", "en"])
def test_every_document_renders_with_ink_and_the_same_words_in_html_and_pdf(lang: str) -> None:
    for document in all_documents(lang):
        assert document.name.endswith(f"-{lang}")
        assert document.html.startswith("<!doctype html>")
        assert f'<html lang="{lang}">' in document.html
        assert ink(document.pdf) > 0.02, document.name
        assert pdf_text(document.pdf).replace("• ", "") == html_text(document.html)
        assert BRIEF.reference in pdf_text(document.pdf)
    for letter in documents.letters(BRIEF, FACTS, lang=lang):
        assert ink(letter.pdf) > 0.02
        assert letter.html.startswith("<!doctype html>")
        assert pdf_text(letter.pdf).replace("• ", "") == html_text(letter.html)
    if lang == "fr":
        save_png(all_documents(lang)[1].pdf, "art33-notification-fr")
        save_png(documents.letters(BRIEF, FACTS, lang=lang)[0].pdf, "letter-fr")


@pytest.mark.parametrize("lang", ["fr", "en"])
def test_the_notice_says_what_happened_to_whom_and_whom_to_call(lang: str) -> None:
    notice = documents.processor_notice(BRIEF, FACTS, lang=lang)
    for text in (pdf_text(notice.pdf), html_text(notice.html)):
        assert DESCRIPTION in text
        assert BRIEF.contact in text
        assert BRIEF.measures_taken[0] in text
        assert FIELD_LABELS[DataField.NIR][lang] in text
        assert ("2 mars 2026" if lang == "fr" else "2 March 2026") in text


@pytest.mark.parametrize("lang", ["fr", "en"])
def test_the_art33_notification_holds_people_records_nature_contact_and_measures(lang: str) -> None:
    draft = documents.art33_notification(BRIEF, FACTS, lang=lang, now=AWARE + timedelta(hours=20))
    people = "personnes concernées : 3 " if lang == "fr" else "data subjects concerned: 3 "
    records = "enregistrements de données à caractère personnel : 6 " if lang == "fr" else "personal data records: 6 "
    nature = "atteinte à la confidentialité" if lang == "fr" else "confidentiality breach"
    placeholder = "[à compléter : nom du DPO]" if lang == "fr" else "[to fill in: DPO name]"
    for text in (pdf_text(draft.pdf), html_text(draft.html)):
        assert people in text
        assert records in text
        assert nature in text.lower()
        assert BRIEF.contact in text
        assert BRIEF.measures_taken[0] in text
        assert BRIEF.measures_proposed[0] in text
        assert "Premier accès frauduleux" in text
        assert placeholder in text
        assert "2024" in text  # combination with the 2024 leaks
        assert ("article 9" if lang == "fr" else "Article 9") in text  # care lines were seen


@pytest.mark.parametrize("lang", ["fr", "en"])
def test_the_reasons_for_the_delay_appear_only_past_72_hours_or_when_given(lang: str) -> None:
    heading = "Motifs du retard" if lang == "fr" else "Reasons for the delay"
    placeholder = "[à compléter : motifs du retard]" if lang == "fr" else "[to fill in: reasons for the delay]"

    on_time = documents.art33_notification(BRIEF, FACTS, lang=lang, now=AWARE + timedelta(hours=71))
    assert heading not in pdf_text(on_time.pdf)
    assert heading not in html_text(on_time.html)

    late = documents.art33_notification(BRIEF, FACTS, lang=lang, now=AWARE + timedelta(hours=73))
    for text in (pdf_text(late.pdf), html_text(late.html)):
        assert heading in text
        assert placeholder in text

    reason = "L'hébergeur n'a transmis ses journaux que le 5e jour."
    explained = documents.art33_notification(
        replace(BRIEF, delay_reason=reason), FACTS, lang=lang, now=AWARE + timedelta(hours=10)
    )
    for text in (pdf_text(explained.pdf), html_text(explained.html)):
        assert heading in text
        assert reason in text
        assert placeholder not in text


@pytest.mark.parametrize("lang", ["fr", "en"])
def test_the_art34_assessment_recommends_letters_when_identity_or_health_was_seen(lang: str) -> None:
    recommended = "l'envoi de lettres est recommandé" if lang == "fr" else "letters are recommended"
    decides = "Le responsable de traitement décide" if lang == "fr" else "The controller decides"
    for facts in (FACTS, insurer(IDENTITY), insurer(HEALTH)):
        assessment = documents.art34_assessment(BRIEF, facts, lang=lang)
        for text in (pdf_text(assessment.pdf), html_text(assessment.html)):
            assert recommended in text
            assert decides in text
            assert "[ ]" in text
    text = pdf_text(documents.art34_assessment(BRIEF, FACTS, lang=lang).pdf)
    per_category = (
        ("Données d'identité", "Données de santé", "Seulement des données de couverture")
        if lang == "fr"
        else ("Identity data", "Health data", "Coverage data only")
    )
    for category in per_category:
        assert re.search(re.escape(category) + r" \([^)]*\) ?: 1 person", text), category


@pytest.mark.parametrize("lang", ["fr", "en"])
def test_the_art34_assessment_says_why_letters_may_not_be_required(lang: str) -> None:
    coverage_only = documents.art34_assessment(BRIEF, insurer(COVERAGE), lang=lang)
    not_required = "pourraient ne pas être requises" if lang == "fr" else "Letters may not be required"
    recommended = "l'envoi de lettres est recommandé" if lang == "fr" else "letters are recommended"
    for text in (pdf_text(coverage_only.pdf), html_text(coverage_only.html)):
        assert not_required in text
        assert recommended not in text
        assert ("Le responsable de traitement décide" if lang == "fr" else "The controller decides") in text

    nothing_in_clear = documents.art34_assessment(BRIEF, insurer(), lang=lang)
    text = pdf_text(nothing_in_clear.pdf)
    assert ("inintelligibles" if lang == "fr" else "unintelligible") in text
    assert ("article 34, paragraphe 3, a)" if lang == "fr" else "Article 34(3)(a)") in text

    # Keys lost: encrypted data counts as readable, whatever was seen in clear.
    keys_lost = documents.art34_assessment(replace(BRIEF, keys_compromised=True), insurer(COVERAGE), lang=lang)
    assert recommended in pdf_text(keys_lost.pdf)


@pytest.mark.parametrize("lang", ["fr", "en"])
def test_one_letter_per_disclosed_person_speaking_of_them_alone(lang: str) -> None:
    letters = documents.letters(BRIEF, FACTS, lang=lang)
    assert [(letter.member_number, letter.birth_rank) for letter in letters] == [
        (p.member_number, p.birth_rank) for p in PEOPLE
    ]
    assert len({letter.filename for letter in letters}) == len(PEOPLE)
    for letter, person in zip(letters, PEOPLE, strict=True):
        assert letter.beneficiary_id == str(person.beneficiary_id)
        others = [p for p in PEOPLE if p is not person]
        only_theirs = set().union(*(p.fields for p in others)) - person.fields
        for text in (pdf_text(letter.pdf), html_text(letter.html)):
            own = f"Adhérent n° {person.member_number}, rang 0{person.birth_rank}"
            assert (own if lang == "fr" else f"Member no. {person.member_number}, rank 0{person.birth_rank}") in text
            for item in person.fields:
                assert FIELD_LABELS[item][lang] in text
            for item in only_theirs:
                assert FIELD_LABELS[item][lang] not in text, (person.member_number, item)
            for other in [*others, TRIED]:
                assert other.member_number not in text
            assert DESCRIPTION not in text  # incident-wide words (and totals) stay out of letters
            assert "412" not in text
            assert "cybermalveillance.gouv.fr" in text
            assert "33700" in text
            assert BRIEF.contact in text
            if lang == "fr":
                assert "Ce qui a été vu" in text
                assert "What was seen" not in text
            else:
                assert "What was seen" in text


def test_letter_names_stay_unique_when_member_numbers_do_not_fit_a_file_name() -> None:
    unknown = [replace(COVERAGE, beneficiary_id=uuid.uuid4(), member_number="?") for _ in range(2)]
    twice = [replace(HEALTH, beneficiary_id=uuid.uuid4()) for _ in range(2)]
    facts = insurer(*unknown, *twice)
    names = [letter.filename for letter in documents.letters(BRIEF, facts, lang="en")]
    assert len(set(names)) == 4
    assert all(re.fullmatch(r"letter-[A-Za-z0-9-]+-en\.pdf", name) for name in names)
    archive = zipfile.ZipFile(io.BytesIO(documents.bundle(BRIEF, facts, now=AWARE)))
    assert len([n for n in archive.namelist() if n.startswith("letters/fr/") and n.endswith(".pdf")]) == 4


def test_no_letter_for_the_attempted_only() -> None:
    facts = insurer()
    assert documents.letters(BRIEF, facts, lang="fr") == []
    assert documents.recipients_csv(facts, lang="fr").decode("utf-8").splitlines() == [
        "member_number,birth_rank,letter,fields,first_seen,last_seen,records"
    ]


@pytest.mark.parametrize("lang", ["fr", "en"])
def test_the_recipients_csv_matches_the_letters(lang: str) -> None:
    letters = documents.letters(BRIEF, FACTS, lang=lang)
    rows = list(csv.DictReader(io.StringIO(documents.recipients_csv(FACTS, lang=lang).decode("utf-8"))))
    assert [(r["member_number"], int(r["birth_rank"]), r["letter"]) for r in rows] == [
        (letter.member_number, letter.birth_rank, letter.filename) for letter in letters
    ]
    for row, person in zip(rows, PEOPLE, strict=True):
        assert set(row["fields"].split(";")) == {str(f) for f in person.fields}
        assert datetime.fromisoformat(row["first_seen"]) == person.first_seen
        assert datetime.fromisoformat(row["last_seen"]) == person.last_seen
        assert int(row["records"]) == person.records


def test_the_bundle_holds_every_file_once_with_its_manifest() -> None:
    now = AWARE + timedelta(hours=30)
    archive = zipfile.ZipFile(io.BytesIO(documents.bundle(BRIEF, FACTS, now=now)))
    names = archive.namelist()
    assert len(names) == len(set(names))
    assert names[-1] == "MANIFEST.json"
    manifest = json.loads(archive.read("MANIFEST.json"))
    assert manifest["incident"] == BRIEF.reference
    assert manifest["insurer_amc_number"] == FACTS.amc_number
    assert datetime.fromisoformat(manifest["generated_at"]) == now
    listed = {entry["path"]: entry for entry in manifest["files"]}
    assert set(listed) == set(names) - {"MANIFEST.json"}
    for path, entry in listed.items():
        data = archive.read(path)
        assert entry["size"] == len(data)
        assert entry["sha256"] == hashlib.sha256(data).hexdigest()

    expected = {"facts.json", "recipients-fr.csv", "recipients-en.csv"}
    for lang in ("fr", "en"):
        for stem in ("processor-notice", "art33-notification", "art34-assessment"):
            expected |= {f"{stem}-{lang}.html", f"{stem}-{lang}.pdf"}
        for letter in documents.letters(BRIEF, FACTS, lang=lang):
            stem = letter.filename.removesuffix(".pdf")
            expected |= {f"letters/{lang}/{stem}.html", f"letters/{lang}/{letter.filename}"}
            assert archive.read(f"letters/{lang}/{letter.filename}") == letter.pdf
            assert archive.read(f"letters/{lang}/{stem}.html").decode("utf-8") == letter.html
    assert set(listed) == expected

    facts = json.loads(archive.read("facts.json"))
    assert facts["people"] == 3
    assert facts["records"] == 6
    assert facts["attempted_people"] == 1
    assert facts["people_per_field"]["coverage_status"] == 2
    assert facts["people_per_channel"] == {"fhir": 1, "pro_api": 1, "pro_portal": 1}
    # Same facts, same moment: same bytes.
    assert documents.bundle(BRIEF, FACTS, now=now) == documents.bundle(BRIEF, FACTS, now=now)


def test_html_is_autoescaped() -> None:
    hostile = insurer(IDENTITY, name="Mutuelle <script>alert(1)</script>")
    pages = [d.html for d in all_documents("fr")]  # the well-behaved name, for contrast
    assert all("<script" not in page for page in pages)
    for page in [
        documents.processor_notice(BRIEF, hostile, lang="fr").html,
        documents.art33_notification(BRIEF, hostile, lang="en", now=AWARE).html,
        documents.art34_assessment(BRIEF, hostile, lang="fr").html,
        documents.letters(BRIEF, hostile, lang="en")[0].html,
    ]:
        assert "<script" not in page
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_an_unknown_language_or_nature_is_refused() -> None:
    with pytest.raises(ValueError, match="lang"):
        documents.processor_notice(BRIEF, FACTS, lang="de")
    with pytest.raises(ValueError, match="nature"):
        replace(BRIEF, nature=frozenset({"secrecy"}))
