"""Opening a record under break glass from the console: operator A asks, operator B approves, A opens
the record with a POST (CSRF, a fresh passkey) and reads the identity on a page no browser keeps; the
opening is an access event naming the grant, which the person's own access log shows. Nobody else
opens A's grant, and an expired, ended, refused or still-waiting grant gets a page saying why."""

from __future__ import annotations

import html
import uuid
from collections.abc import Iterator
from datetime import timedelta

import httpx2 as httpx
import pytest
from sqlalchemy import select

from rempart.audit.models import AccessEvent, ActorKind
from rempart.audit.my_log import Who, my_access_log
from rempart.members.models import Beneficiary
from rempart.members.validation import MemberRecord
from rempart.runtime import Runtime
from rempart.web import i18n
from tests.console.conftest import Operator
from tests.e2e.scan import ResponseRecorder, identities_in
from tests.factories import TODAY
from tests.portal.conftest import World
from tests.support.clock import FakeClock

REASON = "Vérifier l'identité d'une personne touchée par l'incident"
TICKET = "INC-2026-0042"


@pytest.fixture(autouse=True)
def no_identity_in_professional_responses(
    recorder: list[ResponseRecorder], population: list[MemberRecord]
) -> Iterator[None]:
    """The console's own scan (tests/e2e/conftest.py), with one exception: the answer to "Open the
    record" is the one page that shows an identity. Every other response, the refusals included, is
    searched as everywhere else."""
    yield
    allowed = {TODAY + timedelta(days=k) for k in range(-30, 400)}
    allowed |= {r.contract_start for r in population} | {r.contract_end for r in population if r.contract_end}
    leaks = [
        f"{seen.method} {seen.path} ({seen.status}) shows {what}"
        for wrapper in recorder
        for seen in wrapper.responses
        if not (seen.method == "POST" and seen.path.endswith("/open") and seen.status == 200)
        for what in identities_in(seen.body, population, allowed_dates=allowed)
    ]
    assert not leaks, leaks


def text_of(response: httpx.Response) -> str:
    return html.unescape(response.text)


def _beneficiary(runtime: Runtime, world: World) -> uuid.UUID:
    with runtime.sessions() as session:
        found = session.scalar(select(Beneficiary.id).where(Beneficiary.insurer_id == world.insurer.id).limit(1))
    assert found is not None
    return found


def _views(runtime: Runtime, grant_id: str) -> list[AccessEvent]:
    with runtime.sessions() as session:
        found = list(session.scalars(select(AccessEvent).where(AccessEvent.break_glass_id == uuid.UUID(grant_id))))
        session.expunge_all()
        return found


def ask(operator: Operator, world: World, beneficiary: uuid.UUID, *, minutes: int = 30) -> str:
    operator.page("/console/break-glass")
    asked = operator.form(
        "/console/break-glass",
        {
            "insurer_id": str(world.insurer.id),
            "beneficiary_id": str(beneficiary),
            "reason": REASON,
            "ticket": TICKET,
            "minutes": str(minutes),
        },
    )
    assert asked.status_code == 200, asked.text
    return asked.text.split('id="grant-', 1)[1].split('"', 1)[0]


def approve(operator: Operator, grant_id: str) -> None:
    operator.page("/console/break-glass")
    approved = operator.form(f"/console/break-glass/{grant_id}/approve")
    assert approved.status_code == 200, approved.text


def open_record(operator: Operator, grant_id: str, **kwargs: object) -> httpx.Response:
    operator.page("/console/break-glass")
    return operator.form(f"/console/break-glass/{grant_id}/open", **kwargs)  # type: ignore[arg-type]


def _shown_member(world: World, text: str) -> MemberRecord:
    shown = [
        r
        for r in world.members
        if r.nir in text and r.last_name in text and r.first_name in text and r.member_number in text
    ]
    assert len(shown) == 1, "the page shows exactly one member's identity"
    return shown[0]


def test_the_operator_who_asked_opens_the_record_once_approved_and_the_person_sees_it(
    runtime: Runtime, world: World, operator: Operator, second_operator: Operator
) -> None:
    beneficiary = _beneficiary(runtime, world)
    grant_id = ask(operator, world, beneficiary)
    waiting = operator.page("/console/break-glass")
    assert f"/console/break-glass/{grant_id}/open" not in waiting.text  # not before a second operator
    approve(second_operator, grant_id)
    assert f"/console/break-glass/{grant_id}/open" not in second_operator.page("/console/break-glass").text

    listed = operator.page("/console/break-glass")
    assert f'action="/console/break-glass/{grant_id}/open"' in listed.text
    assert "Ouvrir la fiche" in text_of(listed)
    assert "Demander, approuver et ouvrir la fiche exigent" in text_of(listed)
    assert not _views(runtime, grant_id)  # listing records nothing

    opened = open_record(operator, grant_id, follow_redirects=False)
    assert opened.status_code == 200, opened.text
    assert opened.headers["cache-control"] == "no-store"
    assert "no-cache" in opened.headers["pragma"]
    shown = text_of(opened)
    member = _shown_member(world, shown)
    with i18n.speaking("fr"):
        assert i18n.day(member.birth_date) in shown
    assert "Cette consultation a été enregistrée." in shown
    assert "La personne et son organisme verront dans leur journal des accès" in shown
    assert REASON in shown
    assert TICKET in shown
    assert "astreinte@rempart.test" in shown  # who approved
    assert world.insurer.name in shown
    assert "Prend fin" in shown

    # Recorded before the page left: one break_glass_view, by A, naming the grant.
    (event,) = _views(runtime, grant_id)
    assert event.operation == "break_glass_view"
    assert event.actor_kind is ActorKind.OPERATOR
    assert event.actor_id == operator.user.account_id
    assert event.beneficiary_id == beneficiary
    assert event.reference == TICKET

    # The person's own access log, under "Rempart's operators", names the grant with its reason.
    with runtime.sessions() as session:
        mine = my_access_log(session, insurer_id=world.insurer.id, beneficiary_id=beneficiary, who=Who.PLATFORM)
    (entry,) = mine.entries
    assert entry.break_glass is not None
    assert entry.break_glass.grant_id == uuid.UUID(grant_id)
    assert (entry.break_glass.reason, entry.break_glass.ticket) == (REASON, TICKET)

    # Each opening is one more event.
    assert open_record(operator, grant_id).status_code == 200
    assert len(_views(runtime, grant_id)) == 2


def test_the_identity_is_never_reached_by_an_address(
    runtime: Runtime, world: World, operator: Operator, second_operator: Operator
) -> None:
    grant_id = ask(operator, world, _beneficiary(runtime, world))
    approve(second_operator, grant_id)
    got = operator.page(f"/console/break-glass/{grant_id}/open", follow_redirects=False)
    assert got.status_code == 303  # back to the list (the way back from a passkey check), nothing shown
    assert got.headers["location"] == f"/console/break-glass#grant-{grant_id}"
    assert not _views(runtime, grant_id)


def test_another_operator_cannot_open_a_grant_that_is_not_theirs(
    runtime: Runtime, world: World, operator: Operator, second_operator: Operator
) -> None:
    grant_id = ask(operator, world, _beneficiary(runtime, world))
    approve(second_operator, grant_id)
    refused = open_record(second_operator, grant_id)
    assert refused.status_code == 403
    shown = text_of(refused)
    assert "Accès d'urgence refusé" in shown
    assert "Seul l'opérateur qui a demandé cet accès peut ouvrir la fiche." in shown
    assert "403 break-glass-refused" in shown
    assert refused.headers["cache-control"] == "no-store"
    assert not _views(runtime, grant_id)


@pytest.mark.parametrize(
    ("state", "words"),
    [
        ("waiting", "Cette demande attend encore l'approbation d'un second opérateur."),
        ("refused", "Cette demande a été refusée par un second opérateur."),
        ("ended", "Cet accès a été terminé avant l'heure."),
        ("expired", "Cet accès a expiré."),
    ],
)
def test_a_grant_that_cannot_be_used_gets_a_page_saying_why(  # noqa: PLR0917  (fixtures)
    runtime: Runtime,
    world: World,
    clock: FakeClock,
    operator: Operator,
    second_operator: Operator,
    state: str,
    words: str,
) -> None:
    grant_id = ask(operator, world, _beneficiary(runtime, world), minutes=1)
    if state == "refused":
        second_operator.page("/console/break-glass")
        assert second_operator.form(f"/console/break-glass/{grant_id}/refuse").status_code == 200
    elif state != "waiting":
        approve(second_operator, grant_id)
    if state == "ended":
        operator.page("/console/break-glass")
        assert operator.form(f"/console/break-glass/{grant_id}/revoke").status_code == 200
    if state == "expired":
        clock.advance(minutes=2)  # past the grant's minute, within the passkey's five
        listed = text_of(operator.page("/console/break-glass"))
        assert "Approuvé, expiré" in listed
        assert f"/console/break-glass/{grant_id}/open" not in listed
    refused = open_record(operator, grant_id)
    assert refused.status_code == 403
    assert words in text_of(refused)
    assert not _views(runtime, grant_id)


def test_an_unknown_grant_is_not_found(operator: Operator) -> None:
    missing = open_record(operator, str(uuid.uuid4()))
    assert missing.status_code == 404
    assert "Cet accès d'urgence n'existe pas." in text_of(missing)


def test_opening_needs_the_page_s_csrf_token_and_a_fresh_passkey(
    runtime: Runtime, world: World, clock: FakeClock, operator: Operator, second_operator: Operator
) -> None:
    grant_id = ask(operator, world, _beneficiary(runtime, world))
    approve(second_operator, grant_id)
    operator.page("/console/break-glass")
    bare = operator.user.client.post(f"/console/break-glass/{grant_id}/open")
    assert bare.status_code == 403
    forged = operator.user.client.post(f"/console/break-glass/{grant_id}/open", data={"csrf_token": "x" * 43})
    assert forged.status_code == 403
    assert "jeton de sécurité" in text_of(forged)
    assert not _views(runtime, grant_id)

    clock.advance(seconds=6 * 60)
    late = open_record(operator, grant_id)
    assert late.status_code == 401  # step-up required: the page says what to do
    assert "Confirmez que c'est bien vous" in text_of(late)
    assert not _views(runtime, grant_id)
    assert operator.user.step_up().status_code == 200
    assert open_record(operator, grant_id).status_code == 200
    assert len(_views(runtime, grant_id)) == 1


def test_in_english(runtime: Runtime, world: World, operator: Operator, second_operator: Operator) -> None:
    grant_id = ask(operator, world, _beneficiary(runtime, world))
    approve(second_operator, grant_id)
    operator.english()
    assert "Open the record" in operator.page("/console/break-glass").text
    opened = text_of(open_record(operator, grant_id))
    assert "This view was recorded." in opened
    assert "The person and their insurer will see in their access logs" in opened
    assert "Approved by" in opened
    second_operator.english()
    refused = text_of(open_record(second_operator, grant_id))
    assert "Break-glass access refused" in refused
    assert "Only the operator who asked for this access may open the record." in refused


def test_deciding_one_s_own_request_reads_as_a_break_glass_refusal(
    runtime: Runtime, world: World, operator: Operator
) -> None:
    grant_id = ask(operator, world, _beneficiary(runtime, world))
    refused = operator.form(f"/console/break-glass/{grant_id}/approve")
    assert refused.status_code == 403
    assert "Accès d'urgence refusé" in text_of(refused)
    assert "exige l'approbation d'un second opérateur" in text_of(refused)
