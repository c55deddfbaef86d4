"""The insurer's back office (part 2) as its staff reach it over HTTP: the portal's world (an insurer,
its members, an optician's practice and its software), plus the insurer's staff signed in with
passkeys, and claims waiting for review made with a low review threshold."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from typing import Any

import httpx2 as httpx
import pytest
from fastapi import FastAPI

from rempart.claims.models import ClaimStatus
from rempart.claims.service import ClaimRequest, submit_claim
from rempart.identity.permissions import Role, permissions_of
from rempart.identity.principal import Channel, PracticePrincipal
from rempart.insurers.models import CareDomain
from rempart.pricing.engine import CareLine
from rempart.professionals.models import Profession
from rempart.runtime import Runtime
from tests.factories import TODAY
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
from tests.support.practice_client import PracticeClient

_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@dataclass
class Staff:
    """A member of the insurer's staff in a browser: reads pages, sends their forms."""

    user: PortalUser

    def page(self, path: str, **kwargs: Any) -> httpx.Response:
        response = self.user.client.get(path, **kwargs)
        found = _CSRF.search(response.text)
        if found:
            self.user.csrf_token = found.group(1)
        return response

    def form(self, path: str, data: dict[str, str] | None = None, *, csrf: bool = True) -> httpx.Response:
        fields = {"csrf_token": self.user.csrf_token or "", **(data or {})} if csrf else dict(data or {})
        return self.user.client.post(path, data=fields, follow_redirects=False)

    def english(self) -> None:
        self.user.client.cookies.set("lang", "en")


def staff(app: FastAPI, runtime: Runtime, insurer_id: uuid.UUID, login: str, *roles: Role) -> Staff:  # noqa: F811
    member = Staff(PortalUser.invited(app, runtime, login=login, roles=set(roles), insurer_id=insurer_id))
    assert member.page("/").status_code == 200
    return member


def medicine(price_cents: int = 2_000) -> CareLine:
    # A medicine: no prior approval needed, AMO 65 % of its price.
    return CareLine(CareDomain.PHAR, "3400930000001", TODAY, 1, price_cents, price_cents, 65)


@pytest.fixture
def pharmacy(app: FastAPI, runtime: Runtime) -> PracticeClient:  # noqa: F811
    """A pharmacy's billing software: its claims need no prior approval."""
    return PracticeClient.register(app, runtime, profession=Profession.PHARMACIST, practice_name="Pharmacie du Port")


def software_of(practice: PracticeClient) -> PracticePrincipal:
    return PracticePrincipal(
        practice_id=practice.practice_id,
        professional_id=practice.professional_id,
        rpps=practice.rpps,
        profession=Profession.PHARMACIST,
        permissions=permissions_of(frozenset({Role.PRACTICE_SOFTWARE})),
        channel=Channel.API,
        client_id=practice.client_id,
        address="192.0.2.10",
        credential_ref="tok:test",
    )


def rights_check(world: World, practice: PracticeClient, index: int = 0) -> uuid.UUID:  # noqa: F811
    card = world.card_fields(world.patients()[index])
    response = practice.post(
        "/api/v1/rights-checks", json={k: card[k] for k in ("amc_number", "member_number", "nir", "birth_date")}
    )
    assert response.status_code == 200, response.text
    return uuid.UUID(response.json()["check_id"])


def billed(
    world: World,  # noqa: F811
    runtime: Runtime,
    practice: PracticeClient,
    *,
    price_cents: int = 2_000,
    review: bool = True,
    index: int = 0,
) -> uuid.UUID:
    """A claim of the pharmacy for a covered patient: waiting for review (a threshold of one cent),
    or decided at once."""
    check_id = rights_check(world, practice, index)
    with runtime.sessions() as session:
        outcome = submit_claim(
            session=session,
            caller=software_of(practice),
            request=ClaimRequest(check_id=check_id, lines=(medicine(price_cents),)),
            idempotency_key=uuid.uuid4().hex,
            now=world.clock(),
            review_threshold_cents=1 if review else 10**12,
        )
        claim = outcome.claim
        wanted = ClaimStatus.PENDING_REVIEW if review else ClaimStatus.ACCEPTED
        assert claim.status is wanted, claim.reason_code
        return claim.id
