"""No personal data in application logs (DESIGN.md, invariant 7): the flows that exist are run with
every log line captured (structlog on stderr, the standard library's loggers, anything written to
the process's file descriptors), then the capture is searched for the NIRs, names and dates of
birth of every person the flows touched, and for anything shaped like a valid NIR at all.

The flows: the professional's day end to end as the care tests drive it (insurer API, members
import, practice software checking, quoting, approving, billing; payment run; remittance), rights
checks that miss in every way and one with a malformed NIR, a members file with bad rows, the
beneficiary's and the insurer's access-log views, break-glass from request to opening, a write the
log refuses, sealing, and ``verify`` naming a tampered event. Add new flows here as they land.
"""

from __future__ import annotations

import inspect
import logging
import re
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from fastapi import FastAPI
from sqlalchemy import select, text
from stdnum.fr import nir as nir_checksum

from rempart.app import create_app
from rempart.audit.keys import load_signing_keys
from rempart.audit.sealing import seal_all
from rempart.audit.verify import verify_log
from rempart.detection.engine import DetectionEngine
from rempart.identity.context import IdentityServices
from rempart.identity.permissions import Role
from rempart.insurers.models import Insurer
from rempart.members.importer import import_members
from rempart.members.models import Beneficiary, Contract
from rempart.members.synth import write_members_file
from rempart.members.validation import MemberRecord
from rempart.professionals.models import Profession
from rempart.runtime import Runtime
from tests.audit.conftest import allow_event_writes, refuse_event_writes
from tests.e2e import test_professional_day as professional_day
from tests.eligibility.world import World
from tests.factories import TODAY, load_members, make_insurer, population
from tests.support.clock import FakeClock
from tests.support.portal import PortalUser
from tests.support.practice_client import PracticeClient

NOW = datetime(TODAY.year, TODAY.month, TODAY.day, 9, 30, tzinfo=UTC)
_DIGITS = re.compile(r"(?<!\d)[12378]\s?\d{2}\s?\d{2}\s?(?:\d{2}|2[AB])\s?\d{3}\s?\d{3}\s?\d{2}(?!\d)", re.IGNORECASE)


def personal_data_in(captured: str, people: Iterable[MemberRecord], *, allowed_dates: set[date]) -> list[str]:
    """What personal data the text holds, described without repeating it."""
    found = []
    for match in _DIGITS.finditer(captured):
        if nir_checksum.is_valid(match.group(0).replace(" ", "")):
            found.append(f"a valid NIR at offset {match.start()}")
    for person in people:
        if person.nir in captured:
            found.append(f"the NIR of member {person.member_number}")
        for kind, name in (("last name", person.last_name), ("first name", person.first_name)):
            if len(name) >= 3 and re.search(rf"(?<!\w){re.escape(name)}(?!\w)", captured, re.IGNORECASE):
                found.append(f"the {kind} of member {person.member_number}")
        born = person.birth_date
        if born not in allowed_dates and (born.isoformat() in captured or born.strftime("%d/%m/%Y") in captured):
            found.append(f"the date of birth of member {person.member_number}")
    return found


def test_the_scanner_finds_what_it_looks_for() -> None:
    [person] = population(1)[:1]
    for leak in (
        f'{{"event": "x", "who": "{person.last_name.upper()}"}}',
        (
            f"nir={person.nir[:1]} {person.nir[1:3]} {person.nir[3:5]} {person.nir[5:7]} {person.nir[7:10]} "
            f"{person.nir[10:13]} {person.nir[13:]}"
        ),
        f"born {person.birth_date.isoformat()}",
    ):
        assert personal_data_in(leak, [person], allowed_dates=set()), leak
    assert personal_data_in('{"event": "rights_check", "beneficiary_id": "3f1c"}', [person], allowed_dates=set()) == []


class _DetectionClock:
    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock

    def now(self) -> datetime:
        return self.clock()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(NOW)


@pytest.fixture
def app(runtime: Runtime, clock: FakeClock) -> Iterator[FastAPI]:
    application = create_app(runtime)
    prefix = f"t{uuid.uuid4().hex}"
    application.state.identity = IdentityServices.build(runtime.settings, clock=clock, prefix=prefix)
    application.state.detection = DetectionEngine.build(runtime, clock=_DetectionClock(clock), prefix=prefix)
    yield application
    application.state.detection.close()


def _call(function: object, available: dict[str, object]) -> None:
    """Run a test function of another domain with the objects it names (its fixtures)."""
    assert callable(function)
    wanted = inspect.signature(function).parameters
    missing = [name for name in wanted if name not in available]
    assert not missing, f"{function.__name__} now also needs {missing}: add them here"  # type: ignore[attr-defined]
    function(**{name: available[name] for name in wanted})


# Each flow of the professional's day builds its own insurer and staff: one test (one database) each.
PROFESSIONAL_DAY = {name: f for name, f in vars(professional_day).items() if name.startswith("test_") and callable(f)}


def _member_ids(runtime: Runtime, insurer: Insurer, record: MemberRecord) -> uuid.UUID:
    with runtime.sessions() as session:
        cipher = runtime.keys.cipher(session, insurer.id)
        wanted = set(cipher.identity_index_candidates(record.nir, record.birth_date, record.birth_rank))
        rows = session.scalars(
            select(Beneficiary)
            .join(Contract, (Contract.insurer_id == Beneficiary.insurer_id) & (Contract.id == Beneficiary.contract_id))
            .where(Contract.member_number == record.member_number, Contract.insurer_id == insurer.id)
        ).all()
        return next(b.id for b in rows if b.identity_bidx in wanted)


def _care_and_transparency(
    app: FastAPI, runtime: Runtime, clock: FakeClock, people: list[MemberRecord], tmp_path: Path
) -> None:
    insurer = make_insurer(runtime, amc_number="55667788", name="Mutuelle du Guet")  # one the day does not use
    records = population(10, seed=23, first_number=5_000)
    load_members(runtime, insurer, records)
    world = World(runtime=runtime, insurer=insurer, records=records)
    people.extend(world.records)
    patient, other = world.patients()[:2]
    card = {
        "amc_number": world.insurer.amc_number,
        "member_number": patient.member_number,
        "nir": patient.nir,
        "birth_date": patient.birth_date.isoformat(),
        "birth_rank": patient.birth_rank,
    }
    pharmacy = PracticeClient.register(app, runtime, profession=Profession.PHARMACIST, practice_name="Officine Nord")
    assert pharmacy.post("/api/v1/rights-checks", json=card).status_code == 200
    for wrong in (
        {"nir": other.nir},
        {"birth_date": (patient.birth_date + timedelta(days=1)).isoformat()},
        {"member_number": "0999999999"},
        {"amc_number": "12121212"},
    ):
        # One practice per miss: a run of misses from one practice is what detection slows down.
        counter = PracticeClient.register(app, runtime, profession=Profession.PHARMACIST, practice_name="Officine Sud")
        assert counter.post("/api/v1/rights-checks", json=card | wrong).status_code == 404
    malformed = patient.nir[:-2] + ("00" if patient.nir[-2:] != "00" else "01")
    assert pharmacy.post("/api/v1/rights-checks", json=card | {"nir": malformed}).status_code == 422
    assert (
        pharmacy.post("/api/v1/rights-checks/batch", json={"checks": [card, card | {"nir": other.nir}]}).status_code
        == 200
    )

    # A write the log refuses: the request fails closed, and the error log names no one.
    refuse_event_writes(runtime)
    try:
        assert pharmacy.post("/api/v1/rights-checks", json=card).status_code == 503
    finally:
        allow_event_writes(runtime)

    # A members file with a bad row: the report names rows, never values.
    extra = population(3, seed=99, first_number=9_000)
    people.extend(extra)
    broken = [*extra[:-1], replace(extra[-1], nir=extra[-1].nir[:-2] + "00")]
    path = tmp_path / "members.csv"
    write_members_file(path, iter(broken))
    report = import_members(runtime=runtime, path=path, amc_number=world.insurer.amc_number)
    logging.getLogger("rempart.test").info("import report: %s", report)

    person = _member_ids(runtime, world.insurer, patient)
    me = PortalUser.invited(
        app,
        runtime,
        login="adherent@exemple.test",
        roles={Role.BENEFICIARY},
        insurer_id=world.insurer.id,
        beneficiary_id=person,
    )
    assert me.get("/api/v1/me/access-log").status_code == 200
    dpo = PortalUser.invited(app, runtime, login="dpo@nord.test", roles={Role.DPO}, insurer_id=world.insurer.id)
    assert dpo.get(f"/api/v1/insurers/{world.insurer.id}/access-log").status_code == 200

    alice = PortalUser.invited(app, runtime, login="alice@rempart.test", roles={Role.SECURITY_OPERATOR})
    bob = PortalUser.invited(app, runtime, login="bob@rempart.test", roles={Role.SECURITY_OPERATOR})
    grant = alice.post(
        "/api/v1/break-glass",
        json={
            "insurer_id": str(world.insurer.id),
            "beneficiary_id": str(person),
            "reason": "Card refused everywhere, member asked for help",
            "ticket": "SUP-77",
        },
    ).json()["id"]
    assert bob.post(f"/api/v1/break-glass/{grant}/approve").status_code == 200
    opened = alice.get(f"/api/v1/break-glass/{grant}/beneficiary")
    assert opened.status_code == 200
    assert opened.json()["nir"] == patient.nir  # it did pass through the app: it must not reach a log

    # Sealing, then verify naming an edited event.
    keys = load_signing_keys(runtime.settings)
    seal_all(runtime.sessions, signer=keys, now=clock())
    with runtime.engine.begin() as conn:
        conn.execute(text("UPDATE access_events SET reference = 'edited' WHERE seal_seq = 0"))
    report_of_verify = verify_log(runtime.engine, keys=keys.public_keys(), now=clock())
    assert not report_of_verify.ok
    logging.getLogger("rempart.test").warning("verify: %s", [p.describe() for p in report_of_verify.problems])


def _scan(
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    people: list[MemberRecord],
    expected: tuple[str, ...],
) -> None:
    out, err = capfd.readouterr()
    captured = "\n".join([out, err, caplog.text])
    # The capture holds the application's logs (or this test would prove nothing).
    for line in expected:
        assert line in captured, f"{line} not captured"
    assert len(people) >= 10
    allowed = {TODAY + timedelta(days=k) for k in range(-400, 400)}
    allowed |= {r.contract_start for r in people} | {r.contract_end for r in people if r.contract_end}
    assert personal_data_in(captured, people, allowed_dates=allowed) == []


@pytest.mark.parametrize("flow", sorted(PROFESSIONAL_DAY))
def test_the_professionals_day_leaves_no_personal_data_in_the_logs(  # noqa: PLR0917  (fixtures)
    flow: str,
    app: FastAPI,
    runtime: Runtime,
    clock: FakeClock,
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    people: list[MemberRecord] = []
    _call(
        PROFESSIONAL_DAY[flow],
        {"app": app, "runtime": runtime, "app_runtime": runtime, "clock": clock, "population": people},
    )
    _scan(capfd, caplog, people, ('"event": "security_event"',))


def test_care_and_transparency_leave_no_personal_data_in_the_logs(  # noqa: PLR0917  (fixtures)
    app: FastAPI,
    runtime: Runtime,
    clock: FakeClock,
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    tmp_path: Path,
) -> None:
    caplog.set_level(logging.DEBUG)
    people: list[MemberRecord] = []
    _care_and_transparency(app, runtime, clock, people, tmp_path)
    _scan(
        capfd,
        caplog,
        people,
        (
            '"event": "security_event"',
            '"event": "break_glass_requested"',
            '"event": "access_log_write_refused"',
            "verify: [",
        ),
    )
