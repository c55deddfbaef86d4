"""What an offline attestation says, and the patient digest that ties it to one person.

These types are shared by the server, which signs, and by practice software, which verifies: one
definition, so the two sides cannot drift apart on what a valid attestation is.
"""

from __future__ import annotations

import hmac
import re
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime

from argon2.low_level import ARGON2_VERSION, Type, hash_secret_raw

# Bit i of a care-domain bitmask is DOMAINS[i]. The order is part of the token format: tokens
# already printed on cards would change meaning if it changed, so new domains are only appended.
DOMAINS: tuple[str, ...] = ("PHAR", "OPTI", "AUDI", "DENT", "HOSP", "CONS", "LABO", "AUXM", "RADI", "TRAN")

# OWASP's argon2id minimum: slow enough that a stolen token does not give its NIR away by trying
# every candidate, fast enough for a counter terminal.
DEFAULT_M_KIB = 19456
DEFAULT_T = 2
DEFAULT_P = 1

# A verifier reads these parameters from a token it has not yet trusted: the bounds stop a forged
# token from making it burn a gigabyte of memory or minutes of CPU.
M_KIB_BOUNDS = (8192, 262144)
T_BOUNDS = (1, 10)
P_BOUNDS = (1, 4)
SALT_LENGTH = 16
HASH_LENGTH = 16

# sex, year, month, department (2A/2B for Corsica), commune, order, key.
_NIR = re.compile(r"[0-9]{5}(?:[0-9]{2}|2A|2B)[0-9]{8}")
_AMC_NUMBER = re.compile(r"[0-9]{8,10}")
_MEMBER_NUMBER_MAX = 64


def normalize_nir(nir: str) -> str:
    """The NIR as it enters the digest: people type it with spaces and in either case."""
    normalized = "".join(nir.split()).upper()
    if not _NIR.fullmatch(normalized):
        raise ValueError("a NIR has 15 characters: 13 digits (2A/2B for Corsica) and a 2-digit key")
    return normalized


def _in(value: int, bounds: tuple[int, int]) -> bool:
    return type(value) is int and bounds[0] <= value <= bounds[1]


@dataclass(frozen=True)
class PatientDigest:
    """argon2id of NIR + date of birth: lets the counter confirm the patient without the token
    ever carrying who the patient is."""

    m_kib: int
    t: int
    p: int
    salt: bytes
    hash: bytes

    def __post_init__(self) -> None:
        if not (_in(self.m_kib, M_KIB_BOUNDS) and _in(self.t, T_BOUNDS) and _in(self.p, P_BOUNDS)):
            raise ValueError("argon2id parameters out of bounds")
        if not (type(self.salt) is bytes and len(self.salt) == SALT_LENGTH):
            raise ValueError(f"the salt is {SALT_LENGTH} bytes")
        if not (type(self.hash) is bytes and len(self.hash) == HASH_LENGTH):
            raise ValueError(f"the hash is {HASH_LENGTH} bytes")


def _argon2id(nir: str, birth_date: date, *, m_kib: int, t: int, p: int, salt: bytes) -> bytes:
    secret = f"{normalize_nir(nir)}|{birth_date.isoformat()}".encode("ascii")
    return hash_secret_raw(
        secret=secret,
        salt=salt,
        time_cost=t,
        memory_cost=m_kib,
        parallelism=p,
        hash_len=HASH_LENGTH,
        type=Type.ID,
        version=ARGON2_VERSION,
    )


def new_digest(
    nir: str, birth_date: date, *, m_kib: int = DEFAULT_M_KIB, t: int = DEFAULT_T, p: int = DEFAULT_P
) -> PatientDigest:
    """A fresh salt per attestation, so two cards of one patient cannot be linked by their digest."""
    salt = secrets.token_bytes(SALT_LENGTH)
    # Checked before hashing so that parameters a verifier would refuse are never signed.
    PatientDigest(m_kib=m_kib, t=t, p=p, salt=salt, hash=bytes(HASH_LENGTH))
    digest = _argon2id(nir, birth_date, m_kib=m_kib, t=t, p=p, salt=salt)
    return PatientDigest(m_kib=m_kib, t=t, p=p, salt=salt, hash=digest)


def digest_matches(d: PatientDigest, nir: str, birth_date: date) -> bool:
    """False, never an error, for a NIR that cannot be one: the counter just sees "not this patient"."""
    try:
        candidate = _argon2id(nir, birth_date, m_kib=d.m_kib, t=d.t, p=d.p, salt=d.salt)
    except ValueError:
        return False
    return hmac.compare_digest(candidate, d.hash)


def domains_to_mask(domains: frozenset[str]) -> int:
    return sum(1 << DOMAINS.index(domain) for domain in domains)


def mask_to_domains(mask: int) -> frozenset[str]:
    """Refuses bits this verifier does not know: rights it cannot name must not be guessed at."""
    if type(mask) is not int or not 0 <= mask < 1 << len(DOMAINS):
        raise ValueError("unknown care domain bits")
    return frozenset(domain for i, domain in enumerate(DOMAINS) if mask >> i & 1)


def epoch(day: date) -> int:
    """Seconds at 00:00 UTC of a day: validity is a whole number of days in UTC, as signed."""
    return int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp())


@dataclass(frozen=True)
class Attestation:
    """The insurer's signed statement of a member's third-party-payment rights, valid offline."""

    attestation_id: uuid.UUID
    amc_number: str
    member_number: str
    birth_rank: int
    valid_from: date
    valid_to: date
    issued_at: datetime
    kid: str
    third_party_payment: frozenset[str]
    prior_approval: frozenset[str]
    digest: PatientDigest

    def __post_init__(self) -> None:
        # One check for both sides: the server cannot sign what a verifier would call malformed.
        if not (isinstance(self.amc_number, str) and _AMC_NUMBER.fullmatch(self.amc_number)):
            raise ValueError("an AMC number is 8 to 10 digits")
        if not (
            isinstance(self.member_number, str)
            and 0 < len(self.member_number) <= _MEMBER_NUMBER_MAX
            and self.member_number.isprintable()
        ):
            raise ValueError(f"a member number is 1 to {_MEMBER_NUMBER_MAX} printable characters")
        if not _in(self.birth_rank, (1, 9)):
            raise ValueError("a birth rank is 1 to 9")
        if type(self.valid_from) is not date or type(self.valid_to) is not date:
            raise ValueError("validity bounds are dates")
        if self.valid_to < self.valid_from:
            raise ValueError("valid_to comes before valid_from")
        if not isinstance(self.issued_at, datetime) or self.issued_at.utcoffset() is None:
            raise ValueError("issued_at must be timezone-aware")
        if not (isinstance(self.kid, str) and self.kid and self.kid.isascii() and self.kid.isprintable()):
            raise ValueError("a key id is printable ASCII")
        for domains in (self.third_party_payment, self.prior_approval):
            if not isinstance(domains, frozenset) or not domains <= frozenset(DOMAINS):
                raise ValueError(f"care domains are among {', '.join(DOMAINS)}")
        if not isinstance(self.digest, PatientDigest):
            raise ValueError("digest must be a PatientDigest")

    def valid_on(self, day: date) -> bool:
        """The day of care counts, not the moment of verification: a claim typed in the evening
        for a morning's care is judged on the morning's date."""
        return epoch(self.valid_from) <= epoch(day) < epoch(self.valid_to) + 86400


# The server side speaks of the attestation's "claims" (CWT vocabulary); same object.
Claims = Attestation
