"""Telling an account's owner that something happened (a recovery code was used, a passkey was
added). Production plugs a mail or messaging service behind ``Notifier``; the embedded default and
the tests keep the notices in memory and log ids only."""

from __future__ import annotations

import threading
import uuid
from dataclasses import dataclass, field
from typing import Protocol

from rempart.logs import get_logger

log = get_logger("rempart.identity.notify")


class Notifier(Protocol):
    def notify(self, *, account_id: uuid.UUID, kind: str) -> None: ...


@dataclass
class LocalNotifier:
    sent: list[tuple[uuid.UUID, str]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def notify(self, *, account_id: uuid.UUID, kind: str) -> None:
        with self._lock:
            self.sent.append((account_id, kind))
        log.info("owner_notified", account_id=str(account_id), kind=kind)
