"""The platform admin's insurer routes: onboard an insurer (AMC number, name, its keys) and list them.

Like identity's platform routes, they answer the platform's own staff only
(``platform:insurer:create``, held by the platform admin); creating one needs a fresh passkey check.
The list shows counts, never a member.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from rempart.identity.deps import RECENT_PASSKEY, AnyCaller, requires
from rempart.identity.permissions import Permission
from rempart.insurers.directory import InsurerSummary, do_create_insurer, insurers_overview
from rempart.web.deps import RuntimeDep, SessionDep

router = APIRouter(prefix="/api/v1", tags=["platform"])


class InsurerCreateIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # ASCII digits: ``\d`` would also take full-width and Arabic-Indic ones.
    amc_number: str = Field(pattern=r"^[0-9]{8,10}$", description="AMC number: 8 to 10 digits")
    name: str = Field(min_length=1, max_length=200, pattern=r"^[^\x00-\x1f\x7f]*\S[^\x00-\x1f\x7f]*$")


class InsurerOut(BaseModel):
    id: uuid.UUID
    amc_number: str
    name: str
    created_at: datetime
    products: int
    members: int

    @classmethod
    def of(cls, summary: InsurerSummary) -> InsurerOut:
        return cls(
            id=summary.id,
            amc_number=summary.amc_number,
            name=summary.name,
            created_at=summary.created_at,
            products=summary.products,
            members=summary.members,
        )


@router.post(
    "/platform/insurers",
    dependencies=[requires(Permission.PLATFORM_INSURER_CREATE), RECENT_PASSKEY],
    response_model=InsurerOut,
    status_code=201,
)
def create_insurer(body: InsurerCreateIn, caller: AnyCaller, session: SessionDep, runtime: RuntimeDep) -> InsurerOut:
    """A new insurer and its encryption keys. Its first admin is invited next
    (``/platform/insurers/{insurer_id}/admin-invitations``)."""
    created = do_create_insurer(session=session, keys=runtime.keys, amc_number=body.amc_number, name=body.name.strip())
    return InsurerOut.of(created)


@router.get(
    "/platform/insurers",
    dependencies=[requires(Permission.PLATFORM_INSURER_CREATE)],
    response_model=list[InsurerOut],
)
def list_insurers(caller: AnyCaller, session: SessionDep) -> list[InsurerOut]:
    """Every insurer by AMC number, with its counts of products and members."""
    return [InsurerOut.of(s) for s in insurers_overview(session)]
