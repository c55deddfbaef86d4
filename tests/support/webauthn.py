"""A software WebAuthn authenticator for tests (EC P-256, "packed" self-attestation or "none").

It does what a browser plus a platform authenticator do: builds clientDataJSON for the origin the
page is on, signs with the credential's private key, counts signatures. Tests use it to play the
legitimate user, a phishing page (another origin), a replay and a cloned key.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import struct
from dataclasses import dataclass, field
from typing import Any

import cbor2
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

FLAG_UP = 0x01
FLAG_UV = 0x04
FLAG_AT = 0x40


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64url(value: str) -> bytes:
    return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))


@dataclass
class SoftCredential:
    credential_id: bytes
    private_key: ec.EllipticCurvePrivateKey
    rp_id: str
    user_handle: bytes
    sign_count: int = 0

    def cose_public_key(self) -> bytes:
        numbers = self.private_key.public_key().public_numbers()
        return bytes(
            cbor2.dumps({1: 2, 3: -7, -1: 1, -2: numbers.x.to_bytes(32, "big"), -3: numbers.y.to_bytes(32, "big")})
        )


@dataclass
class SoftAuthenticator:
    """``user_verifying=False`` plays a security key without PIN or biometrics."""

    user_verifying: bool = True
    aaguid: bytes = bytes(16)
    credentials: dict[bytes, SoftCredential] = field(default_factory=dict)

    def _client_data(self, kind: str, challenge: str, origin: str) -> bytes:
        return json.dumps(
            {"type": kind, "challenge": challenge, "origin": origin, "crossOrigin": False}, separators=(",", ":")
        ).encode()

    def _flags(self, extra: int = 0) -> int:
        return FLAG_UP | (FLAG_UV if self.user_verifying else 0) | extra

    def create(self, public_key: dict[str, Any], *, origin: str, attestation: str = "packed") -> dict[str, Any]:
        """``navigator.credentials.create`` on a page at ``origin``; returns RegistrationResponseJSON."""
        rp_id = public_key["rp"]["id"]
        credential = SoftCredential(
            credential_id=os.urandom(32),
            private_key=ec.generate_private_key(ec.SECP256R1()),
            rp_id=rp_id,
            user_handle=unb64url(public_key["user"]["id"]),
        )
        client_data = self._client_data("webauthn.create", public_key["challenge"], origin)
        attested = self.aaguid + struct.pack(">H", len(credential.credential_id)) + credential.credential_id
        auth_data = (
            hashlib.sha256(rp_id.encode()).digest()
            + bytes([self._flags(FLAG_AT)])
            + struct.pack(">I", credential.sign_count)
            + attested
            + credential.cose_public_key()
        )
        if attestation == "packed":
            signature = credential.private_key.sign(
                auth_data + hashlib.sha256(client_data).digest(), ec.ECDSA(hashes.SHA256())
            )
            statement: dict[str, Any] = {"alg": -7, "sig": signature}
        else:
            statement = {}
        attestation_object = cbor2.dumps({"fmt": attestation, "attStmt": statement, "authData": auth_data})
        self.credentials[credential.credential_id] = credential
        return {
            "id": b64url(credential.credential_id),
            "rawId": b64url(credential.credential_id),
            "type": "public-key",
            "response": {
                "clientDataJSON": b64url(client_data),
                "attestationObject": b64url(bytes(attestation_object)),
                "transports": ["internal"],
            },
            "clientExtensionResults": {},
            "authenticatorAttachment": "platform",
        }

    def get(
        self, public_key: dict[str, Any], *, origin: str, credential_id: bytes | None = None, rp_id: str | None = None
    ) -> dict[str, Any]:
        """``navigator.credentials.get`` on a page at ``origin``; returns AuthenticationResponseJSON.

        ``rp_id`` lets a test play a phishing page that asks for its own RP id.
        """
        allowed = [unb64url(c["id"]) for c in public_key.get("allowCredentials") or []]
        candidates = [c for c in self.credentials.values() if not allowed or c.credential_id in allowed]
        if credential_id is not None:
            candidates = [c for c in candidates if c.credential_id == credential_id]
        credential = candidates[0]
        credential.sign_count += 1
        client_data = self._client_data("webauthn.get", public_key["challenge"], origin)
        auth_data = (
            hashlib.sha256((rp_id or public_key.get("rpId") or credential.rp_id).encode()).digest()
            + bytes([self._flags()])
            + struct.pack(">I", credential.sign_count)
        )
        signature = credential.private_key.sign(
            auth_data + hashlib.sha256(client_data).digest(), ec.ECDSA(hashes.SHA256())
        )
        return {
            "id": b64url(credential.credential_id),
            "rawId": b64url(credential.credential_id),
            "type": "public-key",
            "response": {
                "clientDataJSON": b64url(client_data),
                "authenticatorData": b64url(auth_data),
                "signature": b64url(signature),
                "userHandle": b64url(credential.user_handle),
            },
            "clientExtensionResults": {},
            "authenticatorAttachment": "platform",
        }

    def clone(self) -> SoftAuthenticator:
        """A copy of every key with its counter, as an attacker who extracted them would hold."""
        copy = SoftAuthenticator(user_verifying=self.user_verifying, aaguid=self.aaguid)
        for cid, cred in self.credentials.items():
            copy.credentials[cid] = SoftCredential(
                credential_id=cred.credential_id,
                private_key=cred.private_key,
                rp_id=cred.rp_id,
                user_handle=cred.user_handle,
                sign_count=cred.sign_count,
            )
        return copy
