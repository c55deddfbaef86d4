"""An insurer's nightly job for tests: an API client registered by the insurer admin (through the
API, with a passkey session), then calling the insurer API the way a job does — a signed client
assertion (RFC 7523) for a token, a fresh DPoP proof (RFC 9449) on every request, and no person,
so no ``X-Acting-RPPS``.

    job = InsurerClient.registered_by(admin, insurer_id=insurer.id, scopes=["members:import"])
    job.post(f"/api/v1/insurers/{insurer.id}/members-imports", files={...})

The assertions and proofs are those of practice software (``tests.support.practice_client``): only
who registers the client and what a call carries differ.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx2 as httpx
from fastapi import FastAPI
from fastapi.testclient import TestClient
from joserfc.jwk import ECKey

from rempart.identity.context import TOKEN_PATH
from rempart.identity.tokens import ASSERTION_TYPE, GRANT_TYPE
from tests.support.portal import PortalUser
from tests.support.practice_client import client_assertion, dpop_proof, identity_of, now_ts


def new_key() -> ECKey:
    return ECKey.generate_key("P-256", private=True)


def public_jwk(key: ECKey) -> dict[str, Any]:
    return dict(key.as_dict(private=False))


def clients_path(insurer_id: uuid.UUID) -> str:
    return f"/api/v1/insurers/{insurer_id}/api-clients"


@dataclass
class InsurerClient:
    app: FastAPI
    insurer_id: uuid.UUID
    client_id: uuid.UUID
    signing_key: ECKey
    dpop_key: ECKey
    client: TestClient = field(repr=False)
    _token: str | None = field(default=None, repr=False)
    _token_expires: int = 0

    @classmethod
    def registered_by(
        cls,
        admin: PortalUser,
        *,
        insurer_id: uuid.UUID,
        scopes: list[str],
        name: str = "Import nocturne des adhérents",
        signing_key: ECKey | None = None,
    ) -> InsurerClient:
        """The insurer admin registers the job's public key and scopes; the private key stays here."""
        key = signing_key or new_key()
        response = admin.post(
            clients_path(insurer_id), json={"name": name, "public_jwk": public_jwk(key), "scopes": scopes}
        )
        assert response.status_code == 201, response.text
        return cls.of(admin.app, insurer_id=insurer_id, client_id=uuid.UUID(response.json()["client_id"]), key=key)

    @classmethod
    def of(cls, app: FastAPI, *, insurer_id: uuid.UUID, client_id: uuid.UUID, key: ECKey) -> InsurerClient:
        return cls(
            app=app,
            insurer_id=insurer_id,
            client_id=client_id,
            signing_key=key,
            dpop_key=new_key(),
            client=TestClient(app, base_url=identity_of(app).origin, raise_server_exceptions=False),
        )

    @property
    def base(self) -> str:
        return f"/api/v1/insurers/{self.insurer_id}"

    # -- OAuth ------------------------------------------------------------------------------------

    def switch_key(self, key: ECKey) -> None:
        """The job now signs with ``key`` (a rotation); its current token is forgotten."""
        self.signing_key, self._token = key, None

    def assertion(self, **overrides: Any) -> str:
        args: dict[str, Any] = {
            "client_id": self.client_id,
            "audience": identity_of(self.app).token_url,
            "iat": now_ts(self.app),
        }
        args.update(overrides)
        return client_assertion(self.signing_key, **args)

    def proof(self, method: str, path: str, *, access_token: str | None = None) -> str:
        return dpop_proof(
            self.dpop_key,
            method=method,
            url=identity_of(self.app).url_of(path),
            iat=now_ts(self.app),
            access_token=access_token,
        )

    def request_token(self) -> httpx.Response:
        return self.client.post(
            TOKEN_PATH,
            data={
                "grant_type": GRANT_TYPE,
                "client_assertion_type": ASSERTION_TYPE,
                "client_assertion": self.assertion(),
            },
            headers={"DPoP": self.proof("POST", TOKEN_PATH)},
        )

    def token(self, *, fresh: bool = False) -> str:
        if fresh or self._token is None or now_ts(self.app) >= self._token_expires - 30:
            response = self.request_token()
            assert response.status_code == 200, response.text
            body = response.json()
            self._token = body["access_token"]
            self._token_expires = now_ts(self.app) + int(body["expires_in"])
        assert self._token is not None
        return self._token

    # -- API calls: a DPoP-bound token and a proof, nothing naming a person ------------------------

    def headers(self, method: str, path: str, *, token: str | None = None) -> dict[str, str]:
        token = token or self.token()
        # The URI as sent (RFC 9449, section 4.3): percent-encoded the way httpx sends it.
        sent = httpx.URL(path).raw_path.decode("ascii").split("?", 1)[0]
        return {"Authorization": f"DPoP {token}", "DPoP": self.proof(method, sent, access_token=token)}

    def request(self, method: str, path: str, *, token: str | None = None, **kwargs: Any) -> httpx.Response:
        headers = self.headers(method, path, token=token)
        headers.update(kwargs.pop("headers", None) or {})
        return self.client.request(method, path, headers=headers, **kwargs)

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("POST", path, **kwargs)
