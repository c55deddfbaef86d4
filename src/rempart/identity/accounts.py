"""Human accounts: invitations (one-time enrolment links), roles, recovery codes, suspension.

No account has a password. An account is created by an invitation; its holder registers a passkey
through the link; a lost passkey is replaced with a single-use recovery code, which alerts the owner.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from rempart.errors import Conflict, NotFound, RempartError, Unauthenticated, ValidationFailed
from rempart.identity.events import record_event
from rempart.identity.models import (
    Account,
    AccountRole,
    AccountSession,
    AccountStatus,
    Enrolment,
    EnrolmentPurpose,
    RecoveryCode,
    SecurityEventKind,
)
from rempart.identity.notify import Notifier
from rempart.identity.permissions import INSURER_ROLES, PRACTICE_ROLES, Role
from rempart.insurers.models import Insurer
from rempart.professionals.models import PracticeMembership, Professional

INVITATION_LIFETIME = timedelta(days=7)
RECOVERY_ENROLMENT_LIFETIME = timedelta(minutes=15)
RECOVERY_CODE_COUNT = 10
_CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I
_CODE_SECRET_LENGTH = 15  # 75 bits
_LOGIN = re.compile(r"^[a-z0-9._%+@-]{3,254}$")

# OWASP's minimum argon2id profile (19 MiB, 2 passes): recovery codes carry 75 random bits, so the
# hash guards against a stolen table, not against guessing.
_HASHER = PasswordHasher(time_cost=2, memory_cost=19456, parallelism=1, hash_len=32, salt_len=16, type=Type.ID)


class EnrolmentRefused(RempartError):
    status = 401
    slug = "enrolment-refused"
    title = "This enrolment link cannot be used"


class RecoveryFailed(RempartError):
    status = 401
    slug = "recovery-failed"
    title = "Recovery failed"


@dataclass(frozen=True)
class Invitation:
    account: Account
    token: str

    def url(self, origin: str) -> str:
        # The token rides in the fragment: browsers never send it to a server or in a Referer.
        return f"{origin.rstrip('/')}/enrol#{self.token}"


def normalise_login(login: str) -> str:
    value = login.strip().lower()
    if not _LOGIN.match(value):
        raise ValidationFailed("a login is 3 to 254 letters, digits or . _ % + @ -")
    return value


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def roles_of(session: Session, account_id: uuid.UUID) -> frozenset[Role]:
    return frozenset(session.scalars(select(AccountRole.role).where(AccountRole.account_id == account_id)))


def signed_in_account(session: Session, account_id: uuid.UUID | None) -> Account:
    """The account a session principal acts for; Unauthenticated if it is gone."""
    account = session.get(Account, account_id) if account_id else None
    if account is None:
        raise Unauthenticated("sign in with a passkey")
    return account


def staff_of(session: Session, insurer_id: uuid.UUID) -> Sequence[Account]:
    """The insurer's staff accounts (its beneficiaries' accounts are not staff), by login."""
    return session.scalars(
        select(Account)
        .where(Account.insurer_id == insurer_id, Account.beneficiary_id.is_(None))
        .order_by(Account.login)
    ).all()


def _check_scope(
    session: Session,
    roles: frozenset[Role],
    *,
    insurer_id: uuid.UUID | None,
    practice_id: uuid.UUID | None,
    professional_id: uuid.UUID | None,
    beneficiary_id: uuid.UUID | None,
) -> None:
    if not roles:
        raise ValidationFailed("an account needs at least one role")
    if Role.PRACTICE_SOFTWARE in roles:
        raise ValidationFailed("practice software uses API clients, not accounts")
    insurer_roles, practice_roles = roles & INSURER_ROLES, roles & PRACTICE_ROLES
    platform_roles = roles & {Role.SECURITY_OPERATOR, Role.PLATFORM_ADMIN}
    beneficiary = Role.BENEFICIARY in roles
    if sum(map(bool, (insurer_roles, practice_roles, platform_roles, beneficiary))) != 1:
        raise ValidationFailed("an account is insurer staff, practice staff, platform staff or a beneficiary")
    if bool(insurer_roles or beneficiary) != (insurer_id is not None) or (practice_roles and practice_id is None):
        raise ValidationFailed("the account's insurer or practice does not fit its roles")
    if platform_roles and (insurer_id or practice_id):
        raise ValidationFailed("platform staff belong to no insurer or practice")
    if beneficiary != (beneficiary_id is not None):
        raise ValidationFailed("a beneficiary account names its beneficiary")
    if insurer_id is not None and session.get(Insurer, insurer_id) is None:
        raise NotFound("no such insurer")
    if Role.PROFESSIONAL in roles and professional_id is None:
        raise ValidationFailed("a professional's account names their RPPS")
    if professional_id is not None:
        membership = session.get(PracticeMembership, (practice_id, professional_id))
        if membership is None or membership.ended_at is not None:
            raise ValidationFailed("this professional does not act for this practice")


def invite_account(
    *,
    session: Session,
    login: str,
    roles: Iterable[Role],
    now: datetime,
    invited_by: uuid.UUID | None,
    insurer_id: uuid.UUID | None = None,
    practice_id: uuid.UUID | None = None,
    professional_id: uuid.UUID | None = None,
    beneficiary_id: uuid.UUID | None = None,
) -> Invitation:
    """Create an account waiting for its first passkey, and its one-time enrolment link."""
    login = normalise_login(login)
    wanted = frozenset(roles)
    _check_scope(
        session,
        wanted,
        insurer_id=insurer_id,
        practice_id=practice_id,
        professional_id=professional_id,
        beneficiary_id=beneficiary_id,
    )
    if session.scalar(select(Account.id).where(Account.login == login)) is not None:
        raise Conflict("this login is taken")
    account = Account(
        id=uuid.uuid4(),
        login=login,
        user_handle=secrets.token_bytes(32),
        status=AccountStatus.INVITED,
        insurer_id=insurer_id,
        practice_id=practice_id,
        professional_id=professional_id,
        beneficiary_id=beneficiary_id,
        created_at=now,
    )
    session.add(account)
    session.flush()
    for role in sorted(wanted):
        session.add(AccountRole(account_id=account.id, role=role, granted_at=now, granted_by=invited_by))
    token = new_enrolment(
        session=session, account_id=account.id, purpose=EnrolmentPurpose.INVITATION, created_by=invited_by, now=now
    )
    record_event(
        session=session,
        kind=SecurityEventKind.ACCOUNT_INVITED,
        at=now,
        account_id=account.id,
        practice_id=practice_id,
        invited_by=str(invited_by) if invited_by else "platform",
    )
    session.flush()
    return Invitation(account=account, token=token)


def professional_id_by_rpps(session: Session, rpps: str) -> uuid.UUID:
    found = session.scalar(select(Professional.id).where(Professional.rpps == rpps))
    if found is None:
        raise NotFound("no professional with this RPPS in this practice")
    return found


def new_enrolment(
    *,
    session: Session,
    account_id: uuid.UUID,
    purpose: EnrolmentPurpose,
    created_by: uuid.UUID | None,
    now: datetime,
) -> str:
    token = secrets.token_urlsafe(32)
    lifetime = INVITATION_LIFETIME if purpose is EnrolmentPurpose.INVITATION else RECOVERY_ENROLMENT_LIFETIME
    session.add(
        Enrolment(
            token_hash=_digest(token),
            account_id=account_id,
            purpose=purpose,
            created_by=created_by,
            created_at=now,
            expires_at=now + lifetime,
        )
    )
    return token


def open_enrolment(session: Session, *, token: str, now: datetime) -> tuple[Enrolment, Account]:
    """The unused, unexpired enrolment behind a link. Every refusal looks the same."""
    enrolment = session.get(Enrolment, _digest(token)) if token else None
    account = session.get(Account, enrolment.account_id) if enrolment else None
    if (
        enrolment is None
        or account is None
        or enrolment.used_at is not None
        or enrolment.expires_at <= now
        or account.status is AccountStatus.SUSPENDED
    ):
        raise EnrolmentRefused("this enrolment link is not valid or has expired; ask for a new one")
    return enrolment, account


def enrolment_digest(token: str) -> bytes:
    return _digest(token)


# -- recovery codes -------------------------------------------------------------------------------


def _format_code(slot: int, secret: str) -> str:
    raw = f"{_CODE_ALPHABET[slot]}{secret}"
    return "-".join(raw[i : i + 4] for i in range(0, len(raw), 4))


def _parse_code(code: str) -> tuple[int, str] | None:
    raw = "".join(code.split()).replace("-", "").upper()
    if len(raw) != 1 + _CODE_SECRET_LENGTH or any(c not in _CODE_ALPHABET for c in raw):
        return None
    slot = _CODE_ALPHABET.index(raw[0])
    return (slot, raw[1:]) if slot < RECOVERY_CODE_COUNT else None


@lru_cache(maxsize=1)
def _dummy_hash() -> str:
    return _HASHER.hash("".join(secrets.choice(_CODE_ALPHABET) for _ in range(_CODE_SECRET_LENGTH)))


def create_recovery_codes(*, session: Session, account_id: uuid.UUID, now: datetime) -> list[str]:
    """Replace the account's recovery codes; the clear codes are returned once and never stored."""
    session.execute(delete(RecoveryCode).where(RecoveryCode.account_id == account_id))
    codes = []
    for slot in range(RECOVERY_CODE_COUNT):
        secret = "".join(secrets.choice(_CODE_ALPHABET) for _ in range(_CODE_SECRET_LENGTH))
        session.add(RecoveryCode(account_id=account_id, slot=slot, code_hash=_HASHER.hash(secret), created_at=now))
        codes.append(_format_code(slot, secret))
    record_event(session=session, kind=SecurityEventKind.RECOVERY_CODES_CREATED, at=now, account_id=account_id)
    session.flush()
    return codes


def use_recovery_code(
    *,
    session: Session,
    notifier: Notifier,
    login: str,
    code: str,
    now: datetime,
    address: str | None,
) -> str:
    """Spend one recovery code; returns a short-lived enrolment token for a replacement passkey.

    An unknown login, a malformed code, a used code and a wrong code all cost one argon2 check and
    answer the same.
    """
    try:
        account = session.scalar(select(Account).where(Account.login == normalise_login(login)))
    except ValidationFailed:
        account = None
    parsed = _parse_code(code)
    # The same queries whatever the login: an unknown one looks up a slot of a random account id.
    row = session.get(RecoveryCode, (account.id if account else uuid.uuid4(), parsed[0] if parsed else 0))
    ok = False
    try:
        if row is not None and row.used_at is None and parsed is not None:
            ok = _HASHER.verify(row.code_hash, parsed[1])
        else:
            _HASHER.verify(_dummy_hash(), parsed[1] if parsed else code)
    except (VerificationError, InvalidHashError):
        ok = False
    if not ok or account is None or row is None or account.status is AccountStatus.SUSPENDED:
        raise RecoveryFailed("this login and recovery code do not open an account")
    row.used_at = now
    token = new_enrolment(
        session=session, account_id=account.id, purpose=EnrolmentPurpose.RECOVERY, created_by=None, now=now
    )
    record_event(
        session=session,
        kind=SecurityEventKind.RECOVERY_CODE_USED,
        at=now,
        account_id=account.id,
        address=address,
        slot=str(row.slot),
    )
    notifier.notify(account_id=account.id, kind=SecurityEventKind.RECOVERY_CODE_USED.value)
    session.flush()
    return token


# -- roles and containment ------------------------------------------------------------------------


def revoke_all_sessions(
    *, session: Session, account_id: uuid.UUID, now: datetime, reason: str, except_hash: bytes | None = None
) -> int:
    query = update(AccountSession).where(AccountSession.account_id == account_id, AccountSession.revoked_at.is_(None))
    if except_hash is not None:
        query = query.where(AccountSession.id_hash != except_hash)
    result = session.execute(query.values(revoked_at=now, revoked_reason=reason))
    return int(getattr(result, "rowcount", 0) or 0)


def suspend_account(*, session: Session, account_id: uuid.UUID, now: datetime, reason: str) -> bool:
    """Containment: the account cannot log in and every session of it ends now.

    Idempotent: suspending a suspended account records no second ``account_suspended`` event (an
    operator's retry or detection firing again must not flood the owner's event list); its sessions
    are still revoked, should one have been left. Returns whether the account was suspended now.
    The account's row is locked (PostgreSQL) so that two suspensions at once record one event."""
    account = session.get(Account, account_id, with_for_update=True, populate_existing=True)
    if account is None:
        raise NotFound("no such account")
    newly = account.status is not AccountStatus.SUSPENDED
    account.status = AccountStatus.SUSPENDED
    revoke_all_sessions(session=session, account_id=account_id, now=now, reason="suspended")
    if newly:
        record_event(
            session=session, kind=SecurityEventKind.ACCOUNT_SUSPENDED, at=now, account_id=account_id, reason=reason
        )
    session.flush()
    return newly


def reinstate_account(*, session: Session, account_id: uuid.UUID) -> None:
    account = session.get(Account, account_id)
    if account is None:
        raise NotFound("no such account")
    if account.status is AccountStatus.SUSPENDED:
        account.status = AccountStatus.ACTIVE


def do_suspend_account(*, session: Session, account_id: uuid.UUID, now: datetime, reason: str) -> bool:
    """A security operator's containment, committed with its security event (none when the account
    was suspended already: see ``suspend_account``)."""
    newly = suspend_account(session=session, account_id=account_id, now=now, reason=reason)
    session.commit()
    return newly


def do_end_all_sessions(*, session: Session, account_id: uuid.UUID, now: datetime, address: str | None) -> int:
    """Sign out everywhere: every session of the account ends, with one ``all_sessions_revoked`` event."""
    count = revoke_all_sessions(session=session, account_id=account_id, now=now, reason="revoked_all")
    record_event(
        session=session,
        kind=SecurityEventKind.ALL_SESSIONS_REVOKED,
        at=now,
        account_id=account_id,
        address=address,
        count=str(count),
    )
    session.commit()
    return count


def do_end_other_sessions(
    *, session: Session, account_id: uuid.UUID, keep: bytes, now: datetime, address: str | None
) -> int:
    """Sign out everywhere else: every session of the account but ``keep`` (the hash of the one in
    use) ends, with one ``all_sessions_revoked`` event that says the current one was kept."""
    count = revoke_all_sessions(
        session=session, account_id=account_id, now=now, reason="revoked_others", except_hash=keep
    )
    record_event(
        session=session,
        kind=SecurityEventKind.ALL_SESSIONS_REVOKED,
        at=now,
        account_id=account_id,
        address=address,
        count=str(count),
        kept="current",
    )
    session.commit()
    return count


def do_replace_recovery_codes(*, session: Session, account_id: uuid.UUID, now: datetime) -> list[str]:
    """New recovery codes for the account, committed with their event; the clear codes are shown once."""
    codes = create_recovery_codes(session=session, account_id=account_id, now=now)
    session.commit()
    return codes
