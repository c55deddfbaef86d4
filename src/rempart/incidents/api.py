"""Incidents: ``/api/v1/incidents`` for the security console; ``/api/v1/insurers/{id}/incidents``
for an insurer's staff (their own part: their counts, their clock, their bundle); and
``/api/v1/me/incidents`` for the insured person ("was I affected, and what of mine was seen")."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Request, Response

from rempart.audit.models import ActorKind, Channel
from rempart.audit.service import Actor
from rempart.detection.deps import GuardedStaffCaller
from rempart.errors import ValidationFailed
from rempart.identity.context import IdentityDep
from rempart.identity.deps import AnyCaller, client_address, requires
from rempart.identity.errors import PermissionDenied
from rempart.identity.permissions import Permission
from rempart.identity.principal import Principal
from rempart.incidents.clock import checklist, do_raise_deadline_alerts, do_record_notification
from rempart.incidents.export import do_export_bundle
from rempart.incidents.facts import ScopeSet
from rempart.incidents.logcheck import log_status
from rempart.incidents.models import ActionKind, IncidentStatus, LettersDecision
from rempart.incidents.schemas import (
    FactsOut,
    IncidentIn,
    IncidentOut,
    IncidentPatch,
    InsurerPartOut,
    MyIncidentOut,
    NotificationIn,
    ScopeIn,
)
from rempart.incidents.service import (
    IncidentNotFound,
    access_incident,
    do_add_scope,
    do_compute_facts,
    do_open_incident,
    do_update_incident,
    incidents_of_beneficiary,
    incidents_of_insurer,
    recent_incidents,
    scope_sets,
)
from rempart.incidents.timeline import timeline
from rempart.web.deps import RuntimeDep, SessionDep
from rempart.web.responses import json_response

router = APIRouter(tags=["incidents"])
MANAGE = requires(Permission.SECURITY_INCIDENT_MANAGE)
INSURER = requires(Permission.INSURER_INCIDENT_READ)
_STEPS = {
    "notice_sent": ActionKind.NOTICE_SENT,
    "authority_notified": ActionKind.AUTHORITY_NOTIFIED,
    "letters": ActionKind.LETTERS_DECIDED,
}


def _operator(caller: Principal) -> uuid.UUID:
    assert caller.account_id is not None  # security permissions belong to human accounts
    return caller.account_id


def _full(session: SessionDep, incident_id: uuid.UUID, now: object) -> IncidentOut:
    incident = access_incident(session, incident_id)
    return IncidentOut.of(
        incident,
        parts=checklist(session, incident, now=now),  # type: ignore[arg-type]
        entries=timeline(session, incident),
    )


@router.post("/api/v1/incidents", dependencies=[MANAGE], response_model=IncidentOut, status_code=201)
def open_incident(body: IncidentIn, caller: AnyCaller, session: SessionDep, identity: IdentityDep) -> Response:
    """Open an incident (from an alert: ``alert_id``); the 72-hour clock runs from ``aware_at``."""
    incident = do_open_incident(
        session,
        title=body.title,
        nature=body.nature,
        contact=body.contact,
        description=body.description,
        detected_at=body.detected_at,
        aware_at=body.aware_at,
        alert_id=body.alert_id,
        keys_compromised=body.keys_compromised,
        operator_id=_operator(caller),
        now=identity.clock(),
    )
    return json_response(_full(session, incident.id, identity.clock()), 201)


@router.get("/api/v1/incidents", dependencies=[MANAGE], response_model=list[IncidentOut])
def list_incidents(session: SessionDep, identity: IdentityDep) -> list[IncidentOut]:
    do_raise_deadline_alerts(session, now=identity.clock())
    return [IncidentOut.of(i) for i in recent_incidents(session)]


@router.get("/api/v1/incidents/{incident_id}", dependencies=[MANAGE], response_model=IncidentOut)
def get_incident(incident_id: uuid.UUID, session: SessionDep, identity: IdentityDep) -> Response:
    do_raise_deadline_alerts(session, now=identity.clock())
    return json_response(_full(session, incident_id, identity.clock()))


@router.patch("/api/v1/incidents/{incident_id}", dependencies=[MANAGE], response_model=IncidentOut)
def update_incident(
    incident_id: uuid.UUID, body: IncidentPatch, caller: AnyCaller, session: SessionDep, identity: IdentityDep
) -> Response:
    """Measures taken and proposed, reasons for a delay, containment, closing, a note."""
    do_update_incident(
        session,
        incident_id=incident_id,
        operator_id=_operator(caller),
        now=identity.clock(),
        description=body.description,
        measures_taken=body.measures_taken,
        measures_proposed=body.measures_proposed,
        delay_reason=body.delay_reason,
        keys_compromised=body.keys_compromised,
        status=IncidentStatus(body.status) if body.status else None,
        note=body.note,
    )
    return json_response(_full(session, incident_id, identity.clock()))


@router.post(
    "/api/v1/incidents/{incident_id}/scopes", dependencies=[MANAGE], response_model=IncidentOut, status_code=201
)
def add_scope(
    incident_id: uuid.UUID, body: ScopeIn, caller: AnyCaller, session: SessionDep, identity: IdentityDep
) -> Response:
    """Widen the scope: compromised accounts, API clients, practices or professionals, over a window."""
    try:
        scope = ScopeSet(
            since=body.since,
            until=body.until,
            actor_ids=frozenset(body.actor_ids),
            practice_ids=frozenset(body.practice_ids),
            professional_ids=frozenset(body.professional_ids),
            label=body.label,
        )
    except ValueError as exc:
        raise ValidationFailed(str(exc)) from None
    do_add_scope(session, incident_id=incident_id, scope=scope, operator_id=_operator(caller), now=identity.clock())
    return json_response(_full(session, incident_id, identity.clock()), 201)


@router.post("/api/v1/incidents/{incident_id}/facts", dependencies=[MANAGE], response_model=FactsOut)
def compute_facts(
    incident_id: uuid.UUID, caller: AnyCaller, session: SessionDep, runtime: RuntimeDep, identity: IdentityDep
) -> Response:
    """Compute (again) who was affected, from the access log, and check the log over the windows."""
    now = identity.clock()
    incident = access_incident(session, incident_id)
    log = log_status(
        runtime.engine, keys=runtime.signing_keys.public_keys(), sets=scope_sets(session, incident), now=now
    )
    facts = do_compute_facts(session, incident_id=incident_id, operator_id=_operator(caller), now=now, log=log)
    parts = checklist(session, access_incident(session, incident_id), now=now)
    return json_response(
        FactsOut(
            people=facts.people,
            events_examined=facts.events_examined,
            log_verified=log.verified,
            insurers=[InsurerPartOut.of(p) for p in parts],
        )
    )


def _bundle(
    request: Request, session: SessionDep, identity: IdentityDep, *, incident_id: uuid.UUID, insurer_id: uuid.UUID,
    actor: Actor, channel: Channel, device: str | None,
) -> Response:  # fmt: skip
    name, archive = do_export_bundle(
        session,
        incident_id=incident_id,
        insurer_id=insurer_id,
        now=identity.clock(),
        actor=actor,
        channel=channel,
        device=device,
        address=client_address(request),
    )
    return Response(
        archive, media_type="application/zip", headers={"Content-Disposition": f'attachment; filename="{name}"'}
    )


@router.get("/api/v1/incidents/{incident_id}/insurers/{insurer_id}/bundle", dependencies=[MANAGE])
def operator_bundle(
    *,
    incident_id: uuid.UUID, insurer_id: uuid.UUID, caller: AnyCaller, request: Request, session: SessionDep,
    identity: IdentityDep,
) -> Response:  # fmt: skip
    """The insurer's zip: notice, Art. 33 notification, Art. 34 assessment and letters, recipients, manifest."""
    actor = Actor(ActorKind.OPERATOR, id=_operator(caller))
    return _bundle(
        request, session, identity, incident_id=incident_id, insurer_id=insurer_id, actor=actor,
        channel=Channel.SECURITY_CONSOLE, device=caller.credential_ref,
    )  # fmt: skip


@router.post(
    "/api/v1/incidents/{incident_id}/insurers/{insurer_id}/notice", dependencies=[MANAGE], response_model=InsurerPartOut
)
def notice_sent(
    incident_id: uuid.UUID, insurer_id: uuid.UUID, caller: AnyCaller, session: SessionDep, identity: IdentityDep
) -> Response:
    """Record that the processor's notice went to the insurer."""
    do_record_notification(
        session, incident_id=incident_id, insurer_id=insurer_id, step=ActionKind.NOTICE_SENT,
        now=identity.clock(), actor_id=_operator(caller),
    )  # fmt: skip
    (part,) = checklist(session, access_incident(session, incident_id), now=identity.clock(), insurer_id=insurer_id)
    return json_response(InsurerPartOut.of(part))


# -- an insurer's staff: their own part ---------------------------------------------------------------


def _own(session: SessionDep, insurer_id: uuid.UUID, incident_id: uuid.UUID) -> None:
    if incident_id not in {i.id for i in incidents_of_insurer(session, insurer_id=insurer_id)}:
        raise IncidentNotFound("no incident with this id")


@router.get("/api/v1/insurers/{insurer_id}/incidents", dependencies=[INSURER], response_model=list[IncidentOut])
def insurer_incidents(
    insurer_id: uuid.UUID, staff: GuardedStaffCaller, session: SessionDep, identity: IdentityDep
) -> list[IncidentOut]:
    now = identity.clock()
    return [
        IncidentOut.of(i, parts=checklist(session, i, now=now, insurer_id=staff.insurer_id))
        for i in incidents_of_insurer(session, insurer_id=staff.insurer_id)
    ]


@router.get("/api/v1/insurers/{insurer_id}/incidents/{incident_id}", dependencies=[INSURER], response_model=IncidentOut)
def insurer_incident(
    insurer_id: uuid.UUID, incident_id: uuid.UUID, staff: GuardedStaffCaller, session: SessionDep, identity: IdentityDep
) -> Response:
    _own(session, staff.insurer_id, incident_id)
    incident = access_incident(session, incident_id)
    return json_response(
        IncidentOut.of(
            incident,
            parts=checklist(session, incident, now=identity.clock(), insurer_id=staff.insurer_id),
            entries=timeline(session, incident, insurer_id=staff.insurer_id),
        )
    )


@router.get("/api/v1/insurers/{insurer_id}/incidents/{incident_id}/bundle", dependencies=[INSURER])
def insurer_bundle(
    *,
    insurer_id: uuid.UUID, incident_id: uuid.UUID, staff: GuardedStaffCaller, request: Request,
    session: SessionDep, identity: IdentityDep,
) -> Response:  # fmt: skip
    _own(session, staff.insurer_id, incident_id)
    return _bundle(
        request, session, identity, incident_id=incident_id, insurer_id=staff.insurer_id,
        actor=Actor(ActorKind.INSURER_STAFF, id=staff.account_id), channel=Channel.INSURER_API,
        device=staff.credential_ref,
    )  # fmt: skip


@router.post(
    "/api/v1/insurers/{insurer_id}/incidents/{incident_id}/notifications",
    dependencies=[INSURER],
    response_model=InsurerPartOut,
)
def insurer_notification(
    *,
    insurer_id: uuid.UUID, incident_id: uuid.UUID, body: NotificationIn, staff: GuardedStaffCaller,
    session: SessionDep, identity: IdentityDep,
) -> Response:  # fmt: skip
    """The insurer records its Art. 33 notification filed, or its Art. 34 decision on letters."""
    _own(session, staff.insurer_id, incident_id)
    if body.step == "notice_sent":
        raise PermissionDenied("the processor records its own notice")
    do_record_notification(
        session, incident_id=incident_id, insurer_id=staff.insurer_id, step=_STEPS[body.step],
        now=identity.clock(), actor_id=staff.account_id,
        letters=LettersDecision(body.letters) if body.letters else None,
    )  # fmt: skip
    (part,) = checklist(
        session, access_incident(session, incident_id), now=identity.clock(), insurer_id=staff.insurer_id
    )
    return json_response(InsurerPartOut.of(part))


# -- the insured person ---------------------------------------------------------------------------------


@router.get(
    "/api/v1/me/incidents", dependencies=[requires(Permission.ME_ACCESS_LOG_READ)], response_model=list[MyIncidentOut]
)
def my_incidents(caller: AnyCaller, session: SessionDep) -> list[MyIncidentOut]:
    """Were you affected by an incident, and what of yours was seen (or only tried)."""
    if caller.insurer_id is None or caller.beneficiary_id is None:
        raise PermissionDenied("only an insured person has this view")
    mine = incidents_of_beneficiary(session, insurer_id=caller.insurer_id, beneficiary_id=caller.beneficiary_id)
    return [MyIncidentOut.of(m) for m in mine]
