"""A members file refused through the insurer API: the problem says what is wrong with the file the
staff member sent, in words about that file, and nothing of it stays on the server."""

from __future__ import annotations

import pytest
from fastapi import FastAPI

from rempart.identity.permissions import Role
from rempart.members.validation import MemberRecord
from rempart.runtime import Runtime
from tests.eligibility.world import World, build_world
from tests.insurers.test_insurer_api import staff


@pytest.fixture
def world(runtime: Runtime, population: list[MemberRecord]) -> World:
    built = build_world(runtime, members=4)
    population.extend(built.records)
    return built


@pytest.mark.parametrize(
    "upload",
    [
        ("adherents.csv", "member_number,nom\nA1,Hélène\n".encode("latin-1"), "the file is not UTF-8 text"),
        ("adherents.csv", b"member_number,nir\n0001,185057800608436\n", "the header lacks the column(s) product_code"),
        ("adherents.ndjson", b'{"member_number": "A1"}\n' + b"[" * 100_000 + b"\n", "the file seems truncated"),
    ],
)
def test_a_refused_file_is_described_without_the_servers_own_file_name_and_not_kept(
    app: FastAPI, runtime: Runtime, world: World, upload: tuple[str, bytes, str]
) -> None:
    name, content, detail = upload
    admin = staff(app, runtime, world.insurer, Role.INSURER_ADMIN)
    base = f"/api/v1/insurers/{world.insurer.id}/members-imports"

    refused = admin.post(base, files={"file": (name, content, "text/csv")})

    assert refused.status_code == 422, refused.text
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["detail"].startswith(detail)
    assert admin.get(base).json()["jobs"] == []
    uploads = runtime.settings.var_dir / "imports"
    assert not uploads.exists() or list(uploads.iterdir()) == []
