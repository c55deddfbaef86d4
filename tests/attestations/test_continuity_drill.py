"""The continuity drill (DESIGN.md, invariant 9): the practice API is switched off; a pharmacy
serves 100 patients on their signed attestations, verified offline, and queues their claims in a
local file; the process holding the queue is killed mid-way and started again; the switch is turned
off; every claim lands exactly once and is adjudicated "under attestation"."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from sqlalchemy import select

from rempart.attestations.keys import published_keys
from rempart.attestations.models import IssueReason
from rempart.attestations.service import contracts_due, do_issue_for_mailing
from rempart.claims.models import Claim, ClaimStatus
from rempart.identity.permissions import Role
from rempart.members.models import Beneficiary
from rempart.members.validation import MemberRecord
from rempart.professionals.models import Profession
from rempart.runtime import Runtime
from rempart_verifier import ClaimQueue, Delivery, Outcome, QueuedClaim
from tests.eligibility.world import NOW, World, build_world
from tests.factories import TODAY
from tests.support.portal import PortalUser
from tests.support.practice_client import PracticeClient

PATIENTS = 100
ROOT = Path(__file__).resolve().parents[2]


def attested_patients(world: World) -> list[dict[str, str]]:
    """The insurer mailed every member's card before the outage; each patient brings their own."""
    with world.runtime.sessions() as session:
        due = contracts_due(session, insurer_id=world.insurer.id, now=NOW)
        issued = [
            i
            for cards in do_issue_for_mailing(
                session,
                keys=world.runtime.keys,
                insurer_id=world.insurer.id,
                contract_ids=due,
                reason=IssueReason.MAILING,
                now=NOW,
            )
            for i in cards.issued
        ]
        cipher = world.runtime.keys.cipher(session, world.insurer.id)
        index = {
            b.id: b.identity_bidx
            for b in session.scalars(select(Beneficiary).where(Beneficiary.insurer_id == world.insurer.id))
        }
    token_of = {index[i.record.beneficiary_id]: i.token for i in issued}
    patients = []
    for record in world.patients():
        token = token_of[cipher.identity_index(record.nir, record.birth_date, record.birth_rank)]
        patients.append(
            {
                "token": token,
                "nir": record.nir,
                "birth_date": record.birth_date.isoformat(),
                "key": f"drill-{len(patients)}",
            }
        )
    return patients[:PATIENTS]


def counter(patients: Path, keys: Path, queue: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.support.counter_drill", str(patients), str(keys), str(queue), TODAY.isoformat()],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


@pytest.mark.slow
def test_care_goes_on_with_the_platform_off_and_every_claim_lands_once(
    app: FastAPI, app_runtime: Runtime, runtime: Runtime, population: list[MemberRecord], tmp_path: Path
) -> None:
    world = build_world(runtime, members=70)  # as the owner: the app's role sees one insurer at a time
    population.extend(world.records)
    patients = attested_patients(world)
    assert len(patients) == PATIENTS
    pharmacy = PracticeClient.register(app, app_runtime, profession=Profession.PHARMACIST)
    operator = PortalUser.invited(app, app_runtime, login="vigie@rempart.test", roles={Role.SECURITY_OPERATOR})

    # The practice software cached the published keys while it could.
    keys_file = tmp_path / "attestation-keys.json"
    keys_file.write_bytes(pharmacy.client.get("/.well-known/rempart/attestation-keys").content)
    patients_file = tmp_path / "patients.json"
    patients_file.write_text(json.dumps(patients))
    queue_file = tmp_path / "queue.sqlite"

    switch = operator.post(
        "/api/v1/kill-switches",
        json={"scope": "channel", "target": "practice_api", "reason": "Continuity drill: practice API off"},
    )
    assert switch.status_code == 201, switch.text
    first_try = pharmacy.post("/api/v1/rights-checks", json={"amc_number": world.insurer.amc_number})
    assert first_try.status_code == 503
    assert first_try.json()["offline_attestation"] is True

    # The counter's process is killed after 37 patients, then started again.
    with counter(patients_file, keys_file, queue_file) as process:
        assert process.stdout is not None
        for line in process.stdout:
            if line.strip() == "queued 37":
                process.send_signal(signal.SIGKILL)
                break
        process.wait(timeout=60)
    assert process.returncode == -signal.SIGKILL
    with ClaimQueue(queue_file) as queue:
        assert len(queue.pending()) >= 37  # what was queued before the kill is still there
    with counter(patients_file, keys_file, queue_file) as restarted:
        output, _ = restarted.communicate(timeout=300)
    assert restarted.returncode == 0, output
    assert output.splitlines()[-1] == f"queued {PATIENTS}"

    def send(claim: QueuedClaim) -> Delivery:
        response = pharmacy.post(
            "/api/v1/claims", json=dict(claim.claim), headers={"Idempotency-Key": claim.idempotency_key}
        )
        body: Any = response.json() if response.content else None
        return Delivery.from_response(response.status_code, body)

    with ClaimQueue(queue_file) as queue:
        assert [c.idempotency_key for c in queue.pending()] == [p["key"] for p in patients]
        while_off = queue.forward(send)  # still off: the first claim is turned back, nothing is lost
        assert while_off.delivered == 0
        assert len(queue.pending()) == PATIENTS

        cleared = operator.post(f"/api/v1/kill-switches/{switch.json()['id']}/clear", json={"reason": "Drill over"})
        assert cleared.status_code == 200, cleared.text
        report = queue.forward(send)
        assert (report.delivered, report.refused) == (PATIENTS, 0)
        assert queue.pending() == []
        assert queue.forward(send).delivered == 0  # nothing is sent twice

    # A retry of a claim that landed (its answer lost on the way) is the same claim.
    again = send(QueuedClaim_of(queue_file, patients[0]["key"]))
    assert again.outcome is Outcome.DELIVERED
    assert again.status == 200

    with runtime.sessions() as session:  # the owner reads every insurer's rows
        claims = session.scalars(select(Claim).where(Claim.practice_id == pharmacy.practice_id)).all()
    assert len(claims) == PATIENTS
    assert sorted(c.idempotency_key for c in claims) == sorted(p["key"] for p in patients)
    assert {c.status for c in claims} == {ClaimStatus.ACCEPTED}
    assert all(c.attestation_id is not None for c in claims)
    assert len({c.beneficiary_id for c in claims}) == PATIENTS
    with runtime.sessions() as session:
        keys_now = published_keys(session, now=NOW).body
    assert json.loads(keys_now) == json.loads(keys_file.read_bytes())  # no key changed during the drill


def QueuedClaim_of(queue_file: Path, key: str) -> QueuedClaim:  # noqa: N802  (reads like the type it returns)
    with ClaimQueue(queue_file) as queue:
        found = queue.get(key)
    assert found is not None
    return found
