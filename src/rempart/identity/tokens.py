"""OAuth for practice software: ``private_key_jwt`` client assertions (RFC 7523) and access
tokens bound to a key with DPoP (RFC 9449).

A token alone is useless: every call carries a fresh DPoP proof signed by the key the token was
bound to, for that method and URL, used once. Tokens are opaque, live at most five minutes and are
stored only as their SHA-256, so a database dump holds no usable token.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import re
import secrets
import string
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any, NamedTuple
from urllib.parse import quote, urlsplit, urlunsplit

from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jwk import JWKRegistry, Key
from joserfc.jws import CompactSignature
from joserfc.jwt import JWTClaimsRegistry
from sqlalchemy import and_, bindparam, delete, select
from sqlalchemy.orm import Session

from rempart.errors import RempartError, ValidationFailed
from rempart.identity.errors import (
    AccessTokenExpired,
    ClientExpired,
    ClientRevoked,
    ClientSuspended,
    InvalidAccessToken,
    InvalidClient,
    InvalidDPoPProof,
    InvalidTokenRequest,
    PracticeSuspended,
)
from rempart.identity.events import record_event
from rempart.identity.jose import REGISTRY, SIGNING_ALGORITHMS, algorithms_for, import_public_jwk
from rempart.identity.models import (
    AccessToken,
    ApiClient,
    ApiClientKey,
    ClientKeyStatus,
    ClientStatus,
    SecurityEventKind,
)
from rempart.identity.replay import ReplayStore
from rempart.logs import get_logger
from rempart.professionals.models import (
    Practice,
    PracticeMembership,
    PracticeStatus,
    Profession,
    Professional,
    ProfessionalStatus,
)

log = get_logger("rempart.identity")  # the logger the token endpoint has always used

GRANT_TYPE = "client_credentials"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
TOKEN_LIFETIME = timedelta(minutes=5)
# A client assertion is a one-shot credential: refuse one meant to live longer than this.
ASSERTION_MAX_LIFETIME = timedelta(minutes=5)
# How old a DPoP proof may be, and how far ahead of our clock a client's clock may run.
PROOF_MAX_AGE = timedelta(seconds=60)
CLOCK_SKEW = timedelta(seconds=10)


@dataclass(frozen=True)
class IssuedToken:
    access_token: str
    expires_in: int
    jkt: str


@dataclass(frozen=True, slots=True)
class ActingProfessional:
    id: uuid.UUID
    rpps: str
    profession: Profession


@dataclass(frozen=True, slots=True)
class TokenHolder:
    """Who a valid token speaks for: its client, the client's practice and, when the request named
    one who acts for that practice, the acting professional (``None`` otherwise)."""

    client_id: uuid.UUID
    practice_id: uuid.UUID | None
    token_hash: bytes
    professional: ActingProfessional | None
    # An insurer's client: its insurer and its space-separated scopes (``practice_id`` is then None).
    insurer_id: uuid.UUID | None = None
    scopes: str = ""


def _b64url_sha256(value: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(value.encode()).digest()).rstrip(b"=").decode()


def token_hash(access_token: str) -> bytes:
    return hashlib.sha256(access_token.encode()).digest()


_PERCENT_ENCODED = re.compile(r"%([0-9A-Fa-f]{2})")
_UNRESERVED = frozenset(string.ascii_letters + string.digits + "-._~")


def _normalise_percent_encoding(path: str) -> str:
    """RFC 3986, sections 6.2.2.1 and 6.2.2.2: hex digits upper case, and an encoded unreserved
    character decoded. Every other escape stays as sent: ``%2F`` is no ``/`` and ``%23`` no ``#``."""

    def one(match: re.Match[str]) -> str:
        char = chr(int(match.group(1), 16))
        return char if char in _UNRESERVED else "%" + match.group(1).upper()

    return _PERCENT_ENCODED.sub(one, path)


def normalise_htu(url: str) -> str:
    """Scheme, host and path of a URL as sent, without query or fragment (RFC 9449, section 4.3),
    normalised as RFC 3986, section 6 says: scheme and host case, default port, percent-encoding.
    The path is compared as sent, never decoded (an encoded ``#`` or ``?`` would cut it short)."""
    parts = urlsplit(url)
    scheme, host = parts.scheme.lower(), (parts.hostname or "").lower()
    port = parts.port
    default = {"http": 80, "https": 443}.get(scheme)
    netloc = host if port in (None, default) else f"{host}:{port}"
    return urlunsplit((scheme, netloc, _normalise_percent_encoding(parts.path) or "/", "", ""))


def path_as_sent(scope: Mapping[str, Any]) -> str:
    """The request's path as the client sent it, still percent-encoded (ASGI ``raw_path``), not
    the decoded ``path`` the router reads. A server that gives no ``raw_path`` gets the decoded path
    encoded again."""
    raw = scope.get("raw_path")
    if isinstance(raw, bytes) and raw:
        return raw.split(b"?", 1)[0].decode("latin-1")
    return quote(str(scope.get("path") or "/"), safe="/:@!$&'()*+,;=-._~")


def _htu_of(claimed: str) -> str | None:
    """A proof's ``htu`` normalised, or ``None`` when it is no URL (a port out of range or not a
    number, a broken IPv6 address): it then names no URL of ours."""
    try:
        return normalise_htu(claimed)
    except ValueError:
        return None


class Unverified(NamedTuple):
    """A compact JWS taken apart, its signature not yet checked: only to find which key should
    verify it (``verifies``), and then to read its claims without parsing it a second time."""

    jws: CompactSignature
    header: dict[str, Any]
    claims: dict[str, Any]

    def verifies(self, key: Key, alg: str) -> bool:
        try:
            return jws.validate_compact(self.jws, key, algorithms=[alg], registry=REGISTRY)
        except (JoseError, ValueError, TypeError):
            # TypeError: joserfc checks a header it did not type, e.g. a "crit" that is no list.
            return False


def _unverified(value: str) -> Unverified:
    try:
        obj = jws.extract_compact(value.encode(), registry=REGISTRY)
        claims = json.loads(obj.payload or b"")
    except (JoseError, ValueError, TypeError, RecursionError):
        # RecursionError: JSON nested deeper than the parser goes ("[[[[..."), in header or claims.
        raise ValidationFailed("not a compact JWS") from None
    if not isinstance(claims, dict):
        raise ValidationFailed("the JWS payload is not a JSON object")
    return Unverified(obj, dict(obj.headers()), claims)


def _timestamp(moment: datetime) -> int:
    return int(moment.timestamp())


def claimed_client(session: Session, assertion: str) -> ApiClient | None:
    """The client an assertion claims to come from (unverified: only to file a refusal under it)."""
    try:
        claims = _unverified(assertion).claims
        return session.get(ApiClient, uuid.UUID(str(claims.get("iss"))))
    except (ValidationFailed, ValueError):
        return None


def refuse_unusable(status: ClientStatus, expires_at: datetime | None, now: datetime) -> None:
    """A revoked, suspended or expired client gets no token and its tokens open nothing."""
    if status is ClientStatus.REVOKED:
        raise ClientRevoked("this client has been revoked by its owner; ask for a new one")
    if status is ClientStatus.SUSPENDED:
        raise ClientSuspended()
    if expires_at is not None and expires_at <= now:
        raise ClientExpired("this client's credentials have expired; its owner's admin can renew them")


# -- client authentication (RFC 7523) -------------------------------------------------------------


def authenticate_client(
    *,
    session: Session,
    replay: ReplayStore,
    assertion: str,
    token_url: str,
    now: datetime,
) -> ApiClient:
    """The client that signed ``assertion`` for our token endpoint, once."""
    try:
        assertion_jws = _unverified(assertion)
        header, claims = assertion_jws.header, assertion_jws.claims
        client_id = uuid.UUID(str(claims.get("iss")))
    except (ValidationFailed, ValueError):
        raise InvalidClient("the client assertion is not a signed JWT naming its client") from None
    client = session.get(ApiClient, client_id)
    if client is None:
        raise InvalidClient("client authentication failed")
    keys = session.scalars(select(ApiClientKey).where(ApiClientKey.client_id == client.id)).all()
    # A revoked client's keys still prove who is asking, so it can be told plainly it is revoked.
    usable = [k for k in keys if k.status is ClientKeyStatus.ACTIVE or client.status is ClientStatus.REVOKED]
    kid = header.get("kid")
    if kid is not None:
        usable = [k for k in usable if k.kid == kid]
    verified = None
    for row in usable:
        key = JWKRegistry.import_key(json.loads(row.public_jwk))
        alg = header.get("alg")
        if alg in algorithms_for(key) and assertion_jws.verifies(key, alg):
            verified = row
            break
    if verified is None:
        raise InvalidClient("client authentication failed")

    registry = JWTClaimsRegistry(
        now=_timestamp(now),
        leeway=int(CLOCK_SKEW.total_seconds()),
        iss={"essential": True, "value": str(client.id)},
        sub={"essential": True, "value": str(client.id)},
        aud={"essential": True, "value": token_url},
        exp={"essential": True},
        jti={"essential": True},
    )
    try:
        registry.validate(claims)
    except JoseError:
        raise InvalidClient("the client assertion's claims are not valid (iss, sub, aud, exp, jti)") from None
    exp = claims["exp"]
    if exp - _timestamp(now) > ASSERTION_MAX_LIFETIME.total_seconds() + CLOCK_SKEW.total_seconds():
        raise InvalidClient("the client assertion lives too long: at most five minutes")
    refuse_unusable(client.status, client.expires_at, now)
    ttl = int(exp - _timestamp(now) + CLOCK_SKEW.total_seconds()) + 1
    if not replay.first_use(f"assertion:{client.id}", str(claims["jti"]), ttl):
        raise InvalidClient("this client assertion was already used")
    return client


# -- DPoP proofs (RFC 9449) -----------------------------------------------------------------------


def _proof_key(jwk: Any) -> tuple[Key, str]:
    """The public key a DPoP proof carries, and its RFC 7638 thumbprint.

    A client signs every request with the same key: importing it (and checking that the point is
    on its curve) costs more than verifying the signature, so imported keys are kept, by their
    canonical JSON, for the next proof. Refused keys are not kept.
    """
    if not isinstance(jwk, dict):
        raise ValidationFailed("a key is a JWK object")
    try:
        canonical = json.dumps(jwk, sort_keys=True, separators=(",", ":"))
    except (TypeError, ValueError):
        raise ValidationFailed("the key is not a valid JWK") from None
    return _imported(canonical)


@lru_cache(maxsize=4096)
def _imported(canonical_jwk: str) -> tuple[Key, str]:
    key = import_public_jwk(json.loads(canonical_jwk))
    return key, key.thumbprint()


def one_proof(values: list[str]) -> str | None:
    """The request's DPoP proof, from its ``DPoP`` header lines: RFC 9449 (section 4.3) refuses a
    request that carries more than one, rather than picking one of them."""
    if len(values) > 1:
        raise InvalidDPoPProof("send one DPoP header, not several")
    return values[0] if values else None


def verify_dpop_proof(
    *,
    proof: str | None,
    replay: ReplayStore,
    method: str,
    url: str,
    now: datetime,
    access_token: str | None = None,
) -> str:
    """Check a DPoP proof for this request and return its key's RFC 7638 thumbprint."""
    if not proof:
        raise InvalidDPoPProof("a DPoP proof is required (header DPoP)")
    try:
        unverified = _unverified(proof)
    except ValidationFailed:
        raise InvalidDPoPProof("the DPoP proof is not a signed JWT") from None
    header, claims = unverified.header, unverified.claims
    if header.get("typ") != "dpop+jwt":
        raise InvalidDPoPProof("the DPoP proof must have typ dpop+jwt")
    try:
        key, jkt = _proof_key(header.get("jwk"))
    except ValidationFailed as exc:
        raise InvalidDPoPProof(f"the DPoP proof's jwk: {exc.detail}") from None
    alg = header.get("alg")
    if alg not in SIGNING_ALGORITHMS or alg not in algorithms_for(key):
        raise InvalidDPoPProof("the DPoP proof's algorithm does not fit its key")
    if not unverified.verifies(key, alg):
        raise InvalidDPoPProof("the DPoP proof's signature does not verify")

    _check_proof_claims(claims, method=method, url=url, now=now, access_token=access_token)
    ttl = int((PROOF_MAX_AGE + CLOCK_SKEW).total_seconds()) + 1
    if not replay.first_use(f"dpop:{jkt}", str(claims["jti"]), ttl):
        raise InvalidDPoPProof("this DPoP proof was already used: make a fresh one per request")
    return jkt


def _check_proof_claims(
    claims: dict[str, Any], *, method: str, url: str, now: datetime, access_token: str | None
) -> None:
    jti, htm, htu, iat = claims.get("jti"), claims.get("htm"), claims.get("htu"), claims.get("iat")
    if not isinstance(jti, str) or not 8 <= len(jti) <= 256:
        raise InvalidDPoPProof("the DPoP proof needs a unique jti")
    if htm != method.upper():
        raise InvalidDPoPProof("the DPoP proof was made for another HTTP method")
    if not isinstance(htu, str) or _htu_of(htu) != normalise_htu(url):
        raise InvalidDPoPProof("the DPoP proof was made for another URL")
    # NaN is no JSON number, though Python reads one: every comparison with it is false, so such a
    # proof would be neither too old nor from the future, ever. (An int is finite, and math.isfinite
    # would overflow on one too large for a float.)
    if not isinstance(iat, int | float) or isinstance(iat, bool) or (isinstance(iat, float) and not math.isfinite(iat)):
        raise InvalidDPoPProof("the DPoP proof needs iat")
    age = _timestamp(now) - iat
    if age > PROOF_MAX_AGE.total_seconds() or -age > CLOCK_SKEW.total_seconds():
        raise InvalidDPoPProof("the DPoP proof is too old or from the future: make a fresh one per request")
    if access_token is not None and claims.get("ath") != _b64url_sha256(access_token):
        raise InvalidDPoPProof("the DPoP proof does not name this access token (ath)")


# -- tokens --------------------------------------------------------------------------------------


def issue_token(
    *,
    session: Session,
    replay: ReplayStore,
    form: dict[str, str],
    dpop_proof: str | None,
    token_url: str,
    now: datetime,
) -> tuple[ApiClient, IssuedToken]:
    if form.get("grant_type") != GRANT_TYPE:
        raise InvalidTokenRequest("grant_type must be client_credentials")
    if form.get("client_assertion_type") != ASSERTION_TYPE or not form.get("client_assertion"):
        raise InvalidTokenRequest(f"authenticate with client_assertion_type={ASSERTION_TYPE} and a client_assertion")
    jkt = verify_dpop_proof(proof=dpop_proof, replay=replay, method="POST", url=token_url, now=now)
    client = authenticate_client(
        session=session, replay=replay, assertion=form["client_assertion"], token_url=token_url, now=now
    )
    if client.practice_id is not None:
        practice = session.get(Practice, client.practice_id)
        if practice is None or practice.status is not PracticeStatus.ACTIVE:
            raise PracticeSuspended("this practice is suspended; no token can be issued")
    expires = now + TOKEN_LIFETIME
    if client.expires_at is not None:
        expires = min(expires, client.expires_at)
    value = secrets.token_urlsafe(32)
    session.execute(delete(AccessToken).where(AccessToken.client_id == client.id, AccessToken.expires_at <= now))
    session.add(
        AccessToken(token_hash=token_hash(value), client_id=client.id, jkt=jkt, issued_at=now, expires_at=expires)
    )
    session.flush()
    return client, IssuedToken(access_token=value, expires_in=int((expires - now).total_seconds()), jkt=jkt)


def do_issue_token(
    *,
    session: Session,
    replay: ReplayStore,
    form: dict[str, str],
    dpop_proof: str | None,
    token_url: str,
    now: datetime,
    address: str | None,
) -> tuple[ApiClient, IssuedToken]:
    """Issue a token and commit it. A refused request of a known client commits its
    ``token_refused`` event, which the practice admin and the security operators see, and nothing else."""
    try:
        client, issued = issue_token(
            session=session, replay=replay, form=form, dpop_proof=dpop_proof, token_url=token_url, now=now
        )
    except RempartError as refusal:
        session.rollback()
        named = claimed_client(session, form.get("client_assertion", ""))
        if named is not None:
            detail = {"reason": refusal.slug}
            if named.insurer_id is not None:
                # An insurer's client has no practice: its insurer is named, as on its other events.
                detail["insurer_id"] = str(named.insurer_id)
            record_event(
                session=session,
                kind=SecurityEventKind.TOKEN_REFUSED,
                at=now,
                account_id=None,
                practice_id=named.practice_id,
                client_id=named.id,
                address=address,
                **detail,
            )
            session.commit()
        raise
    session.commit()
    log.info(
        "token_issued",
        client_id=str(client.id),
        practice_id=str(client.practice_id) if client.practice_id else None,
        insurer_id=str(client.insurer_id) if client.insurer_id else None,
    )
    return client, issued


def authenticate_token(
    *,
    session: Session,
    replay: ReplayStore,
    authorization: str | None,
    dpop_proof: str | None,
    method: str,
    url: str,
    now: datetime,
    acting_rpps: str | None = None,
) -> TokenHolder:
    """The client behind ``Authorization: DPoP <token>`` with a valid proof for this request, and
    the professional with RPPS ``acting_rpps`` if they are active and act for its practice."""
    scheme, _, value = (authorization or "").partition(" ")
    value = value.strip()
    if scheme.lower() == "bearer":
        raise InvalidAccessToken("Rempart tokens are bound to a key: use 'Authorization: DPoP <token>' with a proof")
    if scheme.lower() != "dpop" or not value:
        raise InvalidAccessToken("send 'Authorization: DPoP <token>' and a DPoP proof")
    # Every request of practice software comes here: one round trip, plain columns (no ORM objects)
    # for the token, its client, the client's practice and the acting professional.
    # (The statement is built once; its parameters are passed, not bound into a copy of it, so that
    # SQLAlchemy's compiled-statement cache finds it without recomputing its cache key; and it runs
    # on the session's connection, since a Core statement needs nothing of the ORM's execution.)
    params = {"token_hash": token_hash(value), "rpps": acting_rpps or ""}
    found = session.connection().execute(_HOLDER, params).one_or_none()
    if found is None:
        raise InvalidAccessToken("the access token is not valid")
    if found.expires_at <= now:
        raise AccessTokenExpired("the access token has expired: ask for a new one")
    jkt = verify_dpop_proof(proof=dpop_proof, replay=replay, method=method, url=url, now=now, access_token=value)
    if not secrets.compare_digest(jkt, found.jkt):
        raise InvalidDPoPProof("the DPoP proof is signed by another key than the token's")
    refuse_unusable(found.client_status, found.client_expires_at, now)
    if found.practice_id is not None and found.practice_status is not PracticeStatus.ACTIVE:
        raise PracticeSuspended("this practice is suspended")
    acting = None
    if found.professional_id is not None and found.membership_practice is not None:
        acting = ActingProfessional(found.professional_id, found.rpps, found.profession)
    return TokenHolder(
        client_id=found.client_id,
        practice_id=found.practice_id,
        token_hash=found.token_hash,
        professional=acting,
        insurer_id=found.insurer_id,
        scopes=found.scopes,
    )


_HOLDER = (
    select(
        AccessToken.token_hash,
        AccessToken.client_id,
        AccessToken.jkt,
        AccessToken.expires_at,
        ApiClient.status.label("client_status"),
        ApiClient.expires_at.label("client_expires_at"),
        ApiClient.practice_id,
        ApiClient.insurer_id,
        ApiClient.scopes,
        Practice.status.label("practice_status"),
        Professional.id.label("professional_id"),
        Professional.rpps,
        Professional.profession,
        PracticeMembership.practice_id.label("membership_practice"),
    )
    .join(ApiClient, ApiClient.id == AccessToken.client_id)
    # An insurer's client has no practice (and so no acting professional).
    .outerjoin(Practice, Practice.id == ApiClient.practice_id)
    .outerjoin(
        Professional,
        and_(Professional.rpps == bindparam("rpps"), Professional.status == ProfessionalStatus.ACTIVE),
    )
    .outerjoin(
        PracticeMembership,
        and_(
            PracticeMembership.practice_id == Practice.id,
            PracticeMembership.professional_id == Professional.id,
            PracticeMembership.ended_at.is_(None),
        ),
    )
    .where(AccessToken.token_hash == bindparam("token_hash"))
)
