"""The breach-response documents, drafted per insurer (the controller) from an incident's facts:

- the processor's notice to the insurer, "without undue delay" (GDPR Art. 33(2));
- a pre-filled notification to the supervisory authority (Art. 33(3)), for the insurer to complete
  and file, with the reasons for the delay once 72 hours from awareness have passed (Art. 33(1));
- the Art. 34 assessment: are letters to the people required, reasoned from what was disclosed;
- one Art. 34 letter per disclosed person, addressed by member number and birth rank (Rempart holds
  no names or addresses: the insurer merges the letters with its own address file), and the CSV
  of their recipients;
- the bundle: all of it, in French and English, with the facts and a manifest of SHA-256 hashes.

Every document is HTML (self-contained) and PDF with the same words. A letter speaks of its own
person only: their fields, channels, dates and records, never another member nor incident totals.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
import zipfile
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from rempart.audit.disclosures import HEALTH_FIELDS as SPECIAL_FIELDS
from rempart.audit.disclosures import IDENTITY_FIELDS, DataField
from rempart.incidents.facts import HEALTH_FIELDS, InsurerFacts, PersonFacts
from rempart.incidents.render import (
    LANGUAGES,
    NATURE_LABELS,
    NATURES,
    channel_labels,
    check_language,
    field_labels,
    html_and_pdf,
    in_order,
    moment,
    number,
)

# Art. 33(1): the controller notifies within 72 hours of becoming aware.
NOTIFICATION_DELAY: Final = timedelta(hours=72)
# Art. 9 data: care lines, and a prior approval (which says which care is planned).
_HEALTH: Final = HEALTH_FIELDS | SPECIAL_FIELDS
_SAFE = re.compile(r"[^A-Za-z0-9_-]+")

TITLES: Final[dict[str, dict[str, str]]] = {
    "processor-notice": {
        "fr": "Notification de violation de données du sous-traitant au responsable de traitement",
        "en": "Processor's notice of a personal data breach to the controller",
    },
    "art33-notification": {
        "fr": "Notification de violation de données à caractère personnel à la CNIL (projet)",
        "en": "Notification of a personal data breach to the CNIL (draft)",
    },
    "art34-assessment": {
        "fr": "Communication aux personnes concernées : évaluation (article 34 du RGPD)",
        "en": "Communication to the data subjects: assessment (GDPR Article 34)",
    },
    "letter": {
        "fr": "Information sur un incident de sécurité concernant vos données",
        "en": "Information about a security incident involving your data",
    },
}


@dataclass(frozen=True)
class IncidentBrief:
    """What the operators know of the incident itself; the facts say whom it touched."""

    reference: str  # e.g. "INC-2026-0007"
    title: str
    nature: frozenset[str]  # subset of confidentiality, integrity, availability
    description: str
    detected_at: datetime
    aware_at: datetime  # the 72-hour clock runs from here
    contained_at: datetime | None
    contact: str  # the processor's contact point: name, e-mail, phone
    measures_taken: tuple[str, ...]
    measures_proposed: tuple[str, ...]
    timeline: tuple[tuple[datetime, str], ...]
    delay_reason: str | None
    notice_sent_at: datetime | None
    keys_compromised: bool  # whether encryption keys were among what was compromised
    processor: str = "Rempart"

    def __post_init__(self) -> None:
        unknown = set(self.nature) - set(NATURES)
        if unknown or not self.nature:
            raise ValueError(f"nature is a non-empty subset of {NATURES}")


@dataclass(frozen=True)
class Document:
    name: str  # file stem, e.g. "art33-notification-fr"
    title: str
    html: str
    pdf: bytes


@dataclass(frozen=True)
class Letter:
    member_number: str
    birth_rank: int
    beneficiary_id: str
    html: str
    pdf: bytes
    filename: str  # the PDF's name; the HTML has the same stem


def _health_seen(person: PersonFacts) -> bool:
    return bool(person.fields & _HEALTH)


def _identity_seen(person: PersonFacts) -> bool:
    return bool(person.fields & IDENTITY_FIELDS)


def _incident(brief: IncidentBrief, insurer: InsurerFacts, lang: str) -> dict[str, Any]:
    """What the notice, the notification and the assessment say of the incident and of the insurer's
    people: incident-wide counts, for the controller and the authority (never for a letter)."""
    per_field = insurer.people_per_field()
    per_channel = insurer.people_per_channel()
    disclosed = insurer.disclosed
    return {
        "reference": brief.reference,
        "incident_title": brief.title,
        "natures": [NATURE_LABELS[n][lang] for n in NATURES if n in brief.nature],
        "description": brief.description,
        "detected": moment(brief.detected_at, lang),
        "aware": moment(brief.aware_at, lang),
        "contained": moment(brief.contained_at, lang),
        "notice_sent": moment(brief.notice_sent_at, lang),
        "contact": brief.contact,
        "processor": brief.processor,
        "measures_taken": brief.measures_taken,
        "measures_proposed": brief.measures_proposed,
        "timeline": [(moment(when, lang), what) for when, what in sorted(brief.timeline, key=lambda t: t[0])],
        "keys_compromised": brief.keys_compromised,
        "insurer_name": insurer.insurer_name,
        "amc": insurer.amc_number,
        "people": number(insurer.people, lang),
        "people_count": insurer.people,
        "records": number(insurer.records, lang),
        "attempted": number(len(insurer.attempted), lang),
        "unattributed": number(insurer.unattributed_attempts, lang),
        "fields": [(field_labels([f], lang)[0], number(per_field[f], lang)) for f in in_order(per_field)],
        "channels": [(channel_labels([c], lang)[0], number(per_channel[c], lang)) for c in in_order(per_channel)],
        "first_seen": moment(min((p.first_seen for p in disclosed), default=None), lang),
        "last_seen": moment(max((p.last_seen for p in disclosed), default=None), lang),
        "identity_people": number(sum(1 for p in disclosed if _identity_seen(p)), lang),
        "health_people": number(sum(1 for p in disclosed if _health_seen(p)), lang),
        "other_people": number(sum(1 for p in disclosed if not (_identity_seen(p) or _health_seen(p))), lang),
        "identity_seen": any(_identity_seen(p) for p in disclosed),
        "health_seen": any(_health_seen(p) for p in disclosed),
        "nir_seen": DataField.NIR in per_field,
    }


def _document(kind: str, brief: IncidentBrief, *, lang: str, created: datetime, **context: Any) -> Document:
    check_language(lang)
    title = TITLES[kind][lang]
    html, pdf = html_and_pdf(kind, lang=lang, title=title, created=created, **context)
    return Document(name=f"{kind}-{lang}", title=title, html=html, pdf=pdf)


def processor_notice(brief: IncidentBrief, insurer: InsurerFacts, *, lang: str) -> Document:
    """The processor's notice to the insurer, without undue delay (Art. 33(2))."""
    check_language(lang)
    created = brief.notice_sent_at or brief.aware_at
    return _document("processor-notice", brief, lang=lang, created=created, **_incident(brief, insurer, lang))


def is_late(brief: IncidentBrief, *, now: datetime) -> bool:
    """Past 72 hours from awareness (Art. 33(1)): the notification gives the reasons for the delay."""
    return now - brief.aware_at > NOTIFICATION_DELAY


def art33_notification(brief: IncidentBrief, insurer: InsurerFacts, *, lang: str, now: datetime) -> Document:
    """A pre-filled notification to the CNIL (Art. 33(3)) for the insurer to complete and file."""
    check_language(lang)
    late = is_late(brief, now=now)
    return _document(
        "art33-notification",
        brief,
        lang=lang,
        created=now,
        now=moment(now, lang),
        deadline=moment(brief.aware_at + NOTIFICATION_DELAY, lang),
        late=late,
        delay_section=late or brief.delay_reason is not None,
        delay_reason=brief.delay_reason,
        **_incident(brief, insurer, lang),
    )


def art34_outcome(brief: IncidentBrief, insurer: InsurerFacts) -> str:
    """What the facts point to, for the controller to decide (Art. 34):

    - ``"recommended"``: identity or health data was disclosed, or the encryption keys were
      compromised: a high risk is likely, letters are recommended;
    - ``"low-risk"``: only coverage data (status, guarantees, ceilings, third-party payment...) was
      seen, by someone who already had to know the member number: letters may not be required;
    - ``"unintelligible"``: nothing was disclosed in clear and the keys are safe: whatever was taken
      is encrypted and unintelligible (Art. 34(3)(a)).
    """
    if brief.keys_compromised or insurer.identity_seen or any(_health_seen(p) for p in insurer.disclosed):
        return "recommended"
    if insurer.disclosed:
        return "low-risk"
    return "unintelligible"


def art34_assessment(brief: IncidentBrief, insurer: InsurerFacts, *, lang: str) -> Document:
    """Whether letters to the people are required (Art. 34(1)), reasoned from the facts."""
    check_language(lang)
    created = brief.notice_sent_at or brief.aware_at
    context = _incident(brief, insurer, lang)
    return _document(
        "art34-assessment", brief, lang=lang, created=created, outcome=art34_outcome(brief, insurer), **context
    )


def letter_filenames(insurer: InsurerFacts, *, lang: str) -> list[str]:
    """The letters' PDF names, one per disclosed person, unique within the bundle: by member number
    and birth rank, plus the start of the beneficiary's id where that is not enough (a member number
    that does not fit a file name, or twice the same card)."""
    word = "lettre" if lang == "fr" else "letter"
    stems = []
    for person in insurer.disclosed:
        member = _SAFE.sub("-", person.member_number).strip("-")
        stem = f"{word}-{member or 'member'}-{person.birth_rank:02d}"
        if member != person.member_number:
            stem += f"-{person.beneficiary_id.hex[:8]}"
        stems.append(stem)
    for index, person in enumerate(insurer.disclosed):
        if stems.count(stems[index]) > 1:
            stems[index] += f"-{person.beneficiary_id.hex}"
    return [f"{stem}-{lang}.pdf" for stem in stems]


def _letter(brief: IncidentBrief, insurer: InsurerFacts, person: PersonFacts, lang: str, filename: str) -> Letter:
    # Only this person's facts and the incident's own words (not its description, which may speak
    # of others): a letter never names, counts or describes anyone else.
    title = TITLES["letter"][lang]
    html, pdf = html_and_pdf(
        "letter",
        lang=lang,
        title=title,
        created=brief.notice_sent_at or brief.aware_at,
        reference=brief.reference,
        processor=brief.processor,
        contact=brief.contact,
        insurer_name=insurer.insurer_name,
        amc=insurer.amc_number,
        member_number=person.member_number,
        birth_rank=f"{person.birth_rank:02d}",
        fields=field_labels(person.fields, lang),
        channels=channel_labels(person.channels, lang),
        first_seen=moment(person.first_seen, lang),
        last_seen=moment(person.last_seen, lang),
        records=number(person.records, lang),
        records_count=person.records,
        identity_seen=_identity_seen(person),
        health_seen=_health_seen(person),
        nir_seen=DataField.NIR in person.fields,
        measures_taken=brief.measures_taken,
        contained=moment(brief.contained_at, lang),
    )
    return Letter(
        member_number=person.member_number,
        birth_rank=person.birth_rank,
        beneficiary_id=str(person.beneficiary_id),
        html=html,
        pdf=pdf,
        filename=filename,
    )


def letters(brief: IncidentBrief, insurer: InsurerFacts, *, lang: str) -> list[Letter]:
    """One Art. 34 letter per disclosed person (the attempted-only get none: nothing of theirs was
    seen), in the facts' order: by member number, then birth rank."""
    check_language(lang)
    names = letter_filenames(insurer, lang=lang)
    return [_letter(brief, insurer, person, lang, name) for person, name in zip(insurer.disclosed, names, strict=True)]


def _iso(value: datetime) -> str:
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).astimezone(UTC).isoformat()


def recipients_csv(insurer: InsurerFacts, *, lang: str) -> bytes:
    """The letters' recipients, for the insurer's mail merge (UTF-8, with a header). No names:
    Rempart holds none; the insurer joins on member number and birth rank."""
    check_language(lang)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(["member_number", "birth_rank", "letter", "fields", "first_seen", "last_seen", "records"])
    for person, filename in zip(insurer.disclosed, letter_filenames(insurer, lang=lang), strict=True):
        writer.writerow(
            [
                person.member_number,
                person.birth_rank,
                filename,
                ";".join(sorted(str(f) for f in person.fields)),
                _iso(person.first_seen),
                _iso(person.last_seen),
                person.records,
            ]
        )
    return out.getvalue().encode("utf-8")


def facts_json(insurer: InsurerFacts) -> bytes:
    body = {
        "insurer_id": str(insurer.insurer_id),
        "amc_number": insurer.amc_number,
        "insurer_name": insurer.insurer_name,
        "people": insurer.people,
        "records": insurer.records,
        "attempted_people": len(insurer.attempted),
        "attempts": sum(a.attempts for a in insurer.attempted),
        "unattributed_attempts": insurer.unattributed_attempts,
        "people_per_field": {str(k): v for k, v in insurer.people_per_field().items()},
        "people_per_channel": {str(k): v for k, v in insurer.people_per_channel().items()},
        "disclosed": [
            {
                "member_number": p.member_number,
                "birth_rank": p.birth_rank,
                "fields": sorted(str(f) for f in p.fields),
                "channels": sorted(str(c) for c in p.channels),
                "records": p.records,
                "first_seen": _iso(p.first_seen),
                "last_seen": _iso(p.last_seen),
            }
            for p in insurer.disclosed
        ],
        "attempted": [
            {
                "member_number": a.member_number,
                "birth_rank": a.birth_rank,
                "attempts": a.attempts,
                "channels": sorted(str(c) for c in a.channels),
            }
            for a in insurer.attempted
        ],
    }
    return json.dumps(body, ensure_ascii=False, indent=2, sort_keys=True).encode("utf-8")


def bundle_files(brief: IncidentBrief, insurer: InsurerFacts, *, now: datetime) -> dict[str, bytes]:
    """Every file of the insurer's bundle but the manifest, by path."""
    files: dict[str, bytes] = {}
    for lang in LANGUAGES:
        for document in (
            processor_notice(brief, insurer, lang=lang),
            art33_notification(brief, insurer, lang=lang, now=now),
            art34_assessment(brief, insurer, lang=lang),
        ):
            files[f"{document.name}.html"] = document.html.encode("utf-8")
            files[f"{document.name}.pdf"] = document.pdf
        for letter in letters(brief, insurer, lang=lang):
            stem = letter.filename.removesuffix(".pdf")
            files[f"letters/{lang}/{stem}.html"] = letter.html.encode("utf-8")
            files[f"letters/{lang}/{letter.filename}"] = letter.pdf
        files[f"recipients-{lang}.csv"] = recipients_csv(insurer, lang=lang)
    files["facts.json"] = facts_json(insurer)
    return files


def bundle(brief: IncidentBrief, insurer: InsurerFacts, *, now: datetime) -> bytes:
    """A zip of the insurer's documents in both languages, its letters, their recipients, its facts
    and ``MANIFEST.json`` (every other file's SHA-256 and size), in a fixed order."""
    files = bundle_files(brief, insurer, now=now)
    manifest = {
        "incident": brief.reference,
        "insurer_amc_number": insurer.amc_number,
        "generated_at": _iso(now),
        "files": [
            {"path": path, "sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
            for path, data in sorted(files.items())
        ],
    }
    files["MANIFEST.json"] = json.dumps(manifest, ensure_ascii=False, indent=2).encode("utf-8")
    stamp = now.astimezone(UTC) if now.tzinfo else now
    date_time = (max(stamp.year, 1980), stamp.month, stamp.day, stamp.hour, stamp.minute, stamp.second)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for path in [*sorted(files.keys() - {"MANIFEST.json"}), "MANIFEST.json"]:
            info = zipfile.ZipInfo(path, date_time=date_time)
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, files[path])
    return out.getvalue()
