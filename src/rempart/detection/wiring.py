"""Containment wired to identity (suspension, revocation, security events) and the access log.

- an account: identity's ``suspend_account`` (status suspended, every session revoked, a security
  event); lifting reinstates it;
- an API client: every access token deleted and the client suspended (no token is issued nor
  honoured: 403 ``client-suspended``), with a ``client_suspended`` security event; lifting makes it
  active again with the same keys (the practice may still revoke it and register a new key);
- a professional: their status suspended (practice software can no longer act for them) and every
  account of theirs suspended; lifting reinstates both;
- every step (slow-down, step-up or refusal, suspension, lift): one ``containment`` event in the
  access log, outcome ``refused`` (its reference names the step, ``normal`` for a lift), and a
  security event on the account or client that its owner and the security operators see
  (``checks_slowed``, ``step_up_required``, ``account_suspended``/``client_suspended``,
  ``containment_lifted``).
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from rempart.audit.disclosures import Operation
from rempart.audit.models import ActorKind, Channel, Outcome
from rempart.audit.service import Actor as AccessActor
from rempart.audit.service import record_access
from rempart.detection.actor import Actor
from rempart.detection.explain import for_practice
from rempart.detection.hooks import ContainmentHooks
from rempart.detection.models import ContainmentLevel, KillChannel, SubjectKind
from rempart.identity.accounts import reinstate_account, suspend_account
from rempart.identity.events import record_event
from rempart.identity.models import AccessToken, Account, ApiClient, ClientStatus, SecurityEventKind
from rempart.professionals.models import Professional, ProfessionalStatus

_CHANNEL = {
    KillChannel.PRACTICE_API: Channel.PRO_API,
    KillChannel.FHIR: Channel.FHIR,
    KillChannel.PROFESSIONAL_PORTAL: Channel.PRO_PORTAL,
    KillChannel.BACK_OFFICE: Channel.BACKOFFICE,
}


class IdentityHooks:
    def suspend(
        self, session: Session, *, kind: SubjectKind, subject_id: uuid.UUID, reason: str, now: datetime
    ) -> None:
        if kind is SubjectKind.ACCOUNT:
            if session.get(Account, subject_id) is not None:
                suspend_account(session=session, account_id=subject_id, now=now, reason=reason)
        elif kind is SubjectKind.CLIENT:
            client = session.get(ApiClient, subject_id)
            if client is None:
                return
            session.execute(delete(AccessToken).where(AccessToken.client_id == client.id))
            if client.status is ClientStatus.ACTIVE:
                client.status = ClientStatus.SUSPENDED
            record_event(
                session=session,
                kind=SecurityEventKind.CLIENT_SUSPENDED,
                at=now,
                practice_id=client.practice_id,
                client_id=client.id,
                reason=reason,
            )
        elif kind is SubjectKind.PROFESSIONAL:
            professional = session.get(Professional, subject_id)
            if professional is None:
                return
            professional.status = ProfessionalStatus.SUSPENDED
            for account_id in session.scalars(select(Account.id).where(Account.professional_id == subject_id)):
                suspend_account(session=session, account_id=account_id, now=now, reason=reason)
        session.flush()

    def reinstate(
        self, session: Session, *, kind: SubjectKind, subject_id: uuid.UUID, reason: str, now: datetime
    ) -> None:
        if kind is SubjectKind.ACCOUNT:
            if session.get(Account, subject_id) is not None:
                reinstate_account(session=session, account_id=subject_id)
        elif kind is SubjectKind.CLIENT:
            client = session.get(ApiClient, subject_id)
            if client is not None and client.status is ClientStatus.SUSPENDED:
                client.status = ClientStatus.ACTIVE  # a revoked client stays revoked
        elif kind is SubjectKind.PROFESSIONAL:
            professional = session.get(Professional, subject_id)
            if professional is None:
                return
            professional.status = ProfessionalStatus.ACTIVE
            for account_id in session.scalars(select(Account.id).where(Account.professional_id == subject_id)):
                reinstate_account(session=session, account_id=account_id)
        session.flush()

    def step_recorded(
        self,
        session: Session,
        *,
        kind: SubjectKind,
        subject_id: uuid.UUID,
        level: ContainmentLevel,
        signal: str,
        actor: Actor | None,
        now: datetime,
    ) -> None:
        _security_events(session, kind=kind, subject_id=subject_id, level=level, signal=signal, now=now)
        channel = _CHANNEL[actor.channel] if actor else Channel.SECURITY_CONSOLE
        software = kind is SubjectKind.CLIENT or (actor is not None and actor.client_id is not None)
        record_access(
            session,
            operation=Operation.CONTAINMENT,
            actor=AccessActor(
                kind=ActorKind.PRACTICE_SOFTWARE if software else ActorKind.PROFESSIONAL,
                id=subject_id if kind in (SubjectKind.ACCOUNT, SubjectKind.CLIENT) else None,
                practice_id=actor.practice_id if actor else None,
                professional_id=actor.professional_id if actor else None,
                profession=actor.profession if actor else None,
            ),
            channel=channel,
            outcome=Outcome.REFUSED,
            device=actor.device if actor else None,
            address=actor.address if actor else None,
            reference=f"{kind.value}:{level.value}:{signal}"[:64],
            occurred_at=now,
        )


# Suspension's own events are written by ``suspend`` (account_suspended, client_suspended).
_EVENT_OF_LEVEL = {
    ContainmentLevel.SLOW: SecurityEventKind.CHECKS_SLOWED,
    ContainmentLevel.STEP_UP: SecurityEventKind.STEP_UP_REQUIRED,
    ContainmentLevel.NORMAL: SecurityEventKind.CONTAINMENT_LIFTED,
}


def _security_events(
    session: Session, *, kind: SubjectKind, subject_id: uuid.UUID, level: ContainmentLevel, signal: str, now: datetime
) -> None:
    """The step on the account's or client's security events (a professional's: on each account)."""
    event = _EVENT_OF_LEVEL.get(level)
    if event is None:
        return
    if kind is SubjectKind.CLIENT:
        client = session.get(ApiClient, subject_id)
        if client is not None:
            record_event(
                session=session,
                kind=event,
                at=now,
                practice_id=client.practice_id,
                client_id=client.id,
                subject=kind.value,
                reason=for_practice(signal),
            )
        return
    if kind is SubjectKind.ACCOUNT:
        accounts = [subject_id] if session.get(Account, subject_id) is not None else []
    elif kind is SubjectKind.PROFESSIONAL:
        accounts = list(session.scalars(select(Account.id).where(Account.professional_id == subject_id)))
    else:
        return
    for account_id in accounts:
        # ``subject`` tells the account's own step from its professional's (RPPS) step.
        record_event(
            session=session, kind=event, at=now, account_id=account_id, subject=kind.value, reason=for_practice(signal)
        )


def default_hooks() -> ContainmentHooks:
    return IdentityHooks()
