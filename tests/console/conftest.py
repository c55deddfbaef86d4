"""The security console as operators reach it over HTTP: two security operators (a break-glass
request needs a second one), beside the professional portal's world (an insurer with members, an
optician's practice with its portal account and its billing software)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import httpx2 as httpx
import pytest
from fastapi import FastAPI

from rempart.identity.permissions import Role
from rempart.runtime import Runtime
from tests.e2e.conftest import (  # noqa: F401  (fixtures, registered by being imported here)
    app,
    app_runtime,
    clock,
    no_identity_in_professional_responses,
    population,
    recorder,
    scanned,
)
from tests.portal.conftest import World, world  # noqa: F401  (the world fixture, registered here)
from tests.support.portal import PortalUser

_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@dataclass
class Operator:
    """A security operator signed in to the console, reading pages and sending their forms."""

    user: PortalUser

    def page(self, path: str, **kwargs: Any) -> httpx.Response:
        response = self.user.client.get(path, **kwargs)
        found = _CSRF.search(response.text)
        if found:
            self.user.csrf_token = found.group(1)
        return response

    def form(self, path: str, data: dict[str, Any] | None = None, **kwargs: Any) -> httpx.Response:
        """Post a form as the browser does: its fields, plus the page's ``csrf_token``."""
        return self.user.client.post(path, data={"csrf_token": self.user.csrf_token, **(data or {})}, **kwargs)

    def english(self) -> Operator:
        self.user.client.cookies.set("lang", "en")
        return self

    def french(self) -> Operator:
        self.user.client.cookies.set("lang", "fr")
        return self


def sign_up_operator(served: FastAPI, runtime: Runtime, login: str) -> Operator:
    user = PortalUser.invited(served, runtime, login=login, roles={Role.SECURITY_OPERATOR})
    operator = Operator(user)
    assert operator.page("/console").status_code == 200
    return operator


@pytest.fixture
def operator(app: FastAPI, runtime: Runtime, world: World) -> Operator:  # noqa: F811
    return sign_up_operator(app, runtime, "veille@rempart.test")


@pytest.fixture
def second_operator(app: FastAPI, runtime: Runtime, world: World) -> Operator:  # noqa: F811
    return sign_up_operator(app, runtime, "astreinte@rempart.test")
