"""Who is looking at a portal page: the viewer the layout shows, and the menu their roles open.

A page declares its permission like a route (``dependencies=[requires(...)]``) and takes
``ViewerDep``; the viewer refuses to resolve on a page that declares none (deny by default) and for
anything but a passkey session (practice software has no pages).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import Depends, Request

from rempart.identity.context import IdentityDep
from rempart.identity.deps import AuthenticatedDep, require_declared
from rempart.identity.errors import NotSignedIn
from rempart.identity.models import Account, AccountSession
from rempart.identity.permissions import Permission, Role
from rempart.identity.principal import Channel, Principal
from rempart.identity.sessions import ABSOLUTE_TIMEOUT, IDLE_TIMEOUT
from rempart.professionals.models import Practice
from rempart.web.deps import SessionDep
from rempart.web.i18n import _
from rempart.web.pages import NavItem, Viewer

# The menu, in the order of a professional's day; each item shows to whoever holds its permission.
MENU: tuple[tuple[Permission, NavItem], ...] = (
    (Permission.CARE_RIGHTS_CHECK_CREATE, NavItem("/counter", _("Rights check"))),
    (Permission.CARE_QUOTE_CREATE, NavItem("/quotes/new", _("Quote"))),
    (Permission.CARE_PRIOR_APPROVAL_READ, NavItem("/approvals", _("Prior approvals"))),
    (Permission.CARE_CLAIM_READ, NavItem("/claims", _("Claims"))),
    (Permission.CARE_REMITTANCE_READ, NavItem("/remittances", _("Remittances"))),
    (Permission.PRACTICE_CLIENT_MANAGE, NavItem("/practice", _("My practice"))),
    # The insurer's back office, in the order of its work.
    (Permission.INSURER_PRODUCT_READ, NavItem("/insurer/products", _("Products"))),
    (Permission.INSURER_MEMBER_IMPORT, NavItem("/insurer/imports", _("Member imports"))),
    (Permission.INSURER_MEMBER_READ, NavItem("/insurer/members", _("Members"))),
    (Permission.INSURER_CLAIM_READ, NavItem("/insurer/claims", _("Claims review"))),
    (Permission.INSURER_CLAIM_REVIEW, NavItem("/insurer/approvals", _("Prior approvals to decide"))),
    (Permission.INSURER_PAYMENT_RUN_MANAGE, NavItem("/insurer/payment-runs", _("Payment runs"))),
    (Permission.INSURER_EXPORT_REQUEST, NavItem("/insurer/exports", _("Member exports"))),
    (Permission.INSURER_EXPORT_APPROVE, NavItem("/insurer/exports/approvals", _("Member exports to approve"))),
    (Permission.INSURER_ACCESS_LOG_READ, NavItem("/insurer/access-log", _("Access log"))),
    (Permission.INSURER_INCIDENT_READ, NavItem("/insurer/incidents", _("Breach notices"))),
    # The insured person's portal.
    (Permission.ME_CARD_READ, NavItem("/me", _("My card"))),
    (Permission.ME_RIGHTS_READ, NavItem("/me/rights", _("My rights"))),
    (Permission.ME_ACCESS_LOG_READ, NavItem("/me/access-log", _("Who accessed my data"))),
    (Permission.ME_ACCESS_LOG_READ, NavItem("/me/incidents", _("Incidents"))),
    # The security console.
    (Permission.SECURITY_ALERT_READ, NavItem("/console", _("Alerts"))),
    (Permission.SECURITY_KILL_SWITCH_MANAGE, NavItem("/console/kill-switches", _("Kill switches"))),
    (Permission.SECURITY_BREAK_GLASS_APPROVE, NavItem("/console/break-glass", _("Break glass"))),
    (Permission.SECURITY_INCIDENT_MANAGE, NavItem("/console/incidents", _("Incidents"))),
    (Permission.ACCOUNT_SELF_MANAGE, NavItem("/account", _("My account"))),
)


# Each role as people call it.
ROLE_WORDS: dict[str, str] = {
    Role.PRACTICE_ADMIN: _("Practice administrator"),
    Role.PROFESSIONAL: _("Health professional"),
    Role.INSURER_ADMIN: _("Insurer administrator"),
    Role.CLAIMS_AGENT: _("Claims agent"),
    Role.DPO: _("Data protection officer"),
    Role.BENEFICIARY: _("Beneficiary"),
    Role.SECURITY_OPERATOR: _("Security operator"),
    Role.PLATFORM_ADMIN: _("Platform administrator"),
    Role.PRACTICE_SOFTWARE: _("Practice software"),
}


def menu_of(principal: Principal) -> tuple[NavItem, ...]:
    return tuple(item for permission, item in MENU if principal.can(permission))


def viewer_of(request: Request, principal: Principal, *, session: SessionDep, now: datetime) -> Viewer:
    row_hash = getattr(request.state, "session_row_hash", None)
    row = session.get(AccountSession, row_hash) if row_hash is not None else None
    account = session.get(Account, principal.account_id) if principal.account_id else None
    if principal.channel is not Channel.PORTAL or row is None or account is None:
        raise NotSignedIn("sign in with a passkey")
    practice = session.get(Practice, principal.practice_id) if principal.practice_id else None
    ends = min(row.expires_at, row.created_at + ABSOLUTE_TIMEOUT)
    return Viewer(
        login=account.login,
        nav=menu_of(principal),
        csrf_token=row.csrf_token,
        idle_seconds=int(IDLE_TIMEOUT.total_seconds()),
        absolute_deadline=ends,
        absolute_seconds=max(0, int((ends - now).total_seconds())),
        roles=frozenset(r.value for r in principal.roles),
        practice_name=practice.name if practice else None,
        professional_label=principal.rpps,
    )


def page_viewer(request: Request, principal: AuthenticatedDep, session: SessionDep, identity: IdentityDep) -> Viewer:
    require_declared(request, principal)
    return viewer_of(request, principal, session=session, now=identity.clock())


ViewerDep = Annotated[Viewer, Depends(page_viewer)]
