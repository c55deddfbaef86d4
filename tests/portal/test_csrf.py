"""Every state-changing form of the portal is refused without the page's CSRF token, and changes
nothing: found from the app's routes, so a form added later is held to it too."""

from __future__ import annotations

import html
import re
import uuid

from fastapi import FastAPI
from sqlalchemy import func, select

import rempart.models  # noqa: F401  (every table in the metadata)
from rempart.db import Base
from rempart.identity.deps import public_route, read_form_csrf
from rempart.runtime import Runtime
from rempart.web.pages import is_page_path
from tests.portal.conftest import World
from tests.support.routes import Route, api_routes

_UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}


def page_forms(app: FastAPI) -> list[Route]:
    return [r for r in api_routes(app) if is_page_path(r.path) and r.methods & _UNSAFE]


def _calls(route: Route) -> list[object]:
    found, todo = [], list(route.dependant.dependencies)
    while todo:
        dep = todo.pop()
        found.append(dep.call)
        todo.extend(dep.dependencies)
    return found


def row_counts(runtime: Runtime) -> dict[str, int]:
    with runtime.sessions() as session:
        return {t.name: session.scalar(select(func.count()).select_from(t)) or 0 for t in Base.metadata.sorted_tables}


def test_every_page_form_reads_the_csrf_token_of_its_form(app: FastAPI) -> None:
    forms = page_forms(app)
    assert any(r.path == "/logout" for r in forms)
    for route in forms:
        calls = _calls(route)
        assert public_route not in calls, f"{route.path}: a page form must be signed in"
        assert read_form_csrf in calls, f"{route.path}: declare FORM_CSRF first in its dependencies"


def test_every_page_form_without_its_token_is_refused_and_changes_nothing(
    app: FastAPI, runtime: Runtime, world: World
) -> None:
    counter = world.counter
    assert counter.page("/").status_code == 200  # signed in, with a token on the page
    before = row_counts(runtime)
    for route in page_forms(app):
        path = re.sub(r"\{[^}]+\}", str(uuid.uuid4()), route.path)
        for method in sorted(route.methods & _UNSAFE):
            for token in (None, "forged-" + "x" * 40):
                fields = {"csrf_token": token} if token else {}
                response = counter.user.client.request(method, path, data=fields)  # type: ignore[arg-type]
                assert response.status_code == 403, f"{method} {path}: {response.status_code}"
                assert "jeton de sécurité" in html.unescape(response.text), f"{method} {path}"
    assert row_counts(runtime) == before
    # And the person is still signed in: a forged form ends nothing.
    assert counter.page("/account").status_code == 200
