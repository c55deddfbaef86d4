"""The member view in the back office: found by member number only, the contract and its
beneficiaries in clear for staff holding the member-read permission, each beneficiary shown recorded
in the access log (``backoffice`` channel) so that the person sees it in their own log; nothing shown
when the log refuses the record; another insurer's member number reads like a missing one."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from unittest.mock import patch

import pytest
from sqlalchemy import select

from rempart.audit.access_log import beneficiary_access_log
from rempart.audit.models import AccessEvent, Channel, Outcome
from rempart.audit.service import AccessLogUnavailable
from rempart.identity.errors import PermissionDenied
from rempart.identity.permissions import ROLE_PERMISSIONS, Role
from rempart.identity.principal import StaffPrincipal
from rempart.members.models import BeneficiaryRole
from rempart.members.staff_view import do_view_member
from rempart.runtime import Runtime
from tests.backoffice1.conftest import Office


def member_events(runtime: Runtime, office: Office) -> list[AccessEvent]:
    with runtime.sessions() as session:
        return list(
            session.scalars(
                select(AccessEvent)
                .where(AccessEvent.insurer_id == office.insurer.id, AccessEvent.operation == "backoffice_member_view")
                .order_by(AccessEvent.id)
            )
        )


def family(office: Office, member_number: str) -> list:  # type: ignore[type-arg]
    return [r for r in office.members if r.member_number == member_number]


def test_a_member_is_found_by_number_and_every_view_is_recorded(office: Office, runtime: Runtime) -> None:
    holder = next(r for r in office.members if r.role is BeneficiaryRole.HOLDER)
    people = family(office, holder.member_number)
    office.shown(holder.member_number)

    found = office.admin.page(f"/insurer/members?number={holder.member_number}", follow_redirects=False)
    assert found.status_code == 303
    assert found.headers["location"] == f"/insurer/members/{holder.member_number}"
    page = office.admin.page(found.headers["location"])

    assert page.status_code == 200, page.text
    for person in people:
        assert person.last_name in page.text
        assert person.nir in page.text
    assert "Adhérent principal" in page.text
    assert "journal des accès" in page.text
    events = member_events(runtime, office)
    assert len(events) == len(people)
    assert {e.channel for e in events} == {Channel.BACKOFFICE}
    assert {e.outcome for e in events} == {Outcome.DISCLOSED}
    assert {e.actor_id for e in events} == {office.admin.user.account_id}
    assert len({e.beneficiary_id for e in events}) == len(people)
    assert "nir" in events[0].fields
    # The person sees it in their own access log: their insurer's staff, managing their contract.
    with runtime.sessions() as session:
        own = beneficiary_access_log(
            session,
            insurer_id=office.insurer.id,
            beneficiary_id=events[0].beneficiary_id,
            lang="fr",  # type: ignore[arg-type]
        )
    assert [(e.channel, e.who.kind) for e in own.entries] == [(Channel.BACKOFFICE, "insurer_staff")]
    assert own.entries[0].why == "gestion de votre contrat"


def test_the_member_view_in_english(office: Office) -> None:
    holder = office.members[0]
    office.shown(holder.member_number)
    office.agent.english()

    page = office.agent.page(f"/insurer/members/{holder.member_number}")

    assert page.status_code == 200
    assert "Beneficiaries of the contract" in page.text
    assert "Holder" in page.text


def test_the_find_form_never_searches_by_name(office: Office) -> None:
    page = office.admin.page("/insurer/members")
    assert page.status_code == 200
    assert re.findall(r'<input id="(\w+)"', page.text) == ["number"]
    bad = office.admin.page("/insurer/members?number=Dupont%20Jean")
    assert bad.status_code == 422
    assert 'aria-invalid="true"' in bad.text


def test_another_insurers_member_reads_like_a_missing_one(office: Office, runtime: Runtime) -> None:
    theirs = office.other_members[0].member_number
    assert theirs not in {r.member_number for r in office.members}

    answers = {
        "theirs": office.admin.page(f"/insurer/members/{theirs}"),
        "missing": office.admin.page("/insurer/members/0999999999"),
        "malformed": office.admin.page("/insurer/members/not-a-number"),
    }

    assert {k: r.status_code for k, r in answers.items()} == dict.fromkeys(answers, 404)
    assert len({re.sub(r'value="[^"]{20,}"|next=[^"]*', "", r.text) for r in answers.values()}) == 1
    assert member_events(runtime, office) == []


def test_nothing_is_shown_when_the_access_log_refuses_the_record(office: Office, runtime: Runtime) -> None:
    holder = office.members[0]

    with patch("rempart.members.staff_view.record_access", side_effect=AccessLogUnavailable()):
        page = office.admin.page(f"/insurer/members/{holder.member_number}")

    assert page.status_code == 503
    for person in family(office, holder.member_number):
        assert person.last_name not in page.text
        assert person.nir not in page.text
    assert member_events(runtime, office) == []


def test_a_role_without_the_member_permission_gets_the_403_page(office: Office, runtime: Runtime) -> None:
    holder = office.members[0]
    for path in ("/insurer/members", f"/insurer/members/{holder.member_number}"):
        refused = office.dpo.page(path)
        assert refused.status_code == 403, path
        assert "Votre rôle ne le permet pas" in refused.text
    assert member_events(runtime, office) == []


def test_the_service_decrypts_for_member_readers_only(office: Office, runtime: Runtime) -> None:
    dpo = StaffPrincipal(
        insurer_id=office.insurer.id,
        account_id=uuid.uuid4(),
        roles=frozenset({Role.DPO}),
        permissions=ROLE_PERMISSIONS[Role.DPO],
    )
    with runtime.sessions() as session, pytest.raises(PermissionDenied):
        do_view_member(
            session,
            keys=runtime.keys,
            staff=dpo,
            member_number=office.members[0].member_number,
            now=datetime.now(UTC),
        )
    assert member_events(runtime, office) == []
