"""The beneficiary's portal: the incidents that concern me (``/me/incidents``).

For each incident whose scope names the person: what of theirs was seen (or that it was only tried,
nothing shown), through which channel, when, and what to do. The facts come from the access log by
way of the incident's scope (``incidents_of_beneficiary``); the words are the page's.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from fastapi import Request
from fastapi.responses import HTMLResponse

from rempart.audit.disclosures import FIELD_LABELS, DataField
from rempart.identity.deps import AnyCaller, requires
from rempart.identity.errors import PermissionDenied
from rempart.identity.permissions import Permission
from rempart.identity.portal import ViewerDep
from rempart.incidents.service import MyIncident, incidents_of_beneficiary
from rempart.web import i18n
from rempart.web.deps import SessionDep
from rempart.web.i18n import _
from rempart.web.pages import PageRouter, render

router = PageRouter()

# Each channel as the person would say it (an English message id each).
CHANNEL_WORDS: dict[str, str] = {
    "pro_api": _("a health professional's billing software"),
    "pro_portal": _("a health professional's portal"),
    "fhir": _("a health professional's software (FHIR)"),
    "backoffice": _("your insurer's back office"),
    "insurer_api": _("your insurer's software"),
    "beneficiary_portal": _("your own space"),
    "security_console": _("Rempart's security console"),
    "cli": _("Rempart's operators"),
    "batch": _("an automatic processing"),
}


@dataclass(frozen=True)
class IncidentLine:
    reference: str
    title: str
    aware_at: datetime
    seen: bool  # False: only tried, nothing of the person's was shown
    what: list[str]  # the fields' labels, in the page's language
    channels: list[str]  # English message ids
    first_seen: datetime | None
    last_seen: datetime | None
    records: int
    nir_seen: bool


def _line(mine: MyIncident, lang: str) -> IncidentLine:
    known = {field.value for field in DataField}
    fields = [DataField(f) for f in mine.fields if f in known]
    return IncidentLine(
        reference=mine.reference,
        title=mine.title,
        aware_at=mine.aware_at,
        seen=mine.disclosed,
        what=[FIELD_LABELS[f][lang] for f in fields],
        channels=[CHANNEL_WORDS.get(c, c) for c in mine.channels],
        first_seen=mine.first_seen,
        last_seen=mine.last_seen,
        records=mine.records,
        nir_seen=mine.disclosed and DataField.NIR in fields,
    )


@router.page("/me/incidents", dependencies=[requires(Permission.ME_ACCESS_LOG_READ)])
def my_incidents(*, request: Request, viewer: ViewerDep, caller: AnyCaller, session: SessionDep) -> HTMLResponse:
    """Was I affected by a security incident, what of mine was seen, and what to do."""
    if caller.insurer_id is None or caller.beneficiary_id is None:
        raise PermissionDenied("only an insured person has this view")
    lang = "en" if i18n.language_of(request) == "en" else "fr"
    mine = incidents_of_beneficiary(session, insurer_id=caller.insurer_id, beneficiary_id=caller.beneficiary_id)
    return render(request, "beneficiary/incidents.html", viewer=viewer, incidents=[_line(m, lang) for m in mine])
