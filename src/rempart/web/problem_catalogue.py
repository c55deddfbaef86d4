"""What each problem type means and what to do about it: the words of the ``/problems/{slug}`` pages.

Every RFC 9457 answer names its type as ``/problems/<slug>`` (``rempart.errors.PROBLEM_BASE``), a
reference relative to the request's URL, so each deployment serves the page itself. The slugs, their
statuses and titles come from the code (every ``RempartError`` subclass of the package, and the
refusals the app and its middleware render the same way); the explanations are this one table, in
English, with their French in ``problems.po`` (``tools/fr_problems.py``). ``tests/web/
test_problem_pages.py`` holds the table and the code's slugs equal.

The words say what a caller sees and may do, never how detection decides: no threshold, window or
signal name beyond what ``docs/integration.md`` already tells integrators.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass

from rempart.errors import RempartError
from rempart.web import capacity
from rempart.web.i18n import _


@dataclass(frozen=True)
class Explanation:
    meaning: str  # what happened, as an English message id
    action: str  # what the caller's software, or the person, should do next
    more: tuple[str, ...] = ()  # further sentences, each its own message id


@dataclass(frozen=True, order=True)
class ProblemType:
    """One (slug, status, title) the code answers with, and the domains that raise it."""

    slug: str
    status: int
    title: str
    where: str


def problem_types(http_problems: Mapping[int, tuple[str, str, str]]) -> list[ProblemType]:
    """Every problem type the loaded code answers with: the package's ``RempartError`` classes, the
    framework's refusals the app renders (``http_problems``: status → slug, title, detail), its
    unexpected error and the capacity limit's busy answer. A class defined outside the package (a
    test's) is left out."""
    seen: dict[tuple[str, int, str], set[str]] = {}
    classes: list[type[RempartError]] = [RempartError, *_subclasses(RempartError)]
    for cls in classes:
        if cls.__module__.startswith("rempart."):
            seen.setdefault((cls.slug, cls.status, cls.title), set()).add(_domain(cls.__module__))
    for status, (slug, title, _detail) in http_problems.items():
        seen.setdefault((slug, status, title), set()).add("platform")
    seen.setdefault(("internal-error", 500, "Internal error"), set()).add("platform")
    busy = json.loads(capacity._BUSY)  # the middleware's ready-made answer: read, not changed
    seen.setdefault((busy["type"].rsplit("/", 1)[-1], busy["status"], busy["title"]), set()).add("platform")
    return sorted(ProblemType(slug, status, title, ", ".join(sorted(w))) for (slug, status, title), w in seen.items())


def _subclasses(cls: type[RempartError]) -> list[type[RempartError]]:
    found: list[type[RempartError]] = []
    for sub in cls.__subclasses__():
        found += [sub, *_subclasses(sub)]
    return found


def _domain(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 2 else "platform"  # rempart.errors, rempart.idempotency: everywhere


# The domains, as the pages name them (``ProblemType.where``).
DOMAIN_WORDS: dict[str, str] = {
    "approvals": _("Prior approvals"),
    "attestations": _("Offline attestations"),
    "audit": _("Access log"),
    "claims": _("Claims"),
    "detection": _("Detection of unusual use"),
    "eligibility": _("Rights checks"),
    "fhir": _("FHIR facade"),
    "identity": _("Sign-in and access"),
    "incidents": _("Incidents"),
    "insurers": _("Insurers and products"),
    "members": _("Members"),
    "payments": _("Payments"),
    "platform": _("Every part of the platform"),
    "pricing": _("Quotes"),
    "professionals": _("Professionals"),
}

_RETRY = _("Wait as long as the Retry-After header says (also in the body's retry_after), then send it again.")
_SUPPORT = _(
    "If it persists, give the platform's support the request id (the body's instance, the X-Request-ID header) "
    "and the time."
)

EXPLANATIONS: dict[str, Explanation] = {
    "access-log-unavailable": Explanation(
        _(
            "Every access to a person's data is written to their access log before the answer leaves. The log "
            "could not take this entry, so the answer that needed it was not sent and nothing was shown."
        ),
        _("Nothing was changed. Try again in a minute."),
        (_SUPPORT,),
    ),
    "access-suspended": Explanation(
        _(
            "Rempart's security team, or detection of unusual use, suspended this access: its sessions and "
            "tokens are revoked. It stays so until the security team lifts it."
        ),
        _(
            "Stop sending requests with this access. The practice (or the insurer) contacts Rempart's security "
            "team; meanwhile, care goes on with the patient's signed offline attestation."
        ),
    ),
    "acting-professional-refused": Explanation(
        _(
            "A practice's software calls on behalf of a professional, named by their RPPS number in the "
            "X-Acting-RPPS header. The header is missing, or names a professional who does not act for this "
            "practice."
        ),
        _(
            "Send the RPPS (11 digits) of the professional at the counter with every call. If it is right, the "
            "practice admin adds that professional to the practice in the portal."
        ),
    ),
    "attestation-not-genuine": Explanation(
        _(
            "The offline attestation sent with the claim was not signed by the insurer it names: it is "
            "malformed, signed with an unknown key, or names another insurer. Nothing was stored."
        ),
        _(
            "Send the attestation exactly as read from the patient's QR code, unchanged. If it was read right, "
            "bill this care after a rights check instead, and tell the patient to contact their insurer."
        ),
    ),
    "bad-request": Explanation(
        _("The request could not be understood as it was sent."),
        _("Read the detail, correct the request and send it again; sending it unchanged gives the same answer."),
    ),
    "break-glass-refused": Explanation(
        _(
            "A break-glass access to a record needs a second operator's approval, and only the operator who "
            "asked may use it, while it lasts. This request did not meet those conditions."
        ),
        _(
            "Nothing was opened. Ask a second operator to decide the request; the break-glass page shows where "
            "each request stands."
        ),
    ),
    "care-date-in-future": Explanation(
        _("The date of care is after today (in Paris): care is checked, quoted and billed on the day it is given."),
        _("Send the date the care is given, today at the latest."),
    ),
    "care-domain-outside-profession": Explanation(
        _(
            "The request names a care domain the professional's profession does not practise, such as optics "
            "asked for by a pharmacy."
        ),
        _("Ask only for the care domains of the acting professional's profession."),
    ),
    "channel-disconnected": Explanation(
        _(
            "Rempart's security team switched this channel off (the API, the FHIR facade, the portal, a "
            "profession or a practice) while they deal with an incident. Nothing the caller did caused it."
        ),
        _(
            "Do not retry in a loop. At the counter, apply third-party payment with the patient's signed offline "
            "attestation (QR code) and bill when the channel is back; queued claims are sent then."
        ),
    ),
    "checks-refused": Explanation(
        _(
            "Unusual use was seen with this access, so its rights checks are refused for a while. It is a "
            "containment, not a judgement of any patient."
        ),
        _(
            "Stop checking and wait as long as the Retry-After header says: requests sent meanwhile count "
            "against the access. The practice admin sees why on the practice's security page."
        ),
    ),
    "claim-closed": Explanation(
        _("The claim was already paid, rejected or cancelled: it can no longer be corrected or cancelled."),
        _("Read the claim to see its status. To bill the care differently, send a new claim."),
    ),
    "claim-not-found": Explanation(
        _("No claim of yours has this id: it does not exist, or belongs to another practice or insurer."),
        _("Check the id your software stored when the claim was created."),
    ),
    "claim-not-pending-review": Explanation(
        _("The claim is not waiting for a claims agent's review: another agent decided it, or it never needed one."),
        _("Reload the review queue to see where the claim stands."),
    ),
    "claim-response-not-found": Explanation(
        _("No ClaimResponse of yours has this id on the FHIR facade."),
        _("Check the id taken from the Claim's answer, or search the ClaimResponses of the practice."),
    ),
    "client-expired": Explanation(
        _("The practice software's client has an end date, and it has passed: no token is given to it any more."),
        _("The practice admin renews the client in the professional portal; the software keeps its keys."),
    ),
    "client-revoked": Explanation(
        _("The practice admin, or the insurer, revoked this software client: it can no longer get a token."),
        _(
            "Stop asking for tokens. If the software should still work, the practice admin registers it again "
            "with a new key."
        ),
    ),
    "client-suspended": Explanation(
        _(
            "The software authenticated, but Rempart's security team or detection of unusual use suspended it, "
            "and its tokens are revoked. Unlike a revoked client, it works again with the same keys once lifted."
        ),
        _(
            "Stop asking for tokens. The practice contacts Rempart's security team to have it lifted; meanwhile, "
            "apply third-party payment with the patient's signed offline attestation."
        ),
    ),
    "conflict": Explanation(
        _(
            "The request does not fit the current state of what it acts on: it was already decided, or it "
            "changed meanwhile (for a payment run, the claims to pay changed since it was asked for)."
        ),
        _("Read the object again to see where it stands, then decide whether to send a new request."),
    ),
    "counter-store-unavailable": Explanation(
        _(
            "Rempart counts every check to protect patients from mass lookups. The counters cannot be reached "
            "right now, and Rempart refuses checks it cannot count."
        ),
        _RETRY,
        (_("Meanwhile, the patient's signed offline attestation lets care go on."),),
    ),
    "csrf-refused": Explanation(
        _(
            "A form or a browser request was sent without the page's security token, with a stale one, or from "
            "another site. Nothing was changed."
        ),
        _("Reload the page and send the form again. Software calls the API with its token, not the portal's forms."),
    ),
    "cursor-invalid": Explanation(
        _("The page cursor is not one a next link of this list gave."),
        _("Follow the next links exactly as given, or start again from the first page."),
    ),
    "enrolment-refused": Explanation(
        _("The enrolment link has expired or was already used."),
        _("Ask whoever invited you (your practice's administrator, your insurer) for a new link."),
    ),
    "fhir-body-unreadable": Explanation(
        _("The body is not a FHIR resource in JSON: it is empty, not JSON, or not an object."),
        _("Send one FHIR R4 resource as application/fhir+json."),
    ),
    "fhir-format-unsupported": Explanation(
        _("The request asked for XML (with _format or Accept); the FHIR facade answers in JSON only."),
        _("Accept application/fhir+json (or application/json), and leave out _format or set it to json."),
    ),
    "fhir-media-unsupported": Explanation(
        _("The body was sent with a media type the FHIR facade does not read."),
        _("Send the body with Content-Type: application/fhir+json."),
    ),
    "fhir-resource-invalid": Explanation(
        _(
            "The resource is not valid FHIR R4, or lacks what Rempart needs. The issues name each element at fault "
            "by its FHIRPath, never its value."
        ),
        _("Correct each element the issues name, then send the resource again."),
    ),
    "fhir-search-invalid": Explanation(
        _("A search parameter is unknown, repeated or malformed. The issues name it."),
        _("Use only the parameters the CapabilityStatement (/fhir/metadata) declares, in their documented form."),
    ),
    "forbidden": Explanation(
        _("The caller is known, but this request is not allowed to them."),
        _("Nothing was changed. Ask your practice's (or insurer's) administrator if you need this right."),
    ),
    "idempotency-key-required": Explanation(
        _(
            "Creating a claim, a correction or a prior approval needs an Idempotency-Key header: up to 64 letters, "
            "digits or - _ . : characters. It is missing or malformed."
        ),
        _(
            "Make one key (a UUID is fine) for each thing to create, store it with it, and send it unchanged on "
            "every retry."
        ),
    ),
    "idempotency-key-reused": Explanation(
        _("This Idempotency-Key was already used for a request with another body."),
        _(
            "A retry must send the same body as the first request. Something new to create needs a new key; never "
            "reuse one."
        ),
    ),
    "identity-locked": Explanation(
        _(
            "This card and NIR were just checked from this practice with another date of birth, which matched "
            "nobody. Checks of this card are refused for a while, whatever date is given now, so that a date of "
            "birth cannot be guessed."
        ),
        _(
            "Check the card and the date of birth with the patient; do not try other dates. If they are right, "
            "call the insurer, or apply third-party payment with the patient's signed offline attestation."
        ),
    ),
    "import-file-unreadable": Explanation(
        _("The members file cannot be read at all: wrong format, empty or truncated. Nothing was imported."),
        _("Export the file again in the documented format, then import it again."),
    ),
    "incident-not-found": Explanation(
        _("No incident with this id can be seen with this access."),
        _("Go back to the list of incidents."),
    ),
    "internal-error": Explanation(
        _("Something went wrong on Rempart's side. Nothing was changed: the request was not completed."),
        _("Try again in a moment; a creation may be retried with the same Idempotency-Key."),
        (_SUPPORT,),
    ),
    "invalid-client": Explanation(
        _(
            "The client assertion (private_key_jwt) was refused: unknown client, unknown key, bad signature, "
            "wrong audience, expired or replayed. The WWW-Authenticate header carries invalid_client."
        ),
        _(
            "Sign a new assertion with the registered key: its audience is the public origin plus "
            "/api/v1/auth/token exactly, it lives at most 5 minutes and its jti is never reused."
        ),
    ),
    "invalid-dpop-proof": Explanation(
        _(
            "The DPoP proof was refused: wrong method or URL, a stale iat, a reused jti, a wrong ath, or a key "
            "other than the token's. The WWW-Authenticate header carries invalid_dpop_proof."
        ),
        _(
            "Sign a fresh proof for each request, with the method and the public origin plus the path as sent, "
            "the current time and the token's hash, with the same DPoP key as the token."
        ),
    ),
    "invalid-token": Explanation(
        _("The access token is unknown, revoked, or not bound to this DPoP key."),
        _("Ask for a new token at /api/v1/auth/token, and send it with the DPoP scheme (not Bearer)."),
    ),
    "invalid-token-request": Explanation(
        _(
            "The token request is not a valid client_credentials request: a form field is missing or has an "
            "unexpected value."
        ),
        _(
            "Send grant_type=client_credentials, the jwt-bearer client_assertion_type and a client_assertion, as "
            "a form, with a DPoP proof."
        ),
    ),
    "key-unavailable": Explanation(
        _(
            "An encryption or signing key Rempart needs could not be reached, so the request was not completed. "
            "Nothing was changed."
        ),
        _("Try again later."),
        (_SUPPORT,),
    ),
    "login-failed": Explanation(
        _("The passkey sign-in could not be completed: the passkey is unknown here, or the ceremony was refused."),
        _("Try again with the passkey you enrolled. If you no longer have it, use a recovery code."),
    ),
    "malformed-request": Explanation(
        _("The body could not be read: it is not UTF-8, or not well-formed JSON."),
        _("Send a UTF-8 JSON body. The detail locates the fault by line and column, never by its value."),
    ),
    "member-export-decided": Explanation(
        _("This member export was already approved or refused by another staff member."),
        _("Reload the list of exports to see the decision."),
    ),
    "member-export-lapsed": Explanation(
        _("This member export was withdrawn, or its time to be decided or downloaded has passed."),
        _("Ask for a new export if it is still needed."),
    ),
    "member-export-not-downloadable": Explanation(
        _("This member export cannot be downloaded now: it is not approved, or it was already downloaded once."),
        _("A file leaves once, to the person who asked, after a second staff member's approval."),
    ),
    "member-export-not-found": Explanation(
        _("No member export with this id can be seen with this access."),
        _("Go back to the list of exports."),
    ),
    "method-not-allowed": Explanation(
        _("This path exists, but does not take this HTTP method. The Allow header lists those it takes."),
        _("Use one of the methods in the Allow header."),
    ),
    "no-matching-rights": Explanation(
        _(
            "No rights in force matched this card and identity on the date of care. The answer is deliberately "
            "the same whatever the reason (card, NIR, date of birth, rank or contract), so nothing can be learnt "
            "one field at a time."
        ),
        _(
            "Check the card and the patient's details with the patient, once; do not try variations. If they are "
            "right, the patient calls their insurer, or care goes on with their signed offline attestation."
        ),
    ),
    "no-rights-to-attest": Explanation(
        _("The contract is not in force today: there are no rights an offline attestation could show."),
        _("The member contacts their insurer about their contract."),
    ),
    "not-found": Explanation(
        _(
            "Nothing here for this caller: it does not exist, or belongs to someone else. Both answer the same, "
            "so nobody can probe what exists."
        ),
        _("Check the address and the id, and that you use the right practice's or insurer's access."),
    ),
    "nothing-due": Explanation(
        _("No accepted claim is waiting to be paid up to this day, so no payment run is made."),
        _("Choose a later cut-off day, or wait for claims to be accepted."),
    ),
    "passkey-ceremony-failed": Explanation(
        _("The passkey's answer could not be verified: it was cancelled, timed out, or does not match the request."),
        _("Start again from the page; if your browser or device offers several passkeys, pick the one for Rempart."),
    ),
    "payment-run-not-found": Explanation(
        _("No payment run with this id can be seen with this access."),
        _("Go back to the list of payment runs."),
    ),
    "permission-denied": Explanation(
        _(
            "The caller's role does not include this action, or it needs a second person (an export or a payment "
            "run is never decided by whoever asked for it)."
        ),
        _("Nothing was changed. Ask your practice's (or insurer's) administrator, or a colleague, to do it."),
    ),
    "practice-suspended": Explanation(
        _("Rempart's security team suspended the whole practice's access after unusual use."),
        _(
            "The practice contacts Rempart's security team; meanwhile, care goes on with the patients' signed "
            "offline attestations."
        ),
    ),
    "prior-approval-not-cancellable": Explanation(
        _("The prior approval cannot be cancelled: a claim has used it, or it was refused."),
        _("Read the prior approval to see its status; a claim that used it is corrected or cancelled instead."),
    ),
    "prior-approval-not-found": Explanation(
        _("No prior approval of yours has this id."),
        _("Check the id your software stored when the request was created."),
    ),
    "prior-approval-not-pending": Explanation(
        _("The prior approval is no longer waiting for a decision: it was decided or cancelled meanwhile."),
        _("Reload it to see the decision."),
    ),
    "recovery-failed": Explanation(
        _("The recovery code was not accepted: it is mistyped, or was already used."),
        _("Check the code you typed; each code works once. If none is left, ask your administrator."),
    ),
    "remittance-not-found": Explanation(
        _("No remittance of yours has this id."),
        _("Check the id, or list the practice's remittances."),
    ),
    "rights-check-expired": Explanation(
        _("The rights check this request cites has expired: a rights check holds for a limited time."),
        _("Check the patient's rights again, then send the request with the new check's id."),
    ),
    "rights-check-not-found": Explanation(
        _("No rights check of this practice has this id."),
        _("Cite the id the rights check answered with, from the same practice."),
    ),
    "server-busy": Explanation(
        _("The server is answering as many requests as it can right now. Nothing was done."),
        _RETRY,
    ),
    "service-unavailable": Explanation(
        _("A service this request needs is unavailable for a moment. Nothing was changed."),
        _RETRY,
    ),
    "slow-down": Explanation(
        _(
            "This access made unusually many checks in a short time, so it is slowed down for a while: one check "
            "is answered at a time, spaced out."
        ),
        _(
            "Wait as long as the Retry-After header says before the next check. Calling on while slowed down "
            "leads to refusal, then suspension: honour it."
        ),
    ),
    "step-up-required": Explanation(
        _(
            "This action, or unusual use of this account, needs a fresh passkey check: confirm that a person is "
            "there before going on."
        ),
        _(
            "In the portal, confirm with your passkey, then try again. Software cannot do this step: a person "
            "signs in to the portal."
        ),
    ),
    "token-expired": Explanation(
        _("The access token has expired: tokens last a few minutes."),
        _("Ask for a new token, and renew it a little before it expires rather than on each call."),
    ),
    "too-many-attempts": Explanation(
        _("Too many attempts were made in a short time (sign-in, recovery or enrolment)."),
        _("Wait a few minutes before trying again."),
    ),
    "unauthenticated": Explanation(
        _("The request carries no credentials, or they are not valid. The WWW-Authenticate header says how."),
        _(
            "Software: get a token and send it with the DPoP scheme and a DPoP proof. A person: sign in with "
            "your passkey."
        ),
    ),
    "validation-failed": Explanation(
        _(
            "The request, or the form, has fields that are not valid. The body's errors list each field and "
            "what is wrong with it, never the value sent."
        ),
        _("Correct each field named in errors, then send it again. Sending it unchanged gives the same answer."),
    ),
}
