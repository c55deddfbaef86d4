"""``rempart practices create``: a practice by its FINESS number; bad input refused, nothing written."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from rempart.professionals.cli import is_valid_finess
from rempart.professionals.models import Practice, Profession
from rempart.runtime import Runtime
from tests.test_cli_input import refused, run

FINESS = "750712184"  # a real establishment's number: its last digit is the Luhn key


@pytest.fixture
def env(runtime: Runtime, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    monkeypatch.setenv("REMPART_KEK_FILE", str(runtime.settings.kek_file))
    return {"REMPART_DATABASE_URL": runtime.settings.database_url}


def _practices(runtime: Runtime) -> int:
    with runtime.sessions() as session:
        return session.scalar(select(func.count()).select_from(Practice)) or 0


def test_create_registers_the_practice(runtime: Runtime, env: dict[str, str]) -> None:
    args = ("practices", "create", "--name", "Pharmacie du Port", "--profession", "pharmacist", "--finess", FINESS)
    result = run(*args, env=env)

    assert result.exit_code == 0, result.output
    with runtime.sessions() as session:
        practice = session.scalars(select(Practice)).one()
        assert (practice.name, practice.profession, practice.finess) == (
            "Pharmacie du Port",
            Profession.PHARMACIST,
            FINESS,
        )


@pytest.mark.parametrize(
    ("given", "said"),
    [
        (("Pharmacie", "pharmacist", "750712185"), "--finess"),  # wrong key
        (("Pharmacie", "pharmacist", "75071218"), "--finess"),
        (("Pharmacie", "pharmacist", "7507121840"), "--finess"),
        (("Pharmacie", "pharmacist", "７５０７１２１８４"), "--finess"),  # full-width digits
        (("Pharmacie", "pharmacist", "2A0712184"), "--finess"),
        (("Pharmacie", "baker", FINESS), "--profession"),
        (("  ", "pharmacist", FINESS), "--name"),
        (("x" * 201, "pharmacist", FINESS), "--name"),
    ],
)
def test_bad_input_is_refused_and_nothing_is_written(
    runtime: Runtime, env: dict[str, str], given: tuple[str, str, str], said: str
) -> None:
    name, profession, finess = given
    message = refused(
        run("practices", "create", "--name", name, "--profession", profession, "--finess", finess, env=env)
    )

    assert said in message
    assert _practices(runtime) == 0


def test_a_duplicate_finess_is_refused_clearly(runtime: Runtime, env: dict[str, str]) -> None:
    args = ("practices", "create", "--profession", "pharmacist", "--finess", FINESS)
    assert run(*args, "--name", "Pharmacie du Port", env=env).exit_code == 0

    message = refused(run(*args, "--name", "Pharmacie bis", env=env))

    assert "exists" in message
    assert _practices(runtime) == 1


def test_finess_numbers_of_real_establishments_are_valid() -> None:
    assert all(is_valid_finess(n) for n in ("750712184", "130786049", "690781810", "330781196"))
    assert not is_valid_finess("123456789")
