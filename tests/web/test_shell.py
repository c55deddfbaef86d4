"""The portal's shell as a browser meets it: pages in French by default and in English on request,
problems as readable pages with their status, HEAD wherever GET is, a favicon, no caching of pages,
and a person who is not signed in sent to the login page and back."""

from __future__ import annotations

import html
from collections.abc import Iterator

import pytest
from fastapi import APIRouter, FastAPI
from fastapi.testclient import TestClient

from rempart.app import create_app
from rempart.errors import RempartError
from rempart.identity.sessions import StepUpRequired
from rempart.runtime import Runtime
from rempart.web.pages import PROBLEM_WORDS
from tests.support.routes import api_routes


@pytest.fixture
def portal_app(runtime: Runtime) -> FastAPI:
    app = create_app(runtime)
    probe = APIRouter()

    class Hurried(RempartError):
        status = 429
        slug = "slow-down"
        title = "Slow down"

    @probe.get("/probe/slow")
    def slow() -> None:
        raise Hurried("too fast", extra={"retry_after": 42})

    @probe.get("/probe/broken")
    def broken() -> None:
        raise RuntimeError("SELECT nir FROM beneficiaries -- 185057800608436")

    @probe.get("/probe/fresh-passkey")
    def fresh_passkey() -> None:
        raise StepUpRequired("confirm with your passkey to continue (step-up)")

    @probe.post("/probe/form")
    def form(amount: int) -> None:  # a query parameter: sending none is a 422
        return None

    app.include_router(probe)
    return app


@pytest.fixture
def browser(portal_app: FastAPI) -> Iterator[TestClient]:
    with TestClient(portal_app, base_url="http://localhost:8000", raise_server_exceptions=False) as client:
        yield client


def test_the_start_page_speaks_french_first_and_english_on_request(browser: TestClient) -> None:
    french = browser.get("/")
    assert french.status_code == 200
    assert french.headers["content-type"].startswith("text/html")
    assert '<html lang="fr">' in french.text
    assert "Se connecter avec une passkey" in french.text
    assert 'href="/lang/en?next=/"' in french.text

    switched = browser.get("/lang/en?next=/", follow_redirects=False)
    assert switched.status_code == 303
    assert switched.headers["location"] == "/"
    assert "lang=en" in switched.headers["set-cookie"]
    english = browser.get("/")
    assert '<html lang="en">' in english.text
    assert "Sign in with a passkey" in english.text
    assert 'href="/lang/fr?next=/"' in english.text


def test_the_language_switch_goes_back_only_to_this_site(browser: TestClient) -> None:
    for elsewhere in ("https://evil.example/", "//evil.example/", "/\\evil.example", "javascript:alert(1)"):
        response = browser.get("/lang/en", params={"next": elsewhere}, follow_redirects=False)
        assert response.status_code == 303
        assert response.headers["location"] == "/"
    unknown = browser.get("/lang/xx?next=/login", follow_redirects=False)
    assert unknown.headers["location"] == "/login"
    assert "set-cookie" not in unknown.headers


@pytest.mark.parametrize(
    ("path", "status", "french", "english"),
    [
        ("/nothing-here", 404, "Cette page n'existe pas", "This page does not exist"),
        ("/probe/slow", 429, "Veuillez ralentir", "Please slow down"),
        ("/probe/broken", 500, "Un problème est survenu de notre côté", "Something went wrong on our side"),
    ],
)
def test_problems_are_pages_with_their_status_in_both_languages(
    browser: TestClient, path: str, status: int, french: str, english: str
) -> None:
    response = browser.get(path)
    assert response.status_code == status
    assert response.headers["content-type"].startswith("text/html")
    assert french in html.unescape(response.text)
    browser.cookies.set("lang", "en")
    response = browser.get(path)
    assert response.status_code == status
    assert english in response.text
    for secret in ("Traceback", "SELECT", "185057800608436"):
        assert secret not in response.text


def test_a_slow_down_page_says_when_to_try_again(browser: TestClient) -> None:
    response = browser.get("/probe/slow")
    assert response.headers["retry-after"] == "42"
    assert "42 secondes" in response.text


def test_a_problem_page_s_reference_links_to_the_page_that_explains_it(browser: TestClient) -> None:
    response = browser.get("/probe/slow")
    assert '<a href="/problems/slow-down"><code>429 slow-down</code></a>' in response.text
    explained = browser.get("/problems/slow-down")
    assert explained.status_code == 200
    assert explained.headers["content-type"].startswith("text/html")
    # A path that does not exist is the generic not-found, which has its page too.
    missing = browser.get("/no-such-page")
    assert '<a href="/problems/not-found"><code>404 not-found</code></a>' in missing.text


def test_a_form_the_server_cannot_read_is_a_400_or_422_page(browser: TestClient) -> None:
    response = browser.post("/probe/form")
    assert response.status_code == 422
    assert "Le formulaire n'est pas valide" in html.unescape(response.text)
    wrong_method = browser.put("/login")
    assert wrong_method.status_code == 405
    assert "Cette page n'accepte pas cette action" in html.unescape(wrong_method.text)


def test_api_paths_keep_answering_problem_json(browser: TestClient) -> None:
    response = browser.get("/api/v1/nothing-here")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"


def test_a_page_asked_for_without_a_session_sends_to_the_login_page_and_back(browser: TestClient) -> None:
    response = browser.get("/account", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=%2Faccount"
    login = browser.get(response.headers["location"])
    assert 'data-next="/account"' in login.text


def test_a_page_that_needs_a_fresh_passkey_check_sends_to_the_step_up_page_and_back(browser: TestClient) -> None:
    response = browser.get("/probe/fresh-passkey", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/step-up?next=%2Fprobe%2Ffresh-passkey"


def test_every_page_answers_head_like_get(browser: TestClient, portal_app: FastAPI) -> None:
    pages = [
        r
        for r in api_routes(portal_app)
        if "GET" in r.methods and not r.path.startswith(("/api/", "/probe", "/fhir", "/.well-known"))
    ]
    assert len(pages) >= 5
    for route in pages:
        assert "HEAD" in route.methods, f"{route.path} answers GET but not HEAD: declare it with PageRouter.page"
    for path in ("/", "/login", "/enrol", "/favicon.ico", "/static/portal.css"):
        get, head = browser.get(path), browser.head(path)
        assert head.status_code == get.status_code == 200
        assert head.content == b""
        assert head.headers["content-type"] == get.headers["content-type"]


def test_the_favicon_and_static_files_are_served_and_cacheable_pages_are_not(browser: TestClient) -> None:
    icon = browser.get("/favicon.ico")
    assert icon.headers["content-type"] == "image/svg+xml"
    assert icon.content.startswith(b"<svg")
    assert "max-age" in icon.headers["cache-control"]
    assert browser.get("/static/portal.js").headers["content-type"].startswith("text/javascript")
    assert browser.get("/static/../app.py").status_code == 404
    assert browser.get("/static/nothing.css").status_code == 404
    page = browser.get("/login")
    assert page.headers["cache-control"] == "no-store"
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert "unsafe-inline" not in page.headers["content-security-policy"]


def test_every_problem_the_portal_names_has_words_in_french(browser: TestClient) -> None:
    from rempart.web import i18n

    for title, advice in PROBLEM_WORDS.values():
        with i18n.speaking("fr"):
            assert i18n.gettext(title) != title, title
            assert i18n.gettext(advice) != advice, advice
