"""The native API's lists come a page at a time: an opaque cursor, keyset on (time, id), so that a
page neither skips nor repeats a row, even when every row has the same timestamp."""

from __future__ import annotations

import json
import uuid

import pytest
from starlette.requests import Request
from starlette.responses import Response

from rempart.claims.schemas import ClaimListOut
from rempart.claims.service import insurer_claims_page, practice_claims_page
from rempart.pagination import Cursor, CursorInvalid
from rempart.payments.service import payment_runs_page, practice_remittances_page, run_payments
from rempart.runtime import Runtime
from rempart.web.pagination import next_link, paged_json, with_next
from tests.eligibility.world import NOW, World, build_world, claims_agent, unit
from tests.factories import TODAY
from tests.payments.test_payment_runs import accepted_claims


@pytest.fixture
def world(runtime: Runtime) -> World:
    return build_world(runtime, members=12)


def test_claims_are_walked_page_by_page_without_gap_nor_repeat(world: World) -> None:
    pharmacies, claims = accepted_claims(world, 10)  # all made at the same instant (NOW)
    pharmacy = pharmacies[0]
    mine = {c.id for c in claims if c.practice_id == pharmacy.practice_id}
    seen: list[uuid.UUID] = []
    cursor = None
    pages = 0
    while True:
        with unit(world.runtime) as session:
            page = practice_claims_page(session, caller=pharmacy, now=NOW, limit=2, cursor=cursor)
        seen += [c.id for c in page.items]
        pages += 1
        if page.next is None:
            break
        cursor = Cursor.decode(page.next.encode())
    assert sorted(seen) == sorted(mine)
    assert len(seen) == len(set(seen))
    assert pages >= len(mine) // 2

    agent = claims_agent(world.insurer)
    everything: list[uuid.UUID] = []
    cursor = None
    while True:
        with unit(world.runtime) as session:
            staff_page = insurer_claims_page(session, staff=agent, now=NOW, limit=3, cursor=cursor)
        everything += [c.id for c in staff_page.items]
        if staff_page.next is None:
            break
        cursor = staff_page.next
    assert sorted(everything) == sorted(c.id for c in claims)
    assert len(everything) == len(set(everything))


def test_remittances_have_pages_too(world: World) -> None:
    pharmacies, _ = accepted_claims(world, 4)
    agent = claims_agent(world.insurer)
    with unit(world.runtime) as session:
        run_payments(session=session, staff=agent, cutoff=TODAY, now=NOW)
    with unit(world.runtime) as session:
        first = practice_remittances_page(session, caller=pharmacies[0], limit=1)
    assert len(first.items) == 1
    assert first.next is None  # one run, one remittance per practice
    with unit(world.runtime) as session:
        runs = payment_runs_page(session, staff=agent, limit=1)
    assert len(runs.items) == 1
    assert runs.next is None


def test_a_cursor_not_from_a_next_link_is_a_422() -> None:
    for forged in ("not-a-cursor", "Zm9v", "MjAyNi0wMS0wMXxub3QtYS11dWlk"):
        with pytest.raises(CursorInvalid) as refused:
            Cursor.decode(forged)
        assert (refused.value.status, refused.value.slug) == (422, "cursor-invalid")
    assert Cursor.decode(None) is None


def test_the_next_link_keeps_the_filters_and_goes_in_the_link_header() -> None:
    request = Request(
        {
            "type": "http",
            "method": "GET",
            "scheme": "https",
            "server": ("rempart.example", 443),
            "path": "/api/v1/claims",
            "query_string": b"status=accepted&limit=2&cursor=old",
            "headers": [(b"host", b"rempart.example")],
        }
    )
    cursor = Cursor(NOW, uuid.UUID(int=7))
    link = next_link(request, cursor)
    assert link is not None
    assert "status=accepted" in link
    assert "limit=2" in link
    assert f"cursor={cursor.encode()}" in link
    assert "cursor=old" not in link
    assert Cursor.decode(cursor.encode()) == cursor
    assert with_next(Response(), link).headers["link"] == f'<{link}>; rel="next"'
    assert next_link(request, None) is None
    # The last page says nothing of a next one: neither ``next`` nor ``Link``.
    last = paged_json(ClaimListOut(claims=[]), None)
    assert (last.body, last.headers.get("link")) == (b'{"claims":[]}', None)
    more = paged_json(ClaimListOut(claims=[], next=link), link)
    assert json.loads(more.body)["next"] == link
    assert more.headers["link"] == f'<{link}>; rel="next"'
