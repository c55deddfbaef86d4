"""What the portal's prior-approval and claim forms add to the lines-of-care form of
``rempart.pricing.forms``: the idempotency key the form carries, and a service's refusal placed on
the field it concerns.

Error messages are English message ids, translated where the page shows them (through Jinja's
``_``, which %-formats: a literal percent sign is written ``%%``); none carries what was typed.
"""

from __future__ import annotations

import uuid

from rempart.eligibility.service import CareDomainOutsideProfession, RightsCheckExpired
from rempart.errors import NotFound, RempartError, ValidationFailed
from rempart.idempotency import IdempotencyKeyReused, require_key
from rempart.pricing.forms import FormProblem, LinesForm
from rempart.web.i18n import _


def new_idempotency_key() -> str:
    """Made when the form is shown, sent back with it: a second post of the same form is the same request."""
    return str(uuid.uuid4())


def posted_key(values: dict[str, str]) -> str:
    return require_key(values.get("idempotency_key", "").strip() or None)


def refusal_on_form(form: LinesForm, error: RempartError) -> bool:
    """Place a service's refusal of the request on the form; ``False`` when it is not the form's
    (it is then shown as a problem page)."""
    if isinstance(error, RightsCheckExpired):
        form.fail("check_id", _("This rights check has expired: check the patient's rights again."))
    elif isinstance(error, NotFound):
        form.fail("check_id", _("No rights check of your practice has this reference."))
    elif isinstance(error, CareDomainOutsideProfession):
        form.fail("care_domain", _("Your profession does not bill this care domain."))
    elif isinstance(error, IdempotencyKeyReused):
        form.fail("form", _("This form was already sent with other values. Check the fields and send it again."))
    elif isinstance(error, ValidationFailed):
        form.fail("form", _("These lines cannot be sent as they are. Check the amounts, the dates and the classes."))
    else:
        return False
    return True


def key_after_refusal(form: LinesForm, error: RempartError, key: str) -> str | None:
    """The idempotency key to show the form again with, once ``error`` is placed on it; ``None`` when the
    refusal is not the form's (it is then shown as a problem page). Nothing was written: the same key
    may go again, unless it already made another request."""
    if isinstance(error, FormProblem):
        return key
    if not refusal_on_form(form, error):
        return None
    return new_idempotency_key() if isinstance(error, IdempotencyKeyReused) else key
