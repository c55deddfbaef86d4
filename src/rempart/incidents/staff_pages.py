"""The insurer's back office: the breach notices concerning the insurer's members — the 72-hour
clock of Art. 33, the counts, what is still missing, the bundle of documents and letters, and the
insurer's own steps (its Art. 33 notification filed, its Art. 34 decision on letters).

Another insurer's incident answers "not found", like a missing one."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Form, Request
from fastapi.responses import HTMLResponse, Response

from rempart.audit.models import ActorKind, Channel
from rempart.audit.service import Actor
from rempart.detection.deps import GuardedStaffCaller
from rempart.identity.context import IdentityDep
from rempart.identity.deps import FORM_CSRF, client_address, requires
from rempart.identity.permissions import Permission
from rempart.identity.portal import ViewerDep
from rempart.identity.principal import StaffPrincipal
from rempart.incidents.clock import InsurerChecklist, checklist, do_record_notification
from rempart.incidents.export import do_export_bundle
from rempart.incidents.models import ActionKind, Incident, LettersDecision
from rempart.incidents.service import IncidentNotFound, incidents_of_insurer
from rempart.web.deps import SessionDep
from rempart.web.i18n import _
from rempart.web.pages import PageRouter, Viewer, render, see_other

router = PageRouter()
READ = requires(Permission.INSURER_INCIDENT_READ)

# What ``checklist`` says is missing, as the insurer reads it.
MISSING_WORDS: dict[str, str] = {
    "measures taken": _("Rempart's account of the measures taken"),
    "measures proposed": _("Rempart's account of the measures proposed"),
    "processor's notice to the insurer": _("Rempart's notice to you as the processor"),
    "Art. 33 notification filed by the insurer": _("Your notification to the supervisory authority (Art. 33)"),
    "the insurer's Art. 34 decision (letters or not)": _("Your decision on letters to the people affected (Art. 34)"),
    "reasons for the delay (Art. 33(1))": _("The reasons for notifying after 72 hours (Art. 33(1))"),
}
STAGE_WORDS: dict[str, tuple[str, str]] = {
    "running": (_("Under way"), "ok"),
    "48h": (_("48 hours passed"), "warn"),
    "66h": (_("66 hours passed: notify now"), "bad"),
    "late": (_("Past 72 hours"), "bad"),
    "done": (_("Notified"), "ok"),
}
LETTERS_WORDS: dict[LettersDecision, str] = {
    LettersDecision.PENDING: _("Not decided yet"),
    LettersDecision.SEND: _("You send the letters"),
    LettersDecision.NOT_REQUIRED: _("Letters not required (Art. 34(3))"),
}
NATURE_WORDS: dict[str, str] = {
    "confidentiality": _("Confidentiality"),
    "integrity": _("Integrity"),
    "availability": _("Availability"),
}


def _own(session: SessionDep, insurer_id: uuid.UUID, incident_id: uuid.UUID) -> Incident:
    for incident in incidents_of_insurer(session, insurer_id=insurer_id):
        if incident.id == incident_id:
            return incident
    raise IncidentNotFound("no incident with this id")


def _hours(part: InsurerChecklist) -> int:
    return int(part.clock.left.total_seconds() // 3600)


@router.page("/insurer/incidents", dependencies=[READ])
def breach_list(
    request: Request, *, viewer: ViewerDep, staff: GuardedStaffCaller, session: SessionDep, identity: IdentityDep
) -> HTMLResponse:
    now = identity.clock()
    rows = []
    for incident in incidents_of_insurer(session, insurer_id=staff.insurer_id):
        (part,) = checklist(session, incident, now=now, insurer_id=staff.insurer_id)
        rows.append((incident, part, _hours(part)))
    return render(
        request,
        "backoffice/breach_list.html",
        viewer=viewer,
        rows=rows,
        stage_words=STAGE_WORDS,
    )


@router.page("/insurer/incidents/{incident_id}", dependencies=[READ])
def breach_detail(
    request: Request,
    *,
    incident_id: uuid.UUID,
    viewer: ViewerDep,
    staff: GuardedStaffCaller,
    session: SessionDep,
    identity: IdentityDep,
    done: str = "",
) -> HTMLResponse:
    return _detail(request, viewer, staff, session, identity, incident_id, done=done)


def _detail(  # noqa: PLR0917  (a page's own request, viewer, caller and session, as every handler has them)
    request: Request,
    viewer: Viewer,
    staff: StaffPrincipal,
    session: SessionDep,
    identity: IdentityDep,
    incident_id: uuid.UUID,
    *,
    done: str = "",
    letters_error: str = "",
) -> HTMLResponse:
    incident = _own(session, staff.insurer_id, incident_id)
    (part,) = checklist(session, incident, now=identity.clock(), insurer_id=staff.insurer_id)
    return render(
        request,
        "backoffice/breach_detail.html",
        viewer=viewer,
        status=422 if letters_error else 200,
        letters_error=letters_error,
        incident=incident,
        part=part,
        hours_left=_hours(part),
        stage_words=STAGE_WORDS,
        missing_words=MISSING_WORDS,
        letters_words=LETTERS_WORDS,
        nature_words=NATURE_WORDS,
        natures=[n for n in incident.nature.split(",") if n],
        done=done if done in {"art33", "art34"} else "",
    )


@router.page("/insurer/incidents/{incident_id}/bundle", dependencies=[READ])
def breach_bundle(
    request: Request, *, incident_id: uuid.UUID, staff: GuardedStaffCaller, session: SessionDep, identity: IdentityDep
) -> Response:
    """The insurer's zip: its documents in French and English, the letters, the recipients (recorded)."""
    _own(session, staff.insurer_id, incident_id)
    name, archive = do_export_bundle(
        session,
        incident_id=incident_id,
        insurer_id=staff.insurer_id,
        now=identity.clock(),
        actor=Actor(ActorKind.INSURER_STAFF, id=staff.account_id),
        channel=Channel.BACKOFFICE,
        device=staff.credential_ref,
        address=client_address(request),
    )
    return Response(
        archive, media_type="application/zip", headers={"Content-Disposition": f'attachment; filename="{name}"'}
    )


@router.post("/insurer/incidents/{incident_id}/art33", dependencies=[FORM_CSRF, READ])
def breach_art33(
    *, incident_id: uuid.UUID, staff: GuardedStaffCaller, session: SessionDep, identity: IdentityDep
) -> Response:
    """The insurer says it filed its Art. 33 notification with the supervisory authority."""
    _own(session, staff.insurer_id, incident_id)
    do_record_notification(
        session,
        incident_id=incident_id,
        insurer_id=staff.insurer_id,
        step=ActionKind.AUTHORITY_NOTIFIED,
        now=identity.clock(),
        actor_id=staff.account_id,
    )
    return see_other(f"/insurer/incidents/{incident_id}?done=art33")


@router.post("/insurer/incidents/{incident_id}/art34", dependencies=[FORM_CSRF, READ])
def breach_art34(
    request: Request,
    *,
    viewer: ViewerDep,
    incident_id: uuid.UUID,
    staff: GuardedStaffCaller,
    session: SessionDep,
    identity: IdentityDep,
    letters: Annotated[str, Form()] = "",
) -> Response:
    """The insurer's Art. 34 decision: it sends the letters, or they are not required."""
    _own(session, staff.insurer_id, incident_id)
    if letters not in {LettersDecision.SEND.value, LettersDecision.NOT_REQUIRED.value}:
        return _detail(
            request,
            viewer,
            staff,
            session,
            identity,
            incident_id,
            letters_error=_("Choose whether you send the letters or they are not required."),
        )
    do_record_notification(
        session,
        incident_id=incident_id,
        insurer_id=staff.insurer_id,
        step=ActionKind.LETTERS_DECIDED,
        now=identity.clock(),
        actor_id=staff.account_id,
        letters=LettersDecision(letters),
    )
    return see_other(f"/insurer/incidents/{incident_id}?done=art34")
