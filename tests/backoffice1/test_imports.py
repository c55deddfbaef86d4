"""Member imports in the back office: a file is sent with the form's CSRF token, its job's page shows
a progress bar (live through a small JSON route) and then the rejected rows by line, field and
reason, never the value, also as CSV; an unreadable file or no file is refused with nothing
imported; another insurer's job reads like a missing one; a role without the permission gets the
403 page. No member's identity appears on any of these pages (the recorded responses are scanned)."""

from __future__ import annotations

import re
import uuid

from fastapi import FastAPI
from sqlalchemy import select

from rempart.audit.models import AccessEvent, Channel
from rempart.identity.permissions import Role
from rempart.members.validation import MemberRecord
from rempart.runtime import Runtime
from tests.backoffice1.conftest import Office, Staff, staff
from tests.factories import population as synth_population
from tests.support.portal import PortalUser

_JOB = re.compile(r"/insurer/imports/([0-9a-f-]{36})$")


def members_csv(records: list[MemberRecord], *, break_nir_of: MemberRecord | None = None) -> tuple[bytes, str]:
    """The records as a members CSV; one NIR given a wrong key. Returns the file and the broken NIR."""
    from io import StringIO

    from rempart.members.synth import write_file

    out = StringIO()
    write_file(iter(records), out, fmt="csv")
    text, broken = out.getvalue(), ""
    if break_nir_of is not None:
        key = int(break_nir_of.nir[-2:])
        broken = break_nir_of.nir[:-2] + f"{(key + 1) % 98 or 1:02d}"
        assert text.count(break_nir_of.nir) == 1
        text = text.replace(break_nir_of.nir, broken)
    return text.encode(), broken


def send_file(person: Staff, content: bytes, name: str = "members.csv") -> object:
    person.page("/insurer/imports")
    return person.user.client.post(
        "/insurer/imports",
        data={"csrf_token": person.user.csrf_token},
        files={"file": (name, content, "text/csv")},
        follow_redirects=False,
    )


def new_members(office: Office, count: int = 3) -> list[MemberRecord]:
    records = synth_population(count, seed=21, first_number=900)
    office.population.extend(records)
    return records


def test_an_import_with_one_bad_row_shows_its_progress_and_the_rejected_row(office: Office, runtime: Runtime) -> None:
    records = new_members(office)
    bad = records[-1]
    content, broken = members_csv(records, break_nir_of=bad)

    sent = send_file(office.admin, content)

    assert sent.status_code == 303, sent.text  # type: ignore[attr-defined]
    location = sent.headers["location"]  # type: ignore[attr-defined]
    found = _JOB.search(location)
    assert found is not None
    page = office.admin.page(location)
    assert page.status_code == 200
    assert "<progress" in page.text
    assert 'id="import-bar"' in page.text
    assert "/static/backoffice.js" in page.text
    assert "Terminé" in page.text
    assert "Lignes rejetées" in page.text
    rows = re.findall(r"<tr>\s*<td class=\"amount\">(\d+)</td>\s*<td>([^<]+)</td>", page.text)
    line = next(n for n, r in enumerate(records, start=2) if r is bad)
    assert (str(line), "NIR") in rows
    assert broken not in page.text
    assert bad.nir not in page.text

    progress = office.admin.user.client.get(f"/insurer/imports/{found.group(1)}/progress")
    assert progress.status_code == 200
    assert progress.json()["finished"] is True
    assert progress.json()["percent"] == 100
    assert progress.json()["rows_total"] == len(records)

    report = office.admin.user.client.get(f"/insurer/imports/{found.group(1)}/rejected.csv")
    assert report.status_code == 200
    assert report.headers["content-type"].startswith("text/csv")
    assert "attachment" in report.headers["content-disposition"]
    assert report.text.splitlines()[0] == "line;field;reason"
    assert f"{line};nir;" in report.text
    assert broken not in report.text

    listed = office.admin.page("/insurer/imports")
    assert f"/insurer/imports/{found.group(1)}" in listed.text

    # The people the upload wrote read, in their own access log, that it came from the back office.
    with runtime.sessions() as session:
        channels = set(
            session.scalars(
                select(AccessEvent.channel).where(
                    AccessEvent.operation == "member_import", AccessEvent.reference == found.group(1)
                )
            )
        )
    assert channels == {Channel.BACKOFFICE}


def test_the_imports_page_in_english(office: Office) -> None:
    office.admin.english()
    page = office.admin.page("/insurer/imports")
    assert page.status_code == 200
    assert "Import the file" in page.text
    assert 'enctype="multipart/form-data"' in page.text
    assert 'name="csrf_token"' in page.text


def test_no_file_or_an_unreadable_file_is_refused(office: Office) -> None:
    office.admin.page("/insurer/imports")
    empty = office.admin.form("/insurer/imports", {})
    assert empty.status_code == 422
    assert "Choisissez un fichier" in empty.text

    unreadable = send_file(office.admin, b"\x00\x01 not a members file", name="members.csv")
    assert unreadable.status_code == 422  # type: ignore[attr-defined]
    assert "Rien n'a été importé" in unreadable.text  # type: ignore[attr-defined]


def test_another_insurers_job_reads_like_a_missing_one(app: FastAPI, runtime: Runtime, office: Office) -> None:
    theirs = staff(app, runtime, office.other, "admin@enface.test", Role.INSURER_ADMIN)
    records = synth_population(2, seed=31, first_number=700)
    office.population.extend(records)
    content, _ = members_csv(records)
    sent = send_file(theirs, content)
    their_job = sent.headers["location"].rsplit("/", 1)[-1]  # type: ignore[attr-defined]
    assert theirs.page(f"/insurer/imports/{their_job}").status_code == 200

    answers = {
        "theirs": office.admin.page(f"/insurer/imports/{their_job}"),
        "missing": office.admin.page(f"/insurer/imports/{uuid.uuid4()}"),
        "not an id": office.admin.page("/insurer/imports/nothing"),
    }
    assert {k: r.status_code for k, r in answers.items()} == dict.fromkeys(answers, 404)
    bodies = {re.sub(r'value="[^"]{20,}"|next=[^"]*', "", r.text) for r in answers.values()}
    assert len(bodies) == 1
    for suffix in ("progress", "rejected.csv"):
        assert office.admin.user.client.get(f"/insurer/imports/{their_job}/{suffix}").status_code == 404


def test_a_role_without_the_import_permission_gets_the_403_page(office: Office) -> None:
    for person in (office.agent, office.dpo):
        refused = person.page("/insurer/imports")
        assert refused.status_code == 403
        assert "Votre rôle ne le permet pas" in refused.text
    office.agent.page("/insurer/products")
    assert office.agent.form("/insurer/imports", {}).status_code == 403


def test_a_professional_cannot_reach_the_back_office(app: FastAPI, runtime: Runtime, office: Office) -> None:
    from tests.portal.conftest import open_counter

    counter = open_counter(app, runtime)
    assert isinstance(counter.user, PortalUser)
    for path in ("/insurer/imports", "/insurer/products", "/insurer/members", "/insurer/access-log"):
        assert counter.user.client.get(path).status_code == 403, path
