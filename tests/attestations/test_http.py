"""The published keys and the insured person's own attestation, over HTTP: a JWKS any verifier can
cache (ETag, 304), and an attestation as JSON, as a QR code a real decoder reads back, and as a
card to print, each issue in the person's access log."""

from __future__ import annotations

import io
from typing import Any

import pypdfium2
import pytest
import zxingcpp
from fastapi import FastAPI
from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy import select

from rempart.audit.models import AccessEvent
from rempart.identity.permissions import Role
from rempart.members.validation import MemberRecord
from rempart.runtime import Runtime
from rempart_verifier import KeySet, verify
from tests.attestations.test_service import beneficiary_of
from tests.eligibility.world import World, build_world
from tests.factories import TODAY
from tests.support.portal import PortalUser

KEYS = "/.well-known/rempart/attestation-keys"


@pytest.fixture
def world(runtime: Runtime, population: list[MemberRecord]) -> World:
    built = build_world(runtime, members=8)  # as the owner: the app's role sees one insurer at a time
    population.extend(built.records)
    return built


@pytest.fixture
def patient(app: FastAPI, app_runtime: Runtime, world: World) -> tuple[MemberRecord, PortalUser]:
    record = world.patient()
    user = PortalUser.invited(
        app,
        app_runtime,
        login="patient@exemple.test",
        roles={Role.BENEFICIARY},
        insurer_id=world.insurer.id,
        beneficiary_id=beneficiary_of(world, record).id,
    )
    return record, user


def test_the_keys_are_public_cacheable_and_answer_304_when_unchanged(app: FastAPI, patient: Any) -> None:
    _record, user = patient
    assert user.get("/api/v1/me/attestation").status_code == 200  # the insurer's first key
    anonymous = TestClient(app)
    first = anonymous.get(KEYS)
    assert first.status_code == 200
    assert first.headers["content-type"].startswith("application/jwk-set+json")
    assert first.headers["cache-control"] == "public, max-age=300"
    etag = first.headers["etag"]
    assert len(first.json()["keys"]) == 1
    again = anonymous.get(KEYS, headers={"If-None-Match": etag})
    assert again.status_code == 304
    assert again.content == b""
    assert anonymous.head(KEYS).status_code == 200


def test_my_attestation_as_json_qr_code_and_card(app: FastAPI, patient: Any, world: World) -> None:
    record, user = patient
    answer = user.get("/api/v1/me/attestation")
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["member_number"] == record.member_number
    assert body["keys"] == KEYS
    keys = KeySet.from_jwks(TestClient(app).get(KEYS).content)
    assert verify(body["token"], keys=keys, on=TODAY, nir=record.nir, birth_date=record.birth_date).valid

    png = user.get("/api/v1/me/attestation", params={"format": "png"})
    assert png.headers["content-type"] == "image/png"
    (code,) = [  # a QR code only: the decoder may also see a 1D barcode in its modules
        found
        for found in zxingcpp.read_barcodes(Image.open(io.BytesIO(png.content)))
        if found.format == zxingcpp.BarcodeFormat.QRCode
    ]
    assert verify(code.text, keys=keys, on=TODAY, nir=record.nir, birth_date=record.birth_date).valid

    pdf = user.get("/api/v1/me/attestation", params={"format": "pdf", "lang": "en"})
    assert pdf.headers["content-type"] == "application/pdf"
    assert pdf.headers["content-disposition"].startswith("attachment;")
    page = pypdfium2.PdfDocument(pdf.content)[0]
    (printed,) = [  # a QR code only: the decoder may also see a 1D barcode in its modules
        found
        for found in zxingcpp.read_barcodes(page.render(scale=3).to_pil())
        if found.format == zxingcpp.BarcodeFormat.QRCode
    ]
    assert verify(printed.text, keys=keys, on=TODAY).valid
    assert record.member_number in page.get_textpage().get_text_range()

    with world.runtime.sessions() as session:
        events = session.scalars(select(AccessEvent).where(AccessEvent.operation == "attestation_issue")).all()
    assert len(events) == 3  # one per issue, whatever its form
    assert {e.beneficiary_id for e in events} == {beneficiary_of(world, record).id}


def test_only_an_insured_person_has_an_attestation(app: FastAPI, app_runtime: Runtime, world: World) -> None:
    agent = PortalUser.invited(
        app, app_runtime, login="agent@remparts.test", roles={Role.CLAIMS_AGENT}, insurer_id=world.insurer.id
    )
    assert agent.get("/api/v1/me/attestation").status_code == 403
    assert TestClient(app).get("/api/v1/me/attestation").status_code == 401
    bad = PortalUser.invited(
        app,
        app_runtime,
        login="patient2@exemple.test",
        roles={Role.BENEFICIARY},
        insurer_id=world.insurer.id,
        beneficiary_id=beneficiary_of(world, world.patient()).id,
    )
    refused = bad.get("/api/v1/me/attestation", params={"format": "gif"})
    assert refused.status_code == 422
    assert refused.headers["content-type"] == "application/problem+json"
