"""Tiers payant cards: the rights check answers only on a day a card of the contract covers, and
cards are renewed by the insurer's file or by the yearly job, never for a year already past."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import select, update
from typer.testing import CliRunner

from rempart.cli import app
from rempart.config import get_settings
from rempart.db import utcnow
from rempart.eligibility.service import MissKind, RightsAnswer, RightsMiss, RightsQuery, check_rights
from rempart.fields import paris_day
from rempart.members.cards import RenewalYearRefused, Terms, first_card, next_card, renew_cards
from rempart.members.models import Card
from rempart.members.service import write_members
from rempart.members.validation import MemberRecord
from rempart.runtime import Runtime
from tests.eligibility.test_rights_check import statements
from tests.eligibility.world import NOW, World, build_world, practice_principal
from tests.factories import TODAY

NEXT_JANUARY = date(TODAY.year + 1, 1, 5)
AT_NEXT_JANUARY = datetime(NEXT_JANUARY.year, 1, 5, 9, 30, tzinfo=UTC)


@pytest.fixture
def world(runtime: Runtime) -> World:
    return build_world(runtime, members=12)


def _check(world: World, query: RightsQuery, now: datetime = NOW) -> RightsAnswer | RightsMiss:
    caller = practice_principal(world.runtime)
    with world.runtime.sessions.begin() as session:
        return check_rights(session=session, keys=world.runtime.keys, caller=caller, query=query, now=now)


def _open_ended(world: World) -> MemberRecord:
    """A patient whose contract has no end: only the cards limit when rights are given."""
    return next(r for r in world.patients() if r.contract_end is None)


def _cards(world: World, member_number: str) -> list[tuple[date, date]]:
    with world.runtime.sessions() as session:
        rows = session.execute(
            select(Card.valid_from, Card.valid_to)
            .where(Card.insurer_id == world.insurer.id, Card.member_number == member_number)
            .order_by(Card.valid_from)
        )
        return [(row[0], row[1]) for row in rows]


# -- the rules, on dates ----------------------------------------------------------------------------


def test_a_first_card_runs_from_the_contract_s_start_to_the_year_s_end_or_the_contract_s() -> None:
    assert first_card(Terms(date(2024, 3, 1), None), today=date(2026, 5, 2)) == (date(2024, 3, 1), date(2026, 12, 31))
    assert first_card(Terms(date(2026, 3, 1), date(2026, 6, 30)), today=date(2026, 5, 2)) == (
        date(2026, 3, 1),
        date(2026, 6, 30),
    )
    # A contract starting next year, imported in December: its card is for next year.
    assert first_card(Terms(date(2027, 1, 1), None), today=date(2026, 12, 7)) == (date(2027, 1, 1), date(2027, 12, 31))


def test_the_next_card_starts_the_day_after_the_last_and_never_overlaps_it() -> None:
    open_ended = Terms(date(2024, 3, 1), None)
    assert next_card(open_ended, latest_valid_to=date(2026, 12, 31), year=2027) == (
        date(2027, 1, 1),
        date(2027, 12, 31),
    )
    assert next_card(open_ended, latest_valid_to=date(2027, 12, 31), year=2027) is None  # already renewed
    # A year skipped (not renewed in 2027): the 2028 card starts on 1 January 2028, not in 2027.
    assert next_card(open_ended, latest_valid_to=date(2026, 12, 31), year=2028) == (
        date(2028, 1, 1),
        date(2028, 12, 31),
    )
    ending = Terms(date(2024, 3, 1), date(2027, 4, 30))
    assert next_card(ending, latest_valid_to=date(2026, 12, 31), year=2027) == (date(2027, 1, 1), date(2027, 4, 30))
    assert next_card(ending, latest_valid_to=date(2026, 12, 31), year=2028) is None  # ended before
    assert next_card(Terms(date(2027, 6, 1), None), latest_valid_to=None, year=2027) == (
        date(2027, 6, 1),
        date(2027, 12, 31),
    )


# -- at the rights check ----------------------------------------------------------------------------


def test_without_a_card_for_the_day_of_care_the_check_is_the_uniform_miss(world: World) -> None:
    patient = _open_ended(world)
    assert _cards(world, patient.member_number) == [(patient.contract_start, date(TODAY.year, 12, 31))]
    assert isinstance(_check(world, world.query(patient)), RightsAnswer)

    # The insurer's card ended yesterday (it did not renew it): the contract is in force, no card is.
    with world.runtime.sessions.begin() as session:
        session.execute(
            update(Card)
            .where(Card.insurer_id == world.insurer.id, Card.member_number == patient.member_number)
            .values(valid_to=TODAY - timedelta(days=1))
        )
    missed = _check(world, world.query(patient))
    unknown = _check(world, world.query(patient, member_number="0000000000"))
    assert isinstance(missed, RightsMiss)
    assert isinstance(unknown, RightsMiss)
    assert missed.kind is MissKind.NO_VALID_CARD  # for the access log and detection, never the caller
    assert missed.error.problem() == unknown.error.problem()
    assert [e.reference for e in world.events()][-2:] == ["no-valid-card", "unknown-card"]
    # Care on a day the card covered is still answered.
    yesterday = world.query(patient, care_date=TODAY - timedelta(days=1))
    assert isinstance(_check(world, yesterday), RightsAnswer)


def test_a_miss_for_want_of_a_card_runs_the_same_statements_as_an_unknown_card(world: World) -> None:
    patient = _open_ended(world)
    caller = practice_principal(world.runtime)
    with world.runtime.sessions.begin() as session:
        session.execute(
            update(Card)
            .where(Card.insurer_id == world.insurer.id, Card.member_number == patient.member_number)
            .values(valid_to=TODAY - timedelta(days=1))
        )
    _check(world, world.query(patient))  # opens the insurer's keys into the process cache
    runs = []
    for query in (world.query(patient), world.query(patient, member_number="0000000000")):
        with statements(world.runtime) as seen, world.runtime.sessions.begin() as session:
            check_rights(session=session, keys=world.runtime.keys, caller=caller, query=query, now=NOW)
        runs.append(seen)
    assert runs[0] == runs[1]


# -- renewal ----------------------------------------------------------------------------------------


def test_the_insurer_s_next_file_renews_the_cards_of_the_contracts_it_confirms(world: World) -> None:
    patient = _open_ended(world)
    family = [r for r in world.records if r.member_number == patient.member_number]
    next_year = world.query(patient, care_date=NEXT_JANUARY)
    assert isinstance(_check(world, next_year, AT_NEXT_JANUARY), RightsMiss)  # last year's card ended

    with world.runtime.sessions.begin() as session:
        result = write_members(
            session=session, keys=world.runtime.keys, insurer_id=world.insurer.id, records=family, today=NEXT_JANUARY
        )
    assert (result.contracts_created, result.beneficiaries_created, result.cards_renewed) == (0, 0, 1)
    assert _cards(world, patient.member_number) == [
        (patient.contract_start, date(TODAY.year, 12, 31)),
        (date(NEXT_JANUARY.year, 1, 1), date(NEXT_JANUARY.year, 12, 31)),
    ]
    assert isinstance(_check(world, next_year, AT_NEXT_JANUARY), RightsAnswer)
    # The same file again issues nothing more.
    with world.runtime.sessions.begin() as session:
        again = write_members(
            session=session, keys=world.runtime.keys, insurer_id=world.insurer.id, records=family, today=NEXT_JANUARY
        )
    assert again.cards_renewed == 0


def test_the_yearly_job_renews_every_contract_in_force_next_year_once(world: World) -> None:
    in_force_next_year = {
        r.member_number for r in world.records if r.contract_end is None or r.contract_end >= date(TODAY.year + 1, 1, 1)
    }
    with world.runtime.sessions.begin() as session:
        issued = renew_cards(session, insurer_id=world.insurer.id, year=TODAY.year + 1, today=date(TODAY.year, 12, 7))
    assert issued == len(in_force_next_year) > 0
    with world.runtime.sessions.begin() as session:
        assert renew_cards(session, insurer_id=world.insurer.id, year=TODAY.year + 1, today=TODAY) == 0
    patient = _open_ended(world)
    assert isinstance(_check(world, world.query(patient, care_date=NEXT_JANUARY), AT_NEXT_JANUARY), RightsAnswer)
    ended = world.ended()
    assert (date(TODAY.year + 1, 1, 1), date(TODAY.year + 1, 12, 31)) not in _cards(world, ended.member_number)


def test_cards_are_not_issued_for_a_year_already_past_or_far_ahead(world: World) -> None:
    with world.runtime.sessions() as session:
        count = len(session.scalars(select(Card)).all())
        for year in (TODAY.year - 1, TODAY.year + 2):
            with pytest.raises(RenewalYearRefused) as refused:
                renew_cards(session, insurer_id=world.insurer.id, year=year, today=TODAY)
            assert refused.value.status == 422
        session.rollback()
    with world.runtime.sessions() as session:
        assert len(session.scalars(select(Card)).all()) == count


def test_renew_cards_from_the_command_line(world: World, runtime: Runtime, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REMPART_KEK_FILE", str(runtime.settings.kek_file))
    get_settings.cache_clear()  # fixtures may have read the settings before this variable was set
    year = paris_day(utcnow()).year + 1  # the command's today is the real one
    command = ["members", "renew-cards", "--insurer", world.insurer.amc_number, "--db", runtime.settings.database_url]

    done = CliRunner().invoke(app, [*command, "--year", str(year)])
    assert done.exit_code == 0, done.output
    assert f"cards issued for {year}" in done.output
    again = CliRunner().invoke(app, [*command, "--year", str(year)])
    assert f"insurer {world.insurer.amc_number}: 0 cards issued for {year}" in again.output

    past = CliRunner().invoke(app, [*command, "--year", str(year - 2)])
    assert past.exit_code == 1
    assert f"cards are issued for {year - 1} or {year}, not for {year - 2}" in past.output
    unknown = CliRunner().invoke(app, [*command[:3], "99999999", *command[4:], "--year", str(year)])
    assert unknown.exit_code == 1
    assert "no insurer with this AMC number" in unknown.output
    assert "Traceback" not in past.output + unknown.output
