"""Transparency: the beneficiary sees who accessed their data, when, why and what; their insurer
sees accesses to its members; break-glass needs a second operator, expires, and shows in both."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from fastapi import FastAPI
from sqlalchemy import select

from rempart.app import create_app
from rempart.audit.access_log import beneficiary_access_log, set_staff_names_shown
from rempart.audit.disclosures import Operation
from rempart.audit.models import AccessEvent, ActorKind, Channel, Outcome
from rempart.audit.service import Actor, record_access
from rempart.identity.context import IdentityServices
from rempart.identity.permissions import Role
from rempart.members.models import Beneficiary, Contract
from rempart.members.validation import MemberRecord
from rempart.professionals.models import Profession
from rempart.runtime import Runtime
from tests.eligibility.world import World, build_world
from tests.factories import TODAY
from tests.support.clock import FakeClock
from tests.support.portal import PortalUser
from tests.support.practice_client import PracticeClient

NOW = datetime(TODAY.year, TODAY.month, TODAY.day, 9, 30, tzinfo=UTC)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(NOW)


@pytest.fixture
def app(runtime: Runtime, clock: FakeClock) -> FastAPI:
    application = create_app(runtime)
    application.state.identity = IdentityServices.build(runtime.settings, clock=clock, prefix=f"t{uuid.uuid4().hex}")
    return application


@pytest.fixture
def world(runtime: Runtime) -> World:
    return build_world(runtime, members=12)


def _beneficiary_id(runtime: Runtime, world: World, record: MemberRecord) -> uuid.UUID:
    """The internal id of a member's record (the one whose rights check names them)."""
    with runtime.sessions() as session:
        ids = session.scalars(
            select(Beneficiary.id)
            .join(Contract, (Contract.insurer_id == Beneficiary.insurer_id) & (Contract.id == Beneficiary.contract_id))
            .where(Contract.insurer_id == world.insurer.id, Contract.member_number == record.member_number)
        ).all()
    assert ids
    return ids[0] if len(ids) == 1 else _matching(runtime, world, record, list(ids))


def _matching(runtime: Runtime, world: World, record: MemberRecord, ids: list[uuid.UUID]) -> uuid.UUID:
    with runtime.sessions() as session:
        cipher = runtime.keys.cipher(session, world.insurer.id)
        wanted = cipher.identity_index(record.nir, record.birth_date, record.birth_rank)
        return next(
            b.id
            for b in session.scalars(select(Beneficiary).where(Beneficiary.id.in_(ids)))
            if b.identity_bidx == wanted
        )


def _rights_check(pharmacy: PracticeClient, world: World, record: MemberRecord, **overrides: object) -> int:
    body: dict[str, object] = {
        "amc_number": world.insurer.amc_number,
        "member_number": record.member_number,
        "nir": record.nir,
        "birth_date": record.birth_date.isoformat(),
        "birth_rank": record.birth_rank,
    } | overrides
    return pharmacy.post("/api/v1/rights-checks", json=body).status_code


def test_the_beneficiary_sees_the_practice_not_the_staff_unless_the_insurer_chooses(
    runtime: Runtime, world: World
) -> None:
    patient = world.patient()
    person = _beneficiary_id(runtime, world, patient)
    staff = uuid.uuid4()
    with runtime.sessions.begin() as session:
        from rempart.identity.models import Account

        session.add(
            Account(
                id=staff,
                login="c.martin@mutuelle.test",
                user_handle=uuid.uuid4().bytes * 2,
                insurer_id=world.insurer.id,
            )
        )
        from rempart.professionals.service import create_practice

        practice = create_practice(
            session=session, name="Optique de la Place", profession=Profession.OPTICIAN, finess="690000123"
        )
        for when, actor, operation, channel in (
            (
                NOW,
                Actor(ActorKind.PRACTICE_SOFTWARE, id=uuid.uuid4(), practice_id=practice.id, profession="optician"),
                Operation.RIGHTS_CHECK,
                Channel.PRO_API,
            ),
            (
                NOW + timedelta(hours=1),
                Actor(ActorKind.INSURER_STAFF, id=staff),
                Operation.BACKOFFICE_MEMBER_VIEW,
                Channel.BACKOFFICE,
            ),
        ):
            record_access(
                session,
                operation=operation,
                actor=actor,
                channel=channel,
                outcome=Outcome.DISCLOSED,
                insurer_id=world.insurer.id,
                beneficiary_id=person,
                occurred_at=when,
            )

    with runtime.sessions() as session:
        page = beneficiary_access_log(session, insurer_id=world.insurer.id, beneficiary_id=person, lang="fr")
    staff_view, optician = page.entries
    assert (optician.who.label, optician.who.profession) == ("Optique de la Place", "opticien")
    assert optician.why == "vérification de vos droits"
    assert "garanties" in optician.what
    assert staff_view.who.label == "personnel de Mutuelle des Remparts"
    assert "numéro de sécurité sociale" in staff_view.what

    with runtime.sessions.begin() as session:
        set_staff_names_shown(session, insurer_id=world.insurer.id, shown=True, now=NOW)
    with runtime.sessions() as session:
        named = beneficiary_access_log(session, insurer_id=world.insurer.id, beneficiary_id=person)
    assert named.entries[0].who.label == "c.martin@mutuelle.test"


def test_pages_follow_each_other_without_gaps(runtime: Runtime, world: World) -> None:
    person = _beneficiary_id(runtime, world, world.patient())
    with runtime.sessions.begin() as session:
        for i in range(7):
            record_access(
                session,
                operation=Operation.RIGHTS_CHECK,
                actor=Actor(ActorKind.PRACTICE_SOFTWARE, id=uuid.uuid4(), practice_id=uuid.uuid4()),
                channel=Channel.PRO_API,
                outcome=Outcome.DISCLOSED,
                insurer_id=world.insurer.id,
                beneficiary_id=person,
                occurred_at=NOW + timedelta(minutes=i // 2),  # pairs share a time: paging must not skip
            )
    seen: list[uuid.UUID] = []
    cursor = None
    with runtime.sessions() as session:
        while True:
            page = beneficiary_access_log(
                session, insurer_id=world.insurer.id, beneficiary_id=person, cursor=cursor, limit=3
            )
            seen += [e.event_id for e in page.entries]
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
    assert len(seen) == len(set(seen)) == 7


def test_over_http_a_rights_check_shows_in_both_views_and_the_insurers_reading_is_recorded(
    app: FastAPI, runtime: Runtime, world: World
) -> None:
    patient = world.patient()
    person = _beneficiary_id(runtime, world, patient)
    pharmacy = PracticeClient.register(app, runtime, profession=Profession.PHARMACIST, practice_name="Pharmacie Vauban")
    assert _rights_check(pharmacy, world, patient) == 200
    assert _rights_check(pharmacy, world, patient, member_number="0999999999") == 404  # a miss: no one named

    me = PortalUser.invited(
        app,
        runtime,
        login="beneficiaire@exemple.test",
        roles={Role.BENEFICIARY},
        insurer_id=world.insurer.id,
        beneficiary_id=person,
    )
    mine = me.get("/api/v1/me/access-log")
    assert mine.status_code == 200, mine.text
    [check] = mine.json()["accesses"]
    assert check["who"] == {"kind": "practice", "label": "Pharmacie Vauban", "profession": "pharmacy"}
    assert check["why"] == "checking your rights for care"
    assert check["outcome"] == "disclosed"
    assert "guarantees" in check["what"]
    assert patient.nir not in mine.text
    assert "actor_id" not in check  # ids and addresses are for the insurer

    dpo = PortalUser.invited(app, runtime, login="dpo@remparts.test", roles={Role.DPO}, insurer_id=world.insurer.id)
    theirs = dpo.get(f"/api/v1/insurers/{world.insurer.id}/access-log", params={"beneficiary_id": str(person)})
    assert theirs.status_code == 200, theirs.text
    [seen] = theirs.json()["accesses"]
    assert (seen["practice_id"], seen["beneficiary_id"]) == (str(pharmacy.practice_id), str(person))
    everything = dpo.get(f"/api/v1/insurers/{world.insurer.id}/access-log").json()["accesses"]
    assert {a["outcome"] for a in everything} >= {"disclosed", "miss"}

    # The person sees that their insurer looked at their accesses.
    again = me.get("/api/v1/me/access-log", params={"lang": "fr"}).json()["accesses"]
    assert again[0]["why"] == "contrôle du journal des accès"
    assert again[0]["who"]["label"] == "personnel de Mutuelle des Remparts"

    stranger = PortalUser.invited(
        app, runtime, login="dpo@autre.test", roles={Role.DPO}, insurer_id=_other_insurer(runtime)
    )
    assert stranger.get(f"/api/v1/insurers/{world.insurer.id}/access-log").status_code == 404
    assert pharmacy.get("/api/v1/me/access-log").status_code in {401, 403}


def _other_insurer(runtime: Runtime) -> uuid.UUID:
    from rempart.insurers.service import create_insurer

    with runtime.sessions.begin() as session:
        return create_insurer(session=session, keys=runtime.keys, amc_number="99887766", name="Autre Mutuelle").id


def test_break_glass_needs_a_second_operator_expires_and_shows_in_both_views(
    app: FastAPI, runtime: Runtime, world: World, clock: FakeClock
) -> None:
    patient = world.patient()
    person = _beneficiary_id(runtime, world, patient)
    alice = PortalUser.invited(app, runtime, login="alice@rempart.test", roles={Role.SECURITY_OPERATOR})
    bob = PortalUser.invited(app, runtime, login="bob@rempart.test", roles={Role.SECURITY_OPERATOR})
    asked = alice.post(
        "/api/v1/break-glass",
        json={
            "insurer_id": str(world.insurer.id),
            "beneficiary_id": str(person),
            "reason": "Member reports a card refused at every pharmacy since Monday",
            "ticket": "INC-2026-114",
            "minutes": 30,
        },
    )
    assert asked.status_code == 201, asked.text
    grant = asked.json()["id"]

    assert alice.get(f"/api/v1/break-glass/{grant}/beneficiary").status_code == 403  # not approved yet
    assert alice.post(f"/api/v1/break-glass/{grant}/approve").status_code == 403  # not by herself
    approved = bob.post(f"/api/v1/break-glass/{grant}/approve")
    assert approved.status_code == 200, approved.text
    assert bob.get(f"/api/v1/break-glass/{grant}/beneficiary").status_code == 403  # only the one who asked

    opened = alice.get(f"/api/v1/break-glass/{grant}/beneficiary")
    assert opened.status_code == 200, opened.text
    assert (opened.json()["nir"], opened.json()["last_name"]) == (patient.nir, patient.last_name)

    clock.advance(minutes=31)
    assert alice.sign_in().status_code == 200  # the session idled out meanwhile
    assert alice.get(f"/api/v1/break-glass/{grant}/beneficiary").status_code == 403  # expired

    with runtime.sessions() as session:
        events = session.scalars(select(AccessEvent).where(AccessEvent.operation == "break_glass_view")).all()
    assert len(events) == 1  # one opening, one event; refusals disclosed nothing

    me = PortalUser.invited(
        app,
        runtime,
        login="patient@exemple.test",
        roles={Role.BENEFICIARY},
        insurer_id=world.insurer.id,
        beneficiary_id=person,
    )
    [seen] = me.get("/api/v1/me/access-log").json()["accesses"]
    assert seen["who"]["kind"] == "operator"
    assert "second operator" in seen["who"]["label"]
    assert seen["break_glass"]["ticket"] == "INC-2026-114"
    assert "alice" not in str(seen)

    dpo = PortalUser.invited(app, runtime, login="dpo@remparts.test", roles={Role.DPO}, insurer_id=world.insurer.id)
    [logged] = [
        a
        for a in dpo.get(f"/api/v1/insurers/{world.insurer.id}/access-log").json()["accesses"]
        if a["operation"] == "break_glass_view"
    ]
    assert logged["break_glass"]["requested_by"] == str(alice.account_id)
    assert logged["break_glass"]["approved_by"] == str(bob.account_id)
    assert logged["break_glass"]["reason"].startswith("Member reports")


def test_an_insurer_fetches_signed_heads_to_keep_as_a_witness(app: FastAPI, runtime: Runtime, world: World) -> None:
    from rempart.audit.api import audit_keys  # noqa: F401  (keys are created on first use)
    from rempart.audit.keys import PublicKeys, load_signing_keys
    from rempart.audit.sealing import seal_all
    from rempart.audit.witness import check_heads

    with runtime.sessions.begin() as session:
        record_access(
            session,
            operation=Operation.RIGHTS_CHECK,
            actor=Actor(ActorKind.PRACTICE_SOFTWARE, id=uuid.uuid4()),
            channel=Channel.PRO_API,
            outcome=Outcome.MISS,
            insurer_id=world.insurer.id,
        )
    seal_all(runtime.sessions, signer=load_signing_keys(runtime.settings), now=NOW)
    dpo = PortalUser.invited(app, runtime, login="dpo@remparts.test", roles={Role.DPO}, insurer_id=world.insurer.id)

    body = dpo.get(f"/api/v1/insurers/{world.insurer.id}/access-log/checkpoints").json()

    assert [h["number"] for h in body["heads"]] == [1]
    assert check_heads(body["heads"], PublicKeys.from_jwks(body["jwks"])) == []


def test_an_insurer_checks_that_a_later_checkpoint_extends_the_one_it_kept(
    app: FastAPI, runtime: Runtime, world: World
) -> None:
    from rempart.audit.keys import PublicKeys, load_signing_keys
    from rempart.audit.proofs import check_consistency
    from rempart.audit.sealing import seal_all

    signer = load_signing_keys(runtime.settings)
    for _round in range(3):
        with runtime.sessions.begin() as session:
            record_access(
                session,
                operation=Operation.RIGHTS_CHECK,
                actor=Actor(ActorKind.PRACTICE_SOFTWARE, id=uuid.uuid4()),
                channel=Channel.PRO_API,
                outcome=Outcome.MISS,
                insurer_id=world.insurer.id,
            )
        seal_all(runtime.sessions, signer=signer, now=NOW)
    dpo = PortalUser.invited(app, runtime, login="dpo@remparts.test", roles={Role.DPO}, insurer_id=world.insurer.id)
    kept = dpo.get(f"/api/v1/insurers/{world.insurer.id}/access-log/checkpoints").json()["heads"][0]["head"]

    proof = dpo.get(f"/api/v1/insurers/{world.insurer.id}/access-log/consistency", params={"from": 1}).json()

    result = check_consistency(proof, PublicKeys.from_jwks(signer.public_keys().jwks()), old_head=kept)
    assert (result.ok, result.reason) == (True, "checkpoint 3 extends checkpoint 1")
    refused = dpo.get(f"/api/v1/insurers/{world.insurer.id}/access-log/consistency", params={"from": 4, "to": 2})
    assert refused.status_code == 422
    assert refused.headers["content-type"] == "application/problem+json"
