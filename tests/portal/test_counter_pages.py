"""The counter in the portal: a rights check answers with coverage and never an identity, every miss
reads the same, bad fields are pointed at and nothing is checked, the day's batch shows line numbers,
the access log says ``portal``, and a form without its CSRF token changes nothing."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import httpx2 as httpx
from fastapi import FastAPI
from sqlalchemy import func, select

from rempart.audit.models import AccessEvent, Channel, Outcome
from rempart.identity.permissions import Role
from rempart.members.validation import MemberRecord
from rempart.runtime import Runtime
from tests.e2e.scan import identities_in
from tests.factories import TODAY
from tests.portal.conftest import Counter, World, open_counter
from tests.support.portal import PortalUser

_CHECK_ID = re.compile(r"/quotes/new\?check=([0-9a-f-]{36})")


def leaks(world: World, body: str) -> list[str]:
    allowed = {TODAY + timedelta(days=k) for k in range(-30, 400)}
    allowed |= {r.contract_start for r in world.members} | {r.contract_end for r in world.members if r.contract_end}
    return identities_in(body.encode(), world.members, allowed_dates=allowed)


def shows_identity(body: str, patient: MemberRecord) -> bool:
    return (
        patient.nir in body
        or patient.birth_date.isoformat() in body
        or patient.birth_date.strftime("%d/%m/%Y") in body
        or re.search(rf"(?<!\w){re.escape(patient.last_name)}(?!\w)", body, re.IGNORECASE) is not None
    )


def access_events(runtime: Runtime, world: World) -> list[AccessEvent]:
    with runtime.sessions() as session:
        return list(
            session.scalars(
                select(AccessEvent)
                .where(
                    AccessEvent.practice_id == world.counter.practice.practice_id,
                    AccessEvent.operation.startswith("rights_check"),
                )
                .order_by(AccessEvent.id)
            )
        )


def send(counter: Counter, path: str, data: dict[str, str], **kwargs: Any) -> httpx.Response:
    """Post a form with the CSRF token the page last showed (like ``Counter.form``, for any counter)."""
    return counter.user.client.post(path, data={**data, "csrf_token": counter.user.csrf_token or ""}, **kwargs)


def english(counter: Counter) -> None:
    counter.user.client.cookies.set("lang", "en")


# -- the form --------------------------------------------------------------------------------------


def test_the_counter_form_is_in_french_with_labels_and_no_autocomplete(world: World) -> None:
    page = world.counter.page("/counter")

    assert page.status_code == 200
    assert '<html lang="fr">' in page.text
    assert "Vérifier les droits" in page.text
    assert "Numéro AMC" in page.text
    assert "Date de naissance" in page.text
    for name in ("amc_number", "member_number", "nir", "birth_date", "birth_rank", "care_date"):
        assert f'<label for="{name}">' in page.text, name
        assert re.search(rf'<input id="{name}" name="{name}"[^>]*autocomplete="off"', page.text), name
    assert f'value="{TODAY.isoformat()}"' in page.text  # the date of care defaults to today
    assert 'name="birth_rank" type="number" value="1"' in page.text
    assert "style=" not in page.text
    assert "<script>" not in page.text


def test_the_counter_form_in_english(world: World) -> None:
    english(world.counter)

    page = world.counter.page("/counter")

    assert '<html lang="en">' in page.text
    assert "Rights check" in page.text
    assert "AMC number" in page.text


def test_head_answers_where_get_does(world: World) -> None:
    assert world.counter.user.client.head("/counter").status_code == 200
    assert world.counter.user.client.head("/counter/batch").status_code == 200


# -- a hit -----------------------------------------------------------------------------------------


def test_a_hit_shows_the_coverage_card_and_no_identity(world: World) -> None:
    patient = world.patients()[0]

    answer = send(world.counter, "/counter", world.card_fields(patient))

    assert answer.status_code == 200, answer.text
    assert "Couvert" in answer.text
    assert "Optique" in answer.text
    assert "Tiers payant" in answer.text
    assert "de la BRSS" in answer.text
    assert "Plafond restant" in answer.text
    assert "Accord préalable nécessaire" in answer.text
    assert "€" in answer.text
    found = _CHECK_ID.search(answer.text)
    assert found is not None
    check_id = found.group(1)
    assert f"/approvals/new?check={check_id}" in answer.text
    assert f"/claims/new?check={check_id}" in answer.text
    assert check_id in answer.text  # the reference to cite
    assert not shows_identity(answer.text, patient)
    assert leaks(world, answer.text) == []


def test_a_hit_in_english(world: World) -> None:
    english(world.counter)
    patient = world.patients()[0]

    answer = send(world.counter, "/counter", world.card_fields(patient))

    assert answer.status_code == 200
    assert "Covered" in answer.text
    assert "Optics" in answer.text
    assert "Third-party payment" in answer.text
    assert "Make a quote" in answer.text
    assert "Ask a prior approval" in answer.text
    assert "Bill" in answer.text
    assert not shows_identity(answer.text, patient)


# -- misses ----------------------------------------------------------------------------------------


def test_every_miss_reads_the_same_whichever_field_was_wrong(app: FastAPI, runtime: Runtime, world: World) -> None:
    patient, other = world.patients()[:2]
    card = world.card_fields(patient)
    misses = {
        "unknown insurer": {**card, "amc_number": "99999999"},
        "unknown card": {**card, "member_number": "0999999999"},
        "wrong NIR": {**card, "nir": other.nir},
        "wrong date of birth": {**card, "birth_date": (patient.birth_date - timedelta(days=1)).isoformat()},
        "wrong birth rank": {**card, "birth_rank": str(patient.birth_rank + 1)},
    }
    # One practice per kind of miss, as in the API's test: a run of misses is what detection slows.
    answers = {
        name: send(open_counter(app, runtime, login=f"miss{n}@port.test"), "/counter", fields)
        for n, (name, fields) in enumerate(misses.items())
    }

    assert {name: r.status_code for name, r in answers.items()} == dict.fromkeys(misses, 404)
    # The same page apart from each session's own CSRF token and login.
    bodies = {
        re.sub(r'value="[^"]{20,}"', "", r.text).replace(f"miss{n}@port.test", "")
        for n, r in enumerate(answers.values())
    }
    assert len(bodies) == 1
    body = bodies.pop()
    assert "Aucun droit ne correspond" in body
    assert not shows_identity(body, patient)
    assert not shows_identity(body, other)
    assert card["member_number"] not in body
    assert "0999999999" not in body
    assert "99999999" not in body


# -- bad fields ------------------------------------------------------------------------------------


def test_a_bad_nir_is_pointed_at_and_nothing_is_checked(runtime: Runtime, world: World) -> None:
    patient = world.patients()[0]
    broken = patient.nir[:-2] + ("00" if patient.nir[-2:] != "00" else "01")

    answer = send(world.counter, "/counter", {**world.card_fields(patient), "nir": broken})

    assert answer.status_code == 422
    assert re.search(r'<input id="nir"[^>]*aria-describedby="nir-hint nir-error"[^>]*aria-invalid="true"', answer.text)
    assert 'id="nir-error"' in answer.text
    assert "NIR valide" in answer.text
    assert broken not in answer.text
    assert not shows_identity(answer.text, patient)
    assert access_events(runtime, world) == []


def test_bad_dates_and_card_are_pointed_at_field_by_field(runtime: Runtime, world: World) -> None:
    english(world.counter)
    patient = world.patients()[0]
    fields = {
        **world.card_fields(patient),
        "amc_number": "12AB",
        "birth_date": "31/02/1980",
        "care_date": (TODAY + timedelta(days=800)).isoformat(),
        "birth_rank": "0",
    }

    answer = send(world.counter, "/counter", fields)

    assert answer.status_code == 422
    for name in ("amc_number", "birth_date", "birth_rank"):
        assert re.search(rf'<input id="{name}"[^>]*aria-invalid="true"', answer.text), name
    assert "The AMC number is 8 to 10 digits" in answer.text
    assert 'value="12AB"' in answer.text  # the card is shown again to be corrected...
    assert patient.nir not in answer.text  # ... never the NIR
    assert access_events(runtime, world) == []

    late = send(world.counter, "/counter", {**world.card_fields(patient), "care_date": fields["care_date"]})
    assert late.status_code == 422
    assert re.search(r'<input id="care_date"[^>]*aria-invalid="true"', late.text)
    assert not shows_identity(late.text, patient)
    assert access_events(runtime, world) == []


# -- the access log and CSRF -------------------------------------------------------------------------


def test_the_access_log_records_the_portal_channel(runtime: Runtime, world: World) -> None:
    patient = world.patients()[0]
    send(world.counter, "/counter", world.card_fields(patient))
    send(world.counter, "/counter", {**world.card_fields(patient), "member_number": "0999999999"})

    events = access_events(runtime, world)

    assert [(e.operation, e.outcome, e.channel) for e in events] == [
        ("rights_check", Outcome.DISCLOSED, Channel.PRO_PORTAL),
        ("rights_check", Outcome.MISS, Channel.PRO_PORTAL),
    ]
    assert events[0].actor_id == world.counter.user.account_id


def test_a_form_without_its_csrf_token_is_refused_and_checks_nothing(runtime: Runtime, world: World) -> None:
    patient = world.patients()[0]
    client = world.counter.user.client

    single = client.post("/counter", data=world.card_fields(patient))
    wrong = client.post("/counter", data={**world.card_fields(patient), "csrf_token": "x" * 43})
    batch = client.post("/counter/batch", data={"lines": line_of(world, patient)})

    assert (single.status_code, wrong.status_code, batch.status_code) == (403, 403, 403)
    assert "jeton de sécurité" in single.text or "security token" in single.text
    assert not shows_identity(single.text, patient)
    assert access_events(runtime, world) == []


# -- the day's appointments --------------------------------------------------------------------------


def line_of(world: World, patient: MemberRecord, **overrides: str) -> str:
    fields = {**world.card_fields(patient), **overrides}
    return ";".join(fields[k] for k in ("amc_number", "member_number", "nir", "birth_date", "birth_rank"))


def test_a_pasted_batch_answers_per_line_number_and_never_an_identity(runtime: Runtime, world: World) -> None:
    a, b = world.patients()[:2]
    lines = "\n".join(
        [
            "amc;member;nir;birth_date;rank",
            line_of(world, a),
            line_of(world, a, member_number="0999999999"),
            "",
            line_of(world, b, birth_date=b.birth_date.strftime("%d/%m/%Y")),
        ]
    )

    form = world.counter.page("/counter/batch")
    assert form.status_code == 200
    assert "Rendez-vous du jour" in form.text
    answer = send(world.counter, "/counter/batch", {"lines": lines, "care_date": TODAY.isoformat()})

    assert answer.status_code == 200, answer.text
    rows = re.findall(r'<tr>\s*<th scope="row">(\d+)</th>\s*<td>(.*?)</td>', answer.text, re.S)
    assert [(n, "Aucun droit" in r) for n, r in rows] == [("2", False), ("3", True), ("5", False)]
    assert len(set(_CHECK_ID.findall(answer.text))) == 2
    for patient in (a, b):
        assert not shows_identity(answer.text, patient)
    assert leaks(world, answer.text) == []
    events = access_events(runtime, world)
    assert [(e.operation, e.outcome, e.channel) for e in events] == [
        ("rights_check_batch", Outcome.DISCLOSED, Channel.PRO_PORTAL),
        ("rights_check_batch", Outcome.MISS, Channel.PRO_PORTAL),
        ("rights_check_batch", Outcome.DISCLOSED, Channel.PRO_PORTAL),
    ]


def test_an_uploaded_batch_file_in_english(world: World) -> None:
    english(world.counter)
    a, b = world.patients()[:2]
    content = f"{line_of(world, a)}\r\n{line_of(world, b)}\r\n".encode()

    world.counter.page("/counter/batch")
    answer = send(
        world.counter,
        "/counter/batch",
        {"lines": "", "care_date": ""},
        files={"file": ("today.csv", content, "text/csv")},
    )

    assert answer.status_code == 200, answer.text
    assert "2 of 2 lines covered." in answer.text
    assert "Line 1" in answer.text
    assert "Line 2" in answer.text
    assert not shows_identity(answer.text, a)
    assert not shows_identity(answer.text, b)


def test_a_batch_with_a_bad_line_or_too_many_lines_checks_nothing(runtime: Runtime, world: World) -> None:
    a = world.patients()[0]
    broken = a.nir[:-2] + ("00" if a.nir[-2:] != "00" else "01")

    bad = send(world.counter, "/counter/batch", {"lines": f"{line_of(world, a)}\n{line_of(world, a, nir=broken)}"})
    many = send(world.counter, "/counter/batch", {"lines": "\n".join([line_of(world, a)] * 51)})
    empty = send(world.counter, "/counter/batch", {"lines": "  \n"})

    assert (bad.status_code, many.status_code, empty.status_code) == (422, 422, 422)
    assert "Ligne 2" in bad.text
    assert "NIR valide" in bad.text
    assert "Ligne 1" not in bad.text
    assert broken not in bad.text
    assert not shows_identity(bad.text, a)
    assert "50 lignes au plus" in many.text
    assert access_events(runtime, world) == []


def test_checks_are_counted_once_per_patient_in_the_access_log(runtime: Runtime, world: World) -> None:
    patients = world.patients()[:3]
    for patient in patients:
        assert send(world.counter, "/counter", world.card_fields(patient)).status_code == 200
    with runtime.sessions() as session:
        counted = session.scalar(
            select(func.count())
            .select_from(AccessEvent)
            .where(
                AccessEvent.practice_id == world.counter.practice.practice_id,
                AccessEvent.channel == Channel.PRO_PORTAL,
                AccessEvent.operation == "rights_check",
            )
        )
    assert counted == 3


# -- kill switches ---------------------------------------------------------------------------------


def test_when_the_portal_is_switched_off_the_counter_says_how_care_goes_on(
    app: FastAPI, runtime: Runtime, world: World
) -> None:
    patient = world.patients()[0]
    assert send(world.counter, "/counter", world.card_fields(patient)).status_code == 200
    operator = PortalUser.invited(app, runtime, login="vigie@rempart.test", roles={Role.SECURITY_OPERATOR})
    cut = operator.post(
        "/api/v1/kill-switches",
        json={"scope": "channel", "target": "professional_portal", "reason": "Portal logins phished"},
    )
    assert cut.status_code == 201, cut.text
    world.clock.advance(seconds=2)  # past the switches' cache

    refused = send(world.counter, "/counter", world.card_fields(patient))
    api = world.counter.practice.post("/api/v1/rights-checks", json={**world.card_fields(patient), "birth_rank": 1})

    assert refused.status_code == 503
    assert "Ce service est coupé pour le moment" in refused.text
    assert "503 channel-disconnected" in refused.text
    assert "/quotes/new?check=" not in refused.text
    assert not shows_identity(refused.text, patient)
    # The check before the switch, nothing after.
    assert [e.channel for e in access_events(runtime, world)] == [Channel.PRO_PORTAL, Channel.PRO_API]
    # Practice software is another channel: it still answers.
    assert api.status_code == 200, api.text
