"""The security console: live alerts, the containment ladder, kill switches and charts (``/console``).

Thin pages over detection's services: every action is a form with the page's CSRF token that calls
one ``do_*`` function and answers ``see_other`` (a reload never posts twice), or the page again with
its field marked (422) when the reason is missing. New alerts reach an open page without a reload:
``console.js`` asks ``/console/alerts/rows`` for the rows newer than the newest it shows; without
script, a reload shows them.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from fastapi import Form, Query, Request
from fastapi.responses import HTMLResponse, Response

from rempart.detection import charts
from rempart.detection.console import alert_views, containment_views, ladder_events, switch_targets, switch_views
from rempart.detection.deps import DetectionDep
from rempart.detection.models import KillChannel, KillSwitchScope, SubjectKind
from rempart.detection.service import (
    MIN_REASON,
    do_acknowledge_alert,
    do_assign_alert,
    do_clear_kill_switch,
    do_close_alert,
    do_lift_containment,
    do_set_kill_switch,
)
from rempart.detection.thresholds import PROFESSIONS
from rempart.errors import Conflict, NotFound, ValidationFailed
from rempart.identity.deps import FORM_CSRF, AnyCaller, requires
from rempart.identity.errors import NotSignedIn
from rempart.identity.permissions import Permission
from rempart.identity.portal import ViewerDep
from rempart.identity.principal import Principal
from rempart.web import i18n
from rempart.web.deps import SessionDep
from rempart.web.i18n import _
from rempart.web.pages import PageRouter, Viewer, render, see_other

router = PageRouter()

READ = requires(Permission.SECURITY_ALERT_READ)
MANAGE = requires(Permission.SECURITY_ALERT_MANAGE)
CONTAIN = requires(Permission.SECURITY_ACCOUNT_CONTAIN)
SWITCH = requires(Permission.SECURITY_KILL_SWITCH_MANAGE)

# -- words ------------------------------------------------------------------------------------------

SIGNAL_WORDS = {
    "distinct_5m": _("Distinct patients checked within 5 minutes"),
    "distinct_1h": _("Distinct patients checked within an hour"),
    "distinct_24h": _("Distinct patients checked within a day"),
    "off_hours_1h": _("Checks outside the practice's usual hours"),
    "new_24h": _("Patients new to the practice, within a day"),
    "misses_1h": _("Checks that matched no patient, within an hour"),
    "misses_24h": _("Checks that matched no patient, within a day"),
    "unclaimed_24h": _("Checks not followed by a claim, within a day"),
    "unclaimed_7d": _("Checks not followed by a claim, within a week"),
    "insurers_24h": _("Patients of unusually many insurers, within a day"),
    "spread_24h": _("Patients also checked at many other practices"),
    "fresh_network_new": _("New patients checked from a new network"),
    "fresh_network_misses": _("Misses from a new network"),
    "locked_identities_1h": _("Identities locked after repeated misses"),
    "repeated_notices": _("Unusual use on several days"),
    "refused_requests": _("Requests went on while the access was paused"),
    "beneficiary_practices_24h": _("One patient checked by many practices within a day"),
    "counter_store": _("Counter store unreachable: professional channels fail closed"),
}
KIND_WORDS = {
    "containment": _("Containment"),
    "signal": _("Unusual use"),
    "beneficiary_spread": _("One patient, many practices"),
    "aggregate": _("Insurer-wide or platform-wide anomaly"),
    "counter_store_unreachable": _("Counter store unreachable"),
    "incident_deadline": _("Incident deadline"),
}
SEVERITY_WORDS = {"low": _("Low"), "medium": _("Medium"), "high": _("High"), "critical": _("Critical")}
STATUS_WORDS = {"open": _("Open"), "acknowledged": _("Acknowledged"), "closed": _("Closed")}
SUBJECT_WORDS = {
    SubjectKind.ACCOUNT.value: _("Account"),
    SubjectKind.CLIENT.value: _("Billing software"),
    SubjectKind.PROFESSIONAL.value: _("Professional (RPPS)"),
    SubjectKind.PRACTICE.value: _("Practice"),
    SubjectKind.INSURER.value: _("Insurer"),
    SubjectKind.PLATFORM.value: _("The whole platform"),
    SubjectKind.BENEFICIARY.value: _("Beneficiary (no identity shown)"),
    SubjectKind.KILL_SWITCH.value: _("Kill switch"),
}
LEVEL_WORDS = {
    "slow": (_("Slowed down"), _("Its rights checks are answered more slowly, until the time shown.")),
    "step_up": (
        _("Passkey check required"),
        _("In the portal it must confirm with a passkey; its billing software's checks are refused meanwhile."),
    ),
    "suspended": (
        _("Suspended"),
        _("Its sessions were ended and its tokens revoked; it stays suspended until an operator lifts it."),
    ),
}
EVENT_WORDS = {
    "slowed": _("Slowed down"),
    "step_up_required": _("Passkey check required"),
    "suspended": _("Suspended"),
    "lifted": _("Lifted by an operator"),
}
SCOPE_WORDS = {
    KillSwitchScope.CHANNEL.value: _("A channel"),
    KillSwitchScope.PROFESSION.value: _("A profession"),
    KillSwitchScope.PRACTICE.value: _("A practice"),
    KillSwitchScope.INSURER.value: _("An insurer"),
}
CHANNEL_WORDS = {
    KillChannel.PROFESSIONAL_PORTAL.value: _("The professional portal"),
    KillChannel.PRACTICE_API.value: _("Billing software (the practice API)"),
    KillChannel.FHIR.value: _("Billing software through FHIR (the FHIR facade)"),
    KillChannel.BACK_OFFICE.value: _("The insurers' back office"),
}
PROFESSION_WORDS = {
    "pharmacist": _("Pharmacists"),
    "optician": _("Opticians"),
    "audioprosthetist": _("Audioprosthetists"),
    "dentist": _("Dentists"),
    "physician": _("Physicians"),
    "midwife": _("Midwives"),
    "nurse": _("Nurses"),
    "physiotherapist": _("Physiotherapists"),
    "lab": _("Medical laboratories"),
    "radiology": _("Radiology"),
    "hospital": _("Hospitals"),
    "transport": _("Patient transport"),
}
DONE = {
    "acknowledged": _("The alert was acknowledged."),
    "assigned": _("The alert is assigned to you."),
    "closed": _("The alert was closed."),
    "lifted": _("The containment was lifted: the subject starts afresh."),
    "switch-on": _("The kill switch is on: every app process follows within a second."),
    "switch-off": _("The kill switch is off: the service is back."),
}
CHART_WORDS = {
    "checks": _("Rights checks per hour, last 24 hours"),
    "misses": _("Share of checks that matched no patient, per hour, in percent"),
    "practices": _("Distinct patients checked per practice, last 24 hours"),
    "containments": _("Containment actions per day, last 7 days"),
}
SERIES_WORDS = {
    "answered": _("Answered"),
    "misses": _("No match"),
    "refused": _("Refused"),
    "miss_share": _("Share of misses"),
    "distinct_beneficiaries": _("Distinct patients"),
    "slowed": _("Slowed down"),
    "step_up_required": _("Passkey check required"),
    "suspended": _("Suspended"),
    "lifted": _("Lifted"),
    "_empty": _("Nothing in this period"),
}
WORDS: dict[str, Any] = {
    "signal": SIGNAL_WORDS,
    "kind": KIND_WORDS,
    "severity": SEVERITY_WORDS,
    "status": STATUS_WORDS,
    "subject": SUBJECT_WORDS,
    "level": LEVEL_WORDS,
    "event": EVENT_WORDS,
    "scope": SCOPE_WORDS,
    "channel": CHANNEL_WORDS,
    "profession": PROFESSION_WORDS,
}

REASON_ERROR = _("Give a reason of at least 5 characters: it is kept with the action.")


def _operator(caller: Principal) -> uuid.UUID:
    if caller.account_id is None:
        raise NotSignedIn("sign in with a passkey")
    return caller.account_id


def _reason_ok(reason: str) -> bool:
    return MIN_REASON <= len(" ".join(reason.split())) <= 2000


# -- alerts ---------------------------------------------------------------------------------------


@router.page("/console", dependencies=[READ])
def alerts_page(
    request: Request, viewer: ViewerDep, caller: AnyCaller, session: SessionDep, done: str | None = None
) -> HTMLResponse:
    alerts = alert_views(session, operator_id=_operator(caller))
    return render(
        request,
        "console/alerts.html",
        viewer=viewer,
        alerts=alerts,
        newest=alerts[0].created_at if alerts else None,
        words=WORDS,
        done=DONE.get(done or ""),
        can_manage=_can(caller, Permission.SECURITY_ALERT_MANAGE),
        can_open_incident=_can(caller, Permission.SECURITY_INCIDENT_MANAGE),
    )


def _can(caller: Principal, permission: Permission) -> bool:
    return caller.can(permission)


@router.page("/console/alerts/rows", dependencies=[READ])
def alert_rows(
    request: Request,
    viewer: ViewerDep,
    caller: AnyCaller,
    session: SessionDep,
    after: Annotated[datetime | None, Query()] = None,
) -> HTMLResponse:
    """The rows of the alerts newer than ``after`` (the newest the page shows), for ``console.js``."""
    alerts = alert_views(session, operator_id=_operator(caller), newer_than=after)
    return render(
        request,
        "console/alert_rows.html",
        viewer=viewer,
        alerts=alerts,
        words=WORDS,
        can_manage=_can(caller, Permission.SECURITY_ALERT_MANAGE),
        can_open_incident=_can(caller, Permission.SECURITY_INCIDENT_MANAGE),
    )


@router.post("/console/alerts/{alert_id}/acknowledge", dependencies=[FORM_CSRF, MANAGE])
def acknowledge(
    alert_id: uuid.UUID, viewer: ViewerDep, caller: AnyCaller, session: SessionDep, detection: DetectionDep
) -> Response:
    do_acknowledge_alert(session=session, alert_id=alert_id, operator_id=_operator(caller), now=detection.clock.now())
    return see_other(f"/console?done=acknowledged#alert-{alert_id}")


@router.post("/console/alerts/{alert_id}/assign", dependencies=[FORM_CSRF, MANAGE])
def assign_to_me(
    alert_id: uuid.UUID, viewer: ViewerDep, caller: AnyCaller, session: SessionDep, detection: DetectionDep
) -> Response:
    me = _operator(caller)
    do_assign_alert(session=session, alert_id=alert_id, assignee_id=me, operator_id=me, now=detection.clock.now())
    return see_other(f"/console?done=assigned#alert-{alert_id}")


@router.post("/console/alerts/{alert_id}/close", dependencies=[FORM_CSRF, MANAGE])
def close(
    alert_id: uuid.UUID, viewer: ViewerDep, caller: AnyCaller, session: SessionDep, detection: DetectionDep
) -> Response:
    do_close_alert(session=session, alert_id=alert_id, operator_id=_operator(caller), now=detection.clock.now())
    return see_other(f"/console?done=closed#alert-{alert_id}")


# -- containments ---------------------------------------------------------------------------------


def _containments(
    request: Request,
    viewer: Viewer,
    caller: Principal,
    session: SessionDep,
    detection: DetectionDep,
    *,
    done: str | None = None,
    errors: dict[str, str] | None = None,
    status: int = 200,
) -> HTMLResponse:
    now = detection.clock.now()
    return render(
        request,
        "console/containments.html",
        viewer=viewer,
        status=status,
        containments=containment_views(session, now=now),
        events=ladder_events(session, now=now),
        words=WORDS,
        done=DONE.get(done or ""),
        errors=errors or {},
        can_lift=_can(caller, Permission.SECURITY_ACCOUNT_CONTAIN),
    )


@router.page("/console/containments", dependencies=[READ])
def containments_page(
    *,
    request: Request,
    viewer: ViewerDep,
    caller: AnyCaller,
    session: SessionDep,
    detection: DetectionDep,
    done: str | None = None,
) -> HTMLResponse:
    return _containments(request, viewer, caller, session, detection, done=done)


@router.post(
    "/console/containments/{subject_kind}/{subject_id}/lift",
    dependencies=[FORM_CSRF, CONTAIN],
    response_class=HTMLResponse,
)
def lift(
    *,
    request: Request,
    subject_kind: SubjectKind,
    subject_id: uuid.UUID,
    viewer: ViewerDep,
    caller: AnyCaller,
    session: SessionDep,
    detection: DetectionDep,
    reason: Annotated[str, Form(max_length=4000)] = "",
) -> Response:
    key = f"{subject_kind.value}-{subject_id}"
    if not _reason_ok(reason):
        return _containments(request, viewer, caller, session, detection, errors={key: REASON_ERROR}, status=422)
    do_lift_containment(
        session=session,
        engine=detection,
        kind=subject_kind,
        subject_id=subject_id,
        reason=reason,
        operator_id=_operator(caller),
    )
    return see_other("/console/containments?done=lifted")


# -- kill switches --------------------------------------------------------------------------------


def _switches(
    request: Request,
    viewer: Viewer,
    session: SessionDep,
    *,
    done: str | None = None,
    errors: dict[str, str] | None = None,
    values: dict[str, str] | None = None,
    status: int = 200,
) -> HTMLResponse:
    return render(
        request,
        "console/kill_switches.html",
        viewer=viewer,
        status=status,
        switches=switch_views(session),
        targets=switch_targets(session),
        channels=[c.value for c in KillChannel],
        professions=sorted(PROFESSIONS),
        words=WORDS,
        done=DONE.get(done or ""),
        errors=errors or {},
        values=values or {},
    )


@router.page("/console/kill-switches", dependencies=[SWITCH])
def kill_switches_page(
    request: Request, viewer: ViewerDep, session: SessionDep, done: str | None = None
) -> HTMLResponse:
    return _switches(request, viewer, session, done=done)


@router.post("/console/kill-switches", dependencies=[FORM_CSRF, SWITCH], response_class=HTMLResponse)
def switch_on(
    *,
    request: Request,
    viewer: ViewerDep,
    caller: AnyCaller,
    session: SessionDep,
    detection: DetectionDep,
    scope: Annotated[str, Form(max_length=40)] = "",
    target: Annotated[str, Form(max_length=200)] = "",
    reason: Annotated[str, Form(max_length=4000)] = "",
) -> Response:
    values = {"scope": scope, "target": target.strip()[:64], "reason": reason[:2000]}
    errors: dict[str, str] = {}
    if scope not in {s.value for s in KillSwitchScope}:
        errors["scope"] = _("Choose what to switch off: a channel, a profession, a practice or an insurer.")
    if not target.strip():
        errors["target"] = _("Choose the channel, profession, practice or insurer to switch off.")
    if not _reason_ok(reason):
        errors["reason"] = REASON_ERROR
    if not errors:
        try:
            do_set_kill_switch(
                session=session,
                engine=detection,
                scope=KillSwitchScope(scope),
                target=target,
                reason=reason,
                operator_id=_operator(caller),
                now=detection.clock.now(),
            )
        except (ValidationFailed, NotFound):
            errors["target"] = _("This target does not exist for this kind of switch: check it.")
        except Conflict:
            errors["target"] = _("This kill switch is already on.")
    if errors:
        return _switches(request, viewer, session, errors=errors, values=values, status=422)
    return see_other("/console/kill-switches?done=switch-on")


@router.post("/console/kill-switches/{switch_id}/clear", dependencies=[FORM_CSRF, SWITCH], response_class=HTMLResponse)
def switch_off(
    *,
    request: Request,
    switch_id: uuid.UUID,
    viewer: ViewerDep,
    caller: AnyCaller,
    session: SessionDep,
    detection: DetectionDep,
    reason: Annotated[str, Form(max_length=4000)] = "",
) -> Response:
    if not _reason_ok(reason):
        return _switches(request, viewer, session, errors={f"clear-{switch_id}": REASON_ERROR}, status=422)
    do_clear_kill_switch(
        session=session,
        engine=detection,
        switch_id=switch_id,
        reason=reason,
        operator_id=_operator(caller),
        now=detection.clock.now(),
    )
    return see_other("/console/kill-switches?done=switch-off")


# -- charts ---------------------------------------------------------------------------------------


@router.page("/console/charts", dependencies=[READ])
def charts_page(request: Request, viewer: ViewerDep, session: SessionDep, detection: DetectionDep) -> HTMLResponse:
    now = detection.clock.now()
    computed = {name: charts.compute(session, name, now=now) for name in charts.CHARTS}
    return render(
        request,
        "console/charts.html",
        viewer=viewer,
        charts=computed,
        titles=CHART_WORDS,
        series_words=SERIES_WORDS,
        stamp=int(now.timestamp()),
    )


@router.api_route("/console/charts/{name}.svg", methods=["GET", "HEAD"], dependencies=[READ])
def chart_svg(name: str, request: Request, caller: AnyCaller, session: SessionDep, detection: DetectionDep) -> Response:
    """A chart as an SVG image, in the reader's language."""
    if name not in charts.CHARTS:
        raise NotFound("no such chart")
    chart = charts.compute(session, name, now=detection.clock.now())
    with i18n.speaking(i18n.language_of(request)):
        body = charts.draw(
            chart,
            title=i18n.gettext(CHART_WORDS[name]),
            series_titles={k: i18n.gettext(v) for k, v in SERIES_WORDS.items()},
        )
    return Response(body, media_type="image/svg+xml")
