"""``rempart insurers create|list``: an insurer onboarded with its keys, refusals that write nothing,
and a list that shows counts, never a member."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from rempart.insurers.models import Insurer
from rempart.protection.models import InsurerKey
from rempart.runtime import Runtime
from tests.factories import load_members, make_insurer, population
from tests.test_cli_input import refused, run


@pytest.fixture
def env(runtime: Runtime, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    monkeypatch.setenv("REMPART_KEK_FILE", str(runtime.settings.kek_file))
    return {"REMPART_DATABASE_URL": runtime.settings.database_url}


def _counts(runtime: Runtime) -> tuple[int, int]:
    with runtime.sessions() as session:
        insurers = session.scalar(select(func.count()).select_from(Insurer)) or 0
        keys = session.scalar(select(func.count()).select_from(InsurerKey)) or 0
    return insurers, keys


def test_create_makes_the_insurer_and_its_keys(runtime: Runtime, env: dict[str, str]) -> None:
    result = run("insurers", "create", "--amc", "12345678", "--name", "Mutuelle X", env=env)

    assert result.exit_code == 0, result.output
    assert "12345678" in result.output
    with runtime.sessions() as session:
        insurer = session.scalars(select(Insurer)).one()
        assert (insurer.amc_number, insurer.name) == ("12345678", "Mutuelle X")
        assert session.scalar(select(func.count()).select_from(InsurerKey).where(InsurerKey.insurer_id == insurer.id))


@pytest.mark.parametrize(
    ("amc", "name", "said"),
    [
        ("1234567", "Mutuelle X", "--amc"),
        ("12345678901", "Mutuelle X", "--amc"),
        ("1234567a", "Mutuelle X", "--amc"),
        ("１２３４５６７８", "Mutuelle X", "--amc"),  # full-width digits
        ("", "Mutuelle X", "--amc"),
        ("12345678", "   ", "--name"),
        ("12345678", "x" * 201, "--name"),
        ("12345678", "Mutuelle\x00X", "--name"),
    ],
)
def test_bad_input_is_refused_and_nothing_is_written(
    runtime: Runtime, env: dict[str, str], amc: str, name: str, said: str
) -> None:
    message = refused(run("insurers", "create", "--amc", amc, "--name", name, env=env))

    assert said in message
    assert _counts(runtime) == (0, 0)


def test_a_duplicate_amc_number_is_refused_clearly(runtime: Runtime, env: dict[str, str]) -> None:
    assert run("insurers", "create", "--amc", "12345678", "--name", "Mutuelle X", env=env).exit_code == 0
    before = _counts(runtime)

    message = refused(run("insurers", "create", "--amc", "12345678", "--name", "Mutuelle Y", env=env))

    assert "exists" in message
    assert _counts(runtime) == before
    with runtime.sessions() as session:
        assert session.scalars(select(Insurer.name)).all() == ["Mutuelle X"]


def test_list_shows_each_insurer_with_counts(runtime: Runtime, env: dict[str, str]) -> None:
    insurer = make_insurer(runtime, amc_number="12345678", name="Mutuelle X")
    people = population(3)
    load_members(runtime, insurer, people)
    assert (
        run("insurers", "create", "--amc", "9876543210", "--name", "[bold]Prévoyance[/bold] Y", env=env).exit_code == 0
    )

    result = run("insurers", "list", env=env)

    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    header = next(line for line in lines if "AMC" in line)
    for column in ("name", "created", "products", "members"):
        assert column in header
    x = next(line for line in lines if "12345678" in line and "Mutuelle X" in line).replace("│", " ").split()
    y = next(line for line in lines if "9876543210" in line)
    assert "[bold]Prévoyance[/bold] Y" in y  # a name is shown as written, never as markup
    assert int(x[-2]) > 0
    assert x[-1] == str(len(people))
    assert y.replace("│", " ").split()[-2:] == ["0", "0"]
    for person in people:  # no personal data
        for value in (person.nir, person.last_name, person.first_name, person.member_number):
            assert value not in result.output


def test_list_on_an_empty_platform_is_an_empty_table(env: dict[str, str]) -> None:
    result = run("insurers", "list", env=env)

    assert result.exit_code == 0, result.output
    assert "AMC" in result.output
