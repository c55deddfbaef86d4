"""Bulk member exports in the back office and the insurer API: asked by one staff member, approved
or refused by another (never the requester: in Python and by the database's own check), downloaded
once by the requester within a day of the approval, the file decrypted and every member in it
recorded in the access log (``member_export``) before it leaves, so that each person sees it in
their own log. Another insurer's export reads like a missing one; every form needs its CSRF token."""

from __future__ import annotations

import csv
import io
import re
import uuid
from datetime import timedelta
from typing import Any
from unittest.mock import patch

import pytest
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from rempart.audit.access_log import beneficiary_access_log
from rempart.audit.models import AccessEvent, Channel, Outcome
from rempart.audit.service import AccessLogUnavailable, record_access
from rempart.identity.permissions import Role, permissions_of
from rempart.identity.principal import StaffPrincipal
from rempart.members.export_models import ExportStatus, MemberExport
from rempart.members.exports import OwnExport, do_decide_export, do_request_export
from rempart.members.validation import MemberRecord
from rempart.runtime import Runtime
from rempart.tenancy import bind_tenant
from tests.backoffice1.conftest import Office, Staff
from tests.support.routes import api_routes

PURPOSE = "Annual reconciliation with the employer's HR file"


def test_the_app_mounts_the_exports_pages_and_api(app: FastAPI) -> None:
    paths = {r.path for r in api_routes(app)}
    assert "/insurer/exports" in paths
    assert "/api/v1/insurers/{insurer_id}/member-exports" in paths


def principal(office: Office, who: Staff, role: Role, *, insurer_id: uuid.UUID | None = None) -> StaffPrincipal:
    assert who.user.account_id is not None
    roles = frozenset({role})
    return StaffPrincipal(
        insurer_id=insurer_id or office.insurer.id,
        account_id=who.user.account_id,
        roles=roles,
        permissions=permissions_of(roles),
    )


def exported(office: Office, records: list[MemberRecord]) -> None:
    """The file shows these people in clear: they are no longer searched for in responses."""
    for number in sorted({r.member_number for r in records}):
        office.shown(number)


def export_rows(runtime: Runtime, office: Office) -> list[MemberExport]:
    with runtime.sessions() as session:
        bind_tenant(session, office.insurer.id)
        return list(session.scalars(select(MemberExport).where(MemberExport.insurer_id == office.insurer.id)))


def export_events(runtime: Runtime, office: Office) -> list[AccessEvent]:
    with runtime.sessions() as session:
        return list(
            session.scalars(
                select(AccessEvent)
                .where(AccessEvent.insurer_id == office.insurer.id, AccessEvent.operation == "member_export")
                .order_by(AccessEvent.id)
            )
        )


def ask(who: Staff, purpose: str = PURPOSE, product_code: str = "") -> uuid.UUID:
    who.page("/insurer/exports")
    asked = who.form("/insurer/exports", {"purpose": purpose, "product_code": product_code}, follow_redirects=False)
    assert asked.status_code == 303, asked.text
    assert asked.headers["location"] == "/insurer/exports?note=asked"
    ids = re.findall(r'/insurer/exports/([0-9a-f-]{36})/withdraw"', who.page("/insurer/exports").text)
    assert ids, "the requester can withdraw their waiting request"
    return uuid.UUID(ids[0])


def rows_of(text: str) -> list[list[str]]:
    assert text.startswith("\ufeff")
    return list(csv.reader(io.StringIO(text[1:])))


def test_the_agent_asks_the_dpo_approves_the_agent_downloads_once(office: Office, runtime: Runtime) -> None:
    exported(office, office.members)
    export_id = ask(office.agent)
    listed = office.dpo.page("/insurer/exports/approvals")
    assert listed.status_code == 200
    assert PURPOSE.replace("'", "&#39;") in listed.text
    assert "agent@remparts.test" in listed.text  # who asked
    assert f"/insurer/exports/{export_id}/approve" in listed.text
    # Nothing can be downloaded yet.
    waiting = office.agent.form(f"/insurer/exports/{export_id}/download", follow_redirects=False)
    assert waiting.headers["location"] == "/insurer/exports?note=not-downloadable"

    approved = office.dpo.form(f"/insurer/exports/{export_id}/approve", follow_redirects=False)
    assert approved.status_code == 303
    page = office.agent.page("/insurer/exports")
    assert "dpo@remparts.test" in page.text  # who decided
    assert f"/insurer/exports/{export_id}/download" in page.text
    # The administrator (an approver, not the requester) has no download button and cannot download.
    assert f"/insurer/exports/{export_id}/download" not in office.admin.page("/insurer/exports").text
    stolen = office.admin.form(f"/insurer/exports/{export_id}/download")
    assert stolen.status_code == 403
    assert export_events(runtime, office) == []

    file = office.agent.form(f"/insurer/exports/{export_id}/download")
    assert file.status_code == 200, file.text
    assert file.headers["content-type"] == "text/csv; charset=utf-8"
    assert file.headers["content-disposition"].startswith('attachment; filename="members-')
    rows = rows_of(file.text)
    assert rows[0] == [
        "member_number",
        "role",
        "birth_rank",
        "nir",
        "last_name",
        "first_name",
        "birth_date",
        "product_code",
        "contract_start",
        "contract_end",
    ]
    expected = sorted(
        [
            r.member_number,
            r.role.value,
            str(r.birth_rank),
            r.nir,
            r.last_name,
            r.first_name,
            r.birth_date.isoformat(),
            r.product_code,
            r.contract_start.isoformat(),
            r.contract_end.isoformat() if r.contract_end else "",
        ]
        for r in office.members
    )
    assert sorted(rows[1:]) == expected  # every member of ours, decrypted; none of the other insurer's

    # One access event per person in the file, committed with the download.
    events = export_events(runtime, office)
    assert len(events) == len(office.members)
    assert len({e.beneficiary_id for e in events}) == len(office.members)
    assert {e.reference for e in events} == {str(export_id)}
    assert {e.channel for e in events} == {Channel.BACKOFFICE}
    assert {e.outcome for e in events} == {Outcome.DISCLOSED}
    assert {e.actor_id for e in events} == {office.agent.user.account_id}
    assert "nir" in events[0].fields
    assert "marital_status" not in events[0].fields
    (row,) = export_rows(runtime, office)
    assert (row.status, row.row_count, row.downloaded_at) == (
        ExportStatus.DOWNLOADED,
        len(office.members),
        office.clock(),
    )
    # The person sees it in their own access log.
    with runtime.sessions() as session:
        own = beneficiary_access_log(
            session,
            insurer_id=office.insurer.id,
            beneficiary_id=events[0].beneficiary_id,
            lang="fr",  # type: ignore[arg-type]
        )
    assert [(e.channel, e.who.kind) for e in own.entries] == [(Channel.BACKOFFICE, "insurer_staff")]

    # Once only.
    again = office.agent.form(f"/insurer/exports/{export_id}/download", follow_redirects=False)
    assert again.status_code == 303
    assert again.headers["location"] == "/insurer/exports?note=not-downloadable"
    assert len(export_events(runtime, office)) == len(office.members)


def test_the_requester_never_approves_their_own_export_page_api_service_database(
    office: Office, runtime: Runtime
) -> None:
    export_id = ask(office.admin)
    # The page: no button on one's own request, and the post is refused.
    approvals = office.admin.page("/insurer/exports/approvals")
    assert f"/insurer/exports/{export_id}/approve" not in approvals.text
    own = office.admin.form(f"/insurer/exports/{export_id}/approve")
    assert own.status_code == 403
    assert "Vous avez demandé cet export" in own.text
    assert office.admin.form(f"/insurer/exports/{export_id}/refuse").status_code == 403
    # The API: the same rule.
    base = f"/api/v1/insurers/{office.insurer.id}/member-exports"
    refused = office.admin.user.post(f"{base}/{export_id}/approve")
    assert refused.status_code == 403
    assert refused.headers["content-type"] == "application/problem+json"
    # The service.
    with runtime.sessions() as session, pytest.raises(OwnExport):
        do_decide_export(
            session,
            staff=principal(office, office.admin, Role.INSURER_ADMIN),
            export_id=export_id,
            approve=True,
            now=office.clock(),
        )
    # Written around the service, the database's own check still says no.
    with runtime.sessions() as session:
        bind_tenant(session, office.insurer.id)
        row = session.get_one(MemberExport, (office.insurer.id, export_id))
        row.status, row.decided_by, row.decided_at = ExportStatus.APPROVED, row.requested_by, office.clock()
        with pytest.raises(IntegrityError):
            session.commit()
    (row,) = export_rows(runtime, office)
    assert (row.status, row.decided_by) == (ExportStatus.WAITING, None)
    # A second person may.
    assert office.dpo.form(f"/insurer/exports/{export_id}/refuse", follow_redirects=False).status_code == 303
    (row,) = export_rows(runtime, office)
    assert (row.status, row.decided_by) == (ExportStatus.REFUSED, office.dpo.user.account_id)
    # A refused export never downloads, nor is decided again.
    assert office.admin.form(f"/insurer/exports/{export_id}/download", follow_redirects=False).status_code == 303
    again = office.dpo.form(f"/insurer/exports/{export_id}/approve", follow_redirects=False)
    assert again.headers["location"] == "/insurer/exports/approvals?note=already"
    assert export_events(runtime, office) == []


def test_an_approved_export_lapses_a_day_after_its_approval(office: Office, runtime: Runtime) -> None:
    # Asked and approved yesterday, a minute later than now (a browser session lasts 12 h at most).
    yesterday = office.clock() - timedelta(hours=23, minutes=59)
    with runtime.sessions() as session:
        export_id = do_request_export(
            session,
            staff=principal(office, office.agent, Role.CLAIMS_AGENT),
            purpose=PURPOSE,
            product_code=None,
            now=yesterday,
        ).id
        do_decide_export(
            session,
            staff=principal(office, office.dpo, Role.DPO),
            export_id=export_id,
            approve=True,
            now=yesterday,
        )
    assert f"/insurer/exports/{export_id}/download" in office.agent.page("/insurer/exports").text
    office.clock.advance(minutes=1)
    page = office.agent.page("/insurer/exports")
    assert f"/insurer/exports/{export_id}/download" not in page.text
    assert "Expiré ou retiré" in page.text

    late = office.agent.form(f"/insurer/exports/{export_id}/download", follow_redirects=False)

    assert late.status_code == 303
    assert late.headers["location"] == "/insurer/exports?note=lapsed"
    (row,) = export_rows(runtime, office)
    assert (row.status, row.downloaded_at) == (ExportStatus.LAPSED, None)
    assert export_events(runtime, office) == []
    assert office.agent.form(f"/insurer/exports/{export_id}/download", follow_redirects=False).status_code == 303


def test_the_api_asks_lists_approves_and_serves_the_file_once(office: Office, runtime: Runtime) -> None:
    product = office.members[0].product_code
    ours = [r for r in office.members if r.product_code == product]
    exported(office, ours)
    base = f"/api/v1/insurers/{office.insurer.id}/member-exports"

    asked = office.agent.user.post(base, json={"purpose": PURPOSE, "product_code": product})
    assert asked.status_code == 201, asked.text
    body = asked.json()
    assert (body["status"], body["product_code"], body["decided_by"]) == ("waiting", product, None)
    export_id = body["export_id"]
    listed = office.agent.user.get(base)
    assert [e["export_id"] for e in listed.json()["member_exports"]] == [export_id]
    assert office.agent.user.get(f"{base}/{export_id}").json()["status"] == "waiting"
    assert office.agent.user.get(f"{base}/{export_id}/file").status_code == 409
    # The agent may ask, not approve.
    assert office.agent.user.post(f"{base}/{export_id}/approve").status_code == 403

    approved = office.dpo.user.post(f"{base}/{export_id}/approve")
    assert approved.status_code == 200, approved.text
    assert approved.json()["status"] == "approved"
    assert approved.json()["downloadable_until"] is not None
    assert office.dpo.user.post(f"{base}/{export_id}/refuse").status_code == 409
    assert office.admin.user.get(f"{base}/{export_id}/file").status_code == 403  # not the requester

    file = office.agent.user.get(f"{base}/{export_id}/file")
    assert file.status_code == 200, file.text
    assert file.headers["content-type"] == "text/csv; charset=utf-8"
    rows = rows_of(file.text)
    assert sorted(r[3] for r in rows[1:]) == sorted(r.nir for r in ours)
    assert {r[7] for r in rows[1:]} == {product}
    assert len(export_events(runtime, office)) == len(ours)
    done = office.agent.user.get(f"{base}/{export_id}").json()
    assert (done["status"], done["row_count"]) == ("downloaded", len(ours))
    again = office.agent.user.get(f"{base}/{export_id}/file")
    assert again.status_code == 409
    assert again.headers["content-type"] == "application/problem+json"


def test_bad_requests_are_pointed_at_and_write_nothing(office: Office, runtime: Runtime) -> None:
    office.admin.page("/insurer/exports")
    for data, field in (
        ({"purpose": "too short"}, "purpose"),
        ({"purpose": "first line\nsecond line of it"}, "purpose"),
        ({"purpose": "x" * 501}, "purpose"),
        ({"purpose": PURPOSE, "product_code": "NOPE"}, "product_code"),
    ):
        page = office.admin.form("/insurer/exports", data)
        assert page.status_code == 422, data
        assert re.search(rf'id="{field}"[^>]*aria-invalid="true"', page.text), data
        assert f'id="{field}-error"' in page.text
    base = f"/api/v1/insurers/{office.insurer.id}/member-exports"
    problem = office.admin.user.post(base, json={"purpose": "short"})
    assert problem.status_code == 422
    assert problem.headers["content-type"] == "application/problem+json"
    assert problem.json()["errors"][0]["field"] == "purpose"
    unknown = office.admin.user.post(base, json={"purpose": PURPOSE, "product_code": "NOPE"})
    assert unknown.status_code == 422
    assert unknown.json()["errors"][0]["field"] == "product_code"
    assert export_rows(runtime, office) == []


def test_another_insurers_export_reads_like_a_missing_one(office: Office, runtime: Runtime) -> None:
    neighbour = StaffPrincipal(
        insurer_id=office.other.id,
        account_id=uuid.uuid4(),
        roles=frozenset({Role.INSURER_ADMIN}),
        permissions=permissions_of(frozenset({Role.INSURER_ADMIN})),
    )
    with runtime.sessions() as session:
        theirs = do_request_export(session, staff=neighbour, purpose=PURPOSE, product_code=None, now=office.clock()).id
    missing = uuid.uuid4()
    base = f"/api/v1/insurers/{office.insurer.id}/member-exports"

    def answers(call: Any, path: str) -> dict[str, tuple[int, Any]]:
        out = {}
        for name, export_id in (("theirs", theirs), ("missing", missing)):
            response = call(path.format(export_id))
            out[name] = (response.status_code, response.json() if "json" in response.headers["content-type"] else None)
        return out

    for call, path in (
        (office.admin.user.get, base + "/{}"),
        (office.admin.user.post, base + "/{}/approve"),
        (office.admin.user.get, base + "/{}/file"),
    ):
        found = answers(call, path)
        assert found["theirs"] == found["missing"], path
        assert found["theirs"][0] == 404
    assert office.admin.user.get(f"/api/v1/insurers/{office.other.id}/member-exports").status_code == 404
    office.admin.page("/insurer/exports")
    pages = {
        name: office.admin.form(f"/insurer/exports/{export_id}/approve")
        for name, export_id in (("theirs", theirs), ("missing", missing), ("malformed", "not-an-id"))
    }
    assert {k: r.status_code for k, r in pages.items()} == dict.fromkeys(pages, 404)
    assert (
        len({re.sub(r'value="[^"]{20,}"|next=[^"]*|/insurer/exports/[^/"]+/', "", r.text) for r in pages.values()}) == 1
    )
    assert str(theirs) not in office.admin.page("/insurer/exports").text
    with runtime.sessions() as session:
        bind_tenant(session, office.other.id)
        assert session.get_one(MemberExport, (office.other.id, theirs)).status is ExportStatus.WAITING


def test_every_form_needs_its_csrf_token(office: Office, runtime: Runtime) -> None:
    export_id = ask(office.agent)
    office.dpo.form(f"/insurer/exports/{export_id}/approve")
    for who, path in (
        (office.agent, "/insurer/exports"),
        (office.dpo, f"/insurer/exports/{export_id}/refuse"),
        (office.dpo, f"/insurer/exports/{export_id}/approve"),
        (office.agent, f"/insurer/exports/{export_id}/withdraw"),
        (office.agent, f"/insurer/exports/{export_id}/download"),
    ):
        for token in (None, "not-the-token"):
            data = {"purpose": PURPOSE} if token is None else {"purpose": PURPOSE, "csrf_token": token}
            refused = who.user.client.post(path, data=data)
            assert refused.status_code == 403, (path, token)
            assert "csrf" in refused.text
    (row,) = export_rows(runtime, office)
    assert row.status is ExportStatus.APPROVED
    assert export_events(runtime, office) == []


def test_the_requester_withdraws_and_nobody_else_can(office: Office, runtime: Runtime) -> None:
    export_id = ask(office.agent)
    office.admin.page("/insurer/exports")
    assert office.admin.form(f"/insurer/exports/{export_id}/withdraw").status_code == 403
    withdrawn = office.agent.form(f"/insurer/exports/{export_id}/withdraw", follow_redirects=False)
    assert withdrawn.headers["location"] == "/insurer/exports?note=withdrawn"
    late = office.dpo.form(f"/insurer/exports/{export_id}/approve", follow_redirects=False)
    assert late.headers["location"] == "/insurer/exports/approvals?note=already"
    (row,) = export_rows(runtime, office)
    assert (row.status, row.decided_by) == (ExportStatus.LAPSED, None)


def test_nothing_leaves_when_the_access_log_refuses_a_record(office: Office, runtime: Runtime) -> None:
    export_id = ask(office.agent)
    office.dpo.form(f"/insurer/exports/{export_id}/approve")
    calls = {"n": 0}

    def third_fails(*args: Any, **kwargs: Any) -> uuid.UUID:
        calls["n"] += 1
        if calls["n"] == 3:
            raise AccessLogUnavailable()
        return record_access(*args, **kwargs)

    with patch("rempart.members.exports.record_access", side_effect=third_fails):
        refused = office.agent.form(f"/insurer/exports/{export_id}/download")

    assert refused.status_code == 503
    for person in office.members:
        assert person.nir not in refused.text
    assert export_events(runtime, office) == []
    (row,) = export_rows(runtime, office)
    assert (row.status, row.downloaded_at, row.row_count) == (ExportStatus.APPROVED, None, None)


def test_the_exports_in_english(office: Office) -> None:
    export_id = ask(office.agent)
    french = office.agent.page("/insurer/exports")
    assert "Exports d'adhérents" in french.text
    assert "En attente d'un second membre du personnel" in french.text
    office.agent.english()
    page = office.agent.page("/insurer/exports")
    assert page.status_code == 200
    assert "Ask for an export" in page.text
    assert "Waiting for a second staff member" in page.text
    assert f"/insurer/exports/{export_id}/withdraw" in page.text
    office.dpo.english()
    assert "Member exports to approve" in office.dpo.page("/insurer/exports/approvals").text


def test_roles_without_the_export_permissions_get_the_403_page(office: Office) -> None:
    # The DPO approves, never asks; the agent asks, never approves.
    assert office.dpo.page("/insurer/exports").status_code == 403
    assert office.agent.page("/insurer/exports/approvals").status_code == 403
