"""Claims under attestation: billed on the patient's signed offline attestation while the platform
was off, adjudicated afterwards on what the attestation promised on the date of care.

Accepted even when the rights changed since; rejected with their own reason code when the
attestation had expired on the date of care, when its key was revoked before it was signed, or when
it gave no third-party payment for the care billed; refused outright (nothing stored) when the
insurer never issued it — a forged signature, or a genuine key's signature on an attestation that
is not in the insurer's records."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import func, select, update

from rempart.attestations.keys import do_revoke_attestation_key, do_rotate_attestation_key, signing_key
from rempart.claims.models import Claim, ClaimReason, ClaimStatus
from rempart.claims.offline import AttestationNotGenuine
from rempart.claims.service import ClaimRequest, insurer_claims, review_claim, submit_claim
from rempart.identity.principal import PracticePrincipal
from rempart.insurers.models import CareDomain, Guarantee
from rempart.members.models import Contract
from rempart.professionals.models import Profession
from rempart.runtime import Runtime
from rempart_verifier import decode_unverified, sign
from tests.attestations.test_service import issue
from tests.eligibility.world import NOW, World, build_world, claims_agent, frames, medicine, practice_principal
from tests.factories import TODAY


@pytest.fixture
def world(runtime: Runtime) -> World:
    return build_world(runtime, members=12)


@pytest.fixture
def pharmacy(runtime: Runtime) -> PracticePrincipal:
    return practice_principal(runtime, Profession.PHARMACIST)


def bill(world: World, caller: PracticePrincipal, token: str, *lines: object, key: str | None = None, days: int = 2):
    with world.runtime.sessions() as session:
        return submit_claim(
            session=session,
            caller=caller,
            request=ClaimRequest(check_id=None, lines=tuple(lines) or (medicine(),), attestation=token),  # type: ignore[arg-type]
            idempotency_key=key or str(uuid.uuid4()),
            now=NOW + timedelta(days=days),  # the platform came back two days later
        )


def test_a_claim_under_attestation_is_accepted_even_if_rights_ended_since(
    world: World, pharmacy: PracticePrincipal
) -> None:
    patient = world.patient()
    issued = issue(world, patient)
    # The contract was ended (backdated) while the platform was off: the attestation still holds.
    with world.runtime.sessions.begin() as session:
        session.execute(
            update(Contract)
            .where(Contract.member_number == patient.member_number)
            .values(end_date=TODAY - timedelta(days=30))
        )
    outcome = bill(world, pharmacy, issued.token, medicine(TODAY + timedelta(days=1)))
    claim = outcome.claim
    assert claim.status is ClaimStatus.ACCEPTED, claim.reason_code
    assert claim.attestation_id == issued.record.id
    assert claim.insurer_cents > 0

    again = bill(world, pharmacy, issued.token, medicine(TODAY + timedelta(days=1)), key="k-1")
    replayed = bill(world, pharmacy, issued.token, medicine(TODAY + timedelta(days=1)), key="k-1")
    assert replayed.replayed
    assert replayed.claim.id == again.claim.id

    with world.runtime.sessions() as session:
        listed = insurer_claims(session, staff=claims_agent(world.insurer), now=NOW, under_attestation=True)
        assert {c.id for c in listed} == {claim.id, again.claim.id}
        assert insurer_claims(session, staff=claims_agent(world.insurer), now=NOW, under_attestation=False) == []


def test_care_after_the_attestation_expired_is_rejected_with_its_reason(
    world: World, pharmacy: PracticePrincipal
) -> None:
    issued = issue(world, world.patient())
    late = medicine(issued.record.valid_to + timedelta(days=1))
    claim = bill(world, pharmacy, issued.token, late, days=20).claim
    assert (claim.status, claim.reason_code) == (ClaimStatus.REJECTED, ClaimReason.ATTESTATION_EXPIRED)
    assert claim.attestation_id == issued.record.id


def test_an_attestation_signed_after_its_keys_revocation_is_rejected(world: World, pharmacy: PracticePrincipal) -> None:
    issued = issue(world, world.patient(), NOW)
    with world.runtime.sessions() as session:
        rotation = do_rotate_attestation_key(
            session, keks=world.runtime.keys.keks, amc_number=world.insurer.amc_number, now=NOW + timedelta(hours=1)
        )
        do_revoke_attestation_key(session, kid=rotation.previous_kid or "", since=NOW, now=NOW + timedelta(hours=2))
    claim = bill(world, pharmacy, issued.token).claim
    assert (claim.status, claim.reason_code) == (ClaimStatus.REJECTED, ClaimReason.ATTESTATION_KEY_REVOKED)


def test_care_the_attestation_gave_no_third_party_payment_for_is_rejected(
    world: World, pharmacy: PracticePrincipal
) -> None:
    patient = world.patient(product="CONFORT")
    with world.runtime.sessions.begin() as session:
        session.execute(
            update(Guarantee).where(Guarantee.care_domain == CareDomain.PHAR).values(third_party_payment=False)
        )
    issued = issue(world, patient)
    assert "PHAR" not in issued.third_party_payment
    claim = bill(world, pharmacy, issued.token).claim
    assert (claim.status, claim.reason_code) == (ClaimStatus.REJECTED, ClaimReason.ATTESTATION_DOMAIN)


def test_a_forged_attestation_is_refused_and_nothing_is_stored(world: World, pharmacy: PracticePrincipal) -> None:
    issued = issue(world, world.patient())
    genuine = decode_unverified(issued.token)
    thief = Ed25519PrivateKey.generate()
    forged_signature = sign(genuine, private_key=thief)  # same key id, another key
    with world.runtime.sessions() as session:
        key = signing_key(session, keks=world.runtime.keys.keks, insurer_id=world.insurer.id)
    # Signed with the insurer's own key (stolen), but never issued: no record of it.
    never_issued = sign(replace(genuine, attestation_id=uuid.uuid4()), private_key=key.private_key)
    longer = sign(replace(genuine, valid_to=genuine.valid_to + timedelta(days=300)), private_key=key.private_key)
    for token, reason in ((forged_signature, "tampered"), (never_issued, "not-issued"), (longer, "not-issued")):
        with pytest.raises(AttestationNotGenuine) as refused:
            bill(world, pharmacy, token)
        assert refused.value.problem()["attestation_refusal"] == reason
    with world.runtime.sessions() as session:
        assert session.scalar(select(func.count()).select_from(Claim)) == 0


def test_a_pending_claim_under_attestation_is_reviewed_on_the_attestation(world: World) -> None:
    optician = practice_principal(world.runtime, Profession.OPTICIAN)
    patient = world.patient(product="PREMIUM")
    issued = issue(world, patient)
    with world.runtime.sessions.begin() as session:
        session.execute(
            update(Guarantee).where(Guarantee.care_domain == CareDomain.OPTI).values(prior_approval_required=False)
        )
    with world.runtime.sessions() as session:
        outcome = submit_claim(
            session=session,
            caller=optician,
            request=ClaimRequest(check_id=None, lines=(frames(price=25_000),), attestation=issued.token),
            idempotency_key="pending-1",
            now=NOW + timedelta(days=1),
            review_threshold_cents=100,
        )
    assert outcome.claim.status is ClaimStatus.PENDING_REVIEW
    with world.runtime.sessions.begin() as session:
        session.execute(
            update(Contract)
            .where(Contract.member_number == patient.member_number)
            .values(end_date=TODAY - timedelta(days=1))
        )
    with world.runtime.sessions() as session:
        reviewed = review_claim(
            session=session,
            keys=world.runtime.keys,
            staff=claims_agent(world.insurer),
            claim_id=outcome.claim.id,
            accept=True,
            now=NOW,
        )
    assert reviewed.status is ClaimStatus.ACCEPTED
