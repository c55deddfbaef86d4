"""``GET /fhir/PaymentReconciliation``: the practice's remittances as FHIR R4 resources, the same
remittances, amounts and claims as the native ``/api/v1/remittances`` answers, the same access events
(on the channel ``fhir``), nobody else's, no patient named; paged; a search it cannot honour whole is
refused (strict handling), naming the parameter at fault."""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from fastapi import FastAPI
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.operationoutcome import OperationOutcome
from fhir.resources.R4B.paymentreconciliation import PaymentReconciliation
from sqlalchemy import func, select

from rempart.audit.models import AccessEvent
from rempart.claims.models import ClaimStatus
from rempart.claims.service import ClaimRequest, submit_claim
from rempart.fhir import reconciliation
from rempart.fhir.identifiers import AMC_NUMBER, CLAIM, PAYMENT_RUN
from rempart.identity.permissions import Role, permissions_of
from rempart.identity.principal import Channel, PracticePrincipal
from rempart.members.validation import MemberRecord
from rempart.payments.service import run_payments
from rempart.professionals.models import Profession
from rempart.runtime import Runtime
from rempart.web.fhir_wire import FHIR_JSON
from tests.eligibility.world import NOW, World, build_world, claims_agent, medicine, rights_check, unit
from tests.factories import TODAY
from tests.support.practice_client import PracticeClient

SEARCH = "/fhir/PaymentReconciliation"
# The three payment runs' moments: two in November, one in December.
RUNS = (NOW + timedelta(days=1), NOW + timedelta(days=8), NOW + timedelta(days=15))


@pytest.fixture
def app(app: FastAPI) -> FastAPI:
    """The app, with the facade's reconciliation routes mounted until ``rempart.app`` mounts them."""
    if not any(getattr(route, "path", None) == SEARCH for route in app.routes):
        app.include_router(reconciliation.router)
    return app


def principal_of(practice: PracticeClient) -> PracticePrincipal:
    """The practice's software as the services see it, to bill through them."""
    return PracticePrincipal(
        practice_id=practice.practice_id,
        professional_id=practice.professional_id,
        rpps=practice.rpps,
        profession=practice.profession,
        permissions=permissions_of(frozenset({Role.PRACTICE_SOFTWARE})),
        channel=Channel.API,
        client_id=practice.client_id,
        address="192.0.2.10",
        credential_ref="tok:test",
    )


class Paid:
    """A world where three payment runs paid two pharmacies' claims."""

    def __init__(self, app: FastAPI, runtime: Runtime, population: list[MemberRecord]) -> None:
        self.world: World = build_world(runtime, members=20)
        population.extend(self.world.records)
        self.ours = PracticeClient.register(app, runtime, profession=Profession.PHARMACIST)
        self.theirs = PracticeClient.register(app, runtime, profession=Profession.PHARMACIST, practice_name="Autre")
        patients = iter(self.world.patients())
        agent = claims_agent(self.world.insurer)
        for run, (ours, theirs) in zip(RUNS, ((2, 1), (3, 1), (1, 0)), strict=True):
            for practice, count in ((self.ours, ours), (self.theirs, theirs)):
                for i in range(count):
                    self.bill(principal_of(practice), next(patients), price=1_000 + 137 * i)
            with unit(runtime) as session:
                run_payments(session=session, staff=agent, cutoff=TODAY, now=run)

    def bill(self, caller: PracticePrincipal, patient: MemberRecord, *, price: int) -> None:
        check = rights_check(self.world, caller, patient)
        with unit(self.world.runtime) as session:
            claim = submit_claim(
                session=session,
                caller=caller,
                request=ClaimRequest(check.check_id, (medicine(TODAY, price=price),)),
                idempotency_key=uuid.uuid4().hex,
                now=NOW,
            ).claim
        assert claim.status is ClaimStatus.ACCEPTED


@pytest.fixture
def paid(app: FastAPI, runtime: Runtime, population: list[MemberRecord]) -> Paid:
    return Paid(app, runtime, population)


def search(practice: PracticeClient, query: str = "") -> Bundle:
    answer = practice.get(SEARCH + query)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith(FHIR_JSON)
    bundle = Bundle.model_validate(answer.json())
    assert bundle.type == "searchset"
    return bundle


def resources(bundle: Bundle) -> list[PaymentReconciliation]:
    found = [PaymentReconciliation.model_validate(entry.resource.model_dump()) for entry in bundle.entry or []]
    assert all(entry.search.mode == "match" for entry in bundle.entry or [])
    return found


def cents(money: Any) -> int:
    assert money.currency == "EUR"
    return int(Decimal(str(money.value)) * 100)


def events_after(runtime: Runtime, after: int) -> list[AccessEvent]:
    with runtime.sessions() as session:
        return list(session.scalars(select(AccessEvent).where(AccessEvent.id > after).order_by(AccessEvent.id)))


def last_event(runtime: Runtime) -> int:
    with runtime.sessions() as session:
        return session.scalar(select(func.max(AccessEvent.id))) or 0


def what(event: AccessEvent) -> tuple[Any, ...]:
    """Everything an access event says but its channel (and its id and moment)."""
    return (
        event.operation,
        event.purpose,
        event.actor_kind,
        event.actor_id,
        event.practice_id,
        event.professional_id,
        event.profession,
        event.device,
        event.address,
        event.insurer_id,
        event.beneficiary_id,
        event.fields,
        event.outcome,
        event.reference,
    )


def test_the_search_answers_the_native_remittances_with_their_claims_and_logs_as_the_native_does(
    paid: Paid, runtime: Runtime
) -> None:
    ours = paid.ours
    ours.token()  # credentials first: their security events are not the point
    before = last_event(runtime)
    native = ours.get("/api/v1/remittances").json()["remittances"]
    details = {r["remittance_id"]: ours.get(f"/api/v1/remittances/{r['remittance_id']}").json() for r in native}
    native_events = events_after(runtime, before)

    before = last_event(runtime)
    bundle = search(ours)
    fhir_events = events_after(runtime, before)

    found = resources(bundle)
    assert bundle.total == len(found) == len(native) == 3
    assert [r.id for r in found] == [r["remittance_id"] for r in native]  # newest first, as natively
    for resource in found:
        remittance = details[resource.id]
        assert [(i.system, i.value) for i in resource.identifier] == [(PAYMENT_RUN, remittance["remittance_number"])]
        assert (resource.status, resource.outcome) == ("active", "complete")
        assert cents(resource.paymentAmount) == remittance["total_cents"]
        paid_at = datetime.fromisoformat(remittance["paid_at"])
        assert resource.created == paid_at
        assert resource.paymentDate == paid_at.astimezone(UTC).date()
        issuer = resource.paymentIssuer.identifier
        assert (issuer.system, issuer.value) == (AMC_NUMBER, remittance["amc_number"])
        lines = {(line["claim_id"], line["amount_cents"]) for line in remittance["lines"]}
        assert len(resource.detail) == remittance["claim_count"] == len(lines)
        for detail in resource.detail:
            assert detail.type.coding[0].code == "payment"
            assert (detail.request.type, detail.response.type) == ("Claim", "ClaimResponse")
            assert detail.request.identifier.system == detail.response.identifier.system == CLAIM
            assert detail.request.identifier.value == detail.response.identifier.value
            assert detail.date == resource.paymentDate
        assert {(d.request.identifier.value, cents(d.amount)) for d in resource.detail} == lines
        assert sum(cents(d.amount) for d in resource.detail) == cents(resource.paymentAmount)
        dumped = resource.model_dump_json()
        assert "patient" not in dumped.lower()
        assert "subject" not in dumped.lower()

    # The same accesses, one per claim shown, told apart by their channel only.
    assert len(fhir_events) == sum(r["claim_count"] for r in native) == 6
    assert {e.channel.value for e in native_events} == {"pro_api"}
    assert {e.channel.value for e in fhir_events} == {"fhir"}
    assert Counter(map(what, fhir_events)) == Counter(map(what, native_events))


def test_created_narrows_the_search_to_the_payment_dates_asked(paid: Paid) -> None:
    def dates(query: str) -> list[str]:
        return [r.paymentDate.isoformat() for r in resources(search(paid.ours, query))]

    first, second, third = (run.date().isoformat() for run in RUNS)
    assert dates("?created=ge2026-11-01&created=le2026-11-30") == [second, first]
    assert dates("?created=2026-11") == [second, first]
    assert dates(f"?created={first}") == [first]
    assert dates(f"?created=eq{second}") == [second]
    assert dates(f"?created=gt{second}") == [third]
    assert dates(f"?created=lt{second}") == [first]
    assert dates(f"?created=ge{second}&created=lt{third}") == [second]
    assert dates("?created=2026-12") == [third]
    assert dates(f"?created=ge{RUNS[1].isoformat().replace('+00:00', 'Z')}") == [third, second]
    assert dates("?created=2025") == []


def test_another_practice_finds_nothing_of_ours(paid: Paid, runtime: Runtime) -> None:
    stranger = PracticeClient.register(paid.ours.app, runtime, profession=Profession.PHARMACIST, practice_name="Tiers")
    stranger.token()
    before = last_event(runtime)

    bundle = search(stranger)

    assert bundle.total == 0
    assert not bundle.entry
    assert events_after(runtime, before) == []
    theirs = resources(search(paid.theirs))
    ours = {r.id for r in resources(search(paid.ours))}
    assert len(theirs) == 2
    assert not ours & {r.id for r in theirs}


def test_pages_follow_the_next_link_to_the_end(paid: Paid) -> None:
    first = search(paid.ours, "?_count=1")
    everything = [r.id for r in resources(search(paid.ours))]

    seen, bundle = [], first
    while True:
        assert bundle.total == 3
        assert len(bundle.entry or []) <= 1
        seen += [r.id for r in resources(bundle)]
        following = [link.url for link in bundle.link if link.relation == "next"]
        if not following:
            break
        (url,) = following
        assert url.startswith("http")
        assert "/fhir/PaymentReconciliation?" in url
        assert "_count=1" in url
        bundle = search(paid.ours, "?" + url.split("?", 1)[1])
    assert seen == everything
    assert len(seen) == 3

    narrowed = search(paid.ours, "?created=le2026-11-30&_count=1")
    (next_url,) = [link.url for link in narrowed.link if link.relation == "next"]
    assert "created=le2026-11-30" in next_url
    last = search(paid.ours, "?" + next_url.split("?", 1)[1])
    assert len(resources(last)) == 1
    assert not [link for link in last.link if link.relation == "next"]
    assert len(resources(search(paid.ours, "?_count=5000"))) == 3  # the most a page holds is 100


REFUSED = [
    ("?patient=123", "patient"),
    ("?status=active", "status"),
    ("?created=2026-13-01", "created"),
    ("?created=ge2026-11-31", "created"),
    ("?created=ge22-11-2026", "created"),
    ("?created=ge2026-11-01T10:00:00", "created"),  # a dateTime without its zone
    ("?created=sa2026-11-01", "created"),  # a prefix this server does not take
    ("?created=", "created"),
    ("?_count=0", "_count"),
    ("?_count=-1", "_count"),
    ("?_count=ten", "_count"),
    ("?_count=1&_count=2", "_count"),
    ("?_cursor=RSP-20260101-0000000000", "_cursor"),
]


def test_a_search_the_server_cannot_honour_whole_is_refused_naming_the_parameter(
    app: FastAPI, runtime: Runtime
) -> None:
    practice = PracticeClient.register(app, runtime)

    for query, parameter in REFUSED:
        answer = practice.get(SEARCH + query)

        assert answer.status_code == 400, (query, answer.text)
        assert answer.headers["content-type"].startswith(FHIR_JSON)
        outcome = OperationOutcome.model_validate(answer.json())
        assert [issue.expression for issue in outcome.issue] == [[parameter]], query
        assert outcome.issue[0].code == "structure"
        assert outcome.issue[0].details.coding[0].code == "fhir-search-invalid"


def test_the_search_is_for_practice_software_with_its_token(app: FastAPI, runtime: Runtime) -> None:
    practice = PracticeClient.register(app, runtime)

    anonymous = practice.client.get(SEARCH)

    assert anonymous.status_code == 401
    assert OperationOutcome.model_validate(anonymous.json()).issue[0].code == "login"
    assert practice.client.get(SEARCH + "?patient=1").status_code == 401  # who asks, before what
