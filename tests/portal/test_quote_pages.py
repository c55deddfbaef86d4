"""Quotes in the portal: lines of optics with 100 % Santé class A and B priced for a checked patient,
the same amounts as the API's, in euros in either language; bad lines pointed at and nothing priced;
a check of another practice reads like a missing one; a form without its CSRF token changes nothing."""

from __future__ import annotations

import re
import uuid
from typing import Any

import httpx2 as httpx
from fastapi import FastAPI
from sqlalchemy import select

from rempart.audit.models import AccessEvent, Channel, Outcome
from rempart.runtime import Runtime
from rempart.web import i18n
from tests.factories import TODAY
from tests.portal.conftest import Counter, World, open_counter

_CHECK_ID = re.compile(r"/quotes/new\?check=([0-9a-f-]{36})")

# A frame (class B, free price) and two lenses (class A, at their regulated price), in euros.
GLASSES = [
    {"act_code": "2210546", "quantity": "1", "unit_price": "150,00", "brss": "0,05", "sante_100_class": "B"},
    {
        "act_code": "2203240",
        "quantity": "2",
        "unit_price": "32,50",
        "brss": "0,05",
        "sante_100_class": "A",
        "regulated_price": "32,50",
    },
]


def send(counter: Counter, path: str, data: dict[str, str], **kwargs: Any) -> httpx.Response:
    return counter.user.client.post(path, data={**data, "csrf_token": counter.user.csrf_token or ""}, **kwargs)


def checked(world: World, counter: Counter | None = None) -> str:
    counter = counter or world.counter
    answer = send(counter, "/counter", world.card_fields(world.patients()[0]))
    assert answer.status_code == 200, answer.text
    found = _CHECK_ID.search(answer.text)
    assert found is not None
    return found.group(1)


def quote_form(check_id: str, lines: list[dict[str, str]], care_domain: str = "OPTI") -> dict[str, str]:
    """The form as the approval and claim forms name its fields: ``act_code_1``, ``unit_price_1``..."""
    fields = {"check_id": check_id, "care_date": TODAY.isoformat(), "care_domain": care_domain}
    for row in range(1, 5):  # every row as the page fills it in: one unit at the usual AMO rate
        fields |= {f"quantity_{row}": "1", f"amo_rate_{row}": "60"}
    for row, line in enumerate(lines, start=1):
        fields |= {f"{k}_{row}": v for k, v in line.items()}
    return fields


def api_lines(lines: list[dict[str, str]]) -> list[dict[str, Any]]:
    def cents(text: str) -> int:
        return int(text.replace(",", ""))

    return [
        {
            "care_domain": "OPTI",
            "act_code": line["act_code"],
            "care_date": TODAY.isoformat(),
            "quantity": int(line["quantity"]),
            "unit_price_cents": cents(line["unit_price"]),
            "brss_cents": cents(line["brss"]),
            "amo_rate_pct": 60,
            "sante_100_class": line.get("sante_100_class"),
            "regulated_price_cents": cents(line["regulated_price"]) if "regulated_price" in line else None,
        }
        for line in lines
    ]


def quote_events(runtime: Runtime, world: World) -> list[AccessEvent]:
    with runtime.sessions() as session:
        return list(
            session.scalars(
                select(AccessEvent)
                .where(AccessEvent.practice_id == world.counter.practice.practice_id, AccessEvent.operation == "quote")
                .order_by(AccessEvent.id)
            )
        )


def test_the_quote_form_has_four_lines_for_the_check_in_french(world: World) -> None:
    check_id = checked(world)

    page = world.counter.page(f"/quotes/new?check={check_id}")

    assert page.status_code == 200
    assert '<html lang="fr">' in page.text
    assert f'name="check_id" value="{check_id}"' in page.text
    assert '<select id="care_domain" name="care_domain"' in page.text
    assert "Prix unitaire (€)" in page.text
    for row in range(1, 5):
        assert f'id="unit_price_{row}" name="unit_price_{row}"' in page.text
        assert f'id="amo_rate_{row}" name="amo_rate_{row}" value="60"' in page.text
    assert "Classe 100 % Santé" in page.text
    assert "Classe A" in page.text
    assert "Classe B" in page.text
    assert '<option value="OPTI" selected>Optique</option>' in page.text
    assert 'value="PHAR"' not in page.text  # an optician quotes optics only
    assert "style=" not in page.text


def test_the_menu_s_quote_page_asks_for_the_check_reference(world: World) -> None:
    page = world.counter.page("/quotes/new")

    assert page.status_code == 200
    assert 'name="check_id" value=""' in page.text


def test_a_quote_shows_each_line_s_shares_in_euros_as_the_api_computes_them(runtime: Runtime, world: World) -> None:
    check_id = checked(world)
    world.counter.page(f"/quotes/new?check={check_id}")

    answer = send(world.counter, "/quotes", quote_form(check_id, GLASSES))
    api = world.counter.practice.post("/api/v1/quotes", json={"check_id": check_id, "lines": api_lines(GLASSES)})

    assert answer.status_code == 200, answer.text
    assert api.status_code == 200, api.text
    expected = api.json()
    with i18n.speaking("fr"):
        for line in expected["lines"]:
            row = re.search(rf'<th scope="row">{line["line_no"]}</th>(.*?)</tr>', answer.text, re.S)
            assert row is not None
            cells = re.findall(r'<td class="amount">([^<]*)</td>', row.group(1))
            assert cells == [
                str(line["quantity"]),
                i18n.euros(line["price_cents"]),
                i18n.euros(line["amo_cents"]),
                i18n.euros(line["insurer_cents"]),
                i18n.euros(line["remainder_cents"]),
            ]
        assert i18n.euros(expected["remainder_cents"]) in answer.text
        for ceiling in expected["ceilings"]:
            assert i18n.euros(ceiling["remaining_after_cents"]) in answer.text
    assert "Part complémentaire" in answer.text
    assert "Reste à charge" in answer.text
    assert "Plafond restant après" in answer.text
    assert f"/approvals/new?check={check_id}" in answer.text
    assert f"/claims/new?check={check_id}" in answer.text
    for patient in world.members:
        assert patient.nir not in answer.text
        assert patient.birth_date.isoformat() not in answer.text
    # The portal's quote is on record like the API's, on its own channel.
    events = quote_events(runtime, world)
    assert [(e.outcome, e.channel) for e in events] == [
        (Outcome.DISCLOSED, Channel.PRO_PORTAL),
        (Outcome.DISCLOSED, Channel.PRO_API),
    ]


def test_a_quote_in_english(world: World) -> None:
    world.counter.user.client.cookies.set("lang", "en")
    check_id = checked(world)

    answer = send(world.counter, "/quotes", quote_form(check_id, GLASSES[:1]))

    assert answer.status_code == 200, answer.text
    assert '<html lang="en">' in answer.text
    assert "Complementary share" in answer.text
    assert "Patient's remainder" in answer.text
    assert "€150.00" in answer.text


def test_bad_lines_are_pointed_at_and_nothing_is_priced(runtime: Runtime, world: World) -> None:
    check_id = checked(world)
    lines = [
        {**GLASSES[0], "unit_price": "cent euros"},
        {**GLASSES[1], "regulated_price": ""},
        {**GLASSES[0], "act_code": "bad code!", "amo_rate": "150"},
        {**GLASSES[0], "quantity": "999", "unit_price": "99999,99"},  # the line costs more than a line may
    ]

    answer = send(world.counter, "/quotes", quote_form(check_id, lines))

    assert answer.status_code == 422
    for name in ("unit_price_1", "regulated_price_2", "act_code_3", "amo_rate_3", "unit_price_4"):
        assert re.search(rf'id="{name}"[^>]*aria-invalid="true" aria-describedby="{name}-error"', answer.text), name
        assert f'id="{name}-error"' in answer.text, name
    assert "Une ligne de classe A demande son prix limite de vente." in answer.text
    assert 'value="cent euros"' in answer.text  # shown back to be corrected
    assert quote_events(runtime, world) == []

    # A domain outside the profession's (an optician does not quote pharmacy).
    pharmacy = send(world.counter, "/quotes", quote_form(check_id, GLASSES, care_domain="PHAR"))
    assert pharmacy.status_code == 422
    assert re.search(r'id="care_domain"[^>]*aria-invalid="true"', pharmacy.text)
    assert quote_events(runtime, world) == []

    nothing = send(world.counter, "/quotes", quote_form(check_id, []))
    assert nothing.status_code == 422
    assert "Remplissez au moins une ligne" in nothing.text
    bad_check = send(world.counter, "/quotes", quote_form("not a reference", GLASSES))
    assert bad_check.status_code == 422
    assert re.search(r'id="check_id"[^>]*aria-invalid="true"', bad_check.text)
    assert quote_events(runtime, world) == []


def test_another_practice_s_check_reads_like_a_missing_one(app: FastAPI, runtime: Runtime, world: World) -> None:
    theirs = checked(world, open_counter(app, runtime, login="voisin@port.test"))

    foreign = send(world.counter, "/quotes", quote_form(theirs, GLASSES))
    missing = send(world.counter, "/quotes", quote_form(str(uuid.uuid4()), GLASSES))

    assert foreign.status_code == missing.status_code == 404
    assert re.search(r'id="check_id"[^>]*aria-invalid="true"', foreign.text)
    assert foreign.text.replace(theirs, "") == missing.text.replace(
        re.search(r'name="check_id" value="([^"]*)"', missing.text).group(1), ""
    )  # type: ignore[union-attr]
    assert quote_events(runtime, world) == []


def test_a_quote_form_without_its_csrf_token_is_refused_and_prices_nothing(runtime: Runtime, world: World) -> None:
    check_id = checked(world)

    refused = world.counter.user.client.post("/quotes", data=quote_form(check_id, GLASSES))

    assert refused.status_code == 403
    assert "jeton de sécurité" in refused.text
    assert quote_events(runtime, world) == []
