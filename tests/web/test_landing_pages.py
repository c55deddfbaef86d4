"""A readable page wherever a person can land: a suspended account or practice, a channel switched
off (with words for the counter, and others for the back office), an expired enrolment link, a card
locked after a wrong date of birth — each says what happened and what to do, in French and English,
with its status and no trace of the server's insides."""

from __future__ import annotations

import html
from collections.abc import Callable, Iterator

import pytest
from fastapi import APIRouter, FastAPI
from fastapi.testclient import TestClient

from rempart.app import create_app
from rempart.detection.errors import AccessSuspended, ChannelDisconnected, IdentityLocked
from rempart.errors import RempartError
from rempart.identity.accounts import EnrolmentRefused
from rempart.identity.errors import PracticeSuspended
from rempart.runtime import Runtime

LANDINGS: dict[str, RempartError] = {
    "suspended": AccessSuspended(),
    "practice-suspended": PracticeSuspended("suspended"),
    "counter-switched-off": ChannelDisconnected(offline_attestation=True),
    "back-office-switched-off": ChannelDisconnected(offline_attestation=False),
    "enrolment-expired": EnrolmentRefused("this enrolment link is not valid or has expired; ask for a new one"),
    "card-locked": IdentityLocked(retry_after_minutes=5),
}


def _raising(error: RempartError) -> Callable[[], None]:
    def land() -> None:
        raise error

    return land


@pytest.fixture
def browser(runtime: Runtime) -> Iterator[TestClient]:
    app: FastAPI = create_app(runtime)
    probe = APIRouter()
    for name, error in LANDINGS.items():
        probe.add_api_route(f"/probe/{name}", _raising(error), methods=["GET"])
    app.include_router(probe)
    with TestClient(app, base_url="http://localhost:8000", raise_server_exceptions=False) as client:
        yield client


@pytest.mark.parametrize(
    ("name", "status", "french", "english"),
    [
        ("suspended", 403, "Accès suspendu", "Access suspended"),
        ("practice-suspended", 403, "L'accès de votre cabinet est suspendu", "Your practice's access is suspended"),
        ("counter-switched-off", 503, "attestation signée du patient", "the patient's signed attestation"),
        ("back-office-switched-off", 503, "vous n'y êtes pour rien", "nothing you did caused it"),
        ("enrolment-expired", 401, "Demandez un nouveau lien", "Ask whoever invited you"),
        ("card-locked", 429, "vient d'être vérifiée avec une autre date de naissance", "another date of birth"),
    ],
)
def test_each_landing_says_what_happened_and_what_to_do(
    browser: TestClient, name: str, status: int, french: str, english: str
) -> None:
    response = browser.get(f"/probe/{name}")
    assert response.status_code == status
    assert response.headers["content-type"].startswith("text/html")
    assert french in html.unescape(response.text)
    browser.cookies.set("lang", "en")
    english_page = browser.get(f"/probe/{name}")
    assert english in html.unescape(english_page.text)
    assert "Traceback" not in english_page.text


def test_the_back_office_is_not_told_about_patients_and_an_expired_link_is_not_sent_to_sign_in(
    browser: TestClient,
) -> None:
    back_office = html.unescape(browser.get("/probe/back-office-switched-off").text)
    assert "attestation" not in back_office
    expired = browser.get("/probe/enrolment-expired").text
    assert 'href="/login"' not in expired
    assert "300 secondes" in browser.get("/probe/card-locked").text  # when to try again
