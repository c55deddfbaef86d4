"""What identity adds to ``rempart demo``: a pharmacy and an optician with their billing software's
client credentials, and one-time enrolment links for every kind of account.

Everything goes to ``var/demo.json`` (owner-readable only); nothing secret is printed.
"""

from __future__ import annotations

import secrets
from typing import Any

from joserfc.jwk import ECKey
from sqlalchemy import select
from stdnum import luhn

from rempart.db import utcnow
from rempart.identity.accounts import invite_account
from rempart.identity.clients import create_client
from rempart.identity.context import TOKEN_PATH
from rempart.identity.permissions import Role
from rempart.insurers.models import Insurer
from rempart.professionals.models import Profession
from rempart.professionals.service import attach_professional, create_practice, register_professional
from rempart.runtime import Runtime


def _rpps() -> str:
    body = "10" + "".join(secrets.choice("0123456789") for _ in range(8))
    return body + luhn.calc_check_digit(body)


def _number() -> str:
    return "".join(secrets.choice("0123456789") for _ in range(9))


def contribute(runtime: Runtime, doc: dict[str, Any]) -> None:
    origin = runtime.settings.public_origin.rstrip("/")
    now = utcnow()
    software: list[dict[str, Any]] = []
    links: list[dict[str, str]] = []
    with runtime.sessions.begin() as session:
        for profession, name in (
            (Profession.PHARMACIST, "Pharmacie de la Citadelle"),
            (Profession.OPTICIAN, "Optique du Beffroi"),
        ):
            practice = create_practice(session=session, name=name, profession=profession, finess=_number())
            professional = register_professional(session=session, rpps=_rpps(), profession=profession)
            attach_professional(session=session, practice_id=practice.id, professional_id=professional.id, now=now)
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
            admin = invite_account(
                session=session,
                login=f"titulaire@{profession.value}.demo",
                roles={Role.PRACTICE_ADMIN, Role.PROFESSIONAL},
                now=now,
                invited_by=None,
                practice_id=practice.id,
                professional_id=professional.id,
            )
            links.append(
                {"login": admin.account.login, "roles": "practice_admin, professional", "url": admin.url(origin)}
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
            invitation = invite_account(
                session=session, login=login, roles=roles, now=now, invited_by=None, insurer_id=insurer_id
            )
            links.append({"login": login, "roles": ", ".join(sorted(roles)), "url": invitation.url(origin)})
    doc["practice_software"] = software
    doc["enrolment_links"] = links
    doc["passkeys_note"] = (
        "Browsers accept passkeys on https origins and on http://localhost only: serve the demo with "
        "REMPART_PUBLIC_ORIGIN=http://localhost:8000 and REMPART_RP_ID=localhost to enrol from a browser."
    )
