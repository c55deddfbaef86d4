"""The breach drill: two insurers' members, a month of a town's honest care traffic, and a planted
attack — two practice-software clients compromised from day 20, and a claims agent's account from
day 24. An incident is opened with their scope; the affected set computed from the access log equals
the planted ground truth exactly — nobody missing, nobody extra — per insurer and per field, and so
does the set of people only tried. The ground truth is what the attackers' own calls returned, kept
by the test as they were made, never read back from the log."""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

import pytest
from sqlalchemy import select

from rempart.audit.disclosures import DISCLOSURES, DataField, Operation
from rempart.audit.models import AccessEvent
from rempart.audit.sealing import seal_all
from rempart.claims.service import ClaimRequest, insurer_claims, submit_claim
from rempart.eligibility.service import RightsAnswer, RightsMiss, RightsOutcome, RightsQuery, check_rights
from rempart.identity.principal import PracticePrincipal
from rempart.incidents.facts import ScopeSet
from rempart.incidents.logcheck import log_status
from rempart.incidents.service import access_incident, do_add_scope, do_compute_facts, do_open_incident, scope_sets
from rempart.insurers.models import Insurer
from rempart.members.validation import MemberRecord
from rempart.professionals.models import Profession
from rempart.runtime import Runtime
from tests.eligibility.world import NOW, World, build_world, claims_agent, medicine, practice_principal
from tests.factories import load_members, make_insurer, population

START = NOW - timedelta(days=30)
CLIENTS_STOLEN = START + timedelta(days=20)
AGENT_STOLEN = START + timedelta(days=24)
RIGHTS = DISCLOSURES[Operation.RIGHTS_CHECK].fields
REVIEW = DISCLOSURES[Operation.CLAIM_REVIEW].fields


@dataclass
class Truth:
    """What the attackers' calls returned: per (insurer, beneficiary), the fields disclosed."""

    seen: dict[tuple[uuid.UUID, uuid.UUID], set[DataField]] = field(default_factory=dict)
    tried: set[tuple[uuid.UUID, uuid.UUID]] = field(default_factory=set)

    def saw(self, insurer_id: uuid.UUID, beneficiary_id: uuid.UUID, fields: frozenset[DataField]) -> None:
        self.seen.setdefault((insurer_id, beneficiary_id), set()).update(fields)

    def only_tried(self) -> set[tuple[uuid.UUID, uuid.UUID]]:
        return self.tried - set(self.seen)


def check(
    runtime: Runtime,
    caller: PracticePrincipal,
    insurer: Insurer,
    record: MemberRecord,
    at: datetime,
    *,
    wrong_birth: bool = False,
) -> RightsOutcome:
    query = RightsQuery(
        amc_number=insurer.amc_number,
        member_number=record.member_number,
        nir=record.nir,
        birth_date=record.birth_date + timedelta(days=1) if wrong_birth else record.birth_date,
        birth_rank=record.birth_rank,
        care_date=at.date(),
    )
    with runtime.sessions() as session:
        return check_rights(session=session, keys=runtime.keys, caller=caller, query=query, now=at)


@pytest.mark.slow
def test_the_affected_set_is_exactly_the_planted_attack(runtime: Runtime) -> None:
    rng = random.Random(2024)
    town = build_world(runtime, members=40)
    second = make_insurer(runtime, amc_number="77120303", name="Prévoyance du Littoral")
    others = population(30, seed=31, first_number=900)
    load_members(runtime, second, others)
    insurers = {town.insurer.id: (town.insurer, town), second.id: (second, World(runtime, second, others))}

    def in_force(world: World, day: date) -> list[MemberRecord]:
        return [r for r in world.records if world.in_force(r, day)]

    honest = [practice_principal(runtime, Profession.PHARMACIST) for _ in range(3)]
    stolen = [practice_principal(runtime, Profession.PHARMACIST) for _ in range(2)]
    agent = claims_agent(town.insurer)
    truth = Truth()

    for day in range(30):
        if day == 25:  # the sealer's work so far; the scope reads sealed and waiting events alike
            seal_all(runtime.sessions, signer=runtime.signing_keys, now=START + timedelta(days=day))
        morning = START + timedelta(days=day, hours=1)
        for n, caller in enumerate(honest + stolen):
            insurer, world = insurers[town.insurer.id if (day + n) % 3 else second.id]
            for k, record in enumerate(rng.sample(in_force(world, morning.date()), 3)):
                at = morning + timedelta(minutes=10 * n + k)
                answer = check(runtime, caller, insurer, record, at)
                if caller in stolen and at >= CLIENTS_STOLEN:
                    # The thief's use of the client after it was stolen: every answer counts.
                    assert isinstance(answer, RightsAnswer)
                    truth.saw(insurer.id, answer.beneficiary_id, RIGHTS)
                if caller in honest and k == 0 and isinstance(answer, RightsAnswer):
                    with runtime.sessions() as session:
                        submit_claim(
                            session=session,
                            caller=caller,
                            request=ClaimRequest(check_id=answer.check_id, lines=(medicine(at.date()),)),
                            idempotency_key=str(uuid.uuid4()),
                            now=at + timedelta(minutes=2),
                        )
        if START + timedelta(days=day) >= CLIENTS_STOLEN:
            # The thieves' own work: a sweep of one insurer's cards, ended contracts (misses that name
            # someone), and made-up identities (misses that name nobody).
            for n, caller in enumerate(stolen):
                insurer, world = insurers[town.insurer.id if n == 0 else second.id]
                at = START + timedelta(days=day, hours=22, minutes=n)
                for record in rng.sample(in_force(world, at.date()), 4):
                    answer = check(runtime, caller, insurer, record, at)
                    assert isinstance(answer, RightsAnswer)
                    truth.saw(insurer.id, answer.beneficiary_id, RIGHTS)
                for record in [r for r in world.records if not world.in_force(r, at.date())][:2]:
                    missed = check(runtime, caller, insurer, record, at)
                    assert isinstance(missed, RightsMiss)
                    assert missed.beneficiary_id is not None
                    truth.tried.add((insurer.id, missed.beneficiary_id))
                made_up = check(runtime, caller, insurer, in_force(world, at.date())[0], at, wrong_birth=True)
                assert isinstance(made_up, RightsMiss)
                assert made_up.beneficiary_id is None
        if START + timedelta(days=day) >= AGENT_STOLEN and day % 2 == 0:
            with runtime.sessions() as session:
                listed = insurer_claims(session, staff=agent, now=START + timedelta(days=day, hours=23), limit=25)
                for claim in listed:
                    truth.saw(claim.insurer_id, claim.beneficiary_id, REVIEW)
    # An honest week for the agent before the theft is not the thief's.
    with runtime.sessions() as session:
        insurer_claims(session, staff=agent, now=START + timedelta(days=10), limit=25)

    with runtime.sessions() as session:
        incident = do_open_incident(
            session,
            title="Practice software keys stolen; a claims agent's account phished",
            nature=["confidentiality"],
            contact="Rempart security, securite@rempart.example, +33 1 00 00 00 00",
            operator_id=None,
            now=NOW,
        )
        do_add_scope(
            session,
            incident_id=incident.id,
            scope=ScopeSet(
                since=CLIENTS_STOLEN,
                until=NOW + timedelta(hours=1),
                actor_ids=frozenset(c.client_id for c in stolen if c.client_id),
                label="two stolen client keys",
            ),
            operator_id=None,
            now=NOW,
        )
        do_add_scope(
            session,
            incident_id=incident.id,
            scope=ScopeSet(since=AGENT_STOLEN, until=NOW + timedelta(hours=1), actor_ids=frozenset({agent.account_id})),
            operator_id=None,
            now=NOW,
        )
        facts = do_compute_facts(session, incident_id=incident.id, operator_id=None, now=NOW)

    assert len(truth.seen) > 30  # the attack reached dozens of people…
    assert truth.only_tried()  # …and tried a few it could not see
    assert any(fields >= REVIEW for fields in truth.seen.values())  # the agent's reading is in it
    computed = {
        (found.insurer_id, p.beneficiary_id): set(p.fields) for found in facts.insurers for p in found.disclosed
    }
    assert set(computed) == set(truth.seen), (
        f"missing {len(set(truth.seen) - set(computed))}, extra {len(set(computed) - set(truth.seen))}"
    )
    assert computed == truth.seen  # per person, the very fields
    attempted = {(found.insurer_id, a.beneficiary_id) for found in facts.insurers for a in found.attempted}
    assert attempted == truth.only_tried()
    assert {f.insurer_id for f in facts.insurers} == {town.insurer.id, second.id}
    for found in facts.insurers:
        assert found.people == len([k for k in truth.seen if k[0] == found.insurer_id])
        assert found.unattributed_attempts > 0  # the made-up identities: counted, named nowhere
    # The honest practices' checks of the same people are not the thieves': the log holds far more.
    with runtime.sessions() as session:
        everyone = set(
            session.scalars(select(AccessEvent.beneficiary_id).where(AccessEvent.beneficiary_id.is_not(None)))
        )
    assert len(everyone) > len(truth.seen)

    # Sealed to the end, the log verifies over the windows, and the facts computed again are the same.
    seal_all(runtime.sessions, signer=runtime.signing_keys, now=NOW)
    with runtime.sessions() as session:
        sets = scope_sets(session, access_incident(session, incident.id))
        log = log_status(runtime.engine, keys=runtime.signing_keys.public_keys(), sets=sets, now=NOW)
        again = do_compute_facts(session, incident_id=incident.id, operator_id=None, now=NOW, log=log)
    assert log.verified, log.problem
    assert {(f.insurer_id, p.beneficiary_id): set(p.fields) for f in again.insurers for p in f.disclosed} == truth.seen
