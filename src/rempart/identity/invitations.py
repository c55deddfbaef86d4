"""Who may invite whom, each invitation one unit of work with its security event.

- the platform invites insurer admins and security operators, and onboards practices;
- an insurer admin invites the insurer's staff and its beneficiaries;
- a practice admin invites the practice's professionals.
Each ``do_*`` function checks what its audience may grant, writes the account, its enrolment link
and its ``account_invited`` event (``invite_account``), and commits.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime

from sqlalchemy.orm import Session

from rempart.errors import NotFound
from rempart.identity.accounts import Invitation, invite_account, professional_id_by_rpps
from rempart.identity.errors import PermissionDenied
from rempart.identity.permissions import INSURER_ROLES, Role
from rempart.members.models import Beneficiary
from rempart.professionals.models import Practice, Profession
from rempart.professionals.service import attach_professional, create_practice, is_valid_rpps, register_professional
from rempart.tenancy import access_owned


def do_invite_insurer_staff(
    *,
    session: Session,
    insurer_id: uuid.UUID,
    login: str,
    roles: Iterable[Role],
    now: datetime,
    invited_by: uuid.UUID | None,
) -> Invitation:
    wanted = set(roles)
    if not wanted <= INSURER_ROLES:
        raise PermissionDenied("an insurer admin invites insurer staff only")
    invitation = invite_account(
        session=session, login=login, roles=wanted, now=now, invited_by=invited_by, insurer_id=insurer_id
    )
    session.commit()
    return invitation


def do_invite_beneficiary(
    *,
    session: Session,
    insurer_id: uuid.UUID,
    beneficiary_id: uuid.UUID,
    login: str,
    now: datetime,
    invited_by: uuid.UUID | None,
) -> Invitation:
    """An account for one of the insurer's beneficiaries (their card, rights and access log)."""
    beneficiary = access_owned(session, Beneficiary, insurer_id=insurer_id, key=beneficiary_id, what="beneficiary")
    invitation = invite_account(
        session=session,
        login=login,
        roles={Role.BENEFICIARY},
        now=now,
        invited_by=invited_by,
        insurer_id=insurer_id,
        beneficiary_id=beneficiary.id,
    )
    session.commit()
    return invitation


def do_invite_professional(
    *,
    session: Session,
    practice_id: uuid.UUID,
    rpps: str,
    login: str,
    practice_admin: bool,
    now: datetime,
    invited_by: uuid.UUID | None,
) -> Invitation:
    """An account for a professional acting for the practice (and, if asked, its admin)."""
    if not is_valid_rpps(rpps):
        raise NotFound("no professional with this RPPS in this practice")
    roles = {Role.PROFESSIONAL} | ({Role.PRACTICE_ADMIN} if practice_admin else set())
    invitation = invite_account(
        session=session,
        login=login,
        roles=roles,
        now=now,
        invited_by=invited_by,
        practice_id=practice_id,
        professional_id=professional_id_by_rpps(session, rpps),
    )
    session.commit()
    return invitation


def do_invite_insurer_admin(
    *, session: Session, insurer_id: uuid.UUID, login: str, now: datetime, invited_by: uuid.UUID | None
) -> Invitation:
    invitation = invite_account(
        session=session,
        login=login,
        roles={Role.INSURER_ADMIN},
        now=now,
        invited_by=invited_by,
        insurer_id=insurer_id,
    )
    session.commit()
    return invitation


def do_invite_security_operator(
    *, session: Session, login: str, now: datetime, invited_by: uuid.UUID | None
) -> Invitation:
    invitation = invite_account(
        session=session, login=login, roles={Role.SECURITY_OPERATOR}, now=now, invited_by=invited_by
    )
    session.commit()
    return invitation


def do_onboard_practice(
    *,
    session: Session,
    name: str,
    profession: Profession,
    finess: str | None,
    am_number: str | None,
    admin_rpps: str,
    admin_login: str,
    now: datetime,
    invited_by: uuid.UUID | None,
) -> tuple[Practice, Invitation]:
    """A new practice, its first professional, and that professional's practice-admin invitation."""
    practice = create_practice(session=session, name=name, profession=profession, finess=finess, am_number=am_number)
    professional = register_professional(session=session, rpps=admin_rpps, profession=profession)
    attach_professional(session=session, practice_id=practice.id, professional_id=professional.id, now=now)
    invitation = invite_account(
        session=session,
        login=admin_login,
        roles={Role.PRACTICE_ADMIN, Role.PROFESSIONAL},
        now=now,
        invited_by=invited_by,
        practice_id=practice.id,
        professional_id=professional.id,
    )
    session.commit()
    return practice, invitation
