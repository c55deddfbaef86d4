"""The beneficiary's portal: who accessed my data (``/me/access-log``).

In plain words, newest first and by pages, all of them or only those of one kind of actor (the
``who`` filter): which practice (its name and profession) or which insurer department, why (the
purpose's label), what was seen (the fields' labels), when (Paris time) and with what outcome. The
words come from ``audit.my_log`` in the page's language; a page's cursor is the one the service gave
(another is refused as a readable page).
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import Query, Request
from fastapi.responses import HTMLResponse

from rempart.audit.my_log import Who, my_access_log
from rempart.errors import ValidationFailed
from rempart.identity.deps import AnyCaller, requires
from rempart.identity.errors import PermissionDenied
from rempart.identity.permissions import Permission
from rempart.identity.portal import ViewerDep
from rempart.web import i18n
from rempart.web.deps import SessionDep
from rempart.web.i18n import _
from rempart.web.pages import PageRouter, render

router = PageRouter()
PER_PAGE = 20
# The filter's choices, as the person reads them (an English message id each).
WHO_WORDS: dict[str, str] = {
    "": _("Everyone"),
    Who.PROFESSIONALS: _("Health professionals"),
    Who.INSURER: _("My insurer"),
    Who.PLATFORM: _("Rempart's operators"),
    Who.ME: _("Myself"),
}


@router.page("/me/access-log", dependencies=[requires(Permission.ME_ACCESS_LOG_READ)])
def access_log(
    *,
    request: Request,
    viewer: ViewerDep,
    caller: AnyCaller,
    session: SessionDep,
    who: Annotated[str, Query(max_length=20)] = "",
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> HTMLResponse:
    """Who accessed my data, when, why and what; the next page by the cursor of the last line."""
    if caller.insurer_id is None or caller.beneficiary_id is None:
        raise PermissionDenied("only an insured person has an access log")
    if who and who not in {w.value for w in Who}:
        raise ValidationFailed("choose who accessed among the filter's choices")
    chosen = Who(who) if who else None
    lang: Literal["en", "fr"] = "en" if i18n.language_of(request) == "en" else "fr"
    page = my_access_log(
        session,
        insurer_id=caller.insurer_id,
        beneficiary_id=caller.beneficiary_id,
        lang=lang,
        who=chosen,
        cursor=cursor,
        limit=PER_PAGE,
    )
    return render(
        request,
        "beneficiary/access_log.html",
        viewer=viewer,
        entries=page.entries,
        next_cursor=page.next_cursor,
        first_page=cursor is None,
        who=who,
        choices=WHO_WORDS,
    )
