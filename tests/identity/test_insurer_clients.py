"""An insurer's nightly job, with no person involved: an API client registered by the insurer admin
(passkey session), a token by ``private_key_jwt`` + DPoP, a members file imported, a payment run
made — and the client holds its scopes' permissions and nothing else, for its insurer only, until
its key is rotated or it is revoked."""

from __future__ import annotations

import io
import json
import uuid
from datetime import UTC, datetime, time
from typing import Any

import redis
from fastapi import FastAPI
from sqlalchemy import select

from rempart.audit.models import AccessEvent, ActorKind
from rempart.detection.engine import DetectionEngine
from rempart.identity.models import ApiClient, SecurityEvent, SecurityEventKind
from rempart.identity.permissions import Role
from rempart.insurers.models import Insurer
from rempart.members.synth import synth_members, write_file
from rempart.members.validation import MemberRecord
from rempart.payments.models import PaymentRun
from rempart.professionals.models import Profession
from rempart.runtime import Runtime
from rempart.tenancy import tenant
from tests.factories import PRODUCTS, TODAY, make_insurer
from tests.support.clock import FakeClock
from tests.support.insurer_client import InsurerClient, clients_path, new_key, public_jwk
from tests.support.portal import PortalUser
from tests.support.practice_client import PracticeClient


def insurer_admin(app: FastAPI, runtime: Runtime, insurer: Insurer) -> PortalUser:
    return PortalUser.invited(
        app,
        runtime,
        login=f"admin-{uuid.uuid4().hex[:6]}@mutuelle.test",
        roles={Role.INSURER_ADMIN},
        insurer_id=insurer.id,
    )


def members(count: int = 4, first_number: int = 500) -> list[MemberRecord]:
    return list(
        synth_members(count=count, seed=11, product_codes=list(PRODUCTS), today=TODAY, first_number=first_number)
    )


def members_file(records: list[MemberRecord] | None = None) -> bytes:
    buffer = io.StringIO()
    write_file(iter(records or members()), buffer, fmt="csv")
    return buffer.getvalue().encode()


def surgery_claim(physician: PracticeClient, insurer: Insurer, patient: MemberRecord) -> dict[str, Any]:
    """A specialist's surgery for one of the imported members: over the review threshold."""
    check = physician.post(
        "/api/v1/rights-checks",
        json={
            "amc_number": insurer.amc_number,
            "member_number": patient.member_number,
            "nir": patient.nir,
            "birth_date": patient.birth_date.isoformat(),
            "birth_rank": patient.birth_rank,
        },
    )
    assert check.status_code in {200, 201}, check.text
    line = {
        "care_domain": "CONS",
        "act_code": "QZFA036",
        "care_date": TODAY.isoformat(),
        "unit_price_cents": 500_000,
        "brss_cents": 200_000,
        "amo_rate_pct": 70,
    }
    claim = physician.post(
        "/api/v1/claims",
        json={"check_id": check.json()["check_id"], "lines": [line]},
        headers={"Idempotency-Key": f"surgery-{uuid.uuid4().hex[:8]}"},
    )
    assert claim.status_code in {200, 201}, claim.text
    body: dict[str, Any] = claim.json()
    return body


def test_a_nightly_job_imports_members_reviews_and_runs_payments_with_no_person_involved(
    app: FastAPI, runtime: Runtime, clock: FakeClock
) -> None:
    clock.now = datetime.combine(TODAY, time(22, 0), tzinfo=UTC)  # the night of the members' file
    insurer = make_insurer(runtime)
    admin = insurer_admin(app, runtime, insurer)
    job = InsurerClient.registered_by(
        admin, insurer_id=insurer.id, scopes=["members:import", "claims:review", "payment-runs"]
    )

    listed = admin.get(clients_path(insurer.id))
    assert listed.status_code == 200, listed.text
    assert [(c["client_id"], c["scopes"]) for c in listed.json()] == [
        (str(job.client_id), ["claims:review", "members:import", "payment-runs"])
    ]

    # The night: no session, no passkey, no acting professional; a token and a proof per call.
    records = members(count=8)
    upload = job.post(f"{job.base}/members-imports", files={"file": ("members.csv", members_file(records), "text/csv")})
    assert upload.status_code == 202, upload.text
    report = job.get(f"{job.base}/members-imports/{upload.json()['job_id']}")
    assert report.status_code == 200, report.text
    assert report.json()["status"] == "done"
    assert report.json()["rejected"] == 0
    assert report.json()["beneficiaries_created"] == len(records)

    # A physician's claim for one of the members just imported waits for review; the job decides it.
    physician = PracticeClient.register(app, runtime, profession=Profession.PHYSICIAN)
    patient = next(r for r in records if r.product_code == "PREMIUM" and r.contract_end is None)
    claim = surgery_claim(physician, insurer, patient)
    assert claim["status"] == "pending_review"
    queue = job.get(f"{job.base}/claims", params={"status": "pending_review"})
    assert queue.status_code == 200, queue.text
    assert [c["claim_id"] for c in queue.json()["claims"]] == [claim["claim_id"]]
    accepted = job.post(f"{job.base}/claims/{claim['claim_id']}/review", json={"decision": "accept"})
    assert accepted.status_code == 200, accepted.text

    run = job.post(f"{job.base}/payment-runs", json={"cutoff_date": TODAY.isoformat()})
    assert run.status_code == 201, run.text
    assert run.json()["claim_count"] == 1
    assert [r["payment_run_id"] for r in job.get(f"{job.base}/payment-runs").json()["payment_runs"]] == [
        run.json()["payment_run_id"]
    ]
    assert physician.get(f"/api/v1/claims/{claim['claim_id']}").json()["status"] == "paid"

    # The record names the client: who wrote these people's data, who decided, who started the run.
    with runtime.sessions() as session, tenant(session, insurer.id):
        insurer_side = set(
            session.scalars(
                select(AccessEvent.actor_id).where(
                    AccessEvent.insurer_id == insurer.id, AccessEvent.actor_kind == ActorKind.INSURER_STAFF
                )
            ).all()
        )
        assert insurer_side == {job.client_id}
        started_by = session.scalars(select(PaymentRun.started_by).where(PaymentRun.insurer_id == insurer.id)).all()
        assert started_by == [job.client_id]
        created = session.scalars(
            select(SecurityEvent).where(
                SecurityEvent.client_id == job.client_id, SecurityEvent.kind == SecurityEventKind.CLIENT_CREATED
            )
        ).one()
        assert created.account_id == admin.account_id
        assert json.loads(created.detail)["insurer_id"] == str(insurer.id)
        stored = session.get(ApiClient, job.client_id)
        assert stored is not None
        assert (stored.practice_id, stored.insurer_id) == (None, insurer.id)


def test_a_client_holds_its_scopes_and_nothing_more(app: FastAPI, runtime: Runtime) -> None:
    insurer = make_insurer(runtime)
    admin = insurer_admin(app, runtime, insurer)
    importer = InsurerClient.registered_by(admin, insurer_id=insurer.id, scopes=["members:import"])

    assert importer.post(f"{importer.base}/payment-runs", json={"cutoff_date": TODAY.isoformat()}).status_code == 403
    assert importer.get(f"{importer.base}/payment-runs").status_code == 403
    assert importer.get(f"{importer.base}/claims").status_code == 403
    # Never identities nor products, whatever its scopes: no scope grants them.
    assert importer.get(f"{importer.base}/products").status_code == 403
    # Nor its own kind: a client cannot grant a client, nor list them.
    assert importer.get(clients_path(insurer.id)).status_code == 403
    grant = importer.post(
        clients_path(insurer.id), json={"name": "x", "public_jwk": public_jwk(new_key()), "scopes": ["payment-runs"]}
    )
    assert grant.status_code == 403
    # Outside its insurer's routes it is nobody: no care route, no acting professional.
    assert importer.post("/api/v1/rights-checks", json={}).status_code in {403, 422}
    assert importer.get("/api/v1/auth/whoami").status_code == 403
    # The admin cannot grant what no scope names.
    unknown = admin.post(
        clients_path(insurer.id), json={"name": "x", "public_jwk": public_jwk(new_key()), "scopes": ["members:read"]}
    )
    none = admin.post(clients_path(insurer.id), json={"name": "x", "public_jwk": public_jwk(new_key()), "scopes": []})
    assert unknown.status_code == 422
    assert none.status_code == 422


def test_another_insurers_paths_answer_not_found(app: FastAPI, runtime: Runtime) -> None:
    ours = make_insurer(runtime)
    theirs = make_insurer(runtime, amc_number="77120345", name="Prévoyance Vauban")
    admin = insurer_admin(app, runtime, ours)
    their_admin = insurer_admin(app, runtime, theirs)
    job = InsurerClient.registered_by(admin, insurer_id=ours.id, scopes=["members:import", "payment-runs"])
    base = f"/api/v1/insurers/{theirs.id}"

    assert job.get(f"{base}/members-imports").status_code == 404
    assert job.post(f"{base}/payment-runs", json={"cutoff_date": TODAY.isoformat()}).status_code == 404
    upload = job.post(f"{base}/members-imports", files={"file": ("members.csv", members_file(), "text/csv")})
    assert upload.status_code == 404
    # Another insurer's admin neither sees nor touches our client; nor does a practice's software.
    assert their_admin.get(clients_path(theirs.id)).json() == []
    assert their_admin.post(f"{clients_path(theirs.id)}/{job.client_id}/revoke").status_code == 404
    assert their_admin.get(clients_path(ours.id)).status_code == 404
    pharmacy = PracticeClient.register(app, runtime)
    assert pharmacy.get(clients_path(ours.id)).status_code == 403
    assert job.get(f"{job.base}/members-imports").status_code == 200


def test_registering_needs_a_recent_passkey_and_a_person(app: FastAPI, runtime: Runtime, clock: FakeClock) -> None:
    insurer = make_insurer(runtime)
    admin = insurer_admin(app, runtime, insurer)
    clock.advance(minutes=10)
    body = {"name": "Paiements", "public_jwk": public_jwk(new_key()), "scopes": ["payment-runs"]}

    stale = admin.post(clients_path(insurer.id), json=body)
    assert stale.status_code in {401, 403}, stale.text
    assert admin.step_up().status_code == 200
    assert admin.post(clients_path(insurer.id), json=body).status_code == 201


def test_a_rotated_key_works_and_the_old_one_is_refused(app: FastAPI, runtime: Runtime) -> None:
    insurer = make_insurer(runtime)
    admin = insurer_admin(app, runtime, insurer)
    job = InsurerClient.registered_by(admin, insurer_id=insurer.id, scopes=["payment-runs"])
    old_key, next_key = job.signing_key, new_key()
    old_token = job.token()

    added = admin.post(f"{clients_path(insurer.id)}/{job.client_id}/keys", json={"public_jwk": public_jwk(next_key)})
    assert added.status_code == 201, added.text
    assert len(added.json()["keys"]) == 2
    job.switch_key(next_key)
    assert job.get(f"{job.base}/payment-runs").status_code == 200
    revoked = admin.delete(f"{clients_path(insurer.id)}/{job.client_id}/keys/{old_key.thumbprint()}")
    assert revoked.status_code == 200, revoked.text
    assert revoked.json()["keys"] == [next_key.thumbprint()]

    # The old key signs nothing more, and the tokens it got died with it.
    job.switch_key(old_key)
    assert job.request_token().status_code == 401
    assert job.get(f"{job.base}/payment-runs", token=old_token).status_code == 401
    job.switch_key(next_key)
    assert job.get(f"{job.base}/payment-runs").status_code == 200


def test_a_revoked_client_is_refused(app: FastAPI, runtime: Runtime) -> None:
    insurer = make_insurer(runtime)
    admin = insurer_admin(app, runtime, insurer)
    job = InsurerClient.registered_by(admin, insurer_id=insurer.id, scopes=["members:import"])
    token = job.token()
    assert job.get(f"{job.base}/members-imports").status_code == 200

    revoked = admin.post(f"{clients_path(insurer.id)}/{job.client_id}/revoke")
    assert revoked.status_code == 200, revoked.text
    assert revoked.json()["status"] == "revoked"

    assert job.get(f"{job.base}/members-imports", token=token).status_code == 401
    refused = job.request_token()
    assert refused.status_code == 401
    assert "revoked" in refused.json()["detail"]
    with runtime.sessions() as session:
        refusals = session.scalars(
            select(SecurityEvent.detail).where(
                SecurityEvent.client_id == job.client_id, SecurityEvent.kind == SecurityEventKind.TOKEN_REFUSED
            )
        ).all()
    assert [json.loads(d) for d in refusals] == [{"insurer_id": str(insurer.id), "reason": "client-revoked"}]
    again = admin.post(f"{clients_path(insurer.id)}/{job.client_id}/keys", json={"public_jwk": public_jwk(new_key())})
    assert again.status_code == 409


def test_the_back_office_switch_and_the_insurers_switch_stop_its_jobs(app: FastAPI, runtime: Runtime) -> None:
    """Insurer clients come in through the back-office channel: its kill switch (and one on their
    insurer) stops them as it stops the staff, since a stolen job key reaches the same data."""
    prefix = f"rempart:test:{uuid.uuid4().hex[:12]}:"
    app.state.detection = DetectionEngine.build(runtime, prefix=prefix)  # switches of this test only
    try:
        insurer = make_insurer(runtime)
        admin = insurer_admin(app, runtime, insurer)
        job = InsurerClient.registered_by(admin, insurer_id=insurer.id, scopes=["members:import"])
        operator = PortalUser.invited(app, runtime, login="vigie@rempart.test", roles={Role.SECURITY_OPERATOR})
        assert job.get(f"{job.base}/members-imports").status_code == 200

        for scope, target in (("channel", "back_office"), ("insurer", str(insurer.id))):
            cut = operator.post(
                "/api/v1/kill-switches", json={"scope": scope, "target": target, "reason": "Job key leaked, cutting"}
            )
            assert cut.status_code == 201, cut.text
            stopped = job.get(f"{job.base}/members-imports")
            assert stopped.status_code == 503, stopped.text
            cleared = operator.post(f"/api/v1/kill-switches/{cut.json()['id']}/clear", json={"reason": "Key rotated"})
            assert cleared.status_code == 200, cleared.text
            assert job.get(f"{job.base}/members-imports").status_code == 200
    finally:
        app.state.detection.close()
        if runtime.settings.redis_url:
            store = redis.Redis.from_url(runtime.settings.redis_url)
            for key in store.scan_iter(match=prefix + "*", count=1000):
                store.delete(key)
            store.close()
