"""An incident in the console: opened by hand, its measures written, contained; once its scope's
facts are computed from the access log, the people affected per insurer, what is still missing for
each, and the processor's notice recorded from the page."""

from __future__ import annotations

import html
import re
import uuid
from datetime import timedelta
from typing import Any

from fastapi import FastAPI

from rempart.incidents.facts import ScopeSet
from rempart.incidents.service import do_add_scope, do_compute_facts
from rempart.runtime import Runtime
from tests.console.conftest import Operator
from tests.portal.conftest import World
from tests.support.clock import FakeClock


def text_of(response: Any) -> str:
    return html.unescape(response.text)


def test_an_incident_opened_by_hand_is_written_up_contained_and_its_notice_recorded(
    app: FastAPI, runtime: Runtime, world: World, clock: FakeClock, operator: Operator
) -> None:
    start = clock()
    for patient in world.patients()[:2]:
        fields: dict[str, Any] = world.card_fields(patient)
        fields["birth_rank"] = int(fields["birth_rank"])
        assert world.counter.practice.post("/api/v1/rights-checks", json=fields).status_code == 200
        clock.advance(seconds=30)

    operator.page("/console/incidents/new")
    opened = operator.form(
        "/console/incidents",
        {"title": "Cabinet hameçonné", "contact": "dpo@rempart.test", "nature": ["confidentiality", "integrity"]},
        follow_redirects=False,
    )
    assert opened.status_code == 303
    path = opened.headers["location"]
    incident_id = uuid.UUID(path.rsplit("/", 1)[1])
    page = text_of(operator.page(path))
    assert "Intégrité (données modifiées)" in page
    assert "les mesures prises" in page

    updated = operator.form(
        path,
        {
            "measures_taken": "Coupure du cabinet\nRévocation des clés du logiciel",
            "measures_proposed": "Passkeys pour tout le cabinet",
            "delay_reason": "",
            "status": "contained",
            "note": "Le cabinet a confirmé l'hameçonnage.",
        },
    )
    assert updated.status_code == 200
    shown = text_of(updated)
    assert "L'incident a été mis à jour." in shown
    assert "Maîtrisé" in shown
    assert "Révocation des clés du logiciel" in shown
    assert "les mesures prises" not in shown
    assert "Le cabinet a confirmé l'hameçonnage." in shown  # the timeline's note

    # The scope and its facts (through the API or the CLI in real life; the services here).
    with runtime.sessions() as session:
        do_add_scope(
            session,
            incident_id=incident_id,
            scope=ScopeSet(
                since=start - timedelta(minutes=1),
                until=clock(),
                practice_ids=frozenset({world.counter.practice.practice_id}),
                label="Optique du Port",
            ),
            operator_id=operator.user.account_id,
            now=clock(),
        )
        do_compute_facts(session, incident_id=incident_id, operator_id=operator.user.account_id, now=clock())

    page = operator.page(path)
    shown = text_of(page)
    assert world.insurer.name in shown
    assert "2 personnes et 2 enregistrements au total" in shown
    assert "l'information de l'organisme par le sous-traitant" in shown
    notice = re.search(r'action="(/console/incidents/[0-9a-f-]+/insurers/[0-9a-f-]+/notice)"', page.text)
    assert notice
    sent = operator.form(notice.group(1))
    shown = text_of(sent)
    assert "enregistrée comme envoyée" in shown
    assert "l'information de l'organisme par le sous-traitant" not in shown
    assert "la notification de l'art. 33 déposée par l'organisme" in shown

    closed = operator.form(path, {"status": "closed"})
    assert "Incident clos" in text_of(closed)
    assert 'id="incident-update"' not in closed.text  # a closed incident is not edited
    again = operator.form(path, {"status": "open", "note": "trop tard"})
    assert again.status_code == 409
