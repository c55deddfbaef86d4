"""``OPTIONS`` on an API path answers the methods the path serves, all of them; a 405 says the same."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from starlette.routing import compile_path

from rempart.app import create_app
from rempart.errors import PROBLEM_BASE, PROBLEM_JSON
from rempart.runtime import Runtime
from rempart.web.allow import AllowedMethods, allowed_methods
from tests.support.routes import api_routes


@pytest.fixture
def app(runtime: Runtime) -> FastAPI:
    application = create_app(runtime)
    application.add_middleware(AllowedMethods)
    return application


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app, base_url="https://testserver") as test_client:
        yield test_client


def _allow(header: str) -> list[str]:
    return [m.strip() for m in header.split(",")]


@pytest.mark.parametrize(
    ("path", "allow"),
    [
        ("/api/v1/me/passkeys", ["GET", "POST", "OPTIONS"]),
        ("/api/v1/me/passkeys/options", ["POST", "OPTIONS"]),
        ("/api/v1/me/passkeys/0b8f3c4e-2a51-4f5e-9d0c-6c1e7f0a9b12", ["DELETE", "OPTIONS"]),
    ],
)
def test_options_lists_every_method_of_the_path(client: TestClient, path: str, allow: list[str]) -> None:
    response = client.options(path)

    assert response.status_code == 204, response.text
    assert _allow(response.headers["allow"]) == allow
    assert response.content == b""
    assert "set-cookie" not in response.headers


def test_options_on_an_unknown_path_is_a_404_problem(client: TestClient) -> None:
    response = client.options("/api/v1/nothing-here")

    assert response.status_code == 404
    assert response.headers["content-type"] == PROBLEM_JSON
    assert response.json()["type"] == PROBLEM_BASE + "not-found"


def test_a_405_names_every_method_of_the_path(client: TestClient) -> None:
    # Starlette names the methods of the first route whose path matched: GET alone, here.
    response = client.put("/api/v1/me/passkeys")

    assert response.status_code == 405
    assert response.headers["content-type"] == PROBLEM_JSON
    assert response.json()["type"] == PROBLEM_BASE + "method-not-allowed"
    assert _allow(response.headers["allow"]) == ["GET", "POST", "OPTIONS"]


def test_delete_on_the_passkey_options_path_is_a_405_naming_post(client: TestClient) -> None:
    response = client.delete("/api/v1/me/passkeys/options")

    assert response.status_code == 405
    assert _allow(response.headers["allow"]) == ["POST", "OPTIONS"]


def test_pages_are_left_alone(client: TestClient) -> None:
    assert client.options("/login").status_code == 405


def _sample(path: str) -> str:
    """A concrete path for a route's template: every parameter a UUID (what Rempart's ids are)."""
    return re.sub(r"\{[^}]+\}", str(uuid.uuid4()), path)


def test_every_api_route_is_listed_and_every_listed_method_is_served(app: FastAPI, client: TestClient) -> None:
    checked = 0
    for route in api_routes(app):
        if not route.path.startswith("/api/"):
            continue
        path = _sample(route.path)
        if not compile_path(route.path)[0].match(path):
            continue  # a parameter that takes no UUID
        allow = _allow(client.options(path).headers["allow"])
        assert route.methods <= set(allow), (route.path, allow)
        assert allow == _allow(", ".join(allow))  # listed once each
        assert allowed_methods(app.router.routes, path) | {"OPTIONS"} == set(allow)
        checked += 1
    assert checked > 20
