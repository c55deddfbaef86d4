"""A DPoP proof's ``htu`` is the request URI as sent (RFC 9449, section 4.3), compared after the
normalisation of RFC 3986, section 6 — never the path the router decoded."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import APIRouter, FastAPI

from rempart.identity.deps import PracticeCaller, requires
from rempart.identity.permissions import Permission
from rempart.identity.tokens import normalise_htu, path_as_sent
from tests.support.practice_client import PracticeClient, dpop_proof

PROBLEM = "application/problem+json"


@pytest.fixture
def echo(app: FastAPI) -> FastAPI:
    router = APIRouter()

    @router.get("/api/v1/test-htu/{name}", dependencies=[requires(Permission.CARE_RIGHTS_CHECK_CREATE)])
    def named(name: str, caller: PracticeCaller) -> dict[str, str]:
        return {"name": name}

    app.include_router(router)
    return app


def _call(practice: PracticeClient, sent: str, signed: str) -> Any:
    token = practice.token()
    proof = dpop_proof(
        practice.dpop_key,
        method="GET",
        url=practice.identity.url_of(signed),
        iat=int(practice.identity.clock().timestamp()),
        access_token=token,
    )
    return practice.client.get(
        sent, headers={"Authorization": f"DPoP {token}", "DPoP": proof, "X-Acting-RPPS": practice.rpps}
    )


@pytest.mark.usefixtures("echo")
def test_a_path_with_an_encoded_space_is_accepted_when_signed_as_sent(practice: PracticeClient) -> None:
    response = practice.get("/api/v1/test-htu/a%20b")

    assert response.status_code == 200, response.text
    assert response.json() == {"name": "a b"}


@pytest.mark.usefixtures("echo")
@pytest.mark.parametrize("signed", ["/api/v1/test-htu/a%3Ab", "/api/v1/test-htu/a%3ab", "/api/v1/test-htu/%61%3Ab"])
def test_percent_encoding_is_normalised_before_the_comparison(practice: PracticeClient, signed: str) -> None:
    response = _call(practice, "/api/v1/test-htu/a%3Ab", signed)

    assert response.status_code == 200, response.text
    assert response.json() == {"name": "a:b"}


@pytest.mark.usefixtures("echo")
def test_an_encoded_hash_is_no_fragment(practice: PracticeClient) -> None:
    # Sent: /a%23b. Decoded, the router reads "a#b"; the proof for "/a" (the decoded path cut at
    # its "fragment") must not pass, and the proof for the URI as sent must.
    cut_short = _call(practice, "/api/v1/test-htu/a%23b", "/api/v1/test-htu/a")
    as_sent = _call(practice, "/api/v1/test-htu/a%23b", "/api/v1/test-htu/a%23b")

    assert cut_short.status_code == 401, cut_short.text
    assert cut_short.headers["content-type"] == PROBLEM
    assert cut_short.json()["type"].endswith("/invalid-dpop-proof")
    assert as_sent.status_code == 200, as_sent.text
    assert as_sent.json() == {"name": "a#b"}


@pytest.mark.usefixtures("echo")
def test_a_proof_for_the_decoded_path_is_refused(practice: PracticeClient) -> None:
    response = _call(practice, "/api/v1/test-htu/a%2Fb", "/api/v1/test-htu/a/b")

    assert response.status_code in (401, 404), response.text
    if response.status_code == 401:
        assert response.json()["type"].endswith("/invalid-dpop-proof")


@pytest.mark.parametrize(
    ("claimed", "expected"),
    [
        ("HTTPS://Rempart.Example:443/a%2fb?q=1#f", "https://rempart.example/a%2Fb"),
        ("http://rempart.example:80/%7Euser", "http://rempart.example/~user"),
        ("https://rempart.example:8443", "https://rempart.example:8443/"),
        ("https://rempart.example/a%23b", "https://rempart.example/a%23b"),
    ],
)
def test_normalisation_follows_rfc_3986(claimed: str, expected: str) -> None:
    assert normalise_htu(claimed) == expected


def test_the_path_as_sent_is_the_raw_path() -> None:
    assert path_as_sent({"raw_path": b"/a%20b?x=1", "path": "/a b"}) == "/a%20b"
    assert path_as_sent({"path": "/a b#c"}) == "/a%20b%23c"
