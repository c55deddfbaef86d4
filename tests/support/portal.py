"""A person in a browser for tests: enrols through an invitation, logs in with a software passkey,
keeps its session cookie and sends the CSRF token on every state-changing request.

    admin = PortalUser.invited(app, runtime, login="admin@mutuelle.test", roles={Role.INSURER_ADMIN},
                               insurer_id=insurer.id)
    admin.get("/api/v1/insurers/.../members")
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx2 as httpx
from fastapi import FastAPI
from fastapi.testclient import TestClient

from rempart.identity.accounts import Invitation, invite_account
from rempart.identity.permissions import Role
from rempart.runtime import Runtime
from tests.support.practice_client import identity_of
from tests.support.webauthn import SoftAuthenticator

_UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def invite(app: FastAPI, runtime: Runtime, *, login: str, roles: set[Role], **scope: Any) -> Invitation:
    with runtime.sessions.begin() as session:
        return invite_account(
            session=session, login=login, roles=roles, now=identity_of(app).clock(), invited_by=None, **scope
        )


@dataclass
class PortalUser:
    app: FastAPI
    login: str
    authenticator: SoftAuthenticator
    client: TestClient = field(repr=False)
    account_id: uuid.UUID | None = None
    csrf_token: str | None = None

    @classmethod
    def browser(cls, app: FastAPI, *, login: str = "", authenticator: SoftAuthenticator | None = None) -> PortalUser:
        origin = identity_of(app).origin
        return cls(
            app=app,
            login=login,
            authenticator=authenticator or SoftAuthenticator(),
            client=TestClient(app, base_url=origin, raise_server_exceptions=False),
        )

    @classmethod
    def invited(cls, app: FastAPI, runtime: Runtime, *, login: str, roles: set[Role], **scope: Any) -> PortalUser:
        invitation = invite(app, runtime, login=login, roles=roles, **scope)
        user = cls.browser(app, login=login)
        response = user.enrol(invitation.token)
        assert response.status_code == 200, response.text
        return user

    @property
    def origin(self) -> str:
        return identity_of(self.app).origin

    def _remember(self, response: httpx.Response) -> httpx.Response:
        if response.status_code == 200 and "csrf_token" in response.json():
            body = response.json()
            self.csrf_token = body["csrf_token"]
            self.account_id = uuid.UUID(body["account_id"]) if "account_id" in body else self.account_id
        return response

    def enrol(self, token: str, *, origin: str | None = None, name: str = "Laptop") -> httpx.Response:
        started = self.client.post("/api/v1/auth/enrolment/options", json={"token": token})
        assert started.status_code == 200, started.text
        credential = self.authenticator.create(started.json()["publicKey"], origin=origin or self.origin)
        return self._remember(
            self.client.post(
                "/api/v1/auth/enrolment/verify",
                json={
                    "token": token,
                    "ceremony_id": started.json()["ceremony_id"],
                    "credential": credential,
                    "name": name,
                },
            )
        )

    def login_options(self, login: str | None = None) -> httpx.Response:
        return self.client.post("/api/v1/auth/login/options", json={"login": login or self.login})

    def sign_in(self, *, origin: str | None = None, login: str | None = None) -> httpx.Response:
        started = self.login_options(login)
        if started.status_code != 200:
            return started
        credential = self.authenticator.get(started.json()["publicKey"], origin=origin or self.origin)
        return self._remember(
            self.client.post(
                "/api/v1/auth/login/verify",
                json={"ceremony_id": started.json()["ceremony_id"], "credential": credential},
            )
        )

    def step_up(self) -> httpx.Response:
        started = self.request("POST", "/api/v1/auth/step-up/options")
        assert started.status_code == 200, started.text
        credential = self.authenticator.get(started.json()["publicKey"], origin=self.origin)
        response = self.request(
            "POST",
            "/api/v1/auth/step-up/verify",
            json={"ceremony_id": started.json()["ceremony_id"], "credential": credential},
        )
        if response.status_code == 200:
            self.csrf_token = response.json()["csrf_token"]
        return response

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = dict(kwargs.pop("headers", None) or {})
        if method.upper() in _UNSAFE and self.csrf_token and "X-CSRF-Token" not in headers:
            headers["X-CSRF-Token"] = self.csrf_token
        return self.client.request(method, path, headers=headers, **kwargs)

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("POST", path, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("DELETE", path, **kwargs)
