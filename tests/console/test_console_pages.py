"""The security console's pages: each answers a security operator, in French by default and in
English on request, and refuses anyone else with the readable 403 page; a kill switch turned on from
the page cuts the practice's API off, and turning it off restores it."""

from __future__ import annotations

import html
import uuid
from typing import Any

import pytest
from fastapi import FastAPI

from rempart.runtime import Runtime
from tests.console.conftest import Operator
from tests.portal.conftest import World

PAGES = {
    "/console": ("Alertes", "Alerts"),
    "/console/containments": ("En vigueur maintenant", "In force now"),
    "/console/kill-switches": ("Couper maintenant", "Switch it off now"),
    "/console/charts": ("Vérifications de droits par heure", "Rights checks per hour"),
    "/console/break-glass": ("Demandes et approbations", "Requests and approvals"),
    "/console/incidents": ("Incidents, les plus récents d'abord", "Incidents, newest first"),
    "/console/incidents/new": ("Ouvrir l'incident", "Open the incident"),
}


def text_of(response: Any) -> str:
    return html.unescape(response.text)


@pytest.mark.parametrize("path", list(PAGES))
def test_each_console_page_answers_an_operator_in_french_then_in_english(operator: Operator, path: str) -> None:
    french, english = PAGES[path]
    response = operator.french().page(path)
    assert response.status_code == 200, response.text
    assert french in text_of(response)
    assert 'lang="fr"' in response.text
    response = operator.english().page(path)
    assert response.status_code == 200
    assert english in text_of(response)
    assert 'lang="en"' in response.text


def test_the_console_is_refused_to_a_professional_with_the_403_page(world: World) -> None:
    counter = world.counter
    counter.page("/counter")
    for path in [*PAGES, "/console/alerts/rows", "/console/charts/checks.svg", f"/console/incidents/{uuid.uuid4()}"]:
        response = counter.user.client.get(path)
        assert response.status_code == 403, path
        assert "Votre rôle ne le permet pas" in text_of(response), path
    for path in ("/console/kill-switches", "/console/break-glass", "/console/incidents"):
        response = counter.form(path, {"scope": "channel", "target": "practice_api", "reason": "not mine to do"})
        assert response.status_code == 403, path


def test_the_console_sends_a_visitor_to_sign_in(app: FastAPI) -> None:
    from fastapi.testclient import TestClient

    with TestClient(app, base_url="https://localhost") as anonymous:
        response = anonymous.get("/console", follow_redirects=False)
    assert response.status_code in {303, 401}


def _check(world: World) -> int:
    patient = world.patients()[0]
    body = {**world.card_fields(patient), "birth_rank": int(world.card_fields(patient)["birth_rank"])}
    return int(world.counter.practice.post("/api/v1/rights-checks", json=body).status_code)


def test_a_kill_switch_set_from_the_page_cuts_the_practice_api_and_clearing_it_restores_it(
    app: FastAPI, runtime: Runtime, world: World, operator: Operator
) -> None:
    practice_id = str(world.counter.practice.practice_id)
    assert _check(world) == 200

    page = operator.page("/console/kill-switches")
    assert "Aucune coupure n'est active" in text_of(page)
    assert practice_id in page.text  # offered in the form's list, with the practice's name
    assert "Optique du Port" in page.text

    refused = operator.form("/console/kill-switches", {"scope": "practice", "target": practice_id, "reason": "x"})
    assert refused.status_code == 422
    assert "au moins 5 caractères" in text_of(refused)
    assert _check(world) == 200

    made = operator.form(
        "/console/kill-switches",
        {"scope": "practice", "target": practice_id, "reason": "Identifiants du cabinet hameçonnés"},
        follow_redirects=False,
    )
    assert made.status_code == 303, made.text
    assert made.headers["location"] == "/console/kill-switches?done=switch-on"
    assert _check(world) == 503

    again = operator.form(
        "/console/kill-switches", {"scope": "practice", "target": practice_id, "reason": "une deuxième fois"}
    )
    assert again.status_code == 422
    assert "déjà active" in text_of(again)

    page = operator.page("/console/kill-switches?done=switch-on")
    shown = text_of(page)
    assert "La coupure est active" in shown
    assert "Identifiants du cabinet hameçonnés" in shown
    assert "Optique du Port" in shown
    switch_id = page.text.split('id="switch-', 1)[1].split('"', 1)[0]

    no_reason = operator.form(f"/console/kill-switches/{switch_id}/clear", {"reason": ""})
    assert no_reason.status_code == 422
    assert _check(world) == 503
    cleared = operator.form(
        f"/console/kill-switches/{switch_id}/clear", {"reason": "Clés révoquées, accès rétabli"}, follow_redirects=False
    )
    assert cleared.status_code == 303
    assert _check(world) == 200
    assert "Aucune coupure n'est active" in text_of(operator.page("/console/kill-switches"))


def test_a_channel_switch_reads_in_words_and_an_unknown_target_is_a_field_error(operator: Operator) -> None:
    fax = {"scope": "channel", "target": "fax", "reason": "testing it"}
    bad = operator.english().form("/console/kill-switches", fax)
    assert bad.status_code == 422
    assert "This target does not exist" in text_of(bad)
    made = operator.form("/console/kill-switches", {"scope": "channel", "target": "back_office", "reason": "Drill"})
    assert made.status_code == 200  # followed to the list
    assert "The insurers' back office" in text_of(made)
