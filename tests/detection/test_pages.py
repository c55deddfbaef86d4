"""Alerts come a page at a time, on both databases, for security operators and for an insurer's
staff: newest first, each once (alerts raised at the same instant included), the last page without
``next`` nor ``Link``, and a cursor no ``next`` link gave is a 422 ``cursor-invalid``."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from rempart.detection.models import Alert, AlertInsurer, AlertKind, AlertStatus, Severity
from rempart.identity.permissions import Role
from rempart.runtime import Runtime
from tests.factories import make_insurer
from tests.support.paging import refuses_cursor, walk
from tests.support.portal import PortalUser

T0 = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)


def _alerts(runtime: Runtime, count: int, *, insurer_id: uuid.UUID | None = None) -> list[Alert]:
    """``count`` open alerts, two raised at each instant, newest first."""
    alerts = [
        Alert(
            id=uuid.uuid4(),
            created_at=T0 + timedelta(minutes=i // 2),
            kind=next(iter(AlertKind)),
            severity=Severity.HIGH,
            status=AlertStatus.OPEN,
            title=f"alert {i}",
        )
        for i in range(count)
    ]
    with runtime.sessions.begin() as session:
        session.add_all(alerts)
        session.flush()
        if insurer_id is not None:
            session.add_all(AlertInsurer(insurer_id=insurer_id, alert_id=a.id) for a in alerts)
    return sorted(alerts, key=lambda a: (a.created_at, a.id), reverse=True)


def test_operators_walk_the_alerts_page_by_page(app: Any, runtime: Runtime) -> None:
    operator = PortalUser.invited(app, runtime, login="vigie@rempart.test", roles={Role.SECURITY_OPERATOR})
    expected = [str(a.id) for a in _alerts(runtime, 9)]

    seen = walk(operator.get, "/api/v1/alerts", rows="alerts", limit=2, status="open")

    assert [a["id"] for a in seen] == expected
    assert walk(operator.get, "/api/v1/alerts", rows="alerts", limit=3) == seen  # full last page: no next
    refuses_cursor(operator.get, "/api/v1/alerts")


def test_an_insurers_staff_walk_their_alerts_page_by_page(app: Any, runtime: Runtime) -> None:
    insurer = make_insurer(runtime)
    dpo = PortalUser.invited(app, runtime, login="dpo@remparts.test", roles={Role.DPO}, insurer_id=insurer.id)
    theirs = [str(a.id) for a in _alerts(runtime, 5, insurer_id=insurer.id)]
    _alerts(runtime, 3)  # concerning nobody's members: not theirs
    path = f"/api/v1/insurers/{insurer.id}/alerts"

    assert [a["id"] for a in walk(dpo.get, path, rows="alerts", limit=2)] == theirs
    refuses_cursor(dpo.get, path)
