"""The issue's scenarios through ``POST /api/v1/rights-checks``: three app instances (each its own
``Runtime``, engine pool, identity services and detection engine, as three server processes would
have) share one database and one Redis; every request goes to the next instance in turn, like a
round-robin load balancer. Real members, real practice software (private_key_jwt, DPoP), a
controllable clock.
"""

from __future__ import annotations

import itertools
import json
import random
import re
import subprocess
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

import httpx2 as httpx
import pytest
from fastapi.testclient import TestClient
from joserfc.jwk import ECKey
from sqlalchemy import select

from rempart.detection.models import Alert, Containment
from rempart.identity.context import IdentityServices
from rempart.identity.models import ApiClient, ClientStatus, SecurityEvent
from rempart.identity.permissions import Role
from rempart.members.validation import MemberRecord
from rempart.professionals.models import Profession
from rempart.runtime import Runtime
from tests.detection.conftest import PARIS, ManualClock, drop_prefix, make_app, need_redis
from tests.eligibility.world import World, build_world
from tests.support.portal import PortalUser
from tests.support.practice_client import PracticeClient, identity_of

CHECK = "/api/v1/rights-checks"
# The Tuesday after the synthetic population's reference day, at opening time.
OPENING = datetime(2026, 11, 24, 9, 0, tzinfo=PARIS)


@pytest.fixture
def http_clock() -> ManualClock:
    return ManualClock(OPENING)


@pytest.fixture
def apps(runtime: Runtime, http_clock: ManualClock) -> Iterator[list[Any]]:
    """Three app processes on one database and one Redis."""
    url = need_redis()
    prefix = f"rempart:test:{uuid.uuid4().hex[:12]}:"
    identity_prefix = f"t{uuid.uuid4().hex}"
    runtimes = [runtime] + [Runtime.build(runtime.settings) for _ in range(2)]
    instances = [make_app(rt, http_clock, prefix=prefix, identity_prefix=identity_prefix) for rt in runtimes]
    yield instances
    for app in instances:
        app.state.detection.close()
    for rt in runtimes[1:]:
        rt.close()
    drop_prefix(url, prefix)


class Balanced:
    """One practice software whose requests a load balancer spreads over the app processes."""

    def __init__(self, apps: list[Any], runtime: Runtime, profession: Profession = Profession.PHARMACIST) -> None:
        first = PracticeClient.register(apps[0], runtime, profession=profession)
        self.replicas = [first] + [
            replace(
                first,
                app=app,
                client=TestClient(app, base_url=identity_of(app).origin, raise_server_exceptions=False),
                _token=None,
            )
            for app in apps[1:]
        ]
        self._next = itertools.cycle(self.replicas)
        self.client_id = first.client_id
        self.practice_id = first.practice_id

    def post(self, path: str, **kwargs: Any) -> httpx.Response:
        replica = next(self._next)
        try:
            return replica.post(path, **kwargs)
        except AssertionError:
            # The token endpoint refused (the client is revoked): what the software sees is a 401.
            return replica.request_token()


def body(world: World, record: MemberRecord, **overrides: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "amc_number": world.insurer.amc_number,
        "member_number": record.member_number,
        "nir": record.nir,
        "birth_date": record.birth_date.isoformat(),
        "birth_rank": record.birth_rank,
    }
    fields.update(overrides)
    return fields


def in_force(world: World) -> list[MemberRecord]:
    day = OPENING.date()
    return [r for r in world.records if world.in_force(r, day)]


def drain(apps: list[Any]) -> None:
    for app in apps:
        app.state.detection.drain()


@pytest.mark.slow
def test_http_replay_of_real_triples_discloses_at_most_20(
    apps: list[Any], runtime: Runtime, http_clock: ManualClock
) -> None:
    world = build_world(runtime, members=700, seed=21)
    triples = in_force(world)
    assert len(triples) >= 500
    thief = Balanced(apps, runtime)
    statuses: Counter[int] = Counter()
    disclosed = 0
    for record in triples:
        response = thief.post(CHECK, json=body(world, record))
        statuses[response.status_code] += 1
        disclosed += response.status_code == 200
        if response.status_code != 200:
            assert response.headers["content-type"] == "application/problem+json"
            assert record.nir not in response.text
        http_clock.advance(0.1)
    drain(apps)
    assert disclosed <= 20
    with runtime.sessions() as session:
        client = session.get(ApiClient, thief.client_id)
        assert client is not None
        assert client.status is ClientStatus.SUSPENDED
        # The practice admin reads what happened in words, without the signal or its figures.
        told = [
            json.loads(e.detail)
            for e in session.scalars(select(SecurityEvent).where(SecurityEvent.client_id == thief.client_id))
        ]
    reasons = [d["reason"] for d in told if "reason" in d]
    assert reasons
    assert all(not re.search(r"\d|_|distinct|threshold", r) for r in reasons), reasons
    assert any("Unusually many patients" in r for r in reasons)
    # Once suspended, its tokens are gone (401) and it gets no new one: client-suspended (403).
    assert statuses[401] + statuses[403] > len(triples) - 40
    assert thief.replicas[1].request_token().json()["type"].endswith("/client-suspended")
    print(f"\n(a/http) {len(triples)} real triples, disclosed={disclosed}, statuses={dict(statuses)}")


@pytest.mark.slow
def test_http_guessing_dates_of_birth_gets_zero_hits_and_is_suspended(
    apps: list[Any], runtime: Runtime, http_clock: ManualClock
) -> None:
    """Five stolen clients, each holding 20 victims' cards and NIRs (so their year and month of
    birth). For each victim a thief tries a wrong day, then the right one: the worst case for the
    platform, as the second try is where guessing would pay. The second is refused (identity
    locked) whether right or wrong, so no guess ever hits; two wrong first tries are answered, then
    the client is refused and suspended."""
    world = build_world(runtime, members=120, seed=22)
    rng = random.Random(22)
    victims = in_force(world)
    answered_per_thief, hits_per_thief = [], []
    for n in range(5):
        thief = Balanced(apps, runtime)
        answered = hits = 0
        refusals: Counter[str] = Counter()
        for victim in victims[n * 20 : (n + 1) * 20]:
            wrong = rng.choice([d for d in range(1, 29) if d != victim.birth_date.day])
            for day in (wrong, victim.birth_date.day):
                response = thief.post(
                    CHECK, json=body(world, victim, birth_date=victim.birth_date.replace(day=day).isoformat())
                )
                answered += response.status_code in (200, 404)
                hits += response.status_code == 200
                if response.status_code not in (200, 404):
                    assert response.headers["content-type"] == "application/problem+json"
                    refusals[response.json()["type"].rsplit("/", 1)[-1]] += 1
                http_clock.advance(2)
        answered_per_thief.append(answered)
        hits_per_thief.append(hits)
        drain(apps)
        with runtime.sessions() as session:
            client = session.get(ApiClient, thief.client_id)
            assert client is not None
            assert client.status is ClientStatus.SUSPENDED
        assert refusals["identity-locked"] >= 1
        assert thief.replicas[0].request_token().json()["type"].endswith("/client-suspended")
    assert hits_per_thief == [0, 0, 0, 0, 0]
    assert max(answered_per_thief) <= 2
    print(f"\n(b/http) answered guesses per thief {answered_per_thief}, hits {hits_per_thief}")


def test_http_a_mistyped_date_of_birth_then_the_right_one(
    apps: list[Any], runtime: Runtime, http_clock: ManualClock
) -> None:
    """A pharmacist mistypes a patient's date of birth, then types it right. The first answer is the
    ordinary "no matching rights", byte for byte the same as for a wrong card; the correction is
    answered, as the pharmacy has been checking patients (good standing). A new client that has
    answered nothing yet gets one date per card: its correction is refused for an hour (it could
    be a guess: any answer would tell a thief whether the date is right) with a problem+json
    telling what to do: check the card, call the insurer, or use the signed offline attestation.
    Nobody is contained and no alert is raised."""
    world = build_world(runtime, members=40, seed=27)
    patients = in_force(world)
    pharmacy = Balanced(apps, runtime)
    for patient in patients[:5]:
        assert pharmacy.post(CHECK, json=body(world, patient)).status_code == 200
        http_clock.advance(60)
    patient = patients[5]
    typo = patient.birth_date.replace(day=patient.birth_date.day % 28 + 1)
    missed = pharmacy.post(CHECK, json=body(world, patient, birth_date=typo.isoformat()))
    wrong_card = pharmacy.post(CHECK, json=body(world, patients[6], member_number="99999999"))
    assert missed.status_code == wrong_card.status_code == 404
    assert missed.content == wrong_card.content  # the same miss whichever field was wrong
    http_clock.advance(20)
    assert pharmacy.post(CHECK, json=body(world, patient)).status_code == 200  # corrected
    http_clock.advance(60)
    assert pharmacy.post(CHECK, json=body(world, patients[7])).status_code == 200  # the next patient

    newcomer = Balanced(apps, runtime)  # a new client of another pharmacy, no answered check yet
    patient = patients[8]
    typo = patient.birth_date.replace(day=patient.birth_date.day % 28 + 1)
    assert newcomer.post(CHECK, json=body(world, patient, birth_date=typo.isoformat())).status_code == 404
    http_clock.advance(20)
    corrected = newcomer.post(CHECK, json=body(world, patient))
    assert corrected.status_code == 429
    assert corrected.headers["content-type"] == "application/problem+json"
    assert corrected.headers["Retry-After"] == str(60 * 60)
    problem = corrected.json()
    assert problem["type"].endswith("/identity-locked")
    assert "call the insurer" in problem["detail"]
    assert problem["offline_attestation"] is True
    assert patient.nir not in corrected.text
    assert patient.birth_date.isoformat() not in corrected.text
    # Right or wrong, the refusal is the same: it says nothing about the date.
    other = newcomer.post(CHECK, json=body(world, patient, birth_date=typo.replace(day=typo.day % 28 + 1).isoformat()))
    assert other.content == corrected.content
    http_clock.advance(timedelta(minutes=61))
    assert newcomer.post(CHECK, json=body(world, patient)).status_code == 200  # an hour later
    drain(apps)
    with runtime.sessions() as session:
        for who in (pharmacy, newcomer):
            client = session.get(ApiClient, who.client_id)
            assert client is not None
            assert client.status is ClientStatus.ACTIVE
            contained = session.scalars(select(Containment).where(Containment.subject_id == who.client_id)).all()
            alerts = session.scalars(select(Alert).where(Alert.practice_id == who.practice_id)).all()
            assert contained == []
            assert alerts == []


@pytest.mark.slow
def test_http_low_and_slow_over_five_practices_alerts_before_50_each(
    apps: list[Any], runtime: Runtime, http_clock: ManualClock
) -> None:
    world = build_world(runtime, members=260, seed=23)
    patients = iter(in_force(world))
    thieves = [Balanced(apps, runtime) for _ in range(5)]
    answered: dict[uuid.UUID, list[datetime]] = {t.practice_id: [] for t in thieves}
    for minute in range(3 * 60):  # three simulated hours, one check a minute over the five practices
        thief = thieves[minute % 5]
        response = thief.post(CHECK, json=body(world, next(patients)))
        if response.status_code == 200:
            answered[thief.practice_id].append(http_clock.now())
        http_clock.advance(60)
    drain(apps)
    operator = PortalUser.invited(apps[2], runtime, login="vigie@rempart.test", roles={Role.SECURITY_OPERATOR})
    for thief in thieves:
        found = operator.get("/api/v1/alerts", params={"practice_id": str(thief.practice_id), "limit": 500})
        assert found.status_code == 200, found.text
        first = min(datetime.fromisoformat(a["created_at"]) for a in found.json()["alerts"])
        before = sum(1 for t in answered[thief.practice_id] if t <= first)
        assert before < 50
        print(f"\n(c/http) practice alerted after {before} beneficiaries, {first - OPENING} into the day")


@pytest.mark.slow
def test_http_a_normal_pharmacy_day_is_never_slowed_down(
    apps: list[Any], runtime: Runtime, http_clock: ManualClock
) -> None:
    world = build_world(runtime, members=420, seed=24)
    patients = in_force(world)[:300]
    assert len(patients) == 300
    pharmacy = Balanced(apps, runtime)
    rng = random.Random(24)
    http_clock.set(OPENING.replace(hour=8, minute=30) + timedelta(days=1))
    start = http_clock.now()
    busy = [m for m in range(11 * 60) for _ in range(2 if 30 <= m < 180 or 510 <= m < 630 else 1)]
    arrivals = sorted(rng.choice(busy) * 60 + rng.randrange(60) for _ in patients)
    events = []
    for at, patient in zip(arrivals, patients, strict=True):
        events.append((at, 0, patient))
        events.append((at + rng.randrange(60, 360), 1, patient))
    refused, billed = [], 0
    checks: dict[str, str] = {}
    for at, kind, patient in sorted(events, key=lambda e: (e[0], e[1])):
        moment = start + timedelta(seconds=at)
        if moment > http_clock.now():
            http_clock.set(moment)
        if kind == 0:
            response = pharmacy.post(CHECK, json=body(world, patient, care_date=moment.date().isoformat()))
            if response.status_code != 200:
                refused.append((moment.time(), response.status_code))
                continue
            checks[patient.member_number + patient.nir] = response.json()["check_id"]
            continue
        check_id = checks.get(patient.member_number + patient.nir)
        if check_id is None:
            continue
        claim = {
            "check_id": check_id,
            "lines": [
                {
                    "care_domain": "PHAR",
                    "act_code": "3400930000001",
                    "care_date": moment.date().isoformat(),
                    "unit_price_cents": 1_000,
                    "brss_cents": 1_000,
                    "amo_rate_pct": 65,
                }
            ],
        }
        response = pharmacy.post("/api/v1/claims", json=claim, headers={"Idempotency-Key": str(uuid.uuid4())})
        assert response.status_code == 201, response.text
        billed += 1
    drain(apps)
    assert refused == []
    assert billed == 300
    with runtime.sessions() as session:
        alerts = session.scalars(select(Alert).where(Alert.practice_id == pharmacy.practice_id)).all()
    assert [a.title for a in alerts] == []


def test_http_kill_switch_reaches_the_other_processes_within_a_second(
    apps: list[Any], runtime: Runtime, http_clock: ManualClock
) -> None:
    world = build_world(runtime, members=20, seed=25)
    patient = in_force(world)[0]
    pharmacy = Balanced(apps, runtime)
    operator = PortalUser.invited(apps[0], runtime, login="vigie@rempart.test", roles={Role.SECURITY_OPERATOR})
    for _ in range(3):  # every process answers, and caches the (empty) list of switches
        assert pharmacy.post(CHECK, json=body(world, patient)).status_code == 200
    http_clock.advance(0.5)
    cut = operator.post(
        "/api/v1/kill-switches",
        json={"scope": "channel", "target": "practice_api", "reason": "Practice software keys stolen"},
    )
    assert cut.status_code == 201, cut.text
    http_clock.advance(0.6)
    answers = [pharmacy.post(CHECK, json=body(world, patient)) for _ in range(3)]
    assert [a.status_code for a in answers] == [503, 503, 503]
    problem = answers[1].json()
    assert problem["type"].endswith("/channel-disconnected")
    assert problem["offline_attestation"] is True
    assert "offline attestation" in problem["detail"]
    cleared = operator.post(f"/api/v1/kill-switches/{cut.json()['id']}/clear", json={"reason": "All clear now"})
    assert cleared.status_code == 200
    http_clock.advance(1.1)
    assert [pharmacy.post(CHECK, json=body(world, patient)).status_code for _ in range(3)] == [200, 200, 200]


def test_http_rights_checks_fail_closed_without_redis(
    runtime: Runtime, http_clock: ManualClock, own_redis: tuple[str, subprocess.Popen[bytes]]
) -> None:
    url, server = own_redis
    settings = runtime.settings.model_copy(update={"redis_url": url})
    served = Runtime.build(settings)
    app = make_app(served, http_clock, prefix="rempart:det:", identity_prefix="ident")
    # Identity keeps its replay store on the shared Redis: only detection's counters go down.
    app.state.identity = IdentityServices.build(runtime.settings, clock=http_clock.now, prefix=f"t{uuid.uuid4().hex}")
    world = build_world(runtime, members=20, seed=26)
    patient = in_force(world)[0]
    pharmacy = PracticeClient.register(app, served)
    assert pharmacy.post(CHECK, json=body(world, patient)).status_code == 200
    pharmacy.token()
    server.terminate()
    server.wait(timeout=10)
    http_clock.advance(2)
    down = pharmacy.post(CHECK, json=body(world, patient))
    assert down.status_code == 503
    assert down.headers["content-type"] == "application/problem+json"
    assert down.json()["type"].endswith("/counter-store-unavailable")
    assert down.json()["offline_attestation"] is True
    assert "check_id" not in down.text
    app.state.detection.drain()
    with runtime.sessions() as session:
        kinds = [a.kind.value for a in session.scalars(select(Alert))]
    assert "counter_store_unreachable" in kinds
    app.state.detection.close()
    served.close()


PHAR_LINE = {
    "care_domain": "PHAR",
    "act_code": "3400930000001",
    "unit_price_cents": 1_000,
    "brss_cents": 1_000,
    "amo_rate_pct": 65,
}


def at_address(balanced: Balanced, address: str, *, new_dpop_key: bool) -> Balanced:
    """The same software key used from ``address`` (its own tokens; a thief's own DPoP key)."""
    copy = object.__new__(Balanced)
    copy.replicas = [
        replace(
            replica,
            client=TestClient(
                replica.app,
                base_url=identity_of(replica.app).origin,
                raise_server_exceptions=False,
                client=(address, 50_000),
            ),
            dpop_key=ECKey.generate_key("P-256", private=True) if new_dpop_key else replica.dpop_key,
            _token=None,
        )
        for replica in balanced.replicas
    ]
    copy._next = itertools.cycle(copy.replicas)
    copy.client_id, copy.practice_id = balanced.client_id, balanced.practice_id
    return copy


@pytest.mark.slow
@pytest.mark.parametrize("thief_address", ["203.0.113.77", "192.0.2.10"], ids=["another-network", "own-network"])
def test_http_a_patient_thief_quoting_every_hit_is_suspended_within_100_records(
    apps: list[Any], runtime: Runtime, http_clock: ManualClock, thief_address: str
) -> None:
    """Over HTTP: a pharmacy works three days from its network, checking mostly returning patients
    and billing each within minutes. On the fourth its software key is used by a thief with a leaked
    list, twelve checks an hour, a quote for every hit, Retry-After honoured. Quotes are answered
    (the thief looks busy) and change nothing: from another network he is stopped by the network's
    signals, from the pharmacy's own by the new patients he checks and never bills."""
    world = build_world(runtime, members=900, seed=31)
    records = in_force(world)
    regulars, leaked = records[:120], records[120:]
    software = Balanced(apps, runtime)
    pharmacy = at_address(software, "192.0.2.10", new_dpop_key=False)
    thief = at_address(software, thief_address, new_dpop_key=True)
    rng = random.Random(31)
    honest_refused: list[int] = []

    def honest_visit(record: MemberRecord, moment: datetime) -> None:
        response = pharmacy.post(CHECK, json=body(world, record, care_date=moment.date().isoformat()))
        if response.status_code != 200:
            honest_refused.append(response.status_code)
            return
        http_clock.advance(rng.randrange(60, 300))
        claim = {
            "check_id": response.json()["check_id"],
            "lines": [{**PHAR_LINE, "care_date": moment.date().isoformat()}],
        }
        billed = pharmacy.post("/api/v1/claims", json=claim, headers={"Idempotency-Key": str(uuid.uuid4())})
        assert billed.status_code == 201, billed.text

    start = OPENING.replace(hour=8, minute=30) + timedelta(days=1)
    http_clock.set(start)
    for day in range(3):
        http_clock.set(start + timedelta(days=day))
        for n in range(60):  # the first day's patients are all new to the practice; then mostly known
            honest_visit(regulars[(day * 60 + n) % len(regulars)] if day else regulars[n], http_clock.now())
            http_clock.advance(rng.randrange(300, 540))
    assert honest_refused == []

    http_clock.set(start + timedelta(days=3))
    disclosed = quotes = 0
    suspended = False
    for record in leaked[:200]:
        if rng.random() < 0.5:  # the pharmacy goes on working meanwhile
            honest_visit(rng.choice(regulars), http_clock.now())
        response = thief.post(CHECK, json=body(world, record, care_date=http_clock.now().date().isoformat()))
        if response.status_code == 200:
            disclosed += 1
            today = http_clock.now().date().isoformat()
            quote = thief.post(
                "/api/v1/quotes",
                json={"check_id": response.json()["check_id"], "lines": [{**PHAR_LINE, "care_date": today}]},
            )
            assert quote.status_code == 200, quote.text
            quotes += 1
            http_clock.advance(300)
            continue
        problem = response.json()
        if (
            problem["type"].endswith(("/access-suspended", "/client-suspended", "/invalid_token"))
            or response.status_code == 401
        ):
            suspended = True
            break
        http_clock.advance(int(problem.get("retry_after", 1800)))
    drain(apps)
    assert suspended
    assert disclosed <= 100
    assert quotes == disclosed
    with runtime.sessions() as session:
        client = session.get(ApiClient, software.client_id)
        assert client is not None
        assert client.status is ClientStatus.SUSPENDED
        signals = {a.signal for a in session.scalars(select(Alert).where(Alert.practice_id == software.practice_id))}
    print(f"\n(patient thief/http, {thief_address}) disclosed={disclosed} (each quoted), signals={sorted(signals)}")
