"""The professional portal as a person at the counter reaches it over HTTP: a signed-in optician
(practice admin and professional) of a practice, an insurer with its products and members.

Every response of these tests is recorded and, after each test, searched for the identities of the
members loaded (NIR, names, date of birth): no portal page may show one (tests/e2e/conftest.py).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import httpx2 as httpx
import pytest
from fastapi import FastAPI

from rempart.identity.permissions import Role
from rempart.insurers.models import Insurer
from rempart.members.models import BeneficiaryRole
from rempart.members.validation import MemberRecord
from rempart.professionals.models import Profession
from rempart.runtime import Runtime
from tests.e2e.conftest import (  # noqa: F401  (fixtures, registered by being imported here)
    app,
    app_runtime,
    clock,
    no_identity_in_professional_responses,
    population,
    recorder,
    scanned,
)
from tests.factories import TODAY, load_members, make_insurer
from tests.factories import population as synth_population
from tests.support.clock import FakeClock
from tests.support.portal import PortalUser
from tests.support.practice_client import PracticeClient

_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@dataclass
class Counter:
    """A professional signed in to the portal, reading pages and sending their forms."""

    user: PortalUser
    practice: PracticeClient  # the same practice's billing software (API), for comparisons

    def page(self, path: str, **kwargs: Any) -> httpx.Response:
        response = self.user.client.get(path, **kwargs)
        found = _CSRF.search(response.text)
        if found:
            self.user.csrf_token = found.group(1)
        return response

    def form(self, path: str, data: dict[str, Any], **kwargs: Any) -> httpx.Response:
        """Post a form as the browser does: fields, plus the page's ``csrf_token``."""
        return self.user.client.post(path, data={"csrf_token": self.user.csrf_token, **data}, **kwargs)


@dataclass
class World:
    insurer: Insurer
    members: list[MemberRecord]
    counter: Counter
    clock: FakeClock

    def patients(self) -> list[MemberRecord]:
        """Members covered today (holders first)."""
        covered = [
            r for r in self.members if r.contract_start <= TODAY and (r.contract_end is None or r.contract_end >= TODAY)
        ]
        return sorted(covered, key=lambda r: r.role is not BeneficiaryRole.HOLDER)

    def card_fields(self, patient: MemberRecord) -> dict[str, str]:
        """The counter form's fields for ``patient``."""
        return {
            "amc_number": self.insurer.amc_number,
            "member_number": patient.member_number,
            "nir": patient.nir,
            "birth_date": patient.birth_date.isoformat(),
            "birth_rank": str(patient.birth_rank),
        }


def open_counter(
    served: FastAPI, runtime: Runtime, *, profession: Profession = Profession.OPTICIAN, login: str = "optique@port.test"
) -> Counter:
    practice = PracticeClient.register(served, runtime, profession=profession, practice_name="Optique du Port")
    user = PortalUser.invited(
        served,
        runtime,
        login=login,
        roles={Role.PRACTICE_ADMIN, Role.PROFESSIONAL},
        practice_id=practice.practice_id,
        professional_id=practice.professional_id,
    )
    return Counter(user=user, practice=practice)


@pytest.fixture
def world(
    app: FastAPI,  # noqa: F811
    runtime: Runtime,
    clock: FakeClock,  # noqa: F811
    population: list[MemberRecord],  # noqa: F811
) -> World:
    insurer = make_insurer(runtime)
    records = synth_population(12, seed=11)
    load_members(runtime, insurer, records)
    population.extend(records)
    return World(insurer=insurer, members=records, counter=open_counter(app, runtime), clock=clock)
