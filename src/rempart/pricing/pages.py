"""Quotes in the portal: lines of care for a checked patient (``/quotes/new?check=<id>``) and, per line,
the insurer's share, the patient's remainder and the yearly ceilings after (``POST /quotes``).

The same service as the API's ``/api/v1/quotes`` (``quote_for_check``: the check must be the practice's
own and still citable; the access event is committed before the answer). A quote is a simulation:
nothing of the ceilings is consumed. The form is the lines-of-care form of the prior-approval and claim
pages (``pricing.forms``): a fixed number of rows, so it needs no script.
"""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import HTMLResponse

from rempart.detection.deps import GuardedPracticeCaller
from rempart.eligibility.service import CareDateInFuture, RightsCheckExpired, RightsCheckNotFound, care_day
from rempart.identity.context import IdentityDep
from rempart.identity.deps import FORM_CSRF, PracticeCaller, requires
from rempart.identity.permissions import Permission
from rempart.identity.portal import ViewerDep
from rempart.identity.principal import PracticePrincipal
from rempart.pricing.forms import (
    ROWS,
    FormFields,
    LinesForm,
    blank_values,
    check_reference,
    domain_choices,
    profession_domains,
)
from rempart.pricing.schemas import QuoteOut
from rempart.pricing.service import quote_for_check
from rempart.web.deps import SessionDep
from rempart.web.i18n import _
from rempart.web.pages import PageRouter, Viewer, render

router = PageRouter()

QUOTE = [requires(Permission.CARE_QUOTE_CREATE)]
POSTED = [FORM_CSRF, requires(Permission.CARE_QUOTE_CREATE)]

DEFAULT_AMO_RATE = "60"  # optics, hearing aids and dental prostheses: 60 % of the BRSS

CHECK_UNUSABLE = _(
    "No rights check of your practice has this reference, or it is too old to cite: check the patient's rights again."
)


def _form_page(
    request: Request, viewer: Viewer, caller: PracticePrincipal, form: LinesForm, *, status: int = 200
) -> HTMLResponse:
    return render(
        request,
        "pricing/quote_form.html",
        viewer=viewer,
        form=form,
        rows=range(1, ROWS + 1),
        domains=domain_choices(profession_domains(caller)),
        status=status,
    )


@router.page("/quotes/new", dependencies=QUOTE)
def new_quote(
    request: Request, viewer: ViewerDep, caller: PracticeCaller, identity: IdentityDep, check: str = ""
) -> HTMLResponse:
    """The quote form for the patient of a rights check (its reference comes from the coverage card)."""
    domains = profession_domains(caller)
    values = blank_values(
        care_date=care_day(identity.clock()),
        care_domain=domains[0].value if domains else "",
        amo_rate=DEFAULT_AMO_RATE,
    )
    values["check_id"] = check_reference(check)
    return _form_page(request, viewer, caller, LinesForm(values))


@router.post("/quotes", dependencies=POSTED, response_class=HTMLResponse)
def make_quote(
    *,
    request: Request,
    viewer: ViewerDep,
    fields: FormFields,
    caller: GuardedPracticeCaller,
    session: SessionDep,
    identity: IdentityDep,
) -> HTMLResponse:
    """Per line: the AMO's share, the complementary's share and what is left for the patient."""
    form = LinesForm(dict(fields))
    check_id = form.check_id()
    domain = form.care_domain(profession_domains(caller))
    lines = form.lines(domain, form.care_date())
    if form.errors or check_id is None:
        return _form_page(request, viewer, caller, form, status=422)
    try:
        result = quote_for_check(session=session, caller=caller, check_id=check_id, lines=lines, now=identity.clock())
    except (RightsCheckNotFound, RightsCheckExpired) as unusable:
        # Another practice's check reads like a missing one (the service sees to it).
        form.fail("check_id", CHECK_UNUSABLE)
        return _form_page(request, viewer, caller, form, status=unusable.status)
    except CareDateInFuture:
        form.fail("care_date", _("This date of care is after today: a quote is for care given."))
        return _form_page(request, viewer, caller, form, status=422)
    return render(request, "pricing/quote.html", viewer=viewer, quote=QuoteOut.of(result, lines))
