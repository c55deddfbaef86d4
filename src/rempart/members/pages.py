"""The insurer's back office: member imports with their progress and report, and the member view by member number.

Imports go through the same jobs as the insurer API's (``rempart.members.imports``): the file is
checked whole and stored, the job is queued and runs in the background; its page shows a
``<progress>`` bar that ``static/backoffice.js`` keeps live from ``/insurer/imports/{id}/progress``
(a reload does the same without script). The report of rejected rows names the line, the field and
the reason, never the value, and downloads as CSV. A job of another insurer reads like a missing one.

The member view is found by member number only, never by a name; it shows the contract and its
beneficiaries in clear, each beneficiary shown recorded in the access log before the page leaves
(``rempart.members.staff_view``). Another insurer's member number answers the same "not found".
"""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import BackgroundTasks, Depends, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.datastructures import FormData, UploadFile

from rempart.audit.models import Channel
from rempart.detection.deps import GuardedStaffCaller
from rempart.errors import ImportFileError, NotFound
from rempart.fields import paris_day
from rempart.identity.context import IdentityDep
from rempart.identity.deps import FORM_CSRF, requires
from rempart.identity.permissions import Permission
from rempart.identity.portal import ViewerDep
from rempart.insurers.jobs import ImportStatus, MembersImportJob
from rempart.members import imports
from rempart.members.staff_view import MEMBER_NUMBER, do_view_member
from rempart.web.deps import RuntimeDep, SessionDep
from rempart.web.i18n import _
from rempart.web.pages import PageRouter, render, see_other

router = PageRouter()

IMPORT = [requires(Permission.INSURER_MEMBER_IMPORT)]
IMPORT_POSTED = [FORM_CSRF, requires(Permission.INSURER_MEMBER_IMPORT)]
READ = [requires(Permission.INSURER_MEMBER_READ)]

STATUS_WORDS = {
    ImportStatus.QUEUED.value: _("Waiting"),
    ImportStatus.RUNNING.value: _("Importing"),
    ImportStatus.DONE.value: _("Done"),
    ImportStatus.FAILED.value: _("Failed"),
}
# The importer's reasons (``members.validation``, ``members.importer``) name a field and what is wrong
# with it, never a value; they are shown as they are, in English, next to the field's name.
FIELD_WORDS = {
    "member_number": _("Member number"),
    "product_code": _("Product code"),
    "contract_kind": _("Contract kind"),
    "contract_start": _("Contract start"),
    "contract_end": _("Contract end"),
    "role": _("Role"),
    "nir": _("NIR"),
    "sex": _("Sex"),
    "birth_date": _("Date of birth"),
    "birth_rank": _("Birth rank"),
    "last_name": _("Last name"),
    "first_name": _("First name"),
    "marital_status": _("Marital status"),
    "contract": _("Contract"),
    "*": _("Whole row"),
}
# The importer's fixed reasons, translated where shown; any other is shown as written, in English.
REASON_WORDS = frozenset(
    {
        _("is missing"),
        _("contains control characters"),
        _("is not a date in the form YYYY-MM-DD"),
        _("must contain only letters and digits"),
        _("names no product of this insurer"),
        _("is before contract_start"),
        _("has a wrong key (97 - number mod 97)"),
        _("is not a NIR (15 characters: 13 digits, Corsica 2A/2B, and a 2-digit key)"),
        _("must be M or F"),
        _("is in the future or before 1900"),
        _("must be a number from 1 to 9"),
        _("the contract has no holder"),
        _("the contract has more than one holder"),
        _("appears again after other contracts (duplicate member)"),
        _("not imported: another row of this contract is invalid"),
        _("conflicts with a contract written meanwhile"),
        _("already exists with another product, kind or dates"),
    }
)
ROLE_WORDS = {"holder": _("Holder"), "spouse": _("Spouse"), "child": _("Child")}
KIND_WORDS = {"individual": _("Individual contract"), "collective": _("Collective contract (employer)")}
MARITAL_WORDS = {
    "single": _("Single"),
    "married": _("Married"),
    "civil_union": _("Civil union"),
    "divorced": _("Divorced"),
    "widowed": _("Widowed"),
}
UPLOAD_PROBLEMS = {
    "missing": _("Choose a members file (CSV or NDJSON)."),
    "unreadable": _("The file could not be imported: it is not a members file Rempart can read. Nothing was imported."),
}


async def posted_form(request: Request) -> AsyncIterator[FormData]:
    """The form as posted (``FORM_CSRF`` read the same cached form); uploaded files closed after."""
    form = await request.form()
    try:
        yield form
    finally:
        await form.close()


FormDep = Annotated[FormData, Depends(posted_form)]


def _job_id(value: str) -> uuid.UUID:
    """A path's job id; anything but a UUID names no job (the same "not found")."""
    try:
        return uuid.UUID(value)
    except ValueError:
        raise NotFound("no import job with this id") from None


def _percent(job: MembersImportJob) -> int:
    if job.status is ImportStatus.DONE:
        return 100
    return (100 * job.rows_done // job.rows_total) if job.rows_total else 0


# -- imports ---------------------------------------------------------------------------------------


def _imports_page(
    request: Request, viewer: ViewerDep, jobs: list[MembersImportJob], *, problem: str | None, status: int = 200
) -> HTMLResponse:
    return render(
        request,
        "backoffice/imports_list.html",
        viewer=viewer,
        jobs=jobs,
        problem=problem,
        status_words=STATUS_WORDS,
        status=status,
    )


@router.page("/insurer/imports", dependencies=IMPORT)
def imports_page(
    request: Request, viewer: ViewerDep, staff: GuardedStaffCaller, session: SessionDep, runtime: RuntimeDep
) -> HTMLResponse:
    """The upload form and the latest imports."""
    jobs = list(imports.import_jobs(session, runtime=runtime, staff=staff))
    return _imports_page(request, viewer, jobs, problem=None)


@router.post("/insurer/imports", dependencies=IMPORT_POSTED, response_class=HTMLResponse)
def upload(
    *,
    request: Request,
    viewer: ViewerDep,
    staff: GuardedStaffCaller,
    session: SessionDep,
    runtime: RuntimeDep,
    identity: IdentityDep,
    form: FormDep,
    background: BackgroundTasks,
) -> Response:
    """Store and check the file, queue its job, and go to the job's page (the import runs after)."""
    upload = form.get("file")
    if not isinstance(upload, UploadFile) or not upload.filename:
        jobs = list(imports.import_jobs(session, runtime=runtime, staff=staff))
        return _imports_page(request, viewer, jobs, problem=UPLOAD_PROBLEMS["missing"], status=422)
    try:
        job = imports.start_import(
            session=session,
            runtime=runtime,
            staff=staff,
            source=upload.file,
            filename=upload.filename,
            now=identity.clock(),
        )
    except ImportFileError:
        jobs = list(imports.import_jobs(session, runtime=runtime, staff=staff))
        return _imports_page(request, viewer, jobs, problem=UPLOAD_PROBLEMS["unreadable"], status=422)
    background.add_task(
        imports.run_import, runtime, insurer_id=job.insurer_id, job_id=job.id, channel=Channel.BACKOFFICE
    )
    return see_other(f"/insurer/imports/{job.id}")


@router.page("/insurer/imports/{job_id}", dependencies=IMPORT)
def import_page(
    *,
    request: Request,
    viewer: ViewerDep,
    staff: GuardedStaffCaller,
    session: SessionDep,
    runtime: RuntimeDep,
    job_id: str,
) -> HTMLResponse:
    """A job's progress (live with script, on reload without) and, once done, its rejected rows."""
    job = imports.import_job(session, runtime=runtime, staff=staff, job_id=_job_id(job_id))
    return render(
        request,
        "backoffice/imports_detail.html",
        viewer=viewer,
        job=job,
        errors=job.error_list(),
        percent=_percent(job),
        status_words=STATUS_WORDS,
        field_words=FIELD_WORDS,
        reason_words=REASON_WORDS,
        finished=job.status in (ImportStatus.DONE, ImportStatus.FAILED),
    )


@router.api_route("/insurer/imports/{job_id}/progress", methods=["GET", "HEAD"], dependencies=IMPORT)
def import_progress(staff: GuardedStaffCaller, session: SessionDep, runtime: RuntimeDep, job_id: str) -> JSONResponse:
    """What the progress bar polls: counters and status only, nothing of a row."""
    job = imports.import_job(session, runtime=runtime, staff=staff, job_id=_job_id(job_id))
    return JSONResponse(
        {
            "status": job.status.value,
            "rows_total": job.rows_total,
            "rows_done": job.rows_done,
            "rejected": job.rejected,
            "percent": _percent(job),
            "finished": job.status in (ImportStatus.DONE, ImportStatus.FAILED),
        }
    )


@router.api_route("/insurer/imports/{job_id}/rejected.csv", methods=["GET", "HEAD"], dependencies=IMPORT)
def rejected_rows(staff: GuardedStaffCaller, session: SessionDep, runtime: RuntimeDep, job_id: str) -> Response:
    """The rejected rows as CSV: line, field, reason (never the value)."""
    job = imports.import_job(session, runtime=runtime, staff=staff, job_id=_job_id(job_id))
    out = io.StringIO()
    writer = csv.writer(out, delimiter=";", lineterminator="\r\n")
    writer.writerow(["line", "field", "reason"])
    for error in job.error_list():
        writer.writerow([error.get("line", ""), error.get("field", ""), error.get("reason", "")])
    return Response(
        out.getvalue().encode("utf-8"),
        media_type="text/csv; charset=utf-8",
        headers={"content-disposition": f'attachment; filename="import-{job.id}-rejected.csv"'},
    )


# -- the member view -------------------------------------------------------------------------------


@router.page("/insurer/members", dependencies=READ)
def find_member(request: Request, viewer: ViewerDep, staff: GuardedStaffCaller, number: str | None = None) -> Response:
    """Find a contract by its member number, as printed on the card; never by a name."""
    typed = (number or "").strip()
    if typed and MEMBER_NUMBER.fullmatch(typed):
        return see_other(f"/insurer/members/{typed}")
    return render(
        request,
        "backoffice/members_find.html",
        viewer=viewer,
        error=_("A member number is 1 to 20 letters or digits, as printed on the card.") if typed else "",
        status=422 if typed else 200,
    )


@router.page("/insurer/members/{member_number}", dependencies=READ)
def member_page(
    *,
    request: Request,
    viewer: ViewerDep,
    staff: GuardedStaffCaller,
    session: SessionDep,
    runtime: RuntimeDep,
    identity: IdentityDep,
    member_number: str,
) -> HTMLResponse:
    """The contract and its beneficiaries in clear; each view is in the access log before this leaves."""
    view = do_view_member(session, keys=runtime.keys, staff=staff, member_number=member_number, now=identity.clock())
    return render(
        request,
        "backoffice/members_view.html",
        viewer=viewer,
        member=view,
        formulas=view.product.formulas_on(paris_day(identity.clock())),
        role_words=ROLE_WORDS,
        kind_words=KIND_WORDS,
        marital_words=MARITAL_WORDS,
    )
