"""Practice software for tests: register a practice, a professional and an API client, then call
the API the way real billing software does — a signed client assertion (RFC 7523) for a token, and
a fresh DPoP proof (RFC 9449) on every request.

    practice = PracticeClient.register(app, runtime, profession=Profession.PHARMACIST)
    response = practice.post("/api/v1/rights-checks", json={...})

``practice.client`` is a plain ``fastapi.testclient.TestClient`` for raw requests.
"""

from __future__ import annotations

import base64
import hashlib
import random
import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx2 as httpx
from fastapi import FastAPI
from fastapi.testclient import TestClient
from joserfc import jwt
from joserfc.jwk import ECKey
from sqlalchemy import select
from stdnum import luhn

from rempart.identity.clients import create_client
from rempart.identity.context import TOKEN_PATH, IdentityServices
from rempart.identity.deps import ACTING_RPPS_HEADER
from rempart.identity.models import ApiClient
from rempart.identity.tokens import ASSERTION_TYPE, GRANT_TYPE
from rempart.professionals.models import Profession, Professional
from rempart.professionals.service import attach_professional, create_practice, register_professional
from rempart.runtime import Runtime

_rng = random.SystemRandom()


def make_rpps() -> str:
    """A random valid RPPS number (10 digits starting with 1, then the Luhn key)."""
    body = "10" + "".join(_rng.choice("0123456789") for _ in range(8))
    return body + luhn.calc_check_digit(body)


def make_practice_number() -> str:
    return "".join(_rng.choice("0123456789") for _ in range(9))


def identity_of(app: FastAPI) -> IdentityServices:
    """The app's identity services (clock, replay store), built as the first request would."""
    services: IdentityServices | None = getattr(app.state, "identity", None)
    if services is None:
        services = IdentityServices.build(app.state.runtime.settings)
        app.state.identity = services
    return services


def now_ts(app: FastAPI) -> int:
    return int(identity_of(app).clock().timestamp())


def dpop_proof(
    key: ECKey,
    *,
    method: str,
    url: str,
    iat: int,
    access_token: str | None = None,
    jti: str | None = None,
) -> str:
    claims: dict[str, Any] = {"jti": jti or uuid.uuid4().hex, "htm": method.upper(), "htu": url, "iat": iat}
    if access_token is not None:
        digest = hashlib.sha256(access_token.encode()).digest()
        claims["ath"] = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
    header = {"typ": "dpop+jwt", "alg": "ES256", "jwk": key.as_dict(private=False)}
    return jwt.encode(header, claims, key, algorithms=["ES256"], default_type=None)


def client_assertion(
    key: ECKey, *, client_id: uuid.UUID, audience: str, iat: int, lifetime: int = 60, jti: str | None = None
) -> str:
    claims = {
        "iss": str(client_id),
        "sub": str(client_id),
        "aud": audience,
        "iat": iat,
        "exp": iat + lifetime,
        "jti": jti or uuid.uuid4().hex,
    }
    return jwt.encode({"alg": "ES256", "kid": key.thumbprint()}, claims, key, algorithms=["ES256"])


@dataclass
class PracticeClient:
    app: FastAPI
    runtime: Runtime
    practice_id: uuid.UUID
    professional_id: uuid.UUID
    rpps: str
    profession: Profession
    client_id: uuid.UUID
    signing_key: ECKey
    dpop_key: ECKey
    client: TestClient = field(repr=False)
    _token: str | None = field(default=None, repr=False)
    _token_expires: int = 0

    @classmethod
    def register(
        cls,
        app: FastAPI,
        runtime: Runtime,
        *,
        profession: Profession = Profession.PHARMACIST,
        practice_name: str = "Pharmacie du Centre",
        rpps: str | None = None,
    ) -> PracticeClient:
        signing_key = ECKey.generate_key("P-256", private=True)
        identity = identity_of(app)
        with runtime.sessions.begin() as session:
            practice = create_practice(
                session=session, name=practice_name, profession=profession, finess=make_practice_number()
            )
            professional = register_professional(session=session, rpps=rpps or make_rpps(), profession=profession)
            attach_professional(
                session=session, practice_id=practice.id, professional_id=professional.id, now=identity.clock()
            )
            client, _key = create_client(
                session=session,
                practice_id=practice.id,
                name="Logiciel de facturation",
                public_jwk=dict(signing_key.as_dict(private=False)),
                now=identity.clock(),
            )
        return cls(
            app=app,
            runtime=runtime,
            practice_id=practice.id,
            professional_id=professional.id,
            rpps=professional.rpps,
            profession=profession,
            client_id=client.id,
            signing_key=signing_key,
            dpop_key=ECKey.generate_key("P-256", private=True),
            client=TestClient(app, base_url=identity.origin, raise_server_exceptions=False),
        )

    @classmethod
    def from_credentials(
        cls, app: FastAPI, runtime: Runtime, *, client_id: str, private_jwk: dict[str, Any], rpps: str
    ) -> PracticeClient:
        """Software already registered elsewhere (the demo): its client id, key and professional."""
        with runtime.sessions() as session:
            client = session.get(ApiClient, uuid.UUID(client_id))
            professional = session.scalar(select(Professional).where(Professional.rpps == rpps))
            assert client is not None
            assert professional is not None
        return cls(
            app=app,
            runtime=runtime,
            practice_id=client.practice_id,
            professional_id=professional.id,
            rpps=rpps,
            profession=professional.profession,
            client_id=client.id,
            signing_key=ECKey.import_key(private_jwk),
            dpop_key=ECKey.generate_key("P-256", private=True),
            client=TestClient(app, base_url=identity_of(app).origin, raise_server_exceptions=False),
        )

    def add_professional(self, *, rpps: str | None = None) -> str:
        """Another professional of the same practice; returns their RPPS."""
        with self.runtime.sessions.begin() as session:
            professional = register_professional(session=session, rpps=rpps or make_rpps(), profession=self.profession)
            attach_professional(
                session=session,
                practice_id=self.practice_id,
                professional_id=professional.id,
                now=identity_of(self.app).clock(),
            )
            return professional.rpps

    # -- OAuth ------------------------------------------------------------------------------------

    @property
    def identity(self) -> IdentityServices:
        return identity_of(self.app)

    def assertion(self, **overrides: Any) -> str:
        identity = identity_of(self.app)
        args: dict[str, Any] = {"client_id": self.client_id, "audience": identity.token_url, "iat": now_ts(self.app)}
        args.update(overrides)
        return client_assertion(self.signing_key, **args)

    def proof(self, method: str, path: str, *, access_token: str | None = None, **overrides: Any) -> str:
        args: dict[str, Any] = {
            "method": method,
            "url": identity_of(self.app).url_of(path),
            "iat": now_ts(self.app),
            "access_token": access_token,
        }
        args.update(overrides)
        return dpop_proof(self.dpop_key, **args)

    def request_token(self, *, assertion: str | None = None, proof: str | None = None) -> httpx.Response:
        return self.client.post(
            TOKEN_PATH,
            data={
                "grant_type": GRANT_TYPE,
                "client_assertion_type": ASSERTION_TYPE,
                "client_assertion": assertion or self.assertion(),
            },
            headers={"DPoP": proof or self.proof("POST", TOKEN_PATH)},
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

    # -- API calls --------------------------------------------------------------------------------

    def headers(self, method: str, path: str, *, rpps: str | None = None) -> dict[str, str]:
        token = self.token()
        return {
            "Authorization": f"DPoP {token}",
            # The URI as sent (RFC 9449, section 4.3): percent-encoded the way httpx sends it.
            "DPoP": self.proof(method, httpx.URL(path).raw_path.decode("ascii").split("?", 1)[0], access_token=token),
            ACTING_RPPS_HEADER: rpps or self.rpps,
        }

    def request(self, method: str, path: str, *, rpps: str | None = None, **kwargs: Any) -> httpx.Response:
        headers = self.headers(method, path, rpps=rpps)
        headers.update(kwargs.pop("headers", None) or {})
        return self.client.request(method, path, headers=headers, **kwargs)

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("POST", path, **kwargs)

    def put(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("PUT", path, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("DELETE", path, **kwargs)
