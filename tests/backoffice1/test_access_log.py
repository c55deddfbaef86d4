"""The members' access log in the back office: the data protection officer reads it with filters
(channel, purpose, date range, practice) and pages back by keyset; a member view shows in it; the
signed checkpoints are listed and a consistency proof is given between two of them; no member's
identity appears (people are internal ids); roles without the permission get the 403 page."""

from __future__ import annotations

import html
import re
import uuid
from datetime import timedelta

import pytest

from rempart.audit import staff_pages
from rempart.audit.disclosures import Operation, Purpose
from rempart.audit.models import ActorKind, Channel, Outcome
from rempart.audit.queries import events_of_insurer
from rempart.audit.sealing import seal_all
from rempart.audit.service import Actor, record_access
from rempart.runtime import Runtime
from tests.backoffice1.conftest import Office
from tests.factories import TODAY


def view_a_member(office: Office) -> str:
    holder = office.members[0]
    office.shown(holder.member_number)
    assert office.admin.page(f"/insurer/members/{holder.member_number}").status_code == 200
    return holder.member_number


def test_the_log_shows_a_member_view_and_filters_it(office: Office) -> None:
    view_a_member(office)

    page = office.dpo.page("/insurer/access-log")

    assert page.status_code == 200, page.text
    assert 'data-operation="backoffice_member_view"' in page.text
    assert "Espace de gestion" in page.text
    assert "gestion de votre contrat" in page.text
    assert "admin@remparts.test" in page.text
    only_backoffice = office.dpo.page("/insurer/access-log?channel=backoffice")
    assert 'data-operation="backoffice_member_view"' in only_backoffice.text
    assert "backoffice_member_view" not in office.dpo.page("/insurer/access-log?channel=pro_api").text
    assert "backoffice_member_view" in office.dpo.page("/insurer/access-log?purpose=member_administration").text
    assert "backoffice_member_view" not in office.dpo.page("/insurer/access-log?purpose=care_billing").text
    yesterday = (TODAY - timedelta(days=1)).isoformat()
    assert "backoffice_member_view" not in office.dpo.page(f"/insurer/access-log?until={yesterday}").text
    assert "backoffice_member_view" in office.dpo.page(f"/insurer/access-log?since={TODAY.isoformat()}").text


def test_the_log_in_english(office: Office) -> None:
    view_a_member(office)
    office.dpo.english()
    page = office.dpo.page("/insurer/access-log")
    assert "Back office" in page.text
    assert "managing your contract" in page.text


def test_bad_filters_are_pointed_at_and_nothing_is_read(office: Office) -> None:
    page = office.dpo.page("/insurer/access-log?channel=telepathy&since=hier&practice=x&cursor=zzz")
    assert page.status_code == 422
    for name in ("channel", "since", "practice"):
        assert f'href="#{name}"' in page.text


def test_pages_go_back_in_time_by_keyset(office: Office, monkeypatch: pytest.MonkeyPatch) -> None:
    for _ in range(2):
        view_a_member(office)
    monkeypatch.setattr(staff_pages, "PAGE_SIZE", 2)

    first = office.dpo.page("/insurer/access-log?channel=backoffice")
    older = html.unescape(re.findall(r'href="([^"]+)" rel="next"', first.text)[0])
    second = office.dpo.page(older)

    assert older.startswith("/insurer/access-log?channel=backoffice&cursor=")
    assert second.status_code == 200
    assert first.text.count('class="entry"') == 2
    assert second.text.count('class="entry"') >= 1


def test_checkpoints_and_a_consistency_proof(office: Office, runtime: Runtime) -> None:
    view_a_member(office)
    numbers = seal_all(runtime.sessions, signer=runtime.signing_keys, max_batch=1)
    view_a_member(office)
    numbers += seal_all(runtime.sessions, signer=runtime.signing_keys, max_batch=1)
    assert len(numbers) >= 2

    page = office.dpo.page("/insurer/access-log/checkpoints")
    assert page.status_code == 200
    assert 'id="checkpoints"' in page.text
    proof = office.dpo.page(f"/insurer/access-log/checkpoints?old={numbers[0]}&new={numbers[-1]}")
    assert proof.status_code == 200, proof.text
    assert 'id="proof"' in proof.text
    refused = office.dpo.page(f"/insurer/access-log/checkpoints?old={numbers[-1]}&new={numbers[0]}")
    assert refused.status_code == 422
    assert 'id="proof-error"' in refused.text


def test_roles_without_the_log_permission_get_the_403_page(office: Office) -> None:
    for person in (office.admin, office.agent):
        for path in ("/insurer/access-log", "/insurer/access-log/checkpoints"):
            refused = person.page(path)
            assert refused.status_code == 403, path
            assert "Votre rôle ne le permet pas" in refused.text


def test_the_log_of_one_person_from_the_member_view(office: Office) -> None:
    member_number = view_a_member(office)
    admin_dpo = office.dpo
    office.shown(member_number)
    # The DPO reads one person's accesses (the link the member view gives those who may read the log).
    events = re.findall(r"<code>([0-9a-f-]{36})</code>", admin_dpo.page("/insurer/access-log?channel=backoffice").text)
    person = events[-1]

    page = admin_dpo.page(f"/insurer/access-log?beneficiary={person}")

    assert page.status_code == 200
    assert set(re.findall(r"<td><code>([0-9a-f-]{36})</code></td>", page.text)) == {person}
    assert admin_dpo.page("/insurer/access-log?beneficiary=nobody").status_code == 422


def test_a_filtered_page_is_full_the_filter_is_in_the_query(office: Office, runtime: Runtime) -> None:
    """Channel and purpose filter in the query: five events asked of one channel are five of it,
    however many of other channels come between them."""
    with runtime.sessions() as session:
        for n in range(12):
            record_access(
                session,
                operation=Operation.RIGHTS_CHECK if n % 3 else Operation.CLAIM_REVIEW,
                actor=Actor(ActorKind.INSURER_STAFF, id=uuid.uuid4()) if n % 3 == 0 else Actor(ActorKind.SYSTEM),
                channel=Channel.BACKOFFICE if n % 3 == 0 else Channel.PRO_API,
                outcome=Outcome.REFUSED,
                insurer_id=office.insurer.id,
                beneficiary_id=None,
                occurred_at=office.clock() - timedelta(minutes=n),
            )
        session.commit()
        backoffice = events_of_insurer(session, insurer_id=office.insurer.id, channel=Channel.BACKOFFICE, limit=3)
        billing = events_of_insurer(session, insurer_id=office.insurer.id, purpose=Purpose.CARE_ELIGIBILITY, limit=5)
    assert [e.channel for e in backoffice] == [Channel.BACKOFFICE] * 3
    assert [e.purpose for e in billing] == [Purpose.CARE_ELIGIBILITY] * 5
