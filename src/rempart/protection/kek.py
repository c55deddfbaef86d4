"""Key-encryption keys: the root of the per-insurer key hierarchy, kept outside the database.

The embedded default reads a JSON key ring from a file (or the ``REMPART_KEK`` environment
variable); a KMS implements the same ``KeyEncryptionKeys`` protocol in production. Wrapping is
AES-256-GCM with the insurer, purpose and version as associated data, so a wrapped key cannot be
moved to another insurer or slot.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import tempfile
from contextlib import suppress
from pathlib import Path
from typing import Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from rempart.errors import KeyUnavailable

NONCE_BYTES = 12


class KeyEncryptionKeys(Protocol):
    @property
    def active_id(self) -> str: ...

    def wrap(self, key: bytes, *, context: bytes) -> tuple[str, bytes]:
        """Return (kek id, wrapped key)."""
        ...

    def unwrap(self, wrapped: bytes, *, kek_id: str, context: bytes) -> bytes: ...


class LocalKeyRing:
    """Key-encryption keys from a JSON document ``{"active": id, "keys": {id: base64}}``."""

    def __init__(self, keys: dict[str, bytes], active: str) -> None:
        if active not in keys:
            raise KeyUnavailable("the active key-encryption key is not in the key ring")
        for kek_id, key in keys.items():
            if len(key) != 32:
                raise KeyUnavailable(f"key-encryption key {kek_id} is not 256 bits")
        self._keys = {kek_id: AESGCM(key) for kek_id, key in keys.items()}
        self._active = active

    @property
    def active_id(self) -> str:
        return self._active

    def wrap(self, key: bytes, *, context: bytes) -> tuple[str, bytes]:
        nonce = os.urandom(NONCE_BYTES)
        return self._active, nonce + self._keys[self._active].encrypt(nonce, key, context)

    def unwrap(self, wrapped: bytes, *, kek_id: str, context: bytes) -> bytes:
        aead = self._keys.get(kek_id)
        if aead is None:
            raise KeyUnavailable(f"key-encryption key {kek_id} is not in the key ring")
        try:
            return aead.decrypt(wrapped[:NONCE_BYTES], wrapped[NONCE_BYTES:], context)
        except InvalidTag:
            raise KeyUnavailable("a wrapped insurer key does not open with its key-encryption key") from None

    # -- the key ring document ---------------------------------------------------------------

    @classmethod
    def from_document(cls, text: str) -> LocalKeyRing:
        try:
            doc = json.loads(text)
            keys = {str(k): base64.b64decode(v, validate=True) for k, v in doc["keys"].items()}
            return cls(keys, str(doc["active"]))
        except (ValueError, KeyError, TypeError, AttributeError, RecursionError):
            raise KeyUnavailable("the key-encryption key ring is malformed") from None

    @staticmethod
    def new_document(kek_id: str | None = None) -> str:
        kek_id = kek_id or f"kek-{secrets.token_hex(4)}"
        return json.dumps(
            {"active": kek_id, "keys": {kek_id: base64.b64encode(AESGCM.generate_key(bit_length=256)).decode()}},
            indent=2,
        )

    @staticmethod
    def add_key(path: Path) -> str:
        """Add a fresh key to a key ring file and make it active; older keys stay to unwrap."""
        doc = json.loads(path.read_text())
        kek_id = f"kek-{secrets.token_hex(4)}"
        doc["keys"][kek_id] = base64.b64encode(AESGCM.generate_key(bit_length=256)).decode()
        doc["active"] = kek_id
        write_private(path, json.dumps(doc, indent=2))
        return kek_id


def write_private(path: Path, text: str) -> None:
    """Write a secret file readable by its owner only, whole or not at all.

    The text goes to a temporary file beside it (owner-only from its creation), is flushed to disk,
    then renamed over the old file: a write that fails midway (disk full, a crash) leaves the
    previous file as it was. Truncated in place, a key ring would lose every key-encryption key,
    and with them every insurer's keys. A symbolic link is followed: its target is replaced.
    """
    target = Path(os.path.realpath(path))
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, target)
    except BaseException:
        with suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
    folder = os.open(target.parent, os.O_RDONLY)
    try:
        os.fsync(folder)  # the rename itself survives a crash
    finally:
        os.close(folder)


def load_key_ring(*, env_value: str, file: Path, create: bool = False) -> LocalKeyRing:
    if env_value:
        return LocalKeyRing.from_document(env_value)
    if file.is_dir():
        raise KeyUnavailable(f"REMPART_KEK_FILE {file} is a folder, not a key ring file")
    try:
        if not file.exists():
            if not create:
                raise KeyUnavailable("no key-encryption key: set REMPART_KEK or REMPART_KEK_FILE")
            write_private(file, LocalKeyRing.new_document())
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise KeyUnavailable(f"REMPART_KEK_FILE {file} cannot be read ({reason})") from None
    return LocalKeyRing.from_document(text)
