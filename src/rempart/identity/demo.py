"""What identity adds to ``rempart demo``: a pharmacy and an optician with their billing software's
client credentials, and one-time enrolment links for every kind of account.

Everything goes to ``var/demo.json`` (owner-readable only); nothing secret is printed.
"""

from __future__ import annotations

import secrets
import uuid
from datetime import date, datetime
from typing import Any

from joserfc.jwk import ECKey
from sqlalchemy import select
from sqlalchemy.orm import Session
from stdnum import luhn

from rempart.db import utcnow
from rempart.identity.accounts import Invitation, invite_account, new_enrolment, normalise_login
from rempart.identity.clients import create_client
from rempart.identity.context import TOKEN_PATH
from rempart.identity.models import Account, AccountStatus, EnrolmentPurpose
from rempart.identity.permissions import Role
from rempart.insurers.models import Insurer
from rempart.members.models import Beneficiary, BeneficiaryRole, Contract
from rempart.professionals.models import Practice, Profession, Professional
from rempart.professionals.service import attach_professional, create_practice, register_professional
from rempart.runtime import Runtime
from rempart.tenancy import tenant


def _rpps() -> str:
    body = "10" + "".join(secrets.choice("0123456789") for _ in range(8))
    return body + luhn.calc_check_digit(body)


def _number() -> str:
    return "".join(secrets.choice("0123456789") for _ in range(9))


def _invitation(
    session: Session, *, login: str, roles: set[Role], now: datetime, origin: str, **scope: Any
) -> dict[str, str]:
    """An enrolment link for the demo account ``login``: a new account the first time; a fresh link
    when the demo runs again and the account is still waiting for its passkey; none once enrolled."""
    account = session.scalar(select(Account).where(Account.login == normalise_login(login)))
    listed = {"login": normalise_login(login), "roles": ", ".join(sorted(roles))}
    if account is None:
        invitation = invite_account(session=session, login=login, roles=roles, now=now, invited_by=None, **scope)
        return {**listed, "url": invitation.url(origin)}
    if account.status is AccountStatus.INVITED:
        token = new_enrolment(
            session=session, account_id=account.id, purpose=EnrolmentPurpose.INVITATION, created_by=None, now=now
        )
        return {**listed, "url": Invitation(account=account, token=token).url(origin)}
    return {**listed, "url": "", "note": "already enrolled: sign in with its passkey"}


def _practice(
    session: Session, *, name: str, profession: Profession, admin_login: str, now: datetime
) -> tuple[Practice, Professional]:
    """The demo practice and its professional: the ones an earlier run made (found through the
    practice admin's account), or new ones."""
    admin = session.scalar(select(Account).where(Account.login == normalise_login(admin_login)))
    if admin is not None and admin.practice_id is not None and admin.professional_id is not None:
        practice = session.get(Practice, admin.practice_id)
        professional = session.get(Professional, admin.professional_id)
        if practice is not None and professional is not None:
            return practice, professional
    practice = create_practice(session=session, name=name, profession=profession, finess=_number())
    professional = register_professional(session=session, rpps=_rpps(), profession=profession)
    attach_professional(session=session, practice_id=practice.id, professional_id=professional.id, now=now)
    return practice, professional


def _insured_person(session: Session, insurer_id: uuid.UUID, today: date) -> uuid.UUID | None:
    """A holder whose contract is in force today: the demo's insured person."""
    with tenant(session, insurer_id):
        return session.scalar(
            select(Beneficiary.id)
            .join(Contract, (Contract.insurer_id == Beneficiary.insurer_id) & (Contract.id == Beneficiary.contract_id))
            .where(
                Beneficiary.insurer_id == insurer_id,
                Beneficiary.role == BeneficiaryRole.HOLDER,
                Contract.start_date <= today,
                (Contract.end_date.is_(None)) | (Contract.end_date >= today),
            )
            .order_by(Contract.member_number)
            .limit(1)
        )


def contribute(runtime: Runtime, doc: dict[str, Any]) -> None:
    """Runs again with every ``rempart demo``: the practices and accounts of an earlier run are
    kept, their billing software gets a new client (its private key is only in this run's
    demo.json), and accounts still waiting for their passkey get a fresh enrolment link."""
    origin = runtime.settings.public_origin.rstrip("/")
    now = utcnow()
    software: list[dict[str, Any]] = []
    links: list[dict[str, str]] = []
    with runtime.sessions.begin() as session:
        for profession, name in (
            (Profession.PHARMACIST, "Pharmacie de la Citadelle"),
            (Profession.OPTICIAN, "Optique du Beffroi"),
        ):
            admin_login = f"titulaire@{profession.value}.demo"
            practice, professional = _practice(
                session, name=name, profession=profession, admin_login=admin_login, now=now
            )
            key = ECKey.generate_key("P-256", private=True)
            client, _ = create_client(
                session=session,
                practice_id=practice.id,
                name=f"Logiciel de {name}",
                public_jwk=dict(key.as_dict(private=False)),
                now=now,
            )
            software.append(
                {
                    "practice": name,
                    "profession": profession.value,
                    "finess": practice.finess,
                    "rpps": professional.rpps,
                    "client_id": str(client.id),
                    "private_jwk": key.as_dict(private=True),
                    "token_url": origin + TOKEN_PATH,
                }
            )
            links.append(
                _invitation(
                    session,
                    login=admin_login,
                    roles={Role.PRACTICE_ADMIN, Role.PROFESSIONAL},
                    now=now,
                    origin=origin,
                    practice_id=practice.id,
                    professional_id=professional.id,
                )
            )
        insurer = session.scalars(select(Insurer).order_by(Insurer.amc_number.desc())).first()
        staff: list[tuple[str, set[Role], Any]] = [
            ("platform@rempart.demo", {Role.PLATFORM_ADMIN}, None),
            ("soc@rempart.demo", {Role.SECURITY_OPERATOR}, None),
        ]
        if insurer is not None:
            staff += [
                (f"admin@{insurer.amc_number}.demo", {Role.INSURER_ADMIN}, insurer.id),
                (f"agent@{insurer.amc_number}.demo", {Role.CLAIMS_AGENT}, insurer.id),
                (f"dpo@{insurer.amc_number}.demo", {Role.DPO}, insurer.id),
            ]
        for login, roles, insurer_id in staff:
            links.append(_invitation(session, login=login, roles=roles, now=now, origin=origin, insurer_id=insurer_id))
        if insurer is not None and (person := _insured_person(session, insurer.id, now.date())) is not None:
            # An insured person of that insurer, to try the beneficiary's portal (card, rights, who looked).
            links.append(
                _invitation(
                    session,
                    login=f"assure@{insurer.amc_number}.demo",
                    roles={Role.BENEFICIARY},
                    now=now,
                    origin=origin,
                    insurer_id=insurer.id,
                    beneficiary_id=person,
                )
            )
    doc["practice_software"] = software
    doc["enrolment_links"] = links
    doc["passkeys_note"] = (
        "Browsers accept passkeys on https origins and on http://localhost only: serve the demo with "
        "REMPART_PUBLIC_ORIGIN=http://localhost:8000 and REMPART_RP_ID=localhost to enrol from a browser."
    )
