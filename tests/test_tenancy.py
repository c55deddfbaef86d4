"""The generic reader of a caller's record (rempart.tenancy.record_of): another practice's or
another insurer's record answers exactly like a missing one, on SQLite and, on PostgreSQL, as the
application role behind row-level security."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from rempart.eligibility.models import RightsCheck
from rempart.eligibility.service import RightsCheckNotFound
from rempart.errors import NotFound
from rempart.runtime import Runtime
from rempart.tenancy import bound_tenant, record_of
from tests.eligibility.world import World, build_world, practice_principal, rights_check
from tests.factories import make_insurer
from tests.support.tenancy import app_role_runtime


@pytest.fixture
def world(runtime: Runtime) -> World:
    return build_world(runtime, members=4)


@pytest.fixture
def app_runtime(runtime: Runtime) -> Iterator[Runtime]:
    """The runtime the app serves with: on PostgreSQL, the role that cannot bypass RLS."""
    if runtime.engine.dialect.name != "postgresql":
        yield runtime
        return
    with app_role_runtime(runtime.settings) as rt:
        yield rt


def test_a_practice_reads_its_own_record_and_not_anothers(world: World, app_runtime: Runtime) -> None:
    mine, theirs = practice_principal(world.runtime), practice_principal(world.runtime)
    check_id = rights_check(world, mine, world.patient()).check_id

    with app_runtime.sessions() as session:
        found = record_of(
            session,
            RightsCheck,
            check_id,
            practice_id=mine.practice_id,
            missing=RightsCheckNotFound,
            what="rights check",
        )
        assert found.id == check_id
        assert bound_tenant(session) == world.insurer.id  # the rest of the work is the insurer's

    problems = []
    for practice_id, record_id in ((theirs.practice_id, check_id), (mine.practice_id, uuid.uuid4())):
        with app_runtime.sessions() as session, pytest.raises(RightsCheckNotFound) as refused:
            record_of(
                session,
                RightsCheck,
                record_id,
                practice_id=practice_id,
                missing=RightsCheckNotFound,
                what="rights check",
            )
        problems.append(refused.value.problem())
    forbidden, missing = problems
    assert forbidden == missing
    assert missing["status"] == 404


def test_an_insurer_reads_its_own_record_and_not_anothers(world: World, app_runtime: Runtime) -> None:
    other = make_insurer(world.runtime, amc_number="99999999", name="Mutuelle Autre")
    check_id = rights_check(world, practice_principal(world.runtime), world.patient()).check_id

    with app_runtime.sessions() as session:
        assert record_of(session, RightsCheck, check_id, insurer_id=world.insurer.id).id == check_id

    problems = []
    for insurer_id, record_id in ((other.id, check_id), (world.insurer.id, uuid.uuid4())):
        with app_runtime.sessions() as session, pytest.raises(NotFound) as refused:
            record_of(session, RightsCheck, record_id, insurer_id=insurer_id)
        problems.append(refused.value.problem())
    forbidden, missing = problems
    assert forbidden == missing


def test_a_reader_names_one_owner(world: World) -> None:
    with world.runtime.sessions() as session, pytest.raises(TypeError):
        record_of(session, RightsCheck, uuid.uuid4(), practice_id=uuid.uuid4(), insurer_id=uuid.uuid4())
