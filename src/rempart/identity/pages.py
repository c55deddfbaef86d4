"""The login and enrolment pages, and the script of the passkey ceremonies.

The pages are static shells: the script (served from this origin, no inline code, as the CSP
demands) calls the JSON ceremonies in ``auth_api``. Enrolment links carry their token in the URL
fragment, which the browser never sends to any server.
"""

from __future__ import annotations

from importlib import resources
from typing import Any

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, Response
from jinja2 import Environment, PackageLoader, select_autoescape

from rempart.errors import NotFound
from rempart.identity.context import IdentityDep
from rempart.identity.deps import PUBLIC

router = APIRouter(include_in_schema=False)

_templates = Environment(
    loader=PackageLoader("rempart", "web/templates"),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)
_STATIC = {
    "passkeys.js": "text/javascript; charset=utf-8",
    "identity.css": "text/css; charset=utf-8",
}


def render(template: str, **context: Any) -> HTMLResponse:
    return HTMLResponse(_templates.get_template(template).render(**context))


@router.get("/login", dependencies=[PUBLIC])
def login_page(identity: IdentityDep) -> HTMLResponse:
    return render("identity/login.html", origin=identity.origin)


@router.get("/enrol", dependencies=[PUBLIC])
def enrol_page(identity: IdentityDep) -> HTMLResponse:
    return render("identity/enrol.html", origin=identity.origin)


@router.get("/static/identity/{name}", dependencies=[PUBLIC])
def identity_static(name: str) -> Response:
    media_type = _STATIC.get(name)
    if media_type is None:
        raise NotFound("no such file")
    body = resources.files("rempart").joinpath("web", "static", "identity", name).read_bytes()
    # Static files may be cached, unlike every other response (SecurityHeaders sends no-store).
    return Response(body, media_type=media_type, headers={"cache-control": "public, max-age=300"})
