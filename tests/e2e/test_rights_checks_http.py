"""Rights checks over HTTP: every miss is the same bytes; bad input is a clear 422 that echoes
nothing; the batch form; and one claim for 20 identical submissions sent at once."""

from __future__ import annotations

import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from rempart.audit.models import AccessEvent, Outcome
from rempart.claims.models import Claim
from rempart.members.validation import MemberRecord
from rempart.professionals.models import Profession
from rempart.runtime import Runtime
from tests.e2e.scan import identities_in
from tests.eligibility.world import World, build_world
from tests.factories import TODAY
from tests.support.practice_client import PracticeClient


@pytest.fixture
def world(runtime: Runtime, population: list[MemberRecord]) -> World:
    built = build_world(runtime, members=20)
    population.extend(built.records)
    return built


@pytest.fixture
def pharmacy(app: FastAPI, runtime: Runtime, world: World) -> PracticeClient:
    return PracticeClient.register(app, runtime, profession=Profession.PHARMACIST)


def body(world: World, record: MemberRecord, **overrides: object) -> dict[str, object]:
    fields: dict[str, object] = {
        "amc_number": world.insurer.amc_number,
        "member_number": record.member_number,
        "nir": record.nir,
        "birth_date": record.birth_date.isoformat(),
        "birth_rank": record.birth_rank,
    }
    fields.update(overrides)
    return fields


def test_every_kind_of_miss_answers_the_same_bytes(
    app: FastAPI, runtime: Runtime, world: World, pharmacy: PracticeClient
) -> None:
    patient = world.patient()
    other = world.patients()[1]
    ended = world.ended()
    misses = {
        "unknown insurer": body(world, patient, amc_number="99999999"),
        "unknown card": body(world, patient, member_number="0999999999"),
        "wrong NIR": body(world, patient, nir=other.nir),
        "wrong date of birth": body(world, patient, birth_date=(patient.birth_date - timedelta(days=1)).isoformat()),
        "wrong birth rank": body(world, patient, birth_rank=patient.birth_rank + 1),
        "ended contract": body(world, ended),
        "before the contract": body(world, patient, care_date=(patient.contract_start - timedelta(days=1)).isoformat())
        if patient.contract_start > TODAY - timedelta(days=700)
        else body(world, ended),
    }
    hit = pharmacy.post("/api/v1/rights-checks", json=body(world, patient))
    assert hit.status_code == 200

    # One pharmacy per kind of miss: a run of misses from one practice is what detection slows down.
    answers = {
        name: PracticeClient.register(app, runtime, profession=Profession.PHARMACIST).post(
            "/api/v1/rights-checks", json=sent
        )
        for name, sent in misses.items()
    }

    statuses = {name: r.status_code for name, r in answers.items()}
    assert set(statuses.values()) == {404}, statuses
    bodies = {r.content for r in answers.values()}
    assert len(bodies) == 1, bodies
    assert {r.headers["content-type"] for r in answers.values()} == {"application/problem+json"}
    assert answers["wrong NIR"].json() == {
        "type": "/problems/no-matching-rights",
        "title": "No matching rights",
        "status": 404,
        "detail": "No rights match this card, NIR and date of birth on the date of care.",
    }


def test_a_malformed_nir_is_a_clear_error_that_does_not_echo_it(world: World, pharmacy: PracticeClient) -> None:
    patient = world.patient()
    broken = patient.nir[:-2] + ("00" if patient.nir[-2:] != "00" else "01")

    response = pharmacy.post("/api/v1/rights-checks", json=body(world, patient, nir=broken))

    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert [e["field"] for e in response.json()["errors"]] == ["nir"]
    assert broken not in response.text
    assert identities_in(response.content, world.records, allowed_dates=set()) == []


def test_a_batch_answers_each_appointment_like_a_single_check(world: World, pharmacy: PracticeClient) -> None:
    a, b = world.patients()[:2]
    single_miss = pharmacy.post("/api/v1/rights-checks", json=body(world, a, member_number="0999999999"))

    response = pharmacy.post(
        "/api/v1/rights-checks/batch",
        json={"checks": [body(world, a), body(world, a, member_number="0999999999"), body(world, b)]},
    )

    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert [r["status"] for r in results] == [200, 404, 200]
    assert results[1]["problem"] == single_miss.json()
    assert results[0]["rights"]["domains"][0]["care_domain"] == "PHAR"
    too_many = pharmacy.post("/api/v1/rights-checks/batch", json={"checks": [body(world, a)] * 51})
    assert too_many.status_code == 422


def test_twenty_identical_claims_sent_at_once_make_one_claim(
    world: World, pharmacy: PracticeClient, runtime: Runtime
) -> None:
    check = pharmacy.post("/api/v1/rights-checks", json=body(world, world.patient())).json()
    claim = {
        "check_id": check["check_id"],
        "lines": [
            {
                "care_domain": "PHAR",
                "act_code": "3400930000001",
                "care_date": TODAY.isoformat(),
                "unit_price_cents": 1_000,
                "brss_cents": 1_000,
                "amo_rate_pct": 65,
            }
        ],
    }
    pharmacy.token()  # one token for all, as billing software keeps it
    key = str(uuid.uuid4())
    start = threading.Barrier(20)

    def send(_: int) -> tuple[int, str]:
        headers = pharmacy.headers("POST", "/api/v1/claims")
        headers["Idempotency-Key"] = key
        start.wait()
        response = pharmacy.client.post("/api/v1/claims", json=claim, headers=headers)
        return response.status_code, response.json().get("claim_id", response.text)

    with ThreadPoolExecutor(max_workers=20) as pool:
        answers = list(pool.map(send, range(20)))

    assert sorted(status for status, _ in answers) == [200] * 19 + [201]
    assert len({claim_id for _, claim_id in answers}) == 1
    with runtime.sessions() as session:
        assert session.scalar(select(func.count()).select_from(Claim)) == 1


def test_the_scanner_finds_an_identity_when_there_is_one(world: World) -> None:
    person = world.records[0]
    leaked = f'{{"who": "{person.last_name.upper()}", "n": "{person.nir}"}}'.encode()

    found = identities_in(leaked, [person], allowed_dates=set())

    assert f"the NIR of member {person.member_number}" in found
    assert f"the last name of member {person.member_number}" in found
    assert identities_in(b'{"birth_date": "x"}', [], allowed_dates=set()) == ["a 'birth_date' field"]


def test_when_detection_stops_a_caller_the_refusal_is_logged_and_nothing_leaves(
    world: World, pharmacy: PracticeClient, runtime: Runtime
) -> None:
    patient = world.patient()
    answers = []
    for n in range(40):
        answer = pharmacy.post("/api/v1/rights-checks", json=body(world, patient, member_number=f"09{n:08d}"))
        answers.append(answer.status_code)
        if answer.status_code != 404:
            break
    refused = pharmacy.post("/api/v1/rights-checks", json=body(world, patient))

    assert answers[-1] in (403, 429), answers
    assert refused.status_code in (403, 429)
    assert "check_id" not in refused.text
    with runtime.sessions() as session:
        last = session.scalars(
            select(AccessEvent)
            .where(AccessEvent.operation == "rights_check", AccessEvent.practice_id == pharmacy.practice_id)
            .order_by(AccessEvent.id.desc())
            .limit(1)
        ).one()
    # Detection's own containment events may follow; the check itself is on record as refused.
    assert (last.outcome, last.fields, last.reference) == (Outcome.REFUSED, "", "refused-by-detection")
    # The patient looked up is named: their access log shows the attempt, though nothing was disclosed.
    assert last.beneficiary_id is not None
