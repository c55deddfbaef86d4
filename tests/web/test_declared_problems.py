"""The suite's watch on problems (``tests.support.declared_problems``) sees what it should: an
answer the document does not declare is caught, with the route, status and type; a declared one,
and a page's, are not."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, FastAPI
from fastapi.testclient import TestClient

from rempart.app import create_app
from rempart.errors import RempartError
from rempart.identity.context import IdentityServices
from rempart.runtime import Runtime
from tests.support.clock import FakeClock
from tests.support.declared_problems import watching


class Teapot(RempartError):
    status = 418
    slug = "teapot"
    title = "A teapot"


class NotThere(RempartError):
    status = 404
    slug = "thing-not-there"
    title = "Not there"


def _app(runtime: Runtime) -> FastAPI:
    app = create_app(runtime)
    app.state.identity = IdentityServices.build(runtime.settings, clock=FakeClock(), prefix=f"t{uuid.uuid4().hex}")
    return app


def _app_with_teapot(runtime: Runtime) -> FastAPI:
    """The app, and a route of the test's own that answers a problem the document cannot know."""
    app = _app(runtime)
    probe = APIRouter()

    @probe.get("/api/v1/probe/teapot")
    def teapot() -> None:
        raise Teapot("short and stout")

    app.include_router(probe)
    return app


def test_an_answer_the_document_does_not_declare_is_caught_with_its_route_status_and_type(runtime: Runtime) -> None:
    app = _app_with_teapot(runtime)
    with watching(only_rempart=False) as watch:
        response = TestClient(app).get("/api/v1/probe/teapot")
    assert response.status_code == 418
    assert watch.undeclared == ["GET /api/v1/probe/teapot answered 418 /problems/teapot: status not declared"]


def test_a_declared_answer_a_page_and_a_test_s_own_route_are_not(runtime: Runtime) -> None:
    app = _app_with_teapot(runtime)
    with watching() as watch:
        client = TestClient(app)
        assert client.get("/api/v1/probe/teapot").status_code == 418
        unauthenticated = client.get("/api/v1/claims")
        page = client.get("/practice/claims", follow_redirects=False)
        unrouted = client.get("/api/v1/nothing-here")
    assert unauthenticated.status_code == 401
    assert page.status_code in {303, 401, 404}
    assert unrouted.status_code == 404
    assert watch.undeclared == []


def test_a_type_the_route_does_not_list_is_caught(runtime: Runtime) -> None:
    app = _app(runtime)
    probe = APIRouter()

    # Declares its 404 with the generic type, then answers another 404 type.
    @probe.get("/api/v1/probe/{thing_id}", responses={404: {"description": "Not found"}})
    def thing(thing_id: uuid.UUID) -> None:
        raise NotThere(f"{thing_id} is not there")

    app.include_router(probe)
    with watching(only_rempart=False) as watch:
        TestClient(app).get(f"/api/v1/probe/{uuid.uuid4()}")
    assert watch.undeclared == ["GET /api/v1/probe/{thing_id} answered 404 /problems/thing-not-there: type not listed"]
