"""Request and response bodies of the identity API."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


class TokenResponse(BaseModel):
    access_token: str
    token_type: Literal["DPoP"] = "DPoP"  # noqa: S105  (the token scheme, not a secret)
    expires_in: int = Field(description="seconds; at most 300")


class PracticeCallerOut(BaseModel):
    practice_id: str
    client_id: str | None
    professional_id: str
    rpps: str
    profession: str
    channel: str
    permissions: list[str]
