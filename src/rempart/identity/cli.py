"""``rempart identity``: bootstrap accounts that nobody else can invite, and contain an account."""

from __future__ import annotations

import uuid

import typer
from pydantic import ValidationError

from rempart.cli_refusals import fail, open_runtime, refusals
from rempart.db import utcnow
from rempart.identity.accounts import invite_account, suspend_account
from rempart.identity.permissions import Role
from rempart.identity.schemas import SuspendIn

identity_app = typer.Typer(no_args_is_help=True, help="Accounts: bootstrap invitations, containment.")


def _invite(login: str, role: Role) -> None:
    runtime = open_runtime()
    try:
        with refusals(), runtime.sessions.begin() as session:
            invitation = invite_account(session=session, login=login, roles={role}, now=utcnow(), invited_by=None)
            url = invitation.url(runtime.settings.public_origin)
    finally:
        runtime.close()
    # The link is a one-time credential: it goes to the terminal of whoever runs this, once.
    typer.echo(f"one-time enrolment link for {login} (valid 7 days): {url}")


@identity_app.command("invite-platform-admin")
def invite_platform_admin(login: str) -> None:
    """Invite a platform admin (the first one can only come from here)."""
    _invite(login, Role.PLATFORM_ADMIN)


@identity_app.command("invite-security-operator")
def invite_security_operator(login: str) -> None:
    """Invite a security operator."""
    _invite(login, Role.SECURITY_OPERATOR)


@identity_app.command("suspend")
def suspend(
    account_id: str, reason: str = typer.Option("manual", help="short reason: lowercase letters, digits, _ and -")
) -> None:
    """Suspend an account and end all its sessions now."""
    try:
        account = uuid.UUID(account_id)
    except ValueError:
        raise fail("not an account id") from None
    try:  # the rule of the operators' API: the reason is kept in the account's security events
        SuspendIn(reason=reason)
    except ValidationError:
        raise fail("--reason: 1 to 64 lowercase letters, digits, _ or -") from None
    runtime = open_runtime()
    try:
        with refusals(), runtime.sessions.begin() as session:
            suspend_account(session=session, account_id=account, now=utcnow(), reason=reason)
    finally:
        runtime.close()
    typer.echo(f"account {account_id} suspended; its sessions are revoked")
