"""Practices and professionals: national identifiers checked, memberships decide who acts where."""

from __future__ import annotations

import pytest
from sqlalchemy.exc import IntegrityError

from rempart.errors import Conflict, NotFound, ValidationFailed
from rempart.professionals.models import Practice, Profession
from rempart.professionals.service import (
    acting_professional,
    attach_professional,
    create_practice,
    detach_professional,
    is_valid_rpps,
    register_professional,
)
from rempart.runtime import Runtime
from tests.support.practice_client import make_rpps


def test_rpps_numbers_carry_a_luhn_key() -> None:
    assert is_valid_rpps("10000000009")
    assert not is_valid_rpps("10000000008")  # wrong key
    assert not is_valid_rpps("1000000000")  # ten digits
    assert not is_valid_rpps("1000000000A")
    assert all(is_valid_rpps(make_rpps()) for _ in range(50))


def test_a_practice_needs_a_nine_digit_finess_or_am_number(runtime: Runtime) -> None:
    with runtime.sessions.begin() as session:
        with pytest.raises(ValidationFailed):
            create_practice(session=session, name="Sans numéro", profession=Profession.OPTICIAN)
        with pytest.raises(ValidationFailed):
            create_practice(session=session, name="Court", profession=Profession.OPTICIAN, finess="12345")
        practice = create_practice(
            session=session, name="Optique", profession=Profession.OPTICIAN, am_number="751234567"
        )
        assert practice.finess is None
        with pytest.raises(Conflict):
            create_practice(session=session, name="Doublon", profession=Profession.OPTICIAN, am_number="751234567")


def test_the_database_refuses_a_practice_without_identifier(runtime: Runtime) -> None:
    with runtime.sessions() as session:
        session.add(Practice(name="Nulle part", profession=Profession.DENTIST))
        with pytest.raises(IntegrityError):
            session.flush()


def test_a_professional_acts_only_for_their_current_practices(runtime: Runtime) -> None:
    with runtime.sessions.begin() as session:
        pharmacy = create_practice(
            session=session, name="Pharmacie", profession=Profession.PHARMACIST, finess="690000001"
        )
        other = create_practice(session=session, name="Autre", profession=Profession.PHARMACIST, finess="690000002")
        rpps = make_rpps()
        with pytest.raises(ValidationFailed):
            register_professional(
                session=session, rpps=rpps[:-1] + str((int(rpps[-1]) + 1) % 10), profession=Profession.PHARMACIST
            )
        pharmacist = register_professional(session=session, rpps=rpps, profession=Profession.PHARMACIST)
        assert register_professional(session=session, rpps=rpps, profession=Profession.PHARMACIST).id == pharmacist.id
        with pytest.raises(Conflict):
            register_professional(session=session, rpps=rpps, profession=Profession.DENTIST)
        attach_professional(session=session, practice_id=pharmacy.id, professional_id=pharmacist.id)

        assert acting_professional(session=session, practice_id=pharmacy.id, rpps=rpps).id == pharmacist.id
        with pytest.raises(NotFound):
            acting_professional(session=session, practice_id=other.id, rpps=rpps)

        detach_professional(session=session, practice_id=pharmacy.id, professional_id=pharmacist.id)
        with pytest.raises(NotFound):
            acting_professional(session=session, practice_id=pharmacy.id, rpps=rpps)
