"""Every problem type resolves to a page: ``/problems/<slug>``, relative to the request's URL, says
in French and in English what the problem means and what to do, to anyone, without signing in; the
catalogue explains exactly the slugs the code answers with; an unknown slug is a readable 404 page;
the FHIR facade names the same slugs in a code system of its own, absolute as FHIR wants it."""

from __future__ import annotations

import html
from collections.abc import Iterator
from datetime import UTC, datetime
from urllib.parse import urljoin

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from fhir.resources.R4B.codesystem import CodeSystem
from fhir.resources.R4B.operationoutcome import OperationOutcome

from rempart.app import create_app
from rempart.errors import PROBLEM_BASE
from rempart.identity.deps import is_public
from rempart.runtime import Runtime
from rempart.web import i18n
from rempart.web.fhir_wire import PROBLEM_TYPES_SYSTEM
from rempart.web.problem_catalogue import DOMAIN_WORDS, EXPLANATIONS
from tests.support.browser import Tab, chromium, needs_chromium, portal_server
from tests.support.clock import FakeClock
from tests.support.routes import api_routes
from tests.test_problem_types_doc import _tool as problem_types_tool


@pytest.fixture(scope="module")
def code_types() -> dict[str, list[tuple[int, str]]]:
    """slug → each (status, title) the code answers with, as the guide's table lists them."""
    found: dict[str, list[tuple[int, str]]] = {}
    for problem in problem_types_tool().problem_types():  # imports every module of the package
        found.setdefault(problem.slug, []).append((problem.status, problem.title))
    return found


@pytest.fixture
def app(runtime: Runtime) -> FastAPI:
    return create_app(runtime)


@pytest.fixture
def visitor(app: FastAPI) -> Iterator[TestClient]:
    """Someone with no session, no token and no cookie."""
    with TestClient(app, base_url="http://localhost:8000", raise_server_exceptions=False) as client:
        yield client


def _french(message: str) -> str:
    return i18n.translations("fr").gettext(message)


# -- the catalogue and the code -------------------------------------------------------------------


def test_the_catalogue_explains_every_slug_the_code_has_and_no_other(
    code_types: dict[str, list[tuple[int, str]]],
) -> None:
    assert len(code_types) > 60
    assert sorted(set(code_types) - set(EXPLANATIONS)) == [], "slugs with no explanation: add them to the catalogue"
    assert sorted(set(EXPLANATIONS) - set(code_types)) == [], "explanations of slugs the code no longer has"


def test_each_explanation_is_its_own() -> None:
    meanings = [said.meaning for said in EXPLANATIONS.values()]
    assert len(set(meanings)) == len(meanings)
    for slug, said in EXPLANATIONS.items():
        assert len(said.meaning) > 30, slug
        assert len(said.action) > 15, slug


def test_every_word_of_the_pages_has_its_french(code_types: dict[str, list[tuple[int, str]]]) -> None:
    # tests/web/test_i18n.py checks the words marked in the sources; the titles come from the
    # error classes, unmarked, and are shown translated here.
    words = {title for kinds in code_types.values() for _status, title in kinds}
    words |= {m for said in EXPLANATIONS.values() for m in (said.meaning, said.action, *said.more)}
    words |= set(DOMAIN_WORDS.values())
    assert sorted(w for w in words if _french(w) == w and w.upper() != w) == []


def test_the_uniform_miss_says_it_is_deliberately_uniform() -> None:
    said = EXPLANATIONS["no-matching-rights"].meaning
    assert "deliberately the same whatever the reason" in said


# -- the pages ------------------------------------------------------------------------------------


def test_every_slug_has_a_page_of_its_own_in_french_and_in_english(
    visitor: TestClient, code_types: dict[str, list[tuple[int, str]]]
) -> None:
    for language in ("fr", "en"):
        visitor.cookies.set("lang", language)
        say = _french if language == "fr" else str
        for slug, kinds in code_types.items():
            page = visitor.get(PROBLEM_BASE + slug)
            assert page.status_code == 200, slug
            assert page.headers["content-type"].startswith("text/html"), slug
            text = html.unescape(page.text)
            assert f'<html lang="{language}">' in text
            said = EXPLANATIONS[slug]
            assert say(said.meaning) in text, (language, slug)
            assert say(said.action) in text, (language, slug)
            for status, title in kinds:
                assert f"<td>{status}</td><td>{say(title)}</td>" in text, (language, slug, status)


def test_a_slug_several_parts_share_lists_each_status_and_title(visitor: TestClient) -> None:
    visitor.cookies.set("lang", "en")
    text = html.unescape(visitor.get(PROBLEM_BASE + "step-up-required").text)
    assert "<td>401</td><td>Confirm with your passkey</td>" in text
    assert "<td>403</td><td>Confirm it is you</td>" in text
    conflict = html.unescape(visitor.get(PROBLEM_BASE + "conflict").text)
    assert '<h1 id="problem-title">Conflict</h1>' in conflict  # the platform's own title heads the page
    assert "The claims to pay changed since the request" in conflict


def test_the_index_links_every_type(visitor: TestClient, code_types: dict[str, list[tuple[int, str]]]) -> None:
    index = visitor.get(PROBLEM_BASE)
    assert index.status_code == 200
    assert "Types de problèmes" in html.unescape(index.text)
    for slug in code_types:
        assert f'href="{PROBLEM_BASE}{slug}"' in index.text
    assert visitor.get("/problems", follow_redirects=True).url.path == PROBLEM_BASE


def test_a_real_problem_s_type_resolves_against_the_request_url_to_its_page(visitor: TestClient) -> None:
    visitor.cookies.set("lang", "en")
    for path, slug in (
        ("/api/v1/practice/security-events", "unauthenticated"),  # an API route, without credentials
        ("/api/v1/nothing-here", "not-found"),
    ):
        answer = visitor.get(path)
        assert answer.headers["content-type"] == "application/problem+json"
        problem_type = answer.json()["type"]
        assert problem_type == PROBLEM_BASE + slug
        resolved = urljoin(str(answer.url), problem_type)
        assert resolved == f"http://localhost:8000/problems/{slug}"
        page = visitor.get(resolved)
        assert page.status_code == 200
        assert html.unescape(page.text).count(EXPLANATIONS[slug].meaning) == 1


def test_an_unknown_slug_is_a_readable_404_page(visitor: TestClient) -> None:
    for slug in ("no-such-problem", "<img src=x onerror=alert(1)>"):
        page = visitor.get(PROBLEM_BASE + slug)
        assert page.status_code == 404
        assert page.headers["content-type"].startswith("text/html")
        assert "Type de problème inconnu" in html.unescape(page.text)
        assert f'href="{PROBLEM_BASE}"' in page.text
        assert "<img src=x" not in page.text  # the slug is shown escaped
        assert "Traceback" not in page.text
    visitor.cookies.set("lang", "en")
    assert "Unknown problem type" in visitor.get(PROBLEM_BASE + "no-such-problem").text


def test_the_pages_are_public_and_keep_the_security_headers(app: FastAPI, visitor: TestClient) -> None:
    routes = [r for r in api_routes(app) if r.path.startswith(PROBLEM_BASE)]
    assert {r.path for r in routes} == {PROBLEM_BASE, PROBLEM_BASE + "{slug}"}
    assert all(is_public(r.original) for r in routes)
    page = visitor.get(PROBLEM_BASE + "slow-down")
    assert page.status_code == 200
    assert page.headers["content-security-policy"].startswith("default-src 'none'")
    assert page.headers["x-frame-options"] == "DENY"
    assert visitor.head(PROBLEM_BASE + "slow-down").status_code == 200


def test_software_may_ask_for_the_words_as_json(visitor: TestClient) -> None:
    answer = visitor.get(PROBLEM_BASE + "slow-down", headers={"accept": "application/json"})
    assert answer.status_code == 200
    body = answer.json()
    assert body["type"] == PROBLEM_BASE + "slow-down"
    assert body["problems"] == [{"status": 429, "title": {"fr": "Trop de vérifications", "en": "Too many checks"}}]
    assert body["meaning"]["en"] == EXPLANATIONS["slow-down"].meaning
    assert body["meaning"]["fr"] == _french(EXPLANATIONS["slow-down"].meaning)
    every = visitor.get(PROBLEM_BASE, headers={"accept": "application/json"}).json()["problems"]
    assert {p["slug"] for p in every} == set(EXPLANATIONS)
    unknown = visitor.get(PROBLEM_BASE + "nope", headers={"accept": "application/json"})
    assert unknown.status_code == 404
    assert unknown.json()["known"] is False


# -- the FHIR facade ------------------------------------------------------------------------------


def test_an_operation_outcome_codes_the_slug_in_an_absolute_code_system_it_serves(visitor: TestClient) -> None:
    answer = visitor.get("/fhir/Nothing")
    outcome = OperationOutcome.model_validate(answer.json())
    issue = outcome.issue[0]
    assert issue.details is not None
    assert issue.details.coding is not None
    coding = issue.details.coding[0]
    assert coding.system == PROBLEM_TYPES_SYSTEM
    assert str(coding.system).startswith("https://")  # a Coding's system is an absolute URI
    assert coding.code == "not-found"

    served = visitor.get("/fhir/CodeSystem/" + PROBLEM_TYPES_SYSTEM.rsplit("/", 1)[-1])
    assert served.status_code == 200
    system = CodeSystem.model_validate(served.json())
    assert system.url == PROBLEM_TYPES_SYSTEM
    assert {concept.code for concept in system.concept or []} == set(EXPLANATIONS)


# -- in a browser ---------------------------------------------------------------------------------


@pytest.mark.browser
@needs_chromium
def test_the_pages_in_chromium_are_accessible(runtime: Runtime) -> None:
    if runtime.engine.dialect.name != "sqlite":
        pytest.skip("the browser test runs once, on SQLite")
    with (
        portal_server(runtime, FakeClock(datetime(2026, 7, 14, 9, 30, tzinfo=UTC))) as (_app, origin),
        chromium() as browser,
    ):
        tab = Tab.open(browser, origin, name="problems")
        page = tab.page
        try:
            tab.goto(PROBLEM_BASE)
            tab.look("index")
            page.click(f"a[href='{PROBLEM_BASE}no-matching-rights']")
            page.wait_for_url(f"**{PROBLEM_BASE}no-matching-rights")
            assert "volontairement la même" in tab.text()
            tab.look("no-matching-rights")
            page.click("a[hreflang=en]")
            page.wait_for_selector("html[lang=en]")
            assert "deliberately the same" in tab.text()
            tab.look("no-matching-rights-in-english")
            assert tab.console_errors == []  # nothing the CSP refused, nothing missing
            tab.goto(PROBLEM_BASE + "no-such-problem")
            tab.look("unknown")
        except Exception:
            tab.shot("failure")
            raise
    bad = {name: found for name, found in tab.violations.items() if found}
    assert not bad, f"axe-core: serious or critical violations: {bad}"
