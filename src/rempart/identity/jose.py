"""The JOSE choices of Rempart, in one place: which keys and algorithms a client may use.

Every JWS/JWT/JWK operation goes through ``joserfc``; nothing here parses a token by hand.
"""

from __future__ import annotations

import json
import warnings
from typing import Any

from joserfc.errors import JoseError, SecurityWarning
from joserfc.jwk import ECKey, JWKRegistry, Key, OKPKey, RSAKey
from joserfc.jws import JWSRegistry

from rempart.errors import ValidationFailed

# Asymmetric signatures only: no "none", no shared-secret HMAC. "EdDSA" is the name RFC 9864
# deprecated in favour of "Ed25519".
SIGNING_ALGORITHMS = ("ES256", "ES384", "Ed25519", "PS256", "RS256")
_PRIVATE_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})


class Registry(JWSRegistry):
    # A DPoP proof carries its public key in the header: an RSA key does not fit in the default 512.
    max_header_length = 4096


REGISTRY = Registry(algorithms=list(SIGNING_ALGORITHMS))


def algorithms_for(key: Key) -> list[str]:
    if isinstance(key, ECKey):
        return {"P-256": ["ES256"], "P-384": ["ES384"]}.get(key.curve_name, [])
    if isinstance(key, OKPKey):
        return ["Ed25519"] if key.curve_name == "Ed25519" else []
    if isinstance(key, RSAKey):
        return ["PS256", "RS256"]
    return []


def import_public_jwk(value: Any) -> Key:
    """A public signing key from a JWK object; refuses private keys, secrets and weak keys."""
    if not isinstance(value, dict):
        raise ValidationFailed("a key is a JWK object")
    if _PRIVATE_MEMBERS & value.keys():
        raise ValidationFailed("a public key was expected; never send a private key")
    if not isinstance(value.get("kty"), str) or value["kty"] not in {"EC", "OKP", "RSA"}:
        raise ValidationFailed("the key type must be EC, OKP or RSA")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", SecurityWarning)
        try:
            key = JWKRegistry.import_key(value)
        except (JoseError, ValueError, TypeError):
            raise ValidationFailed("the key is not a valid JWK") from None
    if any(issubclass(w.category, SecurityWarning) for w in caught):
        # joserfc warns about weak keys (RSA under 2048 bits): refuse them outright.
        raise ValidationFailed("the key is too weak: RSA keys need at least 2048 bits")
    if key.is_private or not algorithms_for(key):
        raise ValidationFailed("the key must be EC P-256/P-384, Ed25519 or RSA of 2048 bits or more")
    return key


def public_json(key: Key) -> str:
    return json.dumps(key.as_dict(private=False), sort_keys=True, separators=(",", ":"))
