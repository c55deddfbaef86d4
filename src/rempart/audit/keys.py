"""The Ed25519 keys that sign checkpoints, held outside the database.

The embedded default reads a JSON key ring ``{"active": id, "keys": {id: base64 seed}}`` from a file
under ``var/keys`` (or the same JSON in ``REMPART_AUDIT_SIGNING_KEYS``); an HSM or KMS implements
the same ``CheckpointSigner`` protocol in production. Older keys stay in the ring to verify the
checkpoints they signed; witnesses (insurers) verify with the public keys alone (``PublicKeys``).
"""

from __future__ import annotations

import base64
import json
import secrets
from pathlib import Path
from typing import Any, Protocol

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from rempart.config import Settings
from rempart.errors import KeyUnavailable
from rempart.protection.kek import write_private

SIGNING_CONTEXT = b"rempart-access-log-checkpoint\x00"


def signing_key_path(settings: Settings) -> Path:
    return settings.audit_signing_key_file or settings.var_dir / "keys" / "audit-signing.json"


class PublicKeys:
    """Verifies checkpoint signatures by key id: what a witness holds."""

    def __init__(self, keys: dict[str, Ed25519PublicKey]) -> None:
        self._keys = dict(keys)

    def verify(self, key_id: str, signature: bytes, message: bytes) -> bool:
        key = self._keys.get(key_id)
        if key is None:
            return False
        try:
            key.verify(signature, SIGNING_CONTEXT + message)
        except InvalidSignature:
            return False
        return True

    def jwks(self) -> dict[str, Any]:
        """The public keys as a JWK set (RFC 8037, ``OKP`` / ``Ed25519``)."""
        return {
            "keys": [
                {
                    "kty": "OKP",
                    "crv": "Ed25519",
                    "kid": kid,
                    "use": "sig",
                    "alg": "EdDSA",
                    "x": _b64url(key.public_bytes(Encoding.Raw, PublicFormat.Raw)),
                }
                for kid, key in sorted(self._keys.items())
            ]
        }

    @classmethod
    def from_jwks(cls, document: dict[str, Any]) -> PublicKeys:
        keys: dict[str, Ed25519PublicKey] = {}
        for jwk in document.get("keys", []):
            if jwk.get("kty") != "OKP" or jwk.get("crv") != "Ed25519":
                continue
            raw = base64.urlsafe_b64decode(jwk["x"] + "=" * (-len(jwk["x"]) % 4))
            keys[str(jwk["kid"])] = Ed25519PublicKey.from_public_bytes(raw)
        return cls(keys)


class CheckpointSigner(Protocol):
    @property
    def key_id(self) -> str: ...

    def sign(self, message: bytes) -> bytes: ...

    def public_keys(self) -> PublicKeys: ...


class LocalSigningKeys:
    """Ed25519 keys from a JSON key ring; signs with the active one."""

    def __init__(self, seeds: dict[str, bytes], active: str) -> None:
        if active not in seeds:
            raise KeyUnavailable("the active audit signing key is not in the key ring")
        try:
            self._private = {kid: Ed25519PrivateKey.from_private_bytes(seed) for kid, seed in seeds.items()}
        except ValueError:
            raise KeyUnavailable("an audit signing key is not a 32-byte Ed25519 seed") from None
        self._active = active

    @property
    def key_id(self) -> str:
        return self._active

    def sign(self, message: bytes) -> bytes:
        return self._private[self._active].sign(SIGNING_CONTEXT + message)

    def public_keys(self) -> PublicKeys:
        return PublicKeys({kid: key.public_key() for kid, key in self._private.items()})

    @classmethod
    def from_document(cls, text: str) -> LocalSigningKeys:
        try:
            doc = json.loads(text)
            seeds = {str(kid): base64.b64decode(value) for kid, value in doc["keys"].items()}
            return cls(seeds, str(doc["active"]))
        except (ValueError, KeyError, TypeError, AttributeError):
            raise KeyUnavailable("the audit signing key ring is malformed") from None

    @staticmethod
    def new_document(key_id: str | None = None) -> str:
        kid = key_id or f"audit-{secrets.token_hex(4)}"
        return json.dumps({"active": kid, "keys": {kid: base64.b64encode(secrets.token_bytes(32)).decode()}}, indent=2)

    @staticmethod
    def add_key(path: Path) -> str:
        """Add a fresh key and make it active; the older ones stay to verify what they signed."""
        doc = json.loads(path.read_text())
        kid = f"audit-{secrets.token_hex(4)}"
        doc["keys"][kid] = base64.b64encode(secrets.token_bytes(32)).decode()
        doc["active"] = kid
        write_private(path, json.dumps(doc, indent=2))
        return kid


def load_signing_keys(settings: Settings) -> LocalSigningKeys:
    """The signing keys; created on first use outside production (like the embedded KEK)."""
    if settings.audit_signing_keys:
        return LocalSigningKeys.from_document(settings.audit_signing_keys)
    path = signing_key_path(settings)
    if not path.exists():
        if settings.environment == "production":
            raise KeyUnavailable("no audit signing key: set REMPART_AUDIT_SIGNING_KEYS or its key file")
        write_private(path, LocalSigningKeys.new_document())
    return LocalSigningKeys.from_document(path.read_text())


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
