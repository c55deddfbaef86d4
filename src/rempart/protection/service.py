"""Field encryption and blind indexes under per-insurer keys (DESIGN.md, invariant 5).

Each value is AES-256-GCM ciphertext under the insurer's active data key; its associated data names
the insurer, table, row, field and key version, so a ciphertext copied onto another row, field or
insurer does not open. Exact-match lookups use HMAC-SHA256 under a separate index key.

Layout of a ciphertext: ``b"\\x01" | key version (4 bytes, big endian) | nonce (12) | ct+tag``.
"""

from __future__ import annotations

import hmac
import os
import struct
import time
import uuid
from dataclasses import dataclass, field
from datetime import date
from hashlib import sha256

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import and_, or_, select, update
from sqlalchemy.orm import Session

from rempart.db import is_postgresql, utcnow
from rempart.errors import KeyUnavailable
from rempart.protection.kek import KeyEncryptionKeys
from rempart.protection.models import InsurerKey, KeyPurpose, KeyState
from rempart.tenancy import bind_tenant, tenant

FORMAT_V1 = b"\x01"
_HEADER = struct.Struct(">cI")
NONCE_BYTES = 12
# How long a process trusts its cached keys; rotation waits longer than this before destroying a
# retired key, so that no process still encrypts under it.
KEY_CACHE_SECONDS = 30.0


def _wrap_context(insurer_id: uuid.UUID, purpose: KeyPurpose, version: int) -> bytes:
    return f"rempart:insurer-key:{insurer_id}:{purpose.value}:{version}".encode()


def normalise_nir(nir: str) -> str:
    return "".join(nir.split()).upper()


@dataclass
class InsurerCipher:
    """The opened keys of one insurer: encrypts, decrypts and computes blind indexes."""

    insurer_id: uuid.UUID
    data_keys: dict[int, AESGCM]
    active_data_version: int
    index_keys: dict[int, bytes]
    active_index_version: int
    loaded_at: float = field(default_factory=time.monotonic)

    def _aad(self, table: str, row_id: uuid.UUID, column: str, version: int) -> bytes:
        return f"{self.insurer_id}|{table}|{row_id}|{column}|{version}".encode()

    def encrypt(self, value: str, *, table: str, row_id: uuid.UUID, column: str) -> bytes:
        version = self.active_data_version
        nonce = os.urandom(NONCE_BYTES)
        sealed = self.data_keys[version].encrypt(nonce, value.encode(), self._aad(table, row_id, column, version))
        return _HEADER.pack(FORMAT_V1, version) + nonce + sealed

    def decrypt(self, blob: bytes, *, table: str, row_id: uuid.UUID, column: str) -> str:
        fmt, version = _HEADER.unpack_from(blob)
        key = self.data_keys.get(version)
        if fmt != FORMAT_V1 or key is None:
            raise KeyUnavailable("a value is encrypted under a key this process does not hold")
        start = _HEADER.size
        nonce, sealed = blob[start : start + NONCE_BYTES], blob[start + NONCE_BYTES :]
        try:
            return key.decrypt(nonce, sealed, self._aad(table, row_id, column, version)).decode()
        except InvalidTag:
            raise KeyUnavailable("a value does not open under its insurer, row and field") from None

    @staticmethod
    def ciphertext_version(blob: bytes) -> int:
        return int(_HEADER.unpack_from(blob)[1])

    # -- blind indexes -------------------------------------------------------------------------

    @staticmethod
    def _identity_message(nir: str, birth_date: date, birth_rank: int) -> bytes:
        return f"identity|{normalise_nir(nir)}|{birth_date.isoformat()}|{birth_rank}".encode()

    def identity_index(self, nir: str, birth_date: date, birth_rank: int, *, version: int | None = None) -> bytes:
        key = self.index_keys[version or self.active_index_version]
        return hmac.new(key, self._identity_message(nir, birth_date, birth_rank), sha256).digest()

    def identity_index_candidates(self, nir: str, birth_date: date, birth_rank: int) -> list[bytes]:
        """The index under every live index key: during a rotation both old and new rows match."""
        message = self._identity_message(nir, birth_date, birth_rank)
        return [hmac.new(key, message, sha256).digest() for key in self.index_keys.values()]


class KeyService:
    """Creates, opens, caches and rotates insurer keys. One per process."""

    def __init__(self, keks: KeyEncryptionKeys) -> None:
        self.keks = keks
        self._cache: dict[uuid.UUID, InsurerCipher] = {}

    def create_insurer_keys(self, session: Session, insurer_id: uuid.UUID) -> None:
        with tenant(session, insurer_id):
            for purpose in KeyPurpose:
                self._add_key(session, insurer_id, purpose, version=1)

    def _add_key(self, session: Session, insurer_id: uuid.UUID, purpose: KeyPurpose, *, version: int) -> None:
        material = AESGCM.generate_key(bit_length=256)
        kek_id, wrapped = self.keks.wrap(material, context=_wrap_context(insurer_id, purpose, version))
        session.add(
            InsurerKey(
                insurer_id=insurer_id,
                purpose=purpose,
                version=version,
                state=KeyState.ACTIVE,
                kek_id=kek_id,
                wrapped=wrapped,
            )
        )
        session.flush()

    def cipher(self, session: Session, insurer_id: uuid.UUID, *, fresh: bool = False) -> InsurerCipher:
        cached = self._cache.get(insurer_id)
        if cached and not fresh and time.monotonic() - cached.loaded_at < KEY_CACHE_SECONDS:
            return cached
        with tenant(session, insurer_id):  # insurer_keys is behind row-level security too
            cipher = self._open(session, insurer_id)
        self._cache[insurer_id] = cipher
        return cipher

    def cipher_for_write(self, session: Session, insurer_id: uuid.UUID) -> InsurerCipher:
        """The keys to encrypt and index new rows under, kept from destruction until this transaction ends.

        Cached keys may be up to ``KEY_CACHE_SECONDS`` old: a rotation may meanwhile have retired
        them, swept every row and destroyed them, and rows written under them would open nowhere.
        So the two versions about to be used are locked here, with a lock the rotation's destroy
        step (an UPDATE of these key rows, then a count of the rows still under old versions, in
        one transaction) conflicts with, and read back: PostgreSQL, ``FOR SHARE`` on the key rows;
        SQLite, a write to them, which takes the database's single write lock until this
        transaction ends (and, taken, reads the latest commit). Then:

        - still active or retiring: usable. The destroy step either committed nothing yet and will
          count this transaction's rows once it commits (and sweep them), or rolled back;
        - destroyed (or gone): the keys are loaded again, in this transaction, and the batch is
          encrypted under the current ones. Simpler than failing the batch for a retry, and nothing
          has been encrypted yet, so nothing is written twice.
        """
        cipher = self.cipher(session, insurer_id)
        for _ in range(3):
            if self._hold(session, insurer_id, cipher):
                return cipher
            cipher = self.cipher(session, insurer_id, fresh=True)
        raise KeyUnavailable("the insurer's keys were rotated again and again during this write: retry it")

    @staticmethod
    def _hold(session: Session, insurer_id: uuid.UUID, cipher: InsurerCipher) -> bool:
        where = (
            InsurerKey.insurer_id == insurer_id,
            or_(
                and_(InsurerKey.purpose == KeyPurpose.DATA, InsurerKey.version == cipher.active_data_version),
                and_(InsurerKey.purpose == KeyPurpose.INDEX, InsurerKey.version == cipher.active_index_version),
            ),
        )
        with tenant(session, insurer_id):
            if is_postgresql(session):
                query = select(InsurerKey.state).where(*where).with_for_update(read=True)
            else:
                session.execute(
                    update(InsurerKey).where(*where).values(state=InsurerKey.state),
                    execution_options={"synchronize_session": False},
                )
                query = select(InsurerKey.state).where(*where)
            states = session.scalars(query).all()
        return len(states) == 2 and KeyState.DESTROYED not in states

    def forget(self, insurer_id: uuid.UUID | None = None) -> None:
        if insurer_id is None:
            self._cache.clear()
        else:
            self._cache.pop(insurer_id, None)

    def _open(self, session: Session, insurer_id: uuid.UUID) -> InsurerCipher:
        rows = session.scalars(
            select(InsurerKey).where(InsurerKey.insurer_id == insurer_id, InsurerKey.state != KeyState.DESTROYED)
        ).all()
        data: dict[int, AESGCM] = {}
        index: dict[int, bytes] = {}
        active = {KeyPurpose.DATA: 0, KeyPurpose.INDEX: 0}
        for row in rows:
            assert row.wrapped is not None  # a live key always has material (check constraint)
            material = self.keks.unwrap(
                row.wrapped, kek_id=row.kek_id, context=_wrap_context(insurer_id, row.purpose, row.version)
            )
            if row.purpose is KeyPurpose.DATA:
                data[row.version] = AESGCM(material)
            else:
                index[row.version] = material
            if row.state is KeyState.ACTIVE:
                active[row.purpose] = row.version
        if not active[KeyPurpose.DATA] or not active[KeyPurpose.INDEX]:
            raise KeyUnavailable("the insurer has no active keys")
        return InsurerCipher(insurer_id, data, active[KeyPurpose.DATA], index, active[KeyPurpose.INDEX])

    # -- rotation steps (driven by rempart.protection.rotation) ----------------------------------

    def rewrap_all(self, session: Session, insurer_id: uuid.UUID) -> int:
        """Re-wrap every live key of the insurer under the active key-encryption key."""
        bind_tenant(session, insurer_id)
        count = 0
        for row in session.scalars(
            select(InsurerKey).where(InsurerKey.insurer_id == insurer_id, InsurerKey.state != KeyState.DESTROYED)
        ):
            assert row.wrapped is not None
            context = _wrap_context(insurer_id, row.purpose, row.version)
            material = self.keks.unwrap(row.wrapped, kek_id=row.kek_id, context=context)
            row.kek_id, row.wrapped = self.keks.wrap(material, context=context)
            count += 1
        session.flush()
        return count

    def start_rotation(self, session: Session, insurer_id: uuid.UUID) -> tuple[int, int]:
        """Add new active data and index keys; the previous ones go on opening until retired."""
        bind_tenant(session, insurer_id)
        versions = []
        for purpose in KeyPurpose:
            current = session.scalars(
                select(InsurerKey)
                .where(InsurerKey.insurer_id == insurer_id, InsurerKey.purpose == purpose)
                .order_by(InsurerKey.version.desc())
                .limit(1)
            ).one()
            for row in session.scalars(
                select(InsurerKey).where(
                    InsurerKey.insurer_id == insurer_id,
                    InsurerKey.purpose == purpose,
                    InsurerKey.state == KeyState.ACTIVE,
                )
            ):
                row.state = KeyState.RETIRING
            self._add_key(session, insurer_id, purpose, version=current.version + 1)
            versions.append(current.version + 1)
        self.forget(insurer_id)
        return versions[0], versions[1]

    def destroy_retired(self, session: Session, insurer_id: uuid.UUID) -> int:
        bind_tenant(session, insurer_id)
        count = 0
        for row in session.scalars(
            select(InsurerKey).where(InsurerKey.insurer_id == insurer_id, InsurerKey.state == KeyState.RETIRING)
        ):
            row.state, row.wrapped, row.destroyed_at = KeyState.DESTROYED, None, utcnow()
            count += 1
        session.flush()
        self.forget(insurer_id)
        return count
