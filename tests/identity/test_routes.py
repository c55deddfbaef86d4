"""Deny by default: every API route declares the permission it needs, or says it is public."""

from __future__ import annotations

from fastapi import FastAPI

from rempart.identity.deps import declared_permissions, is_public
from tests.support.routes import api_routes

# Reached without credentials on purpose: obtaining credentials, public keys, health.
EXPECTED_PUBLIC = {
    "/api/v1/auth/token",
    "/api/v1/auth/login/options",
    "/api/v1/auth/login/verify",
    "/api/v1/auth/enrolment/options",
    "/api/v1/auth/enrolment/verify",
    "/api/v1/auth/recovery",
    # the API's reference page and its Swagger UI assets: what /openapi.json already says
    "/api/docs",
    "/api/docs/assets/{name}",
}


def test_every_api_route_declares_a_permission_or_is_explicitly_public(app: FastAPI) -> None:
    undeclared, public = [], set()
    for route in api_routes(app):
        if not route.path.startswith("/api/"):
            continue
        if is_public(route.original):
            public.add(route.path)
        elif not declared_permissions(route.original):
            undeclared.append(f"{sorted(route.methods)} {route.path}")

    assert undeclared == []
    assert public >= EXPECTED_PUBLIC
    # Anything else public must be added to the list above knowingly.
    assert public - EXPECTED_PUBLIC == set()
