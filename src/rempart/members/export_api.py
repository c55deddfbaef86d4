"""Member exports for insurer staff: ``/api/v1/insurers/{insurer_id}/member-exports``.

The same four eyes as the back office's pages (``rempart.members.exports``), so that the API is no
way around them: one staff member asks, a second one approves or refuses, and the requester
downloads the file once, within a day of the approval. Another insurer's id, or another insurer's
export id, answers "not found" like a missing one.

The file is ``GET .../file`` as the public contract names it, although it changes the export's
state: it answers once, and only to the requester's own credentials (a session cookie is
``SameSite=Strict``, so another site cannot make a browser fetch it).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict
from starlette.background import BackgroundTask

from rempart.detection.deps import GuardedStaffCaller
from rempart.identity.context import IdentityDep
from rempart.identity.deps import requires
from rempart.identity.permissions import Permission
from rempart.members.export_models import MemberExport
from rempart.members.exports import (
    do_decide_export,
    do_download_export,
    do_request_export,
    lapses_at,
    member_export,
    member_exports_page,
    status_at,
)
from rempart.pagination import Cursor
from rempart.web.deps import RuntimeDep, SessionDep
from rempart.web.pagination import CursorParam, next_link, paged_json
from rempart.web.responses import json_response

router = APIRouter(prefix="/api/v1/insurers/{insurer_id}/member-exports", tags=["insurer"])
REQUEST = requires(Permission.INSURER_EXPORT_REQUEST)
APPROVE = requires(Permission.INSURER_EXPORT_APPROVE)
Limit = Annotated[int, Query(ge=1, le=500)]


class MemberExportIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    purpose: str  # 10 to 500 characters, one line: why, without personal data
    product_code: str | None = None  # None: every member of the insurer


class MemberExportOut(BaseModel):
    """An export request: what and why, who asked and decided, never a member."""

    export_id: uuid.UUID
    purpose: str
    product_code: str | None
    status: str
    requested_by: uuid.UUID
    requested_at: datetime
    decided_by: uuid.UUID | None
    decided_at: datetime | None
    downloadable_until: datetime | None
    downloaded_at: datetime | None
    row_count: int | None

    @classmethod
    def of(cls, export: MemberExport, now: datetime) -> MemberExportOut:
        return cls(
            export_id=export.id,
            purpose=export.purpose,
            product_code=export.product_code,
            status=status_at(export, now).value,
            requested_by=export.requested_by,
            requested_at=export.requested_at,
            decided_by=export.decided_by,
            decided_at=export.decided_at,
            downloadable_until=lapses_at(export),
            downloaded_at=export.downloaded_at,
            row_count=export.row_count,
        )


class MemberExportListOut(BaseModel):
    """A page of the exports, newest first; ``next`` (also the ``Link`` header) on every page but the last."""

    member_exports: list[MemberExportOut]
    next: str | None = None


@router.post("", dependencies=[REQUEST], response_model=MemberExportOut, status_code=201)
def post_member_export(
    insurer_id: uuid.UUID, body: MemberExportIn, staff: GuardedStaffCaller, session: SessionDep, identity: IdentityDep
) -> Response:
    """Ask for an export of every member (or one product's): it waits for a second staff member."""
    now = identity.clock()
    export = do_request_export(session, staff=staff, purpose=body.purpose, product_code=body.product_code, now=now)
    return json_response(MemberExportOut.of(export, now), 201)


@router.get("", dependencies=[REQUEST], response_model=MemberExportListOut)
def get_member_exports(
    *,
    request: Request,
    insurer_id: uuid.UUID,
    staff: GuardedStaffCaller,
    session: SessionDep,
    identity: IdentityDep,
    limit: Limit = 100,
    cursor: str | None = CursorParam,
) -> Response:
    """The insurer's exports, newest first, a page at a time (``next``)."""
    now = identity.clock()
    page = member_exports_page(session, staff=staff, limit=limit, cursor=Cursor.decode(cursor))
    link = next_link(request, page.next)
    shown = [MemberExportOut.of(e, now) for e in page.items]
    return paged_json(MemberExportListOut(member_exports=shown, next=link), link)


@router.get("/{export_id}", dependencies=[REQUEST], response_model=MemberExportOut)
def get_member_export(
    insurer_id: uuid.UUID, export_id: uuid.UUID, staff: GuardedStaffCaller, session: SessionDep, identity: IdentityDep
) -> Response:
    return json_response(MemberExportOut.of(member_export(session, staff=staff, export_id=export_id), identity.clock()))


@router.post("/{export_id}/approve", dependencies=[APPROVE], response_model=MemberExportOut)
def approve_member_export(
    insurer_id: uuid.UUID, export_id: uuid.UUID, staff: GuardedStaffCaller, session: SessionDep, identity: IdentityDep
) -> Response:
    """A second staff member approves a waiting export (never its requester: 403)."""
    now = identity.clock()
    export = do_decide_export(session, staff=staff, export_id=export_id, approve=True, now=now)
    return json_response(MemberExportOut.of(export, now))


@router.post("/{export_id}/refuse", dependencies=[APPROVE], response_model=MemberExportOut)
def refuse_member_export(
    insurer_id: uuid.UUID, export_id: uuid.UUID, staff: GuardedStaffCaller, session: SessionDep, identity: IdentityDep
) -> Response:
    now = identity.clock()
    export = do_decide_export(session, staff=staff, export_id=export_id, approve=False, now=now)
    return json_response(MemberExportOut.of(export, now))


@router.get(
    "/{export_id}/file",
    dependencies=[REQUEST, requires(Permission.INSURER_MEMBER_READ)],
    response_class=StreamingResponse,
    responses={200: {"content": {"text/csv": {}}}},
)
def get_member_export_file(
    *,
    insurer_id: uuid.UUID,
    export_id: uuid.UUID,
    staff: GuardedStaffCaller,
    session: SessionDep,
    runtime: RuntimeDep,
    identity: IdentityDep,
) -> StreamingResponse:
    """The file, to its requester, once: every member in it is in the access log before it leaves."""
    file = do_download_export(session, keys=runtime.keys, staff=staff, export_id=export_id, now=identity.clock())
    return StreamingResponse(
        file.chunks(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{file.name}"', "Cache-Control": "no-store"},
        background=BackgroundTask(file.body.close),  # also when the client left before the end
    )
