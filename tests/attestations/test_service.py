"""Issuing attestations and the insurer's signing keys, at the service level, on SQLite and
PostgreSQL: what a token carries (and never carries), what it takes to verify one with nothing but
the published keys, rotation and revocation, validity per product, renewal before expiry."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import base45
import cbor2
import pytest
from sqlalchemy import select, update

from rempart.attestations.keys import do_revoke_attestation_key, do_rotate_attestation_key, published_keys
from rempart.attestations.models import Attestation, AttestationKey, IssueReason, SigningKeyState
from rempart.attestations.service import (
    Issued,
    NoRightsToAttest,
    contracts_due,
    do_issue_for_mailing,
    do_issue_own_attestation,
)
from rempart.audit.models import AccessEvent
from rempart.errors import Conflict
from rempart.insurers.models import Product
from rempart.members.models import Beneficiary, Contract
from rempart.members.validation import MemberRecord
from rempart.runtime import Runtime
from rempart_verifier import KeySet, Refusal, decode_unverified, verify
from tests.eligibility.world import NOW, World, build_world
from tests.factories import TODAY


@pytest.fixture
def world(runtime: Runtime) -> World:
    return build_world(runtime, members=12)


def beneficiary_of(world: World, record: MemberRecord) -> Beneficiary:
    with world.runtime.sessions() as session:
        found = [
            b
            for b in session.scalars(select(Beneficiary).where(Beneficiary.insurer_id == world.insurer.id))
            if world.runtime.keys.cipher(session, world.insurer.id).decrypt(
                b.nir_enc, table="beneficiaries", row_id=b.id, column="nir"
            )
            == record.nir
            and b.birth_rank == record.birth_rank
        ]
    return found[0]


def issue(world: World, record: MemberRecord, now: datetime = NOW) -> Issued:
    with world.runtime.sessions() as session:
        return do_issue_own_attestation(
            session,
            keys=world.runtime.keys,
            insurer_id=world.insurer.id,
            beneficiary_id=beneficiary_of(world, record).id,
            account_id=None,
            device=None,
            address="192.0.2.7",
            now=now,
        )


def keys(world: World, now: datetime = NOW) -> KeySet:
    with world.runtime.sessions() as session:
        return KeySet.from_jwks(published_keys(session, now=now).body)


def test_an_attestation_verifies_offline_and_confirms_its_patient_only(world: World) -> None:
    patient = world.patient(product="CONFORT")
    other = next(r for r in world.patients() if r.nir != patient.nir)
    issued = issue(world, patient)
    published = keys(world)

    verdict = verify(issued.token, keys=published, on=TODAY, nir=patient.nir, birth_date=patient.birth_date)
    assert verdict.valid, verdict.refusal
    shown = verdict.attestation
    assert shown is not None
    assert (shown.amc_number, shown.member_number, shown.birth_rank) == (
        world.insurer.amc_number,
        patient.member_number,
        patient.birth_rank,
    )
    assert shown.valid_from == TODAY
    assert shown.valid_to == TODAY + timedelta(days=13)  # the products' default: two weeks
    # The demo products: third-party payment everywhere, prior approval for optics, hearing, dental, hospital.
    assert shown.prior_approval == {"OPTI", "AUDI", "DENT", "HOSP"}
    assert "PHAR" in shown.third_party_payment

    wrong_person = verify(issued.token, keys=published, on=TODAY, nir=other.nir, birth_date=patient.birth_date)
    assert wrong_person.refusal is Refusal.NOT_THIS_PATIENT
    wrong_day = verify(
        issued.token, keys=published, on=TODAY, nir=patient.nir, birth_date=patient.birth_date + timedelta(days=1)
    )
    assert wrong_day.refusal is Refusal.NOT_THIS_PATIENT
    late = verify(issued.token, keys=published, on=TODAY + timedelta(days=14))
    assert late.refusal is Refusal.EXPIRED


def test_the_token_holds_no_identity_in_clear(world: World) -> None:
    patient = world.patient()
    issued = issue(world, patient)
    raw = base45.b45decode(issued.token.removeprefix("RA1:"))
    payload = cbor2.loads(cbor2.loads(raw).value[2])
    flat = repr(payload) + issued.token + raw.hex()
    for secret in (
        patient.nir,
        patient.nir[:13],
        patient.last_name,
        patient.first_name,
        patient.birth_date.isoformat(),
    ):
        assert secret not in flat
        assert secret.encode().hex() not in raw.hex()
    assert patient.birth_date.strftime("%d%m%Y") not in flat


def test_each_issue_is_recorded_and_in_the_access_log(world: World) -> None:
    patient = world.patient()
    issued = issue(world, patient)
    with world.runtime.sessions() as session:
        record = session.scalar(select(Attestation).where(Attestation.id == issued.record.id))
        assert record is not None
        assert record.reason is IssueReason.BENEFICIARY
        event = session.scalar(select(AccessEvent).where(AccessEvent.reference == str(issued.record.id)))
    assert event is not None
    assert event.operation == "attestation_issue"
    assert event.beneficiary_id == beneficiary_of(world, patient).id


def test_validity_follows_the_product_and_stops_at_the_contracts_end(world: World) -> None:
    patient = world.patient(product="CONFORT")
    with world.runtime.sessions.begin() as session:
        session.execute(update(Product).where(Product.code == "CONFORT").values(attestation_days=3))
    assert issue(world, patient).record.valid_to == TODAY + timedelta(days=2)
    with world.runtime.sessions.begin() as session:
        session.execute(
            update(Contract)
            .where(Contract.member_number == patient.member_number)
            .values(end_date=TODAY + timedelta(days=1))
        )
    assert issue(world, patient).record.valid_to == TODAY + timedelta(days=1)


def test_no_attestation_without_rights_today(world: World) -> None:
    with pytest.raises(NoRightsToAttest):
        issue(world, world.ended())


def test_rotation_keeps_what_the_old_key_signed_and_revocation_refuses_what_it_signed_later(world: World) -> None:
    patient = world.patient()
    before = issue(world, patient, NOW)
    later = issue(world, patient, NOW + timedelta(hours=2))
    first_etag = _etag(world)

    with world.runtime.sessions() as session:
        rotation = do_rotate_attestation_key(
            session, keks=world.runtime.keys.keks, amc_number=world.insurer.amc_number, now=NOW + timedelta(hours=3)
        )
    assert rotation.previous_kid == before.record.kid
    assert _etag(world) != first_etag
    after = issue(world, patient, NOW + timedelta(hours=4))
    assert after.record.kid == rotation.new_kid != before.record.kid
    published = keys(world, NOW + timedelta(hours=4))
    assert {before.record.kid, rotation.new_kid} <= published.kids
    for token in (before.token, later.token, after.token):
        assert verify(token, keys=published, on=TODAY).valid  # a rotation refuses nothing

    # The old key turns out to have leaked an hour after NOW: what it signed from then is refused.
    with world.runtime.sessions() as session:
        do_revoke_attestation_key(
            session, kid=before.record.kid, since=NOW + timedelta(hours=1), now=NOW + timedelta(hours=5)
        )
    published = keys(world, NOW + timedelta(hours=5))
    jwks = json.loads(_body(world))
    revoked = next(k for k in jwks["keys"] if k["kid"] == before.record.kid)
    assert revoked["revoked_at"] == int((NOW + timedelta(hours=1)).timestamp())
    assert verify(before.token, keys=published, on=TODAY).valid
    assert verify(later.token, keys=published, on=TODAY).refusal is Refusal.REVOKED_KEY
    assert verify(after.token, keys=published, on=TODAY).valid


def test_revoking_on_rotation_and_what_is_refused(world: World) -> None:
    patient = world.patient()
    issued = issue(world, patient)
    with world.runtime.sessions() as session:
        with pytest.raises(Conflict):
            do_rotate_attestation_key(
                session,
                keks=world.runtime.keys.keks,
                amc_number=world.insurer.amc_number,
                now=NOW,
                compromised_since=NOW,
            )
        rotation = do_rotate_attestation_key(
            session,
            keks=world.runtime.keys.keks,
            amc_number=world.insurer.amc_number,
            now=NOW + timedelta(minutes=1),
            revoke_previous=True,
            compromised_since=NOW - timedelta(minutes=1),
        )
        assert rotation.previous_revoked_at == NOW - timedelta(minutes=1)
        states = dict(session.execute(select(AttestationKey.kid, AttestationKey.state)).all())
    assert states == {issued.record.kid: SigningKeyState.REVOKED, rotation.new_kid: SigningKeyState.ACTIVE}
    assert verify(issued.token, keys=keys(world), on=TODAY).refusal is Refusal.REVOKED_KEY
    with world.runtime.sessions() as session, pytest.raises(Conflict):
        do_revoke_attestation_key(session, kid=rotation.new_kid, since=NOW, now=NOW + timedelta(minutes=2))


def test_the_published_keys_hold_no_private_half(world: World) -> None:
    issue(world, world.patient())
    body = _body(world)
    for key in json.loads(body)["keys"]:
        assert set(key) <= {"kty", "crv", "x", "kid", "use", "alg", "amc", "revoked_at"}
        assert key["amc"] == world.insurer.amc_number


def test_mailing_issues_a_file_per_contract_and_renewal_only_what_ends_soon(world: World) -> None:
    with world.runtime.sessions() as session:
        due = contracts_due(session, insurer_id=world.insurer.id, now=NOW)
        cards = list(
            do_issue_for_mailing(
                session,
                keys=world.runtime.keys,
                insurer_id=world.insurer.id,
                contract_ids=due,
                reason=IssueReason.MAILING,
                now=NOW,
            )
        )
    in_force = {r.member_number for r in world.patients()}
    assert {c.member_number for c in cards} == in_force
    assert sum(len(c.issued) for c in cards) == len(world.patients())
    published = keys(world)
    assert all(verify(i.token, keys=published, on=TODAY).valid for c in cards for i in c.issued)
    with world.runtime.sessions() as session:
        events = session.scalars(select(AccessEvent).where(AccessEvent.operation == "attestation_mailing")).all()
        assert len(events) == len(world.patients())
        # Two weeks' attestations: none is due for renewal within a week, all are within 14 days.
        assert contracts_due(session, insurer_id=world.insurer.id, now=NOW, renew_within_days=7) == []
        soon = contracts_due(session, insurer_id=world.insurer.id, now=NOW + timedelta(days=8), renew_within_days=7)
    assert len(soon) == len(in_force)


def _body(world: World) -> bytes:
    with world.runtime.sessions() as session:
        return published_keys(session, now=NOW + timedelta(hours=6)).body


def _etag(world: World) -> str:
    with world.runtime.sessions() as session:
        return published_keys(session, now=datetime.now(UTC)).etag


def test_decode_unverified_reads_the_card_for_display(world: World) -> None:
    issued = issue(world, world.patient())
    shown = decode_unverified(issued.token)
    assert shown.attestation_id == issued.record.id
