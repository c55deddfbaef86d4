"""What the counter sees when it scans an attestation, offline."""

from __future__ import annotations

import string
from datetime import UTC, date, datetime, timedelta
from typing import Any

import base45
import cbor2
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rempart_verifier import (
    DOMAINS,
    EXPLANATIONS,
    PREFIX,
    Refusal,
    decode_unverified,
    digest_matches,
    new_digest,
    verify,
)
from rempart_verifier.token import PATIENT_DIGEST
from tests.verifier.conftest import (
    AMC_A,
    AMC_B,
    BIRTH_DATE,
    NIR,
    NIR_COMPACT,
    InsurerKeys,
    attestation,
    claims_of,
    envelope,
    insurer_key,
    keyset,
    resign,
    text_of,
    token_for,
)

QR_ALPHANUMERIC = set(string.digits + string.ascii_uppercase + " $%*+-./:")
CARE_DAY = date(2026, 6, 15)


def test_a_valid_attestation_verifies_offline(key_a: InsurerKeys) -> None:
    signed = attestation(key_a)
    token = token_for(key_a, attestation_id=signed.attestation_id, digest=signed.digest)

    verdict = verify(token, keys=keyset(key_a), on=CARE_DAY, nir=NIR, birth_date=BIRTH_DATE, insurer=AMC_A)

    assert verdict.valid
    assert verdict.refusal is None
    # Signed as whole seconds: the microseconds do not survive, everything else does.
    assert verdict.attestation == signed.__class__(
        **{**signed.__dict__, "issued_at": datetime(2025, 12, 15, 9, 30, 12, tzinfo=UTC)}
    )


def test_the_patient_may_be_typed_without_spaces_and_in_lower_case(key_a: InsurerKeys, token_a: str) -> None:
    keys = keyset(key_a)
    assert verify(token_a, keys=keys, on=CARE_DAY, nir=NIR_COMPACT.lower(), birth_date=BIRTH_DATE).valid


def test_the_first_and_last_days_are_included(key_a: InsurerKeys, token_a: str) -> None:
    keys = keyset(key_a)
    assert verify(token_a, keys=keys, on=date(2026, 1, 1)).valid
    assert verify(token_a, keys=keys, on=date(2026, 12, 31)).valid
    assert attestation(key_a).valid_on(date(2026, 12, 31))
    assert not attestation(key_a).valid_on(date(2027, 1, 1))


def test_a_scanner_s_trailing_enter_is_ignored(keys_a: Any, token_a: str) -> None:
    assert verify(token_a + "\r\n", keys=keys_a, on=CARE_DAY).valid


def test_the_text_is_qr_alphanumeric(token_a: str) -> None:
    assert set(token_a) <= QR_ALPHANUMERIC
    assert token_a.startswith("RA1:")


def _values(node: object) -> list[object]:
    if isinstance(node, dict):
        return [v for key, value in node.items() for v in (*_values(key), *_values(value))]
    if isinstance(node, list):
        return [v for item in node for v in _values(item)]
    return [node]


def test_the_token_carries_no_nir_and_no_birth_date(token_a: str) -> None:
    parts = envelope(token_a)
    values = _values(claims_of(token_a)) + _values(cbor2.loads(parts[0]))
    birth_forms = [BIRTH_DATE.isoformat(), BIRTH_DATE.strftime("%d%m%Y"), BIRTH_DATE.strftime("%d/%m/%Y"), "841203"]
    nir_forms = [NIR_COMPACT, NIR_COMPACT[:13], NIR_COMPACT[7:13], NIR]
    birth_epoch = int(datetime(1984, 12, 3, tzinfo=UTC).timestamp())

    for value in values:
        text = value.decode("latin-1") if isinstance(value, bytes) else str(value)
        for form in (*nir_forms, *birth_forms):
            assert form not in text
        assert value != birth_epoch
    for form in (*nir_forms, *birth_forms):
        assert form not in token_a


def test_a_changed_signed_byte_is_tampering(keys_a: Any, token_a: str) -> None:
    parts = envelope(token_a)
    assert b"MEMBER-0001" in parts[2]
    parts[2] = parts[2].replace(b"MEMBER-0001", b"MEMBER-0002")

    verdict = verify(text_of(parts), keys=keys_a, on=CARE_DAY)

    assert verdict.refusal is Refusal.TAMPERED
    assert verdict.attestation is None


def test_a_changed_signature_is_tampering(keys_a: Any, token_a: str) -> None:
    parts = envelope(token_a)
    parts[3] = bytes([parts[3][0] ^ 1]) + parts[3][1:]
    assert verify(text_of(parts), keys=keys_a, on=CARE_DAY).refusal is Refusal.TAMPERED


def test_claims_re_signed_by_another_key_under_the_same_kid_are_tampering(key_a: InsurerKeys, token_a: str) -> None:
    forger = insurer_key(kid=key_a.kid)

    def lengthen(claims: dict[int, Any]) -> None:
        claims[4] += 365 * 86400

    forged = resign(token_a, forger, lengthen)

    assert verify(forged, keys=keyset(key_a), on=CARE_DAY).refusal is Refusal.TAMPERED


def test_an_expired_attestation_is_refused_but_still_shown(keys_a: Any, token_a: str) -> None:
    verdict = verify(token_a, keys=keys_a, on=date(2027, 1, 1))

    assert verdict.refusal is Refusal.EXPIRED
    assert not verdict.valid
    assert verdict.attestation is not None
    assert verdict.attestation.valid_to == date(2026, 12, 31)


def test_an_attestation_not_yet_valid_is_refused(keys_a: Any, token_a: str) -> None:
    assert verify(token_a, keys=keys_a, on=date(2025, 12, 31)).refusal is Refusal.NOT_YET_VALID


def test_a_key_of_another_insurer_cannot_sign_for_this_one() -> None:
    key_b = insurer_key(kid="amc-b-1", amc_number=AMC_B)
    # Insurer B's key, but the token says it comes from insurer A.
    token = token_for(key_b, amc_number=AMC_A)

    verdict = verify(token, keys=keyset(insurer_key(), key_b), on=CARE_DAY)

    assert verdict.refusal is Refusal.ANOTHER_INSURER


def test_the_insurer_the_practice_expects_must_be_the_signer(keys_a: Any, token_a: str) -> None:
    assert verify(token_a, keys=keys_a, on=CARE_DAY, insurer=AMC_B).refusal is Refusal.ANOTHER_INSURER
    assert verify(token_a, keys=keys_a, on=CARE_DAY, insurer=AMC_A).valid


def test_a_key_revoked_at_or_before_signing_is_refused(key_a: InsurerKeys, token_a: str) -> None:
    issued_at = claims_of(token_a)[6]
    revoked = InsurerKeys(kid=key_a.kid, amc_number=AMC_A, private_key=key_a.private_key, revoked_at=issued_at)

    verdict = verify(token_a, keys=keyset(revoked), on=CARE_DAY)

    assert verdict.refusal is Refusal.REVOKED_KEY
    assert verdict.attestation is not None


def test_attestations_signed_before_the_revocation_stay_valid(key_a: InsurerKeys, token_a: str) -> None:
    issued_at = claims_of(token_a)[6]
    revoked = InsurerKeys(kid=key_a.kid, amc_number=AMC_A, private_key=key_a.private_key, revoked_at=issued_at + 1)

    assert verify(token_a, keys=keyset(revoked), on=CARE_DAY).valid


@pytest.mark.parametrize(
    ("nir", "birth_date"),
    [
        ("2 84 12 2A 057 318 43", BIRTH_DATE),  # another person's NIR
        (NIR, BIRTH_DATE + timedelta(days=1)),  # the right NIR with another birth date
        (NIR.replace("2A", "2B"), BIRTH_DATE),  # Corsica's other department
        ("not a nir", BIRTH_DATE),  # garbage typed at the counter: a refusal, not a crash
    ],
)
def test_another_patient_is_refused(keys_a: Any, token_a: str, nir: str, birth_date: date) -> None:
    verdict = verify(token_a, keys=keys_a, on=CARE_DAY, nir=nir, birth_date=birth_date)

    assert verdict.refusal is Refusal.NOT_THIS_PATIENT
    assert verdict.attestation is not None


def test_an_unknown_kid_asks_for_fresh_keys(token_a: str) -> None:
    verdict = verify(token_a, keys=keyset(insurer_key(kid="another")), on=CARE_DAY)
    assert verdict.refusal is Refusal.UNKNOWN_KEY


def test_checks_run_in_order_tampering_before_dates(keys_a: Any, token_a: str) -> None:
    parts = envelope(token_a)
    parts[3] = bytes(64)
    assert verify(text_of(parts), keys=keys_a, on=date(2030, 1, 1)).refusal is Refusal.TAMPERED


@pytest.mark.parametrize(
    "digest",
    [
        [4096, 1, 1, bytes(16), bytes(16)],  # too little memory to be a Rempart digest
        [1 << 20, 1, 1, bytes(16), bytes(16)],  # a gigabyte: what a forger would ask for
        [8192, 0, 1, bytes(16), bytes(16)],
        [8192, 11, 1, bytes(16), bytes(16)],
        [8192, 1, 0, bytes(16), bytes(16)],
        [8192, 1, 5, bytes(16), bytes(16)],
        [8192, 1, 1, bytes(15), bytes(16)],
        [8192, 1, 1, bytes(16), bytes(32)],
        [8192, 1, 1, bytes(16)],
        [8192, True, 1, bytes(16), bytes(16)],
        "digest",
    ],
)
def test_digest_parameters_out_of_bounds_are_malformed(key_a: InsurerKeys, token_a: str, digest: object) -> None:
    def set_digest(claims: dict[int, Any]) -> None:
        claims[PATIENT_DIGEST] = digest

    token = resign(token_a, key_a, set_digest)

    verdict = verify(token, keys=keyset(key_a), on=CARE_DAY, nir=NIR, birth_date=BIRTH_DATE)

    assert verdict.refusal is Refusal.MALFORMED


@pytest.mark.parametrize(
    ("claim", "value"),
    [
        (1, "1234567"),  # an AMC number is 8 to 10 digits
        (4, 1_798_761_600 + 3600),  # validity ends at midnight UTC
        (5, 1_798_761_600 * 2),  # starts after it ends
        (7, b"short"),
        (-2, 10),
        (-2, True),
        (-3, 1 << len(DOMAINS)),  # a care domain this verifier does not know
        (-4, -1),
        (6, "yesterday"),
        (6, 10**30),
    ],
)
def test_signed_but_ill_formed_claims_are_malformed(
    key_a: InsurerKeys, token_a: str, claim: int, value: object
) -> None:
    def set_claim(claims: dict[int, Any]) -> None:
        claims[claim] = value

    assert verify(resign(token_a, key_a, set_claim), keys=keyset(key_a), on=CARE_DAY).refusal is Refusal.MALFORMED


def test_a_missing_claim_is_malformed(key_a: InsurerKeys, token_a: str) -> None:
    def drop(claims: dict[int, Any]) -> None:
        del claims[-1]

    assert verify(resign(token_a, key_a, drop), keys=keyset(key_a), on=CARE_DAY).refusal is Refusal.MALFORMED


def test_a_kid_outside_the_protected_header_is_malformed(keys_a: Any, token_a: str) -> None:
    parts = envelope(token_a)
    parts[1] = {4: b"amc-a-2026-1"}
    assert verify(text_of(parts), keys=keys_a, on=CARE_DAY).refusal is Refusal.MALFORMED


def test_an_untagged_or_trailing_token_is_malformed(keys_a: Any, token_a: str) -> None:
    parts = envelope(token_a)
    untagged = PREFIX + base45.b45encode(cbor2.dumps(parts)).decode()
    trailing = PREFIX + base45.b45encode(cbor2.dumps(cbor2.CBORTag(18, parts)) + b"\x00").decode()
    for token in (untagged, trailing, "", PREFIX, token_a.lower(), "RA2:" + token_a[4:]):
        assert verify(token, keys=keys_a, on=CARE_DAY).refusal is Refusal.MALFORMED


_FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
_BASE45 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:"


@_FUZZ
@given(text=st.text(max_size=600))
def test_random_text_never_raises(keys_a: Any, text: str) -> None:
    assert verify(text, keys=keys_a, on=CARE_DAY).refusal is Refusal.MALFORMED


@_FUZZ
@given(body=st.text(alphabet=_BASE45, max_size=600))
def test_random_base45_never_raises(keys_a: Any, body: str) -> None:
    assert not verify(PREFIX + body, keys=keys_a, on=CARE_DAY).valid


@_FUZZ
@given(data=st.data())
def test_a_truncated_token_never_raises(keys_a: Any, token_a: str, data: st.DataObject) -> None:
    cut = data.draw(st.integers(min_value=0, max_value=len(token_a) - 1))
    assert not verify(token_a[:cut], keys=keys_a, on=CARE_DAY).valid


@_FUZZ
@given(data=st.data())
def test_one_changed_character_never_verifies(keys_a: Any, token_a: str, data: st.DataObject) -> None:
    position = data.draw(st.integers(min_value=0, max_value=len(token_a) - 1))
    replacement = data.draw(st.sampled_from(_BASE45).filter(lambda c: c != token_a[position]))
    changed = token_a[:position] + replacement + token_a[position + 1 :]

    verdict = verify(changed, keys=keys_a, on=CARE_DAY)

    assert not verdict.valid
    assert verdict.refusal in {Refusal.MALFORMED, Refusal.TAMPERED, Refusal.UNKNOWN_KEY}


@_FUZZ
@given(payload=st.binary(max_size=300))
def test_any_signed_payload_never_raises(key_a: InsurerKeys, keys_a: Any, token_a: str, payload: bytes) -> None:
    parts = envelope(token_a)
    parts[2] = payload
    assert verify(text_of(parts), keys=keys_a, on=CARE_DAY).refusal is Refusal.TAMPERED


def test_decode_unverified_is_for_display_only(token_a: str) -> None:
    shown = decode_unverified(token_a)
    assert shown.member_number == "MEMBER-0001"
    assert shown.third_party_payment == frozenset({"PHAR", "OPTI", "LABO"})
    with pytest.raises(ValueError, match="malformed"):
        decode_unverified("RA1:garbage")


def test_every_refusal_is_explained() -> None:
    assert set(EXPLANATIONS) == set(Refusal)
    assert all(refusal.explanation for refusal in Refusal)


def test_digests_use_a_fresh_salt_and_refuse_costly_parameters() -> None:
    first, second = new_digest(NIR, BIRTH_DATE), new_digest(NIR, BIRTH_DATE)
    assert (first.m_kib, first.t, first.p) == (19456, 2, 1)
    assert first.salt != second.salt
    assert first.hash != second.hash
    assert digest_matches(first, NIR, BIRTH_DATE)
    with pytest.raises(ValueError, match="out of bounds"):
        new_digest(NIR, BIRTH_DATE, m_kib=1 << 20)
    with pytest.raises(ValueError, match="NIR"):
        new_digest("12345", BIRTH_DATE)


def test_an_attestation_needs_an_aware_issue_time(key_a: InsurerKeys) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        attestation(key_a, issued_at=datetime(2026, 1, 1))  # noqa: DTZ001  (the mistake under test)
    with pytest.raises(ValueError, match="care domains"):
        attestation(key_a, third_party_payment=frozenset({"SPA"}))


@_FUZZ
@given(raw=st.binary(max_size=400))
def test_any_bytes_behind_the_prefix_never_raise(keys_a: Any, raw: bytes) -> None:
    assert not verify(PREFIX + base45.b45encode(raw).decode(), keys=keys_a, on=CARE_DAY).valid


@pytest.mark.parametrize(
    "raw",
    [
        b"\xd2" + b"\x81" * 1300,  # arrays nested as deep as the length cap allows
        b"\xd2" * 1300 + b"\x00",  # tags nested likewise
        b"\xbf" * 1000,  # unfinished indefinite maps
        b"\xd2\x84\x43\xa1\x01\x27\xa0\x40\x40",  # EdDSA but no kid
    ],
)
def test_hostile_cbor_is_malformed(keys_a: Any, raw: bytes) -> None:
    assert verify(PREFIX + base45.b45encode(raw).decode(), keys=keys_a, on=CARE_DAY).refusal is Refusal.MALFORMED


def test_anything_but_text_is_malformed(keys_a: Any) -> None:
    assert verify(None, keys=keys_a, on=CARE_DAY).refusal is Refusal.MALFORMED  # type: ignore[arg-type]
