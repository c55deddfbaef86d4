"""The CapabilityStatement (``GET /fhir/metadata``) promises exactly what the app serves: every
``/fhir/{Type}`` route of the app is declared with its interaction or operation, every declared
interaction and operation has its route, and a search declares the parameters its route takes."""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from fhir.resources.R4B.capabilitystatement import CapabilityStatement

from rempart.app import create_app
from rempart.runtime import Runtime
from tests.support.routes import Route, api_routes

# What a route is, in FHIR's RESTful words (FHIR R4 §3.1.0): type-level and instance-level.
_TYPE_LEVEL = {"GET": "search-type", "POST": "create"}
_INSTANCE_LEVEL = {"GET": "read", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}
_RESOURCE_TYPE = re.compile(r"^[A-Z][A-Za-z]+$")
_PARAMETER = re.compile(r"^\{[^}]+\}$")
# System-level routes, which a CapabilityStatement states otherwise (``/metadata`` is itself).
_SYSTEM = {"/fhir/metadata"}


@pytest.fixture
def app(runtime: Runtime) -> FastAPI:
    return create_app(runtime)


@pytest.fixture
def statement(app: FastAPI) -> CapabilityStatement:
    return CapabilityStatement.model_validate(TestClient(app).get("/fhir/metadata").json())


def served(route: Route) -> Iterator[tuple[str, str]]:
    """``(type, interaction)`` for each method of a ``/fhir`` route; an operation as ``$name``."""
    parts = route.path.removeprefix("/fhir/").split("/")
    kind, rest = parts[0], parts[1:]
    assert _RESOURCE_TYPE.match(kind), f"{route.path}: not a FHIR resource type"
    for method in sorted(route.methods - {"HEAD", "OPTIONS"}):
        if rest and rest[-1].startswith("$"):
            # An operation, on the type (/Claim/$x) or on an instance (/Claim/{id}/$x).
            assert len(rest) == 1 or (len(rest) == 2 and _PARAMETER.match(rest[0])), route.path
            yield kind, rest[-1]
        elif not rest:
            assert method in _TYPE_LEVEL, f"{method} {route.path}"
            yield kind, _TYPE_LEVEL[method]
        else:
            assert len(rest) == 1, f"{route.path}: not a FHIR RESTful path"
            assert _PARAMETER.match(rest[0]), f"{route.path}: not a FHIR RESTful path"
            assert method in _INSTANCE_LEVEL, f"{method} {route.path}"
            yield kind, _INSTANCE_LEVEL[method]


def routes_of(app: FastAPI) -> dict[tuple[str, str], Route]:
    found = {}
    for route in api_routes(app):
        if route.path.startswith("/fhir/") and route.path not in _SYSTEM:
            for interaction in served(route):
                found[interaction] = route
    return found


def declared(statement: CapabilityStatement) -> set[tuple[str, str]]:
    (rest,) = statement.rest
    promised = set()
    for resource in rest.resource:
        promised |= {(resource.type, interaction.code) for interaction in resource.interaction or []}
        promised |= {(resource.type, "$" + operation.name) for operation in resource.operation or []}
    return promised


def test_every_fhir_route_of_the_app_is_declared(app: FastAPI, statement: CapabilityStatement) -> None:
    unpromised = set(routes_of(app)) - declared(statement)

    assert not unpromised, f"served but not in the CapabilityStatement: {sorted(unpromised)}"


def test_every_declared_interaction_has_its_route(app: FastAPI, statement: CapabilityStatement) -> None:
    missing = declared(statement) - set(routes_of(app))

    assert not missing, f"in the CapabilityStatement but not served: {sorted(missing)}"


def test_a_search_declares_the_parameters_its_route_takes(app: FastAPI, statement: CapabilityStatement) -> None:
    routes = routes_of(app)
    (rest,) = statement.rest
    searched = [resource for resource in rest.resource if (resource.type, "search-type") in routes]
    for resource in searched:
        endpoint = routes[(resource.type, "search-type")].original.endpoint
        taken = getattr(sys.modules[endpoint.__module__], "SEARCH_PARAMETERS", None)
        assert taken is not None, f"{resource.type}: its module names no SEARCH_PARAMETERS"
        assert {param.name for param in resource.searchParam or []} == set(taken), resource.type
    for resource in rest.resource:
        if resource.searchParam:
            assert (resource.type, "search-type") in routes, f"{resource.type}: search parameters but no search"
