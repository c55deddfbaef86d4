"""The key set practice software caches from the platform's JWKS."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rempart_verifier import KeySet
from tests.verifier.conftest import AMC_A, AMC_B, insurer_key, jwks


def test_a_jwks_round_trips_through_its_cache_file(tmp_path: Path) -> None:
    current = insurer_key(kid="a-2")
    revoked = insurer_key(kid="a-1", revoked_at=1_700_000_000)
    other = insurer_key(kid="b-1", amc_number=AMC_B)
    keys = KeySet.from_jwks(json.dumps(jwks(current, revoked, other)))

    keys.save(tmp_path / "keys.json")
    loaded = KeySet.load(tmp_path / "keys.json")

    assert loaded.kids == frozenset({"a-1", "a-2", "b-1"})
    assert loaded.amc_number("a-2") == AMC_A
    assert loaded.amc_number("b-1") == AMC_B
    assert loaded.revoked_at("a-1") == 1_700_000_000
    assert loaded.revoked_at("a-2") is None
    assert loaded.get("a-2") is not None
    assert loaded.get("a-2").raw == keys.get("a-2").raw  # type: ignore[union-attr]
    assert loaded.amc_number("missing") is None


def test_keys_this_verifier_cannot_use_are_ignored() -> None:
    usable = insurer_key(kid="ok").jwk
    document = {
        "keys": [
            usable,
            {**usable, "kid": "x25519", "crv": "X25519"},
            {"kty": "EC", "crv": "P-256", "kid": "ec", "x": "AA", "y": "AA"},
            {**usable, "kid": "no-insurer", "amc": None},
            {**usable, "kid": "bad-x", "x": "AAAA"},
            {**usable, "kid": "bad-revocation", "revoked_at": "yesterday"},
            "not a key",
        ]
    }

    assert KeySet.from_jwks(document).kids == frozenset({"ok"})


@pytest.mark.parametrize("document", ["not json", b"[]", {"keys": "none"}, {}])
def test_a_document_that_is_no_jwks_is_refused(document: object) -> None:
    with pytest.raises(ValueError):  # noqa: PT011  (json's and ours: any ValueError keeps the old cache)
        KeySet.from_jwks(document)  # type: ignore[arg-type]


def test_one_kid_twice_is_refused() -> None:
    with pytest.raises(ValueError, match="twice"):
        KeySet.from_jwks(jwks(insurer_key(kid="same"), insurer_key(kid="same")))
