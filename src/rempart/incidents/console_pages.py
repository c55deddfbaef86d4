"""The security console: incidents with their 72-hour clock (``/console/incidents``).

The list shows each incident's clock; an incident's page shows, per insurer concerned, the people
and records affected (as the access log counted them), what is still missing before the Art. 33
notification, and the timeline. Opening an incident (by hand, or from an alert) is a form; the
scope, the facts and the documents go on through the API and the CLI.
"""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Form, Request
from fastapi.responses import HTMLResponse, Response

from rempart.errors import NotFound, ValidationFailed
from rempart.identity.context import IdentityDep
from rempart.identity.deps import FORM_CSRF, AnyCaller, requires
from rempart.identity.errors import NotSignedIn
from rempart.identity.permissions import Permission
from rempart.identity.portal import ViewerDep
from rempart.identity.principal import Principal
from rempart.incidents.clock import checklist, clock_of, do_record_notification
from rempart.incidents.models import ActionKind, IncidentStatus
from rempart.incidents.service import (
    NATURES,
    access_incident,
    do_open_incident,
    do_update_incident,
    recent_incidents,
)
from rempart.incidents.timeline import timeline
from rempart.web.deps import SessionDep
from rempart.web.i18n import _
from rempart.web.pages import PageRouter, Viewer, render, see_other

router = PageRouter()

MANAGE = requires(Permission.SECURITY_INCIDENT_MANAGE)

STAGE_WORDS = {
    "running": _("Running"),
    "48h": _("Past 48 hours"),
    "66h": _("Past 66 hours: notify now"),
    "late": _("Past 72 hours: late"),
    "done": _("Notified"),
}
STATUS_WORDS = {
    IncidentStatus.OPEN.value: _("Being investigated"),
    IncidentStatus.CONTAINED.value: _("Contained"),
    IncidentStatus.CLOSED.value: _("Incident closed"),
}
NATURE_WORDS = {
    "confidentiality": _("Confidentiality (data seen by someone who should not)"),
    "integrity": _("Integrity (data changed)"),
    "availability": _("Availability (service or data lost)"),
}
# What ``incidents.clock.checklist`` says is missing, in the reader's language.
MISSING_WORDS = {
    "measures taken": _("measures taken"),
    "measures proposed": _("measures proposed"),
    "processor's notice to the insurer": _("processor's notice to the insurer"),
    "Art. 33 notification filed by the insurer": _("Art. 33 notification filed by the insurer"),
    "the insurer's Art. 34 decision (letters or not)": _("the insurer's Art. 34 decision (letters or not)"),
    "reasons for the delay (Art. 33(1))": _("reasons for the delay (Art. 33(1))"),
}
LETTERS_WORDS = {
    "pending": _("Not decided yet"),
    "send": _("Letters to be sent"),
    "not_required": _("Letters not required"),
}
ENTRY_WORDS = {
    "opened": _("Opened"),
    "scope_added": _("Scope widened"),
    "facts_computed": _("Facts computed"),
    "contained": _("Contained"),
    "notice_sent": _("Notice sent"),
    "authority_notified": _("Authority notified"),
    "letters_decided": _("Art. 34 decision"),
    "exported": _("Documents exported"),
    "note": _("Note"),
    "closed": _("Incident closed"),
    "containment": _("Containment"),
    "kill_switch": _("Kill switch"),
    "key_revoked": _("Key revoked"),
}
DONE = {
    "updated": _("The incident was updated."),
    "notice-sent": _("The processor's notice to the insurer is recorded as sent."),
}
WORDS = {
    "stage": STAGE_WORDS,
    "status": STATUS_WORDS,
    "nature": NATURE_WORDS,
    "missing": MISSING_WORDS,
    "letters": LETTERS_WORDS,
    "entry": ENTRY_WORDS,
}


def _operator(caller: Principal) -> uuid.UUID:
    if caller.account_id is None:
        raise NotSignedIn("sign in with a passkey")
    return caller.account_id


def _hours(seconds: float) -> tuple[int, int]:
    minutes = int(abs(seconds)) // 60
    return minutes // 60, minutes % 60


@router.page("/console/incidents", dependencies=[MANAGE])
def incidents_page(request: Request, viewer: ViewerDep, session: SessionDep, identity: IdentityDep) -> HTMLResponse:
    now = identity.clock()
    rows = []
    for incident in recent_incidents(session, limit=100):
        clock = clock_of(incident, now, done=incident.status is IncidentStatus.CLOSED)
        rows.append({"incident": incident, "clock": clock, "left": _hours(clock.left.total_seconds())})
    return render(request, "console/incidents.html", viewer=viewer, rows=rows, words=WORDS)


def _form(
    request: Request,
    viewer: Viewer,
    *,
    values: dict[str, object],
    errors: dict[str, str] | None = None,
    status: int = 200,
) -> HTMLResponse:
    return render(
        request,
        "console/incident_new.html",
        viewer=viewer,
        status=status,
        values=values,
        errors=errors or {},
        natures=NATURES,
        words=WORDS,
    )


@router.page("/console/incidents/new", dependencies=[MANAGE])
def new_incident(request: Request, viewer: ViewerDep, alert: uuid.UUID | None = None) -> HTMLResponse:
    values: dict[str, object] = {"alert_id": str(alert) if alert else "", "nature": ["confidentiality"]}
    return _form(request, viewer, values=values)


@router.post("/console/incidents", dependencies=[FORM_CSRF, MANAGE], response_class=HTMLResponse)
def open_incident(
    *,
    request: Request,
    viewer: ViewerDep,
    caller: AnyCaller,
    session: SessionDep,
    identity: IdentityDep,
    title: Annotated[str, Form(max_length=1000)] = "",
    contact: Annotated[str, Form(max_length=1000)] = "",
    description: Annotated[str, Form(max_length=10_000)] = "",
    nature: Annotated[list[str] | None, Form()] = None,
    alert_id: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    chosen = [n for n in (nature or []) if n in NATURES]
    values: dict[str, object] = {
        "title": title[:200],
        "contact": contact[:300],
        "description": description[:5000],
        "nature": chosen,
        "alert_id": alert_id[:36],
    }
    errors: dict[str, str] = {}
    if not title.strip() or len(title.strip()) > 200:
        errors["title"] = _("Give the incident a title of 1 to 200 characters.")
    if not contact.strip() or len(contact.strip()) > 300:
        errors["contact"] = _("Name the contact point for the insurers and the authority (1 to 300 characters).")
    if not chosen:
        errors["nature"] = _("Choose at least one nature of the breach.")
    alert: uuid.UUID | None = None
    if alert_id.strip():
        try:
            alert = uuid.UUID(alert_id.strip())
        except ValueError:
            errors["title"] = errors.get("title") or _("The alert this incident comes from was not found.")
    if not errors:
        try:
            incident = do_open_incident(
                session,
                title=title,
                nature=chosen,
                contact=contact,
                description=description,
                operator_id=_operator(caller),
                now=identity.clock(),
                alert_id=alert,
            )
        except NotFound:
            errors["title"] = _("The alert this incident comes from was not found.")
        except ValidationFailed:
            errors["title"] = _("The incident could not be opened with these details: check them.")
        else:
            return see_other(f"/console/incidents/{incident.id}")
    return _form(request, viewer, values=values, errors=errors, status=422)


@router.page("/console/incidents/{incident_id}", dependencies=[MANAGE])
def incident_page(
    *,
    request: Request,
    incident_id: uuid.UUID,
    viewer: ViewerDep,
    session: SessionDep,
    identity: IdentityDep,
    done: str | None = None,
) -> HTMLResponse:
    now = identity.clock()
    incident = access_incident(session, incident_id)
    clock = clock_of(incident, now, done=incident.status is IncidentStatus.CLOSED)
    parts = checklist(session, incident, now=now)
    entries = timeline(session, incident)
    return render(
        request,
        "console/incident.html",
        viewer=viewer,
        incident=incident,
        clock=clock,
        left=_hours(clock.left.total_seconds()),
        parts=parts,
        totals={"people": sum(p.people for p in parts), "records": sum(p.records for p in parts)},
        entries=entries,
        natures=[n for n in incident.nature.split(",") if n],
        words=WORDS,
        now=now,
        done=DONE.get(done or ""),
    )


def _lines(text: str) -> list[str]:
    return [line.strip()[:500] for line in text.splitlines() if line.strip()][:50]


@router.post("/console/incidents/{incident_id}", dependencies=[FORM_CSRF, MANAGE])
def update_incident(
    *,
    incident_id: uuid.UUID,
    viewer: ViewerDep,
    caller: AnyCaller,
    session: SessionDep,
    identity: IdentityDep,
    measures_taken: Annotated[str, Form(max_length=20_000)] = "",
    measures_proposed: Annotated[str, Form(max_length=20_000)] = "",
    delay_reason: Annotated[str, Form(max_length=5000)] = "",
    status: Annotated[str, Form(max_length=20)] = "",
    note: Annotated[str, Form(max_length=5000)] = "",
) -> Response:
    """The measures (one per line), the reasons for a delay, a note, and the incident contained or closed."""
    wanted = IncidentStatus(status) if status in {s.value for s in IncidentStatus} else None
    do_update_incident(
        session,
        incident_id=incident_id,
        operator_id=_operator(caller),
        now=identity.clock(),
        measures_taken=_lines(measures_taken),
        measures_proposed=_lines(measures_proposed),
        delay_reason=delay_reason[:2000],
        status=wanted,
        note=note.strip()[:2000] or None,
    )
    return see_other(f"/console/incidents/{incident_id}?done=updated")


@router.post("/console/incidents/{incident_id}/insurers/{insurer_id}/notice", dependencies=[FORM_CSRF, MANAGE])
def notice_sent(
    *,
    incident_id: uuid.UUID,
    insurer_id: uuid.UUID,
    viewer: ViewerDep,
    caller: AnyCaller,
    session: SessionDep,
    identity: IdentityDep,
) -> Response:
    """The processor's notice to this insurer was sent (Art. 33(2)): recorded on its clock."""
    do_record_notification(
        session,
        incident_id=incident_id,
        insurer_id=insurer_id,
        step=ActionKind.NOTICE_SENT,
        now=identity.clock(),
        actor_id=_operator(caller),
    )
    return see_other(f"/console/incidents/{incident_id}?done=notice-sent")
