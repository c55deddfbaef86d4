"""Who invites whom; a practice admin manages the practice's clients and keys."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from fastapi import FastAPI
from joserfc.jwk import ECKey
from sqlalchemy import select

from rempart.identity.permissions import Role
from rempart.insurers.service import create_insurer
from rempart.members.models import Beneficiary
from rempart.professionals.models import Profession
from rempart.runtime import Runtime
from tests.factories import load_members, make_insurer, population
from tests.support.clock import FakeClock
from tests.support.portal import PortalUser
from tests.support.practice_client import PracticeClient, make_rpps

WHOAMI = "/api/v1/auth/whoami"


@pytest.fixture
def pharmacy(app: FastAPI, runtime: Runtime) -> PracticeClient:
    return PracticeClient.register(app, runtime, profession=Profession.PHARMACIST)


@pytest.fixture
def practice_admin(app: FastAPI, runtime: Runtime, pharmacy: PracticeClient) -> PortalUser:
    return PortalUser.invited(
        app,
        runtime,
        login="titulaire@pharmacie.test",
        roles={Role.PRACTICE_ADMIN, Role.PROFESSIONAL},
        practice_id=pharmacy.practice_id,
        professional_id=pharmacy.professional_id,
    )


def test_a_practice_admin_rotates_and_revokes_the_softwares_keys(
    practice_admin: PortalUser, pharmacy: PracticeClient, clock: FakeClock
) -> None:
    new_key = ECKey.generate_key("P-256", private=True)
    clients = practice_admin.get("/api/v1/practice/clients").json()
    assert [c["client_id"] for c in clients] == [str(pharmacy.client_id)]
    assert clients[0]["token_url"].endswith("/api/v1/auth/token")

    clock.advance(minutes=6)  # the passkey check of the login is no longer fresh
    path = f"/api/v1/practice/clients/{pharmacy.client_id}/keys"
    stale = practice_admin.post(path, json={"public_jwk": dict(new_key.as_dict())})
    assert stale.status_code == 401
    assert stale.json()["type"].endswith("/step-up-required")
    assert practice_admin.step_up().status_code == 200
    added = practice_admin.post(path, json={"public_jwk": dict(new_key.as_dict())})
    assert added.status_code == 201, added.text
    assert new_key.thumbprint() in added.json()["keys"]

    old_kid = pharmacy.signing_key.thumbprint()
    assert practice_admin.delete(f"{path}/{old_kid}").status_code == 200
    assert pharmacy.request_token().status_code == 401
    pharmacy.signing_key = new_key
    assert pharmacy.get(WHOAMI).status_code == 200

    # A private key is refused, and says why.
    private = practice_admin.post(path, json={"public_jwk": dict(new_key.as_dict(private=True))})
    assert private.status_code == 422
    assert "private" in private.json()["detail"]


def test_a_practice_admin_revokes_a_client_and_sees_its_refused_tokens(
    practice_admin: PortalUser, pharmacy: PracticeClient
) -> None:
    revoked = practice_admin.post(f"/api/v1/practice/clients/{pharmacy.client_id}/revoke")
    refused = pharmacy.request_token()

    assert revoked.json()["status"] == "revoked"
    assert refused.status_code == 401
    events = practice_admin.get("/api/v1/practice/security-events").json()
    kinds = [(e["kind"], e["detail"].get("reason")) for e in events if e["client_id"] == str(pharmacy.client_id)]
    assert ("token_refused", "client-revoked") in kinds
    assert ("client_revoked", None) in kinds


def test_another_practices_client_is_not_found(app: FastAPI, runtime: Runtime, practice_admin: PortalUser) -> None:
    optician = PracticeClient.register(app, runtime, profession=Profession.OPTICIAN, practice_name="Optique")

    for response in (
        practice_admin.post(f"/api/v1/practice/clients/{optician.client_id}/revoke"),
        practice_admin.delete(
            f"/api/v1/practice/clients/{optician.client_id}/keys/{optician.signing_key.thumbprint()}"
        ),
    ):
        assert response.status_code == 404
    assert optician.get(WHOAMI).status_code == 200


def test_a_practice_admin_invites_a_professional_of_the_practice(
    app: FastAPI, runtime: Runtime, practice_admin: PortalUser, pharmacy: PracticeClient
) -> None:
    colleague_rpps = pharmacy.add_professional()
    outsider = PracticeClient.register(app, runtime, practice_name="Autre pharmacie")

    invited = practice_admin.post(
        "/api/v1/practice/invitations", json={"login": "adjoint@pharmacie.test", "rpps": colleague_rpps}
    )
    not_ours = practice_admin.post(
        "/api/v1/practice/invitations", json={"login": "x@pharmacie.test", "rpps": outsider.rpps}
    )

    assert invited.status_code == 201, invited.text
    assert invited.json()["enrol_url"].startswith(practice_admin.origin + "/enrol#")
    assert not_ours.status_code == 422
    colleague = PortalUser.browser(app, login="adjoint@pharmacie.test")
    assert colleague.enrol(invited.json()["enrol_url"].split("#", 1)[1]).status_code == 200
    # The colleague acts as themself in the portal, for this practice.
    me = colleague.get(WHOAMI)
    assert me.status_code == 200
    assert me.json() | {"permissions": []} == {
        "practice_id": str(pharmacy.practice_id),
        "client_id": None,
        "professional_id": me.json()["professional_id"],
        "rpps": colleague_rpps,
        "profession": "pharmacist",
        "channel": "portal",
        "permissions": [],
    }


def test_insurer_admins_invite_only_their_own_staff(app: FastAPI, runtime: Runtime) -> None:
    with runtime.sessions.begin() as session:
        a = create_insurer(session=session, keys=runtime.keys, amc_number="12345678", name="A").id
        b = create_insurer(session=session, keys=runtime.keys, amc_number="87654321", name="B").id
    admin_a = PortalUser.invited(app, runtime, login="admin@a.test", roles={Role.INSURER_ADMIN}, insurer_id=a)

    ok = admin_a.post(
        f"/api/v1/insurers/{a}/staff-invitations", json={"login": "agent@a.test", "roles": ["claims_agent"]}
    )
    other_insurer = admin_a.post(
        f"/api/v1/insurers/{b}/staff-invitations", json={"login": "agent@b.test", "roles": ["claims_agent"]}
    )
    escalate = admin_a.post(
        f"/api/v1/insurers/{a}/staff-invitations", json={"login": "soc@a.test", "roles": ["security_operator"]}
    )

    assert ok.status_code == 201, ok.text
    assert other_insurer.status_code == 404
    assert escalate.status_code == 403
    staff: list[dict[str, Any]] = admin_a.get(f"/api/v1/insurers/{a}/staff").json()
    assert sorted(s["login"] for s in staff) == ["admin@a.test", "agent@a.test"]
    assert admin_a.get(f"/api/v1/insurers/{b}/staff").status_code == 404


def test_the_platform_invites_insurer_admins_and_security_operators(app: FastAPI, runtime: Runtime) -> None:
    with runtime.sessions.begin() as session:
        a = create_insurer(session=session, keys=runtime.keys, amc_number="12345678", name="A").id
    platform = PortalUser.invited(app, runtime, login="ops@rempart.test", roles={Role.PLATFORM_ADMIN})

    admin = platform.post(f"/api/v1/platform/insurers/{a}/admin-invitations", json={"login": "admin@a.test"})
    operator = platform.post("/api/v1/platform/security-operator-invitations", json={"login": "soc@rempart.test"})

    assert admin.status_code == 201, admin.text
    assert operator.status_code == 201, operator.text
    # A platform admin reads no insurer's data.
    assert platform.get(f"/api/v1/insurers/{a}/staff").status_code == 403


def test_the_platform_onboards_a_practice_whose_admin_then_enrols(app: FastAPI, runtime: Runtime) -> None:
    platform = PortalUser.invited(app, runtime, login="ops@rempart.test", roles={Role.PLATFORM_ADMIN})
    rpps = make_rpps()

    created = platform.post(
        "/api/v1/platform/practices",
        json={
            "name": "Cabinet dentaire du Port",
            "profession": "dentist",
            "finess": "130000001",
            "admin_login": "dr.port@dentiste.test",
            "admin_rpps": rpps,
        },
    )
    again = platform.post(
        "/api/v1/platform/practices",
        json={
            "name": "Doublon",
            "profession": "dentist",
            "finess": "130000001",
            "admin_login": "autre@dentiste.test",
            "admin_rpps": make_rpps(),
        },
    )

    assert created.status_code == 201, created.text
    assert again.status_code == 409
    dentist = PortalUser.browser(app, login="dr.port@dentiste.test")
    assert dentist.enrol(created.json()["enrol_url"].split("#", 1)[1]).status_code == 200
    assert dentist.get("/api/v1/auth/whoami").json()["rpps"] == rpps
    assert dentist.get("/api/v1/practice/clients").json() == []


def test_an_insurer_admin_invites_only_its_own_beneficiaries(app: FastAPI, runtime: Runtime) -> None:
    a = make_insurer(runtime, amc_number="11111111", name="A")
    b = make_insurer(runtime, amc_number="22222222", name="B")
    load_members(runtime, a, population(1, seed=1))
    load_members(runtime, b, population(1, seed=2, first_number=50))
    with runtime.sessions() as session:
        mine = session.scalars(select(Beneficiary.id).where(Beneficiary.insurer_id == a.id)).first()
        theirs = session.scalars(select(Beneficiary.id).where(Beneficiary.insurer_id == b.id)).first()
    admin = PortalUser.invited(app, runtime, login="admin@a.test", roles={Role.INSURER_ADMIN}, insurer_id=a.id)
    path = f"/api/v1/insurers/{a.id}/beneficiary-invitations"

    ok = admin.post(path, json={"beneficiary_id": str(mine), "login": "jeanne@example.test"})
    foreign = admin.post(path, json={"beneficiary_id": str(theirs), "login": "x@example.test"})
    missing = admin.post(path, json={"beneficiary_id": str(uuid.uuid4()), "login": "y@example.test"})

    assert ok.status_code == 201, ok.text
    assert foreign.status_code == missing.status_code == 404
    assert foreign.json() == missing.json()
    member = PortalUser.browser(app, login="jeanne@example.test")
    assert member.enrol(ok.json()["enrol_url"].split("#", 1)[1]).status_code == 200
    assert member.get("/api/v1/me/account").json()["roles"] == ["beneficiary"]
