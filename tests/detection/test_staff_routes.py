"""Kill switches reach the back office: every route an insurer's staff can call goes through
``guarded_staff``, so the back-office switch and a switch on their insurer stop it (503
problem+json), whatever the route does next."""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest
from fastapi.dependencies.models import Dependant

from rempart.detection.deps import guarded_staff
from rempart.identity.deps import PermissionCheck, staff_caller
from rempart.identity.permissions import INSURER_ROLES, ROLE_PERMISSIONS, Permission, Role
from rempart.runtime import Runtime
from tests.factories import make_insurer
from tests.support.portal import PortalUser
from tests.support.routes import Route, api_routes

# What insurer staff may do that nobody else may (their own account's routes are everyone's).
STAFF_PERMISSIONS = frozenset().union(*(ROLE_PERMISSIONS[r] for r in INSURER_ROLES)) - {Permission.ACCOUNT_SELF_MANAGE}


def _calls(dependant: Dependant) -> list[Any]:
    found = [dependant.call]
    for sub in dependant.dependencies:
        found += _calls(sub)
    return found


def staff_routes(app: Any) -> list[Route]:
    """Routes that declare an insurer staff permission or resolve an insurer's staff member."""
    found = []
    for route in api_routes(app):
        calls = _calls(route.dependant)
        declared = {p for c in calls if isinstance(c, PermissionCheck) for p in c.permissions}
        if declared & STAFF_PERMISSIONS or staff_caller in calls:
            found.append(route)
    return found


def test_every_staff_route_is_guarded_by_the_kill_switches(app: Any) -> None:
    routes = staff_routes(app)
    assert len(routes) >= 20  # products, imports, claims, approvals, payment runs, staff, access log, alerts
    unguarded = [f"{sorted(r.methods)} {r.path}" for r in routes if guarded_staff not in _calls(r.dependant)]
    assert unguarded == []


def _concrete(path: str, insurer_id: uuid.UUID) -> str:
    path = path.replace("{insurer_id}", str(insurer_id))
    return re.sub(r"\{[^}]+\}", lambda _: str(uuid.uuid4()), path)


@pytest.fixture
def staff(app: Any, runtime: Runtime) -> tuple[PortalUser, uuid.UUID]:
    insurer = make_insurer(runtime)
    user = PortalUser.invited(
        app,
        runtime,
        login="backoffice@mutuelle.test",
        roles={Role.INSURER_ADMIN, Role.CLAIMS_AGENT, Role.DPO},
        insurer_id=insurer.id,
    )
    return user, insurer.id


def test_the_back_office_switch_stops_every_staff_route(
    app: Any, runtime: Runtime, staff: tuple[PortalUser, uuid.UUID]
) -> None:
    user, insurer_id = staff
    operator = PortalUser.invited(app, runtime, login="vigie@rempart.test", roles={Role.SECURITY_OPERATOR})
    assert user.get(f"/api/v1/insurers/{insurer_id}/products").status_code == 200
    cut = operator.post(
        "/api/v1/kill-switches",
        json={"scope": "channel", "target": "back_office", "reason": "Staff passkeys phished, cutting off"},
    )
    assert cut.status_code == 201, cut.text

    answers = {}
    for route in staff_routes(app):
        for method in sorted(route.methods - {"HEAD"}):
            response = user.request(method, _concrete(route.path, insurer_id), json={})
            page = not route.path.startswith("/api/")  # the back office's pages answer a page
            kind = response.headers.get("content-type", "").split(";")[0]
            answers[f"{method} {route.path}"] = (response.status_code, kind)
            if response.status_code == 503 and page:
                assert "security team switched it off" in response.text or "sécurité de Rempart" in response.text
                assert "attestation" not in response.text  # staff have no offline fallback
            elif response.status_code == 503:
                problem = response.json()
                assert problem["type"].endswith("/channel-disconnected")
                assert problem["detail"] == "The security team has disconnected this channel for now."
                assert "offline_attestation" not in problem  # staff have no offline fallback
    assert len(answers) >= 20
    expected = {"application/problem+json", "text/html"}
    assert {k: v for k, v in answers.items() if v[0] != 503 or v[1] not in expected} == {}
    assert any(k.split()[1].startswith("/insurer/") for k in answers)  # the back office's pages are in it

    # The other channels go on: the operator's console is not the back office.
    assert operator.get("/api/v1/kill-switches").status_code == 200
    cleared = operator.post(f"/api/v1/kill-switches/{cut.json()['id']}/clear", json={"reason": "Passkeys reset"})
    assert cleared.status_code == 200
    assert user.get(f"/api/v1/insurers/{insurer_id}/products").status_code == 200


def test_an_insurer_switch_stops_that_insurers_staff_only(
    app: Any, runtime: Runtime, staff: tuple[PortalUser, uuid.UUID]
) -> None:
    user, insurer_id = staff
    other = make_insurer(runtime, amc_number="77450102", name="Autre mutuelle")
    neighbour = PortalUser.invited(
        app, runtime, login="admin@autre.test", roles={Role.INSURER_ADMIN}, insurer_id=other.id
    )
    operator = PortalUser.invited(app, runtime, login="vigie@rempart.test", roles={Role.SECURITY_OPERATOR})
    cut = operator.post(
        "/api/v1/kill-switches",
        json={"scope": "insurer", "target": str(insurer_id), "reason": "Insurer reports a compromised admin"},
    )
    assert cut.status_code == 201, cut.text
    for path in ("products", "claims", "payment-runs", "staff", "access-log", "alerts"):
        refused = user.get(f"/api/v1/insurers/{insurer_id}/{path}")
        assert refused.status_code == 503, (path, refused.text)
        assert refused.json()["type"].endswith("/channel-disconnected")
    assert neighbour.get(f"/api/v1/insurers/{other.id}/products").status_code == 200
