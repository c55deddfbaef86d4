"""The beneficiary's portal as the insured person reaches it over HTTP: two people of the same
contract (the holder and their spouse), each invited by their insurer and signed in with a passkey,
beside the professional portal's world (an optician at the counter of "Optique du Port").

Every response is searched for the identities of the members loaded (tests/e2e/conftest.py): the
beneficiary's pages show a card and rights, never a name, a NIR or a date of birth.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from typing import Any

import httpx2 as httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from rempart.identity.permissions import Role
from rempart.members.models import Beneficiary, BeneficiaryRole, Contract
from rempart.members.validation import MemberRecord
from rempart.runtime import Runtime
from tests.portal.conftest import (  # noqa: F401  (fixtures, registered by being imported here)
    World,
    app,
    app_runtime,
    clock,
    no_identity_in_professional_responses,
    population,
    recorder,
    scanned,
    world,
)
from tests.support.portal import PortalUser

_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
# A contract in force today with two people on it, in the population of ``tests.portal.conftest``.
FAMILY_CONTRACT = "0000000001"


@dataclass
class Person:
    """An insured person signed in to their portal."""

    record: MemberRecord
    beneficiary_id: uuid.UUID
    user: PortalUser

    def page(self, path: str, **kwargs: Any) -> httpx.Response:
        response = self.user.client.get(path, **kwargs)
        found = _CSRF.search(response.text)
        if found:
            self.user.csrf_token = found.group(1)
        return response

    def speak(self, language: str) -> None:
        self.user.client.cookies.set("lang", language)


@dataclass
class Family:
    holder: Person
    spouse: Person


def beneficiary_id_of(runtime: Runtime, insurer_id: uuid.UUID, record: MemberRecord) -> uuid.UUID:
    """The internal id of a member's record: their contract's people, told apart by NIR and rank."""
    with runtime.sessions() as session:
        cipher = runtime.keys.cipher(session, insurer_id)
        people = session.scalars(
            select(Beneficiary)
            .join(Contract, (Contract.insurer_id == Beneficiary.insurer_id) & (Contract.id == Beneficiary.contract_id))
            .where(Contract.insurer_id == insurer_id, Contract.member_number == record.member_number)
        ).all()
        found = [
            b.id
            for b in people
            if b.birth_rank == record.birth_rank
            and cipher.decrypt(b.nir_enc, table="beneficiaries", row_id=b.id, column="nir") == record.nir
        ]
    assert len(found) == 1
    return found[0]


def invite_person(app: FastAPI, runtime: Runtime, world: World, record: MemberRecord, login: str) -> Person:  # noqa: F811
    beneficiary_id = beneficiary_id_of(runtime, world.insurer.id, record)
    user = PortalUser.invited(
        app,
        runtime,
        login=login,
        roles={Role.BENEFICIARY},
        insurer_id=world.insurer.id,
        beneficiary_id=beneficiary_id,
    )
    return Person(record=record, beneficiary_id=beneficiary_id, user=user)


@pytest.fixture
def family(app: FastAPI, runtime: Runtime, world: World) -> Family:  # noqa: F811
    people = [r for r in world.members if r.member_number == FAMILY_CONTRACT]
    holder = next(r for r in people if r.role is BeneficiaryRole.HOLDER)
    spouse = next(r for r in people if r.role is not BeneficiaryRole.HOLDER)
    return Family(
        holder=invite_person(app, runtime, world, holder, "titulaire@exemple.test"),
        spouse=invite_person(app, runtime, world, spouse, "conjoint@exemple.test"),
    )
