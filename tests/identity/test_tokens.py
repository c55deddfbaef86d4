"""Practice software: signed client assertions (RFC 7523) and DPoP-bound tokens (RFC 9449)."""

from __future__ import annotations

import base64
import json
import uuid
import warnings
from typing import Any

import httpx2 as httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi import APIRouter, FastAPI
from joserfc.jwk import ECKey, RSAKey

from rempart.errors import ValidationFailed
from rempart.identity.clients import access_client, add_client_key, revoke_client, revoke_client_key
from rempart.identity.context import TOKEN_PATH
from rempart.identity.deps import PracticeCaller
from rempart.identity.jose import import_public_jwk
from rempart.identity.models import ApiClient
from rempart.identity.tokens import ASSERTION_TYPE, GRANT_TYPE
from rempart.professionals.models import Profession
from rempart.runtime import Runtime
from tests.support.clock import FakeClock
from tests.support.practice_client import PracticeClient, dpop_proof

WHOAMI = "/api/v1/auth/whoami"
PROBLEM = "application/problem+json"


def _problem(response: httpx.Response, status: int, slug: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body: dict[str, Any] = response.json()
    assert body["type"].endswith("/" + slug)
    assert body["status"] == status
    if status == 401:
        # RFC 9449, section 7.1: a 401 says how to authenticate, with the same error code.
        challenge = response.headers["www-authenticate"]
        assert challenge.startswith("DPoP ")
        assert 'algs="ES256' in challenge
        if "error" in body:
            assert f'error="{body["error"]}"' in challenge
        else:
            assert "error=" not in challenge  # no credentials at all: no error to name
    return body


def test_a_signed_assertion_and_a_proof_get_a_short_token_that_works(practice: PracticeClient) -> None:
    response = practice.request_token()

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["token_type"] == "DPoP"
    assert 0 < body["expires_in"] <= 300
    me = practice.get(WHOAMI)
    assert me.status_code == 200, me.text
    assert me.json()["practice_id"] == str(practice.practice_id)
    assert me.json()["client_id"] == str(practice.client_id)
    assert me.json()["rpps"] == practice.rpps
    assert me.json()["channel"] == "api"


def test_a_token_without_its_proof_is_refused(practice: PracticeClient) -> None:
    token = practice.token()

    no_proof = practice.client.get(WHOAMI, headers={"Authorization": f"DPoP {token}", "X-Acting-RPPS": practice.rpps})
    as_bearer = practice.client.get(
        WHOAMI,
        headers={
            "Authorization": f"Bearer {token}",
            "DPoP": practice.proof("GET", WHOAMI, access_token=token),
            "X-Acting-RPPS": practice.rpps,
        },
    )

    assert _problem(no_proof, 401, "invalid-dpop-proof")["error"] == "invalid_dpop_proof"
    _problem(as_bearer, 401, "invalid-token")


@pytest.mark.parametrize(
    ("method", "path"),
    [("POST", WHOAMI), ("GET", "/api/v1/rights-checks"), ("GET", "https://evil.example" + WHOAMI)],
)
def test_a_proof_for_another_method_or_url_is_refused(practice: PracticeClient, method: str, path: str) -> None:
    token = practice.token()
    url = path if path.startswith("https://") else practice.identity.url_of(path)
    proof = dpop_proof(
        practice.dpop_key, method=method, url=url, iat=int(practice.identity.clock().timestamp()), access_token=token
    )

    response = practice.client.get(
        WHOAMI, headers={"Authorization": f"DPoP {token}", "DPoP": proof, "X-Acting-RPPS": practice.rpps}
    )

    _problem(response, 401, "invalid-dpop-proof")


def test_a_replayed_proof_is_refused(practice: PracticeClient) -> None:
    headers = practice.headers("GET", WHOAMI)

    first = practice.client.get(WHOAMI, headers=headers)
    replayed = practice.client.get(WHOAMI, headers=headers)

    assert first.status_code == 200
    assert "already used" in _problem(replayed, 401, "invalid-dpop-proof")["detail"]


def test_two_dpop_headers_are_refused_even_when_one_is_good(practice: PracticeClient) -> None:
    token = practice.token()
    good = practice.proof("GET", WHOAMI, access_token=token)
    other = practice.proof("GET", WHOAMI, access_token=token)
    auth = [("Authorization", f"DPoP {token}"), ("X-Acting-RPPS", practice.rpps)]

    on_a_route = practice.client.get(WHOAMI, headers=[*auth, ("DPoP", good), ("DPoP", other)])
    form = {"grant_type": GRANT_TYPE, "client_assertion_type": ASSERTION_TYPE, "client_assertion": practice.assertion()}
    two_for_a_token = [("DPoP", practice.proof("POST", TOKEN_PATH)), ("DPoP", practice.proof("POST", TOKEN_PATH))]
    at_the_token_endpoint = practice.client.post(TOKEN_PATH, data=form, headers=two_for_a_token)

    assert "not several" in _problem(on_a_route, 401, "invalid-dpop-proof")["detail"]
    assert "not several" in _problem(at_the_token_endpoint, 401, "invalid-dpop-proof")["detail"]
    # Neither proof was spent: the good one alone still works.
    assert practice.client.get(WHOAMI, headers=[*auth, ("DPoP", good)]).status_code == 200


def test_a_stolen_token_with_a_proof_from_the_thiefs_key_is_refused(practice: PracticeClient) -> None:
    token = practice.token()
    thief_key = ECKey.generate_key("P-256", private=True)
    proof = dpop_proof(
        thief_key,
        method="GET",
        url=practice.identity.url_of(WHOAMI),
        iat=int(practice.identity.clock().timestamp()),
        access_token=token,
    )

    response = practice.client.get(
        WHOAMI, headers={"Authorization": f"DPoP {token}", "DPoP": proof, "X-Acting-RPPS": practice.rpps}
    )

    _problem(response, 401, "invalid-dpop-proof")


def test_a_proof_altered_after_signing_is_refused(practice: PracticeClient) -> None:
    token = practice.token()
    header, payload, signature = practice.proof("GET", WHOAMI, access_token=token).split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["jti"] = uuid.uuid4().hex  # a fresh jti, to replay the proof past the replay check
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    headers = {"Authorization": f"DPoP {token}", "X-Acting-RPPS": practice.rpps}

    response = practice.client.get(WHOAMI, headers={**headers, "DPoP": f"{header}.{forged}.{signature}"})

    assert "does not verify" in _problem(response, 401, "invalid-dpop-proof")["detail"]


def test_a_proof_that_does_not_name_the_token_is_refused(practice: PracticeClient) -> None:
    token = practice.token()
    other = practice.token(fresh=True)
    for proof in (practice.proof("GET", WHOAMI), practice.proof("GET", WHOAMI, access_token=token)):
        response = practice.client.get(
            WHOAMI, headers={"Authorization": f"DPoP {other}", "DPoP": proof, "X-Acting-RPPS": practice.rpps}
        )
        _problem(response, 401, "invalid-dpop-proof")


def test_an_old_proof_is_refused(practice: PracticeClient, clock: FakeClock) -> None:
    token = practice.token()
    proof = practice.proof("GET", WHOAMI, access_token=token)
    clock.advance(seconds=90)

    response = practice.client.get(
        WHOAMI, headers={"Authorization": f"DPoP {token}", "DPoP": proof, "X-Acting-RPPS": practice.rpps}
    )

    _problem(response, 401, "invalid-dpop-proof")


def test_a_token_expires_after_five_minutes(practice: PracticeClient, clock: FakeClock) -> None:
    token = practice.token()
    clock.advance(minutes=5)

    response = practice.client.get(
        WHOAMI,
        headers={
            "Authorization": f"DPoP {token}",
            "DPoP": practice.proof("GET", WHOAMI, access_token=token),
            "X-Acting-RPPS": practice.rpps,
        },
    )

    assert _problem(response, 401, "token-expired")["error"] == "invalid_token"


def test_the_token_endpoint_wants_a_proof_and_a_one_shot_assertion_for_itself(practice: PracticeClient) -> None:
    no_proof = practice.client.post(
        TOKEN_PATH,
        data={
            "grant_type": "client_credentials",
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            "client_assertion": practice.assertion(),
        },
    )
    _problem(no_proof, 401, "invalid-dpop-proof")

    assertion = practice.assertion()
    assert practice.request_token(assertion=assertion).status_code == 200
    _problem(practice.request_token(assertion=assertion), 401, "invalid-client")

    wrong_audience = practice.assertion(audience=practice.identity.url_of("/api/v1/other"))
    _problem(practice.request_token(assertion=wrong_audience), 401, "invalid-client")

    expired = practice.assertion(iat=int(practice.identity.clock().timestamp()) - 600)
    _problem(practice.request_token(assertion=expired), 401, "invalid-client")

    long_lived = practice.assertion(lifetime=3600)
    _problem(practice.request_token(assertion=long_lived), 401, "invalid-client")


def test_an_assertion_signed_by_an_unregistered_key_is_refused(practice: PracticeClient) -> None:
    practice.signing_key = ECKey.generate_key("P-256", private=True)

    response = practice.request_token()

    body = _problem(response, 401, "invalid-client")
    assert body["error"] == "invalid_client"


def test_malformed_token_requests_get_a_clear_problem(practice: PracticeClient) -> None:
    response = practice.client.post(TOKEN_PATH, data={"grant_type": "password", "username": "x", "password": "y"})

    assert _problem(response, 400, "invalid-token-request")["error"] == "invalid_request"


def test_a_revoked_client_gets_a_clear_401_at_once(practice: PracticeClient, runtime: Runtime) -> None:
    assert practice.get(WHOAMI).status_code == 200
    with runtime.sessions.begin() as session:
        client = access_client(session, practice_id=practice.practice_id, client_id=practice.client_id)
        revoke_client(session=session, client=client, now=practice.identity.clock())

    with_old_token = practice.get(WHOAMI)
    new_token = practice.request_token()

    assert "revoked" in _problem(with_old_token, 401, "client-revoked")["detail"]
    _problem(new_token, 401, "client-revoked")


def test_an_expired_client_gets_a_clear_401(practice: PracticeClient, runtime: Runtime, clock: FakeClock) -> None:
    token = practice.token()
    with runtime.sessions.begin() as session:
        client = session.get(ApiClient, practice.client_id)
        assert client is not None
        client.expires_at = clock.now

    response = practice.client.get(
        WHOAMI,
        headers={
            "Authorization": f"DPoP {token}",
            "DPoP": practice.proof("GET", WHOAMI, access_token=token),
            "X-Acting-RPPS": practice.rpps,
        },
    )

    _problem(response, 401, "client-expired")
    _problem(practice.request_token(), 401, "client-expired")


def test_keys_rotate_and_a_revoked_key_signs_nothing(practice: PracticeClient, runtime: Runtime) -> None:
    old_key = practice.signing_key
    new_key = ECKey.generate_key("P-256", private=True)
    with runtime.sessions.begin() as session:
        client = access_client(session, practice_id=practice.practice_id, client_id=practice.client_id)
        add_client_key(
            session=session, client=client, public_jwk=dict(new_key.as_dict()), now=practice.identity.clock()
        )

    assert practice.request_token().status_code == 200  # the old key during the rotation
    practice.signing_key = new_key
    assert practice.request_token().status_code == 200

    token = practice.token()
    with runtime.sessions.begin() as session:
        client = access_client(session, practice_id=practice.practice_id, client_id=practice.client_id)
        revoke_client_key(session=session, client=client, kid=old_key.thumbprint(), now=practice.identity.clock())

    practice.signing_key = old_key
    _problem(practice.request_token(), 401, "invalid-client")
    # Tokens issued before the revocation die with it.
    response = practice.client.get(
        WHOAMI,
        headers={
            "Authorization": f"DPoP {token}",
            "DPoP": practice.proof("GET", WHOAMI, access_token=token),
            "X-Acting-RPPS": practice.rpps,
        },
    )
    _problem(response, 401, "invalid-token")


def test_only_public_signing_keys_can_be_registered() -> None:
    private = ECKey.generate_key("P-256", private=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        weak_rsa = RSAKey.import_key(rsa.generate_private_key(public_exponent=65537, key_size=1024).public_key())
    for bad in (
        dict(private.as_dict(private=True)),
        dict(weak_rsa.as_dict(private=False)),
        {"kty": "oct", "k": "c2VjcmV0"},
        {"kty": "EC", "crv": "P-256", "x": "AA", "y": "AA"},
        "not a key",
    ):
        with pytest.raises(ValidationFailed):
            import_public_jwk(bad)
    assert import_public_jwk(dict(private.as_dict(private=False))).thumbprint() == private.thumbprint()


def test_the_acting_professional_must_belong_to_the_practice(
    practice: PracticeClient, app: FastAPI, runtime: Runtime
) -> None:
    other_practice = PracticeClient.register(app, runtime, profession=Profession.OPTICIAN, practice_name="Optique")
    colleague = practice.add_professional()

    assert practice.get(WHOAMI, rpps=colleague).json()["rpps"] == colleague
    missing = practice.client.get(
        WHOAMI,
        headers={"Authorization": f"DPoP {practice.token()}"}
        | {"DPoP": practice.proof("GET", WHOAMI, access_token=practice.token())},
    )
    elsewhere = practice.get(WHOAMI, rpps=other_practice.rpps)
    unknown = practice.get(WHOAMI, rpps="10000000009")

    _problem(missing, 403, "acting-professional-refused")
    # Another practice's professional and an unknown RPPS look the same.
    assert _problem(elsewhere, 403, "acting-professional-refused") == _problem(
        unknown, 403, "acting-professional-refused"
    )


def test_a_route_that_declares_no_permission_opens_to_nobody(practice: PracticeClient, app: FastAPI) -> None:
    forgetful = APIRouter()

    @forgetful.get("/api/v1/test-forgot-permission")
    def forgot(caller: PracticeCaller) -> dict[str, str]:
        return {"rpps": caller.rpps}

    app.include_router(forgetful)

    response = practice.get("/api/v1/test-forgot-permission")

    _problem(response, 403, "permission-denied")


def test_no_credentials_at_all_is_a_401(practice: PracticeClient) -> None:
    _problem(practice.client.get(WHOAMI), 401, "unauthenticated")
    _problem(practice.client.get(WHOAMI, headers={"Authorization": f"DPoP {uuid.uuid4().hex}"}), 401, "invalid-token")
