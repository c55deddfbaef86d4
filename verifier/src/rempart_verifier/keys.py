"""The insurers' public keys, as the platform publishes them and practice software caches them.

Verification happens offline, so the key set is whatever was last fetched from
``/.well-known/rempart/attestation-keys``; it carries, next to each key, the insurer it belongs to
and when it was revoked, which the JWK standard has no field for.
"""

from __future__ import annotations

import base64
import json
import os
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from joserfc.jwk import OKPKey

_AMC_NUMBER = re.compile(r"[0-9]{8,10}")


@dataclass(frozen=True)
class InsurerKey:
    """One signing key of one insurer (AMC)."""

    kid: str
    amc_number: str
    public_key: Ed25519PublicKey
    # Epoch seconds. Attestations signed before this stay valid: revoking a key because it leaked
    # must not void every card already in members' wallets.
    revoked_at: int | None = None

    @property
    def raw(self) -> bytes:
        return self.public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)

    def as_jwk(self) -> dict[str, Any]:
        jwk: dict[str, Any] = {
            "kty": "OKP",
            "crv": "Ed25519",
            "x": base64.urlsafe_b64encode(self.raw).rstrip(b"=").decode("ascii"),
            "kid": self.kid,
            "use": "sig",
            "alg": "EdDSA",
            "amc": self.amc_number,
        }
        if self.revoked_at is not None:
            jwk["revoked_at"] = self.revoked_at
        return jwk


def _insurer_key(jwk: object) -> InsurerKey | None:
    """None for an entry this verifier cannot use (another curve, no insurer, garbled): a token
    signed with it is then refused as an unknown key, the safe answer."""
    if not isinstance(jwk, Mapping) or jwk.get("kty") != "OKP" or jwk.get("crv") != "Ed25519":
        return None
    kid, amc, revoked_at = jwk.get("kid"), jwk.get("amc"), jwk.get("revoked_at")
    usable = (
        isinstance(kid, str)
        and bool(kid)
        and kid.isascii()
        and kid.isprintable()
        and isinstance(amc, str)
        and _AMC_NUMBER.fullmatch(amc) is not None
        and (revoked_at is None or type(revoked_at) is int)
    )
    if not usable:
        return None
    try:
        imported = OKPKey.import_key(dict(jwk))
    except (ValueError, TypeError, KeyError):
        return None
    public_key = imported.public_key
    if not isinstance(public_key, Ed25519PublicKey):
        return None
    assert isinstance(kid, str)
    assert isinstance(amc, str)
    assert revoked_at is None or isinstance(revoked_at, int)
    return InsurerKey(kid=kid, amc_number=amc, public_key=public_key, revoked_at=revoked_at)


class KeySet:
    """The keys a verifier trusts, by key id."""

    def __init__(self, keys: Iterable[InsurerKey] = ()) -> None:
        self._keys: dict[str, InsurerKey] = {}
        for key in keys:
            if key.kid in self._keys:
                # Two keys under one id would make a verdict depend on which one came last.
                raise ValueError(f"key id {key.kid!r} appears twice")
            self._keys[key.kid] = key

    @classmethod
    def from_jwks(cls, data: Mapping[str, Any] | str | bytes) -> KeySet:
        """Raises ValueError on a document that is not a JWKS at all, so the caller keeps its
        previous cache rather than replacing it with nothing."""
        document: object = json.loads(data) if isinstance(data, str | bytes) else data
        if not isinstance(document, Mapping) or not isinstance(document.get("keys"), list):
            raise ValueError('a JWKS is an object with a "keys" list')
        keys = (_insurer_key(jwk) for jwk in document["keys"])
        return cls(key for key in keys if key is not None)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> KeySet:
        return cls.from_jwks(Path(path).read_bytes())

    def save(self, path: str | os.PathLike[str]) -> None:
        """Written aside then renamed, so a crash mid-write never leaves a half cache behind."""
        target = Path(path)
        temporary = target.with_name(f".{target.name}.tmp")
        with temporary.open("w", encoding="utf-8") as file:
            json.dump(self.as_jwks(), file, indent=2, sort_keys=True)
            file.flush()
            os.fsync(file.fileno())
        temporary.replace(target)

    def as_jwks(self) -> dict[str, Any]:
        return {"keys": [key.as_jwk() for key in self._keys.values()]}

    @property
    def kids(self) -> frozenset[str]:
        return frozenset(self._keys)

    def get(self, kid: str) -> InsurerKey | None:
        return self._keys.get(kid)

    def amc_number(self, kid: str) -> str | None:
        key = self._keys.get(kid)
        return None if key is None else key.amc_number

    def revoked_at(self, kid: str) -> int | None:
        key = self._keys.get(kid)
        return None if key is None else key.revoked_at

    def __contains__(self, kid: object) -> bool:
        return kid in self._keys

    def __iter__(self) -> Iterator[InsurerKey]:
        return iter(self._keys.values())

    def __len__(self) -> int:
        return len(self._keys)
