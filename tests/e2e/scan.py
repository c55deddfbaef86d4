"""Every response of a professional route or a portal page, recorded and searched for identities.

The professional channels answer with coverage, amounts and ids, never with a NIR, a name or a date
of birth (DESIGN.md, "what each actor may see"). ``ResponseRecorder`` wraps the app under test and
keeps each response body of those routes; ``identities_in`` says which identity of the generated
population a body contains.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from rempart.members.validation import MemberRecord

PROFESSIONAL_PREFIXES = (
    "/api/v1/rights-checks",
    "/api/v1/quotes",
    "/api/v1/prior-approvals",
    "/api/v1/claims",
    "/api/v1/remittances",
    "/fhir/",  # the FHIR facade: the same minimisation
)
# The portal's pages: every path that is not a machine's (API, static files), the start page included.
MACHINE_PREFIXES = ("/api/", "/static/", "/favicon.ico", "/healthz", "/openapi.json", "/fhir", "/.well-known/")


def recorded(path: str) -> bool:
    return path.startswith(PROFESSIONAL_PREFIXES) or not path.startswith(MACHINE_PREFIXES)


_RECOVERY_CODE = re.compile(r"\b[A-HJ-NP-Z2-9]{4}(?:-[A-HJ-NP-Z2-9]{4}){3}\b")
IDENTITY_KEYS = ("nir", "last_name", "first_name", "birth_date", "date_of_birth", "marital_status", "address")


@dataclass
class Recorded:
    method: str
    path: str
    status: int
    body: bytes


@dataclass
class ResponseRecorder:
    app: ASGIApp
    responses: list[Recorded] = field(default_factory=list)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or not recorded(path):
            await self.app(scope, receive, send)
            return
        status = 0
        chunks: list[bytes] = []

        async def recording_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
                if not message.get("more_body", False):
                    self.responses.append(Recorded(scope["method"], path, status, b"".join(chunks)))
            await send(message)

        await self.app(scope, receive, recording_send)


def _spaced(nir: str) -> str:
    return f"{nir[0]} {nir[1:3]} {nir[3:5]} {nir[5:7]} {nir[7:10]} {nir[10:13]} {nir[13:]}"


def identities_in(body: bytes, population: Iterable[MemberRecord], *, allowed_dates: set[date]) -> list[str]:
    """What of the population's identities the body shows (as a description, without the value)."""
    raw = html.unescape(body.decode("utf-8", errors="replace"))  # a page writes D'Almeida as D&#39;Almeida
    try:
        text = raw + "\n" + json.dumps(json.loads(raw), ensure_ascii=False)
    except ValueError:
        text = raw
    found = []
    for key in IDENTITY_KEYS:
        if re.search(rf'"{key}"\s*:', text):
            found.append(f"a {key!r} field")
    # Recovery codes are random groups of four letters and digits: one may spell a short first name
    # (EMMA-…). They are secrets of the account, not identities; they are left out of the name search.
    words = _RECOVERY_CODE.sub(" ", text)
    for person in population:
        if person.nir in text or _spaced(person.nir) in text:
            found.append(f"the NIR of member {person.member_number}")
        for kind, name in (("last name", person.last_name), ("first name", person.first_name)):
            if re.search(rf"(?<!\w){re.escape(name)}(?!\w)", words, re.IGNORECASE):
                found.append(f"the {kind} of member {person.member_number}")
        born = person.birth_date
        if born not in allowed_dates and (born.isoformat() in text or born.strftime("%d/%m/%Y") in text):
            found.append(f"the date of birth of member {person.member_number}")
    return found
