"""Offline attestations: the two token formats side by side, and what verifying one costs, in the
same run: ``python -m bench.attestation``.

Formats (the same claims, the same Ed25519 key):

- ``cose``: what Rempart issues — COSE_Sign1 (RFC 9052) over CWT claims (RFC 8392) with integer
  keys, base45 (RFC 9285) with the prefix ``RA1:`` so a QR code holds it in alphanumeric mode;
- ``jws``: the same claims as a JWS compact serialisation (RFC 7515, joserfc), JSON with short
  names, in a QR code's byte mode (base64url has lower case letters).

For each: bytes, the QR version at error correction M (the smaller the version, the larger each
module printed on a card, the more reliably a phone camera reads it), and the modules per side.

Costs (median of ``--rounds`` runs, phases alternating so the machine's other work falls on each
alike), each against the baseline of one bare Ed25519 signature check (``cryptography``), measured
in the same run:

- ``signature``: ``verify`` without the patient — decode, key, signature, claims, dates;
- ``patient``: ``verify`` with NIR and date of birth — the above and one argon2id (19 MiB, t=2);
- ``argon2id``: the digest alone; ``sign``: what the server spends per attestation issued.
"""

from __future__ import annotations

import argparse
import base64
import json
import statistics
import sys
import time
import uuid
import warnings
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta

import segno
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from joserfc import jws
from joserfc.jwk import OKPKey

from rempart_verifier import DOMAINS, Attestation, KeySet, digest_matches, new_digest, sign, verify

NIR = "185057800608436"
BORN = date(1985, 5, 12)
DAY = date(2027, 3, 1)


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def attestation(kid: str) -> Attestation:
    return Attestation(
        attestation_id=uuid.uuid4(),
        amc_number="884501017",
        member_number="0000012345",
        birth_rank=1,
        valid_from=DAY,
        valid_to=DAY + timedelta(days=13),
        issued_at=datetime(2027, 3, 1, 8, 0, tzinfo=UTC),
        kid=kid,
        third_party_payment=frozenset(DOMAINS),
        prior_approval=frozenset({"OPTI", "AUDI", "DENT", "HOSP"}),
        digest=new_digest(NIR, BORN),
    )


def as_jws(claims: Attestation, key: Ed25519PrivateKey) -> str:
    """The same claims, as compact as JSON allows: short names, bitmasks, base64url bytes."""
    d = claims.digest
    payload = {
        "iss": claims.amc_number,
        "nbf": int(datetime.combine(claims.valid_from, datetime.min.time(), UTC).timestamp()),
        "exp": int(datetime.combine(claims.valid_to + timedelta(days=1), datetime.min.time(), UTC).timestamp()),
        "iat": int(claims.issued_at.timestamp()),
        "jti": _b64(claims.attestation_id.bytes),
        "mn": claims.member_number,
        "br": claims.birth_rank,
        "tp": sum(1 << i for i, c in enumerate(DOMAINS) if c in claims.third_party_payment),
        "pa": sum(1 << i for i, c in enumerate(DOMAINS) if c in claims.prior_approval),
        "d": [d.m_kib, d.t, d.p, _b64(d.salt), _b64(d.hash)],
    }
    body = json.dumps(payload, separators=(",", ":")).encode()
    return jws.serialize_compact(
        {"alg": "Ed25519", "kid": claims.kid}, body, OKPKey.import_key(key), algorithms=["Ed25519"]
    )


def timed(action: Callable[[], object], repeat: int) -> float:
    started = time.perf_counter()
    for _ in range(repeat):
        action()
    return (time.perf_counter() - started) / repeat * 1000


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.attestation")
    parser.add_argument("--rounds", type=int, default=7, help="alternating rounds (median reported)")
    parser.add_argument("--repeat", type=int, default=20, help="verifications per phase and round")
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore")

    key = Ed25519PrivateKey.generate()
    kid = "bench-key-01"
    claims = attestation(kid)
    cose = sign(claims, private_key=key)
    compact = as_jws(claims, key)
    print(f"{'format':<8}{'bytes':>7}{'QR version (M)':>16}{'modules/side':>14}{'QR mode':>14}")
    for name, token in (("cose", cose), ("jws", compact)):
        qr = segno.make(token, error="m", micro=False, boost_error=False)
        print(f"{name:<8}{len(token):>7}{qr.version:>16}{qr.symbol_size(border=0)[0]:>14}{qr.mode:>14}")

    public = key.public_key()
    jwks = {
        "keys": [
            {
                "kty": "OKP",
                "crv": "Ed25519",
                "x": _b64(public.public_bytes(Encoding.Raw, PublicFormat.Raw)),
                "kid": kid,
                "use": "sig",
                "alg": "EdDSA",
                "amc": claims.amc_number,
            }
        ]
    }
    keys = KeySet.from_jwks(jwks)
    message, signature = b"x" * 200, key.sign(b"x" * 200)
    phases: dict[str, Callable[[], object]] = {
        "ed25519 (baseline)": lambda: public.verify(signature, message),
        "signature": lambda: verify(cose, keys=keys, on=DAY),
        "patient": lambda: verify(cose, keys=keys, on=DAY, nir=NIR, birth_date=BORN),
        "argon2id": lambda: digest_matches(claims.digest, NIR, BORN),
        "sign": lambda: sign(attestation(kid), private_key=key),
    }
    assert verify(cose, keys=keys, on=DAY, nir=NIR, birth_date=BORN).valid
    results: dict[str, list[float]] = {name: [] for name in phases}
    for _ in range(args.rounds):
        for name, action in phases.items():
            results[name].append(timed(action, args.repeat))
    baseline = statistics.median(results["ed25519 (baseline)"])
    print(f"\n{'phase':<20}{'ms each':>10}{'x baseline':>12}")
    for name, values in results.items():
        median = statistics.median(values)
        print(f"{name:<20}{median:>10.3f}{median / baseline:>12.0f}")


if __name__ == "__main__":
    main(sys.argv[1:])
