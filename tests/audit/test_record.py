"""The write path: every access recorded in the caller's transaction, checked against the registry,
and refused writes fail the request closed."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from fastapi import APIRouter
from fastapi.testclient import TestClient
from sqlalchemy import select

from rempart.app import create_app
from rempart.audit.disclosures import DISCLOSURES, DataField, Operation, Purpose, disclosure_of
from rempart.audit.models import AccessEvent, ActorKind, Channel, Outcome
from rempart.audit.service import AccessLogUnavailable, Actor, record_access
from rempart.insurers.models import Insurer
from rempart.runtime import Runtime
from rempart.web.deps import SessionDep
from tests.audit.conftest import allow_event_writes, refuse_event_writes

PHARMACY = Actor(
    ActorKind.PRACTICE_SOFTWARE,
    id=uuid.uuid4(),
    practice_id=uuid.uuid4(),
    professional_id=uuid.uuid4(),
    profession="pharmacist",
)
INSURER = uuid.uuid4()


def test_every_operation_has_one_registered_purpose_and_field_list() -> None:
    assert set(DISCLOSURES) == set(Operation)
    for operation in Operation:
        disclosure = disclosure_of(operation)
        assert isinstance(disclosure.purpose, Purpose)
    # The professional channels never disclose an identity (DESIGN.md, data minimisation).
    for operation in (Operation.RIGHTS_CHECK, Operation.QUOTE, Operation.CLAIM_SUBMIT, Operation.REMITTANCE_VIEW):
        assert not disclosure_of(operation).fields & {DataField.NIR, DataField.LAST_NAME, DataField.BIRTH_DATE}
    with pytest.raises(LookupError):
        disclosure_of("peek_at_everyone")


def test_a_disclosure_is_recorded_with_its_registered_purpose_and_fields(runtime: Runtime) -> None:
    beneficiary = uuid.uuid4()
    with runtime.sessions.begin() as session:
        event_id = record_access(
            session,
            operation=Operation.RIGHTS_CHECK,
            actor=PHARMACY,
            channel=Channel.PRO_API,
            outcome=Outcome.DISCLOSED,
            insurer_id=INSURER,
            beneficiary_id=beneficiary,
            device="LGPI 3.2\x00\n",
            address="2001:db8::0001",
            reference="chk_123",
            occurred_at=datetime(2026, 11, 22, 10, 30, 1, 123456, tzinfo=UTC),
        )
    with runtime.sessions() as session:
        event = session.scalars(select(AccessEvent).where(AccessEvent.event_id == event_id)).one()
    assert event.purpose is Purpose.CARE_ELIGIBILITY
    assert event.fields.split(",") == sorted(f.value for f in disclosure_of(Operation.RIGHTS_CHECK).fields)
    assert (event.practice_id, event.professional_id, event.actor_id) == (
        PHARMACY.practice_id,
        PHARMACY.professional_id,
        PHARMACY.id,
    )
    assert event.beneficiary_id == beneficiary
    assert event.device == "LGPI 3.2??"  # control characters never reach the log
    assert event.address == "2001:db8::1"
    assert event.occurred_at == datetime(2026, 11, 22, 10, 30, 1, 123456, tzinfo=UTC)
    assert event.seal_seq is None  # the sealer places it later


def test_a_miss_is_recorded_and_discloses_nothing(runtime: Runtime) -> None:
    with runtime.sessions.begin() as session:
        event_id = record_access(
            session,
            operation=Operation.RIGHTS_CHECK,
            actor=PHARMACY,
            channel=Channel.PRO_API,
            outcome=Outcome.MISS,
            insurer_id=INSURER,
        )
    with runtime.sessions() as session:
        event = session.scalars(select(AccessEvent).where(AccessEvent.event_id == event_id)).one()
    assert (event.outcome, event.fields, event.beneficiary_id) == (Outcome.MISS, "", None)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"fields": [DataField.NIR]}, "does not disclose"),
        ({"beneficiary_id": None}, "name the beneficiary"),
        ({"insurer_id": None}, "with their insurer"),
        ({"operation": Operation.BREAK_GLASS_VIEW}, "names its grant"),
        ({"occurred_at": datetime(2026, 1, 1)}, "timezone-aware"),  # noqa: DTZ001
    ],
)
def test_calls_the_registry_does_not_allow_are_refused(runtime: Runtime, kwargs: dict, message: str) -> None:
    call = {
        "operation": Operation.RIGHTS_CHECK,
        "actor": PHARMACY,
        "channel": Channel.PRO_API,
        "outcome": Outcome.DISCLOSED,
        "insurer_id": INSURER,
        "beneficiary_id": uuid.uuid4(),
    } | kwargs
    with runtime.sessions.begin() as session, pytest.raises(ValueError, match=message):
        record_access(session, **call)


def _records_then_answers(runtime: Runtime) -> TestClient:
    """A small flow shaped like the rights check: write, record, answer only after the commit."""
    router = APIRouter()

    @router.post("/api/v1/test-disclosure/{amc_number}")
    def disclose(amc_number: str, session: SessionDep) -> dict[str, str]:
        insurer = Insurer(id=uuid.uuid4(), amc_number=amc_number, name="Mutuelle témoin")
        session.add(insurer)
        session.flush()
        record_access(
            session,
            operation=Operation.RIGHTS_CHECK,
            actor=PHARMACY,
            channel=Channel.PRO_API,
            outcome=Outcome.DISCLOSED,
            insurer_id=insurer.id,
            beneficiary_id=uuid.uuid4(),
        )
        session.commit()
        return {"coverage": "covered until 2026-12-31", "secret": "1 85 05 78 006 084 36"}

    app = create_app(runtime)
    app.include_router(router)
    return TestClient(app, raise_server_exceptions=False)


def test_when_the_log_refuses_writes_the_request_fails_closed(runtime: Runtime) -> None:
    client = _records_then_answers(runtime)
    assert client.post("/api/v1/test-disclosure/11111111").status_code == 200

    refuse_event_writes(runtime)
    try:
        response = client.post("/api/v1/test-disclosure/22222222")
    finally:
        allow_event_writes(runtime)

    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["type"].endswith("/access-log-unavailable")
    assert "covered" not in response.text
    assert "85 05" not in response.text
    assert "read-only" not in response.text  # no database message leaks
    with runtime.sessions() as session:
        # The flow's own write went with the refused event: nothing happened.
        assert session.scalar(select(Insurer.id).where(Insurer.amc_number == "22222222")) is None
        assert session.scalar(select(Insurer.id).where(Insurer.amc_number == "11111111")) is not None
        assert len(session.scalars(select(AccessEvent.id)).all()) == 1


def _record_then_fail(runtime: Runtime) -> None:
    with runtime.sessions.begin() as session:
        record_access(
            session,
            operation=Operation.QUOTE,
            actor=PHARMACY,
            channel=Channel.PRO_API,
            outcome=Outcome.DISCLOSED,
            insurer_id=INSURER,
            beneficiary_id=uuid.uuid4(),
        )
        raise RuntimeError("the answer could not be built")


def test_a_failed_commit_takes_the_event_with_it(runtime: Runtime) -> None:
    with pytest.raises(RuntimeError):
        _record_then_fail(runtime)
    with runtime.sessions() as session:
        assert session.scalars(select(AccessEvent.id)).all() == []


def test_access_log_unavailable_is_a_503_problem() -> None:
    error = AccessLogUnavailable()
    assert error.status == 503
    assert error.problem()["type"].endswith("access-log-unavailable")
