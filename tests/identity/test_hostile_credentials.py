"""Hostile or broken credentials on the practice-software routes get a clean problem, never a 500.

The token endpoint is public: anyone can send it a DPoP proof signed by a key of their own, so
everything in a proof's header and claims is attacker-chosen before any authentication. A practice
admin's client registration takes a name, a JWK and an expiry typed or pasted by hand.
"""

from __future__ import annotations

import base64
import hashlib
import json
import uuid
from typing import Any

import httpx2 as httpx
import pytest
from joserfc import jws
from joserfc.jwk import ECKey

from rempart.identity.context import TOKEN_PATH
from rempart.identity.jose import REGISTRY
from rempart.identity.tokens import ASSERTION_TYPE, GRANT_TYPE
from tests.support.clock import FakeClock
from tests.support.practice_client import PracticeClient
from tests.support.problems import problem_of

PROBLEM = "application/problem+json"
WHOAMI = "/api/v1/auth/whoami"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _signed(key: ECKey, header: dict[str, Any], payload: str) -> str:
    """A compact JWS over exactly ``payload`` (a JSON text written by hand), signed by ``key``."""
    return jws.serialize_compact(
        {"alg": "ES256", **header}, payload.encode(), key, algorithms=["ES256"], registry=REGISTRY
    )


def _with_header(signed: str, header: dict[str, Any]) -> str:
    """``signed`` with its protected header swapped: for headers joserfc would not sign."""
    _, payload, signature = signed.split(".")
    return f"{_b64(json.dumps(header).encode())}.{payload}.{signature}"


def _proof_claims(practice: PracticeClient, **overrides: Any) -> dict[str, Any]:
    claims: dict[str, Any] = {
        "jti": uuid.uuid4().hex,
        "htm": "POST",
        "htu": practice.identity.token_url,
        "iat": int(practice.identity.clock().timestamp()),
    }
    claims.update(overrides)
    return claims


def _token_request(practice: PracticeClient, proof: str, assertion: str | None = None) -> httpx.Response:
    return practice.client.post(
        TOKEN_PATH,
        data={
            "grant_type": GRANT_TYPE,
            "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": assertion or practice.assertion(),
        },
        headers={"DPoP": proof},
    )


def _proof_header(key: ECKey, **extra: Any) -> dict[str, Any]:
    return {"typ": "dpop+jwt", "alg": "ES256", "jwk": dict(key.as_dict(private=False)), **extra}


# Any key will do: the token endpoint reads the proof before it knows who is asking.
_ANYONE = ECKey.generate_key("P-256", private=True)


def _deep_header() -> str:
    return f"{_b64(b'[' * 3000)}.{_b64(b'{}')}.{_b64(b'x' * 64)}"


def _deep_payload(practice: PracticeClient) -> str:
    return _signed(_ANYONE, _proof_header(_ANYONE), "[" * 4000)


def _crit_not_a_list(practice: PracticeClient) -> str:
    signed = _signed(_ANYONE, _proof_header(_ANYONE), json.dumps(_proof_claims(practice)))
    return _with_header(signed, _proof_header(_ANYONE, crit=5))


def _kty_not_a_string(practice: PracticeClient) -> str:
    signed = _signed(_ANYONE, _proof_header(_ANYONE), json.dumps(_proof_claims(practice)))
    return _with_header(signed, {"typ": "dpop+jwt", "alg": "ES256", "jwk": {"kty": ["EC"]}})


def _htu(url: str) -> Any:
    def proof(practice: PracticeClient) -> str:
        return _signed(_ANYONE, _proof_header(_ANYONE), json.dumps(_proof_claims(practice, htu=url)))

    return proof


def _iat(value: Any) -> Any:
    def proof(practice: PracticeClient) -> str:
        return _signed(_ANYONE, _proof_header(_ANYONE), json.dumps(_proof_claims(practice, iat=value)))

    return proof


def _iat_nan(practice: PracticeClient) -> str:
    # Python's json writes (and reads) NaN; it is no JSON number, and every comparison with it is
    # false, so "too old" and "from the future" both said no.
    return _signed(_ANYONE, _proof_header(_ANYONE), json.dumps(_proof_claims(practice, iat=float("nan"))))


@pytest.mark.parametrize(
    "make_proof",
    [
        pytest.param(lambda practice: _deep_header(), id="header-nested-3000-deep"),
        pytest.param(_deep_payload, id="claims-nested-4000-deep"),
        pytest.param(_crit_not_a_list, id="crit-not-a-list"),
        pytest.param(_kty_not_a_string, id="jwk-kty-not-a-string"),
        pytest.param(_htu("https://localhost:99999/api/v1/auth/token"), id="htu-port-out-of-range"),
        pytest.param(_htu("https://localhost:port/api/v1/auth/token"), id="htu-port-not-a-number"),
        pytest.param(_htu("https://[::1/api/v1/auth/token"), id="htu-broken-ipv6"),
        pytest.param(_iat_nan, id="iat-nan"),
        pytest.param(_iat(float("inf")), id="iat-infinity"),
        pytest.param(_iat(10**400), id="iat-past-any-float"),
        pytest.param(_iat(True), id="iat-a-boolean"),
    ],
)
def test_a_malformed_dpop_proof_at_the_token_endpoint_is_a_401(practice: PracticeClient, make_proof: Any) -> None:
    response = _token_request(practice, make_proof(practice))

    body = problem_of(response, 401, "invalid-dpop-proof")
    assert body["error"] == "invalid_dpop_proof"
    assert response.headers["www-authenticate"].startswith('DPoP error="invalid_dpop_proof"')


def test_a_proof_with_a_nan_iat_cannot_be_replayed_minutes_later(practice: PracticeClient, clock: FakeClock) -> None:
    """The freshness window is what bounds a captured proof; a NaN ``iat`` sat outside it."""
    token = practice.token()
    claims = _proof_claims(practice, htm="GET", htu=practice.identity.url_of(WHOAMI), iat=float("nan"))
    claims["ath"] = _b64(hashlib.sha256(token.encode()).digest())
    proof = _signed(practice.dpop_key, _proof_header(practice.dpop_key), json.dumps(claims))
    headers = {"Authorization": f"DPoP {token}", "DPoP": proof, "X-Acting-RPPS": practice.rpps}

    clock.advance(minutes=2)  # past the replay store's memory of the jti, within the token's life

    problem_of(practice.client.get(WHOAMI, headers=headers), 401, "invalid-dpop-proof")


def test_a_malformed_proof_on_an_api_route_is_a_401(practice: PracticeClient) -> None:
    token = practice.token()
    deep = _signed(practice.dpop_key, _proof_header(practice.dpop_key), "[" * 50000)

    response = practice.client.get(
        WHOAMI, headers={"Authorization": f"DPoP {token}", "DPoP": deep, "X-Acting-RPPS": practice.rpps}
    )

    problem_of(response, 401, "invalid-dpop-proof")


def test_a_proof_whose_jti_is_a_lone_surrogate_is_used_once_like_any_other(practice: PracticeClient) -> None:
    # "\ud800" is valid JSON escaping, but no UTF-8 string: it reached the replay store unencodable.
    payload = json.dumps(_proof_claims(practice, jti="abcdefgh\ud800"))
    assert "\\ud800" in payload
    proof = _signed(_ANYONE, _proof_header(_ANYONE), payload)

    first = _token_request(practice, proof)
    again = _token_request(practice, proof)

    assert first.status_code == 200, first.text
    assert "already used" in problem_of(again, 401, "invalid-dpop-proof")["detail"]


def test_a_client_assertion_nested_too_deep_is_a_401(practice: PracticeClient) -> None:
    header = _b64(json.dumps({"alg": "ES256"}).encode())
    assertion = f"{header}.{_b64(b'[' * 6000)}.{_b64(b'x' * 64)}"

    response = _token_request(practice, practice.proof("POST", TOKEN_PATH), assertion=assertion)

    assert problem_of(response, 401, "invalid-client")["error"] == "invalid_client"
