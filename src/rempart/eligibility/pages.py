"""The counter: a professional checks a patient's rights in the portal (``/counter``), one patient at a
time or the day's appointments at once (``/counter/batch``).

The same service, the same detection (``DetectionAdmission``), kill switches (``GuardedPracticeCaller``),
quotas and access log as the API; the channel is ``portal`` because the principal is a passkey
session. What a page shows back is coverage only: never the NIR or the date of birth typed (the form
is not re-filled with them), and a miss is one answer whatever field was wrong, in a blank form.
"""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse
from pydantic import ValidationError
from starlette.datastructures import FormData, UploadFile

from rempart.detection.deps import DetectionDep, GuardedPracticeCaller
from rempart.eligibility.admission import DetectionAdmission
from rempart.eligibility.schemas import RightsCheckIn, RightsCheckOut
from rempart.eligibility.service import (
    MAX_BATCH,
    MAX_DAYS_AHEAD,
    MAX_DAYS_BACK,
    RightsMiss,
    RightsQuery,
    care_day,
    check_rights,
    check_rights_batch,
)
from rempart.identity.context import IdentityDep
from rempart.identity.deps import FORM_CSRF, requires
from rempart.identity.permissions import Permission
from rempart.identity.portal import ViewerDep
from rempart.web.deps import RuntimeDep, SessionDep
from rempart.web.i18n import _
from rempart.web.pages import PageRouter, render

router = PageRouter()

CHECK = [requires(Permission.CARE_RIGHTS_CHECK_CREATE)]
POSTED = [FORM_CSRF, requires(Permission.CARE_RIGHTS_CHECK_CREATE)]

# The largest batch file read; 50 lines of a card, a NIR, a date and a rank fit in far less.
MAX_UPLOAD_BYTES = 64 * 1024

# One message per field, whatever pydantic found wrong: says what is expected, never echoes the value.
FIELD_ERRORS: dict[str, str] = {
    "amc_number": _("The AMC number is 8 to 10 digits, as printed on the card."),
    "member_number": _("The member number is 1 to 20 letters or digits, as printed on the card."),
    "nir": _("This is not a valid NIR: 13 characters and a 2-digit key."),
    "birth_date": _("Enter the date of birth as a date."),
    "birth_rank": _("The birth rank is a number from 1 to 9."),
    "care_date": _("Enter the date of care as a date."),
}
CARE_DATE_RANGE = _("The date of care must be within two years before and one year after today.")


async def posted_form(request: Request) -> AsyncIterator[FormData]:
    """The form as posted (``FORM_CSRF`` read the same cached form); uploaded files closed after."""
    form = await request.form()
    try:
        yield form
    finally:
        await form.close()


FormDep = Annotated[FormData, Depends(posted_form)]


def _text(form: FormData, name: str) -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


# -- reading a card --------------------------------------------------------------------------------


@dataclass
class CardForm:
    """What the form shows again: the card and the dates, never the NIR nor the date of birth."""

    amc_number: str = ""
    member_number: str = ""
    birth_rank: str = "1"
    care_date: str = ""
    errors: dict[str, str] = field(default_factory=dict)

    @classmethod
    def blank(cls, today: date) -> CardForm:
        return cls(care_date=today.isoformat())


def read_card(fields: dict[str, str], *, today: date) -> tuple[RightsQuery | None, dict[str, str]]:
    """A rights query from the typed fields, or the fields in error (an English message each)."""
    data: dict[str, Any] = {name: value for name, value in fields.items() if value}
    data.setdefault("birth_rank", "1")
    errors: dict[str, str] = {}
    try:
        checked = RightsCheckIn.model_validate(data)
    except ValidationError as invalid:
        for error in invalid.errors():
            name = str(error["loc"][0]) if error["loc"] else ""
            errors.setdefault(name, FIELD_ERRORS.get(name, FIELD_ERRORS["care_date"]))
        return None, errors
    if checked.care_date is not None and not (
        today - timedelta(days=MAX_DAYS_BACK) <= checked.care_date <= today + timedelta(days=MAX_DAYS_AHEAD)
    ):
        return None, {"care_date": CARE_DATE_RANGE}
    return checked.query(), {}


def _card_fields(form: FormData) -> dict[str, str]:
    return {
        name: _text(form, name)
        for name in ("amc_number", "member_number", "nir", "birth_date", "birth_rank", "care_date")
    }


def _today(now: datetime) -> date:
    return care_day(now)


# -- one patient -----------------------------------------------------------------------------------


@router.page("/counter", dependencies=CHECK)
def counter(request: Request, viewer: ViewerDep, identity: IdentityDep) -> HTMLResponse:
    """The rights check form: the card, the NIR, the date of birth, as the patient hands them over."""
    return render(request, "eligibility/counter.html", viewer=viewer, card=CardForm.blank(_today(identity.clock())))


@router.post("/counter", dependencies=POSTED, response_class=HTMLResponse)
def check(
    *,
    request: Request,
    viewer: ViewerDep,
    form: FormDep,
    caller: GuardedPracticeCaller,
    session: SessionDep,
    runtime: RuntimeDep,
    identity: IdentityDep,
    detection: DetectionDep,
) -> HTMLResponse:
    """The coverage card of a patient, or the one answer for every miss."""
    now = identity.clock()
    today = _today(now)
    fields = _card_fields(form)
    query, errors = read_card(fields, today=today)
    if query is None:
        shown = CardForm(
            amc_number=fields["amc_number"],
            member_number=fields["member_number"],
            birth_rank=fields["birth_rank"] or "1",
            care_date=fields["care_date"],
            errors=errors,
        )
        return render(request, "eligibility/counter.html", viewer=viewer, card=shown, status=422)
    outcome = check_rights(
        session=session,
        keys=runtime.keys,
        caller=caller,
        query=query,
        now=now,
        admission=DetectionAdmission.of(detection, caller),
    )
    if isinstance(outcome, RightsMiss):
        # A blank form: nothing typed comes back, so every miss reads the same.
        return render(
            request, "eligibility/counter.html", viewer=viewer, card=CardForm.blank(today), no_match=True, status=404
        )
    return render(
        request,
        "eligibility/coverage.html",
        viewer=viewer,
        rights=RightsCheckOut.of(outcome),
    )


# -- the day's appointments ------------------------------------------------------------------------


@dataclass(frozen=True)
class BatchLine:
    number: int  # the line's number in what was pasted or uploaded (blank lines count)
    query: RightsQuery


def _iso_date(value: str) -> str:
    """``31/12/1980`` (as French software exports it) or ``1980-12-31``, as ISO."""
    parts = value.split("/")
    if len(parts) == 3 and all(p.isdigit() for p in parts):
        day, month, year = parts
        return f"{year.zfill(4)}-{month.zfill(2)}-{day.zfill(2)}"
    return value


def read_batch(text: str, *, care_date: str, today: date) -> tuple[list[BatchLine], list[tuple[int, str]]]:
    """The batch's lines (``amc;member;nir;birth_date;rank``), or the lines in error (number, message).

    A first line naming the columns is skipped; so are blank lines.
    """
    lines: list[BatchLine] = []
    problems: list[tuple[int, str]] = []
    rows = list(csv.reader(io.StringIO(text), delimiter=";"))
    for number, row in enumerate(rows, start=1):
        cells = [cell.strip() for cell in row]
        if not any(cells):
            continue
        if number == 1 and cells[0].lower().startswith("amc"):
            continue
        if len(cells) == 1 and cells[0].count(",") >= 3:
            cells = [cell.strip() for cell in cells[0].split(",")]
        if not 4 <= len(cells) <= 5:
            problems.append((number, _("A line has 4 or 5 fields: AMC;member;NIR;date of birth;rank.")))
            continue
        fields = {
            "amc_number": cells[0],
            "member_number": cells[1],
            "nir": cells[2],
            "birth_date": _iso_date(cells[3]),
            "birth_rank": cells[4] if len(cells) == 5 else "",
            "care_date": care_date,
        }
        query, errors = read_card(fields, today=today)
        if query is None:
            problems.extend((number, message) for message in dict.fromkeys(errors.values()))
        else:
            lines.append(BatchLine(number, query))
    return lines, problems


def _batch_text(form: FormData) -> tuple[str, str | None]:
    """The pasted lines, or the uploaded file's; an English problem when the file cannot be read."""
    upload = form.get("file")
    if isinstance(upload, UploadFile) and upload.filename:
        raw = upload.file.read(MAX_UPLOAD_BYTES + 1)
        if len(raw) > MAX_UPLOAD_BYTES:
            return "", _("The file is too large: 50 lines at most.")
        try:
            return raw.decode("utf-8-sig"), None
        except UnicodeDecodeError:
            try:
                return raw.decode("cp1252"), None
            except UnicodeDecodeError:
                return "", _("The file could not be read: send a CSV text file.")
    value = form.get("lines")
    return (value if isinstance(value, str) else ""), None


@router.page("/counter/batch", dependencies=CHECK)
def batch_form(request: Request, viewer: ViewerDep, identity: IdentityDep) -> HTMLResponse:
    """The batch form: paste the day's appointments, or upload them as a CSV file."""
    return render(
        request,
        "eligibility/batch.html",
        viewer=viewer,
        care_date=_today(identity.clock()).isoformat(),
        problems=[],
        max_batch=MAX_BATCH,
    )


@router.post("/counter/batch", dependencies=POSTED, response_class=HTMLResponse)
def batch(
    *,
    request: Request,
    viewer: ViewerDep,
    form: FormDep,
    caller: GuardedPracticeCaller,
    session: SessionDep,
    runtime: RuntimeDep,
    identity: IdentityDep,
    detection: DetectionDep,
) -> HTMLResponse:
    """Each line checked like a single check; the table shows line numbers, never an identity."""
    now = identity.clock()
    today = _today(now)
    care_date = _text(form, "care_date")
    text, unreadable = _batch_text(form)
    lines, problems = read_batch(text, care_date=care_date, today=today)
    if unreadable:
        problems = [(0, unreadable)]
    elif not problems and not lines:
        problems = [(0, _("Paste at least one line, or choose a file."))]
    elif not problems and len(lines) > MAX_BATCH:
        problems = [(0, _("A batch has 50 lines at most."))]
    if problems:
        return render(
            request,
            "eligibility/batch.html",
            viewer=viewer,
            care_date=care_date or today.isoformat(),
            problems=problems,
            max_batch=MAX_BATCH,
            status=422,
        )
    outcomes = check_rights_batch(
        session=session,
        keys=runtime.keys,
        caller=caller,
        queries=[line.query for line in lines],
        now=now,
        admission=DetectionAdmission.of(detection, caller),
    )
    results = [
        (line.number, None if isinstance(outcome, RightsMiss) else RightsCheckOut.of(outcome))
        for line, outcome in zip(lines, outcomes, strict=True)
    ]
    return render(
        request,
        "eligibility/batch_results.html",
        viewer=viewer,
        results=results,
        covered=sum(1 for _n, rights in results if rights is not None and rights.status == "covered"),
    )
