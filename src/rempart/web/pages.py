"""The portal's page shell: templates, the viewer the layout shows, page routes, error pages,
static files, the favicon and the language switch.

Every domain's ``pages.py`` renders through ``render``::

    router = PageRouter()

    @router.page("/counter", dependencies=[requires(Permission.CARE_RIGHTS_CHECK_CREATE)])
    def counter(request: Request, viewer: ViewerDep, ...) -> HTMLResponse:
        return render(request, "eligibility/counter.html", viewer=viewer, ...)

``page`` answers GET and HEAD; a form's POST is a plain ``router.post`` whose dependencies start
with ``FORM_CSRF`` (``rempart.identity.deps``), so the session check compares the form's
``csrf_token``. Nothing here knows a domain: the viewer (who is looking, their menu, their session's
deadlines) is built by ``rempart.identity.portal`` and handed in.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from importlib import resources
from typing import Any
from urllib.parse import urlsplit

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from starlette.requests import Request

from rempart.web import i18n
from rempart.web.i18n import _
from rempart.web.problem_catalogue import EXPLANATIONS

# Paths that belong to machines; everything else is a page, and its errors are pages too.
MACHINE_PREFIXES = ("/api/", "/fhir", "/.well-known/", "/healthz", "/openapi.json")


def is_page_path(path: str) -> bool:
    return not path.startswith(MACHINE_PREFIXES)


# -- who is looking ------------------------------------------------------------------------------


@dataclass(frozen=True)
class NavItem:
    path: str
    label: str  # an English message id, translated when shown


@dataclass(frozen=True)
class Viewer:
    """A signed-in person, as the layout shows them: built by ``rempart.identity.portal``."""

    login: str
    nav: tuple[NavItem, ...]
    csrf_token: str
    idle_seconds: int  # the session ends after this long without a request
    absolute_deadline: datetime  # ... and at this moment whatever happens
    absolute_seconds: int  # how long until then, from the page's making (the browser's clock may be off)
    roles: frozenset[str] = field(default_factory=frozenset)
    practice_name: str | None = None
    professional_label: str | None = None

    def can_see(self, path: str) -> bool:
        return any(item.path == path for item in self.nav)


# -- templates -------------------------------------------------------------------------------------

templates = Environment(
    loader=PackageLoader("rempart", "web/templates"),
    autoescape=select_autoescape(["html"]),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
    extensions=["jinja2.ext.i18n"],
)
templates.policies["ext.i18n.trimmed"] = True  # as babel.cfg extracts them
templates.install_gettext_callables(i18n.gettext, i18n.ngettext, newstyle=True)  # type: ignore[attr-defined]
templates.filters.update(
    euros=i18n.euros,
    number=i18n.number,
    day=i18n.day,
    moment=i18n.moment,
    clock=i18n.clock_time,
    iso=i18n.iso_utc,
    isodate=date.fromisoformat,
)


def render(
    request: Request,
    template: str,
    *,
    viewer: Viewer | None = None,
    status: int = 200,
    headers: dict[str, str] | None = None,
    **context: Any,
) -> HTMLResponse:
    """The page ``template`` in the request's language, inside the layout."""
    language = i18n.language_of(request)
    with i18n.speaking(language):
        body = templates.get_template(template).render(
            lang=language,
            other_lang="en" if language == "fr" else "fr",
            path=request.url.path,
            here=_here(request),
            viewer=viewer,
            **context,
        )
    return HTMLResponse(body, status_code=status, headers=headers)


def _here(request: Request) -> str:
    query = request.url.query
    return request.url.path + (f"?{query}" if query else "")


class PageRouter(APIRouter):
    """A router of pages: left out of the API description; ``page`` answers GET and HEAD."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(include_in_schema=False, **kwargs)

    def page(self, path: str, **kwargs: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        return self.api_route(path, methods=["GET", "HEAD"], response_class=HTMLResponse, **kwargs)


def see_other(url: str) -> RedirectResponse:
    """After a form: the browser goes to ``url`` with a GET (a reload never posts twice)."""
    return RedirectResponse(url, status_code=303)


def local_path(candidate: str | None, default: str = "/") -> str:
    """``candidate`` when it is a path of this site, else ``default``: no open redirect."""
    if not candidate or not candidate.startswith("/") or candidate.startswith("//") or "\\" in candidate:
        return default
    parts = urlsplit(candidate)
    if parts.scheme or parts.netloc:
        return default
    return candidate


# -- error pages -----------------------------------------------------------------------------------

# What a person reads for each problem type: a title and what to do. Anything else is told by its
# status. Never the exception's own words beyond the problem's detail, which carries no personal data.
PROBLEM_WORDS: dict[str, tuple[str, str]] = {
    "not-found": (_("This page does not exist"), _("Check the address, or go back to the start page.")),
    "method-not-allowed": (_("This page does not take this action"), _("Go back and use the page's own buttons.")),
    "malformed-request": (_("The form could not be read"), _("Go back, reload the page and try again.")),
    "validation-failed": (_("The form is not valid"), _("Go back, correct the fields and send it again.")),
    "csrf-refused": (
        _("The page's security token is missing or stale"),
        _("Nothing was changed. Reload the page and send the form again."),
    ),
    "permission-denied": (_("Your role does not allow this"), _("Ask your practice's administrator if you need it.")),
    "forbidden": (_("Your role does not allow this"), _("Ask your practice's administrator if you need it.")),
    "unauthenticated": (_("Please sign in"), _("Sign in with your passkey to continue.")),
    "step-up-required": (
        _("Confirm it is you"),
        _("Rempart needs a fresh passkey check before it goes on. Confirm with your passkey, then try again."),
    ),
    "slow-down": (
        _("Please slow down"),
        _("This account made many checks in a short time. Wait a moment, then try again."),
    ),
    "checks-refused": (
        _("Rights checks are paused for this practice"),
        _("Unusual activity was seen. Your administrator or the Rempart security team can lift it."),
    ),
    "access-suspended": (
        _("Access suspended"),
        _(
            "Unusual activity was seen on this account; its sessions were ended. Rempart's security team has been "
            "alerted and will contact your practice."
        ),
    ),
    "identity-locked": (
        _("This card was just checked with another date of birth"),
        _(
            "Checks of this card from your practice are paused for a few minutes, whatever date is given now. "
            "Check the card and the date of birth with the patient; if they are right, call the insurer, or "
            "apply third-party payment with the patient's signed attestation (QR code)."
        ),
    ),
    "channel-disconnected": (
        _("This service is switched off for now"),
        _("Care goes on: use the patient's signed attestation (QR code), and bill when the service is back."),
    ),
    # The same switch seen from a channel with no patient at the counter (back office, console).
    "channel-disconnected:no-attestation": (
        _("This service is switched off for now"),
        _(
            "Rempart's security team switched it off while they deal with an incident; nothing you did caused it. "
            "Try again later, or ask your administrator."
        ),
    ),
    "break-glass-refused": (
        _("Break-glass access refused"),
        _(
            "A break-glass access needs a second operator's approval, and only the operator who asked may open the "
            "record, while the access lasts. Nothing was opened; the break-glass page shows where each request stands."
        ),
    ),
    "enrolment-refused": (
        _("This enrolment link cannot be used"),
        _(
            "It has expired or was already used. Ask whoever invited you (your practice's administrator, your "
            "insurer) for a new link."
        ),
    ),
    "practice-suspended": (
        _("Your practice's access is suspended"),
        _("Rempart's security team suspended it after unusual activity and will contact your practice."),
    ),
    "recovery-failed": (
        _("This recovery code was not accepted"),
        _("Check the code you typed; each code works once. If none is left, ask your administrator."),
    ),
    "counter-store-unavailable": (
        _("Rights checks are unavailable for a moment"),
        _("Rempart refuses checks it cannot watch. Try again in a minute."),
    ),
    "too-many-attempts": (_("Too many attempts"), _("Wait a few minutes before trying again.")),
    "no-matching-rights": (
        _("No matching rights"),
        _("Check the card and the patient's details. If the card is right, call the insurer."),
    ),
    "internal-error": (
        _("Something went wrong on our side"),
        _("Nothing was changed. Try again in a moment; if it persists, tell your administrator."),
    ),
}
_BY_STATUS: dict[int, tuple[str, str]] = {
    400: (_("The request could not be read"), _("Go back, reload the page and try again.")),
    401: PROBLEM_WORDS["unauthenticated"],
    403: (_("This is not allowed"), _("Nothing was changed.")),
    404: PROBLEM_WORDS["not-found"],
    409: (_("This was already done or changed meanwhile"), _("Reload the page to see where things stand.")),
    422: PROBLEM_WORDS["validation-failed"],
    429: PROBLEM_WORDS["slow-down"],
    503: (_("The service is unavailable for a moment"), _("Try again in a minute.")),
}
_FALLBACK = PROBLEM_WORDS["internal-error"]


def problem_page(
    request: Request,
    problem: dict[str, Any],
    *,
    headers: dict[str, str] | None = None,
    viewer: Viewer | None = None,
) -> HTMLResponse:
    """An RFC 9457 problem as a readable page, with the same status and headers."""
    status = int(problem.get("status", 500))
    slug = str(problem.get("type", "")).rsplit("/", 1)[-1]
    words = (
        f"{slug}:no-attestation" if slug == "channel-disconnected" and not problem.get("offline_attestation") else slug
    )
    title, advice = PROBLEM_WORDS.get(words) or _BY_STATUS.get(status) or _FALLBACK
    retry_after = problem.get("retry_after")
    return render(
        request,
        "errors/problem.html",
        viewer=viewer,
        status=status,
        headers={k: v for k, v in (headers or {}).items() if k.lower() in {"retry-after"}},
        title=title,
        advice=advice,
        slug=slug,
        explained=slug in EXPLANATIONS,  # the reference links to the page that explains it
        status_code=status,
        retry_after=int(retry_after) if isinstance(retry_after, int | float) else None,
    )


# -- static files, favicon, language ---------------------------------------------------------------

_MEDIA_TYPES = {
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".svg": "image/svg+xml",
}


def _static_files() -> dict[str, tuple[bytes, str]]:
    found: dict[str, tuple[bytes, str]] = {}
    root = resources.files("rempart").joinpath("web", "static")

    def walk(folder: Any, prefix: str) -> None:
        for entry in folder.iterdir():
            name = prefix + entry.name
            if entry.is_dir():
                walk(entry, name + "/")
            else:
                suffix = "." + entry.name.rsplit(".", 1)[-1]
                if suffix in _MEDIA_TYPES:
                    found[name] = (entry.read_bytes(), _MEDIA_TYPES[suffix])

    walk(root, "")
    return found


STATIC = _static_files()
# Static files may be cached, unlike every other response (SecurityHeaders sends no-store).
_STATIC_CACHE = {"cache-control": "public, max-age=300"}

shell = PageRouter()


@shell.api_route("/static/{name:path}", methods=["GET", "HEAD"])
def static_file(name: str) -> Response:
    found = STATIC.get(name)
    if found is None:
        return Response(status_code=404, headers=_STATIC_CACHE)
    body, media_type = found
    return Response(body, media_type=media_type, headers=_STATIC_CACHE)


@shell.api_route("/favicon.ico", methods=["GET", "HEAD"])
def favicon() -> Response:
    body, media_type = STATIC["favicon.svg"]
    return Response(body, media_type=media_type, headers=_STATIC_CACHE)


@shell.api_route("/lang/{language}", methods=["GET", "HEAD"])
def switch_language(request: Request, language: str, next: str | None = None) -> RedirectResponse:
    """Remember the language in a cookie, and go back to the page the person was on."""
    response = see_other(local_path(next))
    if language in i18n.LANGUAGES:
        response.set_cookie(
            i18n.LANG_COOKIE,
            language,
            max_age=365 * 24 * 3600,
            secure=request.url.scheme == "https",
            httponly=True,
            samesite="lax",
        )
    return response
