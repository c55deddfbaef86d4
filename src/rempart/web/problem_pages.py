"""The problem types' pages: ``/problems/`` lists them, ``/problems/{slug}`` explains one.

A problem's ``type`` is ``/problems/<slug>`` (``rempart.errors.PROBLEM_BASE``), relative to the
request's URL: resolved, it lands here, on the deployment that answered. Each page says the type's
status(es) and title(s), what it means, what the caller's software or the person should do, and
which parts of the platform raise it, in the portal's shell and language (French, or English by the
``lang`` cookie). ``Accept: application/json`` gets the same words, in both languages, as JSON.

The pages are public: like ``web.api_docs``, request plumbing cannot import ``identity``, so the app
that mounts the router hands in its ``PUBLIC`` marker, declared on each route.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response
from starlette.requests import Request

from rempart.errors import PROBLEM_BASE
from rempart.web import i18n
from rempart.web.pages import PageRouter, render
from rempart.web.problem_catalogue import DOMAIN_WORDS, EXPLANATIONS, Explanation, ProblemType, problem_types


@dataclass(frozen=True)
class ProblemPage:
    slug: str
    kinds: tuple[ProblemType, ...]  # each status and title the code answers with under this slug
    explanation: Explanation | None  # None only for a slug the catalogue misses (a test forbids it)
    domains: tuple[str, ...]

    @property
    def path(self) -> str:
        return PROBLEM_BASE + self.slug

    @property
    def heading(self) -> str:
        """The platform's own title when several parts share the slug (``conflict``), else the first."""
        platform = [kind.title for kind in self.kinds if "platform" in kind.where.split(", ")]
        return (platform or [kind.title for kind in self.kinds] or [self.slug])[0]


def problem_pages_of(http_problems: Mapping[int, tuple[str, str, str]]) -> dict[str, ProblemPage]:
    """A page for every slug the loaded code answers with, and every slug the catalogue explains."""
    kinds: dict[str, list[ProblemType]] = {}
    for kind in problem_types(http_problems):
        kinds.setdefault(kind.slug, []).append(kind)
    pages = {}
    for slug in sorted(kinds.keys() | EXPLANATIONS.keys()):
        found = sorted(kinds.get(slug, []), key=lambda k: (k.status, k.title))
        domains = sorted({d for kind in found for d in kind.where.split(", ")})
        pages[slug] = ProblemPage(slug, tuple(found), EXPLANATIONS.get(slug), tuple(domains))
    return pages


def problem_pages(*, public: Any, http_problems: Mapping[int, tuple[str, str, str]]) -> APIRouter:
    """The router of ``/problems/``; ``http_problems`` is the app's table of the framework's refusals
    (status → slug, title, detail), which have no class of their own."""
    pages = problem_pages_of(http_problems)
    router = PageRouter()

    @router.page(PROBLEM_BASE, dependencies=[public])
    def problem_index(request: Request) -> Response:
        if _wants_json(request):
            return JSONResponse({"problems": [_as_json(page) for page in pages.values()]})
        return render(request, "problems/index.html", pages=list(pages.values()), domain_words=DOMAIN_WORDS)

    @router.page(PROBLEM_BASE + "{slug}", dependencies=[public])
    def problem_type(request: Request, slug: str) -> Response:
        page = pages.get(slug)
        if page is None:
            if _wants_json(request):
                return JSONResponse({"slug": slug, "known": False, "index": PROBLEM_BASE}, status_code=404)
            return render(request, "problems/unknown.html", status=404, slug=slug)
        if _wants_json(request):
            return JSONResponse(_as_json(page))
        return render(request, "problems/type.html", page=page, domain_words=DOMAIN_WORDS)

    return router


def _wants_json(request: Request) -> bool:
    """JSON when asked for it and not for HTML: a browser's Accept names text/html."""
    accept = request.headers.get("accept", "").lower()
    return "json" in accept and "text/html" not in accept


def _as_json(page: ProblemPage) -> dict[str, Any]:
    def both(message: str) -> dict[str, str]:
        return {language: i18n.translations(language).gettext(message) for language in i18n.LANGUAGES}

    said = page.explanation
    return {
        "type": page.path,
        "slug": page.slug,
        "problems": [{"status": k.status, "title": both(k.title)} for k in page.kinds],
        "meaning": both(said.meaning) if said else None,
        "action": [both(m) for m in (said.action, *said.more)] if said else [],
        "raised_by": list(page.domains),
    }
