"""Rempart offline attestations: verify them with no network; queue claims while the platform is off.

The server signs with the same code practice software verifies with, so both agree on the format
by construction. This package imports nothing of the server (an import-linter contract).
"""

from rempart_verifier.attestation import (
    DOMAINS,
    Attestation,
    Claims,
    PatientDigest,
    digest_matches,
    new_digest,
    normalize_nir,
)
from rempart_verifier.keys import InsurerKey, KeySet
from rempart_verifier.queue import ClaimQueue, Delivery, ForwardReport, Outcome, QueuedClaim, classify
from rempart_verifier.token import EXPLANATIONS, PREFIX, Refusal, Verdict, decode_unverified, sign, verify

__all__ = [
    "DOMAINS",
    "EXPLANATIONS",
    "PREFIX",
    "Attestation",
    "ClaimQueue",
    "Claims",
    "Delivery",
    "ForwardReport",
    "InsurerKey",
    "KeySet",
    "Outcome",
    "PatientDigest",
    "QueuedClaim",
    "Refusal",
    "Verdict",
    "classify",
    "decode_unverified",
    "digest_matches",
    "new_digest",
    "normalize_nir",
    "sign",
    "verify",
]
