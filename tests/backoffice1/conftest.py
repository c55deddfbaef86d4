"""The insurer's back office (part 1) as its staff reach it over HTTP: an insurer with its products
and members, its administrator, claims agent and data protection officer signed in with passkeys,
and a second insurer whose members and jobs must stay out of reach.

Every response is recorded and, after each test, searched for the identities of the members loaded
(tests/e2e/conftest.py): a test that opens the member view takes the people it shows out of the
searched population, and only those.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import Any

import httpx2 as httpx
import pytest
from fastapi import FastAPI

from rempart.identity.permissions import Role
from rempart.insurers.models import Insurer
from rempart.members.validation import MemberRecord
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
from tests.factories import load_members, make_insurer
from tests.factories import population as synth_population
from tests.support.clock import FakeClock
from tests.support.portal import PortalUser

_UNSEARCHED = "\u2400 not searched \u2400"  # a name no page writes
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@dataclass
class Staff:
    """An insurer's staff member in a browser: reads pages, sends their forms with the page's token."""

    user: PortalUser

    def page(self, path: str, **kwargs: Any) -> httpx.Response:
        response = self.user.client.get(path, **kwargs)
        found = _CSRF.search(response.text)
        if found:
            self.user.csrf_token = found.group(1)
        return response

    def form(self, path: str, data: dict[str, Any] | None = None, **kwargs: Any) -> httpx.Response:
        return self.user.client.post(path, data={"csrf_token": self.user.csrf_token, **(data or {})}, **kwargs)

    def english(self) -> None:
        self.user.client.cookies.set("lang", "en")


def staff(served: FastAPI, runtime: Runtime, insurer: Insurer, login: str, *roles: Role) -> Staff:
    user = PortalUser.invited(served, runtime, login=login, roles=set(roles), insurer_id=insurer.id)
    return Staff(user)


@dataclass
class Office:
    insurer: Insurer
    members: list[MemberRecord]
    other: Insurer
    other_members: list[MemberRecord]
    admin: Staff
    agent: Staff
    dpo: Staff
    clock: FakeClock
    population: list[MemberRecord] = field(default_factory=list)

    def shown(self, member_number: str) -> None:
        """The member view shows this contract's people in clear: they are no longer searched for.
        Synthetic people share names; another member whose first or last name is one of theirs is
        still searched for by NIR and date of birth, not by that name."""
        family = [r for r in self.population if r.member_number == member_number]
        names = {n.casefold() for r in family for n in (r.last_name, r.first_name)}
        self.population[:] = [
            replace(
                r,
                last_name=_UNSEARCHED if r.last_name.casefold() in names else r.last_name,
                first_name=_UNSEARCHED if r.first_name.casefold() in names else r.first_name,
            )
            for r in self.population
            if r.member_number != member_number
        ]


@pytest.fixture
def office(
    app: FastAPI,  # noqa: F811
    runtime: Runtime,
    clock: FakeClock,  # noqa: F811
    population: list[MemberRecord],  # noqa: F811
) -> Office:
    insurer = make_insurer(runtime)
    records = synth_population(8, seed=11)
    load_members(runtime, insurer, records)
    other = make_insurer(runtime, amc_number="77120202", name="Mutuelle d'en face")
    # The other insurer's members have numbers of their own (from 500): never shown to ours.
    other_records = synth_population(4, seed=12, first_number=500)
    load_members(runtime, other, other_records)
    population.extend(records)
    population.extend(other_records)
    return Office(
        insurer=insurer,
        members=records,
        other=other,
        other_members=other_records,
        admin=staff(app, runtime, insurer, "admin@remparts.test", Role.INSURER_ADMIN),
        agent=staff(app, runtime, insurer, "agent@remparts.test", Role.CLAIMS_AGENT),
        dpo=staff(app, runtime, insurer, "dpo@remparts.test", Role.DPO),
        clock=clock,
        population=population,
    )
