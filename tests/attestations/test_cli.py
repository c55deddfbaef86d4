"""``rempart keys rotate-attestation``, ``rempart attest verify`` (a token, or a photo of its QR code
read by a real decoder) and ``rempart attest issue`` (a file per member number, with progress)."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pypdfium2
import pytest
from click.testing import Result

from rempart.attestations.card import qr_png
from rempart.attestations.keys import published_keys
from rempart.attestations.service import PARIS
from rempart.runtime import Runtime
from rempart_verifier import KeySet, verify
from tests.attestations.test_service import issue
from tests.eligibility.world import NOW, World, build_world
from tests.factories import TODAY
from tests.test_cli_input import refused, run


@pytest.fixture
def world(runtime: Runtime, monkeypatch: pytest.MonkeyPatch) -> World:
    monkeypatch.setenv("REMPART_KEK_FILE", str(runtime.settings.kek_file))
    monkeypatch.setenv("REMPART_DATABASE_URL", runtime.settings.database_url)
    return build_world(runtime, members=10)


def ok(result: Result) -> str:
    assert result.exit_code == 0, (result.output, result.exception)
    return " ".join(result.output.split())


def test_rotate_then_revoke_the_attestation_key(world: World) -> None:
    amc = world.insurer.amc_number
    assert "first attestation key" in ok(run("keys", "rotate-attestation", "--insurer", amc))
    said = ok(run("keys", "rotate-attestation", "--insurer", amc))
    assert "retired (what it signed stays valid until it expires)" in said
    said = ok(run("keys", "rotate-attestation", "--insurer", amc, "--revoke-previous"))
    assert "revoked" in said
    assert "rempart attest issue" in said
    assert "no insurer with this AMC number" in refused(run("keys", "rotate-attestation", "--insurer", "99999999"))
    assert "only applies when the previous key is revoked" in refused(
        run("keys", "rotate-attestation", "--insurer", amc, "--compromised-since", "2026-01-01T00:00:00")
    )


def test_verify_a_token_and_a_photo_of_its_qr_code(world: World, tmp_path: Path) -> None:
    patient = world.patient()
    issued = issue(world, patient)
    who = ("--nir", patient.nir, "--birth-date", patient.birth_date.isoformat(), "--on", TODAY.isoformat())
    said = ok(run("attest", "verify", issued.token, *who))
    assert said.startswith("valid:")
    assert patient.member_number in said
    assert patient.nir not in said

    image = tmp_path / "card.png"
    image.write_bytes(qr_png(issued.token))
    assert ok(run("attest", "verify", str(image), *who)).startswith("valid:")

    # Offline, from a cached copy of the published keys.
    with world.runtime.sessions() as session:
        cached = tmp_path / "keys.json"
        cached.write_bytes(published_keys(session, now=NOW).body)
    other = next(r for r in world.patients() if r.nir != patient.nir)
    wrong = run(
        "attest", "verify", issued.token, "--keys", str(cached), "--nir", other.nir,
        "--birth-date", patient.birth_date.isoformat(), "--on", TODAY.isoformat(),
    )  # fmt: skip
    assert wrong.exit_code == 1
    assert "refused (not-this-patient)" in " ".join(wrong.output.split())
    expired = run("attest", "verify", issued.token, "--keys", str(cached), "--on", "2030-01-01")
    assert expired.exit_code == 1
    assert "refused (expired)" in " ".join(expired.output.split())
    tampered = issued.token[:-3] + ("AAA" if not issued.token.endswith("AAA") else "BBB")
    assert run("attest", "verify", tampered, "--keys", str(cached)).exit_code == 1


def test_verify_refuses_unreadable_input_clearly(world: World, tmp_path: Path) -> None:
    blank = tmp_path / "blank.png"
    from PIL import Image

    Image.new("L", (200, 200), 255).save(blank)
    assert "no QR code could be read" in refused(run("attest", "verify", str(blank)))
    assert "no such image" in refused(run("attest", "verify", str(tmp_path / "none.png")))
    assert "both --nir and --birth-date" in refused(run("attest", "verify", "RA1:X", "--nir", "1"), code=2)
    assert "YYYY-MM-DD" in refused(run("attest", "verify", "RA1:X", "--nir", "1", "--birth-date", "12/03/1980"), code=2)
    malformed = run("attest", "verify", "not a token")
    assert malformed.exit_code == 1
    assert "refused (malformed)" in " ".join(malformed.output.split())


def test_issue_the_cards_of_every_member_a_file_each(world: World, tmp_path: Path) -> None:
    out = tmp_path / "cards"
    said = run("attest", "issue", "--insurer", world.insurer.amc_number, "--out", str(out), "--format", "json")
    today = datetime.now(PARIS).date()  # the command issues as of now, not the tests' TODAY
    people = [r for r in world.records if world.in_force(r, today)]
    contracts = {r.member_number for r in people}
    assert ok(said).endswith(f"{len(people)} attestations in {len(contracts)} files under {out}")
    assert "attestations" in said.stderr  # the progress bar, on stderr
    assert f"{len(contracts)}/{len(contracts)}" in said.stderr
    assert {p.stem for p in out.iterdir()} == contracts
    with world.runtime.sessions() as session:
        keys = KeySet.from_jwks(published_keys(session, now=NOW).body)
    for path in out.iterdir():
        for card in json.loads(path.read_text()):
            assert card["member_number"] == path.stem
            assert verify(card["token"], keys=keys, on=today).valid

    pdfs = tmp_path / "pdf"
    ok(run("attest", "issue", "--insurer", world.insurer.amc_number, "--out", str(pdfs), "--renew-within", "0"))
    assert pdfs.exists()  # nothing is due yet: the attestations just issued run two weeks
    assert list(pdfs.iterdir()) == []
    ok(run("attest", "issue", "--insurer", world.insurer.amc_number, "--out", str(pdfs)))
    first = sorted(pdfs.iterdir())[0]
    assert first.suffix == ".pdf"
    assert first.stem in pypdfium2.PdfDocument(first.read_bytes())[0].get_textpage().get_text_range()

    assert "--format is pdf or json" in refused(
        run("attest", "issue", "--insurer", world.insurer.amc_number, "--out", str(out), "--format", "xml"), code=2
    )
